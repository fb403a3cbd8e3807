#include "trace/fields.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <vector>

#include "x86/disasm.hpp"

namespace trapscope::trace {
namespace {

template <EventType T>
const EventStruct<T>& as(const EventHeader& h) {
  return reinterpret_cast<const EventStruct<T>&>(h);
}

// [SECTION] Helpers the table's expressions use

bool is_io(const VmExitEvent& e) { return e.reason == static_cast<uint32_t>(ExitReason::kIo); }
bool is_mmio(const VmExitEvent& e) { return e.reason == static_cast<uint32_t>(ExitReason::kMmio); }
bool is_hypercall(const VmExitEvent& e) {
  return e.reason == static_cast<uint32_t>(ExitReason::kHypercall);
}

unsigned bt_ident_count(const BtTranslateEvent& e) {
  unsigned n = 0;
  for (unsigned i = 0; i < e.count && i < kBtMaxUnitInsns; ++i) {
    n += e.kind[i] == static_cast<uint8_t>(BtKind::kIdent);
  }
  return n;
}

// The first word of the disassembly of the record's instruction bytes ("" if none).
std::string mnemonic_of(const EventHeader& h, const uint8_t* bytes, size_t len) {
  len = std::min<size_t>(len, 15);
  if (len == 0) return "";
  const auto d = x86::disassemble({bytes, len}, h.cpu_mode, h.rip);
  return d.ok ? d.text.substr(0, d.text.find(' ')) : "(bad)";
}

namespace namers {
std::string_view exit_reason_name(uint64_t v) {
  return v <= UINT32_MAX ? trace::exit_reason_name(static_cast<uint32_t>(v)) : "?";
}
std::string_view io_direction_name(uint64_t v) { return v == 0 ? "in" : v == 1 ? "out" : "?"; }
std::string_view access_name(uint64_t v) {
  return v == 0 ? "read" : v == 1 ? "write" : v == 2 ? "execute" : "?";
}
std::string_view run_end_reason_name(uint64_t v) {
  return v < 256 ? to_string(static_cast<RunEndReason>(v)) : "?";
}
std::string_view ring_cause_name(uint64_t v) {
  return v < 256 ? to_string(static_cast<RingCause>(v)) : "?";
}
std::string_view shadow_action_name(uint64_t v) {
  return v < 256 ? to_string(static_cast<ShadowAction>(v)) : "?";
}
std::string_view ept_resolution_name(uint64_t v) {
  return v == 1 ? "mapped" : v == 2 ? "mmio" : "?";
}
std::string_view vmx_exit_reason_name(uint64_t v) {
  return v < x86::kVmxExitReasons ? x86::vmx_exit_reason_name(static_cast<uint32_t>(v)) : "?";
}
std::string_view virt_technique_name(uint64_t v) {
  return v < 256 ? to_string(static_cast<VirtTechnique>(v)) : "?";
}
std::string_view device_kind_name(uint64_t v) {
  return v < 256 ? to_string(static_cast<DeviceKind>(v)) : "?";
}
std::string_view device_action_name(uint64_t v) {
  return v < 256 ? to_string(static_cast<DeviceAction>(v)) : "?";
}
}  // namespace namers

// [SECTION] The table

const std::array kFields = {
#define TRAPSCOPE_FIELD(Id, Name, Format, Max, Present, Value)                               \
  Field{EventType::Id, #Name, FieldFormat::Format, static_cast<uint64_t>(Max),               \
        [](const EventHeader& h, uint64_t* v) {                                              \
          [[maybe_unused]] const auto& e = as<EventType::Id>(h);                             \
          if (!(Present)) return false;                                                      \
          *v = static_cast<uint64_t>(Value);                                                 \
          return true;                                                                       \
        },                                                                                   \
        nullptr, nullptr},
#define TRAPSCOPE_NAMED(Id, Name, Namer, Count, Present, Value)                              \
  Field{EventType::Id, #Name, FieldFormat::kName, Count,                                     \
        [](const EventHeader& h, uint64_t* v) {                                              \
          [[maybe_unused]] const auto& e = as<EventType::Id>(h);                             \
          if (!(Present)) return false;                                                      \
          *v = static_cast<uint64_t>(Value);                                                 \
          return true;                                                                       \
        },                                                                                   \
        namers::Namer, nullptr},
#define TRAPSCOPE_TEXT(Id, Name, Present, Text)                                              \
  Field{EventType::Id, #Name, FieldFormat::kText, 0, nullptr, nullptr,                       \
        [](const EventHeader& h) -> std::optional<std::string> {                             \
          [[maybe_unused]] const auto& e = as<EventType::Id>(h);                             \
          if (!(Present)) return std::nullopt;                                               \
          return Text;                                                                       \
        }},
#include "trace/events.def"
    // The header's, on every type but run_end.
    Field{EventType::kMax, "cpl", FieldFormat::kDec, 3,
          [](const EventHeader& h, uint64_t* v) {
            *v = h.cpl;
            return h.cpl != kCplUnknown;
          },
          nullptr, nullptr},
    Field{EventType::kMax, "rip", FieldFormat::kHex, UINT64_MAX,
          [](const EventHeader& h, uint64_t* v) {
            *v = h.rip;
            return true;
          },
          nullptr, nullptr},
};

using FieldList = std::vector<const Field*>;

const std::array<FieldList, static_cast<size_t>(EventType::kMax)>& by_type() {
  static const auto table = [] {
    std::array<FieldList, static_cast<size_t>(EventType::kMax)> t;
    for (size_t type = 1; type < t.size(); ++type) {
      if (event_size(static_cast<EventType>(type)) == 0) continue;
      for (const Field& f : kFields) {
        if (static_cast<size_t>(f.type) == type) t[type].push_back(&f);
      }
      if (static_cast<EventType>(type) == EventType::kRunEnd) continue;
      for (const Field& f : kFields) {
        if (f.header_only()) t[type].push_back(&f);
      }
    }
    return t;
  }();
  return table;
}

}  // namespace

std::span<const Field* const> fields_of(EventType type) {
  const size_t i = static_cast<size_t>(type);
  if (i >= static_cast<size_t>(EventType::kMax)) return {};
  return by_type()[i];
}

const Field* find_field(EventType type, std::string_view name) {
  for (const Field* f : fields_of(type)) {
    if (f->name == name) return f;
  }
  return nullptr;
}

std::string format_value(const Field& f, uint64_t v) {
  switch (f.format) {
    case FieldFormat::kHex: return fmt::format("{:#x}", v);
    case FieldFormat::kSigned: return std::to_string(static_cast<int64_t>(v));
    case FieldFormat::kName:
      if (const std::string_view n = f.namer(v); n != "?") return std::string(n);
      return std::to_string(v);
    case FieldFormat::kDec:
    case FieldFormat::kText: break;
  }
  return std::to_string(v);
}

std::optional<std::string> field_text(const Field& f, const EventHeader& event) {
  if (f.format == FieldFormat::kText) return f.text(event);
  uint64_t v = 0;
  if (!f.get(event, &v)) return std::nullopt;
  return format_value(f, v);
}

}  // namespace trapscope::trace
