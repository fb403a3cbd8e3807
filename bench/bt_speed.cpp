// bench/bt_speed.cpp — binary translation against the interpreter, in the same run.
//
// Two guests, each run under `--technique emulation` (the interpreter, sim/machine.cpp) and
// `--technique bt` (sim/bt/translator.hpp), in-process (backend::Kind::kSim), no event sink:
//   compute    guests/compute.asm: a real-mode integer loop (compute-heavy, no privileged
//              instructions in the loop)
//   kernelops  guests/kernelops.asm: a 32-bit kernel loop of cli/sti, pushf/popf, CR0/CR3,
//              lgdt, mov ds, invlpg (kernel-heavy: 14 of 17 instructions sensitive/privileged)
// Each machine is created, loaded and run to the guest's exit R times (--rounds, default 7;
// --guest NAME runs one of the two, for profiling),
// the two techniques interleaved; the median wall-clock and CPU-clock (CLOCK_PROCESS_CPUTIME_ID,
// less disturbed by other work on a shared host) MIPS are reported with their ratio, and for bt
// the translation cost per translated guest instruction (host ns, measured around the
// translator) and the cache hit rate (unit entries that needed no translation).
// Both techniques must print the same console and retire the same number of instructions;
// otherwise the bench says so and exits 2.
// Target (issue 7): bt at least 3x the interpreter on compute. A program, not a test: it never
// fails on time (exit 0 after a measurement, PASS or MISS).
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "guests/catalog.hpp"
#include "sim/bt/translator.hpp"

namespace {

using namespace trapscope;

double clock_s(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Sample {
  double wall_s = 0, cpu_s = 0;
  uint64_t instructions = 0;
  std::string console;
  sim::bt::BtStats bt;
};

Sample run_once(const guests::Guest& g, virt::Technique technique) {
  backend::Config cfg;
  cfg.mode = *vmm::parse_boot_mode(g.mode);
  cfg.technique = technique;
  auto m = backend::make_backend(backend::Kind::kSim, cfg);
  m->load(g.image);
  Sample s;
  const double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
  const backend::RunOutcome r = m->run({60.0, 0, 0}, nullptr);
  s.cpu_s = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
  s.wall_s = clock_s(CLOCK_MONOTONIC) - w0;
  s.instructions = r.instructions;
  s.console = m->devices().console.text();
  if (const sim::bt::BtStats* b = m->bt_stats()) s.bt = *b;
  return s;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 7;
  std::vector<std::string> names = {"compute", "kernelops"};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      rounds = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--guest") == 0 && i + 1 < argc &&
               (std::strcmp(argv[i + 1], "compute") == 0 ||
                std::strcmp(argv[i + 1], "kernelops") == 0)) {
      names = {argv[++i]};  // one guest only (for profiling)
    } else {
      std::fprintf(stderr, "usage: bt_speed [--rounds R] [--guest compute|kernelops]\n");
      return 1;
    }
  }
  if (rounds < 1) rounds = 1;
  std::printf("bt_speed: interpreter (emulation) vs binary translation (bt), %d rounds, medians\n",
              rounds);
  std::printf("%-10s %-9s %10s %10s %10s  %s\n", "guest", "technique", "insns", "MIPS wall",
              "MIPS cpu", "");
  int status = 0;
  for (const std::string& guest : names) {
    const char* name = guest.c_str();
    const auto g = guests::find(name);
    if (!g) {
      std::fprintf(stderr, "bt_speed: built-in guest %s missing\n", name);
      return 1;
    }
    std::vector<double> wall[2], cpu[2];
    Sample last[2];
    for (int r = 0; r < rounds; ++r) {
      for (int k = 0; k < 2; ++k) {
        const int t = (r % 2) ? 1 - k : k;  // alternate which goes first
        last[t] = run_once(*g, t ? virt::Technique::kBt : virt::Technique::kEmulation);
        wall[t].push_back(static_cast<double>(last[t].instructions) / last[t].wall_s / 1e6);
        cpu[t].push_back(static_cast<double>(last[t].instructions) / last[t].cpu_s / 1e6);
      }
    }
    if (last[0].console != last[1].console || last[0].instructions != last[1].instructions) {
      std::printf("%s: bt and the interpreter DIFFER (console or instruction count)\n", name);
      status = 2;
    }
    for (int t = 0; t < 2; ++t) {
      std::printf("%-10s %-9s %10llu %10.1f %10.1f\n", name, t ? "bt" : "emulation",
                  static_cast<unsigned long long>(last[t].instructions), median(wall[t]),
                  median(cpu[t]));
    }
    const sim::bt::BtStats& b = last[1].bt;
    const uint64_t entries = b.lookups + b.chained;
    const double ratio_wall = median(wall[1]) / median(wall[0]);
    const double ratio_cpu = median(cpu[1]) / median(cpu[0]);
    std::printf("%-10s bt/emulation %.2fx wall, %.2fx cpu", name, ratio_wall, ratio_cpu);
    if (std::strcmp(name, "compute") == 0) {
      std::printf("  (target >= 3.00x: %s)", ratio_cpu >= 3.0 ? "PASS" : "MISS");
    }
    std::printf("\n%-10s translation: %llu units, %llu guest instructions translated, %.0f ns "
                "per translated instruction; cache hit rate %.4f%% (%llu unit entries, %llu by "
                "chain); %llu callouts, %llu invalidations\n",
                name, static_cast<unsigned long long>(b.translations),
                static_cast<unsigned long long>(b.translated_insns),
                b.translated_insns ? static_cast<double>(b.translate_ns) /
                                         static_cast<double>(b.translated_insns)
                                   : 0.0,
                entries ? 100.0 * static_cast<double>(entries - (b.lookups - b.hits)) /
                              static_cast<double>(entries)
                        : 0.0,
                static_cast<unsigned long long>(entries),
                static_cast<unsigned long long>(b.chained),
                static_cast<unsigned long long>(b.callouts),
                static_cast<unsigned long long>(b.invalidations));
  }
  std::printf("reference: VMware's translator, about 2300 cycles per translated instruction "
              "(Adams & Agesen, ASPLOS 2006)\n");
  return status;
}
