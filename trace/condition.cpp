#include "trace/condition.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <sstream>

namespace trapscope::trace {
namespace {

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Short names of kinds (the visualizer's filter words and the lessons' `shadow`).
struct Alias {
  std::string_view word;
  EventType type;
};
constexpr Alias kAliases[] = {
    {"exit", EventType::kVmExit},          {"exits", EventType::kVmExit},
    {"vmexit", EventType::kVmExit},        {"vm-exit", EventType::kVmExit},
    {"ring", EventType::kRingTransition},  {"rings", EventType::kRingTransition},
    {"exceptions", EventType::kException}, {"exc", EventType::kException},
    {"walk", EventType::kPageWalk},        {"walks", EventType::kPageWalk},
    {"insn", EventType::kInstruction},     {"end", EventType::kRunEnd},
    {"runend", EventType::kRunEnd},        {"shadow", EventType::kShadowPaging},
};

// The fields named `name` of `type`: the table's, then the consumer's extras.
const Field* lookup(EventType type, std::string_view name, std::span<const Field> extra) {
  if (const Field* f = find_field(type, name)) return f;
  for (const Field& f : extra) {
    if (f.type == type && f.name == name) return &f;
  }
  return nullptr;
}

std::string field_list(TypeMask types, std::span<const Field> extra) {
  std::vector<std::string_view> names;
  auto add = [&](std::string_view n) {
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  };
  for (unsigned t = 1; t < static_cast<unsigned>(EventType::kMax); ++t) {
    if (!(types & (TypeMask{1} << t))) continue;
    const auto type = static_cast<EventType>(t);
    for (const Field* f : fields_of(type)) {
      if (!f->header_only()) add(f->name);
    }
    for (const Field& f : extra) {
      if (f.type == type) add(f.name);
    }
  }
  // The header's last, as fields_of lists them.
  for (const Field* f : fields_of(EventType::kVmExit)) {
    if (f->header_only()) add(f->name);
  }
  std::string s;
  for (std::string_view n : names) {
    if (!s.empty()) s += ", ";
    s += n;
  }
  return s;
}

std::string max_text(uint64_t max) {
  return max > 255 ? fmt::format("{:#x}", max) : std::to_string(max);
}

// The names a kName field can take.
std::vector<std::string_view> names_of(const Field& f) {
  std::vector<std::string_view> out;
  for (uint64_t v = 0; v < f.max; ++v) {
    const std::string_view n = f.namer(v);
    if (n != "?" && n != "UNKNOWN") out.push_back(n);
  }
  return out;
}

// Resolves `value` for field `f`: [lo, hi]; or the problem with it.
std::string resolve(const Field& f, std::string_view value, uint64_t* lo, uint64_t* hi) {
  switch (f.format) {
    case FieldFormat::kText: {
      const bool word = !value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0;
      });
      return word ? "" : "must be one instruction mnemonic (letters and digits), such as out";
    }
    case FieldFormat::kSigned: {
      const bool negative = !value.empty() && value[0] == '-';
      const auto n = parse_number(negative ? value.substr(1) : value);
      if (!n || *n > (negative ? uint64_t{1} << 31 : f.max)) {
        return "must be a number such as 0 or -22";
      }
      *lo = *hi = negative ? static_cast<uint64_t>(-static_cast<int64_t>(*n)) : *n;
      return "";
    }
    case FieldFormat::kName: {
      for (uint64_t v = 0; v < f.max; ++v) {
        const std::string_view n = f.namer(v);
        if (n != "?" && iequal(n, value)) {
          *lo = *hi = v;
          return "";
        }
      }
      if (const auto n = parse_number(value); n && *n < f.max) {
        *lo = *hi = *n;
        return "";
      }
      std::string list;
      for (std::string_view n : names_of(f)) {
        if (!list.empty()) list += ", ";
        list += n;
      }
      return fmt::format("unknown '{}' ({})", value, list);
    }
    case FieldFormat::kDec:
    case FieldFormat::kHex: break;
  }
  const size_t dots = value.find("..");
  const auto a = parse_number(value.substr(0, dots));
  const auto b = dots == std::string_view::npos ? a : parse_number(value.substr(dots + 2));
  if (!a || !b || *a > f.max || *b > f.max) {
    return "must be a number 0.." + max_text(f.max) + " (decimal or 0x-hexadecimal)";
  }
  if (*a > *b) return fmt::format("the range {} is empty (LO > HI)", value);
  *lo = *a;
  *hi = *b;
  return "";
}

}  // namespace

TypeMask all_types() {
  TypeMask m = 0;
  for (unsigned t = 1; t < static_cast<unsigned>(EventType::kMax); ++t) {
    if (event_size(static_cast<EventType>(t))) m |= TypeMask{1} << t;
  }
  return m;
}

bool is_vt_exit_kind(std::string_view word) {
  return iequal(word, "vt-exit") || iequal(word, "vt_exit") || iequal(word, "vtexit");
}

std::optional<TypeMask> parse_kind(std::string_view word) {
  if (iequal(word, "any")) return all_types();
  if (is_vt_exit_kind(word)) return type_bit(EventType::kVmTransition);
  for (unsigned t = 1; t < static_cast<unsigned>(EventType::kMax); ++t) {
    if (iequal(word, to_string(static_cast<EventType>(t)))) return TypeMask{1} << t;
  }
  for (const Alias& a : kAliases) {
    if (iequal(word, a.word)) return type_bit(a.type);
  }
  return std::nullopt;
}

std::string kind_name(TypeMask types) {
  if (types == all_types()) return "any";
  std::string s;
  for (unsigned t = 1; t < static_cast<unsigned>(EventType::kMax); ++t) {
    if (types & (TypeMask{1} << t)) {
      if (!s.empty()) s += '/';
      s += to_string(static_cast<EventType>(t));
    }
  }
  return s;
}

std::optional<uint64_t> parse_number(std::string_view t) {
  int base = 10;
  if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) {
    t.remove_prefix(2);
    base = 16;
  }
  if (t.empty()) return std::nullopt;
  uint64_t v = 0;
  const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v, base);
  if (ec != std::errc() || p != t.data() + t.size()) return std::nullopt;
  return v;
}

std::optional<FieldTest> FieldTest::parse(std::string_view field, std::string_view value,
                                          TypeMask types, std::string* error,
                                          std::span<const Field> extra) {
  FieldTest t;
  t.field_ = std::string(field);
  if (field == "vec") field = "vector";  // the short form the visualizer has always taken
  t.value_ = std::string(value);
  bool known = false;
  std::string problem;
  for (unsigned i = 1; i < static_cast<unsigned>(EventType::kMax); ++i) {
    if (!(types & (TypeMask{1} << i))) continue;
    const Field* f = lookup(static_cast<EventType>(i), field, extra);
    if (!f) continue;
    known = true;
    PerType p{f};
    if (std::string why = resolve(*f, value, &p.lo, &p.hi); !why.empty()) {
      if (problem.empty()) problem = std::move(why);
      continue;
    }
    if (f->format == FieldFormat::kText) t.text_ = std::string(value);
    t.per_type_[i] = p;
  }
  if (!known) {
    *error = "not a field of " + kind_name(types) + " events (" + field_list(types, extra) + ")";
    return std::nullopt;
  }
  if (std::none_of(t.per_type_.begin(), t.per_type_.end(),
                   [](const PerType& p) { return p.field != nullptr; })) {
    *error = problem;
    return std::nullopt;
  }
  return t;
}

std::optional<FieldTest> FieldTest::parse(std::string_view word, TypeMask types,
                                          std::string* error, std::span<const Field> extra) {
  const size_t eq = word.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    *error = fmt::format("'{}': expected FIELD=VALUE", word);
    return std::nullopt;
  }
  const std::string_view field = word.substr(0, eq);
  auto t = parse(field, word.substr(eq + 1), types, error, extra);
  if (!t) *error = fmt::format("'{}': {}: {}", word, field, *error);
  return t;
}

bool FieldTest::holds(const EventHeader& event) const {
  const PerType& p = resolved(event.type);
  if (!p.field) return false;
  if (p.field->format == FieldFormat::kText) {
    const auto text = p.field->text(event);
    return text && iequal(*text, text_);
  }
  uint64_t v = 0;
  return p.field->get(event, &v) && v >= p.lo && v <= p.hi;
}

bool FieldTest::needs_payload(EventType type) const {
  const PerType& p = resolved(type);
  return p.field && !p.field->header_only();
}

std::string FieldTest::mismatch(const EventHeader& event) const {
  if (holds(event)) return {};
  const PerType& p = resolved(event.type);
  const Field* f = p.field ? p.field : find_field(event.type, field_);
  const auto now = f ? field_text(*f, event) : std::nullopt;
  if (!now) return field_ + " is not in this event, expected " + value_;
  return field_ + " is " + *now + ", expected " + value_;
}

std::optional<Condition> Condition::parse(std::string_view text, std::string* error,
                                          std::span<const Field> extra) {
  std::istringstream in{std::string(text)};
  std::string word;
  Condition c;
  if (!(in >> word)) {
    *error = "expected an event kind (vm_exit, exception, page_walk, … or any)";
    return std::nullopt;
  }
  const auto types = parse_kind(word);
  if (!types) {
    *error = "'" + word + "' is not an event kind (vm_exit, ring_transition, exception, "
             "page_walk, instruction, run_end, vt-exit, … or any; docs/conditions.md)";
    return std::nullopt;
  }
  c.types = *types;
  c.kind = word;
  c.vt_exits_only = is_vt_exit_kind(word);
  while (in >> word) {
    auto t = FieldTest::parse(word, c.types, error, extra);
    if (!t) return std::nullopt;
    c.tests.push_back(std::move(*t));
  }
  return c;
}

bool Condition::matches(const EventHeader& event) const {
  if (!(types & type_bit(event.type))) return false;
  if (vt_exits_only && !is_vt_exit(event)) return false;
  for (const FieldTest& t : tests) {
    if (!t.holds(event)) return false;
  }
  return true;
}

std::string Condition::to_string() const {
  std::string s = kind;
  for (const FieldTest& t : tests) {
    s += ' ';
    s += t.to_string();
  }
  return s;
}

}  // namespace trapscope::trace
