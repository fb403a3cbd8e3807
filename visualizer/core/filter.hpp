// visualizer/core/filter.hpp — the event list's filter: words that must all match (AND).
//
//   exit ring exception walk insn end …    an event kind (trace/condition.hpp: any type's name or
//   type=KIND                               short name)
//   io hlt mmio shutdown …                 a VM exit reason (KVM's names)
//   FIELD=VALUE  FIELD=LO..HI              a field of the events that have it, in the condition
//                                          language of breakpoints and lessons
//                                          (docs/conditions.md): cpl=3 port=0xe9 reason=HLT
//                                          rip=0x8000..0x8100 vector=14 linear=0x1000..0x1fff
//   in out                                 I/O direction
//   -WORD                                  negation
//   anything else                          case-insensitive substring of the event's text
//
// Kinds and header fields (cpl, rip) test the stored row; other fields load the record (tens of
// ns per event); free text formats each event (about a microsecond), so the model applies
// filters incrementally, a budget of events per frame (visualizer/core/model.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trace/condition.hpp"
#include "visualizer/core/event_store.hpp"

namespace trapscope::viz {

class EventFilter {
 public:
  // Replaces the filter. False (and the filter unchanged) with *error set for a malformed word.
  bool parse(std::string_view text, std::string* error);
  bool empty() const { return terms_.empty(); }
  bool slow() const { return slow_; }  // has free-text words
  const std::string& text() const { return text_; }
  bool matches(const EventStore& store, size_t index) const;

 private:
  struct Term {
    enum class Kind : uint8_t { kTypes, kField, kText };
    Kind kind = Kind::kText;
    bool negate = false;
    trace::TypeMask types = 0;              // kTypes
    std::optional<trace::FieldTest> field;  // kField
    std::string text;                       // kText: lower case
  };
  std::vector<Term> terms_;
  std::string text_;
  bool slow_ = false;
};

}  // namespace trapscope::viz
