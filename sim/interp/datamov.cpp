// sim/interp/datamov.cpp — data movement: mov and its extending forms, lea, exchanges, byte
// swap, sign extension of the accumulator, conditional moves and sets, the stack (push/pop of
// registers, memory, immediates and segment registers; pushf/popf; pusha/popa; leave), lahf,
// sahf and xlat (see x86/ops.def).
//
// Sources: Intel SDM Vol. 2 (each instruction's "Operation" section); popf's privilege rules are
// the SDM's POPF table (and the classic Popek–Goldberg example: at CPL > IOPL, popf silently
// keeps IF instead of trapping).
//
// An immediate's Operand::size is its ENCODED width (1 for push imm8) while op.imm is already
// sign-extended to 64 bits, so immediates are taken from op.imm directly.
#include "sim/interp/handlers.hpp"
#include "sim/interp/protection.hpp"

namespace trapscope::sim {
namespace {

inline void put_gpr(CpuState& s, unsigned reg, unsigned size, uint64_t v) {
  uint64_t& r = s.gpr[reg];
  switch (size) {
    case 1: r = (r & ~0xFFull) | (v & 0xFF); break;
    case 2: r = (r & ~0xFFFFull) | (v & 0xFFFF); break;
    case 4: r = v & 0xFFFFFFFFull; break;  // zero-extends (SDM Vol. 1 3.4.1.1)
    default: r = v; break;
  }
}

inline uint64_t rd(Cpu& cpu, const Instruction& insn, unsigned i) {
  const Operand& op = insn.ops[i];
  if (op.kind == OperandKind::kReg && op.reg_class == RegClass::kGpr) {
    return cpu.s.gpr[op.reg] & mask(op.size);
  }
  if (op.kind == OperandKind::kImm) return op.imm & mask(insn.ops[0].size);
  return cpu.read_op(insn, i);
}

inline void wr(Cpu& cpu, const Instruction& insn, unsigned i, uint64_t v) {
  const Operand& op = insn.ops[i];
  if (op.kind == OperandKind::kReg && op.reg_class == RegClass::kGpr) {
    put_gpr(cpu.s, op.reg, op.size, v);
  } else {
    cpu.write_op(insn, i, v);
  }
}

inline bool is_mem(const Operand& op) { return op.kind == OperandKind::kMem; }

// The stack pointer with the stack-address size (2, 4 or 8 bytes), as Cpu::push/pop keep it.
inline void set_sp(CpuState& s, unsigned as, uint64_t v) {
  if (as == 2) s.gpr[kRsp] = (s.gpr[kRsp] & ~0xFFFFull) | (v & 0xFFFF);
  else put_gpr(s, kRsp, as, v);
}

// The data segment of an instruction whose memory operand Zydis keeps hidden (xlat): DS unless
// a segment-override prefix says otherwise. The decoder reports only THAT there is an override,
// so the prefix bytes of the instruction (Cpu::insn_bytes, set by the step loop) say which; in
// 64-bit mode only FS and GS overrides count.
SegReg data_segment(const Cpu& cpu, const Instruction& insn) {
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

// RFLAGS bits that popf may change at all (reserved bits, VM, RF, VIF, VIP never).
constexpr uint64_t kPopfBase = kCF | kPF | kAF | kZF | kSF | kTF | kDF | kOF | kNT | kAC | kID;

}  // namespace

// [SECTION] Moves

void exec_kMov(Cpu& cpu, const Instruction& insn) { wr(cpu, insn, 0, rd(cpu, insn, 1)); }

void exec_kMovzx(Cpu& cpu, const Instruction& insn) {
  wr(cpu, insn, 0, rd(cpu, insn, 1));  // rd gives the source zero-extended
}

void exec_kMovsx(Cpu& cpu, const Instruction& insn) {
  wr(cpu, insn, 0, static_cast<uint64_t>(sign_extend(rd(cpu, insn, 1), insn.ops[1].size)));
}

void exec_kMovsxd(Cpu& cpu, const Instruction& insn) {
  wr(cpu, insn, 0, static_cast<uint64_t>(sign_extend(rd(cpu, insn, 1), insn.ops[1].size)));
}

// lea: the offset only (no memory access, no segment), masked to the address size by
// effective_address and truncated to the operand size by the register write.
void exec_kLea(Cpu& cpu, const Instruction& insn) {
  wr(cpu, insn, 0, cpu.effective_address(insn, insn.ops[1]));
}

// xchg: the memory operand (if any) is written first, so a fault changes nothing.
void exec_kXchg(Cpu& cpu, const Instruction& insn) {
  const uint64_t a = rd(cpu, insn, 0);
  const uint64_t b = rd(cpu, insn, 1);
  if (is_mem(insn.ops[1])) {
    wr(cpu, insn, 1, a);
    wr(cpu, insn, 0, b);
  } else {
    wr(cpu, insn, 0, b);
    wr(cpu, insn, 1, a);
  }
}

// cmpxchg r/m, r: compare the accumulator with the destination (flags as `cmp acc, dest`); equal:
// dest = src; else accumulator = dest. A memory destination is always written (with its own
// value on failure, SDM "CMPXCHG"); a register destination is not written on failure (so a
// 32-bit one keeps its upper half, as on the reference host).
void exec_kCmpxchg(Cpu& cpu, const Instruction& insn) {
  const unsigned size = insn.ops[0].size;
  const uint64_t dst = rd(cpu, insn, 0);
  const uint64_t acc = cpu.s.gpr[kRax] & mask(size);
  if (acc == dst) {
    wr(cpu, insn, 0, rd(cpu, insn, 1));
  } else {
    if (is_mem(insn.ops[0])) wr(cpu, insn, 0, dst);
    put_gpr(cpu.s, kRax, size, dst);
  }
  cpu.flags_sub(acc, dst, 0, acc - dst, size);
}

// xadd r/m, r: TEMP = src + dest; src = dest; dest = TEMP (flags as add).
void exec_kXadd(Cpu& cpu, const Instruction& insn) {
  const unsigned size = insn.ops[0].size;
  const uint64_t d = rd(cpu, insn, 0);
  const uint64_t sv = rd(cpu, insn, 1);
  const uint64_t sum = (d + sv) & mask(size);
  if (is_mem(insn.ops[0])) {
    wr(cpu, insn, 0, sum);
    wr(cpu, insn, 1, d);
  } else {
    wr(cpu, insn, 1, d);
    wr(cpu, insn, 0, sum);
  }
  cpu.flags_add(d, sv, 0, sum, size);
}

// bswap r32/r64. With a 16-bit operand the result is undefined: the reference host (and Bochs)
// clears the low 16 bits.
void exec_kBswap(Cpu& cpu, const Instruction& insn) {
  const Operand& op = insn.ops[0];
  uint64_t& r = cpu.s.gpr[op.reg];
  switch (op.size) {
    case 8: r = __builtin_bswap64(r); break;
    case 4: r = __builtin_bswap32(static_cast<uint32_t>(r)); break;
    default: r &= ~0xFFFFull; break;
  }
}

// cbw/cwde/cdqe.
void exec_kCbw(Cpu& cpu, const Instruction& insn) {
  CpuState& s = cpu.s;
  switch (insn.operand_size) {
    case 16: put_gpr(s, kRax, 2, static_cast<uint64_t>(sign_extend(s.gpr[kRax], 1))); break;
    case 32: put_gpr(s, kRax, 4, static_cast<uint64_t>(sign_extend(s.gpr[kRax], 2))); break;
    default: s.gpr[kRax] = static_cast<uint64_t>(sign_extend(s.gpr[kRax], 4)); break;
  }
}

// cwd/cdq/cqo: the accumulator's sign into DX/EDX/RDX.
void exec_kCwd(Cpu& cpu, const Instruction& insn) {
  CpuState& s = cpu.s;
  const unsigned size = insn.operand_size / 8;
  put_gpr(s, kRdx, size, (s.gpr[kRax] & sign_bit(size)) ? ~0ull : 0);
}

// cmovcc: the source is read (and may fault) whatever the condition; a 32-bit destination is
// zero-extended even when the condition is false (SDM "CMOVcc", 64-bit mode).
void exec_kCmovcc(Cpu& cpu, const Instruction& insn) {
  const uint64_t v = rd(cpu, insn, 1);
  if (cpu.cond(insn.cc)) {
    wr(cpu, insn, 0, v);
  } else if (insn.ops[0].size == 4) {
    cpu.s.gpr[insn.ops[0].reg] &= 0xFFFFFFFFull;
  }
}

void exec_kSetcc(Cpu& cpu, const Instruction& insn) { wr(cpu, insn, 0, cpu.cond(insn.cc)); }

void exec_kNop(Cpu&, const Instruction&) {}

// [SECTION] Stack

// push r/m/imm/Sreg with the instruction's operand size (64 by default in 64-bit mode). An
// immediate is sign-extended; a segment register's selector is zero-extended. The value is read
// before RSP changes (push rsp pushes the old value; push [rsp] uses the old address).
void exec_kPush(Cpu& cpu, const Instruction& insn) {
  const unsigned size = insn.operand_size / 8;
  const Operand& op = insn.ops[0];
  uint64_t v;
  if (op.kind == OperandKind::kImm) v = op.imm;
  else if (op.kind == OperandKind::kReg && op.reg_class == RegClass::kGpr) v = cpu.s.gpr[op.reg];
  else v = cpu.read_op(insn, 0);  // memory, AH..BH, or a segment register's selector
  cpu.push(v & mask(size), size);
}

// pop r/m/Sreg. A memory destination's address is computed after RSP is incremented (SDM
// "POP"); if the write or the segment load faults, RSP is restored.
void exec_kPop(Cpu& cpu, const Instruction& insn) {
  const unsigned size = insn.operand_size / 8;
  const Operand& op = insn.ops[0];
  if (op.kind == OperandKind::kReg && op.reg_class == RegClass::kGpr) {
    const uint64_t v = cpu.pop(size);
    put_gpr(cpu.s, op.reg, op.size, v);  // pop rsp: the popped value wins
    return;
  }
  const uint64_t saved_rsp = cpu.s.gpr[kRsp];
  try {
    const uint64_t v = cpu.pop(size);
    if (op.kind == OperandKind::kReg && op.reg_class == RegClass::kSeg) {
      load_segment(cpu, static_cast<SegReg>(op.reg), static_cast<uint16_t>(v));
    } else {
      cpu.write_op(insn, 0, v);
    }
  } catch (...) {
    cpu.s.gpr[kRsp] = saved_rsp;
    throw;
  }
}

// pushf/pushfd/pushfq: the image has VM and RF cleared. In virtual-8086 mode with IOPL < 3:
// #GP(0), except for a 16-bit pushf with CR4.VME (IF replaced by VIF, IOPL shown as 3).
void exec_kPushf(Cpu& cpu, const Instruction& insn) {
  const unsigned size = insn.operand_size / 8;
  const CpuState& s = cpu.s;
  uint64_t v = s.rflags & ~(kVM | kRF);
  if ((s.rflags & kVM) && (s.rflags & kIOPL) != kIOPL) {
    if (size != 2 || !(s.cr4 & kCr4Vme)) raise(vec::kGP, 0);
    v = (v & ~kIF) | ((s.rflags & kVIF) ? kIF : 0) | kIOPL;
  }
  cpu.push(v & mask(size), size);
}

// popf/popfd/popfq (SDM "POPF"):
//   - CPL 0 (and real mode): every non-reserved flag except VM, RF, VIF, VIP;
//   - 0 < CPL <= IOPL: the same except IOPL;
//   - CPL > IOPL: the same except IOPL and IF — IF is silently kept (no trap: the instruction
//     that makes x86 fail the Popek–Goldberg criteria);
//   - virtual-8086 mode: IOPL 3 as CPL > 0 with IF allowed; IOPL < 3: #GP(0), except a 16-bit
//     popf with CR4.VME (IF goes to VIF; #GP if that would set VIF with VIP pending, or sets TF);
//   - a 16-bit popf changes only bits 15:0.
void exec_kPopf(Cpu& cpu, const Instruction& insn) {
  const unsigned size = insn.operand_size / 8;
  CpuState& s = cpu.s;
  const uint64_t old = s.rflags;
  const unsigned iopl = static_cast<unsigned>((old & kIOPL) >> 12);
  uint64_t changeable = kPopfBase;
  if (old & kVM) {
    if (iopl < 3) {
      if (size != 2 || !(s.cr4 & kCr4Vme)) raise(vec::kGP, 0);
      const unsigned as = cpu.stack_address_size();
      const uint64_t sp = s.gpr[kRsp] & mask(as);
      const uint64_t v = cpu.read(kSs, sp, 2);
      if (((old & kVIP) && (v & kIF)) || (v & kTF)) raise(vec::kGP, 0);
      set_sp(s, as, sp + 2);
      const uint64_t keep = ~(kPopfBase & 0xFFFF);
      s.rflags = ((old & keep) | (v & kPopfBase & 0xFFFF) | 0x2) & ~kVIF;
      s.rflags |= (v & kIF) ? kVIF : 0;
      return;
    }
    changeable |= kIF;
  } else {
    const unsigned cpl = cpu.cpl();
    if (cpl == 0) changeable |= kIOPL;
    if (cpl <= iopl) changeable |= kIF;
  }
  if (size == 2) changeable &= 0xFFFF;
  const uint64_t v = cpu.pop(size);
  s.rflags = (old & ~changeable) | (v & changeable) | 0x2;
}

// pusha/pushad: AX CX DX BX (original SP) BP SI DI. The stores are made before SP changes, so a
// fault leaves SP as it was. (#UD in 64-bit mode is the decoder's: the opcode is invalid there.)
void exec_kPusha(Cpu& cpu, const Instruction& insn) {
  const unsigned size = insn.operand_size / 8;
  const unsigned as = cpu.stack_address_size();
  CpuState& s = cpu.s;
  const uint64_t am = mask(as);
  const uint64_t sp = s.gpr[kRsp] & am;
  for (unsigned i = 0; i < 8; ++i) {
    cpu.write(kSs, (sp - size * (i + 1)) & am, size, s.gpr[i]);  // i = 4 is the original SP
  }
  set_sp(s, as, (sp - 8 * size) & am);
}

// popa/popad: DI SI BP (skip SP) BX DX CX AX; all loads before any register changes.
void exec_kPopa(Cpu& cpu, const Instruction& insn) {
  const unsigned size = insn.operand_size / 8;
  const unsigned as = cpu.stack_address_size();
  CpuState& s = cpu.s;
  const uint64_t am = mask(as);
  const uint64_t sp = s.gpr[kRsp] & am;
  uint64_t v[8];
  for (unsigned i = 0; i < 8; ++i) {
    if (i != 3) v[i] = cpu.read(kSs, (sp + size * i) & am, size);  // i = 3 is SP's slot
  }
  for (unsigned i = 0; i < 8; ++i) {
    if (i != 3) put_gpr(s, 7 - i, size, v[i]);
  }
  set_sp(s, as, (sp + 8 * size) & am);
}

// leave: SP = BP (stack-address size), then BP = pop (operand size). The load comes first.
void exec_kLeave(Cpu& cpu, const Instruction& insn) {
  const unsigned size = insn.operand_size / 8;
  const unsigned as = cpu.stack_address_size();
  CpuState& s = cpu.s;
  const uint64_t bp = s.gpr[kRbp] & mask(as);
  const uint64_t v = cpu.read(kSs, bp, size);
  set_sp(s, as, (bp + size) & mask(as));
  put_gpr(s, kRbp, size, v);
}

// [SECTION] Flags and table lookup

// lahf: AH = SF:ZF:0:AF:0:PF:1:CF.
void exec_kLahf(Cpu& cpu, const Instruction&) {
  CpuState& s = cpu.s;
  const uint64_t ah = (s.rflags & (kSF | kZF | kAF | kPF | kCF)) | 0x2;
  s.gpr[kRax] = (s.gpr[kRax] & ~0xFF00ull) | (ah << 8);
}

// sahf: SF ZF AF PF CF = AH bits 7 6 4 2 0.
void exec_kSahf(Cpu& cpu, const Instruction&) {
  CpuState& s = cpu.s;
  constexpr uint64_t kBits = kSF | kZF | kAF | kPF | kCF;
  s.rflags = (s.rflags & ~kBits) | ((s.gpr[kRax] >> 8) & kBits);
}

// xlat: AL = [seg:(rBX + zero-extended AL)], masked to the address size; DS unless overridden.
void exec_kXlat(Cpu& cpu, const Instruction& insn) {
  CpuState& s = cpu.s;
  const uint64_t ea = (s.gpr[kRbx] + (s.gpr[kRax] & 0xFF)) & mask(insn.address_size / 8);
  const uint64_t v = cpu.read(data_segment(cpu, insn), ea, 1);
  s.gpr[kRax] = (s.gpr[kRax] & ~0xFFull) | v;
}

// [SECTION] Handlers specialised for an operand form: mov reg, reg|imm|mem and mov mem, reg,
// with the operand size S known at compile time (the same operations as exec_kMov).

namespace {

enum class MovForm { kRegReg, kRegImm, kRegMem, kMemReg };

template <MovForm F, unsigned S>
void mov_form(Cpu& cpu, const Instruction& insn) {
  const Operand& dst = insn.ops[0];
  const Operand& src = insn.ops[1];
  CpuState& s = cpu.s;
  if constexpr (F == MovForm::kRegReg) {
    put_gpr(s, dst.reg, S, s.gpr[src.reg]);
  } else if constexpr (F == MovForm::kRegImm) {
    put_gpr(s, dst.reg, S, src.imm);
  } else if constexpr (F == MovForm::kRegMem) {
    // The host-pointer fast path, else the full one (handlers.hpp host_operand).
    const uint8_t* p = host_operand<S, false>(cpu, insn, src);
    put_gpr(s, dst.reg, S,
            p ? load_host<S>(p)
              : cpu.read(static_cast<SegReg>(src.seg), cpu.effective_address(insn, src), S));
  } else {
    if (uint8_t* p = host_operand<S, true>(cpu, insn, dst)) return store_host<S>(p, s.gpr[src.reg]);
    cpu.write(static_cast<SegReg>(dst.seg), cpu.effective_address(insn, dst), S,
              s.gpr[src.reg] & mask(S));
  }
}

template <MovForm F>
Handler mov_sized(unsigned size) {
  switch (size) {
    case 1: return &mov_form<F, 1>;
    case 2: return &mov_form<F, 2>;
    case 4: return &mov_form<F, 4>;
    case 8: return &mov_form<F, 8>;
    default: return nullptr;
  }
}

inline bool is_gpr(const Operand& op) {
  return op.kind == OperandKind::kReg && op.reg_class == RegClass::kGpr;
}

}  // namespace

Handler select_datamov_handler(const Instruction& insn) {
  if (insn.op != Op::kMov || insn.operand_count != 2) return nullptr;
  const Operand& dst = insn.ops[0];
  const Operand& src = insn.ops[1];
  if (is_gpr(dst)) {
    if (is_gpr(src) && src.size == dst.size) return mov_sized<MovForm::kRegReg>(dst.size);
    if (src.kind == OperandKind::kImm) return mov_sized<MovForm::kRegImm>(dst.size);
    if (is_mem(src) && src.size == dst.size) return mov_sized<MovForm::kRegMem>(dst.size);
  } else if (is_mem(dst) && is_gpr(src) && src.size == dst.size) {
    return mov_sized<MovForm::kMemReg>(dst.size);
  }
  return nullptr;
}

}  // namespace trapscope::sim
