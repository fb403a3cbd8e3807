// bench/export_chrome_speed.cpp — how fast, and in how much memory, does `trapscope export --format
// chrome` (trace/export_chrome.hpp) convert a large trace?
//
// The trace: the compute guest (guests/compute.asm, iterations patched large) on the simulator
// with every instruction recorded (Config::record_instructions), stopped after EVENTS
// instructions (default 1,000,000), written with trace::TraceWriter to a scratch directory.
// Instruction events are the heaviest to export (each is disassembled for its name and its
// JSON-lines args), so this is the slow case; KVM traces hold only exits.
// The export runs in a child process (fork), timed by the wall clock from the check pass
// (chrome_clock_for: the whole trace read once) to the last byte written, and its peak resident
// set is the child's ru_maxrss (wait4), so the simulator run that made the trace is not
// counted. Reported: events, wall and CPU seconds (the child's user + system time: steadier on
// a busy host), events per second of each, output MiB, peak RSS MiB.
//
// Usage: export_chrome [EVENTS [DIR]]   (DIR default $TMPDIR or /tmp; the files are removed)
// A program, not a test: it never fails on time. Exit status 0 after a measurement, 1 on a
// set-up error.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "backend/backend.hpp"
#include "peers.hpp"
#include "trace/export_chrome.hpp"
#include "trace/trace_file.hpp"

using namespace trapscope;

int main(int argc, char** argv) {
  const uint64_t events = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
  const char* tmp = std::getenv("TMPDIR");
  const std::string dir = argc > 2 ? argv[2] : (tmp && *tmp ? tmp : "/tmp");
  if (events == 0) {
    std::fprintf(stderr, "usage: export_chrome [EVENTS [DIR]]\n");
    return 1;
  }
  const std::string trace_path = dir + "/export_chrome_bench.trace";
  const std::string json_path = dir + "/export_chrome_bench.json";
  try {
    bench::ComputeImage image;
    backend::Config cfg;
    cfg.mode = platform::BootMode::kReal;
    cfg.record_instructions = true;
    auto b = backend::make_backend(backend::Kind::kSim, cfg);
    b->load(image.with(1'000'000));  // ~3.8e9 instructions: the limit below ends the run
    trace::TraceMetadata meta;
    meta.backend = "sim";
    meta.guest = "compute";
    trace::TraceWriter w(trace_path, meta);
    b->run({600.0, 0, events}, &w);
    w.finish();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "export_chrome: cannot make the trace: %s\n", e.what());
    return 1;
  }

  const auto start = std::chrono::steady_clock::now();
  const pid_t child = ::fork();
  if (child == 0) {
    try {
      std::FILE* out = std::fopen(json_path.c_str(), "wb");
      if (!out) _exit(1);
      const auto clock = trace::chrome_clock_for(trace_path);
      const auto c = trace::export_chrome(trace_path, clock, out, json_path);
      std::fclose(out);
      std::printf("trace events %llu, written: %llu slices, %llu instants, %llu flows\n",
                  static_cast<unsigned long long>(c.events),
                  static_cast<unsigned long long>(c.complete),
                  static_cast<unsigned long long>(c.instants),
                  static_cast<unsigned long long>(c.flows));
      std::fflush(stdout);
      _exit(0);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "export_chrome: %s\n", e.what());
      _exit(1);
    }
  }
  int status = 0;
  rusage ru{};
  if (child < 0 || ::wait4(child, &status, 0, &ru) != child || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "export_chrome: the export failed\n");
    return 1;
  }
  const double s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  FILE* f = std::fopen(json_path.c_str(), "rb");
  std::fseek(f, 0, SEEK_END);
  const long bytes = std::ftell(f);
  std::fclose(f);
  const double cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                     static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  std::printf("export of %llu events: wall %.2f s (%.0f events/s), CPU %.2f s (%.0f events/s), "
              "output %.1f MiB, peak RSS %.1f MiB\n",
              static_cast<unsigned long long>(events), s, static_cast<double>(events) / s, cpu,
              static_cast<double>(events) / cpu, static_cast<double>(bytes) / (1 << 20),
              static_cast<double>(ru.ru_maxrss) / 1024);
  std::remove(trace_path.c_str());
  std::remove(json_path.c_str());
  return 0;
}
