// vmm/doctor.hpp — `trapscope doctor`: is KVM usable here, which KVM is it, and what can this
// host not show? Facts about kvm_pvm come from probes on this project's CI machines
// (docs/kvm-hosts.md); the `int n` probe below re-checks the main one at run time.
#pragma once

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
};

DoctorReport run_doctor();

// Which KVM module the host kernel has loaded (from /sys/module).
std::string host_kvm_module();

}  // namespace trapscope::vmm
