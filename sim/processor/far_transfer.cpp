// sim/processor/far_transfer.cpp — transfers of control between code segments: far jmp/call
// directly to a code segment or through a call gate (with the stack switch to a more privileged
// level), and the checks of the CS and SS a far return or iret pops (declared and documented in
// sim/processor/processor.hpp). The handlers of jmp far, call far, retf and iret
// (sim/interp/system.cpp) decode their operands and call these.
//
// Sources (Intel SDM Vol. 3A): 5.8.1–5.8.2 (direct far transfers, conforming and non-conforming
// code), 5.8.3 and 5.8.3.1 (call gates; 16-byte gates in IA-32e mode), 5.8.4–5.8.6 (gate
// privilege checks, CALL-TO-MORE-PRIVILEGE stack switch, parameter copy), 20.1.1 (real mode);
// Vol. 2 JMP, CALL, RET and IRET pseudocode.
#include "sim/processor/processor.hpp"

namespace trapscope::sim::processor {

// [SECTION] Targets and returns

// The target RIP of a far transfer to code segment `cs`: 64-bit code takes the whole offset
// (it must be canonical); other code is limited to the operand size and checked against the
// segment limit (#GP(0)).
uint64_t checked_target(const Segment& cs, bool long_mode, uint64_t offset, unsigned size) {
  if (long_mode && cs.l) {
    if (!canonical(offset)) raise(vec::kGP, 0);
    return offset;
  }
  offset &= mask(size > 4 ? 4 : size);
  if (offset > cs.limit) raise(vec::kGP, 0);
  return offset;
}

// Checks of the CS popped by RET/IRET (Vol. 2 RET "PROTECTED-MODE"): returns its descriptor.
Descriptor check_return_cs(Cpu& cpu, uint16_t csel, uint8_t cpl) {
  const uint32_t err = csel & kSelectorMask;
  const uint8_t rpl = csel & 3;
  if (err == 0) raise(vec::kGP, 0);
  Descriptor d;
  if (!read_descriptor(cpu, csel, &d)) raise(vec::kGP, err);
  if (!d.code() || rpl < cpl) raise(vec::kGP, err);
  if (d.conforming() ? d.dpl() > rpl : d.dpl() != rpl) raise(vec::kGP, err);
  if (!d.present()) raise(vec::kNP, err);
  if (ia32e(cpu) && d.l() && d.db()) raise(vec::kGP, err);
  return d;
}

// The new SS of a far return or iret to an outer level (or of iretq in 64-bit mode): checks
// per Vol. 2 RET/IRET; a null SS is allowed only when returning to 64-bit code at RPL < 3.
void load_return_ss(Cpu& cpu, uint16_t ss_sel, uint8_t new_cpl, bool to_64bit) {
  const uint32_t err = ss_sel & kSelectorMask;
  if (err == 0) {
    if (!to_64bit || new_cpl == 3 || (ss_sel & 3) != new_cpl) raise(vec::kGP, 0);
    cpu.s.seg[kSs] = null_segment(ss_sel, new_cpl);
    return;
  }
  Descriptor d;
  if (!read_descriptor(cpu, ss_sel, &d)) raise(vec::kGP, err);
  if ((ss_sel & 3) != new_cpl || !d.writable() || d.dpl() != new_cpl) raise(vec::kGP, err);
  if (!d.present()) raise(vec::kSS, err);
  mark_accessed(cpu, d);
  cpu.s.seg[kSs] = segment_from(d, ss_sel);
}

// [SECTION] Far jmp and call

namespace {

void far_real(Cpu& cpu, FarKind kind, uint16_t selector, uint64_t offset, unsigned size) {
  CpuState& s = cpu.s;
  if (kind == FarKind::kCall) {
    cpu.push(s.seg[kCs].selector, size);
    cpu.push(s.rip & mask(size), size);
  }
  offset &= mask(size);
  if (offset > s.seg[kCs].limit) raise(vec::kGP, 0);  // the limit CS keeps (64 KiB normally)
  load_real(cpu, kCs, selector);
  s.rip = offset;
}

// Reads the upper half of a 16-byte descriptor already read with 8 bytes.
bool widen_descriptor(Cpu& cpu, uint16_t selector, Descriptor* d) {
  return read_descriptor(cpu, selector, d, 16);
}

}  // namespace

// Direct far jmp/call to a code segment, or through a call gate (SDM 5.8.1–5.8.6).
void far_transfer(Cpu& cpu, const Instruction& insn, FarKind kind, uint16_t selector,
                  uint64_t offset) {
  CpuState& s = cpu.s;
  const unsigned size = insn.operand_size / 8;
  Transaction tx(cpu);
  if (real_mode(cpu)) {
    far_real(cpu, kind, selector, offset, size);
    tx.commit();
    return;
  }
  if (s.rflags & kVM) no_v86();
  const bool long_mode = ia32e(cpu);
  const uint8_t cpl = cpu.cpl();
  const uint8_t rpl = selector & 3;
  const uint32_t err = selector & kSelectorMask;
  if (err == 0) raise(vec::kGP, 0);
  Descriptor d;
  if (!read_descriptor(cpu, selector, &d)) raise(vec::kGP, err);

  if (d.s()) {
    // A code segment: conforming needs DPL <= CPL; non-conforming RPL <= CPL and DPL = CPL.
    if (!d.code()) raise(vec::kGP, err);
    if (d.conforming() ? d.dpl() > cpl : (rpl > cpl || d.dpl() != cpl)) raise(vec::kGP, err);
    if (!d.present()) raise(vec::kNP, err);
    if (long_mode && d.l() && d.db()) raise(vec::kGP, err);
    const Segment target = segment_from(d, selector);
    const uint64_t rip = checked_target(target, long_mode, offset, size);
    if (kind == FarKind::kCall) {
      cpu.push(s.seg[kCs].selector, size);
      cpu.push(s.rip & mask(size), size);
    }
    load_cs(cpu, d, selector, cpl);
    s.rip = rip;
    tx.commit();
    return;
  }

  // A system descriptor: call gate, or task switch (not modelled).
  const uint8_t type = d.type();
  if (type == kTaskGate || type == kTss16Avail || type == kTss32Avail) {
    if (long_mode) raise(vec::kGP, err);
    throw Unsupported("far jmp/call to a TSS or task gate (hardware task switching)");
  }
  if (!(type == kCallGate32 || (!long_mode && type == kCallGate16))) raise(vec::kGP, err);
  if (d.dpl() < cpl || d.dpl() < rpl) raise(vec::kGP, err);
  if (!d.present()) raise(vec::kNP, err);
  if (long_mode) {
    // 64-bit call gates are 16 bytes; the upper type field must be 0 (SDM 5.8.3.1).
    if (!widen_descriptor(cpu, selector, &d)) raise(vec::kGP, err);
    if ((d.hi >> 40) & 0x1F) raise(vec::kGP, err);
  }
  const uint16_t csel = d.gate_selector();
  const uint32_t cerr = csel & kSelectorMask;
  if (cerr == 0) raise(vec::kGP, 0);
  Descriptor code;
  if (!read_descriptor(cpu, csel, &code)) raise(vec::kGP, cerr);
  if (!code.code() || code.dpl() > cpl) raise(vec::kGP, cerr);
  if (kind == FarKind::kJmp && !code.conforming() && code.dpl() != cpl) raise(vec::kGP, cerr);
  if (!code.present()) raise(vec::kNP, cerr);
  if (long_mode && (!code.l() || code.db())) raise(vec::kGP, cerr);

  const unsigned gate_size = long_mode ? 8 : (type == kCallGate32 ? 4 : 2);
  const uint64_t gate_offset =
      long_mode ? d.gate_offset64() : (gate_size == 4 ? d.gate_offset32() : d.lo & 0xFFFF);
  const Segment target_cs = segment_from(code, csel);
  const uint64_t rip = checked_target(target_cs, long_mode, gate_offset, gate_size);
  const uint16_t old_cs = s.seg[kCs].selector;
  const uint64_t old_rip = s.rip;

  if (kind == FarKind::kCall && !code.conforming() && code.dpl() < cpl) {
    // CALL-TO-MORE-PRIVILEGE (SDM 5.8.5, 5.8.6): switch to the stack of the new CPL.
    const uint8_t new_cpl = code.dpl();
    const uint16_t old_ss = s.seg[kSs].selector;
    const uint64_t old_rsp = s.gpr[kRsp];
    if (long_mode) {
      uint64_t rsp = tss64_rsp(cpu, new_cpl, 0);
      if (!canonical(rsp)) raise(vec::kSS, 0);
      s.seg[kSs] = null_segment(new_cpl, new_cpl);
      load_cs(cpu, code, csel, new_cpl);
      s.gpr[kRsp] = rsp;
      cpu.push(old_ss, 8);
      cpu.push(old_rsp, 8);
      cpu.push(old_cs, 8);
      cpu.push(old_rip, 8);
    } else {
      // Copy the gate's parameter count of words/dwords from the caller's stack.
      const unsigned count = d.gate_params();
      uint64_t params[32];
      const unsigned old_as = cpu.stack_address_size();
      for (unsigned i = 0; i < count; ++i) {
        params[i] = cpu.read(kSs, (old_rsp + i * gate_size) & mask(old_as), gate_size);
      }
      LegacyStack st = legacy_stack_for(cpu, new_cpl, new_cpl, 0);
      load_legacy_stack(cpu, st);
      load_cs(cpu, code, csel, new_cpl);
      cpu.push(old_ss, gate_size);
      cpu.push(old_rsp & mask(gate_size), gate_size);
      for (unsigned i = count; i-- > 0;) cpu.push(params[i], gate_size);
      cpu.push(old_cs, gate_size);
      cpu.push(old_rip & mask(gate_size), gate_size);
    }
    s.rip = rip;
    tx.commit();
    cpu.note_ring_transition(cpl, new_cpl, RingCause::kFarCall, 0);
    return;
  }
  if (kind == FarKind::kCall) {
    cpu.push(old_cs, gate_size);
    cpu.push(old_rip & mask(gate_size), gate_size);
  }
  load_cs(cpu, code, csel, cpl);
  s.rip = rip;
  tx.commit();
}

}  // namespace trapscope::sim::processor
