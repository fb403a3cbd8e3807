// visualizer/core/console_commands.hpp — what the GUI (or a script, or a test) can ask of a machine:
// plain-data commands, breakpoints and the kinds of event one can step to. No GUI, no backend.
//
// [SECTION] Step kinds      "step to the next event of a kind"
// [SECTION] Breakpoints     an address, or an event kind with conditions (after unicorn's hooks:
//                           a type, a condition, an id to remove it by)
// [SECTION] Commands        the messages the GUI sends to a Driver (visualizer/core/driver.hpp)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trace/condition.hpp"
#include "trace/event.hpp"

namespace trapscope::viz {

using EventRecord = trace::AnyEvent;

// [SECTION] Step kinds

enum class StepKind : uint8_t {
  kInstruction,  // one instruction
  kVmExit,       // the next VM exit
  kRing,         // the next ring transition (CPL change)
  kException,    // the next exception or interrupt delivered
  kPageWalk,     // the next guest page walk (a TLB miss)
  kTranslation,  // the next translation unit translated (binary translation: kBtTranslate)
  kAny,          // the next event of any kind except retired instructions
  kVtExit,       // the next VM exit of the VT-x model (--technique vt, pv: trace::is_vt_exit);
                 // kVmExit stops at these too, this kind at nothing else
  kCount,
};

std::string_view to_string(StepKind kind);        // "insn", "exit", "ring", …
std::string_view describe(StepKind kind);         // "VM exit", "ring transition", …
std::optional<StepKind> parse_step_kind(std::string_view text);  // also "vmexit", "exc", …

// The event types (bits 1 << trace::EventType) that end a step of this kind; 0 for kInstruction.
// kTranslation waits for a kBtTranslate, which only `--technique bt` records. kVmExit (and kAny)
// include the VT-x model's kVmTransition: a step stops at its VM exits, not at the VM entries
// nor at hypercall records (stops_at).
uint32_t event_mask(StepKind kind);
// Whether an event ends a step to `kind`: of event_mask(kind)'s types, and neither a VT-x VM
// entry nor a hypercall record (which tells the doorbell's exit again, trace::is_vm_exit).
bool stops_at(StepKind kind, const trace::EventHeader& event);
bool stops_at_mask(uint32_t mask, const trace::EventHeader& event);

// The step kind an event counts as (kInstruction for retired instructions and run ends).
StepKind step_kind_of(trace::EventType type);

// [SECTION] Breakpoints

struct Breakpoint {
  enum class Kind : uint8_t { kAddress, kEvent };
  uint32_t id = 0;
  bool enabled = true;
  Kind kind = Kind::kAddress;
  uint64_t address = 0;                // kAddress: stop before executing the instruction at RIP
  StepKind event = StepKind::kVmExit;  // kEvent: stop after an event of this kind …
  std::vector<trace::FieldTest> conditions;  // … whose fields pass every test
                                             //   (trace/condition.hpp: reason=IO port=0xe9)
};

// True if `event` satisfies an event breakpoint's kind and every condition it sets. Address
// breakpoints never match an event.
bool matches(const Breakpoint& bp, const EventRecord& event);

// "exit reason=IO port=0xe9", "0x8010": the form scripts and the breakpoint list use.
std::string to_string(const Breakpoint& bp);

// Parses the words after `break-event` in a script, or the breakpoint editor's condition text:
// KIND (a step kind: exit, ring, exception, walk, translation, any, vt-exit) and tests of the fields of
// its events in the condition language (trace/condition.hpp, docs/conditions.md), such as
// reason=IO port=0xe9 vector=14 cpl=3. nullopt with *error set if malformed.
std::optional<Breakpoint> parse_event_breakpoint(std::string_view text, std::string* error);

// Numbers as scripts write them: decimal, or hex with 0x (trace/condition.hpp).
using trace::parse_number;

// [SECTION] Commands

struct Command {
  enum class Op : uint8_t {
    kReset,            // back to the state just after loading the guest
    kStep,             // `count` instructions
    kStepTo,           // to the next event of `kind` (or a breakpoint, or the end)
    kRun,              // until a breakpoint, the end, or a pause (animated when a speed is set)
    kPause,            // stop a run or step-to at once (handled out of order)
    kStepBack,         // `count` instructions back (simulator: snapshot + re-execution)
    kSetBreakpoints,   // replace the breakpoint list
    kSetMemoryWindow,  // which guest-physical bytes to publish at each stop
    kSetVmcs,          // change the VT-x model's VMCS controls by `text`, a --vmcs list
                       // (sim/virt/vmcs.hpp); acts between slices of a run, and at once when
                       // the machine waits
  };
  Op op = Op::kStep;
  StepKind kind = StepKind::kInstruction;
  uint32_t mask = 0;  // kStepTo: stop at these event types (bits 1 << trace::EventType) instead
                      // of `kind`'s (a lesson step's predicate, lessons/step.hpp)
  uint64_t count = 1;
  std::vector<Breakpoint> breakpoints;
  uint64_t address = 0;
  uint32_t length = 0;
  std::string text;  // kSetVmcs: "+descriptor-table-exiting,-hlt-exiting"
};

std::string_view to_string(Command::Op op);

}  // namespace trapscope::viz
