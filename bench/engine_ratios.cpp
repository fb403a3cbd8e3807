// bench/engine_ratios.cpp — trapscope's two engines against Bochs and QEMU-TCG, as ratios per
// round (the engines' rows of the speed targets).
//
// Two workloads (bench/peers.hpp), each a boot sector the four machines run from the same image:
//   compute    guests/compute.asm: real mode, no paging, a 15-instruction integer loop
//   compute64  guests/compute64.asm: long mode with paging on, an 8-instruction integer loop
//              whose body includes `add [base + index*8], reg` (the held-out guest's shape)
// Machines: `interp` (the simulator's interpreter, --technique emulation) and `bt` (binary
// translation), in-process (backend::Kind::kSim, no event sink); Bochs and QEMU (TCG) as child
// processes (peers.hpp). Every machine runs N1 = 1 and a calibrated N2 iterations, and
//     MIPS = instructions per iteration * (N2 - N1) / (t(N2) - t(N1))
// so start-up (process, firmware, machine creation) cancels; instructions per iteration come
// from the simulator (N = 1 and 2), checked against the source. Each round measures every
// machine once (order rotated) and prints its MIPS and the ratios interp/Bochs, interp/QEMU,
// bt/interp and bt/QEMU of that round, by the wall clock and [by CPU time]. Every run's console
// line is checked against the workload's C++ model.
// Targets (on compute64): interp/Bochs >= 1.5 in every round, interp/QEMU >= 0.10,
// bt/QEMU >= 0.5; bt/interp for information. The verdicts are taken on the CPU-time ratios
// (rusage of the peers' processes, all threads; the process CPU clock for trapscope), which other
// work on a shared host disturbs far less than the wall clock; the load average is printed
// with every round.
// `engine_ratios --profile interp|bt [--guest G] [--n N]` runs one engine once (for callgrind).
//
// A program, not a test: exit 0 after a measurement (PASS or MISS, peers missing or not), 1 for
// a usage or set-up error, 2 if a machine printed a wrong checksum or miscounted.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "bench/command_line.hpp"
#include "peers.hpp"

namespace {

using namespace trapscope;
using namespace trapscope::bench;

// One of trapscope's engines on a workload, from machine creation to the guest's exit.
class SimEngine final : public Machine {
 public:
  SimEngine(const ComputeImage& image, sim::virt::Technique t) : image_(image), technique_(t) {
    description = std::string("in-process simulator, --technique ") +
                  (t == sim::virt::Technique::kBt ? "bt" : "emulation") + ", no event sink";
  }
  std::string name() const override {
    return technique_ == sim::virt::Technique::kBt ? "bt" : "interp";
  }
  uint64_t count_base = 0, count_per_iteration = 0;  // once known, checked on every run

  RunResult run(uint32_t iterations) override {
    const std::vector<uint8_t> img = image_.with(iterations);
    backend::Config cfg;
    cfg.mode = platform::BootMode::kReal;
    cfg.load_address = kLoad;
    cfg.technique = technique_;
    backend::StopCondition stop;
    stop.timeout_s = 600;
    RunResult r;
    const double t0 = now_s(), c0 = process_cpu_s();
    auto m = backend::make_backend(backend::Kind::kSim, cfg);
    m->load(img);
    const backend::RunOutcome out = m->run(stop, nullptr);
    r.seconds = now_s() - t0;
    r.cpu_seconds = process_cpu_s() - c0;
    r.instructions = out.instructions;
    r.line = console_line(m->devices().console.text(), image_.workload());
    if (out.reason != trace::RunEndReason::kGuestExit || out.exit_code != 0) {
      r.error = "the run ended with " + std::string(trace::to_string(out.reason)) + " after " +
                std::to_string(out.instructions) + " instructions" +
                (out.detail.empty() ? "" : ": " + out.detail);
      return r;
    }
    r.ok = true;
    check_line(&r, iterations, image_.workload());
    const uint64_t want = count_base + count_per_iteration * iterations;
    if (r.ok && count_per_iteration != 0 && out.instructions != want) {
      r.ok = false;
      r.error = "retired " + std::to_string(out.instructions) + " instructions, expected " +
                std::to_string(want);
    }
    return r;
  }

 private:
  const ComputeImage& image_;
  sim::virt::Technique technique_;
};

struct Options {
  int rounds = 5;
  double seconds = 1.0;
  std::vector<const Workload*> workloads = {&kCompute, &kCompute64};
  std::string bochs = "bochs", qemu = "qemu-system-x86_64";
  bool no_peers = false;
  std::string profile;  // "interp" or "bt": one run only
  uint32_t profile_n = 200;
};

double load_average() {
  double l[1] = {-1};
  ::getloadavg(l, 1);
  return l[0];
}

struct Slot {
  explicit Slot(Machine* machine) : m(machine) {}
  Machine* m;
  uint32_t n2 = 0;
  bool failed = false;
  std::vector<double> wall, cpu;  // per round; -1 = no valid measurement
};

// The ratio a/b of slots' round values, or -1.
double ratio(const Slot* a, const Slot* b, size_t round, bool cpu) {
  if (a == nullptr || b == nullptr || a->failed || b->failed) return -1;
  const auto& va = cpu ? a->cpu : a->wall;
  const auto& vb = cpu ? b->cpu : b->wall;
  if (round >= va.size() || round >= vb.size() || va[round] <= 0 || vb[round] <= 0) return -1;
  return va[round] / vb[round];
}

int run_workload(const Options& opt, const Workload& w) {
  int status = 0;
  const ComputeImage image(w);
  SimEngine interp(image, sim::virt::Technique::kEmulation), bt(image, sim::virt::Technique::kBt);
  uint64_t per_iter = w.insns_per_iteration_from_source;
  {
    const RunResult a = interp.run(1), b = interp.run(2);
    if (!a.ok || !b.ok) {
      std::printf("%s: the interpreter cannot run the guest: %s\n", w.guest,
                  (a.ok ? b : a).error.c_str());
      return 2;
    }
    per_iter = b.instructions - a.instructions;
    for (SimEngine* e : {&interp, &bt}) {
      e->count_base = a.instructions - per_iter;
      e->count_per_iteration = per_iter;
    }
  }
  std::printf("\n%s: %llu instructions per iteration (simulator; the source says %llu)\n", w.guest,
              static_cast<unsigned long long>(per_iter),
              static_cast<unsigned long long>(w.insns_per_iteration_from_source));
  if (per_iter != w.insns_per_iteration_from_source) status = 2;

  TempDir tmp("engine_ratios");
  std::unique_ptr<Machine> bochs, qemu;
  std::vector<Slot> slots = {Slot(&interp), Slot(&bt)};
  if (!opt.no_peers) {
    bochs = make_bochs(image, tmp.path, opt.bochs);
    qemu = make_qemu(image, tmp.path, opt.qemu);
    for (Machine* m : {bochs.get(), qemu.get()}) {
      if (m->available) {
        slots.emplace_back(m);
        std::printf("  %-7s %s\n", m->name().c_str(), m->version.c_str());
      } else {
        std::printf("  %-7s not measured: %s\n", m->name().c_str(), m->unavailable_reason.c_str());
      }
    }
  }
  for (Slot& s : slots) {
    const Calibration c = calibrate(*s.m, 1, opt.seconds, 0.15);
    if (!c.ok) {
      s.failed = true;
      if (c.wrong_checksum) status = 2;
      std::printf("  %-7s FAILED at N = %u: %s\n", s.m->name().c_str(), c.failed_n,
                  c.error.c_str());
      continue;
    }
    s.n2 = clamp_n2(c.n2);
  }
  Slot* find[4] = {&slots[0], &slots[1], nullptr, nullptr};  // interp, bt, Bochs, QEMU
  for (Slot& s : slots) {
    if (bochs && s.m == bochs.get()) find[2] = &s;
    if (qemu && s.m == qemu.get()) find[3] = &s;
  }
  std::printf("  round  %-34s %-44s load\n", "MIPS interp / bt / Bochs / QEMU",
              "interp/Bochs  interp/QEMU  bt/interp  bt/QEMU");
  struct Row {
    const char* name;
    int a, b;
    double target;  // >= target on compute64; 0: information
  };
  const Row rows[] = {{"interp/Bochs", 0, 2, 1.5},
                      {"interp/QEMU", 0, 3, 0.10},
                      {"bt/interp", 1, 0, 0},
                      {"bt/QEMU", 1, 3, 0.5}};
  for (int round = 0; round < opt.rounds; ++round) {
    for (size_t k = 0; k < slots.size(); ++k) {
      Slot& s = slots[(round + k) % slots.size()];
      double wall = -1, cpu = -1;
      if (!s.failed) {
        const PairResult p = measure_pair(*s.m, 1, s.n2, per_iter);
        if (!p.ok) {
          s.failed = true;
          if (p.wrong_checksum) status = 2;
          std::printf("  %s FAILED: %s\n", s.m->name().c_str(), p.error.c_str());
        } else if (p.valid) {
          wall = p.mips;
          cpu = p.cpu_mips;
        }
      }
      s.wall.push_back(wall);
      s.cpu.push_back(cpu);
    }
    char mips[64] = "";
    size_t at = 0;
    for (const Slot* s : find) {
      const double v = s != nullptr && !s->wall.empty() ? s->wall.back() : -1;
      at += std::snprintf(mips + at, sizeof mips - at, v > 0 ? "%.0f " : "- ", v);
    }
    std::printf("  %5d  %-34s", round + 1, mips);
    for (const Row& row : rows) {
      const double r = ratio(find[row.a], find[row.b], round, false);
      const double c = ratio(find[row.a], find[row.b], round, true);
      if (r < 0) std::printf(" %-11s", "-");
      else std::printf(" %.2f [%.2f]", r, c);
    }
    std::printf("  %.2f\n", load_average());
    std::fflush(stdout);
  }
  std::printf("  %s summary (wall clock; [CPU time]), targets on compute64:\n",
              w.guest);
  for (const Row& row : rows) {
    std::vector<double> v, c;
    for (int round = 0; round < opt.rounds; ++round) {
      const double r = ratio(find[row.a], find[row.b], round, false);
      if (r > 0) v.push_back(r);
      const double rc = ratio(find[row.a], find[row.b], round, true);
      if (rc > 0) c.push_back(rc);
    }
    if (v.empty()) {
      std::printf("    %-13s n/a\n", row.name);
      continue;
    }
    const double lo = *std::min_element(v.begin(), v.end());
    std::printf("    %-13s median %.3fx min %.3fx [median %.3fx min %.3fx]", row.name, median(v),
                lo, median(c), *std::min_element(c.begin(), c.end()));
    if (row.target > 0 && &w == &kCompute64 && !c.empty()) {
      // interp/Bochs: in every round; the others: the median; by CPU time.
      const bool every = row.a == 0 && row.b == 2;
      const double got = every ? *std::min_element(c.begin(), c.end()) : median(c);
      std::printf("  target >= %.2fx%s (CPU time): %s", row.target, every ? " every round" : "",
                  got >= row.target ? "PASS" : "MISS");
    }
    std::printf("\n");
  }
  return status;
}

int profile(const Options& opt) {
  const ComputeImage image(*opt.workloads.back());
  SimEngine e(image, opt.profile == "bt" ? sim::virt::Technique::kBt : sim::virt::Technique::kEmulation);
  const RunResult r = e.run(opt.profile_n);
  if (!r.ok) {
    std::fprintf(stderr, "engine_ratios: %s\n", r.error.c_str());
    return r.wrong_checksum ? 2 : 1;
  }
  std::printf("%s on %s: N = %u, %llu instructions in %.3f s\n", e.name().c_str(),
              image.workload().guest, opt.profile_n,
              static_cast<unsigned long long>(r.instructions), r.seconds);
  return 0;
}

// The options (CLI11: --help prints them; a bad value is an error naming the option, exit 1).
void add_options(CLI::App& app, Options& o) {
  app.add_option("--rounds", o.rounds, "rounds; each measures every machine once")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--seconds", o.seconds, "guest work per measurement, t(N2) - t(N1), seconds")
      ->check(CLI::Range(0.05, 600.0))
      ->capture_default_str();
  app.add_option_function<std::string>(
         "--guest",
         [&o](const std::string& g) { o.workloads = {g == "compute" ? &kCompute : &kCompute64}; },
         "one workload only, compute or compute64 (default: both)")
      ->check(CLI::IsMember({"compute", "compute64"}));
  app.add_option("--bochs", o.bochs, "the Bochs executable (default: bochs from PATH)");
  app.add_option("--qemu", o.qemu, "the QEMU executable (default: qemu-system-x86_64 from PATH)");
  app.add_flag("--no-peers", o.no_peers, "trapscope's engines only");
  app.add_option("--profile", o.profile,
                 "one run of this engine (interp or bt) on --guest (default compute64) with --n "
                 "iterations: a workload for valgrind --tool=callgrind")
      ->check(CLI::IsMember({"interp", "bt"}));
  app.add_option("--n", o.profile_n, "iterations of the --profile run")
      ->check(CLI::Range(uint32_t{1}, uint32_t{0xFFFFFFFF}))
      ->capture_default_str();
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"engine_ratios: trapscope's interpreter and binary translation against Bochs and "
               "QEMU-TCG on compute and compute64, ratios per round. Exit status 0 after a "
               "measurement, 1 for a usage or set-up error, 2 if a machine printed a wrong "
               "checksum or miscounted.",
               "engine_ratios"};
  add_options(app, opt);
  if (const auto status = bench::parse_command_line(app, argc, argv)) return *status;
  try {
    if (!opt.profile.empty()) return profile(opt);
    std::printf("engine_ratios: interp and bt vs Bochs and QEMU-TCG, %d rounds, MIPS from "
                "t(N2) - t(N1) (about %.1f s each); load average %.2f at start\n",
                opt.rounds, opt.seconds, load_average());
    int status = 0;
    for (const Workload* w : opt.workloads) status = std::max(status, run_workload(opt, *w));
    std::printf("load average %.2f at the end\n", load_average());
    return status;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "engine_ratios: %s\n", e.what());
    return 1;
  }
}
