#include "trace/event.hpp"

#include "trace/limits.hpp"

namespace trapscope::trace {

std::string_view to_string(EventType type) {
  switch (type) {
#define TRAPSCOPE_EVENT(Id, number, Struct, name, label) \
  case EventType::Id: return #name;
#include "trace/events.def"
    case EventType::kMax: break;
  }
  return "?";
}

std::string_view event_label(EventType type) {
  switch (type) {
#define TRAPSCOPE_EVENT(Id, number, Struct, name, label) \
  case EventType::Id: return label;
#include "trace/events.def"
    case EventType::kMax: break;
  }
  return "?";
}

std::optional<EventType> parse_event_type(std::string_view text) {
#define TRAPSCOPE_EVENT(Id, number, Struct, name, label) \
  if (text == #name) return EventType::Id;
#include "trace/events.def"
  return std::nullopt;
}

std::string_view to_string(VirtTechnique technique) {
  switch (technique) {
    case VirtTechnique::kTrapEmulate: return "trap-emulate";
    case VirtTechnique::kVt: return "vt";
    case VirtTechnique::kPv: return "pv";
  }
  return "?";
}

std::string_view to_string(BtKind kind) {
  switch (kind) {
    case BtKind::kIdent: return "IDENT";
    case BtKind::kPcRelative: return "pc-relative";
    case BtKind::kDirectBranch: return "direct-branch";
    case BtKind::kIndirectBranch: return "indirect-branch";
    case BtKind::kInCache: return "in-cache";
    case BtKind::kCallout: return "callout";
    case BtKind::kAdaptive: return "adaptive-callout";
    case BtKind::kMax: break;
  }
  return "?";
}

std::string_view vmx_exit_reason_name(uint32_t reason) { return x86::vmx_exit_reason_name(reason); }

bool is_vt_exit(const EventHeader& e) {
  return e.type == EventType::kVmTransition && !(e.flags & kVirtFlagEntry);
}

std::string_view exit_reason_name(uint32_t reason) {
  // Names as in <linux/kvm.h> KVM_EXIT_<NAME> (KVM API 5, "struct kvm_run").
  static constexpr std::string_view kNames[] = {
      "UNKNOWN", "EXCEPTION", "IO", "HYPERCALL", "DEBUG", "HLT", "MMIO", "IRQ_WINDOW_OPEN",
      "SHUTDOWN", "FAIL_ENTRY", "INTR", "SET_TPR", "TPR_ACCESS", "S390_SIEIC", "S390_RESET",
      "DCR", "NMI", "INTERNAL_ERROR", "OSI", "PAPR_HCALL", "S390_UCONTROL", "WATCHDOG",
      "S390_TSCH", "EPR", "SYSTEM_EVENT", "S390_STSI", "IOAPIC_EOI", "HYPERV", "ARM_NISV",
      "X86_RDMSR", "X86_WRMSR", "DIRTY_RING_FULL", "AP_RESET_HOLD", "X86_BUS_LOCK", "XEN",
      "RISCV_SBI", "RISCV_CSR", "NOTIFY"};
  return reason < std::size(kNames) ? kNames[reason] : "?";
}

std::string_view to_string(ShadowAction action) {
  switch (action) {
    case ShadowAction::kHiddenFault: return "hidden page fault";
    case ShadowAction::kTrueFault: return "true page fault";
    case ShadowAction::kPtWrite: return "page-table write";
    case ShadowAction::kCr3Write: return "CR3 write";
    case ShadowAction::kInvlpg: return "invlpg";
    case ShadowAction::kWriteProtect: return "write-protect";
    case ShadowAction::kFlushAll: return "flush all";
    case ShadowAction::kVmmWrite: return "hypercall page-table write";
  }
  return "?";
}

std::string_view to_string(RingCause cause) {
  switch (cause) {
    case RingCause::kException: return "exception";
    case RingCause::kInterrupt: return "interrupt";
    case RingCause::kSoftwareInt: return "int";
    case RingCause::kSyscall: return "syscall";
    case RingCause::kSysret: return "sysret";
    case RingCause::kIret: return "iret";
    case RingCause::kFarCall: return "far call";
    case RingCause::kFarReturn: return "far return";
    case RingCause::kFarJump: return "far jump";
    case RingCause::kSysenter: return "sysenter";
    case RingCause::kSysexit: return "sysexit";
  }
  return "?";
}

// The limit texts below name the sizes of trace/limits.hpp.
static_assert(kConsoleLimitBytes == size_t{64} << 20 && kRecorderLimitBytes == size_t{256} << 20,
              "update the kConsoleLimit / kEventLimit texts of to_string(RunEndReason)");

std::string_view to_string(RunEndReason reason) {
  switch (reason) {
    case RunEndReason::kHalted: return "guest halted";
    case RunEndReason::kGuestExit: return "guest exit code";
    case RunEndReason::kTripleFault: return "triple fault";
    case RunEndReason::kEmulationFailure: return "emulation failure";
    case RunEndReason::kFailEntry: return "VM entry failed";
    case RunEndReason::kTimeLimit: return "time limit";
    case RunEndReason::kExitLimit: return "exit-count limit";
    case RunEndReason::kUnhandledExit: return "unhandled VM exit";
    case RunEndReason::kDebug: return "debug exit";
    case RunEndReason::kStopped: return "stopped";
    case RunEndReason::kInternalError: return "KVM internal error";
    case RunEndReason::kInstructionLimit: return "instruction limit";
    case RunEndReason::kUnsupported: return "unsupported instruction";
    case RunEndReason::kBreakpoint: return "breakpoint";
    case RunEndReason::kStep: return "single step";
    case RunEndReason::kEventMatched: return "event matched";
    case RunEndReason::kConsoleLimit: return "limit reached: console output > 64 MiB";
    case RunEndReason::kEventLimit: return "limit reached: recorded events > 256 MiB";
    case RunEndReason::kMax: break;
  }
  return "?";
}

bool ends_guest_run(RunEndReason reason) {
  switch (reason) {
    case RunEndReason::kHalted:
    case RunEndReason::kGuestExit:
    case RunEndReason::kTripleFault:
    case RunEndReason::kEmulationFailure:
    case RunEndReason::kFailEntry:
    case RunEndReason::kUnhandledExit:
    case RunEndReason::kInternalError:
    case RunEndReason::kUnsupported:
    case RunEndReason::kConsoleLimit:
    case RunEndReason::kEventLimit:
      return true;
    case RunEndReason::kTimeLimit:
    case RunEndReason::kExitLimit:
    case RunEndReason::kDebug:
    case RunEndReason::kStopped:
    case RunEndReason::kInstructionLimit:
    case RunEndReason::kBreakpoint:
    case RunEndReason::kStep:
    case RunEndReason::kEventMatched:
    case RunEndReason::kMax:
      return false;
  }
  return false;
}

}  // namespace trapscope::trace
