// bench/peers.cpp — Bochs and QEMU-TCG running the compute guest, for bench/interp_mips and
// bench/bt_speed (see peers.hpp).
#include "peers.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "guests/guest_catalog.hpp"

extern char** environ;

namespace trapscope::bench {

namespace {

inline uint32_t rotl(uint32_t v, unsigned n) { return (v << n) | (v >> (32 - n)); }
inline uint32_t rotr(uint32_t v, unsigned n) { return (v >> n) | (v << (32 - n)); }
}  // namespace

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

// The 64-bit guest's computation (see guests/compute64.asm).
uint32_t model_checksum64(uint32_t iterations) {
  uint64_t table[257] = {};
  uint64_t x = 0x89ABCDEF, mix = 0;
  for (uint32_t n = 0; n < iterations; ++n) {
    for (unsigned c = 256; c >= 1; --c) {
      x = x * 0x5851F42Dull + 0x14057B7EF767814Full;
      const uint64_t r = x >> 33;
      table[c] += r;
      mix ^= r;
    }
  }
  uint64_t s = x ^ mix;
  for (unsigned c = 256; c >= 1; --c) s = ((s << 1) | (s >> 63)) + table[c];
  return static_cast<uint32_t>(s ^ (s >> 32));
}

std::string expected_line(uint32_t iterations, const Workload& w) {
  char buf[80];
  std::snprintf(buf, sizeof buf, "%s: n=%08" PRIx32 " checksum=%08" PRIx32, w.guest, iterations,
                w.model(iterations));
  return buf;
}

// The first line of `text` that starts with "<guest>:" (without its newline), or "".
std::string console_line(const std::string& text, const Workload& w) {
  const std::string prefix = std::string(w.guest) + ":";
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind(prefix, 0) == 0) return line;
    pos = end + 1;
  }
  return "";
}

ComputeImage::ComputeImage(const Workload& w) : workload_(&w) {
  const std::string name = w.guest;
  const auto g = guests::find(name);
  if (!g) {
    throw std::runtime_error("the built-in guest '" + name + "' is missing (guests/guests.cmake)");
  }
  base_.assign(g->image.begin(), g->image.end());
  if (base_.size() != kImageSize || std::memcmp(&base_[kMagicOffset], "ITER", 4) != 0 ||
      base_[510] != 0x55 || base_[511] != 0xAA) {
    throw std::runtime_error(
        "guest '" + name + "' is not the expected 512-byte boot sector with \"ITER\" at 500 and "
        "0x55AA at 510 (guests/" + name + ".asm and bench/peers.hpp disagree)");
  }
}

std::vector<uint8_t> ComputeImage::with(uint32_t iterations) const {
  std::vector<uint8_t> img = base_;
  for (int i = 0; i < 4; ++i) img[kCountOffset + i] = static_cast<uint8_t>(iterations >> (8 * i));
  return img;
}

uint32_t ComputeImage::iterations() const {
  uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n |= static_cast<uint32_t>(base_[kCountOffset + i]) << (8 * i);
  return n;
}

// [SECTION] Helpers: time, files, child processes.

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

namespace {

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

}  // namespace

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

namespace {

double cpu_time(const rusage& ru) {
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// CPU time of this process (the simulator runs on the calling thread; nothing else runs).
}  // namespace

double process_cpu_s() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

namespace {

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

}  // namespace

void check_line(RunResult* r, uint32_t iterations, const Workload& w) {
  const std::string want = expected_line(iterations, w);
  if (r->line == want) return;
  r->ok = false;
  if (r->line.empty()) {
    r->error = "no \"" + std::string(w.guest) + ":\" line on the console";
  } else {
    r->wrong_checksum = true;
    r->error = "wrong result: printed \"" + r->line + "\", the model says \"" + want + "\"";
  }
}

// How the interpreter machine records: not at all, into a new Recorder per run (fresh memory),
namespace {

class ProcessMachine : public Machine {
 public:
  ProcessMachine(const ComputeImage& image, std::string dir)
      : image_(image), dir_(std::move(dir)) {}

 protected:
  // The floppy image for `iterations` (written once, kept for the run).
  std::string floppy(uint32_t iterations) {
    auto it = floppies_.find(iterations);
    if (it != floppies_.end()) return it->second;
    const std::vector<uint8_t> img = image_.with(iterations);
    std::string data(kFloppyBytes, '\0');
    std::memcpy(data.data(), img.data(), img.size());
    const std::string path =
        dir_ + "/" + image_.workload().guest + "-" + std::to_string(iterations) + ".img";
    write_file(path, data);
    floppies_[iterations] = path;
    return path;
  }
  const ComputeImage& image_;
  std::string dir_;
  std::map<uint32_t, std::string> floppies_;
};

constexpr double kChildTimeoutS = 300;

class QemuMachine final : public ProcessMachine {
 public:
  QemuMachine(const ComputeImage& image, const std::string& dir, const std::string& exe,
              bool probe_version)
      : ProcessMachine(image, dir), exe_(exe) {
    if (probe_version) {
      ChildResult v = run_child({exe_, "--version"}, dir_, "/dev/null", {}, 30);
      version = v.out.substr(0, v.out.find('\n'));
    }
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
    r.line = console_line(c.out, image_.workload());
    // isa-debug-exit: exit status (value << 1) | 1; the guest writes 0.
    if (!c.started || c.timed_out || !WIFEXITED(c.status) || WEXITSTATUS(c.status) != 1) {
      r.error =
          "qemu " + c.describe() + " (expected status 1 from isa-debug-exit)\n" + tail(c.err, 5);
      return r;
    }
    r.ok = true;
    check_line(&r, iterations, image_.workload());
    return r;
  }

 private:
  std::string exe_;
};

class BochsMachine final : public ProcessMachine {
 public:
  BochsMachine(const ComputeImage& image, const std::string& dir, const std::string& exe)
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
        dir_ + "/bochsrc-" + image_.workload().guest + "-" + std::to_string(iterations) + "-" +
        std::to_string(display_);
    if (::access(rc.c_str(), R_OK) != 0) write_file(rc, bochsrc(img));
    std::vector<std::string> env;
    if (display_ == 0) env.push_back("SDL_VIDEODRIVER=dummy");
    const ChildResult c = run_child({exe_, "-q", "-f", rc}, dir_, cont_, env, kChildTimeoutS);
    last_out_ = c.out;
    RunResult r;
    r.seconds = c.seconds;
    r.cpu_seconds = c.cpu_seconds;
    r.line = console_line(c.out, image_.workload());
    // The guest ends Bochs through the shutdown port, which Bochs reports as a panic
    // ("Shutdown port: shutdown requested") with exit status 1.
    const bool shutdown = c.err.find("Shutdown port: shutdown requested") != std::string::npos ||
                          c.out.find("Shutdown port: shutdown requested") != std::string::npos;
    if (!c.started || c.timed_out || !shutdown) {
      r.error = "bochs " + c.describe() + " without the shutdown-port request\n" + tail(c.err, 5);
      return r;
    }
    r.ok = true;
    check_line(&r, iterations, image_.workload());
    return r;
  }

 private:
  std::string display_line() const {
    return display_ == 0 ? "display_library: sdl2" : "display_library: rfb, options=\"timeout=0\"";
  }
  std::string bochsrc(const std::string& img) const {
    std::string s = "# generated by bench/peers\nmegs: 16\n";
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
}  // namespace

std::string debian_version(const std::string& dir, const std::string& pkg) {
  const auto dq = find_in_path("dpkg-query");
  if (!dq) return "";
  const ChildResult c = run_child({*dq, "-W", "-f=${Version}", pkg}, dir, "/dev/null", {}, 30);
  if (!c.started || c.timed_out || !WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0) return "";
  return c.out;
}
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

TempDir::TempDir(const std::string& prog) : program(prog) {
  const char* dir = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/" + program + ".XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    throw std::runtime_error(tmpl +
                             ": cannot create a temporary directory: " + std::strerror(errno));
  }
  path = buf.data();
}

// Removes the temporary directory (flat: images, bochsrc files, child output).
TempDir::~TempDir() {
  if (DIR* d = ::opendir(path.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n != "." && n != "..") ::unlink((path + "/" + n).c_str());
    }
    ::closedir(d);
  }
  if (::rmdir(path.c_str()) != 0) {
    std::fprintf(stderr, "%s: could not remove %s\n", program.c_str(), path.c_str());
  }
}

std::unique_ptr<Machine> make_bochs(const ComputeImage& image, const std::string& dir,
                                    const std::string& exe) {
  const auto found = find_in_path(exe);
  auto bochs = std::make_unique<BochsMachine>(image, dir, found ? *found : exe);
  if (!found) {
    bochs->available = false;
    bochs->installed = false;
    bochs->unavailable_reason =
        "'" + exe + "' not found (Debian: apt-get install bochs bochs-sdl bochsbios vgabios)";
    return bochs;
  }
  std::string why;
  if (!bochs->choose_display(&why)) {
    bochs->available = false;
    bochs->unavailable_reason = why;
  }
  const std::string deb = debian_version(dir, "bochs");
  if (!deb.empty()) bochs->version += " (Debian package bochs " + deb + ")";
  return bochs;
}

std::unique_ptr<Machine> make_qemu(const ComputeImage& image, const std::string& dir,
                                   const std::string& exe) {
  const auto found = find_in_path(exe);
  if (!found) {
    auto qemu = std::make_unique<QemuMachine>(image, dir, exe, /*probe_version=*/false);
    qemu->available = false;
    qemu->installed = false;
    qemu->unavailable_reason = "'" + exe + "' not found (Debian: apt-get install qemu-system-x86)";
    return qemu;
  }
  auto qemu = std::make_unique<QemuMachine>(image, dir, *found, /*probe_version=*/true);
  const std::string deb = debian_version(dir, "qemu-system-x86");
  if (!deb.empty() && qemu->version.find(deb) == std::string::npos)
    qemu->version += " (Debian package qemu-system-x86 " + deb + ")";
  return qemu;
}

Calibration calibrate(Machine& m, uint32_t n1, double seconds, double probe_s) {
  Calibration c;
  const RunResult r1 = m.run(n1);
  if (!r1.ok) {
    c.failed_n = n1;
    c.error = r1.error;
    c.wrong_checksum = r1.wrong_checksum;
    return c;
  }
  c.t1 = r1.seconds;
  uint32_t n = 64;
  while (true) {
    const RunResult r = m.run(n);
    if (!r.ok) {
      c.failed_n = n;
      c.error = r.error;
      c.wrong_checksum = r.wrong_checksum;
      return c;
    }
    c.dt = r.seconds - r1.seconds;
    if (c.dt >= probe_s || n >= (1u << 28)) break;
    n *= 8;
  }
  c.ok = true;
  c.n_probe = n;
  c.n2 = n * seconds / std::max(c.dt, 1e-3);
  return c;
}

uint32_t clamp_n2(double n2) { return static_cast<uint32_t>(std::clamp(n2, 16.0, 4e9)); }

PairResult measure_pair(Machine& m, uint32_t n1, uint32_t n2, uint64_t per_iteration) {
  PairResult p;
  const RunResult r1 = m.run(n1);
  const RunResult r2 = r1.ok ? m.run(n2) : r1;
  if (!r1.ok || !r2.ok) {
    p.error = r1.ok ? r2.error : r1.error;
    p.wrong_checksum = r1.wrong_checksum || r2.wrong_checksum;
    return p;
  }
  p.ok = true;
  const double dt = r2.seconds - r1.seconds, dcpu = r2.cpu_seconds - r1.cpu_seconds;
  if (dt <= 0 || dcpu <= 0) return p;  // a start-up hiccup larger than the work
  const double insns = static_cast<double>(per_iteration) * (n2 - n1);
  p.valid = true;
  p.mips = insns / dt / 1e6;
  p.cpu_mips = insns / dcpu / 1e6;
  p.cpu_use = dcpu / dt;
  p.t1 = r1.seconds;
  return p;
}

}  // namespace trapscope::bench
