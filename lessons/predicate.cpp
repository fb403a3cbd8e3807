#include "lessons/predicate.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "x86/disasm.hpp"
#include "platform/hypercall.hpp"

namespace trapscope::lessons {
namespace {

using trace::EventHeader;
using trace::EventType;

struct KindInfo {
  EventKind kind;
  std::string_view name;
  std::optional<EventType> type;
  std::vector<std::string_view> fields;
};

const std::array<KindInfo, 17>& kinds() {
  static const std::array<KindInfo, 17> k = {{
      {EventKind::kVmExit, "vm_exit", EventType::kVmExit,
       {"reason", "port", "direction", "size", "value", "mnemonic", "hypercall", "nr", "result",
        "arg1", "arg2", "cpl", "rip"}},
      {EventKind::kRingTransition, "ring_transition", EventType::kRingTransition,
       {"from_cpl", "to_cpl", "cause", "vector", "cpl", "rip"}},
      {EventKind::kException, "exception", EventType::kException,
       {"vector", "error_code", "software", "cr2", "cpl", "rip"}},
      {EventKind::kPageWalk, "page_walk", EventType::kPageWalk,
       {"linear", "physical", "levels", "faulted", "access", "user", "cpl", "rip"}},
      {EventKind::kInstruction, "instruction", EventType::kInstruction, {"rip", "cpl"}},
      {EventKind::kRunEnd, "run_end", EventType::kRunEnd, {"reason", "exit_code", "exits"}},
      {EventKind::kAny, "any", std::nullopt, {"cpl", "rip"}},
      {EventKind::kVmmTrap, "vmm_trap", EventType::kVmmTrap, {"mnemonic", "real_cpl", "cpl", "rip"}},
      {EventKind::kSensitiveNoTrap, "sensitive_no_trap", EventType::kSensitiveNoTrap,
       {"mnemonic", "real_cpl", "cpl", "rip"}},
      {EventKind::kVmTransition, "vm_transition", EventType::kVmTransition,
       {"exit_reason", "qualification", "entry", "cost_cycles", "mnemonic", "cpl", "rip"}},
      {EventKind::kNestedWalk, "nested_walk", EventType::kNestedWalk,
       {"linear", "gpa", "hpa", "references", "guest_levels", "faulted", "access", "cpl", "rip"}},
      {EventKind::kShadow, "shadow", EventType::kShadowPaging,
       {"action", "linear", "gpa", "access", "user", "error_code", "exit_reason", "cpl", "rip"}},
      {EventKind::kEptViolation, "ept_violation", EventType::kEptViolation,
       {"gpa", "linear", "qualification", "exit_reason", "resolution", "level", "cpl", "rip"}},
      {EventKind::kBtTranslate, "bt_translate", EventType::kBtTranslate,
       {"unit", "count", "ident", "non_ident", "generation", "guest_pa", "cpl", "rip"}},
      {EventKind::kBtChain, "bt_chain", EventType::kBtChain, {"from_unit", "to_unit", "taken", "rip"}},
      {EventKind::kBtCallout, "bt_callout", EventType::kBtCallout,
       {"unit", "mnemonic", "adaptive", "cpl", "rip"}},
      {EventKind::kBtInvalidate, "bt_invalidate", EventType::kBtInvalidate, {"page", "units", "rip"}},
  }};
  return k;
}

const KindInfo& info(EventKind kind) { return kinds()[static_cast<size_t>(kind)]; }

// A field's value: a number (compared numerically) or a name (compared ignoring case).
struct Value {
  std::optional<uint64_t> number;
  std::string text;
};

Value num(uint64_t v, bool hex) {
  char buf[24];
  if (hex) {
    buf[0] = '0';
    buf[1] = 'x';
    auto r = std::to_chars(buf + 2, buf + sizeof buf, v, 16);
    return {v, std::string(buf, r.ptr)};
  }
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return {v, std::string(buf, r.ptr)};
}
Value name(std::string_view s) { return {std::nullopt, std::string(s)}; }

template <typename T>
const T& as(const EventHeader& e) {
  return *reinterpret_cast<const T*>(&e);
}

Value access_name(uint8_t access) {
  return name(access == 0 ? "read" : access == 1 ? "write" : "execute");
}

// The first word of the disassembly of `len` bytes at the event's RIP ("" if none).
Value mnemonic(const EventHeader& e, const uint8_t* bytes, size_t len) {
  if (len == 0) return name("");
  const auto d = x86::disassemble({bytes, len}, e.cpu_mode, e.rip);
  return name(d.ok ? std::string_view(d.text).substr(0, d.text.find(' ')) : "(bad)");
}

std::optional<Value> lookup(const EventHeader& e, std::string_view field) {
  if (field == "cpl" && e.type != EventType::kRunEnd) {
    if (e.cpl == trace::kCplUnknown) return std::nullopt;
    return num(e.cpl, false);
  }
  if (field == "rip" && e.type != EventType::kRunEnd) return num(e.rip, true);
  switch (e.type) {
    case EventType::kVmExit: {
      const auto& x = as<trace::VmExitEvent>(e);
      if (field == "reason") return name(trace::exit_reason_name(x.reason));
      if (field == "mnemonic") return mnemonic(e, x.insn, std::min<size_t>(x.insn_len, 15));
      if (x.reason == static_cast<uint32_t>(trace::ExitReason::kHypercall)) {
        const auto& h = x.payload.hypercall;
        if (field == "hypercall") return name(platform::hypercall_name(h.nr));
        if (field == "nr") return num(h.nr, false);
        if (field == "result") return Value{static_cast<uint64_t>(int64_t{h.result}), std::to_string(h.result)};
        if (field == "arg1") return num(h.arg1, true);
        if (field == "arg2") return num(h.arg2, true);
        return std::nullopt;
      }
      if (x.reason != static_cast<uint32_t>(trace::ExitReason::kIo)) return std::nullopt;
      const auto& io = x.payload.io;
      if (field == "port") return num(io.port, true);
      if (field == "direction") return name(io.direction ? "out" : "in");
      if (field == "size") return num(io.size, false);
      if (field == "value") return num(io.value, true);
      return std::nullopt;
    }
    case EventType::kRingTransition: {
      const auto& x = as<trace::RingTransitionEvent>(e);
      if (field == "from_cpl") return num(x.from_cpl, false);
      if (field == "to_cpl") return num(x.to_cpl, false);
      if (field == "cause") return name(trace::to_string(x.cause));
      if (field == "vector") return num(x.vector, false);
      return std::nullopt;
    }
    case EventType::kException: {
      const auto& x = as<trace::ExceptionEvent>(e);
      if (field == "vector") return num(x.vector, false);
      if (field == "error_code" && x.has_error_code) return num(x.error_code, true);
      if (field == "software") return num(x.software, false);
      if (field == "cr2" && x.vector == 14) return num(x.cr2, true);
      return std::nullopt;
    }
    case EventType::kPageWalk: {
      const auto& x = as<trace::PageWalkEvent>(e);
      if (field == "linear") return num(x.linear, true);
      if (field == "physical" && !x.faulted) return num(x.physical, true);
      if (field == "levels") return num(x.levels, false);
      if (field == "faulted") return num(x.faulted, false);
      if (field == "access") return access_name(x.access);
      if (field == "user") return num(x.user, false);
      return std::nullopt;
    }
    case EventType::kRunEnd: {
      const auto& x = as<trace::RunEndEvent>(e);
      if (field == "reason") return name(trace::to_string(x.reason));
      if (field == "exit_code") return num(x.exit_code, false);
      if (field == "exits") return num(x.exits, false);
      return std::nullopt;
    }
    case EventType::kVmmTrap:
    case EventType::kSensitiveNoTrap:
    case EventType::kVmTransition: {
      const auto& x = as<trace::VirtEvent>(e);
      if (field == "mnemonic") return mnemonic(e, x.insn, std::min<size_t>(x.insn_len, 15));
      if (field == "real_cpl" && e.type != EventType::kVmTransition) return num(x.real_cpl, false);
      if (e.type != EventType::kVmTransition) return std::nullopt;
      if (field == "exit_reason") return num(x.exit_reason, false);
      if (field == "qualification") return num(x.qualification, true);
      if (field == "entry") return num(e.flags & 1, false);
      if (field == "cost_cycles") return num(x.cost_cycles, false);
      return std::nullopt;
    }
    case EventType::kNestedWalk: {
      const auto& x = as<trace::NestedWalkEvent>(e);
      if (field == "linear") return num(x.linear, true);
      if (field == "gpa" && !x.faulted) return num(x.gpa, true);
      if (field == "hpa" && !x.faulted) return num(x.hpa, true);
      if (field == "references") return num(x.nrefs, false);
      if (field == "guest_levels") return num(x.guest_levels, false);
      if (field == "faulted") return num(x.faulted, false);
      if (field == "access") return access_name(x.access);
      return std::nullopt;
    }
    case EventType::kShadowPaging: {
      const auto& x = as<trace::ShadowPagingEvent>(e);
      if (field == "action") return name(trace::to_string(x.action));
      if (field == "linear") return num(x.linear, true);
      if (field == "gpa") return num(x.gpa, true);
      if (field == "access") return access_name(x.access);
      if (field == "user") return num(x.user, false);
      if (field == "error_code" && x.action == trace::ShadowAction::kTrueFault)
        return num(x.error_code, true);
      if (field == "exit_reason") return num(x.intel_exit_reason, false);
      return std::nullopt;
    }
    case EventType::kEptViolation: {
      const auto& x = as<trace::EptViolationEvent>(e);
      if (field == "gpa") return num(x.gpa, true);
      if (field == "linear" && (x.qualification & 0x80)) return num(x.linear, true);
      if (field == "qualification") return num(x.qualification, true);
      if (field == "exit_reason") return num(x.intel_exit_reason, false);
      if (field == "resolution")
        return name(x.resolution == trace::EptResolution::kMmio ? "mmio" : "mapped");
      if (field == "level") return num(x.level, false);
      return std::nullopt;
    }
    case EventType::kBtTranslate: {
      const auto& x = as<trace::BtTranslateEvent>(e);
      const unsigned n = std::min<unsigned>(x.count, trace::kBtMaxUnitInsns);
      unsigned ident = 0;
      for (unsigned i = 0; i < n; ++i) ident += x.kind[i] == static_cast<uint8_t>(trace::BtKind::kIdent);
      if (field == "unit") return num(x.unit, false);
      if (field == "count") return num(x.count, false);
      if (field == "ident") return num(ident, false);
      if (field == "non_ident") return num(n - ident, false);
      if (field == "generation") return num(x.generation, false);
      if (field == "guest_pa") return num(x.guest_pa, true);
      return std::nullopt;
    }
    case EventType::kBtChain: {
      const auto& x = as<trace::BtChainEvent>(e);
      if (field == "from_unit") return num(x.from_unit, false);
      if (field == "to_unit") return num(x.to_unit, false);
      if (field == "taken") return num(e.flags & trace::kBtFlagTaken, false);
      return std::nullopt;
    }
    case EventType::kBtCallout: {
      const auto& x = as<trace::BtCalloutEvent>(e);
      if (field == "unit") return num(x.unit, false);
      if (field == "mnemonic") return mnemonic(e, x.insn, std::min<size_t>(x.insn_len, 15));
      if (field == "adaptive") return num(e.flags & trace::kBtFlagAdaptive, false);
      return std::nullopt;
    }
    case EventType::kBtInvalidate: {
      const auto& x = as<trace::BtInvalidateEvent>(e);
      if (field == "page") return num(x.page_pa, true);
      if (field == "units") return num(x.units, false);
      return std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool holds(const Condition& c, const Value& v) {
  if (c.number) return v.number && *v.number == *c.number;
  return iequal(c.text, v.text);
}

bool of_kind(EventKind kind, const EventHeader& e) {
  const KindInfo& k = info(kind);
  if (k.type && e.type != *k.type) return false;
  if (e.type == EventType::kRunEnd) {
    // Only a run that is over is a run_end; "any" never stops at the pause markers either.
    return trace::ends_guest_run(as<trace::RunEndEvent>(e).reason);
  }
  return true;
}

}  // namespace

std::optional<EventKind> parse_event_kind(std::string_view text) {
  for (const KindInfo& k : kinds())
    if (k.name == text) return k.kind;
  return std::nullopt;
}

std::string_view to_string(EventKind kind) { return info(kind).name; }

std::vector<std::string_view> fields_of(EventKind kind) { return info(kind).fields; }

std::optional<uint64_t> parse_value_number(std::string_view s) {
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s.remove_prefix(2);
  }
  uint64_t v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

namespace {

// The names a name field can take (as lookup() produces them), from the enumerations' own
// to_string functions.
template <typename F>
std::vector<std::string> names_of(unsigned first, unsigned last, F name) {
  std::vector<std::string> out;
  for (unsigned i = first; i <= last; ++i) {
    const std::string n(name(i));
    if (n != "?" && n != "UNKNOWN") out.push_back(n);
  }
  return out;
}

std::vector<std::string> field_names(EventKind kind, std::string_view field) {
  if (field == "reason" && kind == EventKind::kVmExit)
    return names_of(0, 63, [](unsigned i) { return trace::exit_reason_name(i); });
  if (field == "reason")  // run_end
    return names_of(1, static_cast<unsigned>(trace::RunEndReason::kMax) - 1, [](unsigned i) {
      return trace::to_string(static_cast<trace::RunEndReason>(i));
    });
  if (field == "hypercall") return names_of(0, 63, [](unsigned i) { return platform::hypercall_name(i); });
  if (field == "cause")
    return names_of(1, 31, [](unsigned i) { return trace::to_string(static_cast<trace::RingCause>(i)); });
  if (field == "action")
    return names_of(1, 31, [](unsigned i) { return trace::to_string(static_cast<trace::ShadowAction>(i)); });
  if (field == "direction") return {"in", "out"};
  if (field == "access") return {"read", "write", "execute"};
  if (field == "resolution") return {"mapped", "mmio"};
  return {};
}

// The largest value of a number field.
uint64_t field_max(EventKind kind, std::string_view field) {
  if (field == "cpl" || field == "from_cpl" || field == "to_cpl" || field == "real_cpl") return 3;
  if (field == "software" || field == "user" || field == "entry" || field == "taken" ||
      field == "adaptive")
    return 1;
  if (field == "faulted") return kind == EventKind::kNestedWalk ? 2 : 1;
  if (field == "port") return 0xFFFF;
  if (field == "size") return 4;
  if (field == "vector") return 255;
  if (field == "levels" || field == "guest_levels" || field == "level") return 5;
  if (field == "references") return trace::kMaxNestedRefs;
  if (field == "nr" || field == "exit_code" || field == "exit_reason" || field == "error_code" ||
      field == "unit" || field == "from_unit" || field == "to_unit" || field == "count" ||
      field == "ident" || field == "non_ident" || field == "generation" || field == "units")
    return UINT32_MAX;
  return UINT64_MAX;
}

std::string hex_max(uint64_t max) {
  char buf[24];
  std::snprintf(buf, sizeof buf, max > 255 ? "0x%llx" : "%llu", static_cast<unsigned long long>(max));
  return buf;
}

}  // namespace

std::string value_problem(EventKind kind, std::string_view field, std::string_view text) {
  if (field == "mnemonic") {
    const bool word = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0;
    });
    return word ? "" : "must be one instruction mnemonic (letters and digits), such as out";
  }
  if (field == "result") {  // 0 or a negative error
    const bool negative = !text.empty() && text[0] == '-';
    const auto n = parse_value_number(negative ? text.substr(1) : text);
    return n && *n <= (negative ? uint64_t{1} << 31 : INT32_MAX) ? ""
                                                                 : "must be a number such as 0 or -22";
  }
  const std::vector<std::string> names = field_names(kind, field);
  if (!names.empty()) {
    for (const std::string& n : names)
      if (iequal(n, text)) return "";
    std::string list;
    for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
    return "unknown '" + std::string(text) + "' (" + list + ")";
  }
  const uint64_t max = field_max(kind, field);
  const auto n = parse_value_number(text);
  if (!n || *n > max) return "must be a number 0.." + hex_max(max) + " (decimal or 0x-hexadecimal)";
  return "";
}

std::optional<std::string> field_value(const EventHeader& event, std::string_view field) {
  auto v = lookup(event, field);
  if (!v) return std::nullopt;
  return v->text;
}

bool Predicate::matches(const EventHeader& event) const {
  return of_kind(kind, event) && mismatch(event).empty();
}

std::string Predicate::mismatch(const EventHeader& event) const {
  for (const Condition& c : conditions) {
    auto v = lookup(event, c.field);
    if (!v) return c.field + " is not in this event, expected " + c.text;
    if (!holds(c, *v)) return c.field + " is " + v->text + ", expected " + c.text;
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
    uint32_t all = 0;
    for (unsigned t = 1; t < static_cast<unsigned>(EventType::kMax); ++t)
      if (t != static_cast<unsigned>(EventType::kRunEnd)) all |= 1u << t;
    return all;
  }
  if (*k.type == EventType::kRunEnd) return 0;
  return 1u << static_cast<unsigned>(*k.type);
}

}  // namespace trapscope::lessons
