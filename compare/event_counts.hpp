// compare/event_counts.hpp — what a comparison counts from the events of one run: traps, VM
// exits of the VT-x model, hypercalls, callouts, translations, exceptions, kernel entries, and
// the row's entries into the VMM by cause (compare/cost_model.hpp, [SECTION] Causes). An
// EventSink: the backend hands it every event of the run (trace/event.hpp); it keeps counts.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <unordered_map>

#include "compare/cost_model.hpp"
#include "trace/event.hpp"
#include "trace/recorder.hpp"

namespace trapscope::compare {

// The cause of an entry into the VMM made by this instruction (a trap or a callout), from its
// disassembly ("mov cr3, rax" → kCrAccess, "out dx, al" → kIo, …).
Cause cause_of_instruction(std::string_view text);

// Which events are the row's entries into the VMM: the KVM backend's VM exits (KVM, and the
// simulator's emulation row, whose VMM exits the same way), the traps of trap-and-emulate, the
// VT-x model's VM exits (vt, pv), BT's callouts.
enum class Source : uint8_t { kVmExits, kTraps, kVtExits, kCallouts };

// Counts what the table shows, from the events of one run.
class Counts final : public trace::EventSink {
 public:
  explicit Counts(Source s) : source_(s) {}
  void on_event(const trace::EventHeader& h) override;

  uint64_t traps = 0, vt_exits = 0, hypercalls = 0, translations = 0, callouts = 0,
           exceptions = 0;
  uint64_t vt_cycles = 0;          // Σ of the VT-x model's exit + entry costs (cycles)
  uint64_t kernel_entries = 0;     // CPL 3 → kernel by syscall, sysenter, int n, far call
  uint64_t callout_pt_writes = 0;  // shadow page-table writes made inside a callout
  uint64_t callout_exceptions = 0; // exceptions raised inside a callout
  std::array<uint64_t, kCauseCount> causes{};

 private:
  static Cause kvm_cause(const trace::VmExitEvent& e);
  static Cause vt_cause(const trace::VirtEvent& e);
  Cause instruction_cause(const trace::EventHeader& h, const uint8_t* insn, uint8_t len);

  static constexpr uint64_t kNoRip = ~0ull;
  Source source_;
  uint64_t last_callout_rip_ = kNoRip;
  std::unordered_map<uint64_t, Cause> cause_by_rip_;  // disassembled once per guest RIP
};

}  // namespace trapscope::compare
