// x86/extended_state.hpp — processor state beyond x86::CpuState that a snapshot carries when the
// engine has it: the x87/SSE state and the events pending delivery. The KVM backend reads them
// (KVM API 4.22 KVM_GET_FPU, 4.31 KVM_GET_VCPU_EVENTS); the simulator models neither (it has no
// FPU/SSE instructions and no interrupt sources), so its snapshots leave them out.
#pragma once

#include <cstdint>

namespace trapscope::x86 {

// The x87 and SSE registers in FXSAVE terms (SDM Vol. 1 10.5.1, Table 10-2): each ST(i) is 80
// bits in 16 bytes; the tag word is FXSAVE's abridged one (a bit per register, 1 = valid).
struct FpuState {
  uint8_t st[8][16] = {};
  uint16_t fcw = 0x37F, fsw = 0;
  uint8_t ftw = 0;
  uint16_t last_opcode = 0;
  uint64_t last_ip = 0, last_dp = 0;
  uint8_t xmm[16][16] = {};
  uint32_t mxcsr = 0x1F80;
  bool operator==(const FpuState&) const = default;
};

// Events that the processor has accepted but not yet delivered, and the interrupt shadow
// (SDM Vol. 3A 6.8.3: after `mov ss`/`pop ss`/`sti` no interrupt until the next instruction):
// what KVM_GET_VCPU_EVENTS reports (struct kvm_vcpu_events).
struct PendingEvents {
  bool exception_injected = false, exception_pending = false, exception_has_error_code = false;
  uint8_t exception_vector = 0;
  uint32_t exception_error_code = 0;
  bool interrupt_injected = false, interrupt_soft = false;
  uint8_t interrupt_vector = 0;
  uint8_t interrupt_shadow = 0;  // KVM_X86_SHADOW_INT_MOV_SS (1) | KVM_X86_SHADOW_INT_STI (2)
  bool nmi_injected = false, nmi_pending = false, nmi_masked = false;
  bool operator==(const PendingEvents&) const = default;
  // True when something is waiting to be delivered (the shadow alone is not an event).
  bool any() const {
    return exception_injected || exception_pending || interrupt_injected || nmi_injected ||
           nmi_pending;
  }
};

}  // namespace trapscope::x86
