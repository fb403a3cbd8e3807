// What bounds a run: `run --technique T` runs the guest once (the equivalence check is opt-in
// and shares --timeout), long rep string instructions stop between iterations (so --timeout
// and limits hold inside one instruction), the check holds few exits at once, shared numeric
// options refuse bad values, host failures and SIGTERM/SIGHUP have their own exit status.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "backend/backend.hpp"
#include "backend/cosim.hpp"
#include "sim/cpu.hpp"
#include "tests/support.hpp"
#include "trace/limits.hpp"

extern char** environ;

using namespace trapscope;
using trapscope::test::run_trapscope;
using trapscope::test::temp_path;
using trapscope::test::write_file;

namespace {

using Bytes = std::vector<uint8_t>;
constexpr uint64_t kLoad = platform::kDefaultLoadAddress;  // 0x8000

// Protected mode (flat 32-bit segments, CPL 0), loaded at 0x8000; each ends with `hlt`.
// mov esi, 0x1000 / mov ecx, 0xffffffff / rep lodsb            (rep at 0x800a)
const Bytes kRepLods = {0xBE, 0x00, 0x10, 0x00, 0x00, 0xB9, 0xFF, 0xFF,
                        0xFF, 0xFF, 0xF3, 0xAC, 0xF4};
// mov edi, 0x100000 / mov ecx, 0xffffffff / rep stosb          (rep at 0x800a)
const Bytes kRepStos = {0xBF, 0x00, 0x00, 0x10, 0x00, 0xB9, 0xFF, 0xFF,
                        0xFF, 0xFF, 0xF3, 0xAA, 0xF4};
// mov esi, 0x1000 / mov edx, 0x80 / mov ecx, 0xffffffff / rep outsb   (rep at 0x800f)
const Bytes kRepOuts = {0xBE, 0x00, 0x10, 0x00, 0x00, 0xBA, 0x80, 0x00, 0x00, 0x00,
                        0xB9, 0xFF, 0xFF, 0xFF, 0xFF, 0xF3, 0x6E, 0xF4};
// mov esi, 0x1000 / mov edi, 0x200000 / mov ecx, 0xffffffff / rep movsb (rep at 0x800f)
const Bytes kRepMovs = {0xBE, 0x00, 0x10, 0x00, 0x00, 0xBF, 0x00, 0x00, 0x20, 0x00,
                        0xB9, 0xFF, 0xFF, 0xFF, 0xFF, 0xF3, 0xA4, 0xF4};
// Real mode: mov al, 0x41 / out 0x80, al / jmp back to the out (a VM exit per iteration on a
// port no device claims: nothing is kept per exit but the exit itself).
const Bytes kPortLoop = {0xB0, 0x41, 0xE6, 0x80, 0xEB, 0xFC};

backend::Config protected_config(sim::virt::Technique t) {
  backend::Config c;
  c.mode = platform::BootMode::kProtected;
  c.technique = t;
  return c;
}

constexpr sim::virt::Technique kTechniques[] = {sim::virt::Technique::kEmulation,
                                           sim::virt::Technique::kTrapEmulate, sim::virt::Technique::kVt,
                                           sim::virt::Technique::kBt, sim::virt::Technique::kPv};

std::string write_guest(const char* name, const Bytes& code) {
  const std::string path = temp_path(name);
  write_file(path, {code.begin(), code.end()});
  return path;
}

}  // namespace

TEST_CASE("run --technique runs the guest once, and again with --check-equivalence",
          "[cli][sim][run-once]") {
  for (const char* t : {"bt", "vt"}) {
    INFO("--technique " << t);
    auto once = run_trapscope({"run", "compute", "--backend", "sim", "--technique", t, "-q",
                               "--stats", "--timeout", "100"},
                              120);
    CHECK(once.exit_code == 0);
    CHECK_THAT(once.out, Catch::Contains("machines run: 1\n"));
    CHECK_THAT(once.out, !Catch::Contains("equivalence"));
    // --timeout bounds the run and the check together: room for both on a loaded host.
    auto checked = run_trapscope({"run", "compute", "--backend", "sim", "--technique", t, "-q",
                                  "--stats", "--check-equivalence", "--timeout", "100"},
                                 120);
    INFO(checked.out);
    CHECK(checked.exit_code == 0);
    CHECK_THAT(checked.out, Catch::Contains("machines run: 3\n"));
    CHECK_THAT(checked.out,
               Catch::Contains("equivalence with the native simulator run: equal: "));
  }
}

TEST_CASE("a rep string instruction stops between iterations and resumes where it stopped",
          "[sim][rep]") {
  // rep outsb of 10000 bytes: each step moves at most kRepIterationsPerStep of them and records
  // one I/O exit with their count, so max_exits = 1 stops the run inside the instruction.
  Bytes code = kRepOuts;
  code[11] = 0x10;  // ecx = 10000 (0x2710)
  code[12] = 0x27;
  code[13] = code[14] = 0x00;
  const auto t = GENERATE(from_range(std::begin(kTechniques), std::end(kTechniques)));
  INFO("technique " << sim::virt::to_string(t));
  const auto cfg = protected_config(t);

  auto whole = backend::make_backend(backend::Kind::kSim, cfg);
  whole->load(code);
  trace::Recorder whole_events;
  const auto w = whole->run({10.0, 0, 0}, &whole_events);
  REQUIRE(w.reason == trace::RunEndReason::kHalted);
  CHECK(w.instructions == 5);  // a suspended rep is not a retired instruction
  std::vector<uint32_t> counts;  // of the I/O exits; then the HLT exit
  for (size_t i = 0; i < whole_events.size(); ++i) {
    const auto* e = whole_events.get<trace::VmExitEvent>(i, trace::EventType::kVmExit);
    if (e && e->reason == static_cast<uint32_t>(trace::ExitReason::kIo)) {
      counts.push_back(e->payload.io.count);
    }
  }
  CHECK(counts == std::vector<uint32_t>{4096, 4096, 1808});
  CHECK(w.exits == 4);

  auto parts = backend::make_backend(backend::Kind::kSim, cfg);
  parts->load(code);
  const auto p1 = parts->run({10.0, 1, 0}, nullptr);
  CHECK(p1.reason == trace::RunEndReason::kExitLimit);
  CHECK(p1.instructions == 3);
  const x86::CpuState mid = parts->registers();
  CHECK(mid.rip == kLoad + 0xF);  // still at the rep outsb
  CHECK(mid.gpr[x86::kRcx] == 10000 - sim::kRepIterationsPerStep);
  CHECK(mid.gpr[x86::kRsi] == 0x1000 + sim::kRepIterationsPerStep);
  const auto p2 = parts->run({10.0, 0, 0}, nullptr);
  CHECK(p2.reason == trace::RunEndReason::kHalted);
  CHECK(p1.instructions + p2.instructions == w.instructions);
  CHECK(p1.exits + p2.exits == w.exits);
  const x86::CpuState a = whole->registers(), b = parts->registers();
  for (int i = 0; i < 16; ++i) CHECK(a.gpr[i] == b.gpr[i]);
  CHECK(a.rip == b.rip);
  CHECK(a.rflags == b.rflags);
  CHECK(a.tsc == b.tsc);
  CHECK(std::equal(whole->memory().begin(), whole->memory().end(), parts->memory().begin()));
}

TEST_CASE("a time limit stops a rep string instruction of 2^32 - 1 iterations", "[sim][rep]") {
  struct Case {
    const char* name;
    const Bytes* code;
    uint64_t rep_at;
    bool uses_rsi;
    uint64_t rdi0;  // 0: rDI not used
  };
  const Case cases[] = {{"rep lodsb", &kRepLods, 0xA, true, 0},
                        {"rep stosb", &kRepStos, 0xA, false, 0x100000},
                        {"rep outsb", &kRepOuts, 0xF, true, 0},
                        {"rep movsb", &kRepMovs, 0xF, true, 0x200000}};
  const auto t = GENERATE(from_range(std::begin(kTechniques), std::end(kTechniques)));
  for (const Case& c : cases) {
    INFO(c.name << " under " << sim::virt::to_string(t));
    auto m = backend::make_backend(backend::Kind::kSim, protected_config(t));
    m->load(*c.code);
    const auto r = m->run({0.2, 0, 0}, nullptr);
    CHECK(r.reason == trace::RunEndReason::kTimeLimit);
    const x86::CpuState s = m->registers();
    CHECK(s.rip == kLoad + c.rep_at);
    const uint64_t done = 0xFFFFFFFFull - s.gpr[x86::kRcx];
    CHECK(done > 0);
    if (c.uses_rsi) CHECK(s.gpr[x86::kRsi] == 0x1000 + done);
    if (c.rdi0) CHECK(s.gpr[x86::kRdi] == c.rdi0 + done);
  }
}

TEST_CASE("run --timeout ends a rep string guest, also one writing MMIO under bt and EPT",
          "[cli][sim][rep]") {
  const std::string lods = write_guest("rep-lods.bin", kRepLods);
  auto r = run_trapscope({"run", lods, "--mode", "protected", "--backend", "sim", "--timeout",
                          "0.5", "-q"});
  CHECK(r.exit_code == 4);
  CHECK_THAT(r.out, Catch::Contains("run ended: time limit"));
  // rep stosb from 1 MiB up: every byte past the guest's 1 MiB of RAM is an MMIO write.
  const std::string stos = write_guest("rep-stos.bin", kRepStos);
  r = run_trapscope({"run", stos, "--mode", "protected", "--technique", "bt", "--paging", "ept",
                     "--mem", "1", "--timeout", "0.5", "-q"});
  CHECK(r.exit_code == 4);
  CHECK_THAT(r.out, Catch::Contains("run ended: time limit"));
}

TEST_CASE("the equivalence check holds few exits at once and ends at its time budget",
          "[sim][cosim][run-once]") {
  backend::Config cfg;
  cfg.technique = sim::virt::Technique::kVt;
  const auto r = backend::compare_with_native(kPortLoop, cfg, {1.0, 0, 0});
  CHECK_FALSE(r.checked);
  CHECK_FALSE(r.equal);
  CHECK_THAT(r.report, Catch::StartsWith("equivalence not checked: time limit reached"));
  CHECK(r.exits > 0);
  // Two slices' worth at most (one per side), each up to kCheckSliceExits plus the exits of the
  // step that crossed it.
  CHECK(r.max_held <= 2 * (backend::kCheckSliceExits + sim::kRepIterationsPerStep));

  std::atomic<bool> cancel{true};
  const auto c = backend::compare_with_native(kPortLoop, cfg, {60.0, 0, 0}, &cancel);
  CHECK_FALSE(c.checked);
  CHECK_THAT(c.report, Catch::StartsWith("equivalence not checked: interrupted"));

  // Runs that end (here at an exit limit, inside the rep outsb) are checked to the end.
  const auto ok = backend::compare_with_native(kRepOuts, protected_config(sim::virt::Technique::kVt),
                                               {30.0, 20, 0});
  CHECK(ok.checked);
  CHECK(ok.equal);
  INFO(ok.report);
}

TEST_CASE("run --check-equivalence on a port loop stays within --timeout in bounded memory",
          "[cli][sim][run-once][hostile]") {
  // the check used to record every event of two more runs, each up to the
  // timeout (7.6 GB RSS, std::bad_alloc). ctest runs each case in its own process, so the
  // children's peak RSS is this command's.
  const std::string loop = write_guest("port-loop.bin", kPortLoop);
  auto r = run_trapscope({"run", loop, "--technique", "vt", "--check-equivalence", "--timeout",
                          "2", "-q"});
  CHECK(r.exit_code == 4);
  CHECK_THAT(r.out, Catch::Contains("equivalence with the native simulator run: equivalence "
                                    "not checked: time limit reached"));
  rusage ru{};
  REQUIRE(getrusage(RUSAGE_CHILDREN, &ru) == 0);
  // KiB. The check held ~7 MB here (Release) and ~330 MB under ASan (its quarantine); it
  // held 1.66 GB before it was bounded.
  CHECK(ru.ru_maxrss < 768 * 1024);
}

TEST_CASE("numeric options refuse nan, inf, negative and out-of-range values",
          "[cli][bad-input]") {
  const std::vector<std::vector<std::string>> bad = {
      {"run", "hello", "--timeout", "nan"},
      {"run", "hello", "--timeout", "inf"},
      {"run", "hello", "--timeout", "-1"},
      {"run", "hello", "--timeout", "0"},
      {"run", "hello", "--max-exits", "99999999999999999999"},
      {"run", "hello", "--max-exits", "-1"},
      {"run", "hello", "--max-instructions", "-5"},
      {"run", "hello", "--load", "18446744073709551616"},
      {"run", "hello", "--load", "0x1g"},
      {"cosim", "hello", "--timeout", "nan"},
      {"cosim", "hello", "--max-exits", "-1"},
      {"cosim", "hello", "--load", "18446744073709551616"},
      {"walk", "hello", "--gva", "0", "--timeout", "nan"},
      {"walk", "hello", "--gva", "0", "--at-exit", "-1"},
      {"gui", "hello", "--load", "18446744073709551616"},
      {"gui", "hello", "--script-timeout", "nan"},
      {"gui", "hello", "--max-events", "-1"},
      {"classify", "hello", "--max-instructions", "-5"},
  };
  for (const auto& args : bad) {
    std::string line;
    for (const auto& a : args) line += a + " ";
    INFO(line);
    const auto r = run_trapscope(args);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("is not a") || Catch::Contains("UINT64") ||
                          Catch::Contains("SECONDS"));
  }
  // A load address outside guest memory: the loader's check.
  auto r = run_trapscope({"run", "hello", "--backend", "sim", "--load", "0xffffffffffff"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("does not fit in guest memory"));
  // Hexadecimal and decimal still work.
  r = run_trapscope({"run", "hello", "--backend", "sim", "--load", "0x8000", "--max-exits",
                     "1000", "-q"});
  CHECK(r.exit_code == 0);
}

TEST_CASE("a technique implies the simulator, also with --max-instructions", "[cli][sim]") {
  auto r = run_trapscope({"run", "compute", "--technique", "bt", "--max-instructions", "1000",
                          "-q"});
  CHECK(r.exit_code == 4);
  CHECK_THAT(r.out, Catch::Contains("run ended: instruction limit after"));
}

TEST_CASE("a host failure has its own exit status", "[cli][sim]") {
  struct stat st {};
  if (::stat("/dev/full", &st) != 0) {
    WARN("SKIPPED: no /dev/full here");
    return;
  }
  auto r = run_trapscope({"run", "hello", "--backend", "sim", "--trace", "/dev/full", "-q"});
  CHECK(r.exit_code == 6);
  CHECK_THAT(r.err, Catch::Contains("host error"));
}

namespace {

// Starts trapscope with `args`, its stdout to `out` (stdin and stderr as this process's).
pid_t spawn_trapscope(std::vector<std::string> args, const std::string& out) {
  args.insert(args.begin(), TRAPSCOPE_EXE);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  REQUIRE(rc == 0);
  return pid;
}

// Waits (at most 60 s) until `path` holds `text` (or, if empty, any byte).
void wait_for_file(const std::string& path, const std::string& text = {}) {
  for (int i = 0; i < 6000; ++i) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && st.st_size > 0) {
      if (text.empty()) return;
      const auto bytes = trapscope::test::read_file(path);
      if (std::string(bytes.begin(), bytes.end()).find(text) != std::string::npos) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

int exit_status(pid_t pid) {
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

}  // namespace

TEST_CASE("SIGTERM and SIGHUP stop a run like Ctrl-C: exit 130 and a complete trace",
          "[cli][sim][signals]") {
  const std::string loop = write_guest("signal-loop.bin", kPortLoop);
  for (int sig : {SIGTERM, SIGHUP, SIGINT}) {
    INFO("signal " << sig);
    const std::string trace = temp_path("signal.trace");
    const pid_t pid = spawn_trapscope(
        {"run", loop, "--backend", "sim", "--timeout", "60", "-q", "--trace", trace}, "/dev/null");
    wait_for_file(trace);  // the run is under way: its trace file has its header
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    kill(pid, sig);
    CHECK(exit_status(pid) == 130);
    const auto shown = run_trapscope({"show", trace, "--no-timing"});
    CHECK(shown.exit_code == 0);
    CHECK_THAT(shown.out, Catch::Contains("stopped"));
  }
}

TEST_CASE("Ctrl-C stops the equivalence check", "[cli][sim][signals][run-once]") {
  // The run ends at its exit limit; the check then runs the guest twice more to the same
  // limit, in slices, and sees the signal between them.
  const std::string loop = write_guest("check-loop.bin", kPortLoop);
  const std::string out = temp_path("check.out");
  const pid_t pid = spawn_trapscope({"run", loop, "--technique", "vt", "--check-equivalence",
                                     "--max-exits", "1000000", "--timeout", "600", "-q"},
                                    out);
  wait_for_file(out, "run ended:");
  kill(pid, SIGINT);
  CHECK(exit_status(pid) == 130);
  const auto bytes = trapscope::test::read_file(out);
  CHECK_THAT(std::string(bytes.begin(), bytes.end()),
             Catch::Contains("equivalence not checked: interrupted"));
}

// The random-guest campaign's reproducers (tests/fuzz/regressions/campaign/, docs/fuzzing.md):
// each once ran past its --timeout inside one rep string instruction. Each must now end on its
// time limit with the documented status (4), its console and memory bounded.
TEST_CASE("campaign reproducers end on their time limit", "[run][rep][fuzz]") {
  struct Case {
    const char* guest;
    std::vector<std::string> args;
  };
  const Case cases[] = {
      {"hung-3.bin",  // rep outsd, ECX = 0xFFFFFFFF, to port 0xFFFF
       {"--mode", "protected", "--technique", "trap-emulate", "--deprivilege", "3", "--paging",
        "native"}},
      {"hung-25.bin",  // rep movsd, ECX = 0x1AAC5BC5 (1.5 GB RSS before)
       {"--mode", "long", "--technique", "pv", "--paging", "shadow"}},
      {"hung-91.bin",  // rep outsd, ECX = 0xFFFFFFFF, to port 0xE9 (95 MB of output before)
       {"--mode", "protected", "--technique", "trap-emulate", "--deprivilege", "1", "--paging",
        "shadow"}},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args{"run",
                                  std::string(TRAPSCOPE_SOURCE_DIR) +
                                      "/tests/fuzz/regressions/campaign/" + c.guest,
                                  "--backend", "sim", "--mem", "1", "--timeout", "1", "-q"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const auto r = run_trapscope(args, 120);
    INFO(c.guest << ": " << r.err << r.out.substr(0, 2000));
    CHECK(r.exit_code == 4);
    CHECK_THAT(r.out, Catch::Contains("run ended: time limit"));
    CHECK(r.out.size() < trace::kConsoleLimitBytes + 4096);  // -q echoes the capped console
  }
}
