// `trapscope cosim GUEST`: run a guest on KVM and on the simulator and compare what the guest
// can observe (Popek & Goldberg's equivalence property); report the first divergence.
#include <cstdio>

#include "backend/cosim.hpp"
#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/guest_file.hpp"
#include "cli/options.hpp"

namespace trapscope::cli {

void add_cosim_command(CLI::App& app, int* status) {
  struct Options {
    std::string guest;
    std::string mode;
    uint64_t load = platform::kDefaultLoadAddress;
    uint64_t mem_mib = 16;
    double timeout_s = 30;
    uint64_t max_exits = 100000;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "cosim", "Run a guest on KVM and on the simulator; report the first divergence");
  cmd->add_option("GUEST", o->guest, "A built-in guest or a flat binary file")->required();
  cmd->add_option("--mode", o->mode, "CPU mode the guest is entered in")
      ->check(CLI::IsMember({"real", "protected", "long"}));
  add_load_option(cmd, &o->load, "Load address = entry point");
  cmd->add_option("--mem", o->mem_mib, "Guest memory in MiB")
      ->check(CLI::Range(uint64_t{1}, uint64_t{3584}))
      ->capture_default_str();
  add_seconds_option(cmd, "--timeout", &o->timeout_s, "Limit of both runs together, seconds");
  add_count_option(cmd, "--max-exits", &o->max_exits, "Limit of each run, VM exits");
  cmd->footer("Exit status: 0 equivalent; 1 diverged; 2 bad input; 4 not checked (--timeout\n"
              "reached before both runs ended); 5 no KVM.");
  cmd->callback([o, status] {
    std::string error;
    auto guest = resolve_guest(o->guest, o->mem_mib << 20, &error);
    if (!guest) {
      std::fprintf(stderr, "trapscope cosim: %s\n", error.c_str());
      *status = kBadInput;
      return;
    }
    std::string why;
    if (!backend::kvm_usable(&why)) {
      std::fprintf(stderr, "trapscope cosim: KVM is not usable here: %s\n", why.c_str());
      *status = kNoKvm;
      return;
    }
    backend::Config cfg;
    cfg.memory_bytes = o->mem_mib << 20;
    cfg.mode = *platform::parse_boot_mode(o->mode.empty() ? guest->default_mode : o->mode);
    cfg.load_address = o->load;
    try {
      const auto r = backend::cosimulate(guest->image, cfg, {o->timeout_s, o->max_exits, 0});
      std::printf("%s: %s\n", guest->name.c_str(), r.report.c_str());
      *status = r.equal ? kOk : r.checked ? kGuestFailed : kLimit;
    } catch (const platform::LoadError& e) {
      std::fprintf(stderr, "trapscope cosim: cannot load '%s': %s\n", guest->name.c_str(),
                   e.what());
      *status = kBadInput;
    }
  });
}

}  // namespace trapscope::cli
