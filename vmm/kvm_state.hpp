// vmm/kvm_state.hpp — KVM's register structures ↔ the architectural state of x86/state.hpp.
//
// KVM API 4.11–4.14 (KVM_GET/SET_REGS, KVM_GET/SET_SREGS): `struct kvm_segment` carries a
// segment register's hidden part field for field as x86::Segment does (SDM Vol. 3A 3.4.3).
// The CPL and mode of a kvm_sregs come from x86/mode.hpp, like the simulator's.
#pragma once

#include <linux/kvm.h>

#include "x86/mode.hpp"
#include "x86/state.hpp"

namespace trapscope::vmm {

x86::Segment from_kvm(const kvm_segment& k);
kvm_segment to_kvm(const x86::Segment& s);

// The registers in x86 form (MSRs other than EFER are not read: they stay 0).
x86::CpuState from_kvm(const kvm_regs& r, const kvm_sregs& s);
// Writes `c` into r and s (the fields of s that CpuState does not hold are left as they are).
void to_kvm(const x86::CpuState& c, kvm_regs* r, kvm_sregs* s);

inline uint8_t cpl_of(const kvm_sregs& s, uint64_t rflags) {
  return x86::cpl_of(s.cr0, rflags, s.ss.dpl);
}
inline x86::CpuMode mode_of(const kvm_sregs& s, uint64_t rflags) {
  return x86::mode_of(s.cr0, s.efer, rflags, s.cs.l, s.cs.db);
}

}  // namespace trapscope::vmm
