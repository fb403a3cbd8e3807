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

 private:
  class Sink;
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

  // Worker thread
  void worker_main();
  void execute(const Command& c);
  void do_reset();
  void do_step(uint64_t count);
  // The event to select; `mask` (event-type bits), when not 0, replaces target's types.
  std::optional<uint64_t> do_run(StepKind target, bool free_run, uint32_t mask = 0);
  void do_step_back(uint64_t count);
  bool can_execute();
  bool restore_to(uint64_t instructions);
  void snapshot_if_due();
  void finish(const backend::RunOutcome& r);
  void publish(bool stop, bool reset, std::optional<uint64_t> select);
  void post(Update update);
  void say(std::string message, bool error = false);
  Status status() const;
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
  std::optional<backend::Config> next_config_;  // restart(): taken by the next reset
  uint64_t memory_address_, memory_length_;
  bool executing_ = false;
  bool quit_ = false;
  backend::Backend* active_ = nullptr;  // the backend inside run()/step(), for request_stop
  std::atomic<bool> pause_{false};
  std::atomic<double> speed_{0.0};

  // Worker only
  std::unique_ptr<backend::Backend> backend_;
  std::unique_ptr<Sink> sink_;
  backend::Snapshot base_;
  std::vector<Snap> snaps_;
  uint64_t events_ = 0;
  uint64_t event_bytes_ = 0;  // raw record bytes sent to the model (capped: kModelLimitBytes)
  uint64_t dropped_ = 0;      // events not sent after the event limit was hit
  uint64_t instructions_ = 0;
  bool finished_ = false;
  bool failed_ = false;
  bool running_ = false;
  std::optional<trace::RunEndReason> end_;
  uint32_t exit_code_ = 0;
  std::string message_;
  bool message_error_ = false;
  uint64_t commands_done_ = 0;

  std::thread thread_;
};

}  // namespace trapscope::viz
