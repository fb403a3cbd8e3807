// tests/fuzz/campaign.cpp — `campaign`: the random-guest campaign (docs/fuzzing.md). Runs N
// random guests through the real `trapscope run` executable, each on a random engine (kvm when
// usable, sim), technique, paging and boot mode, and sorts how each run ended:
//   ended     a documented exit status (docs/running.md: 0 1 2 3 4; 5 and 130 are not expected here)
//             with no sanitizer report and no std::bad_alloc on stderr
//   crashed   killed by a signal, an undocumented exit status, or an ASan/UBSan report,
//             "terminate called" or std::bad_alloc on stderr
//   hung      still running at --watchdog seconds: killed
//   memory    resident set over --rss-mib: killed
//   flooded   more than --max-output-mib on stdout + stderr: killed (an uncapped capture)
// Each run that did not end is written to OUT/failures/ as the guest (NAME.bin), the command
// (NAME.sh) and the end of its stderr (NAME.stderr).
//
// Guests: random bytes (1 … 4096), or (one in two) random bytes after a prologue that loads
// eax, ecx, edx, ebx, esi and edi with values that reach edges (0, all ones, the end of guest
// memory, a page boundary), then (one in two of those) a rep string instruction: huge counts,
// pointers at the end of memory, I/O to the doorbell and console ports.
//
// Exit status: 0 every run ended; 1 a run crashed, hung, ran out of memory or flooded; 2 bad
// arguments.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.hpp"

namespace {

namespace fs = std::filesystem;

struct Options {
  uint64_t count = 300;
  uint64_t seed = 1;
  std::string trapscope = TRAPSCOPE_EXE;
  std::string out = "campaign-out";
  double guest_timeout = 1;
  double watchdog = 15;
  uint64_t rss_mib = 2048;
  uint64_t max_output_mib = 256;
  std::vector<std::string> engines;  // default: sim, and kvm when usable
  bool verbose = false;
};

struct Run {
  std::vector<std::string> args;  // after `trapscope`
  std::vector<uint8_t> guest;
  std::string what;               // engine/technique/paging/mode/kind
};

struct Result {
  std::string cls;     // ended, crashed, hung, memory, flooded
  std::string detail;  // exit status / signal / first report line
  std::string err_tail;
  uint64_t output_bytes = 0;
  uint64_t peak_rss_kib = 0;
  double seconds = 0;
};

constexpr const char* kModes[] = {"real", "protected", "long"};
constexpr const char* kTechniques[] = {"emulation", "trap-emulate", "vt", "bt", "pv"};
constexpr const char* kPagings[] = {"native", "shadow", "ept"};

// mov reg, imm32 in the boot mode (real mode: with the operand-size prefix). Long mode's
// 32-bit form zero-extends, so "all ones" is 0xFFFFFFFF there too.
void mov_imm32(std::vector<uint8_t>* code, const std::string& mode, unsigned reg, uint32_t v) {
  if (mode == "real") code->push_back(0x66);
  code->push_back(static_cast<uint8_t>(0xB8 + reg));
  for (int i = 0; i < 4; ++i) code->push_back(static_cast<uint8_t>(v >> (8 * i)));
}

std::vector<uint8_t> make_guest(std::mt19937_64& rng, const std::string& mode, uint64_t mem,
                                bool prologue) {
  std::vector<uint8_t> g;
  if (prologue) {
    const uint32_t edges[] = {0,          0xFFFFFFFFu, static_cast<uint32_t>(mem),
                              static_cast<uint32_t>(mem - 1), 0x1000, 0xFFF, 0x510, 0xE9,
                              0x3F8,      0x80000000u, static_cast<uint32_t>(rng())};
    for (unsigned reg : {0u, 1u, 2u, 3u, 6u, 7u}) {  // eax ecx edx ebx esi edi
      mov_imm32(&g, mode, reg, edges[rng() % std::size(edges)]);
    }
    if (rng() % 2) {  // a string instruction with those counts and pointers (rep movs … outs)
      constexpr uint8_t kStrings[] = {0xA4, 0xA5, 0xAA, 0xAB, 0xAC, 0xAD, 0x6C, 0x6D, 0x6E, 0x6F};
      g.push_back(0xF3);
      g.push_back(kStrings[rng() % std::size(kStrings)]);
    }
  }
  const size_t n = 1 + rng() % 4096;
  for (size_t i = 0; i < n; ++i) g.push_back(static_cast<uint8_t>(rng()));
  return g;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

uint64_t rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

// The first line of stderr that says what went wrong, if any.
std::string crash_report(const std::string& err) {
  for (const char* marker : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                             "terminate called", "bad_alloc"}) {
    const size_t at = err.find(marker);
    if (at == std::string::npos) continue;
    const size_t begin = err.rfind('\n', at);
    const size_t end = err.find('\n', at);
    return err.substr(begin == std::string::npos ? 0 : begin + 1,
                      end == std::string::npos ? std::string::npos : end - begin - 1);
  }
  return "";
}

Result run_one(const Options& o, const std::vector<std::string>& args) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    std::perror("campaign: pipe");
    std::exit(2);
  }
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    const int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(o.trapscope.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    std::perror("campaign: exec");
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  Result r;
  std::string err;
  constexpr size_t kTail = 64 * 1024;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  int status = 0;
  bool reaped = false;
  std::string killed;
  std::array<char, 65536> buf;
  while (!reaped) {
    if (open_fds > 0) {
      ::poll(fds, 2, 20);
      for (int i = 0; i < 2; ++i) {
        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        const ssize_t n = ::read(fds[i].fd, buf.data(), buf.size());
        if (n <= 0) {
          ::close(fds[i].fd);
          fds[i].fd = -1;
          --open_fds;
          continue;
        }
        r.output_bytes += static_cast<uint64_t>(n);
        if (i == 1) {
          err.append(buf.data(), static_cast<size_t>(n));
          if (err.size() > 2 * kTail) err.erase(0, err.size() - kTail);
        }
      }
    } else {
      ::usleep(20000);
    }
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      reaped = true;
      break;
    }
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const uint64_t rss = rss_kib(pid);
    r.peak_rss_kib = std::max(r.peak_rss_kib, rss);
    if (killed.empty()) {
      if (t > o.watchdog) killed = "hung";
      else if (rss > o.rss_mib * 1024) killed = "memory";
      else if (r.output_bytes > (o.max_output_mib << 20)) killed = "flooded";
      if (!killed.empty()) ::kill(-pid, SIGKILL);
    }
  }
  // Drain what is left (a killed child's pipes may still hold data).
  for (auto& f : fds) {
    if (f.fd < 0) continue;
    ssize_t n;
    while ((n = ::read(f.fd, buf.data(), buf.size())) > 0) {
      r.output_bytes += static_cast<uint64_t>(n);
      if (&f == &fds[1]) err.append(buf.data(), static_cast<size_t>(n));
    }
    ::close(f.fd);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (err.size() > kTail) err.erase(0, err.size() - kTail);
  r.err_tail = err;
  const std::string report = crash_report(err);
  if (!killed.empty()) {
    r.cls = killed;
    char d[160];
    std::snprintf(d, sizeof d, "killed after %.1f s, peak RSS %llu MiB, %llu bytes of output",
                  r.seconds, static_cast<unsigned long long>(r.peak_rss_kib / 1024),
                  static_cast<unsigned long long>(r.output_bytes));
    r.detail = d;
  } else if (WIFSIGNALED(status)) {
    r.cls = "crashed";
    r.detail = std::string("signal ") + strsignal(WTERMSIG(status));
    if (!report.empty()) r.detail += ": " + report;
  } else {
    const int code = WEXITSTATUS(status);
    const bool documented = code == 0 || code == 1 || code == 2 || code == 3 || code == 4;
    r.detail = "exit " + std::to_string(code);
    if (!report.empty()) {
      r.cls = report.find("bad_alloc") != std::string::npos ? "memory" : "crashed";
      r.detail += ": " + report;
    } else {
      r.cls = documented ? "ended" : "crashed";
    }
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Random guests through `trapscope run` on every engine, technique, paging and "
               "mode; counts runs that crashed, hung or ran out of memory (docs/fuzzing.md)"};
  app.add_option("-n,--count", o.count, "Guests to run")->capture_default_str();
  app.add_option("--seed", o.seed, "Random seed (the same seed gives the same guests)")
      ->capture_default_str();
  app.add_option("--trapscope", o.trapscope, "The trapscope executable")->capture_default_str();
  app.add_option("-o,--out", o.out, "Directory for the summary and reproducers")
      ->capture_default_str();
  app.add_option("--guest-timeout", o.guest_timeout, "trapscope run --timeout (seconds)")
      ->check(CLI::Range(0.001, 3600.0))
      ->capture_default_str();
  app.add_option("--watchdog", o.watchdog, "Kill a run after this many seconds (hung)")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  app.add_option("--rss-mib", o.rss_mib, "Kill a run whose resident set exceeds this (memory)")
      ->check(CLI::Range(uint64_t{16}, uint64_t{1} << 20))
      ->capture_default_str();
  app.add_option("--max-output-mib", o.max_output_mib,
                 "Kill a run that writes more than this to stdout + stderr (flooded)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 20))
      ->capture_default_str();
  app.add_option("--engine", o.engines, "kvm and/or sim (default: sim, and kvm when usable)")
      ->check(CLI::IsMember({"kvm", "sim"}));
  app.add_flag("-v,--verbose", o.verbose, "A line per run");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (::access(o.trapscope.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "campaign: %s is not executable\n", o.trapscope.c_str());
    return 2;
  }
  if (o.engines.empty()) {
    o.engines.push_back("sim");
    std::string why;
    if (trapscope::backend::kvm_usable(&why)) o.engines.push_back("kvm");
    else std::fprintf(stderr, "campaign: KVM is not usable (%s): simulator only\n", why.c_str());
  }
  const fs::path out = o.out, failures = out / "failures";
  fs::create_directories(failures);
  const fs::path guest_file = out / "guest.bin";

  std::mt19937_64 rng(o.seed);
  std::map<std::string, uint64_t> counts;
  std::map<std::string, std::map<std::string, uint64_t>> by_setting;  // class → setting → n
  uint64_t slowest_ms = 0;
  for (uint64_t i = 0; i < o.count; ++i) {
    // The simulator has 15 technique × paging settings, KVM 2: it gets two runs in three.
    const std::string engine =
        o.engines.size() == 1 ? o.engines[0] : (rng() % 3 == 0 ? "kvm" : "sim");
    const std::string mode = kModes[rng() % 3];
    // KVM runs emulation (no technique) and pv; the simulator every technique and paging.
    const std::string technique = engine == "kvm" ? (rng() % 2 ? "pv" : "emulation")
                                                  : kTechniques[rng() % 5];
    const std::string paging = engine == "kvm" ? "native" : kPagings[rng() % 3];
    const uint64_t mem_mib = std::array<uint64_t, 3>{1, 2, 16}[rng() % 3];
    const bool prologue = rng() % 2;
    const auto guest = make_guest(rng, mode, mem_mib << 20, prologue);
    {
      std::ofstream g(guest_file, std::ios::binary | std::ios::trunc);
      g.write(reinterpret_cast<const char*>(guest.data()), static_cast<std::streamsize>(guest.size()));
    }
    char timeout[32];
    std::snprintf(timeout, sizeof timeout, "%g", o.guest_timeout);
    std::vector<std::string> args = {"run", guest_file.string(), "--backend", engine, "--mode",
                                     mode, "--technique", technique, "--mem",
                                     std::to_string(mem_mib), "--timeout", timeout, "-q"};
    if (engine == "sim") args.insert(args.end(), {"--paging", paging});
    if (technique == "trap-emulate") args.insert(args.end(), {"--deprivilege", rng() % 2 ? "3" : "1"});
    const std::string setting = engine + "/" + technique + "/" + paging + "/" + mode;

    const Result r = run_one(o, args);
    ++counts[r.cls];
    slowest_ms = std::max(slowest_ms, static_cast<uint64_t>(r.seconds * 1000));
    if (o.verbose || r.cls != "ended") {
      std::printf("#%llu %-36s %s%s: %s\n", static_cast<unsigned long long>(i), setting.c_str(),
                  r.cls.c_str(), prologue ? " (prologue)" : "", r.detail.c_str());
      std::fflush(stdout);
    }
    if (r.cls == "ended") continue;
    ++by_setting[r.cls][setting];
    const std::string name = r.cls + "-" + std::to_string(i);
    fs::copy_file(guest_file, failures / (name + ".bin"), fs::copy_options::overwrite_existing);
    std::ofstream sh(failures / (name + ".sh"));
    sh << "# " << r.cls << ": " << r.detail << "\n" << shell_quote(o.trapscope);
    for (size_t k = 0; k < args.size(); ++k) {
      sh << " " << shell_quote(k == 1 ? (failures / (name + ".bin")).string() : args[k]);
    }
    sh << "\n";
    std::ofstream(failures / (name + ".stderr")) << r.err_tail;
  }
  fs::remove(guest_file);

  std::string summary;
  char line[200];
  std::snprintf(line, sizeof line, "campaign: %llu guests (seed %llu, engines:", 
                static_cast<unsigned long long>(o.count), static_cast<unsigned long long>(o.seed));
  summary += line;
  for (const auto& e : o.engines) summary += " " + e;
  summary += ")\n";
  for (const char* cls : {"ended", "crashed", "hung", "memory", "flooded"}) {
    std::snprintf(line, sizeof line, "  %-8s %llu\n", cls,
                  static_cast<unsigned long long>(counts[cls]));
    summary += line;
    for (const auto& [setting, n] : by_setting[cls]) {
      std::snprintf(line, sizeof line, "    %-40s %llu\n", setting.c_str(),
                    static_cast<unsigned long long>(n));
      summary += line;
    }
  }
  std::snprintf(line, sizeof line, "  slowest run: %.1f s; reproducers in %s\n",
                static_cast<double>(slowest_ms) / 1000, failures.c_str());
  summary += line;
  std::fputs(summary.c_str(), stdout);
  std::ofstream(out / "summary.txt") << summary;
  return counts["ended"] == o.count ? 0 : 1;
}
