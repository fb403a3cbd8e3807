// platform/exit.hpp — a VM exit as a typed value (one struct per KVM exit reason that the VMM
// handles). Vcpu::run() builds these from `struct kvm_run` (KVM API 5.); handle_exit() takes
// them; tests build them by hand. Spans point into kvm_run (or a test's buffer): an `in`'s data
// is filled by the handler and returned to the guest on the next KVM_RUN.
#pragma once

#include <cstdint>
#include <span>
#include <variant>

namespace trapscope::platform {

struct ExitIoIn {        // KVM_EXIT_IO, direction in: fill `data` (size * count bytes)
  uint16_t port;
  uint8_t size;          // bytes per element: 1, 2, 4
  uint32_t count;        // elements (rep ins)
  std::span<uint8_t> data;
};
struct ExitIoOut {       // KVM_EXIT_IO, direction out
  uint16_t port;
  uint8_t size;
  uint32_t count;
  std::span<const uint8_t> data;
};
struct ExitMmioRead {    // KVM_EXIT_MMIO, is_write = 0: fill `data`
  uint64_t gpa;
  std::span<uint8_t> data;
};
struct ExitMmioWrite {   // KVM_EXIT_MMIO, is_write = 1
  uint64_t gpa;
  std::span<const uint8_t> data;
};
struct ExitHlt {};       // KVM_EXIT_HLT
struct ExitShutdown {};  // KVM_EXIT_SHUTDOWN: triple fault (or a failed exception delivery)
struct ExitInternalError {  // KVM_EXIT_INTERNAL_ERROR
  uint32_t suberror;        // KVM_INTERNAL_ERROR_* (1 = emulation failure)
  uint32_t ndata;
  uint64_t data[2];         // first two data words (zero beyond ndata)
  uint8_t insn_len;         // emulation failure with KVM_INTERNAL_ERROR_EMULATION_FLAG_
  uint8_t insn[15];         //   INSTRUCTION_BYTES: the bytes the emulator could not handle
};
struct ExitFailEntry {      // KVM_EXIT_FAIL_ENTRY
  uint64_t hardware_entry_failure_reason;
  uint32_t cpu;
};
struct ExitDebug {          // KVM_EXIT_DEBUG
  uint32_t exception;
  uint64_t pc;
  uint64_t dr6;
  uint64_t dr7;
};
struct ExitSystemEvent {    // KVM_EXIT_SYSTEM_EVENT
  uint32_t type;
};
struct ExitInterrupted {};  // KVM_RUN returned EINTR (signal, immediate_exit): not a guest exit
struct ExitOther {          // any other exit reason, reported by name and number
  uint32_t reason;
};

using VcpuExit = std::variant<ExitIoIn, ExitIoOut, ExitMmioRead, ExitMmioWrite, ExitHlt,
                              ExitShutdown, ExitInternalError, ExitFailEntry, ExitDebug,
                              ExitSystemEvent, ExitInterrupted, ExitOther>;

// The KVM exit reason number of a typed exit (KVM_EXIT_INTR for ExitInterrupted).
uint32_t kvm_exit_reason(const VcpuExit& exit);

}  // namespace trapscope::platform
