// sim/processor/tss.cpp — the stacks the processor takes from the task-state segment on a
// privilege change: SSn:ESPn of a 32- or 16-bit TSS with the checks of the new stack segment,
// RSPn and ISTn of the 64-bit TSS (declared and documented in sim/processor/processor.hpp).
// Task switches are not modelled.
//
// Sources (Intel SDM Vol. 3A): 7.2.1 (32-bit TSS), 7.6 (16-bit TSS), 7.7 (64-bit TSS), 6.12.1
// (the stack switch of a protected-mode delivery and its #TS/#SS checks), 6.14.4 and 6.14.5
// (64-bit stack switch, IST), 5.8.5 (call-gate stack switch).
#include "sim/processor/processor.hpp"

namespace trapscope::sim::processor {
namespace {

// Reads `size` bytes at `offset` in the current TSS; #TS(TR selector) beyond its limit.
uint64_t read_tss(Cpu& cpu, uint32_t offset, unsigned size, uint32_t ext) {
  const Segment& tr = cpu.s.tr;
  if (tr.unusable || !tr.present || offset + size - 1 > tr.limit) {
    raise(vec::kTS, (tr.selector & kSelectorMask) | ext);
  }
  return cpu.read_system(system_linear(cpu, tr.base, offset), size);
}

}  // namespace

// SSn:ESPn of a 32-bit TSS at 4 + 8n, of a 16-bit TSS at 2 + 4n (SDM 7.2.1, 7.6).
LegacyStack legacy_stack_for(Cpu& cpu, uint8_t n, uint8_t new_cpl, uint32_t ext) {
  LegacyStack st{};
  const bool tss32 = (cpu.s.tr.type & 0x8) != 0;
  if (tss32) {
    st.esp = static_cast<uint32_t>(read_tss(cpu, 4 + 8 * n, 4, ext));
    st.ss = static_cast<uint16_t>(read_tss(cpu, 8 + 8 * n, 2, ext));
  } else {
    st.esp = static_cast<uint32_t>(read_tss(cpu, 2 + 4 * n, 2, ext));
    st.ss = static_cast<uint16_t>(read_tss(cpu, 4 + 4 * n, 2, ext));
  }
  const uint32_t err = (st.ss & kSelectorMask) | ext;
  if ((st.ss & kSelectorMask) == 0) raise(vec::kTS, ext);
  if (!read_descriptor(cpu, st.ss, &st.desc)) raise(vec::kTS, err);
  if ((st.ss & 3) != new_cpl || st.desc.dpl() != new_cpl || !st.desc.writable()) {
    raise(vec::kTS, err);
  }
  if (!st.desc.present()) raise(vec::kSS, err);
  return st;
}

void load_legacy_stack(Cpu& cpu, LegacyStack& st) {
  mark_accessed(cpu, st.desc);
  cpu.s.seg[kSs] = segment_from(st.desc, st.ss);
  cpu.s.gpr[kRsp] = st.esp;  // ESP (the upper half of RSP is zero outside IA-32e mode)
}

// RSPn or ISTn of the 64-bit TSS (SDM 7.7, 6.14.5).
uint64_t tss64_rsp(Cpu& cpu, uint8_t n, uint32_t ext) { return read_tss(cpu, 4 + 8 * n, 8, ext); }
uint64_t tss64_ist(Cpu& cpu, uint8_t n, uint32_t ext) {
  return read_tss(cpu, 0x24 + 8 * (n - 1), 8, ext);
}

}  // namespace trapscope::sim::processor
