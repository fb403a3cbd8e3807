// The condition language (trace/condition.hpp, docs/conditions.md) and its three consumers: the
// visualizer's breakpoints and event-list filter and the lessons' predicates, which must parse
// with the one implementation (same fields, same values, same messages).
#include <catch2/catch.hpp>

#include <cstring>

#include "lessons/predicate.hpp"
#include "trace/condition.hpp"
#include "trace/fields.hpp"
#include "visualizer/core/console_commands.hpp"
#include "visualizer/core/filter.hpp"

using namespace trapscope;
using trace::EventType;

namespace {

trace::VmExitEvent io_exit(uint16_t port, uint8_t value, uint8_t cpl = 0) {
  trace::VmExitEvent e{};
  e.header = trace::make_header<trace::VmExitEvent>(EventType::kVmExit);
  e.header.cpl = cpl;
  e.header.rip = 0x8007;
  e.reason = static_cast<uint32_t>(trace::ExitReason::kIo);
  e.payload.io = {port, 1, 1, 1, value, {}};
  return e;
}

trace::PageWalkEvent walk(uint64_t linear, bool faulted) {
  trace::PageWalkEvent e{};
  e.header = trace::make_header<trace::PageWalkEvent>(EventType::kPageWalk);
  e.header.cpl = 3;
  e.linear = linear;
  e.levels = 4;
  e.access = 2;
  e.faulted = faulted;
  return e;
}

std::string error_of(std::string_view text) {
  std::string error;
  CHECK_FALSE(trace::Condition::parse(text, &error));
  return error;
}

}  // namespace

TEST_CASE("conditions: kinds, fields, names, ranges", "[unit][conditions]") {
  std::string error;
  const auto out = io_exit(0xE9, 'H', 3);
  auto c = trace::Condition::parse("vm_exit reason=io port=0xe9 direction=OUT cpl=3", &error);
  REQUIRE(c);
  CHECK(c->matches(out.header));
  CHECK_FALSE(c->matches(io_exit(0x3F8, 'H', 3).header));
  CHECK(c->to_string() == "vm_exit reason=io port=0xe9 direction=OUT cpl=3");

  // Short kind names, numbers for names, ranges (both ends included).
  CHECK(trace::Condition::parse("exit reason=2 port=0xe0..0xef", &error)->matches(out.header));
  CHECK_FALSE(trace::Condition::parse("exit port=0xea..0xef", &error)->matches(out.header));
  CHECK(trace::Condition::parse("any rip=0x8000..0x8007", &error)->matches(out.header));

  // A field the event lacks does not hold: a walk that faulted has no physical address.
  const auto w = walk(0x401000, true);
  CHECK(trace::Condition::parse("page_walk access=execute linear=0x400000..0x401fff", &error)
            ->matches(w.header));
  CHECK_FALSE(trace::Condition::parse("walk physical=0..0xffffffff", &error)->matches(w.header));
  trace::FieldTest t = *trace::FieldTest::parse("physical=0x1000", trace::all_types(), &error);
  CHECK(t.mismatch(w.header) == "physical is not in this event, expected 0x1000");
  CHECK(*trace::field_text(*trace::find_field(EventType::kPageWalk, "access"), w.header) ==
        "execute");
}

TEST_CASE("conditions: errors name the bad kind, field or value", "[unit][conditions]") {
  CHECK_THAT(error_of("vmexot port=1"), Catch::StartsWith("'vmexot' is not an event kind"));
  CHECK_THAT(error_of("exception prot=1"),
             Catch::StartsWith("'prot=1': prot: not a field of exception events (vector, "
                               "error_code, software, cr2, cpl, rip)"));
  CHECK(error_of("vm_exit port=abc") ==
        "'port=abc': port: must be a number 0..0xffff (decimal or 0x-hexadecimal)");
  CHECK(error_of("vm_exit port=0x10000") ==
        "'port=0x10000': port: must be a number 0..0xffff (decimal or 0x-hexadecimal)");
  CHECK_THAT(error_of("exit reason=IOO"),
             Catch::StartsWith("'reason=IOO': reason: unknown 'IOO' (EXCEPTION, IO,"));
  CHECK(error_of("exit direction=sideways") ==
        "'direction=sideways': direction: unknown 'sideways' (in, out)");
  CHECK(error_of("walk linear=9..3") == "'linear=9..3': linear: the range 9..3 is empty (LO > HI)");
  CHECK_THAT(error_of("exit port"), Catch::Contains("expected FIELD=VALUE"));
  CHECK_THAT(error_of(""), Catch::StartsWith("expected an event kind"));
}

TEST_CASE("conditions: breakpoints, the filter and lessons share the parser",
          "[unit][conditions][gui][lessons]") {
  // The same bad test gives the same message in each consumer.
  const std::string want = "must be a number 0..0xffff (decimal or 0x-hexadecimal)";
  std::string error;
  CHECK_FALSE(viz::parse_event_breakpoint("exit port=abc", &error));
  CHECK_THAT(error, Catch::EndsWith(want));
  viz::EventFilter filter;
  CHECK_FALSE(filter.parse("exit port=abc", &error));
  CHECK_THAT(error, Catch::EndsWith(want));
  CHECK(lessons::value_problem(lessons::EventKind::kVmExit, "port", "abc") == want);
  CHECK_THAT(lessons::value_problem(lessons::EventKind::kException, "prot", "1"),
             Catch::StartsWith("not a field of exception events"));

  // And any field of the table works in each: a breakpoint on a page walk's linear range.
  auto bp = viz::parse_event_breakpoint("walk linear=0x400000..0x401fff access=execute", &error);
  REQUIRE(bp);
  viz::EventRecord r{};
  const auto w = walk(0x401000, false);
  std::memcpy(&r, &w, sizeof w);
  CHECK(viz::matches(*bp, r));
  CHECK(viz::to_string(*bp) == "walk linear=0x400000..0x401fff access=execute");
  const lessons::Predicate p{lessons::EventKind::kPageWalk, {{"linear", "0x401000", 0x401000}}};
  CHECK(p.matches(w.header));
  CHECK(*lessons::parse_event_kind("shadow") == lessons::EventKind::kShadow);
  CHECK(*lessons::parse_event_kind("bt_counts") == lessons::EventKind::kBtCounts);
}
