// `trapscope gui` end to end, without a screen: the GUI runs a script under Xvfb with Mesa
// (xvfb-run), draws real frames, writes PNG screenshots (stb_image_write) and a JSON dump of
// what it shows; the tests decode the PNGs (stb_image) and compare the dumped state with the
// backend's own state at the same point. Skipped, with a reason, where xvfb-run is missing.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>
#include <stb_image.h>

#include "backend/backend.hpp"
#include "guests/catalog.hpp"
#include "lessons/lesson.hpp"
#include "tests/support.hpp"
#include "trace/trace_file.hpp"
#include "vmm/doctor.hpp"

extern char** environ;

using namespace trapscope;
using nlohmann::json;

namespace {

struct Run {
  int exit_code = -1;
  std::string out, err;
};

// Runs argv[0] (searched in PATH) in its own process group, with `env` added to (or, for
// "NAME=" entries, removed from) this process's environment; kills the group on timeout.
Run run(const std::vector<std::string>& args, const std::vector<std::string>& env_changes,
        double timeout_s = 90) {
  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e) {
    const std::string kv = *e;
    bool replaced = false;
    for (const std::string& c : env_changes) {
      if (kv.substr(0, kv.find('=') + 1) == c.substr(0, c.find('=') + 1)) replaced = true;
    }
    if (!replaced) env_s.push_back(kv);
  }
  for (const std::string& c : env_changes) {
    if (c.back() != '=') env_s.push_back(c);
  }
  std::vector<char*> envp, argv;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args_s = args;
  for (auto& a : args_s) argv.push_back(a.data());
  argv.push_back(nullptr);

  int out_pipe[2], err_pipe[2];
  REQUIRE(pipe2(out_pipe, O_CLOEXEC) == 0);
  REQUIRE(pipe2(err_pipe, O_CLOEXEC) == 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid;
  const int rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(out_pipe[1]);
  close(err_pipe[1]);
  REQUIRE(rc == 0);

  Run res;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(timeout_s * 1000));
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  bool killed = false;
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 && !killed) {
      kill(-pid, SIGKILL);  // the process group this test started
      killed = true;
    }
    if (poll(fds, 2, killed ? 1000 : static_cast<int>(left.count())) < 0) break;
    for (auto& f : fds) {
      if (f.fd < 0 || !(f.revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      const ssize_t n = read(f.fd, buf, sizeof buf);
      if (n <= 0) {
        close(f.fd);
        f.fd = -1;
        --open_fds;
      } else {
        (&f == &fds[0] ? res.out : res.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  res.exit_code = (!killed && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  return res;
}

bool have_xvfb_run() {
  for (const char* dir : {"/usr/bin/", "/usr/local/bin/", "/bin/"}) {
    if (access((std::string(dir) + "xvfb-run").c_str(), X_OK) == 0) return true;
  }
  return false;
}

#define REQUIRE_XVFB_OR_SKIP()                                                              \
  do {                                                                                      \
    if (!have_xvfb_run()) {                                                                 \
      WARN("SKIPPED: xvfb-run is not installed (Debian: xvfb xauth libgl1-mesa-dri), so the " \
           "GUI cannot be run without a screen here");                                      \
      return;                                                                               \
    }                                                                                       \
  } while (0)

// trapscope gui ARGS under Xvfb (a fresh server per run; -n spreads parallel tests apart).
Run gui(std::vector<std::string> args) {
  static int counter = 0;
  const int base = 200 + static_cast<int>((getpid() * 7 + counter++ * 13) % 700);
  std::vector<std::string> argv{"xvfb-run", "-a", "-n", std::to_string(base), "-s",
                                "-screen 0 1600x1000x24", TRAPSCOPE_EXE, "gui"};
  argv.insert(argv.end(), args.begin(), args.end());
  // Mesa and X keep allocations to process exit: not this project's leaks (ASan builds).
  // xvfb-run itself failing is tried again, on another display number: an X server that did
  // not start (the number taken meanwhile), or its clean-up of its temporary directory failing
  // (it then exits 5 in place of trapscope's status, seen once in 300 parallel runs). Anything
  // trapscope itself said is returned as it is.
  Run r;
  for (int attempt = 0; attempt < 3; ++attempt) {
    r = run(argv, {"ASAN_OPTIONS=detect_leaks=0", "LIBGL_ALWAYS_SOFTWARE=1"});
    const bool xvfb_run_failed =
        r.err.find("Xvfb failed to start") != std::string::npos ||
        r.err.find("server already active") != std::string::npos ||
        (r.exit_code == 5 && r.err.find("problem while cleaning up") != std::string::npos);
    if (!xvfb_run_failed) break;
    argv[3] = std::to_string(200 + (std::stoi(argv[3]) - 200 + 97) % 700);
  }
  return r;
}

std::string write_script(const std::string& name, const std::string& text) {
  const std::string path = test::temp_path(name);
  std::ofstream(path) << text;
  return path;
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in);
  return json::parse(in);
}

// Width, height, and whether the picture has structure (not one flat colour).
struct Png {
  int w = 0, h = 0;
  double stddev = 0;
  int distinct_rows = 0;
};
Png inspect_png(const std::string& path) {
  Png p;
  int channels = 0;
  unsigned char* px = stbi_load(path.c_str(), &p.w, &p.h, &channels, 3);
  REQUIRE(px != nullptr);
  double sum = 0, sum2 = 0;
  const size_t n = static_cast<size_t>(p.w) * static_cast<size_t>(p.h) * 3;
  for (size_t i = 0; i < n; ++i) {
    sum += px[i];
    sum2 += static_cast<double>(px[i]) * px[i];
  }
  const double mean = sum / static_cast<double>(n);
  p.stddev = std::sqrt(std::max(0.0, sum2 / static_cast<double>(n) - mean * mean));
  for (int y = 1; y < p.h; ++y) {
    if (std::memcmp(px + static_cast<size_t>(y) * p.w * 3, px + static_cast<size_t>(y - 1) * p.w * 3,
                    static_cast<size_t>(p.w) * 3) != 0) {
      ++p.distinct_rows;
    }
  }
  stbi_image_free(px);
  return p;
}

std::unique_ptr<backend::Backend> reference(const std::string& name) {
  const auto g = guests::find(name);
  backend::Config cfg;
  cfg.mode = *vmm::parse_boot_mode(g->mode);
  cfg.record_instructions = true;
  auto b = backend::make_backend(backend::Kind::kSim, cfg);
  b->load(g->image);
  return b;
}

void check_registers(const json& shown, const sim::CpuState& r) {
  static constexpr const char* kGpr[] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                         "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
  REQUIRE(shown.is_object());
  for (int i = 0; i < 16; ++i) {
    INFO(kGpr[i]);
    CHECK(shown[kGpr[i]].get<uint64_t>() == r.gpr[i]);
  }
  CHECK(shown["rip"].get<uint64_t>() == r.rip);
  CHECK(shown["rflags"].get<uint64_t>() == r.rflags);
  CHECK(shown["cr0"].get<uint64_t>() == r.cr0);
  CHECK(shown["cr3"].get<uint64_t>() == r.cr3);
  CHECK(shown["efer"].get<uint64_t>() == r.efer);
  CHECK(shown["cpl"].get<int>() == r.cpl());
  // The segment table: every descriptor-cache field the panel shows.
  auto check_segment = [&](const char* name, const sim::Segment& seg) {
    INFO("segment " << name);
    const json& j = shown[name];
    REQUIRE(j.is_object());
    CHECK(j["selector"].get<uint64_t>() == seg.selector);
    CHECK(j["base"].get<uint64_t>() == seg.base);
    CHECK(j["limit"].get<uint64_t>() == seg.limit);
    CHECK(j["type"].get<int>() == seg.type);
    CHECK(j["s"].get<int>() == seg.s);
    CHECK(j["dpl"].get<int>() == seg.dpl);
    CHECK(j["present"].get<int>() == seg.present);
    CHECK(j["l"].get<int>() == seg.l);
    CHECK(j["db"].get<int>() == seg.db);
    CHECK(j["g"].get<int>() == seg.g);
  };
  static constexpr const char* kSeg[] = {"es", "cs", "ss", "ds", "fs", "gs"};
  for (int i = 0; i < sim::kSegCount; ++i) check_segment(kSeg[i], r.seg[i]);
  check_segment("tr", r.tr);
  check_segment("ldtr", r.ldtr);
}

// Runs `b`, stopping after events of the types in `stop_on`, until pred(rec, i) holds for a
// new event i (the events seen go to `rec`; a stop can record more than one event, e.g. an
// exception and the ring transition that delivers it).
template <typename Pred>
bool run_until(backend::Backend& b, uint32_t stop_on, trace::Recorder& rec, Pred pred) {
  backend::StopCondition stop;
  stop.stop_on = stop_on;
  for (;;) {
    const size_t from = rec.size();
    if (b.run(stop, &rec).reason != trace::RunEndReason::kEventMatched) return false;
    for (size_t i = from; i < rec.size(); ++i) {
      if ((stop_on >> static_cast<unsigned>(rec.at(i).type) & 1) && pred(rec, i)) return true;
    }
  }
}

}  // namespace

TEST_CASE("gui under Xvfb: step to the first VM exit of hello, screenshot, state", "[gui][xvfb]") {
  REQUIRE_XVFB_OR_SKIP();
  const std::string png = test::temp_path("hello-exit.png");
  const std::string state = test::temp_path("hello-exit.json");
  const std::string script = write_script("hello.script",
                                          "step-to exit\n"
                                          "assert-selected exit reason=IO port=0xe9\n"
                                          "assert-cpl 0\n"
                                          "assert-console H\n"
                                          "screenshot " + png + "\n"
                                          "dump " + state + "\n");
  const Run r = gui({"hello", "--backend", "sim", "--size", "1280x800", "--script", script});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);

  const Png p = inspect_png(png);
  CHECK(p.w == 1280);
  CHECK(p.h == 800);
  CHECK(p.stddev > 20.0);          // panels, text and colours, not a cleared screen
  CHECK(p.distinct_rows > 300);    // many rows of text and widgets

  const json s = read_json(state);
  CHECK(s["gui"]["frames"].get<int>() > 2);
  CHECK(s["state"] == "stopped");
  REQUIRE(s["selected"].is_object());
  CHECK(s["selected"]["type"] == "VM exit");
  CHECK(s["selected"]["exit_reason"] == "IO");
  CHECK(s["selected"]["port"] == 0xE9);
  CHECK(s["selected"]["value"] == 'H');
  CHECK(s["cpl_shown"] == 0);
  CHECK(s["console"] == "H");
  CHECK(s["lanes"]["vm_exit"] == 1);

  // The backend, run by itself to its first VM exit, has the registers the GUI shows, and the
  // selected event is that first exit.
  auto b = reference("hello");
  backend::StopCondition stop;
  stop.stop_on = 1u << static_cast<unsigned>(trace::EventType::kVmExit);
  trace::Recorder rec;
  REQUIRE(b->run(stop, &rec).reason == trace::RunEndReason::kEventMatched);
  check_registers(s["registers"], b->registers());
  CHECK(s["events"].get<size_t>() == rec.size());
  size_t first_exit = 0;
  while (first_exit < rec.size() && rec.at(first_exit).type != trace::EventType::kVmExit) {
    ++first_exit;
  }
  CHECK(s["selected"]["index"].get<size_t>() == first_exit);
}

TEST_CASE("gui under Xvfb: rings — into CPL 3, a #GP back to CPL 0", "[gui][xvfb]") {
  REQUIRE_XVFB_OR_SKIP();
  const std::string user = test::temp_path("rings-user.json");
  const std::string kernel = test::temp_path("rings-kernel.json");
  const std::string png = test::temp_path("rings.png");
  const std::string script = write_script("rings.script",
                                          "step-to ring\n"
                                          "assert-cpl 3\n"
                                          "assert-selected ring cpl=3\n"
                                          "dump " + user + "\n"
                                          "step-to exception\n"
                                          "assert-selected exception vector=13 cpl=3\n"
                                          "assert-cpl 0\n"
                                          "step-back\n"
                                          "assert-cpl 3\n"
                                          "step\n"
                                          "screenshot " + png + "\n"
                                          "dump " + kernel + "\n");
  const Run r = gui({"rings", "--script", script});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);

  const json u = read_json(user);
  CHECK(u["cpl_shown"] == 3);
  CHECK(u["selected"]["type"] == "ring");
  CHECK(u["selected"]["from_cpl"] == 0);
  CHECK(u["selected"]["to_cpl"] == 3);
  auto b = reference("rings");
  backend::StopCondition stop;
  stop.stop_on = 1u << static_cast<unsigned>(trace::EventType::kRingTransition);
  REQUIRE(b->run(stop, nullptr).reason == trace::RunEndReason::kEventMatched);
  check_registers(u["registers"], b->registers());

  const json k = read_json(kernel);
  CHECK(k["cpl_shown"] == 0);
  CHECK(k["lanes"]["exception"] == 1);  // stepped back over it and through it again: once
  const Png p = inspect_png(png);
  CHECK(p.w == 1600);
  CHECK(p.stddev > 20.0);
}

TEST_CASE("gui under Xvfb: a trace file opens the same views", "[gui][xvfb]") {
  REQUIRE_XVFB_OR_SKIP();
  const std::string trace_path = test::temp_path("hello.trace");
  {
    auto b = reference("hello");
    trace::TraceMetadata meta;
    meta.backend = "sim";
    meta.guest = "hello";
    trace::TraceWriter w(trace_path, meta);
    b->run({}, &w);
    w.finish();
  }
  const std::string state = test::temp_path("trace.json");
  const std::string script = write_script("trace.script",
                                          "step-to exit\nstep-to exit\n"
                                          "assert-console He\n"
                                          "run\n"
                                          "step\n"  // past the recorded end: refused, said
                                          "dump " + state + "\n");
  const Run r = gui({trace_path, "--script", script});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json s = read_json(state);
  CHECK(s["state"] == "trace");
  CHECK(s["registers"].is_null());
  CHECK(s["console"] == "Hello from a real-mode guest!\n");
  CHECK(s["message_is_error"] == true);
  CHECK(s["message"].get<std::string>().find("recorded end") != std::string::npos);
  CHECK(s["selected"]["type"] == "run end");
}

TEST_CASE("gui: a failed script assertion exits 1 and names the line", "[gui][xvfb]") {
  REQUIRE_XVFB_OR_SKIP();
  const std::string script = write_script("fail.script", "step\nassert-cpl 3\nstep\n");
  const Run r = gui({"hello", "--script", script});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("line 2") != std::string::npos);
  CHECK(r.err.find("CPL 0") != std::string::npos);
}

TEST_CASE("gui: usage errors need no screen", "[gui]") {
  SECTION("a malformed script is refused before a window opens") {
    const std::string script = write_script("bad.script", "step\nstep-to nowhere\n");
    const auto r = test::run_trapscope({"gui", "hello", "--script", script});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("line 2") != std::string::npos);
  }
  SECTION("an unknown lesson, a backend the lesson does not allow, --gui with --check") {
    const auto a = test::run_trapscope({"gui", "--lesson", "no-such-lesson"});
    CHECK(a.exit_code == 2);
    CHECK(a.err.find("no-such-lesson") != std::string::npos);
    const auto b = test::run_trapscope({"gui", "--lesson", "3", "--backend", "kvm"});
    CHECK(b.exit_code == 2);
    CHECK(b.err.find("does not run on kvm") != std::string::npos);
    const auto c = test::run_trapscope({"lesson", "run", "3", "--gui", "--check"});
    CHECK(c.exit_code == 2);
  }
  SECTION("no display: exit 2 and a hint about Xvfb") {
    const Run r = run({TRAPSCOPE_EXE, "gui", "hello"},
                      {"DISPLAY=", "WAYLAND_DISPLAY=", "ASAN_OPTIONS=detect_leaks=0"}, 30);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("xvfb-run") != std::string::npos);
  }
  SECTION("an unknown guest") {
    const auto r = test::run_trapscope({"gui", "no-such-guest"});
    CHECK(r.exit_code == 2);
  }
  SECTION("a simulator technique on KVM, an unknown technique") {
    const auto a = test::run_trapscope({"gui", "hello", "--backend", "kvm", "--technique", "bt"});
    CHECK(a.exit_code == 2);
    CHECK(a.err.find("--backend sim") != std::string::npos);
    const auto b = test::run_trapscope({"gui", "hello", "--technique", "jit"});
    CHECK(b.exit_code == 2);
  }
}

TEST_CASE("gui under Xvfb: breakpoints on an event with conditions and on an address", "[gui][xvfb]") {
  REQUIRE_XVFB_OR_SKIP();
  const std::string at_pf = test::temp_path("bp-pf.json");
  const std::string at_addr = test::temp_path("bp-addr.json");
  const std::string at_exit = test::temp_path("bp-exit.json");
  const std::string png = test::temp_path("bp.png");
  // rings' user program raises #GP five times before its #PF (vector 14): the condition, not
  // the kind alone, decides where the run stops.
  const std::string script = write_script("bp.script",
                                          "break-event exception vector=14 cpl=3\n"
                                          "run\n"
                                          "assert-selected exception vector=14 cpl=3\n"
                                          "dump " + at_pf + "\n"
                                          "clear-breaks\n"
                                          "reset\n"
                                          "break 0xa02d\n"
                                          "run\n"
                                          "assert-cpl 3\n"
                                          "dump " + at_addr + "\n"
                                          "clear-breaks\n"
                                          "break-event exit reason=IO port=0xe9 cpl=0\n"
                                          "run\n"
                                          "assert-selected exit reason=IO port=0xe9\n"
                                          "show breakpoints\n"
                                          "screenshot " + png + "\n"
                                          "dump " + at_exit + "\n");
  const Run r = gui({"rings", "--backend", "sim", "--script", script});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);

  const uint32_t exceptions = 1u << static_cast<unsigned>(trace::EventType::kException);
  {
    const json s = read_json(at_pf);
    CHECK(s["state"] == "stopped");
    CHECK(s["selected"]["vector"] == 14);
    CHECK(s["lanes"]["exception"] == 6);  // five #GPs went by without stopping
    auto b = reference("rings");
    trace::Recorder rec;
    size_t pf = 0;
    REQUIRE(run_until(*b, exceptions, rec, [&](const trace::Recorder& events, size_t i) {
      const auto* e = events.get<trace::ExceptionEvent>(i, trace::EventType::kException);
      pf = i;
      return e && e->vector == 14 && e->header.cpl == 3;
    }));
    check_registers(s["registers"], b->registers());
    CHECK(s["registers"]["cr2"].get<uint64_t>() == b->registers().cr2);
    CHECK(s["selected"]["index"].get<size_t>() == pf);
    CHECK(s["events"].get<size_t>() == rec.size());
  }
  {
    const json s = read_json(at_addr);
    CHECK(s["registers"]["rip"] == 0xa02d);
    CHECK(s["cpl_shown"] == 3);
    auto b = reference("rings");
    backend::StopCondition stop;
    stop.has_breakpoint = true;
    stop.breakpoint = 0xa02d;
    REQUIRE(b->run(stop, nullptr).reason == trace::RunEndReason::kBreakpoint);
    check_registers(s["registers"], b->registers());
  }
  {
    const json s = read_json(at_exit);
    CHECK(s["selected"]["type"] == "VM exit");
    CHECK(s["selected"]["port"] == 0xE9);
    REQUIRE(s["breakpoints"].size() == 1);
    CHECK(s["breakpoints"][0]["what"].get<std::string>().find("port=0xe9") != std::string::npos);
  }
  const Png p = inspect_png(png);
  CHECK(p.stddev > 20.0);
  CHECK(p.distinct_rows > 300);
}

TEST_CASE("gui under Xvfb: the KVM backend, its exits, breakpoints and its plain no to step back",
          "[gui][xvfb][kvm]") {
  REQUIRE_XVFB_OR_SKIP();
  REQUIRE_KVM_OR_SKIP();
  const std::string at_exit = test::temp_path("kvm-exit.json");
  const std::string at_bp = test::temp_path("kvm-bp.json");
  const std::string at_user = test::temp_path("kvm-user.json");
  const std::string png = test::temp_path("kvm.png");
  const std::string script = write_script("kvm.script",
                                          "step-to exit\n"
                                          "step-to exit\n"
                                          "step-to exit\n"
                                          "step-back\n"
                                          "screenshot " + png + "\n"
                                          "dump " + at_exit + "\n"
                                          "break-event exit reason=IO port=0xe9 cpl=0\n"
                                          "run\n"
                                          "dump " + at_bp + "\n"
                                          "clear-breaks\n"
                                          // rings' #GP handler stub, at CPL 0: on kvm_pvm CPL 3
                                          // code runs natively and cannot stop at an address.
                                          "break 0x82ff\n"
                                          "run\n"
                                          "assert-cpl 0\n"
                                          "dump " + at_user + "\n");
  const Run r = gui({"rings", "--backend", "kvm", "--script", script});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);

  const uint32_t exits = 1u << static_cast<unsigned>(trace::EventType::kVmExit);
  backend::Config cfg;
  cfg.mode = *vmm::parse_boot_mode(guests::find("rings")->mode);
  {
    const json s = read_json(at_exit);
    CHECK(s["backend"].get<std::string>().rfind("KVM", 0) == 0);
    CHECK(s["message_is_error"] == true);
    CHECK(s["message"].get<std::string>().find("cannot step back") != std::string::npos);
    CHECK(s["selected"]["index"] == 2);
    CHECK(s["console"] == "rin");
    CHECK(s["exit_stats"][0]["reason"] == "IO");
    CHECK(s["exit_stats"][0]["count"] == 3);
    auto b = backend::make_backend(backend::Kind::kKvm, cfg);
    b->load(guests::find("rings")->image);
    trace::Recorder rec;
    int seen = 0;
    REQUIRE(run_until(*b, exits, rec, [&](const trace::Recorder&, size_t) { return ++seen == 3; }));
    check_registers(s["registers"], b->registers());
  }
  {
    const json s = read_json(at_bp);
    CHECK(s["selected"]["index"] == 3);  // the next exit that satisfies the condition
    CHECK(s["console"] == "ring");
  }
  {
    const json s = read_json(at_user);
    CHECK(s["registers"]["rip"] == 0x82ff);
    CHECK(s["message"].get<std::string>().find("breakpoint") != std::string::npos);
    CHECK(s["console"].get<std::string>().find("trap:") == std::string::npos);  // the first #GP
    auto b = backend::make_backend(backend::Kind::kKvm, cfg);
    b->load(guests::find("rings")->image);
    backend::StopCondition stop;
    stop.has_breakpoint = true;
    stop.breakpoint = 0x82ff;
    REQUIRE(b->run(stop, nullptr).reason == trace::RunEndReason::kBreakpoint);
    check_registers(s["registers"], b->registers());
  }
  const Png p = inspect_png(png);
  CHECK(p.stddev > 20.0);
}

TEST_CASE("gui under Xvfb: KVM single-steps the kernel's iretq to CPL 3, and says what kvm_pvm did",
          "[gui][xvfb][kvm]") {
  REQUIRE_XVFB_OR_SKIP();
  REQUIRE_KVM_OR_SKIP();
  // The kernel's iretq into the user program: the instruction retired right after the
  // simulator's first ring transition (the transition is recorded before the retirement).
  uint64_t iretq = 0;
  {
    auto b = reference("rings");
    trace::Recorder rec;
    backend::StopCondition stop;
    stop.stop_on = 1u << static_cast<unsigned>(trace::EventType::kInstruction);
    bool after_ring = false;
    for (int i = 0; i < 200000 && !iretq; ++i) {
      const size_t from = rec.size();
      REQUIRE(b->run(stop, &rec).reason == trace::RunEndReason::kEventMatched);
      for (size_t k = from; k < rec.size(); ++k) {
        if (rec.at(k).type == trace::EventType::kRingTransition) after_ring = true;
        if (after_ring && rec.at(k).type == trace::EventType::kInstruction) iretq = rec.at(k).rip;
      }
    }
    REQUIRE(iretq != 0);
  }
  const std::string state = test::temp_path("kvm-iretq.json");
  const std::string script = write_script("kvm-iretq.script",
                                          "break " + std::to_string(iretq) + "\n"
                                          "run\n"
                                          "clear-breaks\n"
                                          "step\n"
                                          "dump " + state + "\n");
  const Run r = gui({"rings", "--backend", "kvm", "--script", script});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json s = read_json(state);
  const std::string message = s["message"].get<std::string>();
  INFO(message);
  if (vmm::host_kvm_module() == "kvm_pvm") {
    // CPL 3 runs natively: the step ends in the kernel's trap handler, and the GUI says why.
    CHECK(s["cpl_shown"] == 0);
    CHECK(message.find("runs natively on kvm_pvm") != std::string::npos);
  } else {
    CHECK(s["cpl_shown"] == 3);  // hardware-assisted KVM single-steps into the user program
    CHECK(message.find("natively") == std::string::npos);
  }
}

TEST_CASE("gui under Xvfb: a simulator trace shows registers and memory by re-execution",
          "[gui][xvfb]") {
  REQUIRE_XVFB_OR_SKIP();
  const std::string trace_path = test::temp_path("rings-sim.trace");
  const auto rec = test::run_trapscope({"run", "rings", "--backend", "sim",
                                        "--record-instructions", "-q", "--trace", trace_path});
  REQUIRE(rec.exit_code == 0);
  const std::string state = test::temp_path("rings-trace.json");
  const std::string png = test::temp_path("rings-trace.png");
  const std::string script = write_script("rings-trace.script",
                                          "break-event exception vector=14\n"
                                          "run\n"
                                          "assert-selected exception vector=14 cpl=3\n"
                                          "memory 0xa000\n"
                                          "screenshot " + png + "\n"
                                          "dump " + state + "\n");
  const Run r = gui({trace_path, "--script", script});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json s = read_json(state);
  CHECK(s["state"] == "trace");
  REQUIRE(s["registers"].is_object());
  auto b = reference("rings");
  trace::Recorder events;
  const uint32_t exceptions = 1u << static_cast<unsigned>(trace::EventType::kException);
  REQUIRE(run_until(*b, exceptions, events, [&](const trace::Recorder& e, size_t i) {
    const auto* x = e.get<trace::ExceptionEvent>(i, trace::EventType::kException);
    return x && x->vector == 14;
  }));
  check_registers(s["registers"], b->registers());
  CHECK(s["cpl_shown"] == 0);  // the machine after delivering the #PF to the kernel
  const Png p = inspect_png(png);
  CHECK(p.stddev > 20.0);
}

TEST_CASE("gui under Xvfb: shadow-paging and EPT traces re-execute under their own paging",
          "[gui][xvfb]") {
  REQUIRE_XVFB_OR_SKIP();
  for (const char* paging : {"shadow", "ept"}) {
    INFO("--paging " << paging);
    const std::string trace_path = test::temp_path(std::string("paging-") + paging + ".trace");
    const auto rec = test::run_trapscope(
        {"run", "paging", "--backend", "sim", "--paging", paging, "-q", "--trace", trace_path});
    REQUIRE(rec.exit_code == 0);
    CHECK(trace::read_trace(trace_path).metadata.paging == paging);
    const std::string state = test::temp_path(std::string("paging-") + paging + ".json");
    const std::string script = write_script(std::string("paging-") + paging + ".script",
                                            "step 300\n"
                                            "dump " + state + "\n");
    const Run r = gui({trace_path, "--script", script});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const json s = read_json(state);
    INFO(s["message"]);
    CHECK(s["message"].get<std::string>().find("diverged") == std::string::npos);
    REQUIRE(s["registers"].is_object());
    CHECK(s["registers"]["cr3"] == 0x20000);  // the guest's own address space A by then
  }
}

// [SECTION] The lesson pane (`trapscope gui --lesson ID`, visualizer/core/lesson_driver.hpp)

namespace {

// A script that runs every step of an n-step lesson through the pane's controls, checking each
// verdict, then dumps the state and takes a screenshot.
std::string every_step(size_t n, const std::string& state, const std::string& png) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += "lesson-step\nassert-lesson passed\nlesson-next\n";
  return s + "dump " + state + "\nscreenshot " + png + "\n";
}

}  // namespace

TEST_CASE("gui under Xvfb: lesson 1 (vm-exit) on the simulator, step by step in the pane",
          "[gui][xvfb][lessons]") {
  REQUIRE_XVFB_OR_SKIP();
  const std::string png = test::temp_path("lesson1.png");
  const std::string state = test::temp_path("lesson1.json");
  const std::string first = test::temp_path("lesson1-first.json");
  // Step 2's action is the first VM exit: the pane selects it in every view, as step-to does.
  const std::string script = write_script(
      "lesson1.script", "lesson-next\nlesson-step\nassert-lesson passed\n"
                        "assert-selected exit reason=IO port=0xe9\ndump " + first + "\n"
                        "lesson-next\nlesson-step\nassert-lesson passed\nlesson-next\n"
                        "lesson-step\nassert-lesson passed\n"
                        "dump " + state + "\nscreenshot " + png + "\n");
  const Run r = gui({"--lesson", "vm-exit", "--backend", "sim", "--lang", "en", "--size",
                     "1600x900", "--script", script});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);

  const json f = read_json(first);
  CHECK(f["selected"]["index"] == 0);
  CHECK(f["selected"]["value"] == 'H');
  CHECK(f["lesson"]["results"][1]["event"] == 0);

  const json s = read_json(state);
  const json& l = s["lesson"];
  CHECK(l["id"] == "vm-exit");
  CHECK(l["lang"] == "en");
  REQUIRE(l["results"].size() == 4);
  for (const json& step : l["results"]) {
    INFO(step.dump());
    CHECK(step["verdict"] == "passed");
  }
  // Step 3 ran to the 'o' of "Hello" (the fifth exit); step 4 to the end of the run, which is
  // the event selected now.
  CHECK(l["results"][2]["event"] == 4);
  CHECK(l["results"][3]["event"] == 31);
  REQUIRE(s["selected"].is_object());
  CHECK(s["selected"]["index"] == 31);
  CHECK(s["selected"]["type"] == "run end");
  CHECK(s["selected"]["reason"] == "guest halted");
  CHECK(s["console"] == "Hello from a real-mode guest!\n");
  CHECK(s["lanes"]["vm_exit"] == 31);

  const Png p = inspect_png(png);
  CHECK(p.w == 1600);
  CHECK(p.stddev > 20.0);
  CHECK(p.distinct_rows > 300);
}

TEST_CASE("gui under Xvfb: a lesson whose expectation fails shows it, and stops there",
          "[gui][xvfb][lessons]") {
  REQUIRE_XVFB_OR_SKIP();
  // Lesson 1 with a wrong expectation in step 2: the first exit is on port 0xe9, not COM1.
  std::ifstream in(std::string(TRAPSCOPE_SOURCE_DIR) + "/lessons/01-vm-exit.yaml");
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  std::string yaml = text.str();
  const std::string right = "expect: {port: 0xe9, direction: out, size: 1, value: 0x48, cpl: 0}";
  REQUIRE(yaml.find(right) != std::string::npos);
  yaml.replace(yaml.find(right), right.size(), "expect: {port: 0x3f8}");
  const std::string file = test::temp_path("wrong-lesson.yaml");
  std::ofstream(file) << yaml;
  const std::string state = test::temp_path("wrong-lesson.json");
  const std::string script = write_script(
      "wrong.script", "lesson-next\nlesson-step\nassert-lesson failed\nlesson-next\n"
                      "assert-lesson not-run\ndump " + state + "\n");
  const Run r = gui({"--lesson", file, "--backend", "sim", "--script", script});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json l = read_json(state)["lesson"];
  CHECK(l["results"][0]["verdict"] == "passed");
  CHECK(l["results"][1]["verdict"] == "failed");
  CHECK(l["results"][1]["failure"].get<std::string>().find("port is 0xe9, expected 0x3f8") !=
        std::string::npos);
  CHECK(l["results"][2]["verdict"] == "not run");
  CHECK(l["next_to_run"] == 5);  // none can run after a failure

  // Running a step after the failure is refused with the reason, and the script fails there.
  const std::string again = write_script("wrong-again.script", "lesson-next\nlesson-step\n"
                                                               "lesson-next\nlesson-step\n");
  const Run r2 = gui({"--lesson", file, "--backend", "sim", "--script", again});
  CHECK(r2.exit_code == 1);
  CHECK(r2.err.find("line 4") != std::string::npos);
  CHECK(r2.err.find("a step before it failed") != std::string::npos);
}

TEST_CASE("gui under Xvfb: lesson 3 restarts the guest under VT-x in the pane",
          "[gui][xvfb][lessons]") {
  REQUIRE_XVFB_OR_SKIP();
  const lessons::Lesson l3 = lessons::find_lesson("3");
  const std::string png = test::temp_path("lesson3.png");
  const std::string state = test::temp_path("lesson3.json");
  const std::string script =
      write_script("lesson3.script", "lesson-lang es\n" + every_step(l3.steps.size(), state, png));
  const Run r = gui({"--lesson", "3", "--script", script});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json s = read_json(state);
  const json& l = s["lesson"];
  CHECK(l["lang"] == "es");
  CHECK(l["technique"] == "vt");  // after the restart step
  for (const json& step : l["results"]) {
    INFO(step.dump());
    CHECK(step["verdict"] == "passed");
  }
  // The step after the restart matched the first event of the new machine: a VT-x transition.
  size_t restart = 0;
  while (restart < l3.steps.size() && !l3.steps[restart].restart) ++restart;
  REQUIRE(restart < l3.steps.size());
  CHECK(l["results"][restart]["event"] == 0);
  CHECK(l["results"][restart]["event_line"].get<std::string>().find("IO_INSTRUCTION") !=
        std::string::npos);
  CHECK(s["selected"]["type"] == "run end");
  CHECK(s["console"].get<std::string>().find("popek: done") != std::string::npos);
  CHECK(inspect_png(png).stddev > 20.0);
}

TEST_CASE("gui under Xvfb: lesson 1 on KVM in the pane", "[gui][xvfb][kvm][lessons]") {
  REQUIRE_XVFB_OR_SKIP();
  REQUIRE_KVM_OR_SKIP();
  const std::string state = test::temp_path("lesson1-kvm.json");
  const std::string png = test::temp_path("lesson1-kvm.png");
  const std::string script = write_script("lesson1-kvm.script", every_step(4, state, png));
  const Run r = gui({"--lesson", "vm-exit", "--backend", "kvm", "--script", script});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json s = read_json(state);
  for (const json& step : s["lesson"]["results"]) {
    INFO(step.dump());
    CHECK(step["verdict"] == "passed");
  }
  CHECK(s["lesson"]["results"][1]["event"] == 0);  // KVM's events: VM exits only
  CHECK(s["lesson"]["results"][2]["event"] == 4);
  CHECK(s["selected"]["type"] == "run end");
  CHECK(s["backend"].get<std::string>().find("KVM") != std::string::npos);
}

// The translation-cache panel (visualizer/panels/tcache.cpp), live under --technique bt: the
// first translation opens it; after the guest's run it holds every unit with the cache's own
// execution counts (bt_counts), and the selected block's guest code beside its translation.
TEST_CASE("gui under Xvfb: the translation-cache panel, live under binary translation",
          "[gui][xvfb][tcache]") {
  REQUIRE_XVFB_OR_SKIP();
  const std::string png = test::temp_path("tcache-live.png");
  const std::string first = test::temp_path("tcache-first.json");
  const std::string state = test::temp_path("tcache-live.json");
  const std::string script = write_script(
      "tcache-live.script",
      "step-to translation\n"
      "assert-selected translation\n"
      "dump " + first + "\n"
      "run\n"
      "tcache-select 0x8005\n"
      "frames 3\n"
      "screenshot " + png + "\n"
      "dump " + state + "\n");
  const Run r = gui({"kernelops", "--technique", "bt", "--script", script});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  // The first translation: the entry block, selected in every view and in the panel.
  const json f = read_json(first);
  CHECK(f.at("selected").at("rip") == 0x8000);
  CHECK(f.at("tcache").at("translations") == 1);
  CHECK(f["tcache"].at("selected").at("rip") == 0x8000);
  CHECK(f.at("gui").at("windows").at("translation cache") == true);

  const json s = read_json(state);
  CHECK(s["state"] == "finished");
  CHECK(s["exit_code"] == 0);
  const json& tc = s["tcache"];
  CHECK(tc["count_reports"].get<uint64_t>() > 0);
  CHECK(tc["translations"].get<uint64_t>() >= 25);
  CHECK(tc["chains"].get<uint64_t>() > 0);
  CHECK(tc["callouts"].get<uint64_t>() >= 100000);  // 7 callouts a pass, 20,000 passes
  CHECK(tc.at("hot").at(0).at("executions").get<uint64_t>() >= 10000);
  // Every instruction the guest retired ran from the cache (kernelops has no CPL 3 code).
  CHECK(tc["instructions"] == s["instructions"]);
  // The step to the first translation stopped after the entry unit's first instruction, so the
  // run went on from 0x8005 with a unit of its own: that one chains to 0x8017 (mov cr0, eax).
  const json& sel = tc.at("selected");
  CHECK(sel.at("rip") == 0x8005);
  REQUIRE(sel.at("lines").size() == 8);
  CHECK(sel["lines"][0]["guest"] == "xor ebx, ebx");
  CHECK(sel["lines"][0]["kind"] == "IDENT");
  CHECK(sel["lines"][2]["kind"] == "in-cache");
  CHECK(sel["lines"][7]["kind"] == "callout");
  CHECK(sel["lines"][7]["guest"].get<std::string>().find("cr0") != std::string::npos);
  REQUIRE(sel.at("successors").size() == 1);
  CHECK(sel["successors"][0]["rip"] == 0x8017);
  CHECK(sel.at("predecessors").empty());
  const Png p = inspect_png(png);
  CHECK(p.w == 1600);
  CHECK(p.stddev > 10);
  CHECK(p.distinct_rows > 200);
}

// From a saved trace of self-modifying code: invalidations, retranslations and the adaptive
// callout, with no machine behind the views.
TEST_CASE("gui under Xvfb: the translation-cache panel over a bt trace of smc",
          "[gui][xvfb][tcache]") {
  REQUIRE_XVFB_OR_SKIP();
  const std::string trace_path = test::temp_path("smc-bt.trace");
  const auto rec = test::run_trapscope({"run", "smc", "--technique", "bt", "-q", "--trace",
                                        trace_path});
  REQUIRE(rec.exit_code == 0);
  const std::string state = test::temp_path("tcache-smc.json");
  const std::string png = test::temp_path("tcache-smc.png");
  const std::string script = write_script("tcache-smc.script",
                                          "show translation cache\n"
                                          "step-to translation\n"
                                          "step-to translation\n"
                                          "frames 3\n"
                                          "screenshot " + png + "\n"
                                          "dump " + state + "\n");
  const Run r = gui({trace_path, "--script", script});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json s = read_json(state);
  CHECK(s["state"] == "trace");
  CHECK(s["selected"]["type"] == "BT translate");
  const json& tc = s["tcache"];
  CHECK(tc["invalidations"].size() >= 99);
  CHECK(tc["invalidated_units"].get<uint64_t>() >= 99);
  CHECK(tc["adaptive_callouts"].get<uint64_t>() >= 90);
  uint64_t most = 0;
  for (const json& b : tc["hot"]) most = std::max(most, b["translations"].get<uint64_t>());
  CHECK(most >= 99);  // the patched instruction's block, translated again after each write
  // The panel follows the selected translation event.
  CHECK(tc.at("selected").at("rip") == s.at("selected").at("rip"));
  CHECK(inspect_png(png).stddev > 10);
}

TEST_CASE("gui under Xvfb: tcache-select without binary translation fails, naming the line",
          "[gui][xvfb][tcache]") {
  REQUIRE_XVFB_OR_SKIP();
  const std::string script = write_script("no-tcache.script", "step\ntcache-select 0x8000\n");
  const Run r = gui({"hello", "--script", script});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("line 2") != std::string::npos);
  CHECK(r.err.find("no translated block") != std::string::npos);
}

TEST_CASE("gui: a malformed compare result is refused before a window opens", "[gui][compare]") {
  const std::string bad = write_script("bad-compare.json", "{\"workload\": \"ptes\", \"rows\": 3}");
  const auto r = test::run_trapscope({"gui", "--compare", bad});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(bad + ": not a compare result: no \"rows\" array") != std::string::npos);
  const auto missing = test::run_trapscope({"gui", "--compare", "/nonexistent/c.json"});
  CHECK(missing.exit_code == 2);
  CHECK(missing.err.find("cannot read '/nonexistent/c.json'") != std::string::npos);
}

TEST_CASE("gui under Xvfb: the compare panel draws a compare result as bars", "[gui][xvfb][compare]") {
  REQUIRE_XVFB_OR_SKIP();
  const std::string result = test::temp_path("panel-ptes.json");
  const auto c = test::run_trapscope({"compare", "ptes", "--json", result}, 120);
  INFO(c.err);
  REQUIRE(c.exit_code == 0);
  const std::string png = test::temp_path("compare-log.png");
  const std::string log_state = test::temp_path("compare-log.json");
  const std::string lin_state = test::temp_path("compare-linear.json");
  const std::string script = write_script("compare.script",
                                          "frames 2\n"
                                          "screenshot " + png + "\n"
                                          "dump " + log_state + "\n"
                                          "compare-log off\n"
                                          "dump " + lin_state + "\n");
  const Run r = gui({"--compare", result, "--size", "1600x1000", "--script", script});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json s = read_json(log_state);
  const json& cmp = s["compare"];
  CHECK(cmp["loaded"] == true);
  CHECK(cmp["workload"] == "ptes");
  CHECK(cmp["log_scale"] == true);
  CHECK(s["source"] == "ptes");  // the machine behind the panel runs the compared workload
  const json& charts = cmp["charts"];
  REQUIRE(charts.size() >= 8);  // those wholly in view (compare may add more than fit)
  CHECK(charts[0]["key"] == "instructions");

  // Each bar the dump says was drawn is there in the picture: its middle is not the colour of
  // the plot just above it.
  int w = 0, h = 0, channels = 0;
  unsigned char* px = stbi_load(png.c_str(), &w, &h, &channels, 3);
  REQUIRE(px != nullptr);
  auto pixel = [&](float x, float y) {
    const size_t i = (static_cast<size_t>(y) * static_cast<size_t>(w) + static_cast<size_t>(x)) * 3;
    return std::array<int, 3>{px[i], px[i + 1], px[i + 2]};
  };
  int bars_checked = 0, na = 0;
  for (const json& chart : charts) {
    const float plot_y = chart["plot"][1].get<float>();
    for (const json& bar : chart["bars"]) {
      if (bar["value"].is_null()) {
        ++na;
        continue;
      }
      const float x0 = bar["rect"][0], y0 = bar["rect"][1], x1 = bar["rect"][2], y1 = bar["rect"][3];
      if (x1 - x0 < 4 || y1 - y0 < 4 || y0 - plot_y < 8) continue;
      REQUIRE((x1 < static_cast<float>(w) && y1 < static_cast<float>(h) && x0 >= 0 && plot_y >= 0));
      const float mx = (x0 + x1) / 2;
      const auto inside = pixel(mx, (y0 + y1) / 2), above = pixel(mx, (plot_y + y0) / 2);
      INFO(chart["key"] << " row " << bar["row"] << " at " << mx << "," << (y0 + y1) / 2);
      CHECK(std::abs(inside[0] - above[0]) + std::abs(inside[1] - above[1]) +
                std::abs(inside[2] - above[2]) > 60);
      ++bars_checked;
    }
  }
  stbi_image_free(px);
  CHECK(bars_checked >= 20);
  // KVM counts no guest instructions and no TLB misses: n/a bars (where KVM is usable).
  std::string no_kvm;
  if (test::kvm_usable(&no_kvm)) CHECK(na >= 4);

  // Linear: bars from 0, the tallest reaches the top of the plot.
  const json lin = read_json(lin_state)["compare"]["charts"][0];
  CHECK(lin["axis_min"] == 0);
  CHECK(charts[0]["axis_min"].get<double>() > 0);
  float top = 1e9f;
  for (const json& bar : lin["bars"]) top = std::min(top, bar["rect"][1].get<float>());
  CHECK(top == Approx(lin["plot"][1].get<float>()));
}

TEST_CASE("gui under Xvfb: a compare run from the panel, and a bad file opened in it",
          "[gui][xvfb][compare]") {
  REQUIRE_XVFB_OR_SKIP();
  const std::string bad = write_script("bad-compare.json", "{\"rows\": [");
  const std::string ran = test::temp_path("compare-ran.json");
  const std::string opened = test::temp_path("compare-bad-opened.json");
  const std::string png = test::temp_path("compare-ran.png");
  const std::string script = write_script("compare-run.script",
                                          "compare-run hello shadow\n"
                                          "screenshot " + png + "\n"
                                          "dump " + ran + "\n"
                                          "compare-open " + bad + "\n"
                                          "dump " + opened + "\n");
  const Run r = gui({"hello", "--script", script});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json s = read_json(ran)["compare"];
  CHECK(s["loaded"] == true);
  CHECK(s["running"] == false);
  CHECK(s["error"] == "");
  CHECK(s["source"] == "trapscope compare hello --paging shadow");
  CHECK(s["workload"] == "hello");
  CHECK(s["rows"].size() >= 5);
  CHECK(s["rows"][0] == "emulation (hello)");
  CHECK(s["charts"].size() >= 8);
  const Png p = inspect_png(png);
  CHECK(p.stddev > 20.0);
  // The bad file: the panel says why, and keeps the result it had.
  const json o = read_json(opened)["compare"];
  CHECK(o["error"].get<std::string>().find(bad + ": not JSON") == 0);
  CHECK(o["loaded"] == true);
  CHECK(o["source"] == "trapscope compare hello --paging shadow");
}
