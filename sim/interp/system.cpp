// sim/interp/system.cpp — the handlers of the system instructions (x86/ops.def "system"
// family): far jmp/call/ret, segment-register and descriptor-table loads and stores, control
// and debug registers, MSRs, CPUID, RDTSC, CLI/STI/HLT, IRET, INT n, SYSCALL/SYSRET/SWAPGS,
// LAR/LSL/VERR/VERW. Each decodes its operands and applies the instruction's own rules; what the
// processor does for many instructions (descriptor reads and segment loads, the TSS, far
// transfers through gates, exception delivery, control-register writes, privilege checks) is in
// the processor services, sim/processor/processor.hpp, which also lists what is not modelled.
//
// Sources (Intel SDM, Vol. 3A unless noted):
//   2.8          system instruction summary; 5.10 privileged instructions (CPL 0 only)
//   5.8.7/5.8.8  SYSCALL/SYSRET (and Vol. 2 SYSCALL, SYSRET)
//   6.4.2        software interrupts; 6.12.1 and 6.14.3 IRET's return
//   Vol. 2       the pseudocode of CALL, JMP, RET, IRET, INT n, LAR, LSL, VERR/VERW, MOV (CR, DR,
//                Sreg), LGDT/SGDT, LLDT, LTR, LMSW, SMSW, RDMSR/WRMSR, CPUID, RDTSC, CLI/STI, HLT
//   Vol. 4       table 2-2 (the MSRs modelled)
#include <utility>

#include <fmt/format.h>

#include "sim/interp/handlers.hpp"
#include "sim/processor/processor.hpp"

namespace trapscope::sim {

using namespace processor;

namespace {

// Sets (E/R)SP after a stack switch or a far return, with the width of `size` bytes (the
// operand size of the instruction, or 8 in 64-bit mode): 2 → only SP changes.
void set_sp(Cpu& cpu, uint64_t value, unsigned size) {
  uint64_t& rsp = cpu.s.gpr[kRsp];
  if (size == 2) rsp = (rsp & ~0xFFFFull) | (value & 0xFFFF);
  else if (size == 4) rsp = value & 0xFFFFFFFFull;
  else rsp = value;
}

// Adds to (E/R)SP with the stack's address size (RET imm16, far return to an outer level).
void add_sp(Cpu& cpu, uint64_t delta) {
  const unsigned as = cpu.stack_address_size();
  const uint64_t sp = (cpu.s.gpr[kRsp] + delta) & mask(as);
  set_sp(cpu, sp, as);
}

// [SECTION] Far transfers (sim/processor/far_transfer.cpp; Vol. 2 JMP, CALL, RET)

// The far pointer operand of jmp/call far: ptr16:16/32 immediate or m16:16/32/64.
void far_operand(Cpu& cpu, const Instruction& insn, uint16_t* selector, uint64_t* offset) {
  const Operand& op = insn.ops[0];
  if (op.kind == OperandKind::kFarPtr) {
    *selector = op.far_selector;
    *offset = op.imm;
    return;
  }
  if (op.kind != OperandKind::kMem) raise(vec::kUD);
  const unsigned size = insn.operand_size / 8;
  const uint64_t ea = cpu.effective_address(insn, op);
  const SegReg seg = static_cast<SegReg>(op.seg);
  *offset = cpu.read(seg, ea, size);
  *selector = static_cast<uint16_t>(cpu.read(seg, (ea + size) & mask(insn.address_size / 8), 2));
}

}  // namespace

void exec_kJmpFar(Cpu& cpu, const Instruction& insn) {
  uint16_t selector;
  uint64_t offset;
  far_operand(cpu, insn, &selector, &offset);
  far_transfer(cpu, insn, FarKind::kJmp, selector, offset);
}

void exec_kCallFar(Cpu& cpu, const Instruction& insn) {
  uint16_t selector;
  uint64_t offset;
  far_operand(cpu, insn, &selector, &offset);
  far_transfer(cpu, insn, FarKind::kCall, selector, offset);
}

void exec_kRetFar(Cpu& cpu, const Instruction& insn) {
  CpuState& s = cpu.s;
  const unsigned size = insn.operand_size / 8;
  const uint64_t imm =
      insn.operand_count > 0 && insn.ops[0].kind == OperandKind::kImm ? insn.ops[0].imm & 0xFFFF : 0;
  Transaction tx(cpu);
  const uint64_t ip = cpu.pop(size);
  const uint16_t csel = static_cast<uint16_t>(cpu.pop(size));
  if (real_mode(cpu)) {
    if ((ip & mask(size)) > s.seg[kCs].limit) raise(vec::kGP, 0);
    load_real(cpu, kCs, csel);
    s.rip = ip & mask(size);
    add_sp(cpu, imm);
    tx.commit();
    return;
  }
  if (s.rflags & kVM) no_v86();
  const uint8_t cpl = cpu.cpl();
  const uint8_t rpl = csel & 3;
  Descriptor d = check_return_cs(cpu, csel, cpl);
  const bool long_mode = ia32e(cpu);
  const uint64_t rip = checked_target(segment_from(d, csel), long_mode, ip, size);
  if (rpl == cpl) {
    add_sp(cpu, imm);
    load_cs(cpu, d, csel, cpl);
    s.rip = rip;
    tx.commit();
    return;
  }
  // RETURN-TO-OUTER-PRIVILEGE-LEVEL: skip the parameters, pop SS:(E/R)SP of the caller.
  add_sp(cpu, imm);
  const uint64_t new_sp = cpu.pop(size);
  const uint16_t ss_sel = static_cast<uint16_t>(cpu.pop(size));
  load_cs(cpu, d, csel, rpl);
  load_return_ss(cpu, ss_sel, rpl, long_mode && d.l());
  set_sp(cpu, new_sp, cpu.mode64() ? 8 : size);
  add_sp(cpu, imm);
  s.rip = rip;
  clear_inaccessible_segments(cpu, rpl);
  tx.commit();
  cpu.note_ring_transition(cpl, rpl, RingCause::kFarReturn, 0);
}

// [SECTION] Segment registers

void exec_kMovToSeg(Cpu& cpu, const Instruction& insn) {
  const SegReg seg = static_cast<SegReg>(insn.ops[0].reg);
  if (seg == kCs || seg >= kSegCount) raise(vec::kUD);  // mov cs, r/m is invalid
  const uint16_t selector = static_cast<uint16_t>(cpu.read_op(insn, 1));
  load_segment(cpu, seg, selector);
  // mov ss blocks interrupts and debug traps for one instruction: no effect here.
}

void exec_kMovFromSeg(Cpu& cpu, const Instruction& insn) {
  // Register destinations are zero-extended to the operand size; memory gets 16 bits.
  cpu.write_op(insn, 0, cpu.s.seg[insn.ops[1].reg].selector);
}

void exec_kLoadFarPointer(Cpu& cpu, const Instruction& insn) {
  const SegReg seg = static_cast<SegReg>(insn.cc);
  const Operand& mem = insn.ops[1];
  if (mem.kind != OperandKind::kMem) raise(vec::kUD);
  const unsigned size = insn.ops[0].size;
  const uint64_t ea = cpu.effective_address(insn, mem);
  const SegReg ms = static_cast<SegReg>(mem.seg);
  const uint64_t offset = cpu.read(ms, ea, size);
  const uint16_t selector =
      static_cast<uint16_t>(cpu.read(ms, (ea + size) & mask(insn.address_size / 8), 2));
  Transaction tx(cpu);
  load_segment(cpu, seg, selector);
  cpu.write_op(insn, 0, offset);
  tx.commit();
}

// [SECTION] Descriptor-table registers (Vol. 2 LGDT/LIDT, SGDT/SIDT, LLDT, SLDT, LTR, STR)

namespace {

void load_table_register(Cpu& cpu, const Instruction& insn, DescriptorTable* reg) {
  require_cpl0(cpu);
  const Operand& op = insn.ops[0];
  if (op.kind != OperandKind::kMem) raise(vec::kUD);
  const uint64_t ea = cpu.effective_address(insn, op);
  const SegReg seg = static_cast<SegReg>(op.seg);
  const uint64_t am = mask(insn.address_size / 8);
  const uint16_t limit = static_cast<uint16_t>(cpu.read(seg, ea, 2));
  uint64_t base;
  if (cpu.mode64()) {
    base = cpu.read(seg, (ea + 2) & am, 8);  // 10-byte operand
    if (!canonical(base)) raise(vec::kGP, 0);
  } else {
    base = cpu.read(seg, (ea + 2) & am, 4);  // 6-byte operand: 24-bit base with o16
    if (insn.operand_size == 16) base &= 0xFFFFFF;
  }
  reg->base = base;
  reg->limit = limit;
}

void store_table_register(Cpu& cpu, const Instruction& insn, const DescriptorTable& reg) {
  check_umip(cpu);
  const Operand& op = insn.ops[0];
  if (op.kind != OperandKind::kMem) raise(vec::kUD);
  const uint64_t ea = cpu.effective_address(insn, op);
  const SegReg seg = static_cast<SegReg>(op.seg);
  const uint64_t am = mask(insn.address_size / 8);
  const unsigned base_size = cpu.mode64() ? 8 : 4;  // the full 32-bit base even with o16
  // Check both parts before writing either (a fault leaves memory unchanged).
  cpu.linear_address(seg, ea, 2 + base_size, Access::kWrite);
  cpu.write(seg, ea, 2, reg.limit);
  cpu.write(seg, (ea + 2) & am, base_size, reg.base & mask(base_size));
}

}  // namespace

void exec_kLgdt(Cpu& cpu, const Instruction& insn) { load_table_register(cpu, insn, &cpu.s.gdtr); }
void exec_kLidt(Cpu& cpu, const Instruction& insn) { load_table_register(cpu, insn, &cpu.s.idtr); }
void exec_kSgdt(Cpu& cpu, const Instruction& insn) { store_table_register(cpu, insn, cpu.s.gdtr); }
void exec_kSidt(Cpu& cpu, const Instruction& insn) { store_table_register(cpu, insn, cpu.s.idtr); }

void exec_kLldt(Cpu& cpu, const Instruction& insn) {
  require_protected(cpu);
  require_cpl0(cpu);
  const uint16_t selector = static_cast<uint16_t>(cpu.read_op(insn, 0));
  const uint32_t err = selector & kSelectorMask;
  if (err == 0) {  // a null LDT: later LDT references fault
    cpu.s.ldtr = null_segment(selector, 0);
    cpu.s.ldtr.s = 0;
    cpu.s.ldtr.type = kLdt;
    return;
  }
  if (selector & 4) raise(vec::kGP, err);  // must be in the GDT
  Descriptor d;
  if (!read_descriptor(cpu, selector, &d, ia32e(cpu) ? 16 : 8)) raise(vec::kGP, err);
  if (d.s() || d.type() != kLdt) raise(vec::kGP, err);
  if (!d.present()) raise(vec::kNP, err);
  cpu.s.ldtr = segment_from(d, selector);
  if (!ia32e(cpu)) cpu.s.ldtr.base &= 0xFFFFFFFFull;
}

void exec_kSldt(Cpu& cpu, const Instruction& insn) {
  require_protected(cpu);
  check_umip(cpu);
  cpu.write_op(insn, 0, cpu.s.ldtr.selector);
}

void exec_kLtr(Cpu& cpu, const Instruction& insn) {
  require_protected(cpu);
  require_cpl0(cpu);
  const uint16_t selector = static_cast<uint16_t>(cpu.read_op(insn, 0));
  const uint32_t err = selector & kSelectorMask;
  if (err == 0) raise(vec::kGP, 0);
  if (selector & 4) raise(vec::kGP, err);
  const bool long_mode = ia32e(cpu);
  Descriptor d;
  if (!read_descriptor(cpu, selector, &d, long_mode ? 16 : 8)) raise(vec::kGP, err);
  // An available TSS: 32/64-bit (type 9) — or 16-bit (type 1) outside IA-32e mode.
  if (d.s() || !(d.type() == kTss32Avail || (!long_mode && d.type() == kTss16Avail))) {
    raise(vec::kGP, err);
  }
  if (!d.present()) raise(vec::kNP, err);
  if (long_mode && !canonical(d.base64())) raise(vec::kGP, err);
  // Mark it busy in the GDT (type bit 1), then load TR.
  d.lo |= 2ull << 40;
  cpu.write_system(d.address + 5, 1, (d.lo >> 40) & 0xFF);
  cpu.s.tr = segment_from(d, selector);
  if (!long_mode) cpu.s.tr.base &= 0xFFFFFFFFull;
}

void exec_kStr(Cpu& cpu, const Instruction& insn) {
  require_protected(cpu);
  check_umip(cpu);
  cpu.write_op(insn, 0, cpu.s.tr.selector);
}

// [SECTION] Control registers (writes: sim/processor/control_registers.cpp; Vol. 2 MOV CR,
// LMSW, SMSW, CLTS)

void exec_kMovCr(Cpu& cpu, const Instruction& insn) {
  const bool to_cr = insn.ops[0].kind == OperandKind::kReg && insn.ops[0].reg_class == RegClass::kCr;
  const Operand& cr = to_cr ? insn.ops[0] : insn.ops[1];
  const Operand& gpr = to_cr ? insn.ops[1] : insn.ops[0];
  const unsigned n = cr.reg;
  if (n != 0 && n != 2 && n != 3 && n != 4 && n != 8) raise(vec::kUD);
  if (n == 8 && !cpu.mode64()) raise(vec::kUD);
  require_cpl0(cpu);
  CpuState& s = cpu.s;
  if (!to_cr) {
    uint64_t v = 0;
    switch (n) {
      case 0: v = s.cr0; break;
      case 2: v = s.cr2; break;
      case 3: v = s.cr3; break;
      case 4: v = s.cr4; break;
      default: v = s.cr8 & 0xF; break;
    }
    cpu.set_gpr(gpr.reg, gpr.size, v);
    return;
  }
  const uint64_t v = cpu.gpr(gpr.reg, gpr.size);
  switch (n) {
    case 0: write_cr0(cpu, v); break;
    case 2: s.cr2 = v; break;
    case 3: write_cr3(cpu, v); break;
    case 4: write_cr4(cpu, v); break;
    default:
      if (v >> 4) raise(vec::kGP, 0);
      s.cr8 = v;
      break;
  }
}

void exec_kMovDr(Cpu& cpu, const Instruction& insn) {
  // Debug registers are stored but breakpoints are not modelled. DR4/DR5 alias DR6/DR7
  // (CR4.DE is not supported, SDM 17.2.2).
  const bool to_dr = insn.ops[0].kind == OperandKind::kReg && insn.ops[0].reg_class == RegClass::kDr;
  const Operand& dr = to_dr ? insn.ops[0] : insn.ops[1];
  const Operand& gpr = to_dr ? insn.ops[1] : insn.ops[0];
  unsigned n = dr.reg;
  if (n > 7) raise(vec::kUD);
  require_cpl0(cpu);
  if (n == 4 || n == 5) n += 2;
  CpuState& s = cpu.s;
  if (!to_dr) {
    cpu.set_gpr(gpr.reg, gpr.size, s.dr[n]);
    return;
  }
  uint64_t v = cpu.gpr(gpr.reg, gpr.size);
  if ((n == 6 || n == 7) && (v >> 32)) raise(vec::kGP, 0);
  if (n == 6) v = (v | 0xFFFF0FF0ull) & ~(1ull << 12);
  if (n == 7) v = (v | 0x400) & ~((1ull << 12) | (1ull << 14) | (1ull << 15));
  s.dr[n] = v;
}

void exec_kSmsw(Cpu& cpu, const Instruction& insn) {
  check_umip(cpu);
  const Operand& op = insn.ops[0];
  const unsigned size = op.kind == OperandKind::kMem ? 2 : op.size;
  cpu.write_op(insn, 0, cpu.s.cr0 & mask(size));
}

void exec_kLmsw(Cpu& cpu, const Instruction& insn) {
  require_cpl0(cpu);
  // Loads PE, MP, EM, TS; can set PE but not clear it.
  const uint64_t v = cpu.read_op(insn, 0) & 0xF;
  const uint64_t cr0 = cpu.s.cr0;
  const uint64_t next = (cr0 & ~0xEull) | (v & 0xE) | ((v | cr0) & kCr0Pe);
  write_cr0(cpu, next);
}

void exec_kClts(Cpu& cpu, const Instruction&) {
  require_cpl0(cpu);
  cpu.s.cr0 &= ~kCr0Ts;
}

void exec_kInvlpg(Cpu& cpu, const Instruction& insn) {
  require_cpl0(cpu);
  const Operand& op = insn.ops[0];
  if (op.kind != OperandKind::kMem) raise(vec::kUD);
  const uint64_t ea = cpu.effective_address(insn, op);
  const SegReg seg = static_cast<SegReg>(op.seg);
  uint64_t la;
  if (cpu.mode64()) {
    la = ea + ((seg == kFs || seg == kGs) ? cpu.s.seg[seg].base : 0);
    if (!canonical(la)) return;  // a non-canonical address invalidates nothing (no fault)
  } else {
    la = (cpu.s.seg[seg].base + ea) & 0xFFFFFFFFull;
  }
  mmu_invlpg(cpu, la);
}

// [SECTION] MSRs (SDM 2.2.1 EFER; Vol. 4 table 2-2; Vol. 2 RDMSR/WRMSR)

void exec_kRdmsr(Cpu& cpu, const Instruction&) {
  require_cpl0(cpu);
  const CpuState& s = cpu.s;
  const uint32_t msr = static_cast<uint32_t>(cpu.gpr(kRcx, 4));
  uint64_t v;
  switch (msr) {
    case kMsrEfer: v = s.efer; break;
    case kMsrStar: v = s.star; break;
    case kMsrLstar: v = s.lstar; break;
    case kMsrCstar: v = s.cstar; break;
    case kMsrFmask: v = s.fmask; break;
    case kMsrFsBase: v = s.seg[kFs].base; break;
    case kMsrGsBase: v = s.seg[kGs].base; break;
    case kMsrKernelGsBase: v = s.kernel_gs_base; break;
    case kMsrTsc: v = s.tsc; break;
    default: raise(vec::kGP, 0);
  }
  cpu.set_gpr(kRax, 4, v & 0xFFFFFFFFull);
  cpu.set_gpr(kRdx, 4, v >> 32);
}

void exec_kWrmsr(Cpu& cpu, const Instruction&) {
  require_cpl0(cpu);
  CpuState& s = cpu.s;
  const uint32_t msr = static_cast<uint32_t>(cpu.gpr(kRcx, 4));
  const uint64_t v = (cpu.gpr(kRdx, 4) << 32) | cpu.gpr(kRax, 4);
  auto need_canonical = [](uint64_t a) {
    if (!canonical(a)) raise(vec::kGP, 0);
  };
  switch (msr) {
    case kMsrEfer: {
      if (v & ~(kEferSce | kEferLme | kEferLma | kEferNxe)) raise(vec::kGP, 0);
      // LME may not change while paging is on; LMA is read-only (SDM 9.8.5).
      if ((s.cr0 & kCr0Pg) && ((v ^ s.efer) & kEferLme)) raise(vec::kGP, 0);
      const uint64_t next = (v & ~kEferLma) | (s.efer & kEferLma);
      if ((next ^ s.efer) & kEferNxe) cpu.flush_tlb();  // cached rights depend on NXE
      s.efer = next;
      break;
    }
    case kMsrStar: s.star = v; break;
    case kMsrLstar: need_canonical(v); s.lstar = v; break;
    case kMsrCstar: need_canonical(v); s.cstar = v; break;
    case kMsrFmask: s.fmask = v & 0xFFFFFFFFull; break;
    case kMsrFsBase: need_canonical(v); s.seg[kFs].base = v; break;
    case kMsrGsBase: need_canonical(v); s.seg[kGs].base = v; break;
    case kMsrKernelGsBase: need_canonical(v); s.kernel_gs_base = v; break;
    case kMsrTsc: s.tsc = v; break;
    default: raise(vec::kGP, 0);
  }
}

// [SECTION] CPUID: a fixed table (the model's identity; deterministic on every host).
//
//   leaf 0           max basic leaf 7, vendor "TrapScopeSim" (EBX, EDX, ECX)
//   leaf 1           EAX 0x00000600 (family 6, model 0, stepping 0); EBX 0; ECX 0;
//                    EDX = PSE(3) TSC(4) MSR(5) PAE(6) PGE(13) CMOV(15) PSE-36(17)
//                    (no FPU, no CX8, no APIC, no SEP, no MMX/SSE: not implemented)
//   leaf 7 subleaf 0 EBX 0, ECX = UMIP(2), EDX 0
//   leaves 2–6       zero
//   0x80000000       max extended leaf 0x80000008
//   0x80000001       ECX = LAHF/SAHF in 64-bit mode(0); EDX = SYSCALL(11) NX(20) LM(29)
//   0x80000002–4     brand string "TrapScope deterministic x86-64 simulator"
//   0x80000008       EAX 0x3024 (36 physical, 48 linear address bits)
// Other leaves: as Intel, the data of the highest basic leaf (SDM Vol. 2 CPUID).

namespace {

struct CpuidResult {
  uint32_t a, b, c, d;
};

constexpr uint32_t chars(const char* p) {
  return static_cast<uint32_t>(static_cast<uint8_t>(p[0])) |
         static_cast<uint32_t>(static_cast<uint8_t>(p[1])) << 8 |
         static_cast<uint32_t>(static_cast<uint8_t>(p[2])) << 16 |
         static_cast<uint32_t>(static_cast<uint8_t>(p[3])) << 24;
}

CpuidResult cpuid(uint32_t leaf, uint32_t subleaf) {
  constexpr uint32_t kMaxBasic = 7, kMaxExtended = 0x80000008;
  if ((leaf > kMaxBasic && leaf < 0x80000000) || leaf > kMaxExtended) leaf = kMaxBasic;
  static const char kBrand[49] = "TrapScope deterministic x86-64 simulator";
  switch (leaf) {
    case 0: return {kMaxBasic, chars("Trap"), chars("eSim"), chars("Scop")};
    case 1: {
      constexpr uint32_t edx = (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 13) |
                               (1u << 15) | (1u << 17);
      return {0x00000600, 0, 0, edx};
    }
    case 7: return subleaf == 0 ? CpuidResult{0, 0, 1u << 2, 0} : CpuidResult{0, 0, 0, 0};
    case 0x80000000: return {kMaxExtended, 0, 0, 0};
    case 0x80000001: return {0, 0, 1u << 0, (1u << 11) | (1u << 20) | (1u << 29)};
    case 0x80000002: case 0x80000003: case 0x80000004: {
      const char* p = kBrand + 16 * (leaf - 0x80000002);
      return {chars(p), chars(p + 4), chars(p + 8), chars(p + 12)};
    }
    case 0x80000008: return {0x3024, 0, 0, 0};
    default: return {0, 0, 0, 0};
  }
}

}  // namespace

void exec_kCpuid(Cpu& cpu, const Instruction&) {
  const CpuidResult r =
      cpuid(static_cast<uint32_t>(cpu.gpr(kRax, 4)), static_cast<uint32_t>(cpu.gpr(kRcx, 4)));
  cpu.set_gpr(kRax, 4, r.a);
  cpu.set_gpr(kRbx, 4, r.b);
  cpu.set_gpr(kRcx, 4, r.c);
  cpu.set_gpr(kRdx, 4, r.d);
}

void exec_kRdtsc(Cpu& cpu, const Instruction&) {
  if ((cpu.s.cr4 & kCr4Tsd) && cpu.protected_mode() && cpu.cpl() > 0) raise(vec::kGP, 0);
  cpu.set_gpr(kRax, 4, cpu.s.tsc & 0xFFFFFFFFull);
  cpu.set_gpr(kRdx, 4, cpu.s.tsc >> 32);
}

// [SECTION] Interrupt flag and halt (SDM 6.8.1; Vol. 2 CLI, STI, HLT)

void exec_kCli(Cpu& cpu, const Instruction&) {
  if (cpu.s.rflags & kVM) no_v86();
  if (cpu.protected_mode() && cpu.cpl() > iopl(cpu)) raise(vec::kGP, 0);
  cpu.set_flag(kIF, false);
}

void exec_kSti(Cpu& cpu, const Instruction&) {
  if (cpu.s.rflags & kVM) no_v86();
  if (cpu.protected_mode() && cpu.cpl() > iopl(cpu)) raise(vec::kGP, 0);
  cpu.set_flag(kIF, true);  // the one-instruction interrupt shadow has no effect here
}

void exec_kHlt(Cpu& cpu, const Instruction&) {
  require_cpl0(cpu);
  cpu.record_exit_hlt();
}

// [SECTION] IRET (Vol. 2 IRET/IRETD/IRETQ; SDM 6.12.1, 6.14.3)

namespace {

// EFLAGS from the popped image (Vol. 2 IRET, POPF): IF only if CPL <= IOPL, IOPL (and VIF/VIP)
// only at CPL 0, with the CPL before the return; a 16-bit image only changes bits 15:0.
uint64_t iret_flags(uint64_t current, uint64_t image, unsigned size, uint8_t cpl, uint8_t iopl_now) {
  uint64_t changeable = kArithFlags | kTF | kDF | kNT;
  if (size >= 4) changeable |= kRF | kAC | kID;
  if (cpl <= iopl_now) changeable |= kIF;
  if (cpl == 0) {
    changeable |= kIOPL;
    if (size >= 4) changeable |= kVIF | kVIP;
  }
  if (size == 2) changeable &= 0xFFFF;
  return ((current & ~changeable) | (image & changeable)) | 0x2;
}

}  // namespace

void exec_kIret(Cpu& cpu, const Instruction& insn) {
  CpuState& s = cpu.s;
  const unsigned size = insn.operand_size / 8;
  Transaction tx(cpu);
  if (real_mode(cpu)) {
    const uint64_t ip = cpu.pop(size);
    const uint16_t csel = static_cast<uint16_t>(cpu.pop(size));
    const uint64_t fl = cpu.pop(size);
    if ((ip & mask(size)) > s.seg[kCs].limit) raise(vec::kGP, 0);
    load_real(cpu, kCs, csel);
    s.rip = ip & mask(size);
    if (size == 2) {
      s.rflags = (s.rflags & ~0xFFFFull) | (fl & 0x7FD5) | 0x2;
    } else {
      // tempEFLAGS AND 257FD5H OR (EFLAGS AND 1A0000H): VM, VIF, VIP keep their values.
      s.rflags = (fl & 0x257FD5) | (s.rflags & 0x1A0000) | 0x2;
    }
    tx.commit();
    return;
  }
  if (s.rflags & kVM) no_v86();
  const bool long_mode = ia32e(cpu);
  if (s.rflags & kNT) {
    if (long_mode) raise(vec::kGP, 0);
    throw Unsupported("iret with NT=1 (return from a nested task)");
  }
  const uint8_t cpl = cpu.cpl();
  const bool from_64 = cpu.mode64();
  const uint64_t ip = cpu.pop(size);
  const uint16_t csel = static_cast<uint16_t>(cpu.pop(size));
  const uint64_t fl = cpu.pop(size);
  if ((fl & kVM) && cpl == 0 && !long_mode && size == 4) {
    throw Unsupported("iret to virtual-8086 mode");
  }
  Descriptor d = check_return_cs(cpu, csel, cpl);
  const uint8_t rpl = csel & 3;
  const bool to_64 = long_mode && d.l();
  const uint64_t rip = checked_target(segment_from(d, csel), long_mode, ip, size);
  // 64-bit mode always pops SS:RSP; otherwise only on a return to an outer level.
  const bool pop_stack = from_64 || rpl > cpl;
  uint64_t new_sp = 0;
  uint16_t ss_sel = 0;
  if (pop_stack) {
    new_sp = cpu.pop(size);
    ss_sel = static_cast<uint16_t>(cpu.pop(size));
  }
  const uint64_t flags = iret_flags(s.rflags, fl, size, cpl, iopl(cpu));
  load_cs(cpu, d, csel, rpl);
  if (pop_stack) {
    load_return_ss(cpu, ss_sel, rpl, to_64);
    set_sp(cpu, new_sp, to_64 ? 8 : size);
  }
  s.rip = rip;
  s.rflags = flags;
  if (rpl > cpl) clear_inaccessible_segments(cpu, rpl);
  tx.commit();
  if (rpl != cpl) cpu.note_ring_transition(cpl, rpl, RingCause::kIret, 0);
}

// [SECTION] Software interrupts (SDM 6.4.2; Vol. 2 INT n/INTO/INT3)

void exec_kInt(Cpu& cpu, const Instruction& insn) {
  if (cpu.s.rflags & kVM) no_v86();
  const uint8_t vector = static_cast<uint8_t>(insn.ops[0].imm);
  deliver(cpu, vector, EventSource::kSoftware, false, 0, cpu.s.rip);
}

void exec_kInt3(Cpu& cpu, const Instruction&) {
  if (cpu.s.rflags & kVM) no_v86();
  deliver(cpu, vec::kBP, EventSource::kSoftware, false, 0, cpu.s.rip);
}

void exec_kInto(Cpu& cpu, const Instruction&) {
  if (cpu.mode64()) raise(vec::kUD);
  if (cpu.s.rflags & kVM) no_v86();
  if (cpu.flag(kOF)) deliver(cpu, vec::kOF, EventSource::kSoftware, false, 0, cpu.s.rip);
}

// [SECTION] SYSCALL, SYSRET, SWAPGS (SDM 5.8.8; Vol. 2)

void exec_kSyscall(Cpu& cpu, const Instruction&) {
  CpuState& s = cpu.s;
  if (!cpu.mode64() || !(s.efer & kEferSce)) raise(vec::kUD);
  const uint8_t from = cpu.cpl();
  const uint16_t sel = static_cast<uint16_t>(s.star >> 32);
  s.gpr[kRcx] = s.rip;
  s.gpr[kR11] = s.rflags & ~kRF;
  s.rip = s.lstar;
  s.rflags = (s.rflags & ~(s.fmask | kRF)) | 0x2;
  // Flat 64-bit CS and flat SS, DPL 0 (fixed values, not read from the GDT).
  Segment cs;
  cs.selector = sel & kSelectorMask;
  cs.base = 0;
  cs.limit = 0xFFFFFFFF;
  cs.type = 0xB;
  cs.s = 1;
  cs.dpl = 0;
  cs.present = 1;
  cs.l = 1;
  cs.db = 0;
  cs.g = 1;
  Segment ss = cs;
  ss.selector = static_cast<uint16_t>((sel + 8) & kSelectorMask);
  ss.type = 0x3;
  ss.l = 0;
  ss.db = 1;
  s.seg[kCs] = cs;
  s.seg[kSs] = ss;
  if (from != 0) cpu.note_ring_transition(from, 0, RingCause::kSyscall, 0);
}

void exec_kSysret(Cpu& cpu, const Instruction& insn) {
  CpuState& s = cpu.s;
  if (!cpu.mode64() || !(s.efer & kEferSce)) raise(vec::kUD);
  require_cpl0(cpu);
  const bool to_64 = insn.operand_size == 64;
  const uint16_t sel = static_cast<uint16_t>(s.star >> 48);
  uint64_t rip;
  if (to_64) {
    rip = s.gpr[kRcx];
    if (!canonical(rip)) raise(vec::kGP, 0);
  } else {
    rip = s.gpr[kRcx] & 0xFFFFFFFFull;
  }
  Segment cs;
  cs.selector = static_cast<uint16_t>((to_64 ? sel + 16 : sel) | 3);
  cs.base = 0;
  cs.limit = 0xFFFFFFFF;
  cs.type = 0xB;
  cs.s = 1;
  cs.dpl = 3;
  cs.present = 1;
  cs.l = to_64;
  cs.db = !to_64;
  cs.g = 1;
  Segment ss = cs;
  ss.selector = static_cast<uint16_t>((sel + 8) | 3);
  ss.type = 0x3;
  ss.l = 0;
  ss.db = 1;
  s.rflags = (s.gpr[kR11] & 0x3C7FD7) | 0x2;
  s.seg[kCs] = cs;
  s.seg[kSs] = ss;
  s.rip = rip;
  cpu.note_ring_transition(0, 3, RingCause::kSysret, 0);
}

void exec_kSwapgs(Cpu& cpu, const Instruction&) {
  if (!cpu.mode64()) raise(vec::kUD);
  require_cpl0(cpu);
  std::swap(cpu.s.seg[kGs].base, cpu.s.kernel_gs_base);
}

// [SECTION] LAR, LSL, VERR, VERW (Vol. 2): ZF says whether the segment is visible at the
// current CPL and the selector's RPL; they never fault on a bad selector.

namespace {

// Reads the descriptor for LAR/LSL/VERR/VERW; false (ZF = 0) if null or outside the table.
bool probe(Cpu& cpu, uint16_t selector, Descriptor* d) {
  if ((selector & kSelectorMask) == 0) return false;
  return read_descriptor(cpu, selector, d);
}

// The DPL rule of all four: conforming code is always visible; anything else needs
// DPL >= CPL and DPL >= RPL.
bool visible(const Cpu& cpu, const Descriptor& d, uint16_t selector) {
  if (d.conforming()) return true;
  return d.dpl() >= cpu.cpl() && d.dpl() >= (selector & 3);
}

}  // namespace

void exec_kLar(Cpu& cpu, const Instruction& insn) {
  require_protected(cpu);
  const uint16_t selector = static_cast<uint16_t>(cpu.read_op(insn, 1));
  Descriptor d;
  bool ok = probe(cpu, selector, &d);
  if (ok && !d.s()) {
    // System types LAR accepts (Vol. 2 LAR table): LDT, TSS (avail/busy), call gates; in
    // IA-32e mode only the 64-bit forms; outside it also 16-bit TSS/gates and task gates.
    const uint8_t t = d.type();
    ok = ia32e(cpu) ? (t == kLdt || t == kTss32Avail || t == kTss32Busy || t == kCallGate32)
                    : (t == kTss16Avail || t == kLdt || t == kTss16Busy || t == kCallGate16 ||
                       t == kTaskGate || t == kTss32Avail || t == kTss32Busy ||
                       t == kCallGate32);
  }
  if (ok) ok = visible(cpu, d, selector);
  cpu.set_flag(kZF, ok);
  if (!ok) return;
  const uint64_t rights = (d.lo >> 32) & 0x00F0FF00;
  const Operand& dst = insn.ops[0];
  cpu.set_gpr(dst.reg, dst.size, dst.size == 2 ? rights & 0xFF00 : rights);
}

void exec_kLsl(Cpu& cpu, const Instruction& insn) {
  require_protected(cpu);
  const uint16_t selector = static_cast<uint16_t>(cpu.read_op(insn, 1));
  Descriptor d;
  bool ok = probe(cpu, selector, &d);
  if (ok && !d.s()) {
    const uint8_t t = d.type();  // LDT and TSS only (Vol. 2 LSL table)
    ok = ia32e(cpu) ? (t == kLdt || t == kTss32Avail || t == kTss32Busy)
                    : (t == kTss16Avail || t == kLdt || t == kTss16Busy || t == kTss32Avail ||
                       t == kTss32Busy);
  }
  if (ok) ok = visible(cpu, d, selector);
  cpu.set_flag(kZF, ok);
  if (!ok) return;
  const Operand& dst = insn.ops[0];
  cpu.set_gpr(dst.reg, dst.size, d.limit());
}

void exec_kVerr(Cpu& cpu, const Instruction& insn) {
  require_protected(cpu);
  const uint16_t selector = static_cast<uint16_t>(cpu.read_op(insn, 0));
  Descriptor d;
  const bool ok = probe(cpu, selector, &d) && d.s() && d.readable() && visible(cpu, d, selector);
  cpu.set_flag(kZF, ok);
}

void exec_kVerw(Cpu& cpu, const Instruction& insn) {
  require_protected(cpu);
  const uint16_t selector = static_cast<uint16_t>(cpu.read_op(insn, 0));
  Descriptor d;
  const bool ok = probe(cpu, selector, &d) && d.writable() && visible(cpu, d, selector);
  cpu.set_flag(kZF, ok);
}

void exec_kUd(Cpu&, const Instruction&) { raise(vec::kUD); }

}  // namespace trapscope::sim
