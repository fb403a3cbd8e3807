// cli/cmd_compare.cpp — `trapscope compare WORKLOAD`: the same guest under every technique of
// the simulator and on KVM, one table (also as CSV and JSON), with exits by cause and modelled
// cycles. The comparison itself is the compare library's (compare/comparison.hpp, its cost
// model compare/cost_model.hpp); this file parses the options, draws the progress bar, prints
// the table and writes the files (compare/report.hpp). Nanobenchmark guests (nano-*) are run
// twice, with N and with 0 iterations, and the difference per iteration is shown beside Adams &
// Agesen's figures; `compare nano` runs all seven.
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "compare/comparison.hpp"
#include "compare/report.hpp"
#include "compare/workloads.hpp"

namespace trapscope::cli {
namespace {

using compare::kCauseCount;
using compare::Row;

std::string causes_text(const Row& r) {
  std::string s;
  for (size_t i = 0; i < kCauseCount; ++i) {
    if (!r.causes[i]) continue;
    s += (s.empty() ? "" : " ") + std::string(compare::kCauseNames[i]) + ":" +
         std::to_string(r.causes[i]);
  }
  if (r.kvm_stats && r.kvm_stats->count("exits")) {
    // What KVM handled in the kernel (its vCPU statistics), after the user-space exits.
    s += std::string(s.empty() ? "" : " ") + "| kernel:";
    for (const char* k : {"exits", "invlpg", "pf_guest", "tlb_flush", "insn_emulation"}) {
      const auto it = r.kvm_stats->find(k);
      if (it != r.kvm_stats->end() && it->second) {
        s += std::string(" ") + k + ":" + std::to_string(it->second);
      }
    }
  }
  return s.empty() ? "-" : s;
}

// Writes the comparison as CSV and JSON (docs/compare.md, "compare's JSON and CSV"). False if
// a file cannot be written.
bool write_files(const std::string& csv, const std::string& json,
                 const compare::Comparison& c) {
  const nlohmann::json all = compare::to_json(c);
  if (!json.empty()) {
    std::ofstream f(json);
    f << all.dump(2) << "\n";
    if (!f) return false;
  }
  if (!csv.empty()) {
    std::ofstream f(csv);
    f << compare::to_csv(all);
    if (!f) return false;
  }
  return true;
}

// A progress bar on stderr, only when stderr is a terminal: runs done of all, and the run now
// going (a run is not interrupted to redraw it).
class ProgressBar {
 public:
  ProgressBar() : tty_(isatty(STDERR_FILENO) == 1) {}
  ~ProgressBar() {
    if (tty_) std::fprintf(stderr, "\r%*s\r", 78, "");
  }
  void show(const compare::Progress& p) {
    if (!tty_ || p.done == p.total) return;
    const std::string what = p.technique + " " + p.guest;
    constexpr int kWidth = 30;
    const int filled = p.total ? static_cast<int>(kWidth * p.done / p.total) : kWidth;
    std::fprintf(stderr, "\r[%.*s%*s] %zu/%zu %-30.30s", filled,
                 "##############################", kWidth - filled, "", p.done, p.total,
                 what.c_str());
    std::fflush(stderr);
  }

 private:
  bool tty_;
};

void print_header() {
  std::printf("%-13s %-13s %9s %7s %6s %8s %6s %7s %6s %7s %8s %8s %9s %13s  %s\n", "technique",
              "guest", "insns", "exits", "traps", "VT-exits", "hcalls", "callout", "transl",
              "walks", "walk-refs", "TLB-miss", "wall-ms", "model-cycles", "entries by cause");
}

void print_row(const Row& r) {
  if (!r.skipped.empty()) {
    std::printf("%-13s %-13s (skipped: %s)\n", r.technique.c_str(), r.guest.c_str(),
                r.skipped.c_str());
    return;
  }
  auto o = [](const std::optional<uint64_t>& v) { return v ? std::to_string(*v) : "-"; };
  std::printf("%-13s %-13s %9s %7llu %6llu %8llu %6llu %7llu %6llu %7s %8s %8s %9.3f %13llu  %s%s\n",
              r.technique.c_str(), r.guest.c_str(),
              r.simulator ? std::to_string(r.instructions).c_str() : "-",
              static_cast<unsigned long long>(r.exits), static_cast<unsigned long long>(r.traps),
              static_cast<unsigned long long>(r.vt_exits),
              static_cast<unsigned long long>(r.hypercalls),
              static_cast<unsigned long long>(r.callouts),
              static_cast<unsigned long long>(r.translations), o(r.walks).c_str(),
              o(r.walk_refs).c_str(), o(r.tlb_misses).c_str(), r.wall_ms,
              static_cast<unsigned long long>(r.cycles()), causes_text(r).c_str(),
              r.ok ? "" : ("  [run ended: " + r.end + "]").c_str());
}

// The per-iteration table of one nanobenchmark (after its full table).
void print_nano(const compare::WorkloadRows& w, uint32_t iterations) {
  const compare::PaperNano* p = w.paper;
  std::printf("\nper iteration of %.*s ((run with %u iterations - run with 0) / %u):\n",
              static_cast<int>(w.guest.size()), w.guest.data(), iterations, iterations);
  std::printf("%-13s %-16s %8s %7s %9s %7s %8s %8s %16s  %s\n", "technique", "guest", "insns",
              "exits", "kvm-exits", "traps", "VT-exits", "callouts", "model-cycles",
              "paper cycles");
  for (const Row& r : w.rows) {
    if (!r.per_iteration || !r.ok) continue;
    const compare::PerIteration& j = *r.per_iteration;
    const std::string paper =
        !j.paper_cycles ? "-" : std::to_string(*j.paper_cycles) +
                                    (r.technique == "bt" ? " (software VMM)" : " (hardware VMM)");
    char insns[32] = "-";
    if (j.instructions) std::snprintf(insns, sizeof insns, "%.2f", *j.instructions);
    char kvm_exits[32] = "-";
    if (j.kvm_exits) std::snprintf(kvm_exits, sizeof kvm_exits, "%.2f", *j.kvm_exits);
    std::printf("%-13s %-16s %8s %7.2f %9s %7.2f %8.2f %8.2f %16.1f  %s\n", r.technique.c_str(),
                r.guest.c_str(), insns, j.exits, kvm_exits, j.traps, j.vt_exits, j.callouts,
                j.modelled_cycles, paper.c_str());
  }
  if (p) {
    std::printf("paper (%.*s, \"%.*s\"): native %u, software VMM %u, hardware VMM %u cycles\n",
                static_cast<int>(compare::kPaperSource.size()), compare::kPaperSource.data(),
                static_cast<int>(p->paper_name.size()), p->paper_name.data(), p->native,
                p->software_vmm, p->hardware_vmm);
  }
}

struct CliOptions {
  compare::Options compare;
  std::string csv, json;
};

// The summary of `compare nano`: one line per nanobenchmark, the paper's cycles beside our
// model's, then the rows skipped or failed.
void print_nano_summary(const compare::Comparison& c) {
  const uint32_t n = c.options.iterations;
  std::printf("nanobenchmarks: cycles per iteration. paper = %.*s; ours = modelled cycles, a "
              "MODEL (compare/cost_model.hpp), (run with %u iterations - run with 0) / %u\n",
              static_cast<int>(compare::kPaperSource.size()), compare::kPaperSource.data(), n, n);
  std::printf("%-13s %-9s | %7s %7s %7s | %9s %9s %9s %9s %9s %9s %9s\n", "guest", "paper",
              "native", "SW VMM", "HW VMM", "emulation", "trap-emul", "vt", "bt", "pv", "kvm",
              "kvm pv");
  for (const compare::WorkloadRows& w : c.workloads) {
    const compare::PaperNano& p = *w.paper;
    std::printf("%-13.*s %-9.*s | %7u %7u %7u |", static_cast<int>(p.guest.size()),
                p.guest.data(), static_cast<int>(p.paper_name.size()), p.paper_name.data(),
                p.native, p.software_vmm, p.hardware_vmm);
    for (const compare::Technique& tech : compare::kTechniques) {
      const Row* found = nullptr;
      for (const Row& r : w.rows) {
        if (r.technique == tech.name) found = &r;
      }
      if (!found) {
        std::printf(" %9s", "-");
      } else if (!found->skipped.empty()) {
        std::printf(" %9s", "skipped");
      } else if (!found->ok) {
        std::printf(" %9s", "failed");
      } else {
        std::printf(" %9.0f", found->per_iteration ? found->per_iteration->modelled_cycles : 0.0);
      }
    }
    std::printf("\n");
  }
  for (const compare::WorkloadRows& w : c.workloads) {
    for (const Row& r : w.rows) {
      if (!r.skipped.empty()) {
        std::printf("skipped: %s %s: %s\n", r.technique.c_str(), r.guest.c_str(),
                    r.skipped.c_str());
      } else if (!r.ok) {
        std::printf("failed: %s %s: %s\n", r.technique.c_str(), r.guest.c_str(), r.end.c_str());
      }
    }
  }
}

int run_compare(const CliOptions& o) {
  compare::Comparison c;
  {
    ProgressBar bar;
    c = compare::run_comparison(o.compare, [&bar](const compare::Progress& p) { bar.show(p); });
  }
  if (c.status == compare::Status::kBadInput) {
    std::fprintf(stderr, "trapscope compare: %s\n", c.error.c_str());
    return kBadInput;
  }
  if (c.workloads.size() == 1) {
    const compare::WorkloadRows& w = c.workloads.front();
    print_header();
    for (const Row& r : w.rows) print_row(r);
    if (!w.rows.empty() && w.rows.front().per_iteration) print_nano(w, o.compare.iterations);
  } else {
    print_nano_summary(c);
  }
  std::printf("model-cycles: %.*s\n", static_cast<int>(compare::kCycleModel.size()),
              compare::kCycleModel.data());
  if (!write_files(o.csv, o.json, c)) {
    std::fprintf(stderr, "trapscope compare: cannot write %s%s%s\n", o.csv.c_str(),
                 o.csv.empty() || o.json.empty() ? "" : " or ", o.json.c_str());
    return kBadInput;
  }
  return c.status == compare::Status::kOk ? kOk : kGuestFault;
}

}  // namespace

void add_compare_command(CLI::App& app, int* status) {
  auto o = std::make_shared<CliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "compare", "Run one guest under emulation, trap-and-emulate, the VT-x model, BT, PV "
                 "(its pv- twin where there is one) and KVM, and print one table; `compare nano` "
                 "runs the seven nanobenchmarks beside Adams & Agesen's cycles");
  cmd->add_option("WORKLOAD", o->compare.workload,
                  "A built-in guest (see `trapscope guests`), or `nano` for every nanobenchmark")
      ->required();
  cmd->add_option("--paging", o->compare.paging,
                  "Simulator memory virtualization: native, shadow, ept")
      ->check(CLI::IsMember({"native", "shadow", "ept"}))
      ->capture_default_str();
  cmd->add_option("--csv", o->csv, "Also write the table as CSV to this file");
  cmd->add_option("--json", o->json, "Also write the table as JSON to this file");
  cmd->add_option("--iterations", o->compare.iterations,
                  "Nanobenchmarks: iterations of the measured loop (the run is repeated with 0)")
      ->check(CLI::Range(1u, compare::kMaxIterations))
      ->capture_default_str();
  cmd->add_flag("--no-kvm", o->compare.no_kvm, "Only the simulator's rows");
  cmd->callback([o, status] { *status = run_compare(*o); });
}

}  // namespace trapscope::cli
