#include "visualizer/core/filter.hpp"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "visualizer/core/describe.hpp"

namespace trapscope::viz {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

bool EventFilter::parse(std::string_view text, std::string* error) {
  std::vector<Term> terms;
  bool slow = false;
  const trace::TypeMask exits = trace::type_bit(trace::EventType::kVmExit);
  std::istringstream in{std::string(text)};
  std::string word;
  while (in >> word) {
    Term t;
    std::string w = lower(word);
    if (w.size() > 1 && w[0] == '-') {
      t.negate = true;
      w.erase(0, 1);
    }
    std::string why;
    if (w.starts_with("type=")) {
      const auto types = trace::parse_kind(w.substr(5));
      if (!types) {
        *error = "unknown type '" + w.substr(5) + "' (exit, ring, exception, walk, insn, end, "
                 "any type's name; docs/conditions.md)";
        return false;
      }
      t.kind = Term::Kind::kTypes;
      t.types = *types;
    } else if (w.find('=') != std::string::npos) {
      t.field = trace::FieldTest::parse(w, trace::all_types(), error);
      if (!t.field) return false;
      t.kind = Term::Kind::kField;
    } else if (const auto types = trace::parse_kind(w)) {
      t.kind = Term::Kind::kTypes;
      t.types = *types;
    } else if (auto reason = trace::parse_number(w)
                                 ? std::nullopt  // a bare number is text, not a reason
                                 : trace::FieldTest::parse("reason", w, exits, &why)) {
      t.kind = Term::Kind::kField;
      t.field = std::move(reason);
    } else if (w == "in" || w == "out") {
      t.kind = Term::Kind::kField;
      t.field = trace::FieldTest::parse("direction", w, exits, &why);
    } else {
      t.kind = Term::Kind::kText;
      t.text = w;
      slow = true;
    }
    terms.push_back(std::move(t));
  }
  terms_ = std::move(terms);
  text_ = std::string(text);
  slow_ = slow;
  return true;
}

bool EventFilter::matches(const EventStore& s, size_t i) const {
  if (terms_.empty()) return true;
  const trace::EventHeader header = s.header(i);
  EventRecord record;
  bool loaded = false;
  std::string text;
  auto full = [&]() -> const trace::EventHeader& {
    if (!loaded) s.load(i, &record);
    loaded = true;
    return record.header;
  };
  for (const Term& t : terms_) {
    bool hit = false;
    switch (t.kind) {
      case Term::Kind::kTypes: hit = (t.types & trace::type_bit(header.type)) != 0; break;
      case Term::Kind::kField:
        hit = t.field->applies_to(header.type) &&
              t.field->holds(t.field->needs_payload(header.type) ? full() : header);
        break;
      case Term::Kind::kText:
        if (text.empty()) {
          full();
          text = lower(event_summary(record));
        }
        hit = text.find(t.text) != std::string::npos;
        break;
    }
    if (hit == t.negate) return false;
  }
  return true;
}

}  // namespace trapscope::viz
