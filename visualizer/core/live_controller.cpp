#include "visualizer/core/live_controller.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "visualizer/core/describe.hpp"
#include "visualizer/core/disasm_window.hpp"
#include "visualizer/core/guest_view.hpp"
#include "vmm/guest_paging.hpp"

namespace trapscope::viz {

using trace::EventType;
using trace::RunEndReason;

namespace {

constexpr uint32_t bit(EventType t) { return 1u << static_cast<unsigned>(t); }
constexpr size_t kPage = 4096;

bool same_registers(const sim::CpuState& a, const sim::CpuState& b) {
  if (std::memcmp(a.gpr, b.gpr, sizeof a.gpr) != 0) return false;
  if (a.rip != b.rip || a.rflags != b.rflags || a.cr0 != b.cr0 || a.cr2 != b.cr2 ||
      a.cr3 != b.cr3 || a.cr4 != b.cr4 || a.efer != b.efer) {
    return false;
  }
  for (int i = 0; i < sim::kSegCount; ++i) {
    if (a.seg[i].selector != b.seg[i].selector || a.seg[i].base != b.seg[i].base) return false;
  }
  return true;
}

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

// [SECTION] Sink: backend events → batches for the model

class LiveController::Sink final : public trace::EventSink {
 public:
  explicit Sink(LiveController& c) : c_(c) { buffer_.reserve(kFlushBytes); }

  void on_event(const trace::EventHeader& e) override {
    // A run that paused (step, slice, pause) is not the end of the guest's run: only a run end
    // that finishes the guest is an event worth showing.
    if (e.type == EventType::kRunEnd && e.size == sizeof(trace::RunEndEvent) &&
        !trace::ends_guest_run(reinterpret_cast<const trace::RunEndEvent&>(e).reason)) {
      return;
    }
    // The limits bound the model and the queue to it (trace/limits.hpp kModelLimitBytes).
    if (c_.events_ >= c_.source_.max_events ||
        c_.event_bytes_ + e.size > c_.source_.max_event_bytes) {
      ++c_.dropped_;
      if (!limit_hit) {
        limit_hit = true;
        if (c_.backend_) c_.backend_->request_stop();
      }
      return;
    }
    c_.event_bytes_ += e.size;
    const uint64_t index = c_.events_++;
    const auto* p = reinterpret_cast<const uint8_t*>(&e);
    buffer_.insert(buffer_.end(), p, p + e.size);
    if (watch_mask & bit(e.type) && watched.size() < 64) {
      EventRecord r;
      std::memcpy(&r, &e, std::min<size_t>(e.size, sizeof r));
      r.header.seq = index;
      watched.emplace_back(index, r);
    }
    if (buffer_.size() >= kFlushBytes) {
      flush();
    } else if (++since_check_ >= 256) {
      since_check_ = 0;
      if (now_ns() - last_flush_ns_ > 30'000'000) flush();
    }
  }

  void flush() {
    last_flush_ns_ = now_ns();
    if (buffer_.empty()) return;
    EventBatch b;
    b.records.swap(buffer_);
    c_.post(std::move(b));
    buffer_.reserve(kFlushBytes);
  }

  void watch(uint32_t mask) {
    watch_mask = mask;
    watched.clear();
  }

  uint32_t watch_mask = 0;
  std::vector<std::pair<uint64_t, EventRecord>> watched;  // events of watch_mask, this slice
  bool limit_hit = false;

 private:
  static constexpr size_t kFlushBytes = 1 << 20;
  LiveController& c_;
  std::vector<uint8_t> buffer_;
  unsigned since_check_ = 0;
  uint64_t last_flush_ns_ = 0;
};

// [SECTION] Construction, GUI-thread side

Capabilities LiveController::capabilities_for(backend::Kind kind, const std::string& host) {
  Capabilities c;
  c.live = true;
  c.address_breakpoints = true;
  if (kind == backend::Kind::kSim) {
    c.step_back = true;
    c.step_kinds = (1u << static_cast<int>(StepKind::kCount)) - 1;  // translations: --technique bt
    c.limits =
        "The simulator observes every instruction, exception, ring transition and page walk. "
        "Its VM exits are the events its VMM would see, with KVM's exit-reason numbers; it does "
        "not time its VMM, so handling times are 0.";
  } else {
    c.step_back_why =
        "KVM cannot step back: re-executing a guest to an earlier point needs a deterministic "
        "machine that counts retired instructions, and KVM does neither. Use --backend sim.";
    c.step_kinds = (1u << static_cast<int>(StepKind::kInstruction)) |
                   (1u << static_cast<int>(StepKind::kVmExit)) |
                   (1u << static_cast<int>(StepKind::kAny));
    c.step_kinds_why =
        "KVM reports only VM exits to the VMM: ring transitions, exceptions and page walks "
        "happen inside the guest without it. Use --backend sim to see them.";
    c.limits = "KVM (" + (host.empty() ? std::string("unknown module") : host) +
               ") reports only VM exits. Single-step and the address breakpoint use "
               "KVM_SET_GUEST_DEBUG (one hardware breakpoint).";
    if (host == "kvm_pvm") {
      c.limits +=
          " On this host (kvm_pvm) they work only for emulated code — CPL 0 and real mode: CPL 3 "
          "code runs natively and cannot be single-stepped or stopped at an address.";
    }
  }
  return c;
}

LiveController::LiveController(LiveSource source)
    : source_(std::move(source)),
      caps_(capabilities_for(source_.kind, source_.host)),
      memory_address_(source_.memory_address),
      memory_length_(source_.memory_length) {
  sink_ = std::make_unique<Sink>(*this);
  Command reset;
  reset.op = Command::Op::kReset;
  commands_.push_back(std::move(reset));
  thread_ = std::thread([this] { worker_main(); });
}

LiveController::~LiveController() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    quit_ = true;
    pause_ = true;
    commands_.clear();
    if (active_) active_->request_stop();
  }
  cv_.notify_all();
  thread_.join();
}

void LiveController::send(Command c) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    switch (c.op) {
      case Command::Op::kPause:
        pause_ = true;
        commands_.clear();
        if (active_) active_->request_stop();
        break;
      case Command::Op::kSetBreakpoints:
        breakpoints_ = std::move(c.breakpoints);
        break;
      case Command::Op::kSetMemoryWindow:
        memory_address_ = c.address;
        memory_length_ = std::min<uint32_t>(c.length, 1u << 20);
        commands_.push_back(std::move(c));  // publishes the new window
        break;
      default:
        commands_.push_back(std::move(c));
        break;
    }
  }
  cv_.notify_all();
}

void LiveController::restart(backend::Config config) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    next_config_ = std::move(config);
  }
  Command c;
  c.op = Command::Op::kReset;
  send(std::move(c));
}

void LiveController::set_speed(double ips) { speed_.store(std::max(0.0, ips)); }

bool LiveController::poll(Model& model) {
  std::vector<Update> updates;
  {
    std::lock_guard<std::mutex> lock(mu_);
    updates.swap(updates_);
  }
  for (Update& u : updates) model.apply(std::move(u));
  return !updates.empty();
}

bool LiveController::busy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return executing_ || !commands_.empty() || !updates_.empty();
}

void LiveController::post(Update u) {
  std::lock_guard<std::mutex> lock(mu_);
  // A fresh machine state replaces one the GUI has not seen yet (animated runs publish many).
  if (auto* s = std::get_if<MachineState>(&u); s && s->stop && !updates_.empty()) {
    if (auto* last = std::get_if<MachineState>(&updates_.back())) {
      s->reset = s->reset || last->reset;
      if (!s->select) s->select = last->select;
      updates_.back() = std::move(u);
      return;
    }
  }
  updates_.push_back(std::move(u));
}

// [SECTION] Worker loop

void LiveController::worker_main() {
  for (;;) {
    Command c;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return quit_ || !commands_.empty(); });
      if (quit_) break;
      c = std::move(commands_.front());
      commands_.pop_front();
      pause_ = false;
      executing_ = true;
    }
    try {
      execute(c);
    } catch (const std::exception& e) {
      say(std::string(to_string(c.op)) + " failed: " + e.what(), true);
      running_ = false;
      ++commands_done_;
      publish(true, false, std::nullopt);
    }
    std::lock_guard<std::mutex> lock(mu_);
    executing_ = false;
  }
  std::lock_guard<std::mutex> lock(mu_);
  active_ = nullptr;
  backend_.reset();
}

void LiveController::execute(const Command& c) {
  std::optional<uint64_t> select;
  const uint64_t events_before = events_;
  bool reset = false;
  switch (c.op) {
    case Command::Op::kReset:
      do_reset();
      reset = true;
      break;
    case Command::Op::kStep:
      do_step(std::max<uint64_t>(c.count, 1));
      if (events_ > events_before) select = events_ - 1;
      break;
    case Command::Op::kStepTo:
      if (c.kind == StepKind::kInstruction) {
        do_step(1);
        if (events_ > events_before) select = events_ - 1;
      } else {
        select = do_run(c.kind, false, c.mask);
      }
      break;
    case Command::Op::kRun:
      select = do_run(StepKind::kAny, true);
      break;
    case Command::Op::kStepBack:
      do_step_back(std::max<uint64_t>(c.count, 1));
      if (events_ > 0) select = events_ - 1;
      break;
    case Command::Op::kSetMemoryWindow:
    case Command::Op::kSetBreakpoints:
    case Command::Op::kPause:
      break;
  }
  running_ = false;
  ++commands_done_;
  publish(true, reset, select);
}

void LiveController::say(std::string message, bool error) {
  message_ = std::move(message);
  message_error_ = error;
}

Status LiveController::status() const {
  Status s;
  s.state = failed_     ? RunState::kError
            : running_  ? RunState::kRunning
            : finished_ ? RunState::kFinished
                        : RunState::kIdle;
  s.backend = source_.kind == backend::Kind::kSim ? "simulator"
              : "KVM (" + (source_.host.empty() ? std::string("?") : source_.host) + ")";
  s.source = source_.name;
  s.message = message_;
  s.message_is_error = message_error_;
  s.end = end_;
  s.exit_code = exit_code_;
  s.instructions_known = source_.kind == backend::Kind::kSim;
  s.instructions = instructions_;
  s.commands_done = commands_done_;
  return s;
}

void LiveController::publish(bool stop, bool reset, std::optional<uint64_t> select) {
  sink_->flush();
  MachineState s;
  s.status = status();
  s.stop = stop;
  s.reset = reset;
  s.select = select;
  if (backend_) {
    s.console = backend_->devices().console.text();
    if (stop) {
      s.has_registers = true;
      s.registers = backend_->registers();
      s.code = read_code(s.registers);
      s.memory = read_memory();
    }
  }
  post(std::move(s));
}

CodeWindow LiveController::read_code(const sim::CpuState& r) const {
  return code_window(backend_->memory(), r);
}

MemoryWindow LiveController::read_memory() const {
  uint64_t address, length;
  {
    std::lock_guard<std::mutex> lock(mu_);
    address = memory_address_;
    length = memory_length_;
  }
  return memory_window(backend_->memory(), address, length);
}

bool LiveController::sleep_for(double seconds) {
  std::unique_lock<std::mutex> lock(mu_);
  return !cv_.wait_for(lock, std::chrono::duration<double>(seconds),
                       [&] { return pause_.load() || quit_; });
}

// [SECTION] Commands

void LiveController::do_reset() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_ = nullptr;
  }
  backend_.reset();
  snaps_.clear();
  base_ = {};
  events_ = 0;
  event_bytes_ = 0;
  dropped_ = 0;
  instructions_ = 0;
  finished_ = false;
  failed_ = false;
  end_.reset();
  exit_code_ = 0;
  sink_->limit_hit = false;
  post(Truncate{0});
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (next_config_) source_.config = *std::exchange(next_config_, std::nullopt);
  }
  try {
    backend_ = backend::make_backend(source_.kind, source_.config);
    backend_->load(source_.image);
  } catch (const std::exception& e) {
    backend_.reset();
    failed_ = true;
    say(std::string("cannot start the ") +
            (source_.kind == backend::Kind::kKvm ? "KVM machine" : "simulator") + ": " + e.what(),
        true);
    return;
  }
  if (source_.kind == backend::Kind::kSim) {
    base_ = backend_->snapshot();
    Snap first;
    first.state = base_;
    first.state.memory.clear();
    snaps_.push_back(std::move(first));
  }
  say("loaded " + source_.name + " (" + std::to_string(source_.image.size()) + " bytes) at " +
      hex(source_.config.load_address) + " on the " +
      (source_.kind == backend::Kind::kSim ? "simulator" : "KVM backend"));
}

bool LiveController::can_execute() {
  if (!backend_) {
    say("no machine: " + message_, true);
    return false;
  }
  if (finished_) {
    std::string why = end_ ? std::string(trace::to_string(*end_)) : "finished";
    say("the guest's run has ended (" + why + "): reset" +
            std::string(caps_.step_back ? " or step back" : "") + " to go on",
        true);
    return false;
  }
  return true;
}

void LiveController::finish(const backend::RunOutcome& r) {
  finished_ = true;
  end_ = r.reason;
  exit_code_ = r.exit_code;
  std::string m = "the guest's run ended: " + std::string(trace::to_string(r.reason));
  if (r.reason == RunEndReason::kGuestExit) m += " " + std::to_string(r.exit_code);
  if (!r.detail.empty()) {
    std::string d = r.detail.substr(0, r.detail.find('\n'));
    m += " — " + d;
  }
  say(m, r.reason != RunEndReason::kHalted &&
             !(r.reason == RunEndReason::kGuestExit && r.exit_code == 0));
}

// On kvm_pvm (docs/kvm-hosts.md) CPL 3 code runs natively, so a single step of a
// return to CPL 3 goes on until the guest is back in emulated code (a trap, an interrupt).
// True if the instruction at RIP is such a return: iret, sysret or a far return.
bool LiveController::returns_to_user_natively(const sim::CpuState& r) const {
  if (source_.kind != backend::Kind::kKvm || source_.host != "kvm_pvm") return false;
  const std::vector<DisasmLine> at = disassemble_around(read_code(r), 0, 0);
  if (at.empty() || !at.front().ok || !at.front().is_rip) return false;
  const std::string& t = at.front().text;
  return t.rfind("iret", 0) == 0 || t.rfind("sysret", 0) == 0 || t.rfind("retf", 0) == 0 ||
         t.rfind("ret far", 0) == 0;
}

void LiveController::do_step(uint64_t count) {
  if (!can_execute()) return;
  const uint8_t cpl_before = backend_->registers().cpl();
  uint64_t done = 0;
  bool ran_natively = false;
  for (; done < count; ++done) {
    if (pause_) break;
    ran_natively = ran_natively || returns_to_user_natively(backend_->registers());
    {
      std::lock_guard<std::mutex> lock(mu_);
      active_ = backend_.get();
    }
    sink_->watch(0);
    const backend::RunOutcome r = backend_->step(sink_.get());
    {
      std::lock_guard<std::mutex> lock(mu_);
      active_ = nullptr;
    }
    instructions_ += r.instructions;
    if (r.reason == RunEndReason::kStep || r.reason == RunEndReason::kInstructionLimit) {
      snapshot_if_due();
      continue;
    }
    if (trace::ends_guest_run(r.reason)) {
      finish(r);
      return;
    }
    std::string m = "step stopped: " + std::string(trace::to_string(r.reason));
    if (source_.kind == backend::Kind::kKvm && r.reason == RunEndReason::kTimeLimit) {
      m += " — KVM did not report the single step";
      if (cpl_before == 3) m += " (CPL 3 code runs natively on this host: no single-step there)";
    }
    say(m, true);
    return;
  }
  std::string m = "stepped " + std::to_string(done) + " instruction" + (done == 1 ? "" : "s") +
                  "; next rip=" + hex(backend_->registers().rip);
  if (ran_natively) {
    m += " — the step returned to CPL 3, which runs natively on kvm_pvm (no single-step there): "
         "the CPL 3 code ran on until the guest was back in code KVM emulates";
  }
  say(m);
}

std::optional<uint64_t> LiveController::do_run(StepKind target, bool free_run, uint32_t mask) {
  if (!can_execute()) return std::nullopt;
  const bool kvm = source_.kind == backend::Kind::kKvm;
  uint32_t target_mask = free_run ? 0 : mask ? mask : event_mask(target);
  if (kvm && !free_run && !mask && target == StepKind::kAny) target_mask = bit(EventType::kVmExit);
  if (!free_run && mask && kvm && (mask & ~bit(EventType::kVmExit))) {
    say("KVM reports only VM exits: " + caps_.step_kinds_why, true);
    return std::nullopt;
  }
  if (!free_run && !mask) {
    if (target_mask == 0) {
      say("cannot step to the next " + std::string(describe(target)) + ": " +
              caps_.step_kinds_why,
          true);
      return std::nullopt;
    }
    if (!(caps_.step_kinds & (1u << static_cast<int>(target)))) {
      say("cannot step to the next " + std::string(describe(target)) + " on KVM: " +
              caps_.step_kinds_why,
          true);
      return std::nullopt;
    }
  }
  running_ = true;
  publish(false, false, std::nullopt);  // "running"

  std::optional<uint64_t> select;
  const double speed = speed_.load();
  const bool animated = free_run && speed > 0;
  bool done = false;
  while (!done) {
    if (pause_) {
      say("paused at rip=" + hex(backend_->registers().rip));
      break;
    }
    std::vector<Breakpoint> bps;
    {
      std::lock_guard<std::mutex> lock(mu_);
      bps = breakpoints_;
    }
    std::vector<uint64_t> addresses;
    uint32_t bp_mask = 0;
    for (const Breakpoint& b : bps) {
      if (!b.enabled) continue;
      if (b.kind == Breakpoint::Kind::kAddress) addresses.push_back(b.address);
      else bp_mask |= event_mask(b.event);
    }
    if (kvm) {
      if (addresses.size() > 1) {
        say("KVM takes one address breakpoint at a time (one hardware debug register through "
            "the backend's stop condition): disable the others",
            true);
        break;
      }
      if (bp_mask & ~bit(EventType::kVmExit)) {
        say("KVM reports only VM exits: breakpoints on rings, exceptions or page walks need "
            "--backend sim",
            true);
        break;
      }
    }
    const bool per_instruction = animated || (!kvm && addresses.size() > 1);
    backend::StopCondition sc;
    sc.timeout_s = 3600;
    sc.stop_on = target_mask | bp_mask;
    if (!kvm) sc.max_instructions = per_instruction ? 1 : source_.slice;
    if (addresses.size() == 1 && !per_instruction) {
      sc.has_breakpoint = true;
      sc.breakpoint = addresses[0];
    }
    sink_->watch(sc.stop_on);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (pause_) continue;
      active_ = backend_.get();
    }
    backend::RunOutcome r;
    try {
      r = (kvm && per_instruction) ? backend_->step(sink_.get()) : backend_->run(sc, sink_.get());
    } catch (const std::invalid_argument& e) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        active_ = nullptr;
      }
      say(e.what(), true);
      break;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      active_ = nullptr;
    }
    instructions_ += r.instructions;
    if (sink_->limit_hit) {
      say("stopped: the event limit (" + with_commas(source_.max_events) + " events or " +
              with_commas(source_.max_event_bytes >> 20) + " MiB) is reached; " +
              with_commas(dropped_) + " later events dropped; reset to start again",
          true);
      break;
    }
    switch (r.reason) {
      case RunEndReason::kEventMatched: {
        for (const auto& [index, rec] : sink_->watched) {
          const uint32_t b = 1u << static_cast<unsigned>(rec.header.type);
          if (target_mask & b) {
            select = index;
            const StepKind k = step_kind_of(rec.header.type);
            // A lesson's mask can stop at types no step kind names (a VT-x transition, a trap).
            say("stopped at " +
                    std::string(k == StepKind::kInstruction && rec.header.type != EventType::kInstruction
                                    ? trace::to_string(rec.header.type)
                                    : describe(k)) +
                    " #" +
                with_commas(index) + ": " + event_summary(rec));
            done = true;
            break;
          }
          for (const Breakpoint& bp : bps) {
            if (bp.enabled && matches(bp, rec)) {
              select = index;
              say("breakpoint " + std::to_string(bp.id) + " (" + to_string(bp) + ") hit at event #" +
                  with_commas(index));
              done = true;
              break;
            }
          }
          if (done) break;
        }
        break;  // an event breakpoint's kind came by, but not its condition: go on
      }
      case RunEndReason::kBreakpoint:
        say("breakpoint at " + hex(backend_->registers().rip));
        done = true;
        break;
      case RunEndReason::kInstructionLimit:
      case RunEndReason::kStep:
      case RunEndReason::kExitLimit:
        snapshot_if_due();
        if (per_instruction) {
          const uint64_t rip = backend_->registers().rip;
          if (std::find(addresses.begin(), addresses.end(), rip) != addresses.end()) {
            say("breakpoint at " + hex(rip));
            done = true;
            break;
          }
        }
        if (animated) {
          const double s = std::max(speed_.load(), 0.01);
          publish(true, false, events_ ? std::optional<uint64_t>(events_ - 1) : std::nullopt);
          if (!sleep_for(1.0 / s)) {
            say("paused at rip=" + hex(backend_->registers().rip));
            done = true;
          }
        }
        break;
      case RunEndReason::kStopped:
        say(pause_ ? "paused at rip=" + hex(backend_->registers().rip) : "stopped");
        done = true;
        break;
      default:
        if (trace::ends_guest_run(r.reason)) {
          finish(r);
          if (kvm && !addresses.empty() && source_.host == "kvm_pvm") {
            // docs/kvm-hosts.md: on kvm_pvm CPL 3 code runs natively, out of the debug registers' reach.
            message_ += " (the address breakpoint at " + hex(addresses[0]) +
                        " was not reached: on kvm_pvm only CPL 0 and real-mode code, which KVM "
                        "emulates, can stop at an address)";
          }
          // The event that ended the run (a `hlt` exit) may be what was asked for.
          for (const auto& [index, rec] : sink_->watched) {
            bool hit = target_mask & (1u << static_cast<unsigned>(rec.header.type));
            for (const Breakpoint& bp : bps) hit = hit || (bp.enabled && matches(bp, rec));
            if (hit) select = index;
          }
        } else {
          say("stopped: " + std::string(trace::to_string(r.reason)) +
                  (r.detail.empty() ? "" : " — " + r.detail),
              true);
        }
        done = true;
        break;
    }
  }
  running_ = false;
  if (!select && events_ > 0 && (finished_ || free_run)) select = events_ - 1;
  // A pause (breakpoint, step-to) does not report the translation cache's execution counts
  // (a run reports them when it ends); the user looks now, so they are made current here,
  // after the event to select.
  if (backend_ && !finished_) {
    backend_->report_bt_counts(*sink_);
    sink_->flush();
  }
  return select;
}

// [SECTION] Snapshots and step back

void LiveController::snapshot_if_due() {
  if (source_.kind != backend::Kind::kSim || snaps_.empty()) return;
  auto it = std::upper_bound(snaps_.begin(), snaps_.end(), instructions_,
                             [](uint64_t n, const Snap& s) { return n < s.state.instructions; });
  if (it != snaps_.begin() && instructions_ - (it - 1)->state.instructions < source_.snapshot_interval) {
    return;
  }
  if (it != snaps_.end() && it->state.instructions - instructions_ < source_.snapshot_interval) {
    return;
  }
  // A snapshot holds no TLB and a restore flushes it; flush the running machine's too (a
  // context switch would), so that re-execution from here records the same page walks.
  backend_->set_registers(backend_->registers());
  Snap s;
  s.state = backend_->snapshot();
  s.events = events_;
  s.console_bytes = s.state.devices.console.size();
  s.mmio_writes = s.state.devices.mmio_writes.size();
  s.state.devices.console = {};
  s.state.devices.mmio_writes = {};
  const std::vector<uint8_t>& mem = s.state.memory;
  for (size_t off = 0; off + kPage <= mem.size() && off + kPage <= base_.memory.size(); off += kPage) {
    if (std::memcmp(mem.data() + off, base_.memory.data() + off, kPage) != 0) {
      s.pages.emplace_back(static_cast<uint32_t>(off / kPage),
                           std::vector<uint8_t>(mem.begin() + static_cast<ptrdiff_t>(off),
                                                mem.begin() + static_cast<ptrdiff_t>(off + kPage)));
    }
  }
  s.state.memory.clear();
  s.state.memory.shrink_to_fit();
  it = std::upper_bound(snaps_.begin(), snaps_.end(), instructions_,
                        [](uint64_t n, const Snap& x) { return n < x.state.instructions; });
  snaps_.insert(it, std::move(s));
  if (snaps_.size() > 256) {  // thin out: keep the first and every other one after it
    std::vector<Snap> kept;
    for (size_t i = 0; i < snaps_.size(); ++i) {
      if (i == 0 || i % 2 == 1 || i + 1 == snaps_.size()) kept.push_back(std::move(snaps_[i]));
    }
    snaps_ = std::move(kept);
  }
}

bool LiveController::restore_to(uint64_t target) {
  auto it = std::upper_bound(snaps_.begin(), snaps_.end(), target,
                             [](uint64_t n, const Snap& s) { return n < s.state.instructions; });
  if (it == snaps_.begin()) return false;
  const Snap& s = *(it - 1);
  backend::Snapshot full = s.state;
  const vmm::Devices& now = backend_->devices();  // later on the same run: see Snap
  full.devices.console = now.console.text().substr(0, s.console_bytes);
  full.devices.mmio_writes.assign(
      now.mmio_writes.begin(),
      now.mmio_writes.begin() +
          static_cast<ptrdiff_t>(std::min(s.mmio_writes, now.mmio_writes.size())));
  full.memory = base_.memory;
  for (const auto& [page, bytes] : s.pages) {
    std::memcpy(full.memory.data() + static_cast<size_t>(page) * kPage, bytes.data(), kPage);
  }
  backend_->restore(full);
  events_ = s.events;
  instructions_ = s.state.instructions;
  finished_ = false;
  end_.reset();
  exit_code_ = 0;
  sink_->flush();
  post(Truncate{events_});
  if (target > instructions_) {
    backend::StopCondition sc;
    sc.timeout_s = 3600;
    sc.max_instructions = target - instructions_;
    sink_->watch(0);
    const backend::RunOutcome r = backend_->run(sc, sink_.get());
    instructions_ += r.instructions;
    if (trace::ends_guest_run(r.reason)) finish(r);
  }
  return true;
}

void LiveController::do_step_back(uint64_t count) {
  if (!caps_.step_back) {
    say(caps_.step_back_why, true);
    return;
  }
  if (!backend_) {
    say("no machine to step back", true);
    return;
  }
  if (instructions_ == 0 && !finished_) {
    say("already at the start: nothing to step back to", true);
    return;
  }
  running_ = true;
  publish(false, false, std::nullopt);
  const sim::CpuState now = backend_->registers();
  const uint64_t here = instructions_;
  // Is the machine on the boundary after `here` instructions, or past it (an exception was
  // delivered and no instruction retired since)? Re-execute to `here` and compare.
  restore_to(here);
  const bool boundary = same_registers(backend_->registers(), now);
  const uint64_t target = boundary ? (here >= count ? here - count : 0)
                                   : (here + 1 >= count ? here + 1 - count : 0);
  if (target != here) restore_to(target);
  running_ = false;
  say("stepped back to " + with_commas(instructions_) + " instructions retired (rip=" +
      hex(backend_->registers().rip) + ")");
}

}  // namespace trapscope::viz
