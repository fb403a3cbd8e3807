// `trapscope gui` end to end, without a screen: the GUI runs a script under Xvfb with Mesa
// (xvfb-run), draws real frames, writes PNG screenshots (stb_image_write) and a JSON dump of
// what it shows; the tests look at the decoded PNGs and compare the dumped state with the
// backend's own state at the same point. Every run goes through tests/gui_harness.hpp. Skipped,
// with a reason, where xvfb-run is missing.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "backend/backend.hpp"
#include "guests/guest_catalog.hpp"
#include "lessons/lesson.hpp"
#include "tests/gui_harness.hpp"
#include "tests/support.hpp"
#include "trace/trace_file.hpp"
#include "vmm/doctor.hpp"

using namespace trapscope;
using nlohmann::json;
using test::GuiExit;
using test::run_gui;

namespace {

void check_registers(const json& shown, const x86::CpuState& r) {
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
  auto check_segment = [&](const char* name, const x86::Segment& seg) {
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
  for (int i = 0; i < x86::kSegCount; ++i) check_segment(kSeg[i], r.seg[i]);
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
  const auto g = run_gui({"hello", "--backend", "sim", "--size", "1280x800"},
                         "step-to exit\n"
                         "assert-selected exit reason=IO port=0xe9\n"
                         "assert-cpl 0\n"
                         "assert-console H\n"
                         "screenshot @exit\n"
                         "dump @state\n");
  const test::Screenshot p = g.screenshot("exit");
  CHECK(p.w == 1280);
  CHECK(p.h == 800);
  CHECK(p.stddev() > 20.0);          // panels, text and colours, not a cleared screen
  CHECK(p.distinct_rows() > 300);    // many rows of text and widgets

  const json s = g.dump("state");
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
  auto b = test::guest_backend("hello");
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
  const auto g = run_gui({"rings"},
                         "step-to ring\n"
                         "assert-cpl 3\n"
                         "assert-selected ring cpl=3\n"
                         "dump @user\n"
                         "step-to exception\n"
                         "assert-selected exception vector=13 cpl=3\n"
                         "assert-cpl 0\n"
                         "step-back\n"
                         "assert-cpl 3\n"
                         "step\n"
                         "screenshot @kernel\n"
                         "dump @kernel\n");

  const json u = g.dump("user");
  CHECK(u["cpl_shown"] == 3);
  CHECK(u["selected"]["type"] == "ring");
  CHECK(u["selected"]["from_cpl"] == 0);
  CHECK(u["selected"]["to_cpl"] == 3);
  auto b = test::guest_backend("rings");
  backend::StopCondition stop;
  stop.stop_on = 1u << static_cast<unsigned>(trace::EventType::kRingTransition);
  REQUIRE(b->run(stop, nullptr).reason == trace::RunEndReason::kEventMatched);
  check_registers(u["registers"], b->registers());

  const json k = g.dump("kernel");
  CHECK(k["cpl_shown"] == 0);
  CHECK(k["lanes"]["exception"] == 1);  // stepped back over it and through it again: once
  const test::Screenshot p = g.screenshot("kernel");
  CHECK(p.w == 1600);
  CHECK(p.stddev() > 20.0);
}

TEST_CASE("gui under Xvfb: a trace file opens the same views", "[gui][xvfb]") {
  REQUIRE_XVFB_OR_SKIP();
  const std::string trace_path = test::temp_path("hello.trace");
  test::write_sim_trace(*test::guest_backend("hello"), trace_path, "hello");
  const auto g = run_gui({trace_path},
                         "step-to exit\nstep-to exit\n"
                         "assert-console He\n"
                         "run\n"
                         "step\n"  // past the recorded end: refused, said
                         "dump @state\n");
  const json s = g.dump("state");
  CHECK(s["state"] == "trace");
  CHECK(s["registers"].is_null());
  CHECK(s["console"] == "Hello from a real-mode guest!\n");
  CHECK(s["message_is_error"] == true);
  CHECK(s["message"].get<std::string>().find("recorded end") != std::string::npos);
  CHECK(s["selected"]["type"] == "run end");
}

TEST_CASE("gui: a failed script assertion exits 1 and names the line", "[gui][xvfb]") {
  REQUIRE_XVFB_OR_SKIP();
  const auto r = run_gui({"hello"}, "step\nassert-cpl 3\nstep\n", GuiExit::kAny);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("line 2") != std::string::npos);
  CHECK(r.err.find("CPL 0") != std::string::npos);
}

TEST_CASE("gui: usage errors need no screen", "[gui]") {
  SECTION("a malformed script is refused before a window opens") {
    const std::string script = test::write_temp("bad.script", "step\nstep-to nowhere\n");
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
    const auto d = test::run_trapscope({"lesson", "run", "1", "--gui", "--seed", "3"});
    CHECK(d.exit_code == 2);
    CHECK(d.err.find("run in the terminal; drop --gui") != std::string::npos);
  }
  SECTION("no display: exit 2 and a hint about Xvfb") {
    const auto r = test::run_command({TRAPSCOPE_EXE, "gui", "hello"},
                                     {"DISPLAY=", "WAYLAND_DISPLAY=", "ASAN_OPTIONS=detect_leaks=0"},
                                     30);
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
  // rings' user program raises #GP five times before its #PF (vector 14): the condition, not
  // the kind alone, decides where the run stops.
  const auto g = run_gui({"rings", "--backend", "sim"},
                         "break-event exception vector=14 cpl=3\n"
                         "run\n"
                         "assert-selected exception vector=14 cpl=3\n"
                         "dump @at-pf\n"
                         "clear-breaks\n"
                         "reset\n"
                         "break 0xa02d\n"
                         "run\n"
                         "assert-cpl 3\n"
                         "dump @at-addr\n"
                         "clear-breaks\n"
                         "break-event exit reason=IO port=0xe9 cpl=0\n"
                         "run\n"
                         "assert-selected exit reason=IO port=0xe9\n"
                         "show breakpoints\n"
                         "screenshot @at-exit\n"
                         "dump @at-exit\n");

  const uint32_t exceptions = 1u << static_cast<unsigned>(trace::EventType::kException);
  {
    const json s = g.dump("at-pf");
    CHECK(s["state"] == "stopped");
    CHECK(s["selected"]["vector"] == 14);
    CHECK(s["lanes"]["exception"] == 6);  // five #GPs went by without stopping
    auto b = test::guest_backend("rings");
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
    const json s = g.dump("at-addr");
    CHECK(s["registers"]["rip"] == 0xa02d);
    CHECK(s["cpl_shown"] == 3);
    auto b = test::guest_backend("rings");
    backend::StopCondition stop;
    stop.has_breakpoint = true;
    stop.breakpoint = 0xa02d;
    REQUIRE(b->run(stop, nullptr).reason == trace::RunEndReason::kBreakpoint);
    check_registers(s["registers"], b->registers());
  }
  {
    const json s = g.dump("at-exit");
    CHECK(s["selected"]["type"] == "VM exit");
    CHECK(s["selected"]["port"] == 0xE9);
    REQUIRE(s["breakpoints"].size() == 1);
    CHECK(s["breakpoints"][0]["what"].get<std::string>().find("port=0xe9") != std::string::npos);
  }
  const test::Screenshot p = g.screenshot("at-exit");
  CHECK(p.stddev() > 20.0);
  CHECK(p.distinct_rows() > 300);
}

TEST_CASE("gui under Xvfb: the KVM backend, its exits, breakpoints and its plain no to step back",
          "[gui][xvfb][kvm]") {
  REQUIRE_XVFB_OR_SKIP();
  REQUIRE_KVM_OR_SKIP();
  const auto g = run_gui({"rings", "--backend", "kvm"},
                         "step-to exit\n"
                         "step-to exit\n"
                         "step-to exit\n"
                         "step-back\n"
                         "screenshot @at-exit\n"
                         "dump @at-exit\n"
                         "break-event exit reason=IO port=0xe9 cpl=0\n"
                         "run\n"
                         "dump @at-bp\n"
                         "clear-breaks\n"
                         // rings' #GP handler stub, at CPL 0: on kvm_pvm CPL 3 code runs
                         // natively and cannot stop at an address.
                         "break 0x82ff\n"
                         "run\n"
                         "assert-cpl 0\n"
                         "dump @at-user\n");

  const uint32_t exits = 1u << static_cast<unsigned>(trace::EventType::kVmExit);
  {
    const json s = g.dump("at-exit");
    CHECK(s["backend"].get<std::string>().rfind("KVM", 0) == 0);
    CHECK(s["message_is_error"] == true);
    CHECK(s["message"].get<std::string>().find("cannot step back") != std::string::npos);
    CHECK(s["selected"]["index"] == 2);
    CHECK(s["console"] == "rin");
    CHECK(s["exit_stats"][0]["reason"] == "IO");
    CHECK(s["exit_stats"][0]["count"] == 3);
    auto b = test::guest_backend("rings", false, backend::Kind::kKvm);
    trace::Recorder rec;
    int seen = 0;
    REQUIRE(run_until(*b, exits, rec, [&](const trace::Recorder&, size_t) { return ++seen == 3; }));
    check_registers(s["registers"], b->registers());
  }
  {
    const json s = g.dump("at-bp");
    CHECK(s["selected"]["index"] == 3);  // the next exit that satisfies the condition
    CHECK(s["console"] == "ring");
  }
  {
    const json s = g.dump("at-user");
    CHECK(s["registers"]["rip"] == 0x82ff);
    CHECK(s["message"].get<std::string>().find("breakpoint") != std::string::npos);
    CHECK(s["console"].get<std::string>().find("trap:") == std::string::npos);  // the first #GP
    auto b = test::guest_backend("rings", false, backend::Kind::kKvm);
    backend::StopCondition stop;
    stop.has_breakpoint = true;
    stop.breakpoint = 0x82ff;
    REQUIRE(b->run(stop, nullptr).reason == trace::RunEndReason::kBreakpoint);
    check_registers(s["registers"], b->registers());
  }
  CHECK(g.screenshot("at-exit").stddev() > 20.0);
}

TEST_CASE("gui under Xvfb: KVM single-steps the kernel's iretq to CPL 3, and says what kvm_pvm did",
          "[gui][xvfb][kvm]") {
  REQUIRE_XVFB_OR_SKIP();
  REQUIRE_KVM_OR_SKIP();
  // The kernel's iretq into the user program: the instruction retired right after the
  // simulator's first ring transition (the transition is recorded before the retirement).
  uint64_t iretq = 0;
  {
    auto b = test::guest_backend("rings");
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
  const auto g = run_gui({"rings", "--backend", "kvm"},
                         "break " + std::to_string(iretq) + "\n"
                         "run\n"
                         "clear-breaks\n"
                         "step\n"
                         "dump @state\n");
  const json s = g.dump("state");
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
  const std::string trace_path =
      test::record_trace({"rings", "--backend", "sim", "--record-instructions"});
  const auto g = run_gui({trace_path},
                         "break-event exception vector=14\n"
                         "run\n"
                         "assert-selected exception vector=14 cpl=3\n"
                         "memory 0xa000\n"
                         "screenshot @at-pf\n"
                         "dump @at-pf\n");
  const json s = g.dump("at-pf");
  CHECK(s["state"] == "trace");
  REQUIRE(s["registers"].is_object());
  auto b = test::guest_backend("rings");
  trace::Recorder events;
  const uint32_t exceptions = 1u << static_cast<unsigned>(trace::EventType::kException);
  REQUIRE(run_until(*b, exceptions, events, [&](const trace::Recorder& e, size_t i) {
    const auto* x = e.get<trace::ExceptionEvent>(i, trace::EventType::kException);
    return x && x->vector == 14;
  }));
  check_registers(s["registers"], b->registers());
  CHECK(s["cpl_shown"] == 0);  // the machine after delivering the #PF to the kernel
  CHECK(g.screenshot("at-pf").stddev() > 20.0);
}

TEST_CASE("gui under Xvfb: shadow-paging and EPT traces re-execute under their own paging",
          "[gui][xvfb]") {
  REQUIRE_XVFB_OR_SKIP();
  for (const char* paging : {"shadow", "ept"}) {
    INFO("--paging " << paging);
    const std::string trace_path =
        test::record_trace({"paging", "--backend", "sim", "--paging", paging});
    CHECK(trace::read_trace(trace_path).metadata.paging == paging);
    const json s = run_gui({trace_path}, "step 300\ndump @state\n").dump("state");
    INFO(s["message"]);
    CHECK(s["message"].get<std::string>().find("diverged") == std::string::npos);
    REQUIRE(s["registers"].is_object());
    CHECK(s["registers"]["cr3"] == 0x20000);  // the guest's own address space A by then
  }
}

TEST_CASE("gui under Xvfb: a trace re-executes only its recorded guest or one given by --guest",
          "[gui][xvfb]") {
  // Bug: the GUI loaded and ran whatever file a trace's metadata named (/etc/passwd was
  // accepted), showing its bytes as guest memory.
  REQUIRE_XVFB_OR_SKIP();
  const auto hello = guests::find("hello");
  REQUIRE(hello);
  const std::string guest = test::temp_path("guest.bin");
  test::write_file(guest, {hello->image.begin(), hello->image.end()});
  const std::string script = "step 3\ndump @state\n";

  SECTION("a trace without a checksum naming a file: not run, unless --guest names it") {
    // As written before guest_sha256 existed: the metadata names the file, no checksum.
    const std::string path = test::temp_path("old.trace");
    {
      trace::TraceMetadata meta;
      meta.backend = "sim";
      meta.guest = guest;
      meta.mode = "real";
      meta.memory_bytes = 16ull << 20;
      meta.load_address = platform::kDefaultLoadAddress;
      trace::TraceWriter w(path, meta);
      test::guest_backend("hello", false)->run({}, &w);
      w.finish();
    }
    const auto refused = run_gui({path}, script);
    CHECK(refused.dump("state")["registers"].is_null());
    CHECK(refused.err.find("no checksum") != std::string::npos);
    CHECK(refused.err.find("--guest") != std::string::npos);
    const auto named = run_gui({path, "--guest", guest}, script);
    CHECK(named.dump("state")["registers"].is_object());
  }
  SECTION("a trace recorded by run: the same file runs, a changed one does not") {
    const std::string path = test::temp_path("sha.trace");
    REQUIRE(test::run_trapscope({"run", guest, "--backend", "sim", "-q", "--trace", path})
                .exit_code == 0);
    CHECK(run_gui({path}, script).dump("state")["registers"].is_object());
    auto changed = test::read_file(guest);
    changed.push_back(0x90);
    test::write_file(guest, changed);
    const auto refused = run_gui({path}, script);
    CHECK(refused.dump("state")["registers"].is_null());
    CHECK(refused.err.find("does not match the SHA-256") != std::string::npos);
  }
}

// [SECTION] The lesson pane (`trapscope gui --lesson ID`, visualizer/core/lesson_driver.hpp)

namespace {

// A script that runs every step of an n-step lesson through the pane's controls, checking each
// verdict, then dumps the state and takes a screenshot (both @end).
std::string every_step(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += "lesson-step\nassert-lesson passed\nlesson-next\n";
  return s + "dump @end\nscreenshot @end\n";
}

}  // namespace

TEST_CASE("gui under Xvfb: lesson 1 (vm-exit) on the simulator, step by step in the pane",
          "[gui][xvfb][lessons]") {
  REQUIRE_XVFB_OR_SKIP();
  // Step 2's action is the first VM exit: the pane selects it in every view, as step-to does.
  const auto g = run_gui({"--lesson", "vm-exit", "--backend", "sim", "--lang", "en", "--size",
                          "1600x900"},
                         "lesson-next\nlesson-step\nassert-lesson passed\n"
                         "assert-selected exit reason=IO port=0xe9\ndump @first\n"
                         "lesson-next\nlesson-step\nassert-lesson passed\nlesson-next\n"
                         "lesson-step\nassert-lesson passed\n"
                         "dump @end\nscreenshot @end\n");

  const json f = g.dump("first");
  CHECK(f["selected"]["index"] == 0);
  CHECK(f["selected"]["value"] == 'H');
  CHECK(f["lesson"]["results"][1]["event"] == 0);

  const json s = g.dump("end");
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

  const test::Screenshot p = g.screenshot("end");
  CHECK(p.w == 1600);
  CHECK(p.stddev() > 20.0);
  CHECK(p.distinct_rows() > 300);
}

TEST_CASE("gui under Xvfb: the lesson pane grades answers: two tries, then the answer",
          "[gui][xvfb][lessons]") {
  REQUIRE_XVFB_OR_SKIP();
  // Lesson 1, step 2 (0x48): a wrong answer, not a number (no try spent), the right one; step 4
  // (31 exits): wrong twice, so done without being right.
  const json l = run_gui({"--lesson", "vm-exit", "--backend", "sim", "--lang", "en"},
                         "lesson-next\nlesson-answer 0x41\nlesson-answer H\ndump @tried\n"
                         "lesson-answer 72\nlesson-step\nassert-lesson passed\nlesson-next\n"
                         "lesson-step\nlesson-next\nlesson-answer 30\nlesson-answer 32\n"
                         "lesson-answer 31\nlesson-step\nassert-lesson passed\ndump @end\n")
                     .dump("end")["lesson"];
  const json& two = l["results"][1]["answer"];
  CHECK(two["right"] == true);
  CHECK(two["tries"] == 1);
  const json& four = l["results"][3]["answer"];
  CHECK(four["right"] == false);
  CHECK(four["tries"] == 2);
  CHECK(four["done"] == true);
  CHECK(l["questions"] == 2);
  CHECK(l["right"] == 1);
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
  const std::string file = test::write_temp("wrong-lesson.yaml", yaml);
  const json l = run_gui({"--lesson", file, "--backend", "sim"},
                         "lesson-next\nlesson-step\nassert-lesson failed\nlesson-next\n"
                         "assert-lesson not-run\ndump @state\n")
                     .dump("state")["lesson"];
  CHECK(l["results"][0]["verdict"] == "passed");
  CHECK(l["results"][1]["verdict"] == "failed");
  CHECK(l["results"][1]["failure"].get<std::string>().find("port is 0xe9, expected 0x3f8") !=
        std::string::npos);
  CHECK(l["results"][2]["verdict"] == "not run");
  CHECK(l["next_to_run"] == 5);  // none can run after a failure

  // Running a step after the failure is refused with the reason, and the script fails there.
  const auto r2 = run_gui({"--lesson", file, "--backend", "sim"},
                          "lesson-next\nlesson-step\nlesson-next\nlesson-step\n", GuiExit::kAny);
  CHECK(r2.exit_code == 1);
  CHECK(r2.err.find("line 4") != std::string::npos);
  CHECK(r2.err.find("a step before it failed") != std::string::npos);
}

TEST_CASE("gui under Xvfb: lesson 3 restarts the guest under VT-x in the pane",
          "[gui][xvfb][lessons]") {
  REQUIRE_XVFB_OR_SKIP();
  const lessons::Lesson l3 = lessons::find_lesson("3");
  const auto g = run_gui({"--lesson", "3"}, "lesson-lang es\n" + every_step(l3.steps.size()));
  const json s = g.dump("end");
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
  CHECK(g.screenshot("end").stddev() > 20.0);
}

TEST_CASE("gui under Xvfb: the new lessons (cost, efficiency, type1-type2) pass in the pane",
          "[gui][xvfb][lessons]") {
  REQUIRE_XVFB_OR_SKIP();
  for (const std::string id : {"cost", "efficiency", "type1-type2"}) {
    INFO("lesson " << id);
    const lessons::Lesson l = lessons::find_lesson(id);
    const json s = run_gui({"--lesson", id, "--backend", "sim", "--lang", "es"},
                           every_step(l.steps.size()))
                       .dump("end");
    REQUIRE(s["lesson"]["results"].size() == l.steps.size());
    for (const json& step : s["lesson"]["results"]) {
      INFO(step.dump());
      CHECK(step["verdict"] == "passed");
    }
    CHECK(s["selected"]["type"] == "run end");  // the last step's answer, selected
    if (id == "efficiency") {  // the pane shows the share run directly, as the terminal does
      CHECK(s["lesson"]["results"][2]["efficiency"].get<double>() > 99.99);  // VT-x: 17 exits
      CHECK(s["lesson"]["results"][3]["efficiency"].get<double>() == Approx(63.162).margin(0.01));
      CHECK(s["lesson"]["results"][4]["efficiency"].get<double>() == 0);  // emulation
    }
  }
}

TEST_CASE("gui under Xvfb: lesson 1 on KVM in the pane", "[gui][xvfb][kvm][lessons]") {
  REQUIRE_XVFB_OR_SKIP();
  REQUIRE_KVM_OR_SKIP();
  const json s = run_gui({"--lesson", "vm-exit", "--backend", "kvm"}, every_step(4)).dump("end");
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
  const auto g = run_gui({"kernelops", "--technique", "bt"},
                         "step-to translation\n"
                         "assert-selected translation\n"
                         "dump @first\n"
                         "run\n"
                         "tcache-select 0x8000\n"
                         "frames 3\n"
                         "screenshot @end\n"
                         "dump @end\n");
  // The first translation: the entry block, selected in every view and in the panel.
  const json f = g.dump("first");
  CHECK(f.at("selected").at("rip") == 0x8000);
  CHECK(f.at("tcache").at("translations") == 1);
  CHECK(f["tcache"].at("selected").at("rip") == 0x8000);
  CHECK(f.at("gui").at("windows").at("translation cache") == true);

  const json s = g.dump("end");
  CHECK(s["state"] == "finished");
  CHECK(s["exit_code"] == 0);
  const json& tc = s["tcache"];
  CHECK(tc["count_reports"].get<uint64_t>() > 0);
  // The units `trapscope run kernelops --technique bt` translates, though the GUI stopped
  // inside the first one and then ran in slices (sim/bt/translator.hpp, Resuming a unit).
  CHECK(tc["translations"] == 14);
  CHECK(tc["chains"].get<uint64_t>() > 0);
  CHECK(tc["callouts"].get<uint64_t>() >= 100000);  // 7 callouts a pass, 20,000 passes
  CHECK(tc.at("hot").at(0).at("executions").get<uint64_t>() >= 10000);
  // Every instruction the guest retired ran from the cache (kernelops has no CPL 3 code).
  CHECK(tc["instructions"] == s["instructions"]);
  // The step to the first translation stopped after the entry unit's first instruction; the
  // run went on with that unit (no unit of its own at 0x8005), which chains to 0x8017 (mov
  // cr0, eax).
  const json& sel = tc.at("selected");
  CHECK(sel.at("rip") == 0x8000);
  REQUIRE(sel.at("lines").size() == 9);
  CHECK(sel["lines"][1]["guest"] == "xor ebx, ebx");
  CHECK(sel["lines"][1]["kind"] == "IDENT");
  CHECK(sel["lines"][3]["kind"] == "in-cache");
  CHECK(sel["lines"][8]["kind"] == "callout");
  CHECK(sel["lines"][8]["guest"].get<std::string>().find("cr0") != std::string::npos);
  REQUIRE(sel.at("successors").size() == 1);
  CHECK(sel["successors"][0]["rip"] == 0x8017);
  CHECK(sel.at("predecessors").empty());
  const test::Screenshot p = g.screenshot("end");
  CHECK(p.w == 1600);
  CHECK(p.stddev() > 10);
  CHECK(p.distinct_rows() > 200);
}

// From a saved trace of self-modifying code: invalidations, retranslations and the adaptive
// callout, with no machine behind the views.
TEST_CASE("gui under Xvfb: the translation-cache panel over a bt trace of smc",
          "[gui][xvfb][tcache]") {
  REQUIRE_XVFB_OR_SKIP();
  const std::string trace_path = test::record_trace({"smc", "--technique", "bt"});
  const auto g = run_gui({trace_path},
                         "show translation cache\n"
                         "step-to translation\n"
                         "step-to translation\n"
                         "frames 3\n"
                         "screenshot @second\n"
                         "dump @second\n");
  const json s = g.dump("second");
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
  CHECK(g.screenshot("second").stddev() > 10);
}

TEST_CASE("gui under Xvfb: tcache-select without binary translation fails, naming the line",
          "[gui][xvfb][tcache]") {
  REQUIRE_XVFB_OR_SKIP();
  const auto r = run_gui({"hello"}, "step\ntcache-select 0x8000\n", GuiExit::kAny);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("line 2") != std::string::npos);
  CHECK(r.err.find("no translated block") != std::string::npos);
}

TEST_CASE("gui: a malformed compare result is refused before a window opens", "[gui][compare]") {
  const std::string bad =
      test::write_temp("bad-compare.json", "{\"workload\": \"ptes\", \"rows\": 3}");
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
  const auto g = run_gui({"--compare", result, "--size", "1600x1000"},
                         "frames 2\n"
                         "screenshot @log\n"
                         "dump @log\n"
                         "compare-log off\n"
                         "dump @linear\n");
  const json s = g.dump("log");
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
  const test::Screenshot png = g.screenshot("log");
  const int w = png.w, h = png.h;
  auto pixel = [&](float x, float y) { return png.pixel(static_cast<int>(x), static_cast<int>(y)); };
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
  CHECK(bars_checked >= 20);
  // KVM counts no guest instructions and no TLB misses: n/a bars (where KVM is usable).
  std::string no_kvm;
  if (test::kvm_usable(&no_kvm)) CHECK(na >= 4);

  // Linear: bars from 0, the tallest reaches the top of the plot.
  const json lin = g.dump("linear")["compare"]["charts"][0];
  CHECK(lin["axis_min"] == 0);
  CHECK(charts[0]["axis_min"].get<double>() > 0);
  float top = 1e9f;
  for (const json& bar : lin["bars"]) top = std::min(top, bar["rect"][1].get<float>());
  CHECK(top == Approx(lin["plot"][1].get<float>()));
}

TEST_CASE("gui under Xvfb: a compare run from the panel, and a bad file opened in it",
          "[gui][xvfb][compare]") {
  REQUIRE_XVFB_OR_SKIP();
  const std::string bad = test::write_temp("bad-compare.json", "{\"rows\": [");
  const auto g = run_gui({"hello"},
                         "compare-run hello shadow\n"
                         "screenshot @ran\n"
                         "dump @ran\n"
                         "compare-open " + bad + "\n"
                         "dump @opened\n");
  const json s = g.dump("ran")["compare"];
  CHECK(s["loaded"] == true);
  CHECK(s["running"] == false);
  CHECK(s["error"] == "");
  CHECK(s["source"] == "trapscope compare hello --paging shadow");
  CHECK(s["workload"] == "hello");
  CHECK(s["rows"].size() >= 5);
  CHECK(s["rows"][0] == "emulation (hello)");
  CHECK(s["charts"].size() >= 8);
  CHECK(g.screenshot("ran").stddev() > 20.0);
  // The bad file: the panel says why, and keeps the result it had.
  const json o = g.dump("opened")["compare"];
  CHECK(o["error"].get<std::string>().find(bad + ": not JSON") == 0);
  CHECK(o["loaded"] == true);
  CHECK(o["source"] == "trapscope compare hello --paging shadow");
}
