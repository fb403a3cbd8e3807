// visualizer/core/live_controller.hpp — a live machine behind the views: a backend (simulator
// or KVM, backend/backend.hpp) owned by a worker thread that executes Commands and sends the
// model Updates (after Firecracker's vCPU thread: a small state machine driven by messages).
//
// [SECTION] Threads
//   The backend is created, run and destroyed on the worker thread only (KVM wants vCPU ioctls
//   from one thread). The GUI thread calls send()/poll()/busy(); the only shared state is a
//   queue of commands and a queue of updates behind one mutex, held for a push or a swap.
//   Pause and breakpoint changes act at once; other commands queue behind the one running.
//
// [SECTION] Run states
//   The worker is a state machine with one function per state, each returning the next state
//   (as Firecracker's vCPU thread: src/vmm/src/vstate/vcpu/mod.rs, `paused()`, `running()`,
//   `exit()`). Commands are messages; a waiting state takes the next one and either moves to
//   the state that carries it out or refuses it with a message and stays (Firecracker answers
//   NotAllowed). Every command taken gets one answer, a MachineState, when its next state is
//   entered. LiveState below lists the states, allowed() the transitions (checked: an illegal
//   one is a logic_error, reported as the command's failure).
//
//     kStarting ─┬─► kPaused ──► kRunning | kStepping | kSteppingBack ──► kPaused | kFinished
//                └─► kFailed     reset (from kPaused, kFinished, kFailed) ──► kStarting
//                                step back (from kFinished) ──► kSteppingBack
//
//   Pause and quit are requests, not states: they end the state in progress at its next check
//   (between slices, steps or animation frames) and it returns to a waiting state; quit then
//   ends the worker (kExited) from there.
//
// [SECTION] Step back (simulator only)
//   The worker keeps snapshots: the state after loading, then one every `snapshot_interval`
//   retired instructions, memory stored as the pages that differ from the first. Stepping back
//   N instructions restores the nearest snapshot at or before the target and re-executes up to
//   it; the simulator is deterministic, so the events re-recorded are those that were dropped
//   (host timestamps aside). Under binary translation a snapshot also holds the translation
//   cache (sim/bt/translator.hpp [SECTION] Snapshots), so the run on from it does not
//   translate or link its units again. When the machine stopped mid-instruction (an exception delivered
//   but no instruction retired yet), "one instruction back" is the boundary just before it.
//   KVM cannot do this: it does not count retired instructions and its timing is the host's.
//
// [SECTION] What each backend observes
//   See capabilities_for(): the simulator sees every event type; KVM only VM exits, and on
//   this project's kvm_pvm hosts single-step and address breakpoints work only for emulated
//   code (CPL 0, real mode) — docs/kvm-hosts.md.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backend/backend.hpp"
#include "trace/limits.hpp"
#include "visualizer/core/driver.hpp"

namespace trapscope::viz {

enum class LiveState : uint8_t {
  kStarting,      // making the machine and loading the guest (first, and at every reset)
  kPaused,        // a machine between instructions, waiting for a command
  kRunning,       // run, or step to an event: backend runs, slice after slice, until a stop
  kStepping,      // N single instructions
  kSteppingBack,  // restoring a snapshot and re-executing to an earlier instruction (simulator)
  kFinished,      // the guest's run ended (trace::ends_guest_run): waits; reset or step back
  kFailed,        // no machine (it could not be made or loaded): waits; only a reset
  kExited,        // the worker has ended (the controller is being destroyed)
};
std::string_view to_string(LiveState state);

struct LiveSource {
  backend::Kind kind = backend::Kind::kSim;
  backend::Config config;
  std::vector<uint8_t> image;           // the flat guest binary
  std::string name;                     // the guest's name or file path
  std::string host;                     // KVM module ("kvm_pvm", …) for KVM
  uint64_t max_events = 20'000'000;     // a run stops when this many events are held
  uint64_t max_event_bytes = trace::kModelLimitBytes;  // … or this many bytes of records
  uint64_t snapshot_interval = 50'000;  // instructions between step-back snapshots
  uint64_t slice = 250'000;             // instructions per simulator run slice (pause latency)
  uint64_t memory_address = platform::kDefaultLoadAddress;  // the memory view's first window
  uint32_t memory_length = 4096;
};

class LiveController final : public Driver {
 public:
  // Starts the worker, which creates the machine and loads the guest (a kReset command).
  explicit LiveController(LiveSource source);
  ~LiveController() override;
  LiveController(const LiveController&) = delete;
  LiveController& operator=(const LiveController&) = delete;

  void send(Command command) override;
  // Starts the guest again on a new machine configured as `config` (a lesson's restart under
  // another technique or paging): a kReset that replaces the source's configuration first.
  void restart(backend::Config config);
  void set_speed(double instructions_per_second) override;
  bool poll(Model& model) override;
  bool busy() const override;
  const Capabilities& capabilities() const override { return caps_; }

  static Capabilities capabilities_for(backend::Kind kind, const std::string& host);
  // The run-state transitions the worker may make ([SECTION] Run states).
  static bool allowed(LiveState from, LiveState to);
  // What the views show for a state (Status::state).
  static RunState shown(LiveState state);

 private:
  class Sink;
  struct RunPlan;
  struct Slice;
  enum class Request : uint8_t { kNone, kPause, kQuit };  // from the GUI thread; quit wins
  struct Answer {  // the reply to the command in hand
    bool reset = false;
    std::optional<uint64_t> select;
  };
  struct Snap {
    backend::Snapshot state;  // memory left empty: see pages
    std::vector<std::pair<uint32_t, std::vector<uint8_t>>> pages;  // page number, 4 KiB
    uint64_t events = 0;
    // The console text and MMIO log only grow along a run, so a snapshot keeps their lengths
    // (state.devices holds them empty) and a restore takes that prefix of the current ones: up
    // to 256 snapshots of a 64 MiB console would otherwise hold 16 GiB (trace/limits.hpp).
    size_t console_bytes = 0;
    size_t mmio_writes = 0;
  };

  // Worker thread: the state machine
  void worker_main();
  LiveState run_state();  // the current state's function
  void enter(LiveState next);  // checked against allowed()
  LiveState recovered() const;  // where a command that threw leaves the machine
  bool take_command();  // blocks; the next command in command_, false: quit
  LiveState stay(LiveState here);  // a command done at once: answered, same state
  LiveState refuse(std::string why, LiveState stay, std::optional<uint64_t> select = {});
  // One function per state.
  LiveState starting();
  LiveState paused();
  LiveState running();
  LiveState stepping();
  LiveState stepping_back();
  LiveState finished();
  LiveState failed();
  bool stop_requested() const { return request_.load() != Request::kNone; }
  void set_active(backend::Backend* b);  // the backend request_stop() reaches

  // What the states do
  void do_reset();
  void do_step(uint64_t count);
  // The event to select; `mask` (event-type bits), when not 0, replaces target's types.
  std::optional<uint64_t> do_run(StepKind target, bool free_run, uint32_t mask = 0);
  // do_run's steps
  std::optional<RunPlan> plan_run(StepKind target, bool free_run, uint32_t mask);
  std::optional<Slice> plan_slice(const RunPlan& plan);
  std::optional<backend::RunOutcome> run_slice(const Slice& slice);
  bool event_limit_hit();
  bool stop_after(const RunPlan& plan, const Slice& slice, const backend::RunOutcome& r,
                  std::optional<uint64_t>& select);
  bool stop_at_watched(const RunPlan& plan, const Slice& slice, std::optional<uint64_t>& select);
  bool go_on_after_slice(const RunPlan& plan, const Slice& slice);
  void end_guest_run(const RunPlan& plan, const Slice& slice, const backend::RunOutcome& r,
                     std::optional<uint64_t>& select);
  std::optional<uint64_t> end_run(const RunPlan& plan, std::optional<uint64_t> select);
  void say_paused();
  void apply_vmcs();  // the kSetVmcs lists sent since the last call
  void do_step_back(uint64_t count);
  bool restore_to(uint64_t instructions);
  void snapshot_if_due();
  void finish(const backend::RunOutcome& r);
  void publish(bool stop, bool reset, std::optional<uint64_t> select, bool answers = false);
  void reply(const Answer& answer);  // the command in hand's answer
  void post(Update update, bool answers = false);
  void say(std::string message, bool error = false);
  Status status() const;
  bool kvm() const { return source_.kind == backend::Kind::kKvm; }
  std::optional<uint64_t> last_event() const {
    return events_ ? std::optional<uint64_t>(events_ - 1) : std::nullopt;
  }
  bool returns_to_user_natively(const x86::CpuState& r) const;
  CodeWindow read_code(const x86::CpuState& regs) const;
  MemoryWindow read_memory() const;
  bool sleep_for(double seconds);  // false if paused meanwhile

  LiveSource source_;
  Capabilities caps_;

  // Shared (mu_)
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Command> commands_;
  std::vector<Update> updates_;
  std::vector<Breakpoint> breakpoints_;
  std::vector<std::string> vmcs_pending_;  // kSetVmcs lists not applied yet
  std::optional<backend::Config> next_config_;  // restart(): taken by the next reset
  uint64_t memory_address_, memory_length_;
  uint64_t taken_ = 1;     // commands the worker took (the first: the constructor's reset)
  uint64_t answered_ = 0;  // … and answered (busy() while they differ)
  backend::Backend* active_ = nullptr;  // the backend inside run()/step(), for request_stop
  std::atomic<Request> request_{Request::kNone};
  std::atomic<double> speed_{0.0};

  // Worker only
  LiveState state_ = LiveState::kStarting;
  Command command_;                // the command in hand
  std::optional<Answer> answer_;   // its answer, posted once the next state is entered
  std::string start_error_;        // why the machine could not be made (kFailed)
  std::unique_ptr<backend::Backend> backend_;
  std::unique_ptr<Sink> sink_;
  backend::Snapshot base_;
  std::vector<Snap> snaps_;
  uint64_t events_ = 0;
  uint64_t event_bytes_ = 0;  // raw record bytes sent to the model (capped: kModelLimitBytes)
  uint64_t dropped_ = 0;      // events not sent after the event limit was hit
  uint64_t instructions_ = 0;
  std::optional<trace::RunEndReason> end_;  // how the guest's run ended (kFinished)
  uint32_t exit_code_ = 0;
  std::string message_;
  bool message_error_ = false;
  uint64_t commands_done_ = 0;

  std::thread thread_;
};

}  // namespace trapscope::viz
