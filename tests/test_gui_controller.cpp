// The visualizer's drivers without a window: the live controller (a backend on a worker
// thread, commands in, model updates out) on the simulator and on KVM, and the trace replay.
// The GUI's state must match what the backend itself reports at the same point.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "backend/backend.hpp"
#include "guests/guest_catalog.hpp"
#include "sim/bt/translator.hpp"
#include "tests/support.hpp"
#include "trace/trace_file.hpp"
#include "lessons/runner.hpp"
#include "lessons/step.hpp"
#include "visualizer/core/lesson_driver.hpp"
#include "visualizer/core/live_controller.hpp"
#include "visualizer/core/state_dump.hpp"
#include "visualizer/core/trace_replay.hpp"
#include "vmm/doctor.hpp"

using namespace trapscope;
using namespace trapscope::viz;
using trace::EventType;

namespace {

LiveSource source_for(const std::string& name, backend::Kind kind = backend::Kind::kSim) {
  const auto g = guests::find(name);
  REQUIRE(g);
  LiveSource s;
  s.kind = kind;
  s.config.mode = *platform::parse_boot_mode(g->mode);
  s.config.record_instructions = kind == backend::Kind::kSim;
  s.image.assign(g->image.begin(), g->image.end());
  s.name = name;
  if (kind == backend::Kind::kKvm) s.host = vmm::host_kvm_module();
  return s;
}

// Polls until the driver is idle (as the GUI does once a frame).
void settle(Driver& d, Model& m, double timeout_s = 20) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  for (;;) {
    d.poll(m);
    if (!d.busy()) {
      d.poll(m);
      return;
    }
    REQUIRE(std::chrono::steady_clock::now() < end);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void send(Driver& d, Model& m, Command::Op op, StepKind kind = StepKind::kInstruction,
          uint64_t count = 1) {
  Command c;
  c.op = op;
  c.kind = kind;
  c.count = count;
  d.send(c);
  settle(d, m);
}

void set_breakpoints(Driver& d, Model& m, std::vector<Breakpoint> bps) {
  m.breakpoints() = bps;
  Command c;
  c.op = Command::Op::kSetBreakpoints;
  c.breakpoints = std::move(bps);
  d.send(c);
}

void check_same_registers(const x86::CpuState& a, const x86::CpuState& b) {
  CHECK(a.rip == b.rip);
  CHECK(a.rflags == b.rflags);
  for (int i = 0; i < 16; ++i) CHECK(a.gpr[i] == b.gpr[i]);
  for (int i = 0; i < x86::kSegCount; ++i) CHECK(a.seg[i].selector == b.seg[i].selector);
  CHECK(a.cr0 == b.cr0);
  CHECK(a.cr3 == b.cr3);
  CHECK(a.cpl() == b.cpl());
}

}  // namespace

TEST_CASE("gui controller (simulator): load, step, step to an exit, run", "[gui]") {
  Model m;
  LiveController c(source_for("hello"));
  settle(c, m);
  REQUIRE(m.status().state == RunState::kIdle);
  REQUIRE(m.has_registers());
  CHECK(m.registers().rip == 0x8000);
  CHECK(m.events().size() == 0);
  CHECK(m.status().backend == "simulator");
  CHECK(c.capabilities().step_back);

  SECTION("step one instruction") {
    send(c, m, Command::Op::kStep);
    CHECK(m.registers().rip == 0x8003);
    CHECK(m.previous_registers().rip == 0x8000);
    CHECK(m.status().instructions == 1);
    REQUIRE(m.events().size() == 1);  // the retired instruction
    CHECK(m.selected() == 0);
    CHECK(m.events().type(0) == EventType::kInstruction);
    send(c, m, Command::Op::kStep, StepKind::kInstruction, 2);
    CHECK(m.registers().rip == 0x8007);
    CHECK(m.status().instructions == 3);
  }

  SECTION("step to the next VM exit: the first `out` to the debug console") {
    send(c, m, Command::Op::kStepTo, StepKind::kVmExit);
    REQUIRE(m.selected() >= 0);
    const auto sel = static_cast<size_t>(m.selected());
    CHECK(m.lane(EventType::kVmExit) == std::vector<uint32_t>{static_cast<uint32_t>(sel)});
    EventRecord r;
    m.events().load(sel, &r);
    REQUIRE(r.header.type == EventType::kVmExit);
    CHECK(r.exit.reason == static_cast<uint32_t>(trace::ExitReason::kIo));
    CHECK(r.exit.payload.io.port == 0xE9);
    CHECK(r.exit.payload.io.value == 'H');
    CHECK(m.console() == "H");
    CHECK(m.shown_cpl() == 0);
    // The backend itself, stopped after its first VM exit, is in the same state.
    auto ref = test::guest_backend("hello");
    backend::StopCondition stop;
    stop.stop_on = 1u << static_cast<unsigned>(EventType::kVmExit);
    trace::Recorder rec;
    REQUIRE(ref->run(stop, &rec).reason == trace::RunEndReason::kEventMatched);
    check_same_registers(m.registers(), ref->registers());
    CHECK(m.events().size() == rec.size());
  }

  SECTION("run to the end: console, statistics, finished") {
    send(c, m, Command::Op::kStepTo, StepKind::kVmExit);  // two backend runs, one guest run
    send(c, m, Command::Op::kRun);
    CHECK(m.status().state == RunState::kFinished);
    REQUIRE(m.status().end);
    CHECK(*m.status().end == trace::RunEndReason::kHalted);
    CHECK(m.console() == "Hello from a real-mode guest!\n");
    CHECK(m.exit_stats().by_reason().at(2).count == 30);  // one IO exit per byte
    CHECK(m.exit_stats().by_reason().at(5).count == 1);   // hlt
    CHECK(m.events().type(m.events().size() - 1) == EventType::kRunEnd);
    EventRecord end;
    m.events().load(m.events().size() - 1, &end);
    CHECK(end.run_end.exits == 31);  // every exit of the guest's run, not the last run()'s
    CHECK(m.selected() == static_cast<int64_t>(m.events().size()) - 1);
    send(c, m, Command::Op::kStep);
    CHECK(m.status().message_is_error);
    CHECK(m.status().message.find("reset") != std::string::npos);
    send(c, m, Command::Op::kReset);
    CHECK(m.status().state == RunState::kIdle);
    CHECK(m.events().size() == 0);
    CHECK(m.registers().rip == 0x8000);
    CHECK(m.console().empty());
  }

  SECTION("step to a translation without binary translation runs to the end") {
    send(c, m, Command::Op::kStepTo, StepKind::kTranslation);
    CHECK(m.status().state == RunState::kFinished);
    CHECK(m.lane(EventType::kBtTranslate).empty());
  }

  SECTION("step to a page walk in a real-mode guest runs to the end") {
    send(c, m, Command::Op::kStepTo, StepKind::kPageWalk);
    CHECK(m.status().state == RunState::kFinished);
    CHECK(m.lane(EventType::kPageWalk).empty());
  }
}

TEST_CASE("gui controller (simulator): breakpoints", "[gui]") {
  Model m;
  LiveController c(source_for("hello"));
  settle(c, m);

  SECTION("an address breakpoint stops before the instruction") {
    Breakpoint b;
    b.id = 1;
    b.address = 0x800E;  // hlt
    set_breakpoints(c, m, {b});
    send(c, m, Command::Op::kRun);
    CHECK(m.status().state == RunState::kIdle);
    CHECK(m.registers().rip == 0x800E);
    CHECK(m.console() == "Hello from a real-mode guest!\n");
    send(c, m, Command::Op::kRun);  // continues past it
    CHECK(m.status().state == RunState::kFinished);
  }

  SECTION("several address breakpoints (instruction by instruction)") {
    Breakpoint a, b;
    a.id = 1;
    a.address = 0x800E;
    b.id = 2;
    b.address = 0x800B;  // out dx, al
    set_breakpoints(c, m, {a, b});
    send(c, m, Command::Op::kRun);
    CHECK(m.registers().rip == 0x800B);
    CHECK(m.console().empty());
    send(c, m, Command::Op::kRun);
    CHECK(m.registers().rip == 0x800B);
    CHECK(m.console() == "H");
  }

  SECTION("an event breakpoint with a condition skips events that do not satisfy it") {
    std::string err;
    auto b = parse_event_breakpoint("exit reason=IO port=0xe9", &err);
    REQUIRE(b);
    b->id = 1;
    set_breakpoints(c, m, {*b});
    send(c, m, Command::Op::kRun);
    CHECK(m.console() == "H");
    auto hlt = parse_event_breakpoint("exit reason=HLT", &err);
    hlt->id = 2;
    set_breakpoints(c, m, {*hlt});
    send(c, m, Command::Op::kRun);
    CHECK(m.console() == "Hello from a real-mode guest!\n");
    EventRecord r;
    m.events().load(static_cast<size_t>(m.selected()), &r);
    CHECK(r.header.type == EventType::kVmExit);
    CHECK(r.exit.reason == static_cast<uint32_t>(trace::ExitReason::kHlt));
  }
}

// Stepping through a bt run: each stop (a step to a translation, an address breakpoint) shows
// the translation cache's execution counts as they are at that point, not as of the last run
// end (SimMachine::run reports bt_counts at a pause too, sim/bt/counts.hpp).
TEST_CASE("gui controller (simulator): under bt, each stop shows the current execution counts",
          "[gui][tcache][bt]") {
  LiveSource source = source_for("kernelops");
  source.config.technique = sim::virt::Technique::kBt;
  Model m;
  LiveController c(source);
  settle(c, m);
  // The same guest on a bare backend, stopped at the same points.
  const auto g = guests::find("kernelops");
  auto ref = backend::make_backend(backend::Kind::kSim, source.config);
  ref->load(g->image);
  backend::StopCondition to_translation;
  to_translation.timeout_s = 20;
  to_translation.stop_on = 1u << static_cast<unsigned>(EventType::kBtTranslate);
  backend::StopCondition to_loop;  // the loop head (kernelops.asm .loop)
  to_loop.timeout_s = 20;
  to_loop.has_breakpoint = true;
  to_loop.breakpoint = 0x800C;
  const auto same_counts = [&] {
    const sim::bt::BtStats* s = ref->bt_stats();
    REQUIRE(s != nullptr);
    CHECK(m.registers().rip == ref->registers().rip);
    CHECK(m.tcache().totals().count_reports > 0);
    CHECK(m.tcache().totals().executions == s->unit_executions);
    CHECK(m.tcache().totals().instructions == s->cache_insns);
  };
  for (int i = 0; i < 3; ++i) {
    send(c, m, Command::Op::kStepTo, StepKind::kTranslation);
    REQUIRE(ref->run(to_translation, nullptr).reason == trace::RunEndReason::kEventMatched);
    CHECK(m.status().state == RunState::kIdle);
    same_counts();
  }
  Breakpoint b;
  b.id = 1;
  b.address = to_loop.breakpoint;
  set_breakpoints(c, m, {b});
  for (int i = 0; i < 5; ++i) {  // five passes of the hot loop: its unit's executions go up
    send(c, m, Command::Op::kRun);
    REQUIRE(ref->run(to_loop, nullptr).reason == trace::RunEndReason::kBreakpoint);
    same_counts();
  }
  const auto loop = m.tcache().block_at(0x800C);
  REQUIRE(loop);
  CHECK(m.tcache().blocks()[*loop].executions >= 4);
}

TEST_CASE("gui controller (simulator): rings, exceptions and page walks in `rings`", "[gui]") {
  Model m;
  LiveController c(source_for("rings"));
  settle(c, m);
  CHECK(m.shown_cpl() == 0);

  SECTION("step to the first ring transition: iretq into CPL 3") {
    send(c, m, Command::Op::kStepTo, StepKind::kRing);
    EventRecord r;
    m.events().load(static_cast<size_t>(m.selected()), &r);
    REQUIRE(r.header.type == EventType::kRingTransition);
    CHECK(r.ring.from_cpl == 0);
    CHECK(r.ring.to_cpl == 3);
    CHECK(m.shown_cpl() == 3);
    CHECK(m.registers().cpl() == 3);
    send(c, m, Command::Op::kStepTo, StepKind::kException);
    m.events().load(static_cast<size_t>(m.selected()), &r);
    REQUIRE(r.header.type == EventType::kException);
    CHECK(r.exception.vector == 13);  // cli at CPL 3
    CHECK(m.shown_cpl() == 0);        // now in the kernel's handler
  }

  SECTION("a breakpoint on #PF from CPL 3") {
    std::string err;
    auto b = parse_event_breakpoint("exception vector=14", &err);
    b->id = 7;
    set_breakpoints(c, m, {*b});
    send(c, m, Command::Op::kRun);
    EventRecord r;
    m.events().load(static_cast<size_t>(m.selected()), &r);
    REQUIRE(r.header.type == EventType::kException);
    CHECK(r.exception.vector == 14);
    CHECK(r.exception.cr2 == 0x400000);
    CHECK(m.status().message.find("breakpoint 7") != std::string::npos);
    CHECK(m.lane(EventType::kException).size() == 6);  // #GP for cli, hlt, mov cr3, in, out; #PF
  }

  SECTION("the whole run") {
    send(c, m, Command::Op::kRun);
    CHECK(m.status().state == RunState::kFinished);
    CHECK(*m.status().end == trace::RunEndReason::kGuestExit);
    CHECK(m.status().exit_code == 0);
    CHECK(m.lane(EventType::kException).size() == 7);
    CHECK(m.lane(EventType::kPageWalk).size() > 0);
    CHECK(m.cpl_spans().size() > 2);
  }
}

TEST_CASE("gui controller (simulator): step back re-executes deterministically", "[gui]") {
  Model m;
  LiveSource src = source_for("rings");
  src.snapshot_interval = 97;  // many snapshots, so that restores start from different ones
  LiveController c(std::move(src));
  settle(c, m);

  // Where was the machine after 500 and 800 instructions? (A fresh controller records it.)
  send(c, m, Command::Op::kStep, StepKind::kInstruction, 500);
  const x86::CpuState at500 = m.registers();
  const size_t events500 = m.events().size();
  const std::string console500 = m.console();
  send(c, m, Command::Op::kStep, StepKind::kInstruction, 300);
  REQUIRE(m.status().instructions == 800);
  const x86::CpuState at800 = m.registers();

  send(c, m, Command::Op::kStepBack, StepKind::kInstruction, 300);
  CHECK(m.status().instructions == 500);
  check_same_registers(m.registers(), at500);
  CHECK(m.events().size() == events500);
  CHECK(m.console() == console500);

  send(c, m, Command::Op::kStep, StepKind::kInstruction, 300);
  check_same_registers(m.registers(), at800);

  SECTION("from the end of the run, one instruction back is just before the last one") {
    send(c, m, Command::Op::kRun);
    REQUIRE(m.status().state == RunState::kFinished);
    const uint64_t n = m.status().instructions;
    send(c, m, Command::Op::kStepBack);
    CHECK(m.status().state == RunState::kIdle);
    CHECK(m.status().instructions == n - 1);
    auto ref = test::guest_backend("rings");
    backend::StopCondition stop;
    stop.max_instructions = n - 1;
    ref->run(stop, nullptr);
    check_same_registers(m.registers(), ref->registers());
    send(c, m, Command::Op::kStep);
    CHECK(m.status().state == RunState::kFinished);
  }

  SECTION("after stopping at an exception, one back is the boundary before its delivery") {
    send(c, m, Command::Op::kReset);
    send(c, m, Command::Op::kStepTo, StepKind::kException);
    const uint64_t n = m.status().instructions;
    const uint64_t faulting_rip = [&] {
      EventRecord r;
      m.events().load(static_cast<size_t>(m.selected()), &r);
      return r.header.rip;
    }();
    send(c, m, Command::Op::kStepBack);
    CHECK(m.status().instructions == n);
    CHECK(m.registers().rip == faulting_rip);
    CHECK(m.registers().cpl() == 3);
  }
}

TEST_CASE("gui controller (simulator): under bt, a step back goes on as if it had not happened",
          "[gui][tcache][bt]") {
  // The snapshot restored keeps the translation cache (sim/bt/translator.hpp [SECTION]
  // Snapshots): the run on from it does not translate or chain its units a second time.
  LiveSource source = source_for("kernelops");
  source.config.technique = sim::virt::Technique::kBt;
  source.snapshot_interval = 997;
  Model m;
  LiveController c(source);
  settle(c, m);
  send(c, m, Command::Op::kStep, StepKind::kInstruction, 30000);
  send(c, m, Command::Op::kStepBack, StepKind::kInstruction, 10000);
  REQUIRE(m.status().instructions == 20000);
  Model rm;  // the same guest stepped to the same point, never back
  LiveController ref(source);
  settle(ref, rm);
  send(ref, rm, Command::Op::kStep, StepKind::kInstruction, 20000);
  const auto same = [&] {
    check_same_registers(m.registers(), rm.registers());
    const TcTotals& a = m.tcache().totals();
    const TcTotals& b = rm.tcache().totals();
    CHECK(a.translations > 0);
    CHECK(a.translations == b.translations);
    CHECK(a.translated_insns == b.translated_insns);
    CHECK(a.chains == b.chains);
    CHECK(a.callouts == b.callouts);
    CHECK(a.invalidated_units == b.invalidated_units);
    CHECK(a.executions == b.executions);
    CHECK(a.instructions == b.instructions);
    CHECK(m.tcache().blocks().size() == rm.tcache().blocks().size());
  };
  same();
  send(c, m, Command::Op::kRun);
  send(ref, rm, Command::Op::kRun);
  REQUIRE(m.status().state == RunState::kFinished);
  REQUIRE(rm.status().state == RunState::kFinished);
  same();
  // The events, all but where each run ended and the unit counts reported there (the two
  // stopped at different points: single steps, a re-execution), are the same in order and
  // content (host times and sequence numbers aside).
  const auto events = [](const Model& x) {
    std::vector<std::vector<uint8_t>> out;
    EventRecord r;
    for (size_t i = 0; i < x.events().size(); ++i) {
      const EventType type = x.events().type(i);
      if (type == EventType::kRunEnd || type == EventType::kBtCounts) continue;
      x.events().load(i, &r);
      r.header.seq = 0;
      r.header.time_ns = 0;
      out.emplace_back(r.raw, r.raw + r.header.size);
    }
    return out;
  };
  const auto ea = events(m);
  const auto eb = events(rm);
  CHECK(ea.size() > 20000);
  CHECK(ea.size() == eb.size());
  size_t first_difference = 0;
  while (first_difference < std::min(ea.size(), eb.size()) &&
         ea[first_difference] == eb[first_difference]) {
    ++first_difference;
  }
  CHECK(first_difference == std::min(ea.size(), eb.size()));
}

TEST_CASE("gui controller (simulator): pause and animated runs", "[gui]") {
  // `jmp $` forever, in real mode.
  LiveSource src;
  src.image = {0xEB, 0xFE};
  src.name = "loop";
  src.config.record_instructions = false;
  Model m;
  LiveController c(std::move(src));
  settle(c, m);

  SECTION("pause stops a free run") {
    Command run;
    run.op = Command::Op::kRun;
    c.send(run);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    c.poll(m);
    Command pause;
    pause.op = Command::Op::kPause;
    c.send(pause);
    settle(c, m);
    CHECK(m.status().state == RunState::kIdle);
    CHECK(m.status().message.find("paused") != std::string::npos);
    CHECK(m.status().instructions > 1000);
    CHECK(m.registers().rip == 0x8000);
  }

  SECTION("a speed makes the run animated: about `speed` instructions a second") {
    c.set_speed(100);
    Command run;
    run.op = Command::Op::kRun;
    c.send(run);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    c.poll(m);
    CHECK(m.has_registers());
    Command pause;
    pause.op = Command::Op::kPause;
    c.send(pause);
    settle(c, m);
    CHECK(m.status().instructions >= 2);
    CHECK(m.status().instructions < 200);
  }
}

TEST_CASE("gui controller (KVM): exits only, and no step back (said plainly)", "[gui][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  Model m;
  LiveController c(source_for("hello", backend::Kind::kKvm));
  settle(c, m);
  REQUIRE(m.status().state == RunState::kIdle);
  CHECK(m.status().backend.rfind("KVM", 0) == 0);
  CHECK_FALSE(c.capabilities().step_back);

  send(c, m, Command::Op::kStepTo, StepKind::kVmExit);
  REQUIRE(m.selected() >= 0);
  EventRecord r;
  m.events().load(static_cast<size_t>(m.selected()), &r);
  CHECK(r.exit.payload.io.port == 0xE9);
  CHECK(m.console() == "H");

  send(c, m, Command::Op::kStepTo, StepKind::kRing);
  CHECK(m.status().message_is_error);
  CHECK(m.status().message.find("only VM exits") != std::string::npos);

  send(c, m, Command::Op::kStepBack);
  CHECK(m.status().message_is_error);
  CHECK(m.status().message.find("cannot step back") != std::string::npos);

  // Real-mode code is emulated even on kvm_pvm: single-step works here.
  const uint64_t rip = m.registers().rip;
  send(c, m, Command::Op::kStep);
  CHECK(m.registers().rip != rip);

  send(c, m, Command::Op::kRun);
  INFO(m.status().message);
  CHECK(m.status().state == RunState::kFinished);
  CHECK(m.console() == "Hello from a real-mode guest!\n");
}

TEST_CASE("gui trace replay: the same commands move through a recording", "[gui]") {
  const std::string path = test::temp_path("gui-replay.trace");
  test::write_sim_trace(*test::guest_backend("hello", false), path, "hello");
  TraceReplay t(trace::read_trace(path), path);
  Model m;
  settle(t, m);
  CHECK(m.status().state == RunState::kTrace);
  CHECK(m.events().size() == 32);  // 30 IO exits, HLT, run end
  CHECK(m.selected() == -1);
  CHECK_FALSE(m.has_registers());

  send(t, m, Command::Op::kStepTo, StepKind::kVmExit);
  CHECK(m.selected() == 0);
  CHECK(m.console() == "H");
  CHECK(m.shown_cpl() == 0);
  send(t, m, Command::Op::kStep, StepKind::kInstruction, 4);
  CHECK(m.selected() == 4);
  CHECK(m.console() == "Hello");
  send(t, m, Command::Op::kStepBack);
  CHECK(m.selected() == 3);
  send(t, m, Command::Op::kRun);
  CHECK(m.selected() == 31);
  CHECK(m.console() == "Hello from a real-mode guest!\n");
  send(t, m, Command::Op::kStep);
  CHECK(m.selected() == 31);
  CHECK(m.status().message_is_error);
  CHECK(m.status().message.find("recorded end") != std::string::npos);
  send(t, m, Command::Op::kReset);
  CHECK(m.selected() == -1);
  CHECK(m.console().empty());
}

TEST_CASE("gui trace replay: a simulator trace re-executed shows the registers at each event",
          "[gui]") {
  const auto g = guests::find("rings");
  backend::Config cfg;
  cfg.mode = *platform::parse_boot_mode(g->mode);
  cfg.record_instructions = true;
  auto load = [&](const std::string& path) {
    test::write_sim_trace(*test::guest_backend("rings"), path, "rings");
    return trace::read_trace(path);
  };
  const std::string path = test::temp_path("gui-reexec.trace");
  const std::vector<uint8_t> image(g->image.begin(), g->image.end());

  SECTION("the same guest: registers match the backend at the event, forward and back") {
    TraceReplay t(load(path), path, std::make_unique<TraceReexecution>(image, cfg));
    Model m;
    settle(t, m);
    REQUIRE(m.has_registers());  // the cursor before the first event: the machine as loaded
    CHECK(m.registers().rip == cfg.load_address);

    send(t, m, Command::Op::kStepTo, StepKind::kException);
    send(t, m, Command::Op::kStepTo, StepKind::kException);
    REQUIRE(m.selected() > 0);
    const auto at = static_cast<size_t>(m.selected());
    INFO(m.status().message);
    CHECK_FALSE(m.status().message_is_error);
    REQUIRE(m.has_registers());
    // The backend itself, stopped after its second exception.
    auto ref = test::guest_backend("rings");
    backend::StopCondition stop;
    stop.stop_on = 1u << static_cast<unsigned>(EventType::kException);
    trace::Recorder rec;
    REQUIRE(ref->run(stop, &rec).reason == trace::RunEndReason::kEventMatched);
    REQUIRE(ref->run(stop, &rec).reason == trace::RunEndReason::kEventMatched);
    check_same_registers(m.registers(), ref->registers());
    CHECK(m.shown_cpl() == ref->registers().cpl());
    CHECK(m.code().valid);
    CHECK(m.code().rip == ref->registers().rip);

    // Back one event (re-executed from the start) and forward again: the same machine.
    send(t, m, Command::Op::kStepBack);
    CHECK(m.selected() == static_cast<int64_t>(at) - 1);
    CHECK(m.registers().rip != ref->registers().rip);
    send(t, m, Command::Op::kStep);
    CHECK(m.selected() == static_cast<int64_t>(at));
    check_same_registers(m.registers(), ref->registers());

    send(t, m, Command::Op::kReset);
    CHECK(m.registers().rip == cfg.load_address);
  }

  SECTION("another guest's image diverges at once, and the views say so") {
    const auto other = guests::find("hello");
    backend::Config hello_cfg;
    hello_cfg.mode = *platform::parse_boot_mode(other->mode);
    hello_cfg.record_instructions = true;
    TraceReplay t(load(path), path,
                  std::make_unique<TraceReexecution>(
                      std::vector<uint8_t>(other->image.begin(), other->image.end()), hello_cfg));
    Model m;
    settle(t, m);
    send(t, m, Command::Op::kStepTo, StepKind::kVmExit);
    CHECK(m.status().message_is_error);
    CHECK(m.status().message.find("diverged") != std::string::npos);
    CHECK_FALSE(m.has_registers());
  }
}

// [SECTION] Lessons driving the live controller (visualizer/core/lesson_driver.hpp)

namespace {

// Runs every step of `l` through a LessonDriver on the simulator, as the pane's buttons do, and
// polls as the GUI does each frame. Returns the driver's verdicts' failure of the first failed
// step ("" if all passed); *selected = the model's selection at the end.
std::string drive_lesson(const lessons::Lesson& l, int64_t* selected) {
  LiveController c(LessonDriver::live_source(l, backend::Kind::kSim));
  Model m;
  settle(c, m);
  LessonDriver d(l, c, backend::Kind::kSim, lessons::Lang::kEn);
  for (size_t i = 0; i < d.count(); ++i) {
    INFO("lesson " << l.id << " step " << i + 1);
    REQUIRE(d.current() == i);
    REQUIRE(d.can_run());
    d.run_step();
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (d.running()) {
      c.poll(m);
      if (auto e = d.update(m)) m.select(*e);
      REQUIRE(std::chrono::steady_clock::now() < end);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    const StepResult& r = d.result(i);
    if (r.verdict != Verdict::kPassed) {
      CHECK(r.verdict == Verdict::kFailed);
      CHECK_FALSE(d.can_run());
      *selected = m.selected();
      return lessons::step_failure(l, i, r.failure);
    }
    if (r.event >= 0) CHECK(m.selected() == r.event);  // every view shows the matched event
    d.next();
  }
  *selected = m.selected();
  return {};
}

std::string terminal_failure(const lessons::Lesson& l) {
  lessons::RunnerOptions o;
  o.check = true;
  o.out = std::fopen("/dev/null", "w");
  const lessons::LessonResult r = lessons::run_lesson(l, o);
  std::fclose(o.out);
  return r.passed ? std::string() : r.failure;
}

}  // namespace

TEST_CASE("gui lesson driver: every simulator lesson passes in the pane as in the terminal",
          "[gui][lessons]") {
  size_t driven = 0;
  for (const lessons::Lesson& l : lessons::builtin_lessons()) {
    if (!l.allows("sim")) continue;
    INFO("lesson " << l.id);
    ++driven;
    int64_t selected = -1;
    CHECK(drive_lesson(l, &selected) == "");
    CHECK(terminal_failure(l) == "");
  }
  CHECK(driven >= 6);  // 1, 2, 3, 4, 8, 9, 10 run on the simulator
}

TEST_CASE("gui lesson driver: a failing expectation fails with the terminal runner's message",
          "[gui][lessons]") {
  lessons::Lesson l = lessons::find_lesson("vm-exit");
  REQUIRE(l.steps.size() > 1);
  REQUIRE(l.steps[1].expect);
  // The first exit is on port 0xe9; expect COM1 instead.
  lessons::Predicate& p = *l.steps[1].expect;
  p.conditions = {{"port", "0x3f8", 0x3f8}};
  int64_t selected = -1;
  const std::string gui = drive_lesson(l, &selected);
  CHECK(gui.find("port is 0xe9, expected 0x3f8") != std::string::npos);
  CHECK(gui == terminal_failure(l));
  CHECK(selected == 0);  // the event that did not match, shown in every view
}

// [SECTION] Run states (visualizer/core/live_controller.hpp [SECTION] Run states)

TEST_CASE("gui controller: run states allow only their transitions", "[gui]") {
  using S = LiveState;
  const S all[] = {S::kStarting, S::kPaused,   S::kRunning, S::kStepping,
                   S::kSteppingBack, S::kFinished, S::kFailed,  S::kExited};
  // Every state but kExited leads somewhere; nothing leaves kExited.
  for (S from : all) {
    INFO(to_string(from));
    bool any = false;
    for (S to : all) any = any || LiveController::allowed(from, to);
    CHECK(any == (from != S::kExited));
  }
  CHECK(LiveController::allowed(S::kStarting, S::kPaused));
  CHECK(LiveController::allowed(S::kStarting, S::kFailed));
  CHECK(LiveController::allowed(S::kPaused, S::kRunning));
  CHECK(LiveController::allowed(S::kRunning, S::kFinished));
  CHECK(LiveController::allowed(S::kFinished, S::kSteppingBack));
  CHECK(LiveController::allowed(S::kFailed, S::kStarting));
  // A finished or failed machine does not run; a working state answers before anything else.
  CHECK_FALSE(LiveController::allowed(S::kFinished, S::kRunning));
  CHECK_FALSE(LiveController::allowed(S::kFinished, S::kStepping));
  CHECK_FALSE(LiveController::allowed(S::kFailed, S::kRunning));
  CHECK_FALSE(LiveController::allowed(S::kFailed, S::kSteppingBack));
  CHECK_FALSE(LiveController::allowed(S::kRunning, S::kStepping));
  CHECK_FALSE(LiveController::allowed(S::kStepping, S::kExited));
  CHECK_FALSE(LiveController::allowed(S::kStarting, S::kRunning));
  CHECK_FALSE(LiveController::allowed(S::kPaused, S::kFinished));
  CHECK(LiveController::shown(S::kStepping) == RunState::kRunning);
  CHECK(LiveController::shown(S::kFailed) == RunState::kError);
}

namespace {

// `jmp $` forever, in real mode, every instruction recorded (so that a step in progress shows).
LiveSource endless_loop() {
  LiveSource src;
  src.image = {0xEB, 0xFE};
  src.name = "loop";
  src.config.record_instructions = true;
  return src;
}

// Polls until the worker has sent events: the command sent is in progress.
void wait_for_events(Driver& d, Model& m) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (m.events().size() == 0) {
    REQUIRE(std::chrono::steady_clock::now() < end);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    d.poll(m);
  }
}

Command command(Command::Op op, uint64_t count = 1) {
  Command c;
  c.op = op;
  c.count = count;
  return c;
}

}  // namespace

TEST_CASE("gui controller (simulator): run states — pause or quit while stepping", "[gui]") {
  Model m;
  auto c = std::make_unique<LiveController>(endless_loop());
  settle(*c, m);
  REQUIRE(m.status().state == RunState::kIdle);
  c->send(command(Command::Op::kStep, uint64_t{1} << 40));  // hours of single steps
  wait_for_events(*c, m);

  SECTION("pause: the step stops between instructions, the machine is paused") {
    c->send(command(Command::Op::kPause));
    settle(*c, m);
    INFO(m.status().message);
    CHECK(m.status().state == RunState::kIdle);
    CHECK(m.status().message.rfind("stepped ", 0) == 0);
    CHECK(m.status().instructions > 0);
    CHECK(m.status().instructions < (uint64_t{1} << 40));
    CHECK(m.status().commands_done == 2);  // the first reset and the step, each answered once
    send(*c, m, Command::Op::kStep);  // and it goes on from there
    CHECK(m.status().state == RunState::kIdle);
    CHECK(m.status().message.rfind("stepped 1 instruction;", 0) == 0);
  }

  SECTION("quit: destroying the controller ends the step and the worker") {
    c.reset();  // joins the worker: would not return if the step went on
    CHECK(m.events().size() > 0);
  }
}

TEST_CASE("gui controller (simulator): run states — stop while running, quit while running",
          "[gui]") {
  Model m;
  auto c = std::make_unique<LiveController>(endless_loop());
  settle(*c, m);
  c->send(command(Command::Op::kRun));
  wait_for_events(*c, m);

  SECTION("pause") {
    c->send(command(Command::Op::kPause));
    settle(*c, m);
    CHECK(m.status().state == RunState::kIdle);
    CHECK(m.status().message.rfind("paused at rip=", 0) == 0);
    CHECK_FALSE(m.status().end);
  }

  SECTION("quit") {
    c.reset();
    CHECK(m.events().size() > 0);
  }
}

TEST_CASE("gui controller (simulator): run states — after the guest's end only reset and step "
          "back go on",
          "[gui]") {
  Model m;
  LiveController c(source_for("hello"));
  settle(c, m);
  send(c, m, Command::Op::kRun);
  REQUIRE(m.status().state == RunState::kFinished);
  const uint64_t events = m.events().size();
  const uint64_t done = m.status().commands_done;
  for (const auto op : {Command::Op::kStep, Command::Op::kRun, Command::Op::kStepTo}) {
    send(c, m, op, StepKind::kVmExit);
    CHECK(m.status().state == RunState::kFinished);
    CHECK(m.status().message_is_error);
    CHECK(m.status().message == "the guest's run has ended (guest halted): reset or step back "
                                "to go on");
    CHECK(m.events().size() == events);
  }
  CHECK(m.status().commands_done == done + 3);  // refused, but answered
  send(c, m, Command::Op::kStepBack);  // before the hlt: the machine can run again
  CHECK(m.status().state == RunState::kIdle);
  CHECK_FALSE(m.status().end);
  send(c, m, Command::Op::kStep);
  CHECK(m.status().state == RunState::kFinished);
  CHECK(*m.status().end == trace::RunEndReason::kHalted);
}

TEST_CASE("gui controller (simulator): run states — a machine that cannot start takes only a "
          "reset",
          "[gui]") {
  LiveSource src = endless_loop();
  src.config.memory_bytes = 1 << 20;
  src.image.assign(2 << 20, 0x90);  // 2 MiB of nop: does not fit in 1 MiB
  Model m;
  LiveController c(std::move(src));
  settle(c, m);
  REQUIRE(m.status().state == RunState::kError);
  const std::string why = m.status().message;
  CHECK(why.rfind("cannot start the simulator: ", 0) == 0);
  for (int i = 0; i < 2; ++i) {  // the reason is said once, however often it is asked
    send(c, m, Command::Op::kStep);
    CHECK(m.status().state == RunState::kError);
    CHECK(m.status().message == "no machine: " + why);
  }
  send(c, m, Command::Op::kRun);
  CHECK(m.status().state == RunState::kError);
  send(c, m, Command::Op::kStepBack);
  CHECK(m.status().message == "no machine to step back");
  backend::Config bigger;
  bigger.memory_bytes = 16 << 20;
  c.restart(bigger);
  settle(c, m);
  CHECK(m.status().state == RunState::kIdle);
  send(c, m, Command::Op::kStep);
  CHECK(m.status().instructions == 1);
}

TEST_CASE("gui controller (simulator): hypercall records are not VM exits in the lane or counts",
          "[gui]") {
  LiveSource src = source_for("pv-hello");
  src.config.technique = sim::virt::Technique::kPv;
  Model m;
  LiveController c(std::move(src));
  settle(c, m);
  send(c, m, Command::Op::kRun);
  REQUIRE(m.status().state == RunState::kFinished);
  size_t exits = 0, records = 0;
  EventRecord r;
  for (size_t i = 0; i < m.events().size(); ++i) {
    m.events().load(i, &r);
    if (r.header.type != EventType::kVmExit) continue;
    if (r.header.flags & trace::kExitFlagHypercallRecord) ++records;
    else ++exits;
  }
  CHECK(records == 2);  // pv-hello's two hypercalls (tests/test_hypercall.cpp)
  CHECK(m.lane(EventType::kVmExit).size() == exits);
  CHECK(m.exit_stats().total() == exits);
  m.events().load(m.events().size() - 1, &r);
  REQUIRE(r.header.type == EventType::kRunEnd);
  CHECK(r.run_end.exits == exits);
}
