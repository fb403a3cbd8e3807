// lessons/predicate.hpp — "an event of this kind whose fields have these values": what a lesson
// step runs until, and what it expects of the event it stopped at.
//
// Kinds and their fields (the names printed by `trapscope show`; trace/event.hpp):
//   vm_exit          reason (KVM_EXIT_<name> without the prefix: IO, HLT, MMIO, …), port,
//                    direction (in|out), size, value, mnemonic, cpl, rip; for the record of a
//                    hypercall (reason HYPERCALL): hypercall (its name: console_write,
//                    mmu_update, set_cr3, …), nr, result (0 or a negative error), arg1, arg2
//   ring_transition  from_cpl, to_cpl, cause (exception, interrupt, int, syscall, sysret, iret,
//                    far call, far return, far jump), vector, cpl, rip
//   exception        vector, error_code, software (0|1), cr2, cpl, rip
//   page_walk        linear, physical, levels, faulted (0|1), access (read|write|execute),
//                    user (0|1), cpl, rip
//   instruction      rip, cpl
//   vmm_trap         mnemonic, real_cpl, cpl, rip   (trap-and-emulate: a privileged instruction
//                    trapped to the VMM)
//   sensitive_no_trap  mnemonic, real_cpl, cpl, rip (trap-and-emulate: a sensitive instruction
//                    ran without trapping)
//   nested_walk      linear, gpa, hpa, references, guest_levels, faulted (0 no, 1 guest #PF,
//                    2 EPT violation), access (read|write|execute)   (EPT: the 2D walk)
//   shadow           action (hidden page fault, true page fault, page-table write, CR3 write,
//                    invlpg, write-protect, flush all), linear, gpa, access, user, error_code,
//                    exit_reason   (shadow paging: what the VMM did)
//   ept_violation    gpa, linear, qualification, exit_reason, resolution (mapped|mmio), level
//   bt_translate     unit, count (guest instructions), ident, non_ident, generation, guest_pa,
//                    rip   (binary translation: a translation unit entered the cache)
//   bt_chain         from_unit, to_unit, taken (0 fall-through, 1 taken branch), rip
//   bt_callout       unit, mnemonic, adaptive (0|1), cpl, rip
//   bt_invalidate    page (guest-physical), units, rip
//   vm_transition    exit_reason (Intel basic exit reason number), qualification, entry (0 exit,
//                    1 entry), cost_cycles, mnemonic, cpl, rip   (the VT-x model)
//   run_end          reason (halted, guest exit, triple fault, … as trace::to_string prints it),
//                    exit_code, exits
//   any              cpl, rip (the first event of any kind)
// Numbers are decimal or 0x-hexadecimal; a condition holds when the field equals the value.
// mnemonic: the instruction's first word as Zydis disassembles it ("popfd", "out", "sgdt").
// A lesson file's values are checked when it is read (value_problem): a number field takes a
// number in the field's range (cpl 0..3, port 0..0xffff, vector 0..255, 0|1 flags, …), result
// a signed number, a name field one of its names (any case), mnemonic one word.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trace/event.hpp"

namespace trapscope::lessons {

enum class EventKind : uint8_t {
  kVmExit, kRingTransition, kException, kPageWalk, kInstruction, kRunEnd, kAny,
  kVmmTrap, kSensitiveNoTrap, kVmTransition, kNestedWalk, kShadow, kEptViolation,
  kBtTranslate, kBtChain, kBtCallout, kBtInvalidate,
};
std::optional<EventKind> parse_event_kind(std::string_view text);
std::string_view to_string(EventKind kind);

struct Condition {
  std::string field;
  std::string text;                // the value as written (names, and for messages)
  std::optional<uint64_t> number;  // set when the value is a number
};

struct Predicate {
  EventKind kind = EventKind::kAny;
  std::vector<Condition> conditions;

  // True when `event` is of this kind and every condition holds. A RunEndEvent that only
  // marks where a run call paused (event matched, step, breakpoint, instruction limit) is not
  // a run_end.
  bool matches(const trace::EventHeader& event) const;
  // The first condition that does not hold for `event` (of this kind), as
  // "port is 0x3f8, expected 0xe9"; empty when all hold.
  std::string mismatch(const trace::EventHeader& event) const;
  std::string describe() const;  // "vm_exit reason=IO port=0xe9"
  // The bit of trace::EventType a backend run can stop on for this kind (0: run_end, any).
  uint32_t stop_mask() const;
};

// The fields a kind has (for validating lesson files); empty for an unknown kind.
std::vector<std::string_view> fields_of(EventKind kind);
// Why `text` cannot be the value of `field` (one of fields_of(kind)) in a condition, as
// "must be a number 0..0xffff" or "unknown 'x' (in, out)"; "" when it can.
std::string value_problem(EventKind kind, std::string_view field, std::string_view text);
// A decimal or 0x-hexadecimal number (the whole text), as a condition's value.
std::optional<uint64_t> parse_value_number(std::string_view text);
// The value of `field` in `event` as text ("IO", "0xe9", "3"); nullopt if the event has none.
std::optional<std::string> field_value(const trace::EventHeader& event, std::string_view field);

}  // namespace trapscope::lessons
