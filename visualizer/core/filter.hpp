// visualizer/core/filter.hpp — the event list's filter: words that must all match (AND).
//
//   exit ring exception walk insn end      an event type
//   io hlt mmio shutdown …                 a VM exit reason (KVM's names)
//   cpl=N port=N vector=N reason=NAME      a field (numbers decimal or 0x hex)
//   rip=0x8000..0x8100  rip=0x8007         a RIP range or value
//   in out                                 I/O direction
//   -WORD                                  negation
//   anything else                          case-insensitive substring of the event's text
//
// The structured words test the stored row or payload (tens of ns per event); free text formats
// each event (about a microsecond), so the model applies filters incrementally, a budget of
// events per frame (visualizer/core/model.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

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
    enum class Kind : uint8_t { kType, kReason, kCpl, kPort, kVector, kRip, kDirection, kText };
    Kind kind;
    bool negate = false;
    uint64_t lo = 0, hi = 0;  // values; [lo, hi] for rip ranges
    std::string text;         // lower case, for kText
  };
  bool test(const Term& t, const EventStore& store, size_t index, const EventRecord* record,
            const std::string* text) const;
  std::vector<Term> terms_;
  std::string text_;
  bool slow_ = false;
  bool needs_record_ = false;
};

}  // namespace trapscope::viz
