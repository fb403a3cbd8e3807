#include "visualizer/core/console_commands.hpp"

#include <fmt/format.h>

#include <cctype>
#include <sstream>

#include <fmt/format.h>

#include "visualizer/core/event_store.hpp"

namespace trapscope::viz {
namespace {

using trace::EventType;

constexpr uint32_t bit(EventType t) { return 1u << static_cast<unsigned>(t); }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

// [SECTION] Step kinds

std::string_view to_string(StepKind kind) {
  switch (kind) {
    case StepKind::kInstruction: return "insn";
    case StepKind::kVmExit: return "exit";
    case StepKind::kRing: return "ring";
    case StepKind::kException: return "exception";
    case StepKind::kPageWalk: return "walk";
    case StepKind::kTranslation: return "translation";
    case StepKind::kAny: return "any";
    case StepKind::kVtExit: return "vt-exit";
    case StepKind::kCount: break;
  }
  return "?";
}

std::string_view describe(StepKind kind) {
  switch (kind) {
    case StepKind::kInstruction: return "instruction";
    case StepKind::kVmExit: return "VM exit";
    case StepKind::kRing: return "ring transition";
    case StepKind::kException: return "exception";
    case StepKind::kPageWalk: return "page walk";
    case StepKind::kTranslation: return "translation";
    case StepKind::kAny: return "event";
    case StepKind::kVtExit: return "VT-x VM exit";
    case StepKind::kCount: break;
  }
  return "?";
}

std::optional<StepKind> parse_step_kind(std::string_view t) {
  if (iequals(t, "insn") || iequals(t, "instruction") || iequals(t, "step")) {
    return StepKind::kInstruction;
  }
  if (iequals(t, "exit") || iequals(t, "vmexit") || iequals(t, "vm-exit")) return StepKind::kVmExit;
  if (iequals(t, "ring") || iequals(t, "cpl")) return StepKind::kRing;
  if (iequals(t, "exception") || iequals(t, "exc") || iequals(t, "trap")) {
    return StepKind::kException;
  }
  if (iequals(t, "walk") || iequals(t, "pagewalk") || iequals(t, "page-walk")) {
    return StepKind::kPageWalk;
  }
  if (iequals(t, "translation") || iequals(t, "tu")) return StepKind::kTranslation;
  if (iequals(t, "any") || iequals(t, "event")) return StepKind::kAny;
  if (trace::is_vt_exit_kind(t)) return StepKind::kVtExit;
  return std::nullopt;
}

uint32_t event_mask(StepKind kind) {
  switch (kind) {
    case StepKind::kVmExit: return bit(EventType::kVmExit) | bit(EventType::kVmTransition);
    case StepKind::kVtExit: return bit(EventType::kVmTransition);
    case StepKind::kRing: return bit(EventType::kRingTransition);
    case StepKind::kException: return bit(EventType::kException);
    case StepKind::kPageWalk: return bit(EventType::kPageWalk);
    case StepKind::kTranslation: return bit(EventType::kBtTranslate);
    case StepKind::kAny:
      return bit(EventType::kVmExit) | bit(EventType::kVmTransition) |
             bit(EventType::kRingTransition) | bit(EventType::kException) |
             bit(EventType::kPageWalk);
    case StepKind::kInstruction:
    case StepKind::kCount: break;
  }
  return 0;
}

bool stops_at_mask(uint32_t mask, const trace::EventHeader& e) {
  if (!(mask & bit(e.type))) return false;
  if (e.type == EventType::kVmExit) return trace::is_vm_exit(e);
  if (e.type == EventType::kVmTransition) return trace::is_vt_exit(e);
  return true;
}

bool stops_at(StepKind kind, const trace::EventHeader& e) {
  return stops_at_mask(event_mask(kind), e);
}

StepKind step_kind_of(EventType type) {
  switch (type) {
    case EventType::kVmExit: return StepKind::kVmExit;
    case EventType::kVmTransition: return StepKind::kVmExit;
    case EventType::kRingTransition: return StepKind::kRing;
    case EventType::kException: return StepKind::kException;
    case EventType::kPageWalk: return StepKind::kPageWalk;
    case EventType::kBtTranslate: return StepKind::kTranslation;
    default: return StepKind::kInstruction;
  }
}

// [SECTION] Breakpoints

bool matches(const Breakpoint& bp, const EventRecord& e) {
  if (bp.kind != Breakpoint::Kind::kEvent) return false;
  const EventType type = e.header.type;
  if (bp.event == StepKind::kInstruction) {
    if (type != EventType::kInstruction) return false;
  } else if (!stops_at(bp.event, e.header)) {
    return false;
  }
  for (const trace::FieldTest& t : bp.conditions) {
    if (!t.holds(e.header)) return false;
  }
  return true;
}

std::string to_string(const Breakpoint& bp) {
  if (bp.kind == Breakpoint::Kind::kAddress) return fmt::format("{:#x}", bp.address);
  std::string s(to_string(bp.event));
  for (const trace::FieldTest& t : bp.conditions) {
    s += ' ';  // appended apart: GCC 12's -Wrestrict misfires on " " + std::string
    s += t.to_string();
  }
  return s;
}

std::optional<Breakpoint> parse_event_breakpoint(std::string_view text, std::string* error) {
  std::istringstream in{std::string(text)};
  std::string word;
  if (!(in >> word)) {
    *error = "expected an event kind (exit, ring, exception, walk, translation, any, vt-exit)";
    return std::nullopt;
  }
  Breakpoint bp;
  bp.kind = Breakpoint::Kind::kEvent;
  const auto kind = parse_step_kind(word);
  if (!kind || *kind == StepKind::kInstruction) {
    *error = "'" + word + "' is not an event kind a breakpoint can watch (exit, ring, exception, "
             "walk, translation, any, vt-exit)";
    return std::nullopt;
  }
  bp.event = *kind;
  while (in >> word) {
    auto t = trace::FieldTest::parse(word, event_mask(bp.event), error);
    if (!t) return std::nullopt;
    bp.conditions.push_back(std::move(*t));
  }
  return bp;
}

std::string_view to_string(Command::Op op) {
  switch (op) {
    case Command::Op::kReset: return "reset";
    case Command::Op::kStep: return "step";
    case Command::Op::kStepTo: return "step-to";
    case Command::Op::kRun: return "run";
    case Command::Op::kPause: return "pause";
    case Command::Op::kStepBack: return "step-back";
    case Command::Op::kSetBreakpoints: return "set-breakpoints";
    case Command::Op::kSetMemoryWindow: return "set-memory-window";
    case Command::Op::kSetVmcs: return "set-vmcs";
  }
  return "?";
}

}  // namespace trapscope::viz
