// The `trapscope` command as a user runs it: exit codes, messages, bad input, trace files.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <cstring>
#include <random>
#include <sstream>

#include "tests/support.hpp"
#include "trace/trace_file.hpp"

using trapscope::test::read_file;
using trapscope::test::run_trapscope;
using trapscope::test::temp_path;
using trapscope::test::write_file;

TEST_CASE("every command has --help", "[cli]") {
  for (const char* cmd : {"run", "show", "doctor", "guests", "classify", "demo"}) {
    auto r = run_trapscope({cmd, "--help"});
    INFO(cmd << ": " << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("Usage") != std::string::npos);
  }
  auto r = run_trapscope({"--help"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("Exit status") != std::string::npos);
}

TEST_CASE("usage errors exit with 2", "[cli]") {
  CHECK(run_trapscope({}).exit_code == 2);
  CHECK(run_trapscope({"frobnicate"}).exit_code == 2);
  CHECK(run_trapscope({"run"}).exit_code == 2);
  CHECK(run_trapscope({"run", "hello", "--mode", "weird"}).exit_code == 2);
  CHECK(run_trapscope({"run", "hello", "--mem", "0"}).exit_code == 2);
  CHECK(run_trapscope({"run", "hello", "--format", "xml"}).exit_code == 2);
}

TEST_CASE("guests lists the teaching guests", "[cli]") {
  auto r = run_trapscope({"guests"});
  CHECK(r.exit_code == 0);
  for (const char* g : {"hello", "long-hello", "boot", "rings"}) {
    CHECK(r.out.find(g) != std::string::npos);
  }
}

TEST_CASE("bad guest files get a clear error and exit 2", "[cli][bad-input]") {
  SECTION("missing file") {
    auto r = run_trapscope({"run", "/nonexistent/guest.bin"});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("No such file"));
  }
  SECTION("unknown built-in name") {
    auto r = run_trapscope({"run", "no-such-guest"});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("built-in guests: hello"));
  }
  SECTION("empty file") {
    const auto path = temp_path("empty.bin");
    write_file(path, {});
    auto r = run_trapscope({"run", path});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("empty"));
  }
  SECTION("a directory") {
    auto r = run_trapscope({"run", "/tmp/"});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("not a regular file"));
  }
  SECTION("file larger than guest memory") {
    const auto path = temp_path("big.bin");
    write_file(path, std::vector<unsigned char>((1 << 20) + 1, 0x90));
    auto r = run_trapscope({"run", path, "--mem", "1"});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("larger than guest memory"));
  }
  SECTION("image that does not fit above the load address") {
    const auto path = temp_path("fits-not.bin");
    write_file(path, std::vector<unsigned char>((1 << 20) - 0x100, 0x90));
    auto r = run_trapscope({"run", path, "--mem", "1"});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("does not fit"));
  }
  SECTION("load address over the VMM's page tables in long mode") {
    auto r = run_trapscope({"run", "long-hello", "--load", "0x1000"});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("overlaps the VMM's GDT and page tables"));
  }
}

TEST_CASE("run ends with a reason and the documented exit code", "[cli][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  SECTION("halt: 0") {
    auto r = run_trapscope({"run", "hello"});
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("Hello from a real-mode guest!"));
    CHECK_THAT(r.out, Catch::Contains("run ended: guest halted after 31 VM exits"));
  }
  SECTION("guest exit code 0: 0, non-zero: 1") {
    const auto ok = temp_path("exit0.bin");
    write_file(ok, {0xB0, 0x00, 0xE6, 0xF4, 0xF4});  // mov al, 0; out 0xF4, al; hlt
    auto r = run_trapscope({"run", ok, "-q"});
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("run ended: guest exit code 0"));
    const auto bad = temp_path("exit9.bin");
    write_file(bad, {0xB0, 0x09, 0xE6, 0xF4, 0xF4});  // mov al, 9; out 0xF4, al; hlt
    r = run_trapscope({"run", bad, "-q"});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.out, Catch::Contains("run ended: guest exit code 9"));
  }
  SECTION("a guest that never exits is stopped by the time limit: 4") {
    const auto loop = temp_path("loop.bin");
    write_file(loop, {0xEB, 0xFE});  // jmp $
    auto r = run_trapscope({"run", loop, "--timeout", "0.5"}, 20);
    CHECK(r.exit_code == 4);
    CHECK_THAT(r.out, Catch::Contains("run ended: time limit"));
  }
  SECTION("a guest that never stops exiting is stopped by --max-exits: 4") {
    const auto loop = temp_path("outloop.bin");
    write_file(loop, {0xE6, 0x80, 0xEB, 0xFC});  // l: out 0x80, al; jmp l
    auto r = run_trapscope({"run", loop, "--max-exits", "25"}, 20);
    CHECK(r.exit_code == 4);
    CHECK_THAT(r.out, Catch::Contains("run ended: exit-count limit after 25 VM exits"));
  }
  SECTION("triple fault: 3, with the vCPU state") {
    const auto tf = temp_path("triple.bin");
    // long mode, no IDT: ud2 -> #UD cannot be delivered -> #DF -> triple fault
    write_file(tf, {0x0F, 0x0B});
    auto r = run_trapscope({"run", tf, "--mode", "long"});
    CHECK(r.exit_code == 3);
    CHECK_THAT(r.out, Catch::Contains("triple fault"));
    CHECK_THAT(r.out, Catch::Contains("vCPU: rip="));
  }
  SECTION("stats table in perf kvm stat's columns") {
    auto r = run_trapscope({"run", "long-hello", "-q", "--stats"});
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("VM-EXIT"));
    CHECK_THAT(r.out, Catch::Contains("Samples%"));
    CHECK_THAT(r.out, Catch::Contains("IO(2)"));
    CHECK_THAT(r.out, Catch::Contains("HLT(5)"));
  }
}

TEST_CASE("jsonl output is one JSON object per event", "[cli][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  auto r = run_trapscope({"run", "hello", "--format", "jsonl"});
  REQUIRE(r.exit_code == 0);
  std::istringstream lines(r.out);
  std::string line;
  int n = 0;
  nlohmann::json last;
  while (std::getline(lines, line)) {
    last = nlohmann::json::parse(line);  // throws (fails the test) on a non-JSON line
    if (n == 0) {
      CHECK(last["reason"] == "IO");
      CHECK(last["io"]["port"] == 0xE9);
      CHECK(last["io"]["value"] == 'H');
      CHECK(last["disasm"] == "out dx, al");
      CHECK(last["cpl"] == 0);
    }
    ++n;
  }
  CHECK(n == 32);  // 30 characters, hlt, run end
  CHECK(last["type"] == "run_end");
  CHECK(last["reason"] == "guest halted");
  CHECK_THAT(r.err, Catch::Contains("Hello from a real-mode guest!"));
}

TEST_CASE("run --trace then show prints the same events", "[cli][kvm][trace]") {
  REQUIRE_KVM_OR_SKIP();
  const auto path = temp_path("hello.trace");
  auto run = run_trapscope({"run", "hello", "--no-timing", "--trace", path});
  REQUIRE(run.exit_code == 0);
  auto show = run_trapscope({"show", path, "--no-timing"});
  REQUIRE(show.exit_code == 0);
  // The event lines of `run` are exactly the lines of `show` after its header line.
  const std::string events = run.out.substr(0, run.out.find("--- guest console"));
  const std::string shown = show.out.substr(show.out.find('\n') + 1);
  CHECK(shown == events);
  CHECK_THAT(show.out, Catch::Contains("# trace of hello (real mode"));

  SECTION("a truncated trace is rejected with a clear error") {
    auto bytes = read_file(path);
    bytes.resize(bytes.size() - 30);
    const auto cut = temp_path("cut.trace");
    write_file(cut, bytes);
    auto r = run_trapscope({"show", cut});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("truncated"));
  }
  SECTION("a corrupted trace is rejected with a clear error") {
    auto bytes = read_file(path);
    bytes[bytes.size() / 2] ^= 0x5A;
    const auto bad = temp_path("bad.trace");
    write_file(bad, bytes);
    auto r = run_trapscope({"show", bad});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("corrupt"));
  }
  SECTION("a file that is not a trace") {
    const auto other = temp_path("other.trace");
    write_file(other, {'h', 'e', 'l', 'l', 'o'});
    auto r = run_trapscope({"show", other});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("not a trapscope trace file"));
  }
}

TEST_CASE("random bytes as a guest end with a reason, never a crash or hang", "[cli][kvm][bad-input]") {
  REQUIRE_KVM_OR_SKIP();
  std::mt19937 rng(20261122);
  const char* modes[] = {"real", "protected", "long"};
  for (int i = 0; i < 18; ++i) {
    std::vector<unsigned char> bytes(256 + rng() % 4096);
    for (auto& b : bytes) b = static_cast<unsigned char>(rng());
    const auto path = temp_path("random.bin");
    write_file(path, bytes);
    const char* mode = modes[i % 3];
    auto r = run_trapscope({"run", path, "--mode", mode, "-q", "--timeout", "1"}, 30);
    INFO("seed index " << i << " mode " << mode << "\n" << r.out << r.err);
    CHECK((r.exit_code == 0 || r.exit_code == 1 || r.exit_code == 3 || r.exit_code == 4));
    CHECK_THAT(r.out, Catch::Contains("run ended: "));
  }
}

TEST_CASE("random bytes on the simulator end with a reason, never a crash or hang",
          "[cli][sim][bad-input]") {
  std::mt19937 rng(20261123);
  const char* modes[] = {"real", "protected", "long"};
  for (int i = 0; i < 30; ++i) {
    std::vector<unsigned char> bytes(64 + rng() % 4096);
    for (auto& b : bytes) b = static_cast<unsigned char>(rng());
    const auto path = temp_path("random-sim.bin");
    write_file(path, bytes);
    const char* mode = modes[i % 3];
    auto r = run_trapscope({"run", path, "--backend", "sim", "--mode", mode, "-q", "--timeout",
                            "2", "--max-instructions", "200000"},
                           30);
    INFO("seed index " << i << " mode " << mode << "\n" << r.out << r.err);
    CHECK((r.exit_code == 0 || r.exit_code == 1 || r.exit_code == 3 || r.exit_code == 4));
    CHECK_THAT(r.out, Catch::Contains("run ended: "));
  }
}

TEST_CASE("an instruction outside the simulator's subset stops the run with its disassembly",
          "[cli][sim]") {
  const auto path = temp_path("sse.bin");
  write_file(path, {0x66, 0x0F, 0xEF, 0xC0, 0xF4});  // pxor xmm0, xmm0; hlt
  auto r = run_trapscope({"run", path, "--backend", "sim", "-q"});
  CHECK(r.exit_code == 3);
  CHECK_THAT(r.out, Catch::Contains("unsupported: pxor xmm0, xmm0 at 0x8000"));
}

// [SECTION] Inputs that are not what they claim, large traces, interrupted recordings

namespace {

// A real-mode guest that writes 'x' to the debug console forever: mov al, 'x'; out 0xE9, al;
// jmp back. Every iteration is a VM exit, so a traced run's file keeps growing.
std::string looping_guest() {
  const std::string path = temp_path("loop.bin");
  write_file(path, {0xB0, 'x', 0xE6, 0xE9, 0xEB, 0xFA});
  return path;
}

struct Child {
  pid_t pid = -1;
  int status = 0;
  long max_rss_kib = 0;  // ru_maxrss of the child (Linux: KiB)
};

// Starts trapscope with `args`, stdout and stderr to files (stdin /dev/null).
Child start_trapscope(const std::vector<std::string>& args, const std::string& out,
                      const std::string& err) {
  std::vector<std::string> argv{TRAPSCOPE_EXE};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  // AddressSanitizer keeps freed memory in a 256 MiB quarantine, which a memory bound would
  // count; a small one keeps its checks (no effect on other builds).
  std::vector<std::string> env;
  std::string asan = "ASAN_OPTIONS=quarantine_size_mb=1";
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "ASAN_OPTIONS=", 13) == 0) {
      asan = std::string(*e) + ":quarantine_size_mb=1";
    } else {
      env.emplace_back(*e);
    }
  }
  env.push_back(asan);
  std::vector<char*> cenv;
  for (auto& e : env) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  Child c;
  const int rc = posix_spawn(&c.pid, cargv[0], &fa, nullptr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  REQUIRE(rc == 0);
  return c;
}

void wait_child(Child& c) {
  struct rusage ru {};
  REQUIRE(::wait4(c.pid, &c.status, 0, &ru) == c.pid);
  c.max_rss_kib = ru.ru_maxrss;
}

// Waits until `path` holds at least `bytes` (the child is recording); false if the child ended
// first or after 60 s (a bound against a hang, not a measurement).
bool wait_for_size(const std::string& path, const Child& c, off_t bytes) {
  for (int i = 0; i < 6000; ++i) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && st.st_size >= bytes) return true;
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(c.pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
        info.si_pid != 0) {
      return false;  // it ended (left to wait_child to collect)
    }
    ::usleep(10'000);
  }
  return false;
}

// A trace of `n` VM exits (HLT, 88 bytes each) and a run end, written directly.
void write_large_trace(const std::string& path, uint64_t n) {
  trapscope::trace::TraceMetadata meta;
  meta.backend = "sim";
  meta.guest = "generated";
  meta.mode = "real";
  trapscope::trace::TraceWriter w(path, meta);
  trapscope::trace::VmExitEvent e{};
  e.header = trapscope::trace::make_header<trapscope::trace::VmExitEvent>(
      trapscope::trace::EventType::kVmExit);
  e.reason = 5;
  e.insn_len = 1;
  e.insn[0] = 0xF4;
  for (uint64_t i = 0; i < n; ++i) {
    e.header.seq = i;
    e.header.rip = e.insn_addr = 0x8000 + (i & 0xFFF);
    w.on_event(e.header);
  }
  trapscope::trace::RunEndEvent end{};
  end.header = trapscope::trace::make_header<trapscope::trace::RunEndEvent>(
      trapscope::trace::EventType::kRunEnd);
  end.header.seq = n;
  end.reason = trapscope::trace::RunEndReason::kHalted;
  w.on_event(end.header);
  w.finish();
}

}  // namespace

TEST_CASE("show, lesson run and gui refuse a device or FIFO and cap files before reading",
          "[cli][bad-input]") {
  // Bug: /dev/zero grew to ~1 GB and ended in std::bad_alloc; a FIFO blocked `show` forever.
  const std::string fifo = temp_path("input.fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  for (const std::string& input : {std::string("/dev/zero"), fifo}) {
    INFO(input);
    const char* kind = input == fifo ? "a FIFO" : "a character device";
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"show", input}, {"lesson", "run", input},
          {"gui", "hello", "--script", input}, {"gui", "hello", "--compare", input},
          {"gui", input}}) {
      INFO(args[0] << " " << args[1] << " " << args.back());
      const auto r = run_trapscope(args, 20);
      CHECK(r.exit_code == 2);
      CHECK_THAT(r.err, Catch::Contains("not a regular file"));
      if (args[0] != "gui" || args.size() > 2) CHECK_THAT(r.err, Catch::Contains(kind));
    }
  }
  ::unlink(fifo.c_str());
  SECTION("a lesson file or script over its limit is refused before it is read") {
    const std::string big(2u << 20, '#');
    const std::string lesson = trapscope::test::write_temp("big.yaml", big);
    auto r = run_trapscope({"lesson", "run", lesson});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("larger than 1048576 bytes (the limit for a lesson file)"));
    r = run_trapscope({"gui", "hello", "--script", lesson});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("larger than 1048576 bytes (the limit for a GUI script)"));
  }
  SECTION("gui --guest without a trace file") {
    const auto r = run_trapscope({"gui", "hello", "--guest", "hello"});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("--guest applies to a trace file"));
  }
}

TEST_CASE("show reads a large trace in bounded memory", "[cli][trace]") {
  // Bug: show read the whole file and then kept every event: memory > 2x the file's size
  // (a 6.7 GB trace needed more than 8 GB). 1.5 M events = 128 MiB here; show's peak memory
  // must stay that of a small trace plus a little (its 1 MiB read buffer), in any build
  // (the sanitizers' own memory is in both).
  const auto max_rss_kib = [](const std::string& path) {
    Child c = start_trapscope({"show", path, "--no-timing"}, "/dev/null", temp_path("show.err"));
    wait_child(c);
    CHECK(WIFEXITED(c.status));
    CHECK(WEXITSTATUS(c.status) == 0);
    return c.max_rss_kib;
  };
  const std::string small = temp_path("small.trace");
  write_large_trace(small, 1'000);
  const long base = max_rss_kib(small);
  const std::string large = temp_path("large.trace");
  write_large_trace(large, 1'500'000);
  const long big = max_rss_kib(large);
  INFO("show: max RSS " << base << " KiB for 1,000 events, " << big << " KiB for "
                        << (read_file(large).size() >> 20) << " MiB");
  CHECK(big < base + 16 * 1024);
  ::unlink(small.c_str());
  ::unlink(large.c_str());
}

TEST_CASE("SIGINT during a traced run leaves a complete trace, SIGKILL one that show salvages",
          "[cli][trace][signals]") {
  const std::string guest = looping_guest();
  for (const int sig : {SIGINT, SIGKILL}) {
    INFO("signal " << sig);
    const std::string trace = temp_path("signal.trace");
    Child c = start_trapscope({"run", guest, "--backend", "sim", "-q", "--timeout", "120",
                               "--trace", trace},
                              "/dev/null", temp_path("run.err"));
    const bool recording = wait_for_size(trace, c, 256 * 1024);
    ::kill(c.pid, sig);
    wait_child(c);
    REQUIRE(recording);
    const auto shown = run_trapscope({"show", trace, "--no-timing"}, 120);
    if (sig == SIGINT) {
      CHECK(WIFEXITED(c.status));
      CHECK(WEXITSTATUS(c.status) == 130);
      CHECK(shown.exit_code == 0);
      CHECK_THAT(shown.err, !Catch::Contains("trapscope show"));
      // The last line is the run end (then the trailer was written).
      CHECK_THAT(shown.out.substr(shown.out.rfind('\n', shown.out.size() - 2)),
                 Catch::Contains("run end: stopped"));
    } else {
      CHECK(WIFSIGNALED(c.status));
      // Rejected, naming where the file ends …
      CHECK(shown.exit_code == 2);
      CHECK_THAT(shown.err, Catch::Contains("truncated") && Catch::Contains("at byte"));
      // … and salvaged up to the last whole event.
      const auto salvaged = run_trapscope({"show", "--salvage", trace, "--no-timing"}, 120);
      CHECK(salvaged.exit_code == 0);
      CHECK_THAT(salvaged.err, Catch::Contains("salvaged") && Catch::Contains("bytes from byte"));
      CHECK_THAT(salvaged.out, Catch::Contains("port=0xe9 out"));
    }
    ::unlink(trace.c_str());
  }
}

TEST_CASE("run --trace-max-size ends the trace file cleanly at its limit", "[cli][trace]") {
  // Bug: a trace file had no size limit (10 s on the simulator wrote 6.7 GB).
  const std::string guest = looping_guest();
  const std::string trace = temp_path("limited.trace");
  const auto r = run_trapscope({"run", guest, "--backend", "sim", "-q", "--max-exits", "100000",
                                "--trace", trace, "--trace-max-size", "1"},
                               120);
  CHECK(r.exit_code == 4);  // the exit limit: the run went on past the trace's limit
  CHECK_THAT(r.err, Catch::Contains("trace limit reached") && Catch::Contains("> 1 MiB"));
  CHECK(read_file(trace).size() <= (1u << 20));
  const auto shown = run_trapscope({"show", trace, "--no-timing"}, 60);
  CHECK(shown.exit_code == 0);
  CHECK_THAT(shown.err, Catch::Contains("reached its size limit"));
  CHECK_THAT(shown.out, Catch::Contains("run end: "));
  ::unlink(trace.c_str());
}

TEST_CASE("run --trace stores the guest image's SHA-256 in the metadata", "[cli][trace]") {
  const std::string guest = looping_guest();
  const std::string trace = temp_path("sha.trace");
  const auto r = run_trapscope(
      {"run", guest, "--backend", "sim", "-q", "--max-exits", "10", "--trace", trace});
  CHECK(r.exit_code == 4);
  const auto image = read_file(guest);
  CHECK(trapscope::trace::read_trace(trace).metadata.guest_sha256 ==
        trapscope::trace::sha256_hex(std::vector<uint8_t>(image.begin(), image.end())));
  ::unlink(trace.c_str());
}
