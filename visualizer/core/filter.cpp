#include "visualizer/core/filter.hpp"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "visualizer/core/console_commands.hpp"
#include "visualizer/core/describe.hpp"

namespace trapscope::viz {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::optional<trace::EventType> type_word(std::string_view w) {
  if (w == "exit" || w == "exits" || w == "vmexit") return trace::EventType::kVmExit;
  if (w == "ring" || w == "rings") return trace::EventType::kRingTransition;
  if (w == "exception" || w == "exceptions" || w == "exc") return trace::EventType::kException;
  if (w == "walk" || w == "walks") return trace::EventType::kPageWalk;
  if (w == "insn" || w == "instruction") return trace::EventType::kInstruction;
  if (w == "end" || w == "runend") return trace::EventType::kRunEnd;
  return std::nullopt;
}

std::optional<uint32_t> reason_word(std::string_view w) {
  for (uint32_t r = 0; r < 64; ++r) {
    const std::string_view name = trace::exit_reason_name(r);
    if (name != "?" && lower(name) == w) return r;
  }
  return std::nullopt;
}

}  // namespace

bool EventFilter::parse(std::string_view text, std::string* error) {
  std::vector<Term> terms;
  bool slow = false, needs_record = false;
  std::istringstream in{std::string(text)};
  std::string word;
  while (in >> word) {
    Term t{};
    std::string w = lower(word);
    if (w.size() > 1 && w[0] == '-') {
      t.negate = true;
      w.erase(0, 1);
    }
    const size_t eq = w.find('=');
    if (eq != std::string::npos) {
      const std::string key = w.substr(0, eq), value = w.substr(eq + 1);
      if (key == "rip") {
        t.kind = Term::Kind::kRip;
        const size_t dots = value.find("..");
        const auto lo = parse_number(value.substr(0, dots));
        const auto hi = dots == std::string::npos ? lo : parse_number(value.substr(dots + 2));
        if (!lo || !hi) {
          *error = "rip= takes an address or a range A..B";
          return false;
        }
        t.lo = *lo;
        t.hi = *hi;
      } else if (key == "reason" || key == "type") {
        if (auto r = reason_word(value); key == "reason" && r) {
          t.kind = Term::Kind::kReason;
          t.lo = *r;
        } else if (auto n = parse_number(value); key == "reason" && n) {
          t.kind = Term::Kind::kReason;
          t.lo = *n;
        } else if (auto ty = type_word(value); key == "type" && ty) {
          t.kind = Term::Kind::kType;
          t.lo = static_cast<uint64_t>(*ty);
        } else {
          *error = "unknown " + key + " '" + value + "'";
          return false;
        }
      } else {
        const auto n = parse_number(value);
        if (!n) {
          *error = "'" + word + "': expected a number after '='";
          return false;
        }
        t.lo = *n;
        if (key == "cpl") {
          t.kind = Term::Kind::kCpl;
        } else if (key == "port") {
          t.kind = Term::Kind::kPort;
        } else if (key == "vector" || key == "vec") {
          t.kind = Term::Kind::kVector;
        } else {
          *error = "unknown field '" + key + "' (cpl, port, vector, reason, type, rip)";
          return false;
        }
      }
    } else if (auto ty = type_word(w)) {
      t.kind = Term::Kind::kType;
      t.lo = static_cast<uint64_t>(*ty);
    } else if (auto r = reason_word(w)) {
      t.kind = Term::Kind::kReason;
      t.lo = *r;
    } else if (w == "in" || w == "out") {
      t.kind = Term::Kind::kDirection;
      t.lo = w == "out";
    } else {
      t.kind = Term::Kind::kText;
      t.text = w;
      slow = true;
    }
    if (t.kind == Term::Kind::kPort || t.kind == Term::Kind::kVector ||
        t.kind == Term::Kind::kDirection) {
      needs_record = true;
    }
    terms.push_back(std::move(t));
  }
  terms_ = std::move(terms);
  text_ = std::string(text);
  slow_ = slow;
  needs_record_ = needs_record || slow;
  return true;
}

bool EventFilter::test(const Term& t, const EventStore& s, size_t i, const EventRecord* r,
                       const std::string* text) const {
  const trace::EventType type = s.type(i);
  switch (t.kind) {
    case Term::Kind::kType: return static_cast<uint64_t>(type) == t.lo;
    case Term::Kind::kReason:
      return type == trace::EventType::kVmExit && s.exit_reason(i) == t.lo;
    case Term::Kind::kCpl: return s.cpl(i) == t.lo;
    case Term::Kind::kRip: return s.rip(i) >= t.lo && s.rip(i) <= t.hi;
    case Term::Kind::kPort:
      return type == trace::EventType::kVmExit &&
             r->exit.reason == static_cast<uint32_t>(trace::ExitReason::kIo) &&
             r->exit.payload.io.port == t.lo;
    case Term::Kind::kDirection:
      return type == trace::EventType::kVmExit &&
             r->exit.reason == static_cast<uint32_t>(trace::ExitReason::kIo) &&
             r->exit.payload.io.direction == t.lo;
    case Term::Kind::kVector:
      if (type == trace::EventType::kException) return r->exception.vector == t.lo;
      if (type == trace::EventType::kRingTransition) return r->ring.vector == t.lo;
      return false;
    case Term::Kind::kText: return text->find(t.text) != std::string::npos;
  }
  return false;
}

bool EventFilter::matches(const EventStore& s, size_t i) const {
  if (terms_.empty()) return true;
  EventRecord record;
  std::string text;
  if (needs_record_) s.load(i, &record);
  if (slow_) text = lower(event_summary(record));
  for (const Term& t : terms_) {
    if (test(t, s, i, &record, &text) == t.negate) return false;
  }
  return true;
}

}  // namespace trapscope::viz
