// vmm/kvm_extended_state.hpp — a vCPU's state beyond kvm_regs/kvm_sregs, in x86 form: the MSRs
// and debug registers of x86::CpuState, the x87/SSE state and the pending events
// (x86/extended_state.hpp). KVM API 4.18/4.19 KVM_GET/SET_MSRS, 4.22/4.23 KVM_GET/SET_FPU,
// 4.31/4.32 KVM_GET/SET_VCPU_EVENTS, 4.33/4.34 KVM_GET/SET_DEBUGREGS.
#pragma once

#include <linux/kvm.h>

#include "vmm/kvm.hpp"
#include "x86/extended_state.hpp"
#include "x86/state.hpp"

namespace trapscope::vmm {

// Reads STAR, LSTAR, CSTAR, SFMASK and KernelGSbase (KVM_GET_MSRS) and DR0-3, DR6, DR7
// (KVM_GET_DEBUGREGS) into *c; EFER and the FS/GS bases come with KVM_GET_SREGS. The TSC is left
// as it is (KVM's is the host's clock, the simulator's counts instructions).
void read_msrs_and_debug(const Vcpu& vcpu, x86::CpuState* c);
void write_msrs_and_debug(Vcpu& vcpu, const x86::CpuState& c);

x86::FpuState from_kvm(const kvm_fpu& f);
kvm_fpu to_kvm(const x86::FpuState& f);
x86::PendingEvents from_kvm(const kvm_vcpu_events& e);
// Writes `p` into the event fields of e (the others, e.g. SIPI and SMM, are left as they are);
// sets the flags that make KVM take the shadow and the NMI state.
void to_kvm(const x86::PendingEvents& p, kvm_vcpu_events* e);

}  // namespace trapscope::vmm
