// trace/condition.hpp — the one condition language over events (docs/conditions.md), shared by
// the visualizer's breakpoints and event-list filter and the lessons' predicates:
//
//   KIND [FIELD=VALUE | FIELD=LO..HI] …      e.g.  exception vector=14 cpl=3
//                                                   vm_exit port=0xe9 direction=out
//                                                   page_walk linear=0x400000..0x401000
//
// KIND is an event type's name (vm_exit, page_walk, …; trace/events.def), a short name (exit,
// ring, exception, walk, insn, end, shadow, …) or `any`. FIELD is one of the kind's fields
// (trace/fields.hpp); VALUE a number (decimal or 0x-hexadecimal; a signed field takes -N), a
// name for a named field (IO, out, execute, …, any case; or its number), or a word for a text
// field (mnemonic). LO..HI, both included, for number fields. Every test must hold; an event
// that lacks a field (a VM exit that is not an I/O exit has no port) does not match a test of it.
//
// Errors name the bad kind, field or value: "'prot' is not a field of vm_exit events (reason,
// port, …)", "port: must be a number 0..0xffff (decimal or 0x-hexadecimal)".
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "trace/event.hpp"
#include "trace/fields.hpp"

namespace trapscope::trace {

// `vt-exit` (also vt_exit, vtexit): the VT-x model's VM exits — vm_transition events that are
// not VM entries (trace::is_vt_exit), so `vt-exit reason=CR_ACCESS` stops at the exit only.
bool is_vt_exit_kind(std::string_view word);

// A set of event types: bit 1 << EventType.
using TypeMask = uint32_t;
constexpr TypeMask type_bit(EventType t) { return TypeMask{1} << static_cast<unsigned>(t); }
TypeMask all_types();  // every type of events.def

// A KIND word: a type's name, a short name, or `any` (all types). nullopt if unknown.
std::optional<TypeMask> parse_kind(std::string_view word);
// "vm_exit", or "vm_exit/exception" for several types.
std::string kind_name(TypeMask types);

// One test of a field: FIELD=VALUE or FIELD=LO..HI.
class FieldTest {
 public:
  // Parses the test for events of `types`. `extra`: fields a consumer adds to the table's
  // (lessons: a hypercall's name). nullopt with *error set ("not a field of vm_exit events
  // (…)", "must be a number 0..3 (…)", "unknown 'x' (in, out)") when the field is not one of
  // those types' or the value fits none of them; the message does not repeat the field's name.
  static std::optional<FieldTest> parse(std::string_view field, std::string_view value,
                                        TypeMask types, std::string* error,
                                        std::span<const Field> extra = {});
  // The same from one word "FIELD=VALUE"; the error starts with the word.
  static std::optional<FieldTest> parse(std::string_view word, TypeMask types,
                                        std::string* error, std::span<const Field> extra = {});

  bool holds(const EventHeader& event) const;
  // "" when it holds; else "port is 0x3f8, expected 0xe9" or "port is not in this event,
  // expected 0xe9".
  std::string mismatch(const EventHeader& event) const;
  // Whether testing an event of `type` needs more than its header (false: the header decides).
  bool needs_payload(EventType type) const;
  // Whether an event of `type` can hold (it has the field and the value fits it).
  bool applies_to(EventType type) const { return per_type_[index(type)].field != nullptr; }

  const std::string& field() const { return field_; }
  const std::string& value() const { return value_; }  // as written
  std::string to_string() const { return field_ + "=" + value_; }

 private:
  struct PerType {
    const Field* field = nullptr;  // nullptr: never holds for this type
    uint64_t lo = 0, hi = 0;
  };
  static size_t index(EventType t) {
    return std::min<size_t>(static_cast<size_t>(t), static_cast<size_t>(EventType::kMax));
  }
  const PerType& resolved(EventType t) const { return per_type_[index(t)]; }
  std::string field_, value_;
  std::string text_;  // kText fields: the value, compared ignoring case
  std::array<PerType, static_cast<size_t>(EventType::kMax) + 1> per_type_{};
};

// KIND followed by tests, all of which must hold.
struct Condition {
  TypeMask types = 0;
  std::string kind;  // as written
  bool vt_exits_only = false;  // kind `vt-exit`: vm_transition events that are VM exits
  std::vector<FieldTest> tests;

  // nullopt with *error set for an unknown kind or a bad test.
  static std::optional<Condition> parse(std::string_view text, std::string* error,
                                        std::span<const Field> extra = {});
  bool matches(const EventHeader& event) const;
  std::string to_string() const;  // "exception vector=14 cpl=3"
};

// A decimal or 0x-hexadecimal number (the whole text).
std::optional<uint64_t> parse_number(std::string_view text);

}  // namespace trapscope::trace
