// `trapscope demo [GUEST]` (default: popek): the Popek–Goldberg demonstration in one command.
// Runs the guest natively (KVM where usable, else the simulator), under trap-and-emulate and
// under the VT-x model (both on the simulator), prints the three console outputs side by side
// (lines where a technique differs from the native run are marked) and the first divergence of
// each technique from the native simulator run.
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "backend/cosim.hpp"
#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/guest_file.hpp"
#include "cli/technique_counter.hpp"

namespace trapscope::cli {
namespace {

struct Column {
  std::string title;
  std::vector<std::string> lines;
  std::string footer;
};

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string fit(std::string s, size_t width) {
  if (s.size() > width) s = s.substr(0, width - 1) + "~";
  s.resize(width, ' ');
  return s;
}

struct DemoOptions {
  std::string guest = "popek";
  unsigned deprivilege = 1;
  bool sim_only = false;
  unsigned width = 36;
};

int demo(const DemoOptions& o) {
  std::string error;
  auto guest = resolve_guest(o.guest, 16ull << 20, &error);
  if (!guest) {
    std::fprintf(stderr, "trapscope demo: %s\n", error.c_str());
    return kBadInput;
  }
  backend::Config base;
  base.mode = *platform::parse_boot_mode(guest->default_mode);
  const backend::StopCondition stop{10.0, 100000, 10'000'000};

  std::vector<Column> cols;
  std::string ground_truth;  // KVM against the native simulator run, when KVM ran
  // 1. native
  {
    std::string why;
    const bool kvm = !o.sim_only && backend::kvm_usable(&why);
    auto m = backend::make_backend(kvm ? backend::Kind::kKvm : backend::Kind::kSim, base);
    try {
      m->load(guest->image);
    } catch (const platform::LoadError& e) {
      std::fprintf(stderr, "trapscope demo: cannot load '%s': %s\n", guest->name.c_str(),
                   e.what());
      return kBadInput;
    }
    backend::StopCondition s = stop;
    if (kvm) s.max_instructions = 0;
    const backend::RunOutcome r = m->run(s, nullptr);
    if (kvm) ground_truth = "kvm vs native simulator: " + backend::cosimulate(guest->image, base, stop).report;
    cols.push_back({kvm ? "native (KVM)" : "native (simulator)",
                    split_lines(m->devices().console.text()),
                    std::to_string(r.exits) + " VM exits; " +
                        std::string(trace::to_string(r.reason))});
  }
  // 2. trap-and-emulate, 3. VT-x model
  std::vector<std::string> divergences;
  for (sim::virt::Technique t : {sim::virt::Technique::kTrapEmulate, sim::virt::Technique::kVt}) {
    backend::Config cfg = base;
    cfg.technique = t;
    cfg.deprivilege = static_cast<uint8_t>(o.deprivilege);
    auto m = backend::make_backend(backend::Kind::kSim, cfg);
    m->load(guest->image);
    TechniqueCounter count;
    const backend::RunOutcome r = m->run(stop, &count);
    std::string footer;
    if (t == sim::virt::Technique::kTrapEmulate) {
      footer = std::to_string(count.traps) + " traps, " + std::to_string(count.no_trap) +
               " sensitive w/o trap";
    } else {
      uint64_t exits = 0;
      for (const auto& [reason, n] : count.exits) exits += n;
      footer = std::to_string(exits) + " VM exits, " + std::to_string(count.cycles) +
               " cycles (model)";
    }
    cols.push_back({t == sim::virt::Technique::kTrapEmulate
                        ? "trap-and-emulate (kernel at CPL " + std::to_string(o.deprivilege) + ")"
                        : "VT-x model (non-root, CPL 0)",
                    split_lines(m->devices().console.text()), footer});
    const auto eq = backend::compare_with_native(guest->image, cfg, stop);
    divergences.push_back(std::string(sim::virt::to_string(t)) + " vs native: " + eq.report);
  }

  // Side by side; '*' marks a line that differs from the native run's.
  const size_t w = o.width;
  std::printf("trapscope demo %s: the same guest natively, under trap-and-emulate and under "
              "VT-x\n\n", guest->name.c_str());
  auto print_row = [w](const std::string& a, char ma, const std::string& b, char mb,
                       const std::string& c) {
    std::string row = "  " + fit(a, w) + " |" + ma + fit(b, w) + " |" + mb + fit(c, w);
    while (!row.empty() && row.back() == ' ') row.pop_back();
    std::printf("%s\n", row.c_str());
  };
  print_row(cols[0].title, ' ', cols[1].title, ' ', cols[2].title);
  std::printf("  %s-+-%s-+-%s\n", std::string(w, '-').c_str(), std::string(w, '-').c_str(),
              std::string(w, '-').c_str());
  size_t rows = 0;
  for (const Column& c : cols) rows = std::max(rows, c.lines.size());
  for (size_t i = 0; i < rows; ++i) {
    auto cell = [&](size_t k) { return i < cols[k].lines.size() ? cols[k].lines[i] : ""; };
    const std::string n = cell(0);
    print_row(n, cell(1) != n ? '*' : ' ', cell(1), cell(2) != n ? '*' : ' ', cell(2));
  }
  std::printf("  %s-+-%s-+-%s\n", std::string(w, '-').c_str(), std::string(w, '-').c_str(),
              std::string(w, '-').c_str());
  print_row(cols[0].footer, ' ', cols[1].footer, ' ', cols[2].footer);
  std::printf("\n* = differs from the native output\n");
  if (!ground_truth.empty()) std::printf("%s\n", ground_truth.c_str());
  for (const std::string& d : divergences) std::printf("%s\n", d.c_str());
  return kOk;
}

}  // namespace

void add_demo_command(CLI::App& app, int* status) {
  auto o = std::make_shared<DemoOptions>();
  CLI::App* cmd = app.add_subcommand(
      "demo", "Popek-Goldberg live: a guest natively, under trap-and-emulate and under VT-x, "
              "side by side");
  cmd->add_option("GUEST", o->guest, "A built-in guest or flat binary")->capture_default_str();
  cmd->add_option("--deprivilege", o->deprivilege,
                  "trap-and-emulate: the real CPL of the guest kernel (1 or 3)")
      ->check(CLI::IsMember({1u, 3u}))
      ->capture_default_str();
  cmd->add_flag("--sim", o->sim_only, "Run the native column on the simulator even where KVM is "
                                       "usable (deterministic output)");
  cmd->add_option("--width", o->width, "Column width in characters")
      ->check(CLI::Range(16u, 120u))
      ->capture_default_str();
  cmd->footer("Exit status: 0 shown; 2 bad input. The divergence lines compare each technique "
              "with the native simulator run (VM exits, run end, console, registers, memory).");
  cmd->callback([o, status] { *status = demo(*o); });
}

}  // namespace trapscope::cli
