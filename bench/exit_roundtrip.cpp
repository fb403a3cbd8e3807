// bench/exit_roundtrip.cpp — how much does trapscope's run loop add to a VM exit round trip?
//
// One guest, three loops, measured in the same run:
//   raw            a minimal KVM_RUN loop written here with the bare ioctls (no CPUID, no
//                  devices, no checks beyond the exit reason): the least any VMM must pay
//   trapscope off  vmm::KvmMachine::run(limits, nullptr): typed exits, the device bus, limits
//   trapscope on   the same with a trace::TraceWriter sink: every exit recorded to a trace file
// The guest is real-mode code at the default load address that leaves to user space on every
// iteration of its loop:  mov dx, 0x80 ; l: out dx, al ; jmp l  (port 0x80 is unclaimed on
// trapscope's bus, so its writes are ignored).
//
// Each measurement runs N exits (default: what the raw loop does in ~0.25 s on this host); the
// three loops are interleaved in R rounds (the order rotated every round) so that host drift
// hits all three alike. The result is a ratio of time per exit, trapscope / raw (1.00 = same
// speed), from the median exits/s of each loop, with the best-of-R ratio as a cross-check;
// absolute speeds are printed for information only (facts about this host, not trapscope).
// Targets: ≤ 1.10 with tracing off, ≤ 1.25 with tracing on.
//
// This is a program, not a test: it never fails on time. Exit status: 0 after a measurement
// (PASS or MISS), 1 for a usage or trace-file error, 2 if KVM cannot be used (or cannot run the
// guest) on this host.
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/command_line.hpp"
#include "trace/trace_file.hpp"
#include "vmm/doctor.hpp"
#include "vmm/kvm_machine.hpp"

namespace {

using namespace trapscope;

// mov dx, 0x80 ; l: out dx, al ; jmp short l
constexpr uint8_t kGuest[] = {0xBA, 0x80, 0x00, 0xEE, 0xEB, 0xFD};
constexpr uint16_t kGuestPort = 0x80;
constexpr uint64_t kLoad = platform::kDefaultLoadAddress;  // real mode: CS = 0, IP = 0x8000
constexpr uint64_t kMemoryBytes = 1ull << 20;         // same for all loops
constexpr double kRunTimeoutS = 120.0;                // a safety net only: runs end at N exits

constexpr double kTargetOff = 1.10;
constexpr double kTargetOn = 1.25;

// KVM (or the guest on it) is not usable here: exit status 2.
class KvmUnusable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fail_errno(const char* op) {
  throw KvmUnusable(std::string(op) + ": " + std::strerror(errno));
}

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// [SECTION] The raw loop: the bare KVM API, as a minimal VMM would drive it.

class RawLoop {
 public:
  RawLoop() {
    kvm_ = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm_ < 0) fail_errno("open /dev/kvm");
    const int api = ::ioctl(kvm_, KVM_GET_API_VERSION, 0);
    if (api < 0) fail_errno("KVM_GET_API_VERSION");
    if (api != KVM_API_VERSION) {
      throw KvmUnusable("KVM_GET_API_VERSION returned " + std::to_string(api) + ", need " +
                        std::to_string(KVM_API_VERSION));
    }
    vm_ = ::ioctl(kvm_, KVM_CREATE_VM, 0);
    if (vm_ < 0) fail_errno("KVM_CREATE_VM");

    void* mem = ::mmap(nullptr, kMemoryBytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) fail_errno("mmap(guest memory)");
    mem_ = static_cast<uint8_t*>(mem);
    std::memcpy(mem_ + kLoad, kGuest, sizeof kGuest);
    kvm_userspace_memory_region region{};
    region.slot = 0;
    region.guest_phys_addr = 0;
    region.memory_size = kMemoryBytes;
    region.userspace_addr = reinterpret_cast<uint64_t>(mem_);
    if (::ioctl(vm_, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
      fail_errno("KVM_SET_USER_MEMORY_REGION");
    }
    // Real mode on VMX without unrestricted guest needs the TSS pages; harmless elsewhere.
    if (::ioctl(vm_, KVM_CHECK_EXTENSION, KVM_CAP_SET_TSS_ADDR) > 0 &&
        ::ioctl(vm_, KVM_SET_TSS_ADDR, 0xFFFBD000ul) < 0) {
      fail_errno("KVM_SET_TSS_ADDR");
    }

    vcpu_ = ::ioctl(vm_, KVM_CREATE_VCPU, 0);
    if (vcpu_ < 0) fail_errno("KVM_CREATE_VCPU");
    const int run_size = ::ioctl(kvm_, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size < static_cast<int>(sizeof(kvm_run))) fail_errno("KVM_GET_VCPU_MMAP_SIZE");
    run_size_ = static_cast<size_t>(run_size);
    void* run = ::mmap(nullptr, run_size_, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_, 0);
    if (run == MAP_FAILED) fail_errno("mmap(kvm_run)");
    run_ = static_cast<kvm_run*>(run);

    // Real mode, flat segments at 0 (the reset state has CS = F000 with base FFFF0000).
    kvm_sregs s{};
    if (::ioctl(vcpu_, KVM_GET_SREGS, &s) < 0) fail_errno("KVM_GET_SREGS");
    for (kvm_segment* seg : {&s.cs, &s.ds, &s.es, &s.fs, &s.gs, &s.ss}) {
      seg->base = 0;
      seg->selector = 0;
    }
    if (::ioctl(vcpu_, KVM_SET_SREGS, &s) < 0) fail_errno("KVM_SET_SREGS");
    kvm_regs r{};
    r.rip = kLoad;
    r.rsp = kLoad;
    r.rflags = 0x2;
    if (::ioctl(vcpu_, KVM_SET_REGS, &r) < 0) fail_errno("KVM_SET_REGS");
  }

  ~RawLoop() {
    if (run_ != nullptr) ::munmap(run_, run_size_);
    if (mem_ != nullptr) ::munmap(mem_, kMemoryBytes);
    for (int fd : {vcpu_, vm_, kvm_}) {
      if (fd >= 0) ::close(fd);
    }
  }
  RawLoop(const RawLoop&) = delete;
  RawLoop& operator=(const RawLoop&) = delete;

  // KVM_RUN until `exits` port-I/O exits have come back; anything else is an error.
  void run(uint64_t exits) {
    for (uint64_t n = 0; n < exits;) {
      if (::ioctl(vcpu_, KVM_RUN, 0) < 0) {
        if (errno == EINTR) continue;
        fail_errno("KVM_RUN");
      }
      if (run_->exit_reason != KVM_EXIT_IO) {
        throw KvmUnusable("raw loop: unexpected exit reason " +
                          std::to_string(run_->exit_reason) + " (" +
                          std::string(trace::exit_reason_name(run_->exit_reason)) +
                          "), expected IO");
      }
      ++n;
    }
  }

 private:
  int kvm_ = -1, vm_ = -1, vcpu_ = -1;
  uint8_t* mem_ = nullptr;
  kvm_run* run_ = nullptr;
  size_t run_size_ = 0;
};

// [SECTION] trapscope's loop.

vmm::KvmMachine make_machine() {
  vmm::MachineConfig cfg;
  cfg.memory_bytes = kMemoryBytes;
  cfg.mode = platform::BootMode::kReal;
  cfg.load_address = kLoad;
  return vmm::KvmMachine(cfg);
}

void check_run(const vmm::RunResult& r, uint64_t exits, const char* what) {
  if (r.reason != trace::RunEndReason::kExitLimit || r.exits != exits) {
    throw KvmUnusable(std::string(what) + ": the run ended with " +
                      std::string(trace::to_string(r.reason)) + " after " +
                      std::to_string(r.exits) + " of " + std::to_string(exits) + " exits\n" +
                      r.detail);
  }
}

void run_trapscope_off(vmm::KvmMachine& m, uint64_t exits) {
  const vmm::RunResult r = m.run(vmm::RunLimits{kRunTimeoutS, exits}, nullptr);
  check_run(r, exits, "trapscope, tracing off");
}

void run_trapscope_on(vmm::KvmMachine& m, uint64_t exits, const std::string& path,
                      const trace::TraceMetadata& meta) {
  trace::TraceWriter writer(path, meta);
  const vmm::RunResult r = m.run(vmm::RunLimits{kRunTimeoutS, exits}, &writer);
  writer.finish();
  check_run(r, exits, "trapscope, tracing on");
}

// The trace file of the last "on" run holds every exit (outside the timed region).
void check_trace(const std::string& path, uint64_t exits) {
  const trace::TraceFile t = trace::read_trace(path);
  const auto& ev = t.events;
  bool ok = ev.size() == exits + 1;
  if (ok) {
    const auto* first = ev.get<trace::VmExitEvent>(0, trace::EventType::kVmExit);
    const auto* end = ev.get<trace::RunEndEvent>(exits, trace::EventType::kRunEnd);
    ok = first != nullptr && end != nullptr &&
         first->reason == static_cast<uint32_t>(trace::ExitReason::kIo) &&
         first->payload.io.port == kGuestPort && end->exits == exits;
  }
  if (!ok) {
    throw std::runtime_error(path + ": the trace does not hold the " + std::to_string(exits) +
                             " port 0x80 exits and the run end it should (" +
                             std::to_string(ev.size()) + " events)");
  }
}

// [SECTION] Measurement and report.

enum Loop { kRaw = 0, kOff = 1, kOn = 2, kLoops = 3 };
constexpr const char* kLoopName[kLoops] = {"raw KVM_RUN loop", "trapscope, tracing off",
                                           "trapscope, tracing on"};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Default N: as many exits as the raw loop does in this long on this host (so the per-run
// costs of trapscope's loop — timer, final register reads, trace file create/close, together
// well under 1 ms — stay below 0.5% of a measurement).
constexpr double kMeasurementS = 0.25;
constexpr uint64_t kMinExits = 5'000, kMaxExits = 5'000'000;
constexpr uint64_t kDefaultRounds = 7;

struct Options {
  uint64_t exits = 0;  // 0 = calibrate
  uint64_t rounds = kDefaultRounds;
};

// The options (CLI11: --help prints them; a bad value is an error naming the option, exit 1).
void add_options(CLI::App& app, Options& o) {
  app.add_option("--exits", o.exits,
                 "VM exits per measurement (default: what the raw loop does in about " +
                     std::to_string(kMeasurementS).substr(0, 4) + " s here)")
      ->check(CLI::Range(uint64_t{1}, UINT64_MAX));
  app.add_option("--rounds", o.rounds, "rounds of the three loops; medians are reported")
      ->check(CLI::Range(uint64_t{1}, UINT64_MAX))
      ->capture_default_str();
}

std::string temp_trace_path() {
  const char* dir = std::getenv("TMPDIR");
  std::string tmpl = std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") +
                     "/exit_roundtrip.XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  const int fd = ::mkstemp(buf.data());
  if (fd < 0) {
    throw std::runtime_error(tmpl + ": cannot create a temporary trace file: " +
                             std::strerror(errno));
  }
  ::close(fd);
  return buf.data();
}

// Removes the temporary trace file however run_bench() is left.
struct FileRemover {
  std::string path;
  ~FileRemover() {
    if (!path.empty()) ::unlink(path.c_str());
  }
};

void print_verdict(const char* what, double ratio, double target) {
  std::printf("  %-26s %6.3fx   target <= %.2fx   %s\n", what, ratio, target,
              ratio <= target ? "PASS" : "MISS");
}

int run_bench(Options opt) {
  const uint64_t bench_start = now_ns();
  const std::string module = vmm::host_kvm_module();
  double load[1] = {-1};
  ::getloadavg(load, 1);
  std::printf("exit_roundtrip: VM exit round trips, trapscope's run loop vs a raw KVM_RUN loop\n");
  std::printf("KVM module:  %s\n", module.c_str());
  std::printf("guest:       real mode at 0x%llx: mov dx, 0x80; l: out dx, al; jmp l  "
              "(one KVM_EXIT_IO per iteration)\n",
              static_cast<unsigned long long>(kLoad));
  std::fflush(stdout);

  if (::access("/dev/kvm", F_OK) != 0) {
    throw KvmUnusable("/dev/kvm does not exist (KVM is not available on this host)");
  }
  RawLoop raw;
  vmm::KvmMachine off = make_machine();
  vmm::KvmMachine on = make_machine();
  off.load(kGuest);
  on.load(kGuest);

  FileRemover trace_file{temp_trace_path()};
  trace::TraceMetadata meta;
  meta.tool_version = "bench";
  meta.backend = "kvm";
  meta.guest = "exit_roundtrip loop";
  meta.mode = "real";
  meta.load_address = kLoad;
  meta.memory_bytes = kMemoryBytes;
  meta.host = module;

  auto run_loop = [&](int loop, uint64_t exits) -> double {  // exits per second
    const uint64_t t0 = now_ns();
    switch (loop) {
      case kRaw: raw.run(exits); break;
      case kOff: run_trapscope_off(off, exits); break;
      default: run_trapscope_on(on, exits, trace_file.path, meta); break;
    }
    const uint64_t dt = std::max<uint64_t>(now_ns() - t0, 1);
    return static_cast<double>(exits) * 1e9 / static_cast<double>(dt);
  };

  // Warm-up (not reported): page in the guest, the code paths and the trace file's blocks.
  // Then calibrate N from the fastest of three short raw runs (a busy host only slows one).
  for (int loop = kLoops - 1; loop >= 0; --loop) run_loop(loop, kMinExits);
  double calib = 0;
  for (int i = 0; i < 3; ++i) calib = std::max(calib, run_loop(kRaw, kMinExits));
  const bool calibrated = opt.exits == 0;
  if (calibrated) {
    const double n = std::clamp(calib * kMeasurementS, double(kMinExits), double(kMaxExits));
    opt.exits = static_cast<uint64_t>(n / 1000.0 + 0.5) * 1000;
  }
  std::printf("N = %llu exits per measurement%s, R = %llu rounds (the 3 loops interleaved, order "
              "rotated each round)\n",
              static_cast<unsigned long long>(opt.exits),
              calibrated ? " (raw loop ~0.25 s; --exits to set)" : "",
              static_cast<unsigned long long>(opt.rounds));
  std::printf("host load average (1 min) at start: %.2f   trace file: %s\n\n", load[0],
              trace_file.path.c_str());

  std::vector<double> eps[kLoops];
  std::vector<double> paired[kLoops];  // per round: raw exits/s / loop exits/s
  std::printf("round   raw exits/s   off exits/s    on exits/s    off/raw   on/raw\n");
  for (uint64_t round = 0; round < opt.rounds; ++round) {
    double r[kLoops] = {};
    for (int k = 0; k < kLoops; ++k) {
      const int loop = static_cast<int>((round + static_cast<uint64_t>(k)) % kLoops);
      r[loop] = run_loop(loop, opt.exits);
      eps[loop].push_back(r[loop]);
    }
    for (int loop = 0; loop < kLoops; ++loop) paired[loop].push_back(r[kRaw] / r[loop]);
    std::printf("%5llu  %12.0f  %12.0f  %12.0f    %6.3f   %6.3f\n",
                static_cast<unsigned long long>(round + 1), r[kRaw], r[kOff], r[kOn],
                paired[kOff].back(), paired[kOn].back());
    std::fflush(stdout);
  }
  check_trace(trace_file.path, opt.exits);

  double med[kLoops], best[kLoops];
  std::printf("\nmedian exits/s (information only: absolute speed is a fact about this host):\n");
  for (int loop = 0; loop < kLoops; ++loop) {
    med[loop] = median(eps[loop]);
    best[loop] = *std::max_element(eps[loop].begin(), eps[loop].end());
    std::printf("  %-24s %10.0f  (%.2f us per exit)\n", kLoopName[loop], med[loop],
                1e6 / med[loop]);
  }
  const double ratio_off = med[kRaw] / med[kOff];
  const double ratio_on = med[kRaw] / med[kOn];
  std::printf("\ntime per exit, trapscope / raw, from the medians (1.00 = as fast as raw):\n");
  print_verdict("tracing off:", ratio_off, kTargetOff);
  print_verdict("tracing on (trace file):", ratio_on, kTargetOn);

  // Other work on the host only ever slows a measurement down, so the fastest of the R
  // measurements of each loop is a second, less noise-prone estimate; say so when the rounds
  // disagree.
  std::printf("cross-check, best of %llu rounds of each loop: off %.3fx, on %.3fx\n",
              static_cast<unsigned long long>(opt.rounds), best[kRaw] / best[kOff],
              best[kRaw] / best[kOn]);
  double spread = 0;
  for (int loop : {kOff, kOn}) {
    const auto [lo, hi] = std::minmax_element(paired[loop].begin(), paired[loop].end());
    spread = std::max(spread, *hi / *lo - 1);
  }
  if (spread > 0.10) {
    std::printf("note: per-round ratios differ by up to %.0f%%: the host was busy during the "
                "run; re-run when it is quiet or with more --rounds\n",
                spread * 100);
  }
  std::printf("(KVM module %s; N = %llu, R = %llu; the last trace file held all %llu exits and "
              "the run end; took %.1f s)\n",
              module.c_str(), static_cast<unsigned long long>(opt.exits),
              static_cast<unsigned long long>(opt.rounds),
              static_cast<unsigned long long>(opt.exits),
              static_cast<double>(now_ns() - bench_start) / 1e9);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"exit_roundtrip: VM exits per second of trapscope's run loop (tracing off, and "
               "on with every exit written to a trace file) against a minimal raw KVM_RUN loop, "
               "interleaved in the same run; prints time-per-exit ratios. Exit status 0 after a "
               "measurement, 1 for a usage or trace-file error, 2 if KVM cannot be used.",
               "exit_roundtrip"};
  add_options(app, opt);
  if (const auto status = bench::parse_command_line(app, argc, argv)) return *status;
  try {
    return run_bench(opt);
  } catch (const KvmUnusable& e) {
    std::fprintf(stderr, "exit_roundtrip: KVM is not usable here: %s\n", e.what());
    return 2;
  } catch (const vmm::KvmError& e) {
    std::fprintf(stderr, "exit_roundtrip: KVM is not usable here: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exit_roundtrip: %s\n", e.what());
    return 1;
  }
}
