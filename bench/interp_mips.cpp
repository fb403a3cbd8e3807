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
// Bochs and QEMU run as child processes; each machine is timed by the wall clock from start to
// exit (process start-up, firmware and all; for the simulator: creating the machine, loading
// and running it, and for "interp on" creating and destroying its Recorder). The guest's
// iteration count is patched into the image; every machine runs a small count N1 and a large count N2, and
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
// the guest's computation (model_checksum below), so a machine that computes wrongly — the
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
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "guests/catalog.hpp"
#include "trace/recorder.hpp"

extern char** environ;

namespace {

using namespace trapscope;

// [SECTION] The guest: guests/compute.asm.

constexpr size_t kImageSize = 512;
constexpr size_t kMagicOffset = 500;  // "ITER"
constexpr size_t kCountOffset = 504;  // dword: iterations
constexpr uint64_t kLoad = 0x7C00;    // where a BIOS puts a boot sector
constexpr size_t kFloppyBytes = 1474560;
constexpr uint64_t kTableSteps = 256;
// Per iteration: 15 instructions per step (both paths of the jcc), 256 steps, and
// xor di / mov cx / dec ebp / jnz around them.
constexpr uint64_t kInsnsPerIterationFromSource = 15 * kTableSteps + 4;

constexpr double kTargetVsBochs = 1.00;    // interp off MIPS / Bochs MIPS >=
constexpr double kTargetRecording = 3.00;  // interp off MIPS / interp on (fresh) MIPS <=

inline uint32_t rotl(uint32_t v, unsigned n) { return (v << n) | (v >> (32 - n)); }
inline uint32_t rotr(uint32_t v, unsigned n) { return (v >> n) | (v << (32 - n)); }

// The guest's computation, step for step (see guests/compute.asm).
uint32_t model_checksum(uint32_t iterations) {
  uint32_t table[kTableSteps];
  uint32_t x = 0x12345678;
  for (uint32_t& t : table) {
    x = x * 1103515245u + 12345u;
    t = x;
  }
  uint32_t ebx = 0x9E3779B9, esi = 0x7F4A7C15;
  for (uint32_t n = 0; n < iterations; ++n) {
    for (uint32_t& t : table) {
      uint32_t eax = rotl(t + ebx, 5) ^ esi;
      uint32_t edx = eax * 0x2C1B3C6Du;
      t = edx;
      ebx += edx >> 11;
      esi -= eax;
      if (eax < ebx) {
        esi = rotr(esi, 3);
        ebx += 1;
      } else {
        ebx ^= 0x5BD1E995u;
      }
    }
  }
  uint32_t sum = ebx ^ esi;
  for (uint32_t t : table) sum = rotl(sum, 1) + t;
  return sum;
}

std::string expected_line(uint32_t iterations) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "compute: n=%08" PRIx32 " checksum=%08" PRIx32, iterations,
                model_checksum(iterations));
  return buf;
}

// The first line of `text` that starts with "compute:" (without its newline), or "".
std::string console_line(const std::string& text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("compute:", 0) == 0) return line;
    pos = end + 1;
  }
  return "";
}

class GuestImage {
 public:
  GuestImage() {
    const auto g = guests::find("compute");
    if (!g) {
      throw std::runtime_error("the built-in guest 'compute' is missing (guests/guests.cmake)");
    }
    base_.assign(g->image.begin(), g->image.end());
    if (base_.size() != kImageSize || std::memcmp(&base_[kMagicOffset], "ITER", 4) != 0 ||
        base_[510] != 0x55 || base_[511] != 0xAA) {
      throw std::runtime_error(
          "guest 'compute' is not the expected 512-byte boot sector with \"ITER\" at 500 and "
          "0x55AA at 510 (guests/compute.asm and bench/interp_mips.cpp disagree)");
    }
  }
  std::vector<uint8_t> with(uint32_t iterations) const {
    std::vector<uint8_t> img = base_;
    for (int i = 0; i < 4; ++i) img[kCountOffset + i] = static_cast<uint8_t>(iterations >> (8 * i));
    return img;
  }

 private:
  std::vector<uint8_t> base_;
};

// [SECTION] Helpers: time, files, child processes.

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  if (!out) throw std::runtime_error(path + ": cannot write");
}

// The last `lines` lines of text, indented (for error reports).
std::string tail(const std::string& text, int lines) {
  size_t pos = text.size();
  while (pos > 0 && text[pos - 1] == '\n') --pos;
  int n = 0;
  size_t start = pos;
  while (start > 0 && n < lines) {
    --start;
    if (text[start] == '\n' && ++n == lines) {
      ++start;
      break;
    }
  }
  std::string out;
  std::istringstream in(text.substr(start, pos - start));
  for (std::string line; std::getline(in, line);) out += "      | " + line + "\n";
  return out;
}

std::optional<std::string> find_in_path(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) == 0) return name;
    return std::nullopt;
  }
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    std::string full = dir.empty() ? std::string(".") : dir;
    full += '/';
    full += name;
    struct stat st {};
    if (::stat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(full.c_str(), X_OK) == 0) {
      return full;
    }
  }
  return std::nullopt;
}

double cpu_time(const rusage& ru) {
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// CPU time of this process (the simulator runs on the calling thread; nothing else runs).
double process_cpu_s() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

struct ChildResult {
  bool started = false;
  bool timed_out = false;
  int status = 0;  // wait status
  double seconds = 0;
  double cpu_seconds = 0;  // user + system time of the child (all its threads)
  std::string out, err;
  std::string describe() const {
    if (!started) return "could not be started";
    if (timed_out) return "timed out (killed)";
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
    return "ended with wait status " + std::to_string(status);
  }
};

// Runs argv with stdin from `stdin_path`, stdout/stderr to files in `dir`, extra environment
// variables `env`; kills it after timeout_s. Wall time from just before spawn to reaping.
ChildResult run_child(const std::vector<std::string>& argv, const std::string& dir,
                      const std::string& stdin_path, const std::vector<std::string>& env,
                      double timeout_s) {
  ChildResult r;
  const std::string out_path = dir + "/child.out", err_path = dir + "/child.err";
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_store(env);
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, stdin_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = -1;
  const double t0 = now_s();
  const int rc = ::posix_spawn(&pid, args[0], &fa, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    r.err = std::string("posix_spawn: ") + std::strerror(rc);
    return r;
  }
  r.started = true;
  // Wait for the exit (or the timeout) on a pidfd: no polling interval in the measurement.
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  bool exited = false;
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    int left_ms = static_cast<int>(timeout_s * 1000);
    while (true) {
      const int n = ::poll(&p, 1, left_ms);
      if (n > 0) {
        exited = true;
        break;
      }
      if (n == 0 || errno != EINTR) break;
    }
    ::close(pidfd);
  } else {
    // No pidfd (old kernel): poll waitpid every 0.2 ms.
    const double deadline = t0 + timeout_s;
    while (now_s() < deadline) {
      rusage ru{};
      const pid_t w = ::wait4(pid, &r.status, WNOHANG, &ru);
      if (w == pid) {
        r.seconds = now_s() - t0;
        r.cpu_seconds = cpu_time(ru);
        r.out = read_file(out_path);
        r.err = read_file(err_path);
        return r;
      }
      ::usleep(200);
    }
  }
  if (!exited) {
    r.timed_out = true;
    ::kill(pid, SIGKILL);
  }
  rusage ru{};
  while (::wait4(pid, &r.status, 0, &ru) < 0 && errno == EINTR) {
  }
  r.seconds = now_s() - t0;
  r.cpu_seconds = cpu_time(ru);
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  return r;
}

// [SECTION] The machines.

struct RunResult {
  bool ok = false;
  double seconds = 0;         // wall clock: what the targets are judged on
  double cpu_seconds = 0;     // CPU time (a cross-check that a busy host disturbs less)
  uint64_t instructions = 0;  // simulator only
  std::string line;           // the console line
  std::string error;          // !ok: what went wrong
  bool wrong_checksum = false;
};

class Machine {
 public:
  virtual ~Machine() = default;
  virtual std::string name() const = 0;  // short, for tables
  virtual RunResult run(uint32_t iterations) = 0;
  bool available = true;
  std::string unavailable_reason;
  std::string description;  // how it is run, for the header
  std::string version;
};

// Checks the console line of a run against the model.
void check_line(RunResult* r, uint32_t iterations) {
  const std::string want = expected_line(iterations);
  if (r->line == want) return;
  r->ok = false;
  if (r->line.empty()) {
    r->error = "no \"compute:\" line on the console";
  } else {
    r->wrong_checksum = true;
    r->error = "wrong result: printed \"" + r->line + "\", the model says \"" + want + "\"";
  }
}

// How the interpreter machine records: not at all, into a new Recorder per run (fresh memory),
// or into one Recorder rewound before each run (memory reused).
enum class Recording { kOff, kFresh, kReused };

class InterpMachine final : public Machine {
 public:
  explicit InterpMachine(const GuestImage& image, Recording rec)
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
    cfg.mode = vmm::BootMode::kReal;
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
      trace::Recorder fresh;  // new memory: mapped now, zeroed by the kernel on first touch
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
  const GuestImage& image_;
  bool record_, fresh_;
  trace::Recorder recorder_;  // on reused
};

// A peer emulator run as a child process on a floppy image per iteration count.
class ProcessMachine : public Machine {
 public:
  ProcessMachine(const GuestImage& image, std::string dir) : image_(image), dir_(std::move(dir)) {}

 protected:
  // The floppy image for `iterations` (written once, kept for the run).
  std::string floppy(uint32_t iterations) {
    auto it = floppies_.find(iterations);
    if (it != floppies_.end()) return it->second;
    const std::vector<uint8_t> img = image_.with(iterations);
    std::string data(kFloppyBytes, '\0');
    std::memcpy(data.data(), img.data(), img.size());
    const std::string path = dir_ + "/compute-" + std::to_string(iterations) + ".img";
    write_file(path, data);
    floppies_[iterations] = path;
    return path;
  }
  const GuestImage& image_;
  std::string dir_;
  std::map<uint32_t, std::string> floppies_;
};

constexpr double kChildTimeoutS = 300;

class QemuMachine final : public ProcessMachine {
 public:
  QemuMachine(const GuestImage& image, const std::string& dir, const std::string& exe)
      : ProcessMachine(image, dir), exe_(exe) {
    ChildResult v = run_child({exe_, "--version"}, dir_, "/dev/null", {}, 30);
    version = v.out.substr(0, v.out.find('\n'));
    description = exe_ +
                  " -accel tcg -display none -nodefaults -no-reboot -boot a -drive "
                  "format=raw,file=IMG,if=floppy -device isa-debug-exit,iobase=0xf4,"
                  "iosize=0x04 -debugcon stdio";
  }
  std::string name() const override { return "QEMU"; }
  RunResult run(uint32_t iterations) override {
    const std::string img = floppy(iterations);
    const ChildResult c =
        run_child({exe_, "-accel", "tcg", "-display", "none", "-nodefaults", "-no-reboot", "-boot",
                   "a", "-drive", "format=raw,file=" + img + ",if=floppy", "-device",
                   "isa-debug-exit,iobase=0xf4,iosize=0x04", "-debugcon", "stdio"},
                  dir_, "/dev/null", {}, kChildTimeoutS);
    RunResult r;
    r.seconds = c.seconds;
    r.cpu_seconds = c.cpu_seconds;
    r.line = console_line(c.out);
    // isa-debug-exit: exit status (value << 1) | 1; the guest writes 0.
    if (!c.started || c.timed_out || !WIFEXITED(c.status) || WEXITSTATUS(c.status) != 1) {
      r.error =
          "qemu " + c.describe() + " (expected status 1 from isa-debug-exit)\n" + tail(c.err, 5);
      return r;
    }
    r.ok = true;
    check_line(&r, iterations);
    return r;
  }

 private:
  std::string exe_;
};

class BochsMachine final : public ProcessMachine {
 public:
  BochsMachine(const GuestImage& image, const std::string& dir, const std::string& exe)
      : ProcessMachine(image, dir), exe_(exe) {
    // Debian's Bochs is built with the internal debugger, which stops before the first
    // instruction and reads commands from stdin: "continue". (Ignored by other builds.)
    cont_ = dir_ + "/bochs.stdin";
    write_file(cont_, "continue\n");
    for (const char* p : {"/usr/share/bochs/BIOS-bochs-latest"}) {
      if (::access(p, R_OK) == 0) rom_ = p;
    }
    for (const char* p :
         {"/usr/share/bochs/VGABIOS-lgpl-latest", "/usr/share/vgabios/vgabios.bin"}) {
      if (vgarom_.empty() && ::access(p, R_OK) == 0) vgarom_ = p;
    }
  }
  std::string name() const override { return "Bochs"; }

  // Finds a display library that runs headless (Bochs 2.7 in Debian has no "nogui"): sdl2 with
  // SDL's dummy video driver (package bochs-sdl), else rfb without waiting for a client (in the
  // bochs package; it listens on TCP port 5900 while Bochs runs). Returns false if neither works.
  bool choose_display(std::string* why) {
    std::string errors;
    for (int d = 0; d < 2; ++d) {
      display_ = d;
      RunResult r = run(1);
      if (r.ok || r.wrong_checksum) {
        version_from_banner();
        description = exe_ + " -q -f bochsrc (" + display_line() +
                      (d == 0 ? " with SDL_VIDEODRIVER=dummy" : "") +
                      ", floppy boot, no log file, port_e9_hack, sound: dummy, debugger: continue)";
        return true;
      }
      errors += "    with " + display_line() + ": " + r.error + "\n";
    }
    *why = "no headless display library worked:\n" + errors;
    return false;
  }

  RunResult run(uint32_t iterations) override {
    const std::string img = floppy(iterations);
    const std::string rc =
        dir_ + "/bochsrc-" + std::to_string(iterations) + "-" + std::to_string(display_);
    if (::access(rc.c_str(), R_OK) != 0) write_file(rc, bochsrc(img));
    std::vector<std::string> env;
    if (display_ == 0) env.push_back("SDL_VIDEODRIVER=dummy");
    const ChildResult c = run_child({exe_, "-q", "-f", rc}, dir_, cont_, env, kChildTimeoutS);
    last_out_ = c.out;
    RunResult r;
    r.seconds = c.seconds;
    r.cpu_seconds = c.cpu_seconds;
    r.line = console_line(c.out);
    // The guest ends Bochs through the shutdown port, which Bochs reports as a panic
    // ("Shutdown port: shutdown requested") with exit status 1.
    const bool shutdown = c.err.find("Shutdown port: shutdown requested") != std::string::npos ||
                          c.out.find("Shutdown port: shutdown requested") != std::string::npos;
    if (!c.started || c.timed_out || !shutdown) {
      r.error = "bochs " + c.describe() + " without the shutdown-port request\n" + tail(c.err, 5);
      return r;
    }
    r.ok = true;
    check_line(&r, iterations);
    return r;
  }

 private:
  std::string display_line() const {
    return display_ == 0 ? "display_library: sdl2" : "display_library: rfb, options=\"timeout=0\"";
  }
  std::string bochsrc(const std::string& img) const {
    std::string s = "# generated by bench/interp_mips\nmegs: 16\n";
    if (!rom_.empty()) s += "romimage: file=\"" + rom_ + "\"\n";
    if (!vgarom_.empty()) s += "vgaromimage: file=\"" + vgarom_ + "\"\n";
    s += display_line() + "\n";
    s += "floppya: 1_44=\"" + img + "\", status=inserted\n";
    s += "boot: floppy\n";
    s += "log: /dev/null\n";
    s += "panic: action=fatal\nerror: action=ignore\ninfo: action=ignore\ndebug: action=ignore\n";
    s += "port_e9_hack: enabled=1\n";
    // Without a sound card Bochs's ALSA mixer thread aborts; the guest makes no sound anyway.
    s += "sound: driver=dummy\nspeaker: enabled=0\n";
    s += "mouse: enabled=0\n";
    return s;
  }
  void version_from_banner() {
    const size_t p = last_out_.find("Bochs x86 Emulator ");
    if (p != std::string::npos) {
      const size_t e = last_out_.find('\n', p);
      version = last_out_.substr(p, e == std::string::npos ? std::string::npos : e - p);
      while (!version.empty() && version.back() == ' ') version.pop_back();
    }
  }

  std::string exe_, cont_, rom_, vgarom_, last_out_;
  int display_ = 0;
};

// The Debian package version of `pkg`, or "".
std::string debian_version(const std::string& dir, const std::string& pkg) {
  const auto dq = find_in_path("dpkg-query");
  if (!dq) return "";
  const ChildResult c = run_child({*dq, "-W", "-f=${Version}", pkg}, dir, "/dev/null", {}, 30);
  if (!c.started || c.timed_out || !WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0) return "";
  return c.out;
}

// [SECTION] Measurement and report.

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

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

void usage(std::FILE* out) {
  std::fprintf(
      out,
      "usage: interp_mips [--rounds R] [--seconds T] [--bochs PATH] [--qemu PATH]\n"
      "                   [--no-bochs] [--no-qemu] [--no-interp]\n"
      "       interp_mips --profile off|on|reused [--n N]\n"
      "  Measures trapscope's interpreter in MIPS (recording off, and every instruction\n"
      "  recorded into a new trace::Recorder, and into one reused) on guests/compute.asm, and\n"
      "  the same boot-sector image on Bochs and on QEMU (TCG) in the same run; prints ratios.\n"
      "  --rounds R    interleaved rounds; medians are reported (default %llu)\n"
      "  --seconds T   guest work per measurement, t(N2) - t(N1), per machine (default %.1f)\n"
      "  --bochs PATH  the Bochs executable (default: bochs from PATH)\n"
      "  --qemu PATH   the QEMU executable (default: qemu-system-x86_64 from PATH)\n"
      "  --profile M   only one interpreter run, recording off, on (a new Recorder) or reused\n"
      "                (a Recorder mapped by a first, untimed run), of N iterations (default\n"
      "                2000): a workload for perf or valgrind --tool=callgrind\n",
      static_cast<unsigned long long>(kDefaultRounds), kDefaultSeconds);
}

bool parse_args(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "-h" || a == "--help") {
      usage(stdout);
      std::exit(0);
    } else if (a == "--no-bochs") {
      o->no_bochs = true;
    } else if (a == "--no-qemu") {
      o->no_qemu = true;
    } else if (a == "--no-interp") {
      o->no_interp = true;
    } else if (v != nullptr && a == "--profile" &&
               (std::string(v) == "off" || std::string(v) == "on" ||
                std::string(v) == "reused")) {
      o->profile = v;
      ++i;
    } else if (v != nullptr && a == "--n") {
      char* end = nullptr;
      const unsigned long long n = std::strtoull(v, &end, 10);
      if (*v == '-' || *end != '\0' || n == 0 || n > 0xFFFFFFFFull) return false;
      o->profile_n = static_cast<uint32_t>(n);
      ++i;
    } else if (v != nullptr && (a == "--bochs" || a == "--qemu")) {
      (a == "--bochs" ? o->bochs : o->qemu) = v;
      ++i;
    } else if (v != nullptr && a == "--rounds") {
      char* end = nullptr;
      const unsigned long long n = std::strtoull(v, &end, 10);
      if (*v == '-' || *end != '\0' || n == 0 || n > 1000) return false;
      o->rounds = n;
      ++i;
    } else if (v != nullptr && a == "--seconds") {
      char* end = nullptr;
      const double s = std::strtod(v, &end);
      if (*end != '\0' || !(s >= 0.05 && s <= 600)) return false;
      o->seconds = s;
      ++i;
    } else {
      std::fprintf(stderr, "interp_mips: bad argument '%s'\n", argv[i]);
      return false;
    }
  }
  return true;
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

std::string make_temp_dir() {
  const char* dir = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/interp_mips.XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    throw std::runtime_error(tmpl +
                             ": cannot create a temporary directory: " + std::strerror(errno));
  }
  return buf.data();
}

// Removes the temporary directory (flat: images, bochsrc files, child output) at the end.
struct DirRemover {
  std::string path;
  ~DirRemover() {
    if (path.empty()) return;
    if (DIR* d = ::opendir(path.c_str())) {
      while (const dirent* e = ::readdir(d)) {
        const std::string n = e->d_name;
        if (n != "." && n != "..") ::unlink((path + "/" + n).c_str());
      }
      ::closedir(d);
    }
    if (::rmdir(path.c_str()) != 0) {
      std::fprintf(stderr, "interp_mips: could not remove %s\n", path.c_str());
    }
  }
};

struct Slot {
  Machine* m;
  uint32_t n2 = 0;
  std::vector<double> mips, cpu_mips, cpu_use, t1s;
  bool failed = false;
  std::string failure;
};

// --profile: one interpreter run, nothing else in the process worth a sample.
int profile(const Options& opt) {
  const GuestImage image;
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

int bench(const Options& opt) {
  const double bench_start = now_s();
  double load[1] = {-1};
  ::getloadavg(load, 1);
  std::printf(
      "interp_mips: trapscope's interpreter vs Bochs and QEMU (TCG) on one guest, in MIPS\n");
  std::printf("host:   %s, %ld CPUs, load average (1 min) %.2f at start\n", host_cpu().c_str(),
              ::sysconf(_SC_NPROCESSORS_ONLN), load[0]);
  const GuestImage image;
  std::printf(
      "guest:  compute (guests/compute.asm): 512-byte boot sector at 0x%llx, real mode, "
      "32-bit integer loop\n"
      "        (load/store, add, sub, xor, rol, ror, shr, imul, cmp, jcc, jmp, inc, loop, "
      "dec); N iterations patched at offset %zu\n",
      static_cast<unsigned long long>(kLoad), kCountOffset);
  std::fflush(stdout);

  DirRemover tmp{make_temp_dir()};
  int status = 0;

  // The machines.
  InterpMachine off(image, Recording::kOff), on(image, Recording::kFresh),
      reused(image, Recording::kReused);
  std::unique_ptr<BochsMachine> bochs;
  std::unique_ptr<QemuMachine> qemu;
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
    if (auto exe = find_in_path(opt.bochs)) {
      bochs = std::make_unique<BochsMachine>(image, tmp.path, *exe);
      std::string why;
      if (!bochs->choose_display(&why)) {
        bochs->available = false;
        bochs->unavailable_reason = why;
      }
      const std::string deb = debian_version(tmp.path, "bochs");
      if (!deb.empty()) bochs->version += " (Debian package bochs " + deb + ")";
    } else {
      bochs = std::make_unique<BochsMachine>(image, tmp.path, opt.bochs);
      bochs->available = false;
      bochs->unavailable_reason = "'" + opt.bochs +
                                  "' not found (Debian: apt-get install bochs "
                                  "bochs-sdl bochsbios vgabios)";
    }
    all.push_back(bochs.get());
  }
  if (!opt.no_qemu) {
    if (auto exe = find_in_path(opt.qemu)) {
      qemu = std::make_unique<QemuMachine>(image, tmp.path, *exe);
      const std::string deb = debian_version(tmp.path, "qemu-system-x86");
      if (!deb.empty() && qemu->version.find(deb) == std::string::npos)
        qemu->version += " (Debian package qemu-system-x86 " + deb + ")";
    } else {
      qemu = std::make_unique<QemuMachine>(image, tmp.path, opt.qemu);
      qemu->available = false;
      qemu->unavailable_reason =
          "'" + opt.qemu + "' not found (Debian: apt-get install qemu-system-x86)";
    }
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
    const RunResult r1 = s.m->run(kN1);
    if (!r1.ok) {
      s.failed = true;
      s.failure = r1.error;
      if (r1.wrong_checksum) status = 2;
      std::printf("  %-10s FAILED at N = %u: %s\n", s.m->name().c_str(), kN1, r1.error.c_str());
      continue;
    }
    uint32_t n = 64;
    double dt = 0;
    while (true) {
      const RunResult r = s.m->run(n);
      if (!r.ok) {
        s.failed = true;
        s.failure = r.error;
        if (r.wrong_checksum) status = 2;
        break;
      }
      dt = r.seconds - r1.seconds;
      if (dt >= kProbeS || n >= (1u << 28)) break;
      n *= 8;
    }
    if (s.failed) {
      std::printf("  %-10s FAILED at N = %u: %s\n", s.m->name().c_str(), n, s.failure.c_str());
      continue;
    }
    double n2 = n * opt.seconds / std::max(dt, 1e-3);
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
    s.n2 = static_cast<uint32_t>(std::clamp(n2, 16.0, 4e9));
    std::printf(
        "  %-10s t(N1) = %.3f s, t(%u) - t(N1) = %.3f s  ->  N2 = %u (%.1f M instructions)\n",
        s.m->name().c_str(), r1.seconds, n, dt, s.n2,
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
      const RunResult r1 = s.m->run(kN1);
      const RunResult r2 = r1.ok ? s.m->run(s.n2) : r1;
      if (!r1.ok || !r2.ok) {
        s.failed = true;
        s.failure = r1.ok ? r2.error : r1.error;
        if (r1.wrong_checksum || r2.wrong_checksum) status = 2;
        continue;
      }
      const double dt = r2.seconds - r1.seconds, dcpu = r2.cpu_seconds - r1.cpu_seconds;
      if (dt <= 0 || dcpu <= 0) continue;  // a start-up hiccup larger than the work
      const double insns = static_cast<double>(per_iter) * (s.n2 - kN1);
      row[i] = insns / dt / 1e6;
      row_cpu[i] = insns / dcpu / 1e6;
      s.mips.push_back(row[i]);
      s.cpu_mips.push_back(row_cpu[i]);
      s.cpu_use.push_back(dcpu / dt);
      s.t1s.push_back(r1.seconds);
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
  if (!parse_args(argc, argv, &opt)) {
    usage(stderr);
    return 1;
  }
  try {
    return opt.profile.empty() ? bench(opt) : profile(opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "interp_mips: %s\n", e.what());
    return 1;
  }
}
