// bench/interp_mips.cpp — how fast is trapscope's interpreter, against Bochs and QEMU (TCG)?
//
// One guest (guests/compute.asm: a 512-byte boot sector running a 32-bit integer loop in real
// mode), five machines, measured in the same run:
//   interp off   trapscope's simulator in-process (backend::Kind::kSim), no event sink
//   interp on    the same with Config::record_instructions and a new trace::Recorder sink per
//                run: every retired instruction is recorded in memory (plus the I/O exits and
//                the run end), into fresh pages that the kernel zeroes on first touch, as a
//                first recording in a new process (the Recorder mmap()s its memory and
//                munmap()s it when destroyed, inside the timed region)
//   on reused    the same, but one Recorder rewound before each run (Recorder::rewind() keeps
//                its memory, as when a guest is re-run) and mapped by an untimed warm-up run:
//                the cost of recording without the kernel's page zeroing (information)
//   Bochs        `bochs -q -f <generated bochsrc>` booting the image from a floppy (Debian's
//                build: sdl2 display with SDL_VIDEODRIVER=dummy, else rfb; no log file)
//   QEMU         `qemu-system-x86_64 -accel tcg -display none -nodefaults ...` from a floppy
// Bochs and QEMU run as child processes (bench/peers.hpp, shared with bench/bt_speed); each
// machine is timed by the wall clock from start to exit (process start-up, firmware and all;
// for the simulator: creating the machine, loading and running it, and for "interp on"
// creating and destroying its Recorder). The guest's iteration count is patched into the
// image; every machine runs a small count N1 and a large count N2, and
//     MIPS = instructions per iteration * (N2 - N1) / (t(N2) - t(N1))
// so start-up and firmware costs cancel. The instruction count of the guest code is the same on
// every machine (no interrupts, no data-dependent instruction counts): trapscope's simulator
// measures it (instructions = a + b * N; b = 3844 by guests/compute.asm, which the bench
// checks), and when the simulator cannot run the guest the bench uses b from the source.
// N2 is calibrated per machine so that t(N2) - t(N1) is about --seconds; the machines are
// interleaved in R rounds (order rotated each round) and the median MIPS of each is reported.
// CPU time (rusage of the child; the process CPU clock for the simulator) gives a second MIPS
// figure that other work on a busy host disturbs less; the verdicts use the wall clock.
// `interp_mips --profile off|on [--n N]` runs the interpreter alone, for perf or callgrind.
//
// Every run's console line ("compute: n=... checksum=...") is checked against a C++ model of
// the guest's computation (model_checksum in peers.hpp), so a machine that computes wrongly — the
// simulator included — is reported, not timed.
//
// Targets (requirement "bench/ interpreter MIPS"): the interpreter with recording off at least
// as fast as Bochs (interp/Bochs >= 1.00); with every instruction recorded no more than 3x
// slower than with recording off, judged on the fresh recording (off/on <= 3.00; off/on reused
// is printed beside it). interp/QEMU is printed for information.
//
// This is a program, not a test: it never fails on time. Exit status: 0 after a measurement
// (PASS or MISS, even if Bochs or QEMU is missing), 1 for a usage or set-up error, 2 if a
// machine printed a wrong checksum.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "bench/command_line.hpp"
#include "peers.hpp"
#include "trace/recorder.hpp"

namespace {

using namespace trapscope;
using namespace trapscope::bench;

constexpr double kTargetVsBochs = 1.00;    // interp off MIPS / Bochs MIPS >=
constexpr double kTargetRecording = 3.00;  // interp off MIPS / interp on (fresh) MIPS <=
// The recordings here hold up to kMaxRecordedInsns on purpose: above trace::kRecorderLimitBytes.
constexpr size_t kRecorderBytes = size_t{1} << 30;

// [SECTION] The interpreter machines (Bochs and QEMU: peers.hpp).

// How the interpreter machine records: not at all, into a new Recorder per run (fresh memory),
// or into one Recorder rewound before each run (memory reused).
enum class Recording { kOff, kFresh, kReused };

class InterpMachine final : public Machine {
 public:
  explicit InterpMachine(const ComputeImage& image, Recording rec)
      : image_(image), record_(rec != Recording::kOff), fresh_(rec == Recording::kFresh) {
    description = record_ ? fresh_ ? "in-process simulator, Config::record_instructions, every "
                                     "instruction into a new trace::Recorder (fresh memory)"
                                   : "the same into one trace::Recorder, rewound before each "
                                     "run (memory reused)"
                           : "in-process simulator (backend::Kind::kSim), no event sink";
  }
  std::string name() const override {
    return !record_ ? "interp off" : fresh_ ? "interp on" : "on reused";
  }
  uint64_t last_events = 0, last_exits = 0;
  size_t last_memory = 0, last_sites = 0;  // the Recorder's memory_bytes() and sites after a run
  // Once known: instructions = count_base + count_per_iteration * N, checked on every run.
  uint64_t count_base = 0, count_per_iteration = 0;

  RunResult run(uint32_t iterations) override {
    const std::vector<uint8_t> img = image_.with(iterations);
    RunResult r;
    backend::Config cfg;
    cfg.memory_bytes = 16ull << 20;
    cfg.mode = platform::BootMode::kReal;
    cfg.load_address = kLoad;
    cfg.record_instructions = record_;
    backend::StopCondition stop;
    stop.timeout_s = 600;
    recorder_.rewind();
    const double t0 = now_s(), c0 = process_cpu_s();
    std::unique_ptr<backend::Backend> m = backend::make_backend(backend::Kind::kSim, cfg);
    m->load(img);
    backend::RunOutcome out;
    if (fresh_) {
      trace::Recorder fresh{kRecorderBytes};  // new memory: zeroed by the kernel on first touch
      out = m->run(stop, &fresh);
      last_events = fresh.size();
      last_memory = fresh.memory_bytes();
      last_sites = fresh.instruction_sites();
      // `fresh` is destroyed (munmap) here, inside the timed region.
    } else {
      out = m->run(stop, record_ ? &recorder_ : nullptr);
      last_events = recorder_.size();
      last_memory = recorder_.memory_bytes();
      last_sites = recorder_.instruction_sites();
    }
    r.seconds = now_s() - t0;
    r.cpu_seconds = process_cpu_s() - c0;
    r.instructions = out.instructions;
    last_exits = out.exits;
    r.line = console_line(m->devices().console.text());
    if (out.reason != trace::RunEndReason::kGuestExit || out.exit_code != 0) {
      r.error =
          "the run ended with " + std::string(trace::to_string(out.reason)) +
          (out.reason == trace::RunEndReason::kGuestExit ? " code " + std::to_string(out.exit_code)
                                                         : std::string()) +
          " after " + std::to_string(out.instructions) + " instructions" +
          (out.detail.empty() ? "" : ": " + out.detail);
      return r;
    }
    r.ok = true;
    check_line(&r, iterations);
    const uint64_t want = count_base + count_per_iteration * iterations;
    if (r.ok && count_per_iteration != 0 && out.instructions != want) {
      r.ok = false;
      r.error = "retired " + std::to_string(out.instructions) + " instructions, expected " +
                std::to_string(want) + " (= " + std::to_string(count_base) + " + " +
                std::to_string(count_per_iteration) + " * N): the simulator is not deterministic";
    }
    if (r.ok && record_ && last_events != out.instructions + out.exits + 1) {
      r.ok = false;
      r.error = "the Recorder holds " + std::to_string(last_events) + " events, expected " +
                std::to_string(out.instructions) + " instructions + " + std::to_string(out.exits) +
                " exits + the run end";
    }
    return r;
  }

 private:
  const ComputeImage& image_;
  bool record_, fresh_;
  trace::Recorder recorder_{kRecorderBytes};  // on reused
};

// A peer emulator run as a child process on a floppy image per iteration count.
// [SECTION] Measurement and report.

constexpr double kDefaultSeconds = 1.5;
constexpr uint64_t kDefaultRounds = 3;
constexpr uint32_t kN1 = 1;
constexpr double kProbeS = 0.15;  // calibration: grow N until t(N) - t(N1) >= this
constexpr uint64_t kMaxRecordedInsns = 100'000'000;  // ~400 MB of Recorder (4 B per event)

struct Options {
  uint64_t rounds = kDefaultRounds;
  double seconds = kDefaultSeconds;
  std::string bochs = "bochs", qemu = "qemu-system-x86_64";
  bool no_bochs = false, no_qemu = false, no_interp = false;
  std::string profile;  // "off", "on" or "reused": one interpreter run only (perf/callgrind)
  uint32_t profile_n = 2000;  // its iteration count
};

// The options (CLI11: --help prints them; a bad value is an error naming the option, exit 1).
void add_options(CLI::App& app, Options& o) {
  app.add_option("--rounds", o.rounds, "interleaved rounds; medians are reported")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1000}))
      ->capture_default_str();
  app.add_option("--seconds", o.seconds,
                 "guest work per measurement, t(N2) - t(N1), per machine, seconds")
      ->check(CLI::Range(0.05, 600.0))
      ->capture_default_str();
  app.add_option("--bochs", o.bochs, "the Bochs executable (default: bochs from PATH)");
  app.add_option("--qemu", o.qemu, "the QEMU executable (default: qemu-system-x86_64 from PATH)");
  app.add_flag("--no-bochs", o.no_bochs, "skip Bochs");
  app.add_flag("--no-qemu", o.no_qemu, "skip QEMU");
  app.add_flag("--no-interp", o.no_interp, "skip trapscope's interpreter");
  app.add_option("--profile", o.profile,
                 "only one interpreter run, recording off, on (a new Recorder) or reused (a "
                 "Recorder mapped by a first, untimed run), of --n iterations: a workload for "
                 "perf or valgrind --tool=callgrind")
      ->check(CLI::IsMember({"off", "on", "reused"}));
  app.add_option("--n", o.profile_n, "iterations of the --profile run")
      ->check(CLI::Range(uint32_t{1}, uint32_t{0xFFFFFFFF}))
      ->capture_default_str();
}

std::string host_cpu() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      const size_t c = line.find(':');
      if (c != std::string::npos) return line.substr(c + 2);
    }
  }
  return "unknown CPU";
}

struct Slot {
  Machine* m;
  uint32_t n2 = 0;
  std::vector<double> mips, cpu_mips, cpu_use, t1s;
  bool failed = false;
  std::string failure;
};

// --profile: one interpreter run, nothing else in the process worth a sample.
int profile(const Options& opt) {
  const ComputeImage image;
  InterpMachine m(image, opt.profile == "off"  ? Recording::kOff
                         : opt.profile == "on" ? Recording::kFresh
                                               : Recording::kReused);
  if (opt.profile == "reused") m.run(opt.profile_n);  // maps the Recorder's memory
  const RunResult r = m.run(opt.profile_n);
  if (!r.ok) {
    std::fprintf(stderr, "interp_mips: %s\n", r.error.c_str());
    return r.wrong_checksum ? 2 : 1;
  }
  std::printf("%s: N = %u, %llu instructions in %.3f s = %.2f MIPS (start-up included)\n",
              m.name().c_str(), opt.profile_n, static_cast<unsigned long long>(r.instructions),
              r.seconds, static_cast<double>(r.instructions) / r.seconds / 1e6);
  return 0;
}

int run_bench(const Options& opt) {
  const double bench_start = now_s();
  double load[1] = {-1};
  ::getloadavg(load, 1);
  std::printf(
      "interp_mips: trapscope's interpreter vs Bochs and QEMU (TCG) on one guest, in MIPS\n");
  std::printf("host:   %s, %ld CPUs, load average (1 min) %.2f at start\n", host_cpu().c_str(),
              ::sysconf(_SC_NPROCESSORS_ONLN), load[0]);
  const ComputeImage image;
  std::printf(
      "guest:  compute (guests/compute.asm): 512-byte boot sector at 0x%llx, real mode, "
      "32-bit integer loop\n"
      "        (load/store, add, sub, xor, rol, ror, shr, imul, cmp, jcc, jmp, inc, loop, "
      "dec); N iterations patched at offset %zu\n",
      static_cast<unsigned long long>(kLoad), kCountOffset);
  std::fflush(stdout);

  TempDir tmp("interp_mips");
  int status = 0;

  // The machines.
  InterpMachine off(image, Recording::kOff), on(image, Recording::kFresh),
      reused(image, Recording::kReused);
  std::unique_ptr<Machine> bochs, qemu;
  std::vector<Machine*> all;
  if (!opt.no_interp) {
    all.push_back(&off);
    all.push_back(&on);
    all.push_back(&reused);
  }

  // The instruction count per iteration, from the simulator (N = 1 and 2), checked against
  // the source.
  uint64_t per_iter = kInsnsPerIterationFromSource;
  std::string per_iter_source = "from guests/compute.asm (the simulator could not run the guest)";
  if (!opt.no_interp) {
    const RunResult a = off.run(1), b = off.run(2);
    if (a.ok && b.ok) {
      per_iter = b.instructions - a.instructions;
      const uint64_t c0 = a.instructions - per_iter;
      for (InterpMachine* m : {&off, &on, &reused}) {
        m->count_base = c0;
        m->count_per_iteration = per_iter;
      }
      per_iter_source = "measured by the simulator: instructions = " + std::to_string(c0) + " + " +
                        std::to_string(per_iter) + " * N";
      if (per_iter != kInsnsPerIterationFromSource) {
        per_iter_source += " (the source says " + std::to_string(kInsnsPerIterationFromSource) +
                           " per iteration: guests/compute.asm and this bench disagree)";
      }
    } else {
      const RunResult& bad = a.ok ? b : a;
      if (bad.wrong_checksum) status = 2;
      for (InterpMachine* m : {&off, &on, &reused}) {
        m->available = false;
        m->unavailable_reason = "the simulator cannot run the guest: " + bad.error;
      }
    }
  }
  std::printf("        %llu instructions per iteration, %s\n",
              static_cast<unsigned long long>(per_iter), per_iter_source.c_str());

  if (!opt.no_bochs) {
    bochs = make_bochs(image, tmp.path, opt.bochs);
    all.push_back(bochs.get());
  }
  if (!opt.no_qemu) {
    qemu = make_qemu(image, tmp.path, opt.qemu);
    all.push_back(qemu.get());
  }

  std::printf("\nmachines:\n");
  for (Machine* m : all) {
    std::printf("  %-10s %s\n", m->name().c_str(),
                m->available ? m->description.c_str() : "NOT MEASURED");
    if (!m->version.empty()) std::printf("  %-10s version: %s\n", "", m->version.c_str());
    if (!m->available) std::printf("  %-10s %s\n", "", m->unavailable_reason.c_str());
  }
  std::fflush(stdout);

  // Calibration: t(N1) (also a warm-up and a check of the result), then N grown 8x at a time
  // until t(N) - t(N1) >= kProbeS; N2 scaled from that to about --seconds.
  std::vector<Slot> slots;
  for (Machine* m : all) {
    if (!m->available) continue;
    Slot s;
    s.m = m;
    slots.push_back(s);
  }
  std::printf("\ncalibration (N1 = %u; N2 for about %.2f s of guest work per measurement):\n", kN1,
              opt.seconds);
  for (Slot& s : slots) {
    const Calibration c = calibrate(*s.m, kN1, opt.seconds, kProbeS);
    if (!c.ok) {
      s.failed = true;
      s.failure = c.error;
      if (c.wrong_checksum) status = 2;
      std::printf("  %-10s FAILED at N = %u: %s\n", s.m->name().c_str(), c.failed_n,
                  c.error.c_str());
      continue;
    }
    double n2 = c.n2;
    if (s.m == &on || s.m == &reused) {
      const double cap = static_cast<double>(kMaxRecordedInsns) / static_cast<double>(per_iter);
      if (n2 > cap) {
        n2 = cap;
        std::printf(
            "  (%s: N2 capped at %.0f iterations, %llu M recorded instructions, to "
            "bound the Recorder's memory)\n",
            s.m->name().c_str(), cap,
            static_cast<unsigned long long>(kMaxRecordedInsns / 1000000));
      }
    }
    s.n2 = clamp_n2(n2);
    std::printf(
        "  %-10s t(N1) = %.3f s, t(%u) - t(N1) = %.3f s  ->  N2 = %u (%.1f M instructions)\n",
        s.m->name().c_str(), c.t1, c.n_probe, c.dt, s.n2,
        static_cast<double>(s.n2) * static_cast<double>(per_iter) / 1e6);
    std::fflush(stdout);
  }

  // The Recorder of "on reused" keeps its memory between runs (Recorder::rewind()); one
  // untimed run at N2 maps all of it, so that no round pays the kernel's first touch of fresh
  // pages ("interp on" pays it on every run).
  for (Slot& s : slots) {
    if (s.m == &reused && !s.failed) {
      const RunResult r = s.m->run(s.n2);
      if (!r.ok) {
        s.failed = true;
        s.failure = r.error;
        if (r.wrong_checksum) status = 2;
      }
    }
  }
  std::printf(
      "\nrounds (each: t(N1) then t(N2) per machine, order rotated; MIPS = %llu * (N2 - N1) "
      "/ (t(N2) - t(N1))\nby the wall clock, and in brackets by CPU time)\n",
      static_cast<unsigned long long>(per_iter));
  std::printf("round");
  for (const Slot& s : slots) std::printf("  %21s", s.m->name().c_str());
  std::printf("\n");
  for (uint64_t round = 0; round < opt.rounds; ++round) {
    std::vector<double> row(slots.size(), -1), row_cpu(slots.size(), -1);
    for (size_t k = 0; k < slots.size(); ++k) {
      const size_t i = (round + k) % slots.size();
      Slot& s = slots[i];
      if (s.failed) continue;
      const PairResult p = measure_pair(*s.m, kN1, s.n2, per_iter);
      if (!p.ok) {
        s.failed = true;
        s.failure = p.error;
        if (p.wrong_checksum) status = 2;
        continue;
      }
      if (!p.valid) continue;  // a start-up hiccup larger than the work
      row[i] = p.mips;
      row_cpu[i] = p.cpu_mips;
      s.mips.push_back(row[i]);
      s.cpu_mips.push_back(row_cpu[i]);
      s.cpu_use.push_back(p.cpu_use);
      s.t1s.push_back(p.t1);
    }
    std::printf("%5llu", static_cast<unsigned long long>(round + 1));
    for (size_t i = 0; i < row.size(); ++i) {
      if (row[i] < 0) {
        std::printf("  %21s", "-");
      } else {
        char cell[64];
        std::snprintf(cell, sizeof cell, "%.2f [%.2f]", row[i], row_cpu[i]);
        std::printf("  %21s", cell);
      }
    }
    std::printf("\n");
    std::fflush(stdout);
  }

  // Results.
  std::printf("\nmedian MIPS (information only: absolute speed is a fact about this host)\n");
  std::map<const Machine*, double> med, best, cpu;
  bool busy = false;
  for (const Slot& s : slots) {
    if (s.failed) {
      std::printf("  %-10s FAILED: %s\n", s.m->name().c_str(), s.failure.c_str());
      continue;
    }
    if (s.mips.empty()) {
      std::printf("  %-10s no valid round\n", s.m->name().c_str());
      continue;
    }
    med[s.m] = median(s.mips);
    best[s.m] = *std::max_element(s.mips.begin(), s.mips.end());
    cpu[s.m] = median(s.cpu_mips);
    const double use = median(s.cpu_use);
    if (use < 0.9) busy = true;
    std::printf(
        "  %-10s %9.2f MIPS   best %.2f, by CPU time %.2f; CPU/wall %.2f; start-up "
        "t(N1) %.3f s; N2 = %u\n",
        s.m->name().c_str(), med[s.m], best[s.m], cpu[s.m], use, median(s.t1s), s.n2);
  }
  for (Machine* m : all) {
    if (!m->available) {
      std::printf("  %-10s not measured: %s\n", m->name().c_str(), m->unavailable_reason.c_str());
    }
  }

  auto have = [&](const Machine* m) { return m != nullptr && med.count(m) != 0; };
  auto brackets = [&](const Machine* a, const Machine* b) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "[best %.3fx, CPU time %.3fx]", best[a] / best[b],
                  cpu[a] / cpu[b]);
    return std::string(buf);
  };
  std::printf("\nratios of the median wall-clock MIPS (cross-checks in brackets):\n");
  if (have(&off) && have(bochs.get())) {
    const double r = med[&off] / med[bochs.get()];
    std::printf("  interp off / Bochs   %8.3fx  target >= %.2fx  %s  %s\n", r, kTargetVsBochs,
                r >= kTargetVsBochs ? "PASS" : "MISS", brackets(&off, bochs.get()).c_str());
  } else {
    std::printf("  interp off / Bochs   n/a (%s was not measured)\n",
                have(&off) ? "Bochs" : "the interpreter");
  }
  if (have(&off) && have(qemu.get())) {
    std::printf("  interp off / QEMU    %8.3fx  (information)     %s\n",
                med[&off] / med[qemu.get()], brackets(&off, qemu.get()).c_str());
  } else {
    std::printf("  interp off / QEMU    n/a (%s was not measured)\n",
                have(&off) ? "QEMU" : "the interpreter");
  }
  if (have(&off) && have(&on)) {
    const double r = med[&off] / med[&on];
    std::printf("  off / on (recording) %8.3fx  target <= %.2fx  %s  %s\n", r, kTargetRecording,
                r <= kTargetRecording ? "PASS" : "MISS", brackets(&off, &on).c_str());
    std::printf("    (a new Recorder per run: %.2f bytes of Recorder memory per event, %zu "
                "distinct instructions, at N2)\n",
                static_cast<double>(on.last_memory) / static_cast<double>(on.last_events),
                on.last_sites);
  } else {
    std::printf("  off / on (recording) n/a (the interpreter was not measured)\n");
  }
  if (have(&off) && have(&reused)) {
    std::printf("  off / on reused      %8.3fx  (information)     %s\n", med[&off] / med[&reused],
                brackets(&off, &reused).c_str());
  }
  if (have(bochs.get()) && have(qemu.get())) {
    std::printf("  Bochs / QEMU         %8.3fx  (information)     %s\n",
                med[bochs.get()] / med[qemu.get()], brackets(bochs.get(), qemu.get()).c_str());
  }
  if (busy) {
    std::printf(
        "note: a machine got less than 90%% of a CPU during its measurements (CPU/wall "
        "above): the host\n      was busy, so the wall-clock figures are pessimistic; "
        "re-run on a quiet host (the\n      CPU-time ratios are the better estimate "
        "meanwhile)\n");
  }
  std::printf("(%s; took %.1f s)\n",
              status == 2
                  ? "a machine printed a WRONG checksum: see above"
                  : "every completed run printed the checksum of the C++ model of the guest",
              now_s() - bench_start);
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"interp_mips: trapscope's interpreter in MIPS (recording off, and every "
               "instruction recorded into a new trace::Recorder, and into one reused) on "
               "guests/compute.asm, and the same boot-sector image on Bochs and on QEMU (TCG) in "
               "the same run; prints ratios. Exit status 0 after a measurement, 1 for a usage or "
               "set-up error, 2 if a machine printed a wrong checksum.",
               "interp_mips"};
  add_options(app, opt);
  if (const auto status = bench::parse_command_line(app, argc, argv)) return *status;
  try {
    return opt.profile.empty() ? run_bench(opt) : profile(opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "interp_mips: %s\n", e.what());
    return 1;
  }
}
