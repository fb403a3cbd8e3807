// vmm/kvm_machine.hpp — a trapscope virtual machine on KVM: one VM, one memory slot, one vCPU, the
// standard devices, and the run loop that records every VM exit.
//
// The run loop (KvmMachine::run) is a small state machine: KVM_RUN → typed exit →
// platform::handle_exit() → (record the event) → continue or stop. It ends with a RunResult whose reason
// is one of trace::RunEndReason. A guest that never exits is stopped by the time limit: a POSIX
// timer sends a real-time signal to the vCPU thread whose handler sets kvm_run.immediate_exit
// (KVM API 5, "struct kvm_run", immediate_exit; KVM_CAP_IMMEDIATE_EXIT), so the limit holds even if
// the signal lands between two KVM_RUN calls.
#pragma once

#include <linux/kvm.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "trace/recorder.hpp"
#include "platform/devices.hpp"
#include "vmm/kvm.hpp"
#include "platform/loader.hpp"
#include "vmm/guest_memory.hpp"

namespace trapscope::vmm {

struct MachineConfig {
  uint64_t memory_bytes = 16ull << 20;  // guest RAM at GPA 0; a multiple of 4 KiB
  platform::BootMode mode = platform::BootMode::kReal;
  uint64_t load_address = platform::kDefaultLoadAddress;
};

struct DebugSlot {
  uint64_t linear = 0;
  uint8_t rw = 0;   // DR7 R/W: 0 execute, 1 write, 3 read or write
  uint8_t len = 1;  // 1, 2, 4 or 8 bytes
};

struct RunLimits {
  double timeout_s = 10.0;  // wall-clock limit of the run, seconds (> 0)
  uint64_t max_exits = 0;   // stop after this many VM exits; 0 = no limit
};

struct RunResult {
  trace::RunEndReason reason = trace::RunEndReason::kStopped;
  uint32_t exit_code = 0;       // the guest's code for kGuestExit
  uint64_t exits = 0;           // VM exits handled
  uint64_t duration_ns = 0;
  uint32_t last_exit_reason = 0;  // KVM number of the exit that ended the run (if one did)
  kvm_regs regs{};              // the vCPU's registers at the end
  kvm_sregs sregs{};
  std::string detail;           // for faults: what happened, the instruction, the vCPU state
};

class KvmHypercallHost;

class KvmMachine {
 public:
  // Opens /dev/kvm, creates the VM, its memory slot and vCPU 0 with the supported CPUID.
  // Throws KvmError (or std::system_error for memory) on failure.
  explicit KvmMachine(const MachineConfig& config);
  ~KvmMachine();

  // Loads a flat binary at the configured load address and sets the vCPU up to enter it in the
  // configured mode. Throws platform::LoadError for an image that does not fit.
  void load(std::span<const uint8_t> image);

  // Runs until the guest halts, exits, faults or a limit is hit. Every VM exit is given to
  // `sink` as a trace::VmExitEvent (and the end as a trace::RunEndEvent); sink may be null
  // (tracing off: no per-exit register copy or clock reads).
  RunResult run(const RunLimits& limits, trace::EventSink* sink);

  // Async-signal-safe: ends the current run with RunEndReason::kStopped (e.g. on Ctrl-C).
  void request_stop();

  // KVM_SET_GUEST_DEBUG: single-step and/or one hardware execution breakpoint (DR0) at a guest
  // linear address; a hit ends run() with RunEndReason::kDebug. All off: debugging disabled.
  void set_debug(bool single_step, bool breakpoint, uint64_t linear);
  // KVM_SET_GUEST_DEBUG with up to four hardware slots (DR0-DR3; DR7 local enables, R/W and LEN
  // as SDM Vol. 3B 18.2.4); a hit ends run() with RunEndReason::kDebug and DR6 in its exit.
  // Throws std::invalid_argument for more than four slots or a bad length.
  void set_debug_slots(std::span<const DebugSlot> slots);

  platform::Devices& devices() { return devices_; }
  GuestMemory& memory() { return memory_; }
  Vcpu& vcpu() { return vcpu_; }
  Vm& vm() { return vm_; }
  const Kvm& kvm() const { return kvm_; }
  const MachineConfig& config() const { return config_; }

 private:
  void complete_pending_io(const platform::VcpuExit& exit);
  // Records the exit (instruction bytes read through the guest's tables) and returns the event.
  trace::VmExitEvent record_exit(trace::EventSink& sink, const platform::VcpuExit& exit, uint64_t seq,
                                 uint64_t t_exit);
  void record_hypercall(trace::EventSink& sink, const platform::HypercallRecord& hc,
                        const trace::VmExitEvent& io_exit, uint64_t seq);
  std::string describe_state(const kvm_regs& regs, const kvm_sregs& sregs) const;

  MachineConfig config_;
  Kvm kvm_;
  Vm vm_;
  GuestMemory memory_;
  platform::SpanRam dma_ram_{memory_.bytes()};  // devices' DMA (platform/guest_ram.hpp)
  Vcpu vcpu_;
  platform::Devices devices_;
  std::unique_ptr<KvmHypercallHost> hypercall_host_;  // binds devices_.hypercall to this vCPU
  std::atomic<bool> stop_requested_{false};
  bool debug_on_ = false;
  class PassthroughThread;
  bool passthrough_slot_ = false;  // slot 1 holds the passthrough window
};

// Whether this host's KVM has already moved RIP past an `in`/`out` when it reports the IO exit
// (an emulating KVM such as kvm_pvm does for `out`; hardware-assisted KVM's fast path does not).
// Probed once per process with a 5-byte real-mode guest.
struct HostRipBehaviour {
  bool probed = false;
  bool after_out = false;
  bool after_in = false;
};
const HostRipBehaviour& host_rip_advances();

// Host CLOCK_MONOTONIC in ns.
uint64_t monotonic_ns();

}  // namespace trapscope::vmm
