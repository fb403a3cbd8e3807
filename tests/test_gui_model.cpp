// The visualizer's GUI-free consumer (visualizer/core/): the compact event store, the model's
// indexes, the filter, breakpoint conditions, scripts, disassembly around RIP and the state
// dump. No window, no thread, no backend.
#include <catch2/catch.hpp>

#include <cstring>

#include "guests/guest_catalog.hpp"
#include "visualizer/core/console_commands.hpp"
#include "visualizer/core/describe.hpp"
#include "visualizer/core/disasm_window.hpp"
#include "visualizer/core/model.hpp"
#include "visualizer/core/script.hpp"
#include "visualizer/core/state_dump.hpp"

using namespace trapscope;
using namespace trapscope::viz;
using trace::EventType;

namespace {

trace::VmExitEvent io_exit(uint64_t rip, uint16_t port, uint8_t value, uint8_t cpl = 0) {
  trace::VmExitEvent e{};
  e.header = trace::make_header<trace::VmExitEvent>(EventType::kVmExit);
  e.header.rip = rip;
  e.header.cpl = cpl;
  e.header.cpu_mode = trace::CpuMode::kReal16;
  e.header.time_ns = 1000 + rip;
  e.reason = static_cast<uint32_t>(trace::ExitReason::kIo);
  e.handle_ns = 500;
  e.insn_addr = rip;
  e.insn_len = 1;
  e.insn[0] = 0xEE;  // out dx, al
  e.payload.io = {port, 1, 1, 1, value, {}};
  return e;
}

trace::VmExitEvent hlt_exit(uint64_t rip) {
  trace::VmExitEvent e{};
  e.header = trace::make_header<trace::VmExitEvent>(EventType::kVmExit);
  e.header.rip = rip;
  e.header.cpl = 0;
  e.reason = static_cast<uint32_t>(trace::ExitReason::kHlt);
  e.handle_ns = 100;
  e.insn_len = 1;
  e.insn[0] = 0xF4;
  return e;
}

trace::InstructionEvent insn(uint64_t rip, std::initializer_list<uint8_t> bytes, uint8_t cpl) {
  trace::InstructionEvent e{};
  e.header = trace::make_header<trace::InstructionEvent>(EventType::kInstruction);
  e.header.rip = rip;
  e.header.cpl = cpl;
  e.header.cpu_mode = trace::CpuMode::kLong64;
  e.len = static_cast<uint8_t>(bytes.size());
  std::copy(bytes.begin(), bytes.end(), e.bytes);
  std::memset(e.bytes + e.len, 0xCC, 15 - e.len);  // garbage past len is not kept
  return e;
}

trace::ExceptionEvent exception(uint64_t rip, uint8_t vector, uint32_t error, uint8_t cpl) {
  trace::ExceptionEvent e{};
  e.header = trace::make_header<trace::ExceptionEvent>(EventType::kException);
  e.header.rip = rip;
  e.header.cpl = cpl;
  e.vector = vector;
  e.has_error_code = 1;
  e.error_code = error;
  e.cr2 = vector == 14 ? 0x400000 : 0;
  return e;
}

trace::RingTransitionEvent ring(uint8_t from, uint8_t to, uint64_t rip) {
  trace::RingTransitionEvent e{};
  e.header = trace::make_header<trace::RingTransitionEvent>(EventType::kRingTransition);
  e.header.rip = rip;
  e.header.cpl = to;
  e.from_cpl = from;
  e.to_cpl = to;
  e.cause = trace::RingCause::kIret;
  e.from_rip = rip - 2;
  return e;
}

trace::PageWalkEvent walk(uint64_t linear, uint8_t levels) {
  trace::PageWalkEvent e{};
  e.header = trace::make_header<trace::PageWalkEvent>(EventType::kPageWalk);
  e.header.cpl = 3;
  e.linear = linear;
  e.physical = linear;
  e.levels = levels;
  e.user = 1;
  for (unsigned i = 0; i < levels; ++i) e.level[i] = {0x20000u + i * 0x1000u, 0x21007u + i};
  return e;
}

// A small mixed stream: CPL 0 exits, a ring transition to 3, user instructions, a #GP back
// to 0, a walk, a halt.
void fill(Model& m) {
  m.append(io_exit(0x8007, 0xE9, 'H').header);                 // 0
  m.append(io_exit(0x8007, 0xE9, 'i').header);                 // 1
  m.append(ring(0, 3, 0x9000).header);                         // 2
  m.append(insn(0x9000, {0x90}, 3).header);                    // 3
  m.append(walk(0x9000, 4).header);                            // 4
  m.append(insn(0x9001, {0xFA}, 3).header);                    // 5  cli
  m.append(exception(0x9001, 13, 0, 3).header);                // 6
  m.append(ring(3, 0, 0x8100).header);                         // 7
  m.append(io_exit(0x8107, 0x3F8, '!').header);                // 8
  m.append(hlt_exit(0x8110).header);                           // 9
}

}  // namespace

TEST_CASE("gui event store: every event type round-trips through the compact form", "[gui]") {
  EventStore s;
  const auto x = io_exit(0x8007, 0xE9, 'H');
  const auto i = insn(0x9000, {0x48, 0x89, 0xd8}, 3);
  const auto w = walk(0x7000, 3);
  const auto e = exception(0x9001, 14, 4, 3);
  const auto r = ring(3, 0, 0x8100);
  REQUIRE(s.append(x.header));
  REQUIRE(s.append(i.header));
  REQUIRE(s.append(w.header));
  REQUIRE(s.append(e.header));
  REQUIRE(s.append(r.header));
  REQUIRE(s.size() == 5);
  EventRecord out;
  s.load(0, &out);
  CHECK(out.header.seq == 0);
  CHECK(std::memcmp(&out.exit.reason, &x.reason, sizeof x - sizeof x.header) == 0);
  CHECK(s.exit_reason(0) == 2);
  s.load(1, &out);
  CHECK(out.insn.len == 3);
  CHECK(std::memcmp(out.insn.bytes, i.bytes, 3) == 0);
  CHECK(out.insn.bytes[3] == 0);  // bytes past len are not stored
  CHECK(out.header.cpl == 3);
  CHECK(out.header.rip == 0x9000);
  s.load(2, &out);
  CHECK(out.walk.levels == 3);
  CHECK(out.walk.level[2].entry == w.level[2].entry);
  CHECK(out.walk.level[3].entry == 0);
  s.load(3, &out);
  CHECK(std::memcmp(&out.exception.vector, &e.vector, sizeof e - sizeof e.header) == 0);
  s.load(4, &out);
  CHECK(out.ring.from_cpl == 3);
  CHECK(out.ring.from_rip == r.from_rip);
  CHECK(s.exit_reason(4) == 0);

  SECTION("a record whose size does not match its type is refused") {
    trace::VmExitEvent bad = x;
    bad.header.size = 40;
    CHECK_FALSE(s.append(bad.header));
    CHECK(s.size() == 5);
  }
  SECTION("truncate drops the tail and appending continues") {
    s.truncate(2);
    CHECK(s.size() == 2);
    REQUIRE(s.append(e.header));
    s.load(2, &out);
    CHECK(out.header.type == EventType::kException);
    CHECK(out.exception.vector == 14);
  }
  SECTION("an instruction event costs less than its 48-byte record") {
    EventStore big;
    const auto nop = insn(0x1000, {0x90}, 0);
    const size_t n = size_t{1} << 20;
    for (size_t k = 0; k < n; ++k) big.append(nop.header);
    CHECK(big.memory_bytes() < n * 30);  // a 24-byte row and 2 payload bytes, in chunks
  }
  SECTION("across row and payload chunks: every event intact, truncation and appending again") {
    EventStore big;
    const size_t n = 200'000;  // 3 row chunks; exits (~50 payload bytes) span arena chunks
    for (size_t k = 0; k < n; ++k) {
      if (k % 3) {
        REQUIRE(big.append(insn(0x1000 + k, {0x0f, 0x01, 0xd8}, 3).header));
      } else {
        REQUIRE(big.append(io_exit(0x2000 + k, 0xE9, static_cast<uint8_t>(k)).header));
      }
    }
    for (size_t k : {size_t{0}, size_t{65'535}, size_t{65'536}, size_t{131'072}, n - 1}) {
      INFO(k);
      big.load(k, &out);
      CHECK(out.header.rip == (k % 3 ? 0x1000 + k : 0x2000 + k));
      if (k % 3 == 0) {
        CHECK(out.exit.payload.io.value == static_cast<uint8_t>(k));
      } else {
        CHECK(out.insn.len == 3);
      }
    }
    big.truncate(65'536);
    CHECK(big.size() == 65'536);
    REQUIRE(big.append(e.header));
    big.load(65'536, &out);
    CHECK(out.header.type == EventType::kException);
    CHECK(out.exception.vector == 14);
  }
}

TEST_CASE("gui event store: every type of trace/events.def round-trips byte for byte", "[gui]") {
  // Each record filled with bytes, its variable part's count in range and the elements past
  // it zero (as producers write them): load() gives back the same bytes.
  EventStore s;
  std::vector<std::vector<uint8_t>> records;
  for (unsigned t = 1; t < static_cast<unsigned>(EventType::kMax); ++t) {
    const auto type = static_cast<EventType>(t);
    std::vector<uint8_t> b(trace::event_size(type));
    for (size_t k = sizeof(trace::EventHeader); k < b.size(); ++k) b[k] = static_cast<uint8_t>(k * 7 + t);
    auto* h = reinterpret_cast<trace::EventHeader*>(b.data());
    *h = {};
    h->type = type;
    h->size = static_cast<uint16_t>(b.size());
    h->cpl = 3;
    h->rip = 0x1000 + t;
    auto* any = reinterpret_cast<EventRecord*>(b.data());
    auto trim = [](uint8_t* array, size_t bytes, size_t kept) { std::memset(array + kept, 0, bytes - kept); };
    if (type == EventType::kVmExit) { any->exit.insn_len = 5; trim(any->exit.insn, 15, 5); }
    if (type == EventType::kInstruction) { any->insn.len = 2; trim(any->insn.bytes, 15, 2); }
    if (type == EventType::kPageWalk) {
      any->walk.levels = 2;
      trim(reinterpret_cast<uint8_t*>(any->walk.level), sizeof any->walk.level, 2 * 16);
    }
    if (type == EventType::kBtTranslate) {
      any->bt_translate.guest_bytes = 17;
      trim(any->bt_translate.code, trace::kBtMaxUnitBytes, 17);
    }
    REQUIRE(s.append(*h));
    records.push_back(std::move(b));
  }
  for (size_t i = 0; i < records.size(); ++i) {
    INFO("event type " << i + 1);
    EventRecord out;
    s.load(i, &out);
    out.header.seq = 0;
    CHECK(std::memcmp(&out, records[i].data(), records[i].size()) == 0);
  }
  // A count past its array is stored clamped (a crafted trace's insn_len = 255).
  auto x = io_exit(0x8007, 0xE9, 'H');
  x.insn_len = 255;
  REQUIRE(s.append(x.header));
  EventRecord out;
  s.load(s.size() - 1, &out);
  CHECK(out.exit.insn_len == 15);
  CHECK(out.exit.payload.io.port == 0xE9);
}

TEST_CASE("gui describe and dump: fields come from the event table", "[gui]") {
  trace::ShadowPagingEvent sp{};
  sp.header = trace::make_header<trace::ShadowPagingEvent>(EventType::kShadowPaging);
  sp.header.cpl = 0;
  sp.action = trace::ShadowAction::kTrueFault;
  sp.linear = 0x401000;
  sp.error_code = 5;
  EventRecord r{};
  std::memcpy(&r, &sp, sizeof sp);
  CHECK(type_label(EventType::kShadowPaging) == "shadow");
  bool action = false, error = false;
  for (const Field& f : event_fields(r)) {
    action |= f.name == "action" && f.value == "true page fault";
    error |= f.name == "error_code" && f.value == "0x5";
  }
  CHECK(action);
  CHECK(error);
  const auto j = dump_event(r);
  CHECK(j["action"] == "true page fault");
  CHECK(j["linear"] == 0x401000);
  const auto x = io_exit(0x8007, 0xE9, 'H');
  std::memcpy(&r, &x, sizeof x);
  const auto k = dump_event(r);
  CHECK(k["exit_reason"] == "IO");
  CHECK(k["reason"] == "IO");
  CHECK(k["port"] == 0xE9);
  CHECK(k["direction"] == "out");
}

TEST_CASE("gui model: lanes, CPL spans, exit statistics and searches", "[gui]") {
  Model m;
  fill(m);
  REQUIRE(m.events().size() == 10);
  CHECK(m.lane(EventType::kVmExit) == std::vector<uint32_t>{0, 1, 8, 9});
  CHECK(m.lane(EventType::kException) == std::vector<uint32_t>{6});
  CHECK(m.lane(EventType::kPageWalk) == std::vector<uint32_t>{4});
  CHECK(m.lane(EventType::kRingTransition) == std::vector<uint32_t>{2, 7});
  REQUIRE(m.cpl_spans().size() == 3);
  CHECK(m.cpl_spans()[0].first == 0);
  CHECK(m.cpl_spans()[0].cpl == 0);
  CHECK(m.cpl_spans()[1].first == 2);
  CHECK(m.cpl_spans()[1].cpl == 3);
  CHECK(m.cpl_spans()[2].first == 7);
  CHECK(m.exit_stats().total() == 4);
  CHECK(m.exit_stats().by_reason().at(2).count == 3);
  CHECK(m.exit_stats().by_reason().at(5).count == 1);

  CHECK(m.find_next(StepKind::kVmExit, -1) == 0u);
  CHECK(m.find_next(StepKind::kVmExit, 1) == 8u);
  CHECK(m.find_next(StepKind::kException, 0) == 6u);
  CHECK(m.find_next(StepKind::kAny, 4) == 6u);
  CHECK(m.find_next(StepKind::kInstruction, 4) == 5u);
  CHECK_FALSE(m.find_next(StepKind::kTranslation, -1));
  CHECK_FALSE(m.find_next(StepKind::kVmExit, 9));
  CHECK(m.find_prev(StepKind::kRing, 7) == 2u);
  CHECK(m.find_prev(StepKind::kVmExit, 8) == 1u);

  SECTION("truncation keeps every index consistent") {
    m.select(9);
    m.truncate(5);
    CHECK(m.events().size() == 5);
    CHECK(m.lane(EventType::kVmExit) == std::vector<uint32_t>{0, 1});
    CHECK(m.cpl_spans().size() == 2);
    CHECK(m.exit_stats().total() == 2);
    CHECK(m.selected() == 4);
  }
}

TEST_CASE("gui model: a hypercall record is not a VM exit in any lane or count", "[gui]") {
  // A paravirtual guest's doorbell: the I/O exit, then the record of the hypercall behind it
  // (trace/event.hpp kExitFlagHypercallRecord), then the halt and the run's end.
  trace::VmExitEvent record = io_exit(0x8010, 0x500, 0);
  record.reason = static_cast<uint32_t>(trace::ExitReason::kHypercall);
  record.header.flags = trace::kExitFlagHypercallRecord;
  record.payload.hypercall = {1, 0, 0x9000, 5};
  trace::RunEndEvent end{};
  end.header = trace::make_header<trace::RunEndEvent>(EventType::kRunEnd);
  end.reason = trace::RunEndReason::kHalted;
  Model m;
  m.append(io_exit(0x8010, 0x500, 0).header);  // 0: the doorbell
  m.append(record.header);                       // 1: its record
  m.append(hlt_exit(0x8020).header);             // 2
  m.append(end.header);                          // 3
  REQUIRE(m.events().size() == 4);
  CHECK(m.events().type(1) == EventType::kVmExit);  // kept and listed
  CHECK(m.lane(EventType::kVmExit) == std::vector<uint32_t>{0, 2});
  CHECK(m.exit_stats().total() == 2);
  CHECK(m.find_next(StepKind::kVmExit, 0) == 2u);
  CHECK(m.find_prev(StepKind::kVmExit, 2) == 0u);
  EventRecord r;
  m.events().load(3, &r);
  CHECK(r.run_end.exits == 2);  // the run end shown counts the exits of the whole run
  m.truncate(2);
  CHECK(m.lane(EventType::kVmExit) == std::vector<uint32_t>{0});
  CHECK(m.exit_stats().total() == 1);
}

TEST_CASE("gui model: the filter's words", "[gui]") {
  Model m;
  fill(m);
  std::string err;
  auto visible = [&](const char* text) {
    REQUIRE(m.set_filter(text, &err));
    while (m.filter_pending()) m.advance_filter(3);  // in small budgets, as frames do
    std::vector<size_t> rows;
    for (size_t r = 0; r < m.visible_count(); ++r) rows.push_back(m.visible(r));
    return rows;
  };
  CHECK(visible("").size() == 10);
  CHECK(visible("exit") == std::vector<size_t>{0, 1, 8, 9});
  CHECK(visible("io port=0xe9") == std::vector<size_t>{0, 1});
  CHECK(visible("exit -io") == std::vector<size_t>{9});
  CHECK(visible("cpl=3") == std::vector<size_t>{2, 3, 4, 5, 6});
  CHECK(visible("vector=13") == std::vector<size_t>{6});
  CHECK(visible("rip=0x9000..0x9001") == std::vector<size_t>{2, 3, 5, 6});
  CHECK(visible("reason=hlt") == std::vector<size_t>{9});
  CHECK(visible("cli") == std::vector<size_t>{5});         // free text: the disassembly
  CHECK(visible("'!'") == std::vector<size_t>{8});
  CHECK(m.row_of(8) == 0u);
  CHECK_FALSE(m.row_of(7));
  CHECK_FALSE(m.set_filter("port=zz", &err));
  CHECK_FALSE(err.empty());
  CHECK_FALSE(m.set_filter("colour=red", &err));

  SECTION("new events are filtered as they arrive") {
    visible("io");
    m.append(io_exit(0x8200, 0xE9, 'x').header);
    m.advance_filter(100);
    CHECK(m.visible_count() == 4);
  }
}

TEST_CASE("gui model: registers at this stop and the previous one", "[gui]") {
  Model m;
  MachineState s;
  s.stop = true;
  s.has_registers = true;
  s.registers.rip = 0x8000;
  s.memory.address = 0x8000;
  s.memory.bytes = {1, 2, 3};
  m.apply(s);
  CHECK(m.has_registers());
  CHECK_FALSE(m.has_previous_registers());
  CHECK(m.shown_cpl() == 0);
  s.registers.rip = 0x8003;
  s.memory.bytes = {1, 9, 3};
  m.apply(s);
  CHECK(m.registers().rip == 0x8003);
  REQUIRE(m.has_previous_registers());
  CHECK(m.previous_registers().rip == 0x8000);
  CHECK(m.previous_memory().bytes == std::vector<uint8_t>{1, 2, 3});
  s.reset = true;
  m.apply(s);
  CHECK_FALSE(m.has_previous_registers());

  SECTION("a status-only update keeps the stop's registers") {
    MachineState running;
    running.status.state = RunState::kRunning;
    m.apply(running);
    CHECK(m.has_registers());
    CHECK(m.registers().rip == 0x8003);
    CHECK(m.status().state == RunState::kRunning);
  }
}

TEST_CASE("gui breakpoints: kinds and conditions", "[gui]") {
  std::string err;
  auto bp = parse_event_breakpoint("exit reason=IO port=0xe9", &err);
  REQUIRE(bp);
  CHECK(to_string(*bp) == "exit reason=IO port=0xe9");
  EventRecord r;
  const auto x = io_exit(0x8007, 0xE9, 'H');
  std::memcpy(&r, &x, sizeof x);
  CHECK(matches(*bp, r));
  const auto y = io_exit(0x8007, 0x3F8, 'H');
  std::memcpy(&r, &y, sizeof y);
  CHECK_FALSE(matches(*bp, r));

  auto pf = parse_event_breakpoint("exception vector=14 cpl=3", &err);
  REQUIRE(pf);
  const auto e = exception(0x9000, 14, 4, 3);
  std::memcpy(&r, &e, sizeof e);
  CHECK(matches(*pf, r));
  const auto gp = exception(0x9000, 13, 0, 3);
  std::memcpy(&r, &gp, sizeof gp);
  CHECK_FALSE(matches(*pf, r));

  CHECK(parse_event_breakpoint("any cpl=3", &err));
  CHECK(to_string(*parse_event_breakpoint("exit reason=2", &err)) == "exit reason=2");
  CHECK_FALSE(parse_event_breakpoint("exit reason=NOPE", &err));
  CHECK_FALSE(parse_event_breakpoint("insn", &err));
  CHECK_FALSE(parse_event_breakpoint("exit cpl=4", &err));
  CHECK_FALSE(parse_event_breakpoint("", &err));
}

TEST_CASE("gui scripts: every command parses, errors name the line", "[gui]") {
  std::string err;
  auto s = parse_script(
      "# a comment\n"
      "step\nstep 5\nstep-to exit\nstep-to ring   # trailing comment\nstep-back 2\nrun\n"
      "run-for 100\npause\nreset\nwait-idle\nselect 12\nselect-next exception\nbreak 0x800e\n"
      "break-event exit reason=IO port=0xe9\nclear-breaks\nfilter io port=0xe9\nmemory 0x8000\n"
      "speed 50\nframes 3\nscreenshot out.png\ndump state.json\nassert-cpl 3\n"
      "assert-selected exit port=0xe9\nassert-console Hello\nquit",
      &err);
  REQUIRE(s);
  REQUIRE(s->size() == 25);
  CHECK((*s)[1].number == 5);
  CHECK((*s)[2].kind == StepKind::kVmExit);
  CHECK((*s)[3].line == 5);
  CHECK((*s)[12].breakpoint.address == 0x800E);
  CHECK(to_string((*s)[13].breakpoint) == "exit reason=IO port=0xe9");
  CHECK((*s)[15].text == "io port=0xe9");
  CHECK((*s)[19].text == "out.png");
  CHECK((*s)[23].text == "Hello");
  CHECK_FALSE(parse_script("step\nfly away\n", &err));
  CHECK(err.find("line 2") == 0);
  CHECK_FALSE(parse_script("assert-cpl 7", &err));
  CHECK_FALSE(parse_script("step-to nowhere", &err));
  CHECK_FALSE(parse_script("screenshot", &err));
  // Numbers past what the runner can hold are refused when the script is read:
  // frames 2^31 wrapped to a negative int, run-for 2^63 ms overflowed <chrono>, a timeline far
  // past 2^53 looped inside one frame.
  CHECK_FALSE(parse_script("frames 2147483648", &err));
  CHECK(err.find("line 1: frames takes a count, at most 1000000") == 0);
  CHECK(parse_script("frames 1000000", &err));
  CHECK_FALSE(parse_script("step\nrun-for 9223372036854775807", &err));
  CHECK(err.find("line 2: run-for takes milliseconds, at most 86400000") == 0);
  CHECK_FALSE(parse_script("run-for 18446744073709551615", &err));
  CHECK_FALSE(parse_script("timeline 18014398509481984 18014398509482000", &err));
  CHECK(err.find("FIRST < LAST <= 2^53") != std::string::npos);
  CHECK(parse_script("timeline 0 9007199254740992", &err));
}

TEST_CASE("gui disassembly around RIP lands on instruction boundaries", "[gui]") {
  // hello.asm at 0x8000: mov si, msg; mov dx, 0xE9; lodsb; test al, al; jz; out dx, al; jmp; hlt
  const auto g = guests::find("hello");
  REQUIRE(g);
  CodeWindow w;
  w.valid = true;
  w.mode = trace::CpuMode::kReal16;
  w.start = 0x7FC0;
  w.rip = 0x800B;  // out dx, al
  w.bytes.assign(256, 0);
  w.readable.assign(256, 0);
  for (size_t i = 0; i < g->image.size() && 0x40 + i < 256; ++i) {
    w.bytes[0x40 + i] = g->image[i];
    w.readable[0x40 + i] = 1;
  }
  const auto lines = disassemble_around(w, 8, 3);
  REQUIRE(lines.size() >= 4);
  size_t rip_line = 0;
  while (rip_line < lines.size() && !lines[rip_line].is_rip) ++rip_line;
  REQUIRE(rip_line < lines.size());
  CHECK(lines[rip_line].address == 0x800B);
  CHECK(lines[rip_line].text == "out dx, al");
  CHECK(lines[0].address == 0x8000);  // decoding starts at the image, where bytes are readable
  CHECK(lines[0].text.rfind("mov si", 0) == 0);
  CHECK(lines[rip_line].pg == PgClass::kPrivileged);  // out: IOPL-sensitive I/O
  CHECK(lines[0].pg == PgClass::kInnocuous);           // mov si, …
}

TEST_CASE("gui descriptions decode control registers, segments and faults", "[gui]") {
  CHECK(set_bit_names(cr0_bits(0x80000011)) == "PE ET PG");
  CHECK(set_bit_names(efer_bits(0x500)) == "LME LMA");
  CHECK(set_bit_names(rflags_bits(0x202)) == "IF");
  x86::Segment cs;
  cs.type = 0xB;
  cs.s = 1;
  CHECK(segment_type(cs) == "code, execute/read, accessed");
  x86::Segment tss;
  tss.s = 0;
  tss.type = 0xB;
  CHECK(segment_type(tss) == "TSS (busy)");
  CHECK(page_fault_error(4) == "page not present, read, user mode (CPL 3)");
  CHECK(pte_flags(0x27) == "P RW US A");
  CHECK(vector_mnemonic(13) == "#GP");
  CHECK(walk_level_name(4, 0) == "PML4");
  CHECK(walk_level_name(2, 1) == "PT");
  CHECK(with_commas(1234567) == "1,234,567");
  EventRecord r;
  const auto x = io_exit(0x8007, 0xE9, 'H');
  std::memcpy(&r, &x, sizeof x);
  CHECK(event_summary(r).find("VM exit IO") == 0);
  CHECK(event_summary(r).find("port=0xe9") != std::string::npos);
}

TEST_CASE("gui state dump: what the views show, as JSON", "[gui]") {
  Model m;
  fill(m);
  m.select(0);
  MachineState s;
  s.stop = true;
  s.has_registers = true;
  s.registers.rip = 0x8008;
  s.console = "Hi";
  s.status.state = RunState::kIdle;
  m.apply(s);
  const auto j = dump_state(m);
  CHECK(j["events"] == 10);
  CHECK(j["lanes"]["vm_exit"] == 4);
  CHECK(j["selected"]["index"] == 0);
  CHECK(j["selected"]["exit_reason"] == "IO");
  CHECK(j["selected"]["port"] == 0xE9);
  CHECK(j["cpl_shown"] == 0);
  CHECK(j["registers"]["rip"] == 0x8008);
  CHECK(j["console"] == "Hi");
  CHECK(j["state"] == "stopped");
  CHECK(j["exit_stats"].size() == 2);
}
