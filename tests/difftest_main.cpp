// tests/difftest_main.cpp — `difftest`: the random-program differential tester (simulator vs.
// this host's KVM, the CPU itself for CPL 3 code). Runs --count programs of --seed (default
// 100,000 of seed 1) and prints how many diverged, how many the simulator could not run
// (unsupported, by instruction), and the first few divergences with their programs
// disassembled. Replay one program with `difftest --seed S --only I`.
//
// Exit status: 0 no divergence (and KVM ran every program), 1 divergences or KVM problems,
// 2 bad arguments or KVM not usable.
#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "tests/difftest/harness.hpp"

namespace {

using namespace trapscope::difftest;

struct Options {
  uint64_t count = 100000;
  uint64_t seed = 1;
  uint64_t first = 0;
  bool only = false;
  unsigned show = 3;
  unsigned jobs = 0;
  bool verbose = false;
  bool fail_on_unsupported = false;
  GenOptions gen;
};

struct Tally {
  uint64_t by_verdict[5] = {};
  uint64_t faulted = 0;  // programs that faulted on KVM (and were compared as such)
  std::map<std::string, uint64_t> unsupported;
  std::map<std::string, uint64_t> undefined_flags;  // which undefined flags differed
  std::vector<std::pair<uint64_t, std::string>> reports;  // divergences and KVM problems
  uint64_t sim_instructions = 0;
  uint64_t kvm_ns = 0, sim_ns = 0;
  uint64_t stray_memory = 0;  // whole-memory comparisons that found a difference

  void merge(const Tally& o) {
    for (int i = 0; i < 5; ++i) by_verdict[i] += o.by_verdict[i];
    faulted += o.faulted;
    for (const auto& [k, v] : o.unsupported) unsupported[k] += v;
    for (const auto& [k, v] : o.undefined_flags) undefined_flags[k] += v;
    reports.insert(reports.end(), o.reports.begin(), o.reports.end());
    sim_instructions += o.sim_instructions;
    kvm_ns += o.kvm_ns;
    sim_ns += o.sim_ns;
    stray_memory += o.stray_memory;
  }
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::optional<uint64_t> only, list;
  // CLI11: --help prints the options; a bad value is an error naming the option (exit 2).
  CLI::App app{"difftest: the random-program differential tester (simulator vs. this host's "
               "KVM). Exit status: 0 no divergence (and KVM ran every program), 1 divergences or "
               "KVM problems, 2 bad arguments or KVM not usable.",
               "difftest"};
  app.add_option("--count", o.count, "programs to run")->capture_default_str();
  app.add_option("--seed", o.seed, "the stream of programs")->capture_default_str();
  app.add_option("--first", o.first, "first program index")->capture_default_str();
  app.add_option("--only", only, "run only program I and print its report");
  app.add_option("--list", list, "print program I (no run)");
  app.add_option("--length", o.gen.length, "templates per program")->capture_default_str();
  app.add_option("--jobs", o.jobs,
                 "worker threads, each with its own KVM VM and simulator (default: cores)");
  app.add_option("--show", o.show, "divergences to print in full")->capture_default_str();
  app.add_flag("--no-faults{false}", o.gen.allow_faults, "guard every div/idiv (no #DE)");
  app.add_flag("--no-branches{false}", o.gen.branches, "no jcc/jmp");
  app.add_flag("--popf-ac", o.gen.popf_ac, "let popfq toggle RFLAGS.AC");
  app.add_flag("--if0{false}", o.gen.start_if,
               "run with RFLAGS.IF = 0 (this host's pushfq then leaks the real IF = 1)");
  app.add_flag("--fail-on-unsupported", o.fail_on_unsupported,
               "exit 1 if the simulator could not run a program");
  app.add_flag("--verbose", o.verbose, "print every program's verdict");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (only) {
    o.first = *only;
    o.only = true;
    o.count = 1;
  }
  if (list) {
    std::fputs(describe(generate(o.seed, *list, o.gen)).c_str(), stdout);
    return 0;
  }
  std::string why;
  if (!trapscope::backend::kvm_usable(&why)) {
    std::fprintf(stderr, "difftest: KVM is not usable here (%s); the reference is the CPU via KVM\n",
                 why.c_str());
    return 2;
  }
  unsigned jobs = o.jobs ? o.jobs : std::max(1u, std::thread::hardware_concurrency());
  if (o.count < jobs) jobs = static_cast<unsigned>(std::max<uint64_t>(1, o.count));

  std::printf("difftest: seed %" PRIu64 ", programs %" PRIu64 "..%" PRIu64 ", %u templates each, %u job(s)\n",
              o.seed, o.first, o.first + o.count - 1, o.gen.length, jobs);
  // Undefined flags and results: compared only on the CPU the simulator models.
  o.gen.undefined_results = trapscope::test::compare_undefined();
  if (const std::string note = trapscope::test::undefined_flags_note(); !note.empty()) {
    std::printf("%s\n", note.c_str());
  } else {
    std::printf("this host is the CPU the simulator models: undefined flags are compared too\n");
  }
  std::fflush(stdout);

  std::vector<Tally> tallies(jobs);
  std::mutex io;
  std::string probe_note;
  std::exception_ptr failure;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (unsigned w = 0; w < jobs; ++w) {
    workers.emplace_back([&, w] {
      try {
        Harness h;
        if (w == 0) {
          std::lock_guard<std::mutex> lock(io);
          probe_note = h.host().note;
        }
        Tally& t = tallies[w];
        uint64_t since = o.first + w, done = 0;
        auto whole_memory = [&](uint64_t last) {
          if (t.stray_memory) return;  // reported once: the memories stay different
          const std::string d = h.memory_differences();
          if (d.empty()) return;
          ++t.stray_memory;
          t.reports.emplace_back(last, "DIVERGED: a write outside the compared regions, in one of programs " +
                                           std::to_string(since) + ".." + std::to_string(last) +
                                           " of worker " + std::to_string(w) + ":\n" + d);
        };
        for (uint64_t i = o.first + w; i < o.first + o.count; i += jobs) {
          const Program p = generate(o.seed, i, o.gen);
          const Comparison c = h.check(p);
          ++t.by_verdict[static_cast<int>(c.verdict)];
          t.sim_instructions += c.sim.instructions;
          t.kvm_ns += c.kvm.host_ns;
          t.sim_ns += c.sim.host_ns;
          if (c.faulted && (c.verdict == Verdict::kEqual || c.verdict == Verdict::kDiverged)) ++t.faulted;
          if (c.verdict == Verdict::kUnsupported) ++t.unsupported[c.unsupported];
          if (c.verdict == Verdict::kUndefinedFlagsOnly) {
            ++t.undefined_flags[flags_string(c.kvm.rflags ^ c.sim.rflags)];
          }
          const bool bad = c.verdict == Verdict::kDiverged || c.verdict == Verdict::kKvmProblem;
          if (o.only || (bad && t.reports.size() < o.show)) t.reports.emplace_back(i, report(p, c, o.only));
          if (++done % 1000 == 0 || i + jobs >= o.first + o.count) {
            whole_memory(i);
            since = i + jobs;
          }
          if (o.verbose) {
            std::lock_guard<std::mutex> lock(io);
            std::printf("%" PRIu64 ": %s%s\n", i, std::string(to_string(c.verdict)).c_str(),
                        c.verdict == Verdict::kUnsupported ? (" (" + c.unsupported + ")").c_str() : "");
          }
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(io);
        failure = std::current_exception();
      }
    });
  }
  for (auto& t : workers) t.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "difftest: %s\n", e.what());
      return 2;
    }
  }
  Tally all;
  for (const Tally& t : tallies) all.merge(t);
  std::sort(all.reports.begin(), all.reports.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });

  for (size_t i = 0; i < all.reports.size() && i < std::max<unsigned>(o.show, o.only ? 1 : 0); ++i) {
    std::printf("\n%s", all.reports[i].second.c_str());
  }
  const auto n = [&](Verdict v) { return all.by_verdict[static_cast<int>(v)]; };
  std::printf("\nKVM shutdown probe: %s\n", probe_note.c_str());
  std::printf("\n%" PRIu64 " programs in %.1f s (%.0f programs/s, %u job(s))\n", o.count, seconds,
              static_cast<double>(o.count) / seconds, jobs);
  std::printf("  per program: KVM %.1f us, simulator %.1f us (%.0f instructions, %.1f MIPS)\n",
              1e-3 * static_cast<double>(all.kvm_ns) / static_cast<double>(o.count),
              1e-3 * static_cast<double>(all.sim_ns) / static_cast<double>(o.count),
              static_cast<double>(all.sim_instructions) / static_cast<double>(o.count),
              all.sim_ns ? 1e3 * static_cast<double>(all.sim_instructions) / static_cast<double>(all.sim_ns) : 0.0);
  std::printf("  equal                 %" PRIu64 "\n", n(Verdict::kEqual));
  std::printf("  undefined flags only  %" PRIu64 "\n", n(Verdict::kUndefinedFlagsOnly));
  std::printf("  DIVERGED              %" PRIu64 "\n", n(Verdict::kDiverged));
  if (all.stray_memory) std::printf("  + stray writes found by whole-memory comparisons: %" PRIu64 "\n", all.stray_memory);
  std::printf("  unsupported (sim)     %" PRIu64 "\n", n(Verdict::kUnsupported));
  std::printf("  KVM problems          %" PRIu64 "\n", n(Verdict::kKvmProblem));
  std::printf("  (programs that faulted on KVM and were compared: %" PRIu64 ")\n", all.faulted);
  if (!all.unsupported.empty()) {
    std::vector<std::pair<uint64_t, std::string>> v;
    for (const auto& [k, c] : all.unsupported) v.emplace_back(c, k);
    std::sort(v.rbegin(), v.rend());
    std::printf("  the simulator stopped first at:");
    for (size_t i = 0; i < v.size() && i < 12; ++i) std::printf(" %s×%" PRIu64, v[i].second.c_str(), v[i].first);
    std::printf("\n");
  }
  if (!all.undefined_flags.empty()) {
    std::printf("  undefined flags that differed:");
    for (const auto& [k, c] : all.undefined_flags) std::printf(" %s×%" PRIu64, k.c_str(), c);
    std::printf("\n");
  }
  const bool bad = n(Verdict::kDiverged) || n(Verdict::kKvmProblem) || all.stray_memory ||
                   (o.fail_on_unsupported && n(Verdict::kUnsupported));
  return bad ? 1 : 0;
}
