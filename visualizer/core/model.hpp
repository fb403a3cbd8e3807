// visualizer/core/model.hpp — everything the views show, as plain data, with no GUI: the
// "consumer" between the machine (a Driver: visualizer/core/driver.hpp) and the panels.
//
// [SECTION] Threading
//   The model belongs to one thread (the GUI's). A Driver's worker never touches it: it queues
//   Updates (event batches, truncations, machine states) and the GUI applies them with
//   Driver::poll() at the start of a frame, so a frame always draws one consistent state and
//   the only lock is the driver's short one around its queue.
//
// [SECTION] Indexes
//   Events are numbered in arrival order (EventStore). Per event type, a lane holds the sorted
//   numbers of that type's events (the timeline's rows and step-to searches) — the VM-exit lane
//   only VM exits, not the hypercall records that describe one (trace::is_vm_exit), the
//   VM-transition lane only the VT-x model's exits, not its entries (trace::is_vt_exit); CPL spans hold
//   where the CPL changed (the timeline's CPL band). Exit statistics are kept per exit reason
//   (trace/exit_stats.hpp: KVM's numbers, and the VT-x model's by basic exit reason); the translation cache's view model per unit and block
//   (tcache_view.hpp). The filter's
//   result is built incrementally (advance_filter).
//
// [SECTION] Machine state
//   At every stop the driver sends the registers, the console text, the code bytes around RIP
//   and the guest-physical memory window the memory view asked for. The model keeps the
//   previous stop's registers and memory so that views can highlight what changed.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "x86/state.hpp"
#include "sim/virt/technique.hpp"
#include "sim/virt/vmcs.hpp"
#include "trace/exit_stats.hpp"
#include "trace/limits.hpp"
#include "visualizer/core/console_commands.hpp"
#include "visualizer/core/event_store.hpp"
#include "visualizer/core/filter.hpp"
#include "visualizer/core/tcache_view.hpp"

namespace trapscope::viz {

// [SECTION] Machine state

enum class RunState : uint8_t {
  kStarting,  // the driver is creating the machine
  kIdle,      // stopped; can step or run
  kRunning,   // executing a command
  kFinished,  // the guest halted, exited or faulted: reset (or step back) to go on
  kError,     // the machine could not be created or loaded
  kTrace,     // a recorded trace: stepping moves through the recorded events
};
std::string_view to_string(RunState state);

struct Status {
  RunState state = RunState::kStarting;
  std::string backend;  // "simulator", "KVM (kvm_pvm)", "trace file"
  std::string source;   // the guest's name or the trace file's path
  std::string message;  // what the last command did, in words
  bool message_is_error = false;  // the message reports a refusal or failure
  std::optional<trace::RunEndReason> end;  // how the guest's run ended, once it has
  uint32_t exit_code = 0;                  // the guest's exit code (RunEndReason::kGuestExit)
  bool instructions_known = false;         // the simulator counts retired instructions; KVM not
  uint64_t instructions = 0;               // retired since reset
  uint64_t commands_done = 0;              // commands completed (scripts and tests wait on it)
  // KVM (live or a KVM trace): the CPL is seen only at VM exits; between them it is not
  // observed (the timeline's CPL lane says so instead of drawing a span).
  bool cpl_only_at_exits = false;
  // The simulator's technique (virtual vs real privilege: sim/virt/technique.hpp).
  sim::virt::Technique technique = sim::virt::Technique::kEmulation;
  uint8_t deprivilege = 1;
  // At the stop: what the machine really runs the guest at, when it differs from the
  // registers' (virtual) CPL, IF and IOPL (trap-and-emulate, BT in protected mode).
  std::optional<sim::virt::RealPrivilege> real;
};

// Code bytes around RIP, read through the guest's page tables (linear = cs_base + offset).
struct CodeWindow {
  bool valid = false;
  trace::CpuMode mode = trace::CpuMode::kUnknown;
  uint64_t rip = 0;      // offset in CS (what RIP holds)
  uint64_t cs_base = 0;  // 0 in 64-bit mode
  uint64_t start = 0;    // the CS offset of bytes[0]
  std::vector<uint8_t> bytes;
  std::vector<uint8_t> readable;  // 1 where the byte could be read (its page is mapped)
};

// Guest-physical bytes [address, address + bytes.size()).
struct MemoryWindow {
  uint64_t address = 0;
  std::vector<uint8_t> bytes;
};

// [SECTION] Updates (driver → model)

struct EventBatch {
  std::vector<uint8_t> records;  // event records back to back (each header.size bytes)
};
struct Truncate {
  uint64_t events = 0;  // keep events [0, events)
};
struct MachineState {
  Status status;
  bool stop = false;   // a new stop: registers/code/memory below are fresh
  bool reset = false;  // the machine was reset: forget the previous stop
  bool has_registers = false;
  x86::CpuState registers;
  std::string console;
  CodeWindow code;
  MemoryWindow memory;
  std::optional<uint64_t> select;  // the event that explains the stop
  // The VT-x model's VMCS controls (techniques vt, pv; sim/virt/vmcs.hpp); nullopt: no model.
  std::optional<sim::virt::VmcsControls> vmcs;
};
using Update = std::variant<EventBatch, Truncate, MachineState>;

// [SECTION] Model

class Model {
 public:
  // Events. At most limit_bytes() of event store (trace::kModelLimitBytes, trace/limits.hpp):
  // later events are dropped and counted (dropped(); the event list says so), except a run end.
  const EventStore& events() const { return store_; }
  void append(const trace::EventHeader& event);  // false-y records (bad size) are dropped
  void append_records(std::span<const uint8_t> records);
  void truncate(size_t n);
  void apply(Update update);
  uint64_t revision() const { return revision_; }  // changes whenever anything changes
  uint64_t dropped() const { return dropped_; }  // events past the cap since the last truncate
  size_t limit_bytes() const { return limit_bytes_; }
  void set_limit_bytes(size_t bytes) { limit_bytes_ = bytes; }  // tests

  // Indexes
  const std::vector<uint32_t>& lane(trace::EventType type) const;
  struct CplSpan {
    uint32_t first;  // event number where this CPL starts
    uint8_t cpl;
  };
  const std::vector<CplSpan>& cpl_spans() const { return cpl_spans_; }
  const trace::ExitStats& exit_stats() const { return stats_; }
  // Binary translation's translation cache, from the BT events (visualizer/core/tcache_view.hpp).
  const TranslationCacheView& tcache() const { return tcache_; }
  TranslationCacheView& tcache() { return tcache_; }  // its selection
  // The next (after `from`) or previous (before `from`) event of a kind; `from` = -1 searches
  // from the start.
  std::optional<size_t> find_next(StepKind kind, int64_t from) const;
  std::optional<size_t> find_prev(StepKind kind, int64_t from) const;

  // Selection: one event, shown selected by every view.
  int64_t selected() const { return selected_; }  // -1: none
  void select(int64_t event);
  uint64_t selection_serial() const { return selection_serial_; }  // bumps on every select()

  // Filter (event list)
  bool set_filter(std::string_view text, std::string* error);
  const EventFilter& filter() const { return filter_; }
  void advance_filter(size_t budget);  // test up to `budget` more events
  void advance_filter_for(double max_ms);  // test events for at most about max_ms
  bool filter_pending() const;
  double filter_progress() const;  // 0..1
  size_t visible_count() const;
  size_t visible(size_t row) const;           // row → event number
  std::optional<size_t> row_of(size_t event) const;  // event number → row, if visible

  // Machine state
  const Status& status() const { return status_; }
  bool has_registers() const { return has_registers_; }
  bool has_previous_registers() const { return has_previous_; }
  const x86::CpuState& registers() const { return registers_; }
  const x86::CpuState& previous_registers() const { return previous_; }
  const std::string& console() const { return console_; }
  const CodeWindow& code() const { return code_; }
  const MemoryWindow& memory() const { return memory_; }
  const MemoryWindow& previous_memory() const { return previous_memory_; }
  // The VT-x model's VMCS controls at the last update (the VMCS panel); nullopt: no VT-x model.
  const std::optional<sim::virt::VmcsControls>& vmcs() const { return vmcs_; }
  // The CPL the GUI shows: the registers' when there are (a live machine, a re-executed
  // simulator trace), else the selected event's (a trace without re-execution).
  std::optional<uint8_t> shown_cpl() const;
  std::optional<trace::CpuMode> shown_mode() const;

  // Breakpoints (the list the GUI edits; drivers get a copy with Command::kSetBreakpoints)
  std::vector<Breakpoint>& breakpoints() { return breakpoints_; }
  const std::vector<Breakpoint>& breakpoints() const { return breakpoints_; }
  uint32_t new_breakpoint_id() { return ++last_breakpoint_id_; }

  // Bytes held for events and their indexes.
  size_t memory_bytes() const;
  void reserve(size_t events, size_t payload_bytes);

 private:
  void index(size_t i, const trace::EventHeader& event);
  bool add(const trace::EventHeader& event);  // append and index, unless over the cap
  const trace::EventHeader& whole_run(const trace::EventHeader& event);
  trace::RunEndEvent run_end_{};  // whole_run()'s copy
  void rebuild_stats();
  void apply_state(MachineState&& s);

  EventStore store_;
  size_t limit_bytes_ = trace::kModelLimitBytes;
  uint64_t dropped_ = 0;
  std::vector<uint32_t> lanes_[static_cast<size_t>(trace::EventType::kMax)];
  std::vector<CplSpan> cpl_spans_;
  trace::ExitStats stats_;
  TranslationCacheView tcache_;
  int64_t selected_ = -1;
  uint64_t selection_serial_ = 0;
  EventFilter filter_;
  std::vector<uint32_t> filtered_;
  size_t filter_next_ = 0;
  Status status_;
  bool has_registers_ = false, has_previous_ = false;
  x86::CpuState registers_, previous_;
  std::string console_;
  CodeWindow code_;
  MemoryWindow memory_, previous_memory_;
  std::optional<sim::virt::VmcsControls> vmcs_;
  std::vector<Breakpoint> breakpoints_;
  uint32_t last_breakpoint_id_ = 0;
  uint64_t revision_ = 0;
};

}  // namespace trapscope::viz
