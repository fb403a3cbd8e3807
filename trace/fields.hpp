// trace/fields.hpp — the named fields of each event type, from trace/events.def: what conditions
// test (trace/condition.hpp: breakpoints, the event-list filter, lesson predicates) and what the
// visualizer's state dump lists. The names are those of `trapscope show --format jsonl` where
// both have the field; docs/conditions.md lists them.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "trace/event.hpp"

namespace trapscope::trace {

enum class FieldFormat : uint8_t {
  kDec,     // a number, shown in decimal
  kHex,     // a number, shown 0x…
  kSigned,  // a negative int32 error or 0, shown signed
  kName,    // a number with names (an exit reason, a cause); shown by name
  kText,    // text computed from the record (an instruction's mnemonic)
};

struct Field {
  EventType type;  // the type it belongs to; kMax: the header's, on every type but run_end
  std::string_view name;
  FieldFormat format;
  uint64_t max;  // numbers: the largest value; kName: the number of values namer knows
  // The value (numbers and names); false when the event does not have the field.
  bool (*get)(const EventHeader& event, uint64_t* value);
  std::string_view (*namer)(uint64_t value);  // kName: "?" for a value without a name
  std::optional<std::string> (*text)(const EventHeader& event);  // kText
  bool header_only() const { return type == EventType::kMax; }
};

// The fields of `type`, its own first (in events.def order), then cpl and rip (not on run_end).
std::span<const Field* const> fields_of(EventType type);
const Field* find_field(EventType type, std::string_view name);

// The field's value in `event` as text: "IO", "0xe9", "3", "-22", "out"; nullopt if absent.
std::optional<std::string> field_text(const Field& field, const EventHeader& event);
// A number of the field's format as text (kName: its name, or the number when it has none).
std::string format_value(const Field& field, uint64_t value);

}  // namespace trapscope::trace
