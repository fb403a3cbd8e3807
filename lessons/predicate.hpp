// lessons/predicate.hpp — "an event of this kind whose fields have these values": what a lesson
// step runs until, and what it expects of the event it stopped at.
//
// The kinds are the event types of trace/events.def by name (vm_exit, ring_transition,
// exception, page_walk, instruction, run_end, vmm_trap, sensitive_no_trap, vm_transition,
// nested_walk, shadow, ept_violation, bt_translate, bt_chain, bt_callout, bt_invalidate,
// bt_lookup, bt_counts; also the condition language's short names) or `any`; their fields and
// values are the condition language's (trace/condition.hpp, docs/conditions.md), parsed and
// tested by its one implementation. Lessons add one field: a hypercall record's `hypercall`
// (its name: console_write, mmu_update, set_cr3, …; platform/hypercall.hpp).
// A lesson file's values are checked when it is read (value_problem): a number field takes a
// number in the field's range (cpl 0..3, port 0..0xffff, vector 0..255, 0|1 flags, …), result
// a signed number, a name field one of its names (any case), mnemonic one word.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trace/event.hpp"

namespace trapscope::lessons {

enum class EventKind : uint8_t {
  kVmExit, kRingTransition, kException, kPageWalk, kInstruction, kRunEnd, kAny,
  kVmmTrap, kSensitiveNoTrap, kVmTransition, kNestedWalk, kShadow, kEptViolation,
  kBtTranslate, kBtChain, kBtCallout, kBtInvalidate, kBtLookup, kBtCounts,
};
std::optional<EventKind> parse_event_kind(std::string_view text);
std::string_view to_string(EventKind kind);

struct Condition {
  std::string field;
  std::string text;                // the value as written (names, and for messages)
  std::optional<uint64_t> number;  // set when the value is a number
};

struct Predicate {
  EventKind kind = EventKind::kAny;
  std::vector<Condition> conditions;

  // True when `event` is of this kind and every condition holds. A RunEndEvent that only
  // marks where a run call paused (event matched, step, breakpoint, instruction limit) is not
  // a run_end.
  bool matches(const trace::EventHeader& event) const;
  // The first condition that does not hold for `event` (of this kind), as
  // "port is 0x3f8, expected 0xe9"; empty when all hold.
  std::string mismatch(const trace::EventHeader& event) const;
  std::string describe() const;  // "vm_exit reason=IO port=0xe9"
  // The bit of trace::EventType a backend run can stop on for this kind (0: run_end, any).
  uint32_t stop_mask() const;
};

// The fields a kind has (its type's, trace/fields.hpp, and `hypercall` on vm_exit); any: cpl, rip.
std::vector<std::string_view> fields_of(EventKind kind);
// Why `field`=`text` cannot be a condition on events of `kind`, as "not a field of vm_exit events
// (…)", "must be a number 0..0xffff …" or "unknown 'x' (in, out)" (trace::FieldTest::parse);
// "" when it can.
std::string value_problem(EventKind kind, std::string_view field, std::string_view text);
// A decimal or 0x-hexadecimal number (the whole text), as a condition's value.
std::optional<uint64_t> parse_value_number(std::string_view text);
// The value of `field` in `event` as text ("IO", "0xe9", "3"); nullopt if the event has none.
std::optional<std::string> field_value(const trace::EventHeader& event, std::string_view field);

}  // namespace trapscope::lessons
