// bench/bt_speed.cpp — binary translation against the interpreter, in the same run.
//
// Two guests, each run under `--technique emulation` (the interpreter, sim/sim_machine.cpp) and
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
// The outside references: Bochs and QEMU-TCG run the same
// compute image as child processes (bench/peers.hpp, as in bench/interp_mips: N1 = 1 and N2
// calibrated to about --peer-seconds of guest work, MIPS = instructions per iteration *
// (N2 - N1) / (t(N2) - t(N1)) so that process start-up and firmware cancel, the checksum checked
// against the C++ model, the median of --peer-rounds measurements); bt's MIPS is divided by
// theirs, for information. A peer that is not installed is reported and skipped.
// Target: bt at least 3x the interpreter on compute. A program, not a test: it never
// fails on time (exit 0 after a measurement, PASS or MISS; 1 for a usage error; 2 if bt and the
// interpreter differ or a machine printed a wrong checksum).
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "guests/guest_catalog.hpp"
#include "bench/command_line.hpp"
#include "peers.hpp"
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

Sample run_once(const guests::Guest& g, sim::virt::Technique technique) {
  backend::Config cfg;
  cfg.mode = *platform::parse_boot_mode(g.mode);
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

using bench::median;

struct Options {
  int rounds = 7;
  std::vector<std::string> names = {"compute", "kernelops"};
  int peer_rounds = 3;
  double peer_seconds = 1.5;
  std::string bochs = "bochs", qemu = "qemu-system-x86_64";
  bool no_peers = false;
};

// The outside references on compute: Bochs and QEMU-TCG, median MIPS (wall, CPU) over
// opt.peer_rounds measurements each, printed with bt's ratio to them. Returns 2 if a peer
// printed a wrong checksum, else 0.
int run_peers(const Options& opt, double bt_wall, double bt_cpu) {
  const bench::ComputeImage image;
  // Instructions per iteration, measured by the simulator (N = 1 and 2).
  uint64_t per_iter = bench::kInsnsPerIterationFromSource;
  {
    backend::Config cfg;
    cfg.mode = platform::BootMode::kReal;
    cfg.load_address = bench::kLoad;
    uint64_t count[2] = {0, 0};
    for (uint32_t n = 1; n <= 2; ++n) {
      auto m = backend::make_backend(backend::Kind::kSim, cfg);
      m->load(image.with(n));
      count[n - 1] = m->run({60.0, 0, 0}, nullptr).instructions;
    }
    if (count[1] > count[0]) per_iter = count[1] - count[0];
  }
  std::printf("%-10s peers: Bochs and QEMU-TCG on the same image as child processes, N1 = 1, "
              "N2 for about %.1f s; MIPS = %llu * (N2 - N1) / (t(N2) - t(N1)), median of %d\n",
              "compute", opt.peer_seconds, static_cast<unsigned long long>(per_iter),
              opt.peer_rounds);
  bench::TempDir tmp("bt_speed");
  int status = 0;
  const std::unique_ptr<bench::Machine> peers[] = {bench::make_bochs(image, tmp.path, opt.bochs),
                                                   bench::make_qemu(image, tmp.path, opt.qemu)};
  const char* labels[] = {"Bochs", "QEMU-TCG"};
  for (int k = 0; k < 2; ++k) {
    bench::Machine& m = *peers[k];
    const char* label = labels[k];
    std::string failure;
    std::vector<double> wall, cpu;
    if (!m.available) {
      failure = (m.installed ? "not measured: " : "not installed: ") + m.unavailable_reason;
    } else {
      const bench::Calibration c = bench::calibrate(m, 1, opt.peer_seconds, 0.15);
      if (!c.ok) {
        failure = "FAILED at N = " + std::to_string(c.failed_n) + ": " + c.error;
        if (c.wrong_checksum) status = 2;
      }
      const uint32_t n2 = bench::clamp_n2(c.n2);
      for (int r = 0; c.ok && r < opt.peer_rounds && failure.empty(); ++r) {
        const bench::PairResult p = bench::measure_pair(m, 1, n2, per_iter);
        if (!p.ok) {
          failure = "FAILED at N = 1 or " + std::to_string(n2) + ": " + p.error;
          if (p.wrong_checksum) status = 2;
        } else if (p.valid) {
          wall.push_back(p.mips);
          cpu.push_back(p.cpu_mips);
        }
      }
      if (failure.empty() && wall.empty()) failure = "no valid measurement";
      if (failure.empty()) {
        std::printf("%-10s %-9s %10s %10.1f %10.1f  N2 = %u; %s\n", "compute", label, "-",
                    median(wall), median(cpu), n2, m.version.c_str());
      }
    }
    if (!failure.empty()) {
      std::printf("%-10s %-9s %s\n", "compute", label, failure.c_str());
      std::printf("%-10s bt/%s n/a\n", "compute", label);
    } else {
      std::printf("%-10s bt/%s %.2fx wall, %.2fx cpu  (for information)\n", "compute", label,
                  bt_wall / median(wall), bt_cpu / median(cpu));
    }
    std::fflush(stdout);
  }
  return status;
}

// The options (CLI11: --help prints them; a bad value is an error naming the option, exit 1).
void add_options(CLI::App& app, Options& o) {
  app.add_option("--rounds", o.rounds, "rounds of each technique per guest")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option_function<std::string>(
         "--guest", [&o](const std::string& g) { o.names = {g}; },
         "one guest only (for profiling): compute or kernelops")
      ->check(CLI::IsMember({"compute", "kernelops"}));
  app.add_option("--peer-rounds", o.peer_rounds, "measurements of Bochs and QEMU-TCG on compute")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--peer-seconds", o.peer_seconds, "guest work per peer measurement, seconds")
      ->check(CLI::Range(0.05, 600.0))
      ->capture_default_str();
  app.add_option("--bochs", o.bochs, "the Bochs executable (default: bochs from PATH)");
  app.add_option("--qemu", o.qemu,
                 "the QEMU executable (default: qemu-system-x86_64 from PATH)");
  app.add_flag("--no-peers", o.no_peers, "skip Bochs and QEMU-TCG");
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"bt_speed: binary translation (--technique bt) against the interpreter on "
               "compute and kernelops, in the same run; Bochs and QEMU-TCG on compute for "
               "information. Exit status 0 after a measurement, 1 for a usage error, 2 if bt and "
               "the interpreter disagree.",
               "bt_speed"};
  add_options(app, opt);
  if (const auto status = bench::parse_command_line(app, argc, argv)) return *status;
  const int rounds = opt.rounds;
  const std::vector<std::string>& names = opt.names;
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
        last[t] = run_once(*g, t ? sim::virt::Technique::kBt : sim::virt::Technique::kEmulation);
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
    const bool compute = std::strcmp(name, "compute") == 0;
    if (compute) {
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
    if (compute) {
      // The catalog's image computes its built-in iteration count: check bt's checksum.
      try {
        const uint32_t n = bench::ComputeImage().iterations();
        if (bench::console_line(last[1].console) != bench::expected_line(n)) {
          std::printf("%s: bt printed \"%s\", the model says \"%s\"\n", name,
                      bench::console_line(last[1].console).c_str(),
                      bench::expected_line(n).c_str());
          status = 2;
        }
        if (!opt.no_peers) {
          status = std::max(status, run_peers(opt, median(wall[1]), median(cpu[1])));
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "bt_speed: %s\n", e.what());
        return 1;
      }
    }
  }
  std::printf("reference: VMware's translator, about 2300 cycles per translated instruction "
              "(Adams & Agesen, ASPLOS 2006)\n");
  return status;
}
