// sim/interp/string.cpp — string instructions movs, stos, lods, cmps, scas, ins and outs with
// the rep / repe / repne prefixes (see x86/ops.def).
//
// Sources: Intel SDM Vol. 2 "MOVS", "STOS", "LODS", "CMPS", "SCAS", "INS", "OUTS", "REP/REPE/
// REPZ/REPNE/REPNZ". Element size = the operand size (8 for movsb); rSI, rDI and rCX have the
// ADDRESS size (SI/DI/CX, ESI/EDI/ECX or RSI/RDI/RCX); DF = 1 walks downwards. The source is
// DS:rSI unless a segment-override prefix names another segment; the destination ES:rDI
// cannot be overridden.
//
// rSI, rDI and rCX are updated after every element, so a fault in the middle leaves them
// describing the elements already done and RIP at the instruction, as on hardware (the
// instruction then restarts where it stopped). A rep instruction runs at most
// kRepIterationsPerStep iterations in one step and is then suspended the same way
// (sim/cpu.hpp RepSuspended), so that a count of 2^32 cannot hold the run loop inside one
// step: its time limit and Ctrl-C are seen between iterations. A rep instruction whose count
// is 0 does nothing.
#include "sim/interp/handlers.hpp"

namespace trapscope::sim {
namespace {

inline void put_gpr(CpuState& s, unsigned reg, unsigned size, uint64_t v) {
  uint64_t& r = s.gpr[reg];
  switch (size) {
    case 1: r = (r & ~0xFFull) | (v & 0xFF); break;
    case 2: r = (r & ~0xFFFFull) | (v & 0xFFFF); break;
    case 4: r = v & 0xFFFFFFFFull; break;
    default: r = v; break;
  }
}

// The source segment: DS unless overridden. Zydis keeps string operands hidden and the decoder
// reports only THAT there is a segment override, so the prefix bytes (Cpu::insn_bytes, set by
// the step loop) say which; in 64-bit mode only FS and GS overrides count.
SegReg source_segment(const Cpu& cpu, const Instruction& insn) {
  if (!insn.seg_override || !cpu.insn_bytes) return kDs;
  const bool m64 = cpu.mode64();
  SegReg seg = kDs;
  const unsigned n = cpu.insn_len < 15 ? cpu.insn_len : 15;
  for (unsigned i = 0; i < n; ++i) {
    switch (cpu.insn_bytes[i]) {
      case 0x26: if (!m64) seg = kEs; break;
      case 0x2E: if (!m64) seg = kCs; break;
      case 0x36: if (!m64) seg = kSs; break;
      case 0x3E: if (!m64) seg = kDs; break;
      case 0x64: seg = kFs; break;
      case 0x65: seg = kGs; break;
      case 0x66: case 0x67: case 0xF0: case 0xF2: case 0xF3: break;
      default: return seg;  // REX or the opcode: the prefixes are over
    }
  }
  return seg;
}

// Per-instruction constants of a string operation.
struct Str {
  unsigned size;   // element bytes
  unsigned as;     // address size in bytes
  uint64_t am;     // address mask
  uint64_t step;   // +size or -size (two's complement)
  bool rep;
};

inline Str setup(const Cpu& cpu, const Instruction& insn) {
  Str t;
  t.size = insn.operand_size / 8;
  t.as = insn.address_size / 8;
  t.am = mask(t.as);
  t.step = (cpu.s.rflags & kDF) ? 0 - uint64_t{t.size} : uint64_t{t.size};
  t.rep = insn.rep != 0;
  return t;
}

inline void advance(CpuState& s, const Str& t, unsigned reg) {
  put_gpr(s, reg, t.as, s.gpr[reg] + t.step);
}

// The number of iterations: 1 without a prefix, else rCX (possibly 0).
inline uint64_t iterations(const CpuState& s, const Str& t) {
  return t.rep ? (s.gpr[kRcx] & t.am) : 1;
}

// Called before each iteration: `done` iterations ran in this step; after
// kRepIterationsPerStep of them the instruction is suspended (rCX > 0 is left to do).
inline void may_suspend(uint64_t done) {
  if (done >= kRepIterationsPerStep) [[unlikely]] throw RepSuspended{};
}

inline void count_down(CpuState& s, const Str& t) {
  if (t.rep) put_gpr(s, kRcx, t.as, s.gpr[kRcx] - 1);
}

// cmps/scas termination: repe stops when ZF = 0, repne when ZF = 1.
inline bool stop_compare(const CpuState& s, const Instruction& insn) {
  const bool zf = s.rflags & kZF;
  return insn.rep == Instruction::kRepne ? zf : !zf;
}

// ins writes memory with data from a port: check the destination is writable first (as
// hardware does), so that a #GP/#PF does not consume the device's data.
inline void probe_write(Cpu& cpu, uint64_t offset, unsigned size) {
  const uint64_t la = cpu.linear_address(kEs, offset, size, Access::kWrite);
  const bool user = cpu.cpl() == 3;
  cpu.translate(la, Access::kWrite, user);
  if ((la & 0xFFF) + size > 0x1000) cpu.translate(la + size - 1, Access::kWrite, user);
}

}  // namespace

void exec_kMovs(Cpu& cpu, const Instruction& insn) {
  CpuState& s = cpu.s;
  const Str t = setup(cpu, insn);
  const SegReg src = source_segment(cpu, insn);
  for (uint64_t n = iterations(s, t), k = 0; n; --n, ++k) {
    may_suspend(k);
    const uint64_t v = cpu.read(src, s.gpr[kRsi] & t.am, t.size);
    cpu.write(kEs, s.gpr[kRdi] & t.am, t.size, v);
    advance(s, t, kRsi);
    advance(s, t, kRdi);
    count_down(s, t);
  }
}

void exec_kStos(Cpu& cpu, const Instruction& insn) {
  CpuState& s = cpu.s;
  const Str t = setup(cpu, insn);
  const uint64_t v = s.gpr[kRax];
  for (uint64_t n = iterations(s, t), k = 0; n; --n, ++k) {
    may_suspend(k);
    cpu.write(kEs, s.gpr[kRdi] & t.am, t.size, v);
    advance(s, t, kRdi);
    count_down(s, t);
  }
}

// lods: the accumulator (a 32-bit load zero-extends RAX).
void exec_kLods(Cpu& cpu, const Instruction& insn) {
  CpuState& s = cpu.s;
  const Str t = setup(cpu, insn);
  const SegReg src = source_segment(cpu, insn);
  for (uint64_t n = iterations(s, t), k = 0; n; --n, ++k) {
    may_suspend(k);
    const uint64_t v = cpu.read(src, s.gpr[kRsi] & t.am, t.size);
    put_gpr(s, kRax, t.size, v);
    advance(s, t, kRsi);
    count_down(s, t);
  }
}

// cmps: flags of [src:rSI] - [ES:rDI].
void exec_kCmps(Cpu& cpu, const Instruction& insn) {
  CpuState& s = cpu.s;
  const Str t = setup(cpu, insn);
  const SegReg src = source_segment(cpu, insn);
  for (uint64_t n = iterations(s, t), k = 0; n; --n, ++k) {
    may_suspend(k);
    const uint64_t a = cpu.read(src, s.gpr[kRsi] & t.am, t.size);
    const uint64_t b = cpu.read(kEs, s.gpr[kRdi] & t.am, t.size);
    cpu.flags_sub(a, b, 0, a - b, t.size);
    advance(s, t, kRsi);
    advance(s, t, kRdi);
    count_down(s, t);
    if (t.rep && stop_compare(s, insn)) break;
  }
}

// scas: flags of accumulator - [ES:rDI].
void exec_kScas(Cpu& cpu, const Instruction& insn) {
  CpuState& s = cpu.s;
  const Str t = setup(cpu, insn);
  const uint64_t a = s.gpr[kRax] & mask(t.size);
  for (uint64_t n = iterations(s, t), k = 0; n; --n, ++k) {
    may_suspend(k);
    const uint64_t b = cpu.read(kEs, s.gpr[kRdi] & t.am, t.size);
    cpu.flags_sub(a, b, 0, a - b, t.size);
    advance(s, t, kRdi);
    count_down(s, t);
    if (t.rep && stop_compare(s, insn)) break;
  }
}

// ins: [ES:rDI] = in(DX). One VM-exit-equivalent event per instruction, with the number of
// elements transferred (also when a fault stops a rep ins part-way).
void exec_kIns(Cpu& cpu, const Instruction& insn) {
  CpuState& s = cpu.s;
  const Str t = setup(cpu, insn);
  const uint16_t port = static_cast<uint16_t>(s.gpr[kRdx]);
  uint64_t n = iterations(s, t);
  if (n == 0) return;
  uint32_t done = 0;
  uint64_t first = 0;
  try {
    for (; n; --n) {
      may_suspend(done);
      const uint64_t di = s.gpr[kRdi] & t.am;
      if (!cpu.io_allowed(port, t.size)) raise(vec::kGP, 0);
      probe_write(cpu, di, t.size);
      const uint64_t v = cpu.port_in(port, t.size);
      cpu.write(kEs, di, t.size, v);
      if (done == 0) first = v;
      ++done;
      advance(s, t, kRdi);
      count_down(s, t);
    }
  } catch (...) {
    if (done) cpu.record_exit_io(port, t.size, false, done, first);
    throw;
  }
  cpu.record_exit_io(port, t.size, false, done, first);
}

// outs: out(DX, [src:rSI]).
void exec_kOuts(Cpu& cpu, const Instruction& insn) {
  CpuState& s = cpu.s;
  const Str t = setup(cpu, insn);
  const SegReg src = source_segment(cpu, insn);
  const uint16_t port = static_cast<uint16_t>(s.gpr[kRdx]);
  uint64_t n = iterations(s, t);
  if (n == 0) return;
  uint32_t done = 0;
  uint64_t first = 0;
  try {
    for (; n; --n) {
      may_suspend(done);
      const uint64_t v = cpu.read(src, s.gpr[kRsi] & t.am, t.size);
      cpu.port_out(port, t.size, v);
      if (done == 0) first = v;
      ++done;
      advance(s, t, kRsi);
      count_down(s, t);
    }
  } catch (...) {
    if (done) cpu.record_exit_io(port, t.size, true, done, first);
    throw;
  }
  cpu.record_exit_io(port, t.size, true, done, first);
}

}  // namespace trapscope::sim
