// `trapscope doctor`: is KVM usable here, and what can this host not show?
// `trapscope guests`: the built-in teaching guests.
#include <cstdio>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "guests/guest_catalog.hpp"
#include "vmm/doctor.hpp"

namespace trapscope::cli {

void add_doctor_command(CLI::App& app, int* status) {
  CLI::App* cmd =
      app.add_subcommand("doctor", "Check that KVM is usable and say what this host can observe");
  cmd->callback([status] {
    const vmm::DoctorReport r = vmm::run_doctor();
    std::printf("/dev/kvm:        %s\n", r.device_present ? "present" : "missing");
    std::printf("KVM module:      %s — %s\n", r.module.c_str(), r.module_note.c_str());
    if (r.api_version) std::printf("KVM API version: %d\n", r.api_version);
    if (!r.capabilities.empty()) {
      std::printf("capabilities:\n");
      for (const auto& c : r.capabilities) {
        std::printf("  %-32s %-4s %s%s\n", c.name.c_str(), c.value ? "yes" : "no",
                    c.used_for.c_str(), c.required ? " (required)" : "");
      }
    }
    if (!r.int_probe.empty()) {
      std::printf("probe `int 0x20` at CPL 0, long mode, no IDT: %s (%s)\n", r.int_probe.c_str(),
                  r.int_probe == "triple fault" ? "as on hardware"
                                                : "the kernel cannot emulate `int n`");
    }
    if (!r.hw_breakpoint_probe.empty()) {  // the gdb stub (docs/gdb.md)
      std::printf("gdb stub (run --gdb), probed in real-mode code: hardware breakpoint %s, "
                  "single-step %s, write watchpoint %s; break/hbreak/watch/awatch share DR0-DR3 "
                  "(4); what is not reported is refused; rwatch and reverse execution need the "
                  "simulator\n",
                  r.hw_breakpoint_probe.c_str(), r.single_step_probe.c_str(),
                  r.write_watch_probe.c_str());
    }
    if (!r.cannot_observe.empty()) {
      std::printf("cannot be observed on this host (works on hardware-assisted KVM):\n");
      for (const auto& s : r.cannot_observe) std::printf("  - %s\n", s.c_str());
    }
    if (r.usable) {
      std::printf("KVM is usable: `trapscope run` works here.\n");
      *status = kOk;
    } else {
      std::printf("KVM is NOT usable: %s\n", r.error.c_str());
      *status = kNoKvm;
    }
  });
}

void add_guests_command(CLI::App& app, int* status) {
  CLI::App* cmd = app.add_subcommand("guests", "List the built-in teaching guests");
  cmd->callback([status] {
    for (const auto& g : guests::catalog()) {
      std::printf("%-12s %-10s %zu bytes  %s\n", g.name, g.mode,
                  static_cast<size_t>(g.end - g.begin), g.description);
    }
    *status = kOk;
  });
}

}  // namespace trapscope::cli
