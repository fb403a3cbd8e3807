// vmm/doctor.hpp — `trapscope doctor`: is KVM usable here, which KVM is it, and what can this
// host not show? Facts about kvm_pvm come from probes on this project's CI machines
// (docs/kvm-hosts.md); the `int n` probe below re-checks the main one at run time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace trapscope::vmm {

struct CapabilityCheck {
  std::string name;      // e.g. "KVM_CAP_IMMEDIATE_EXIT"
  int value = 0;         // KVM_CHECK_EXTENSION result (0 = not supported)
  bool required = false; // trapscope cannot run without it
  std::string used_for;
};

struct DoctorReport {
  bool device_present = false;  // /dev/kvm exists
  bool usable = false;          // opened, API 12, a VM and vCPU could be created
  std::string error;            // why not usable
  int api_version = 0;
  std::string module;           // "kvm_intel", "kvm_amd", "kvm_pvm", or "unknown"
  std::string module_note;      // what that module means for trapscope
  std::vector<CapabilityCheck> capabilities;
  std::string int_probe;        // what `int 0x20` at CPL 0 in long mode did ("triple fault", …)
  std::vector<std::string> cannot_observe;  // limitations of this host
  // The gdb stub's needs (docs/gdb.md), probed on a real-mode guest (emulated code on kvm_pvm):
  // whether a hardware breakpoint (DR0) and a single-step are reported as KVM_EXIT_DEBUG.
  std::string hw_breakpoint_probe;  // "reported", "not reported (…)", "probe failed: …"
  std::string single_step_probe;
  std::string write_watch_probe;
};

DoctorReport run_doctor();

// Whether this host's KVM reports a debug event to user space (KVM_EXIT_DEBUG), probed on a
// real-mode guest (emulated code on kvm_pvm): a hardware execution breakpoint, a single-step, a
// data write watchpoint (DR0, R/W = 01). "reported", "not reported (…)" or "probe failed: …".
// The gdb stub refuses what is not reported (docs/gdb.md).
enum class DebugProbe : uint8_t { kHwBreakpoint, kSingleStep, kWriteWatch };
std::string probe_debug(DebugProbe what);

// Which KVM module the host kernel has loaded (from /sys/module).
std::string host_kvm_module();

}  // namespace trapscope::vmm
