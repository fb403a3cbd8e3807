#include "lessons/predicate.hpp"

#include <array>

#include "trace/condition.hpp"
#include "platform/hypercall.hpp"

namespace trapscope::lessons {
namespace {

using trace::EventHeader;
using trace::EventType;

struct KindInfo {
  EventKind kind;
  std::optional<EventType> type;  // nullopt: any
};

// EventKind's order; the names are the event types' (trace/events.def).
constexpr std::array<KindInfo, 19> kKinds = {{
    {EventKind::kVmExit, EventType::kVmExit},
    {EventKind::kRingTransition, EventType::kRingTransition},
    {EventKind::kException, EventType::kException},
    {EventKind::kPageWalk, EventType::kPageWalk},
    {EventKind::kInstruction, EventType::kInstruction},
    {EventKind::kRunEnd, EventType::kRunEnd},
    {EventKind::kAny, std::nullopt},
    {EventKind::kVmmTrap, EventType::kVmmTrap},
    {EventKind::kSensitiveNoTrap, EventType::kSensitiveNoTrap},
    {EventKind::kVmTransition, EventType::kVmTransition},
    {EventKind::kNestedWalk, EventType::kNestedWalk},
    {EventKind::kShadow, EventType::kShadowPaging},
    {EventKind::kEptViolation, EventType::kEptViolation},
    {EventKind::kBtTranslate, EventType::kBtTranslate},
    {EventKind::kBtChain, EventType::kBtChain},
    {EventKind::kBtCallout, EventType::kBtCallout},
    {EventKind::kBtInvalidate, EventType::kBtInvalidate},
    {EventKind::kBtLookup, EventType::kBtLookup},
    {EventKind::kBtCounts, EventType::kBtCounts},
}};

const KindInfo& info(EventKind kind) { return kKinds[static_cast<size_t>(kind)]; }

trace::TypeMask mask_of(EventKind kind) {
  const KindInfo& k = info(kind);
  return k.type ? trace::type_bit(*k.type) : trace::all_types();
}

// The field lessons add to the table's: a hypercall record's call by name (platform/hypercall.hpp;
// the trace layer does not know the hypercall ABI).
const trace::Field kHypercallName{
    EventType::kVmExit, "hypercall", trace::FieldFormat::kName, 64,
    [](const EventHeader& h, uint64_t* v) {
      const auto& x = reinterpret_cast<const trace::VmExitEvent&>(h);
      *v = x.payload.hypercall.nr;
      return x.reason == static_cast<uint32_t>(trace::ExitReason::kHypercall);
    },
    [](uint64_t v) { return v <= UINT32_MAX ? platform::hypercall_name(static_cast<uint32_t>(v)) : "?"; },
    nullptr};
const std::span<const trace::Field> kExtra{&kHypercallName, 1};

// The test of condition `c` on events of `types`, by the shared parser (trace/condition.hpp).
std::optional<trace::FieldTest> test_of(const Condition& c, trace::TypeMask types,
                                        std::string* error) {
  return trace::FieldTest::parse(c.field, c.text, types, error, kExtra);
}

bool of_kind(EventKind kind, const EventHeader& e) {
  if (!(mask_of(kind) & trace::type_bit(e.type))) return false;
  if (e.type == EventType::kRunEnd) {
    // Only a run that is over is a run_end; "any" never stops at the pause markers either.
    return trace::ends_guest_run(reinterpret_cast<const trace::RunEndEvent&>(e).reason);
  }
  return true;
}

}  // namespace

std::optional<EventKind> parse_event_kind(std::string_view text) {
  if (text == "any") return EventKind::kAny;
  const auto types = trace::parse_kind(text);
  if (!types) return std::nullopt;
  for (const KindInfo& k : kKinds) {
    if (k.type && trace::type_bit(*k.type) == *types) return k.kind;
  }
  return std::nullopt;
}

std::string_view to_string(EventKind kind) {
  const KindInfo& k = info(kind);
  if (!k.type) return "any";
  return kind == EventKind::kShadow ? "shadow" : trace::to_string(*k.type);
}

std::vector<std::string_view> fields_of(EventKind kind) {
  std::vector<std::string_view> out;
  const KindInfo& k = info(kind);
  if (!k.type) return {"cpl", "rip"};
  for (const trace::Field* f : trace::fields_of(*k.type)) {
    if (f->header_only()) continue;
    out.push_back(f->name);
  }
  for (const trace::Field& f : kExtra) {
    if (f.type == *k.type) out.push_back(f.name);
  }
  if (*k.type != EventType::kRunEnd) out.insert(out.end(), {"cpl", "rip"});
  return out;
}

std::string value_problem(EventKind kind, std::string_view field, std::string_view text) {
  std::string error;
  return trace::FieldTest::parse(field, text, mask_of(kind), &error, kExtra) ? "" : error;
}

std::optional<uint64_t> parse_value_number(std::string_view text) {
  return trace::parse_number(text);
}

std::optional<std::string> field_value(const EventHeader& event, std::string_view field) {
  if (const trace::Field* f = trace::find_field(event.type, field)) {
    return trace::field_text(*f, event);
  }
  if (kHypercallName.type == event.type && kHypercallName.name == field) {
    return trace::field_text(kHypercallName, event);
  }
  return std::nullopt;
}

bool Predicate::matches(const EventHeader& event) const {
  return of_kind(kind, event) && mismatch(event).empty();
}

std::string Predicate::mismatch(const EventHeader& event) const {
  for (const Condition& c : conditions) {
    std::string error;
    const auto t = test_of(c, trace::type_bit(event.type), &error);
    if (!t) return c.field + " is not in this event, expected " + c.text;
    if (std::string m = t->mismatch(event); !m.empty()) return m;
  }
  return {};
}

std::string Predicate::describe() const {
  std::string s(to_string(kind));
  for (const Condition& c : conditions) s += " " + c.field + "=" + c.text;
  return s;
}

uint32_t Predicate::stop_mask() const {
  const KindInfo& k = info(kind);
  if (!k.type) {  // any: every kind but the end of the run (which stops the run anyway)
    return trace::all_types() & ~trace::type_bit(EventType::kRunEnd);
  }
  if (*k.type == EventType::kRunEnd) return 0;
  return trace::type_bit(*k.type);
}

}  // namespace trapscope::lessons
