#include "platform/exit.hpp"

#include <linux/kvm.h>

namespace trapscope::platform {

uint32_t kvm_exit_reason(const VcpuExit& exit) {
  struct Visitor {
    uint32_t operator()(const ExitIoIn&) const { return KVM_EXIT_IO; }
    uint32_t operator()(const ExitIoOut&) const { return KVM_EXIT_IO; }
    uint32_t operator()(const ExitMmioRead&) const { return KVM_EXIT_MMIO; }
    uint32_t operator()(const ExitMmioWrite&) const { return KVM_EXIT_MMIO; }
    uint32_t operator()(const ExitHlt&) const { return KVM_EXIT_HLT; }
    uint32_t operator()(const ExitShutdown&) const { return KVM_EXIT_SHUTDOWN; }
    uint32_t operator()(const ExitInternalError&) const { return KVM_EXIT_INTERNAL_ERROR; }
    uint32_t operator()(const ExitFailEntry&) const { return KVM_EXIT_FAIL_ENTRY; }
    uint32_t operator()(const ExitDebug&) const { return KVM_EXIT_DEBUG; }
    uint32_t operator()(const ExitSystemEvent&) const { return KVM_EXIT_SYSTEM_EVENT; }
    uint32_t operator()(const ExitInterrupted&) const { return KVM_EXIT_INTR; }
    uint32_t operator()(const ExitOther& o) const { return o.reason; }
  };
  return std::visit(Visitor{}, exit);
}

}  // namespace trapscope::platform
