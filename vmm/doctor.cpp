#include "vmm/doctor.hpp"

#include <linux/kvm.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "vmm/kvm_machine.hpp"

namespace trapscope::vmm {

std::string host_kvm_module() {
  for (const char* m : {"kvm_pvm", "kvm_intel", "kvm_amd"}) {
    struct stat st {};
    if (::stat((std::string("/sys/module/") + m).c_str(), &st) == 0) return m;
  }
  return "unknown";
}

namespace {

std::string probe_int_n() {
  // `int 0x20` at CPL 0 in long mode with no IDT: hardware-assisted KVM delivers #GP → #DF →
  // triple fault; a KVM that emulates CPL 0 code and cannot emulate `int` reports an emulation
  // failure.
  try {
    MachineConfig cfg;
    cfg.memory_bytes = 1 << 20;
    cfg.mode = platform::BootMode::kLong;
    KvmMachine m(cfg);
    const uint8_t code[] = {0xCD, 0x20, 0xF4};
    m.load(code);
    RunLimits limits;
    limits.timeout_s = 2;
    limits.max_exits = 10;
    RunResult r = m.run(limits, nullptr);
    return std::string(trace::to_string(r.reason));
  } catch (const std::exception& e) {
    return std::string("probe failed: ") + e.what();
  }
}

}  // namespace

std::string probe_debug(DebugProbe what) {
  // A real-mode guest at 0x8000: `mov [0x9000], al; nop; hlt` (A2 00 90, 90, F4). The breakpoint
  // is on the `nop`, the single-step starts at the `mov`, the watchpoint watches the byte it
  // writes: each must end the run with a debug exit at the `nop` (0x8003).
  try {
    MachineConfig cfg;
    cfg.memory_bytes = 1 << 20;
    KvmMachine m(cfg);
    const uint8_t code[] = {0xA2, 0x00, 0x90, 0x90, 0xF4};
    m.load(code);
    const uint64_t nop = cfg.load_address + 3;
    if (what == DebugProbe::kSingleStep) {
      m.set_debug(true, false, 0);
    } else {
      const DebugSlot slot = what == DebugProbe::kHwBreakpoint ? DebugSlot{nop, 0, 1}
                                                               : DebugSlot{0x9000, 1, 1};
      m.set_debug_slots(std::span(&slot, 1));
    }
    RunLimits limits;
    limits.timeout_s = 2;
    limits.max_exits = 10;
    const RunResult r = m.run(limits, nullptr);
    if (r.reason == trace::RunEndReason::kDebug && r.regs.rip == nop) return "reported";
    return "not reported (the run ended: " + std::string(trace::to_string(r.reason)) + ")";
  } catch (const std::exception& e) {
    return std::string("probe failed: ") + e.what();
  }
}

DoctorReport run_doctor() {
  DoctorReport rep;
  struct stat st {};
  rep.device_present = ::stat("/dev/kvm", &st) == 0;
  rep.module = host_kvm_module();
  if (rep.module == "kvm_pvm") {
    rep.module_note =
        "pagetable-based KVM (no hardware virtualization): guest CPL 3 code runs natively, "
        "guest CPL 0 and real-mode code are emulated by the kernel's x86 emulator";
  } else if (rep.module == "kvm_intel") {
    rep.module_note = "hardware-assisted KVM on Intel VT-x";
  } else if (rep.module == "kvm_amd") {
    rep.module_note = "hardware-assisted KVM on AMD-V (SVM)";
  } else {
    rep.module_note = "no known KVM module found in /sys/module";
  }
  if (!rep.device_present) {
    rep.error = "/dev/kvm does not exist (KVM is not available on this host; use --backend sim "
                "when the simulator is available)";
    return rep;
  }
  try {
    Kvm kvm = Kvm::open();
    rep.api_version = kvm.api_version();
    struct Cap {
      const char* name;
      int id;
      bool required;
      const char* used_for;
    };
    static constexpr Cap kCaps[] = {
        {"KVM_CAP_USER_MEMORY", KVM_CAP_USER_MEMORY, true, "guest memory slots"},
        {"KVM_CAP_IMMEDIATE_EXIT", KVM_CAP_IMMEDIATE_EXIT, true,
         "time limit and Ctrl-C stop a running guest"},
        {"KVM_CAP_EXT_CPUID", KVM_CAP_EXT_CPUID, true, "KVM_GET_SUPPORTED_CPUID/KVM_SET_CPUID2"},
        {"KVM_CAP_SYNC_REGS", KVM_CAP_SYNC_REGS, false,
         "registers at every exit without an ioctl (tracing)"},
        {"KVM_CAP_SET_GUEST_DEBUG", KVM_CAP_SET_GUEST_DEBUG, false, "single-stepping"},
        {"KVM_CAP_SET_TSS_ADDR", KVM_CAP_SET_TSS_ADDR, false, "real mode on Intel VT-x"},
        {"KVM_CAP_VCPU_EVENTS", KVM_CAP_VCPU_EVENTS, false, "pending exceptions at a fault"},
        {"KVM_CAP_X86_TRIPLE_FAULT_EVENT", KVM_CAP_X86_TRIPLE_FAULT_EVENT, false,
         "triple-fault reporting"},
        {"KVM_CAP_NESTED_STATE", KVM_CAP_NESTED_STATE, false, "nested virtualization state"},
    };
    bool missing_required = false;
    for (const Cap& c : kCaps) {
      const int v = kvm.check_extension(c.id);
      rep.capabilities.push_back({c.name, v, c.required, c.used_for});
      if (c.required && v == 0) missing_required = true;
    }
    if (missing_required) {
      rep.error = "a capability trapscope needs is missing (see the list)";
      return rep;
    }
    rep.int_probe = probe_int_n();
    rep.hw_breakpoint_probe = probe_debug(DebugProbe::kHwBreakpoint);
    rep.single_step_probe = probe_debug(DebugProbe::kSingleStep);
    rep.write_watch_probe = probe_debug(DebugProbe::kWriteWatch);
    rep.usable = rep.int_probe.rfind("probe failed", 0) != 0;
    if (!rep.usable) rep.error = rep.int_probe;
  } catch (const std::exception& e) {
    rep.error = e.what();
    if (errno == EACCES || std::strstr(e.what(), "Permission denied")) {
      rep.error += " (run as root or add yourself to the 'kvm' group)";
    }
    return rep;
  }
  if (rep.module == "kvm_pvm" || rep.int_probe == "emulation failure") {
    rep.cannot_observe = {
        "`int n` in protected/long mode: KVM cannot emulate it (guests that need it run on the "
        "simulator)",
        "`syscall`/`sysret`: CS keeps reading as CPL 3 after syscall; sysret then faults",
        "single-step and hardware breakpoints in natively run CPL 3 code are not reported "
        "(they are for emulated CPL 0 and real-mode code)",
        "software breakpoints (int3) in CPL 3 code reach the guest as #BP instead of the VMM",
        "guest timing: CPL 0 and real-mode code is emulated (about 1.4 MIPS measured on the CI "
        "machines), so exit costs here are not those of hardware-assisted KVM",
    };
  }
  return rep;
}

}  // namespace trapscope::vmm
