#include "visualizer/core/live_controller.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "visualizer/core/describe.hpp"
#include "visualizer/core/disasm_window.hpp"
#include "visualizer/core/guest_view.hpp"
#include "platform/guest_paging.hpp"

namespace trapscope::viz {

using trace::EventType;
using trace::RunEndReason;

namespace {

constexpr uint32_t bit(EventType t) { return 1u << static_cast<unsigned>(t); }
constexpr size_t kPage = 4096;

bool same_registers(const x86::CpuState& a, const x86::CpuState& b) {
  if (std::memcmp(a.gpr, b.gpr, sizeof a.gpr) != 0) return false;
  if (a.rip != b.rip || a.rflags != b.rflags || a.cr0 != b.cr0 || a.cr2 != b.cr2 ||
      a.cr3 != b.cr3 || a.cr4 != b.cr4 || a.efer != b.efer) {
    return false;
  }
  for (int i = 0; i < x86::kSegCount; ++i) {
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
  command_.op = Command::Op::kReset;  // the worker starts in kStarting with it (taken_ = 1)
  thread_ = std::thread([this] { worker_main(); });
}

LiveController::~LiveController() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    request_ = Request::kQuit;
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
        if (request_ != Request::kQuit) request_ = Request::kPause;
        commands_.clear();
        if (active_) active_->request_stop();
        break;
      case Command::Op::kSetBreakpoints:
        breakpoints_ = std::move(c.breakpoints);
        break;
      case Command::Op::kSetVmcs:  // a running slice's next one takes it; a waiting state at once
        vmcs_pending_.push_back(c.text);
        commands_.push_back(std::move(c));
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
  return taken_ != answered_ || !commands_.empty() || !updates_.empty();
}

void LiveController::post(Update u, bool answers) {
  std::lock_guard<std::mutex> lock(mu_);
  if (answers) ++answered_;  // with the answer in the queue: busy() until poll() takes it
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

// [SECTION] Run states

std::string_view to_string(LiveState s) {
  switch (s) {
    case LiveState::kStarting: return "starting";
    case LiveState::kPaused: return "paused";
    case LiveState::kRunning: return "running";
    case LiveState::kStepping: return "stepping";
    case LiveState::kSteppingBack: return "stepping back";
    case LiveState::kFinished: return "finished";
    case LiveState::kFailed: return "failed";
    case LiveState::kExited: return "exited";
  }
  return "?";
}

bool LiveController::allowed(LiveState from, LiveState to) {
  using S = LiveState;
  switch (from) {
    case S::kStarting:
      return to == S::kPaused || to == S::kFailed;
    case S::kPaused:  // a command taken, refused (stays) or quit
      return to == S::kStarting || to == S::kRunning || to == S::kStepping ||
             to == S::kSteppingBack || to == S::kPaused || to == S::kExited;
    case S::kRunning:
    case S::kStepping:
    case S::kSteppingBack:
      return to == S::kPaused || to == S::kFinished;
    case S::kFinished:  // only a reset or a step back goes on
      return to == S::kStarting || to == S::kSteppingBack || to == S::kFinished ||
             to == S::kExited;
    case S::kFailed:  // only a reset goes on
      return to == S::kStarting || to == S::kFailed || to == S::kExited;
    case S::kExited:
      return false;
  }
  return false;
}

RunState LiveController::shown(LiveState s) {
  switch (s) {
    case LiveState::kStarting: return RunState::kStarting;
    case LiveState::kPaused: return RunState::kIdle;
    case LiveState::kRunning:
    case LiveState::kStepping:
    case LiveState::kSteppingBack: return RunState::kRunning;
    case LiveState::kFinished: return RunState::kFinished;
    case LiveState::kFailed: return RunState::kError;
    case LiveState::kExited: return RunState::kIdle;
  }
  return RunState::kIdle;
}

void LiveController::worker_main() {
  while (state_ != LiveState::kExited) {
    try {
      enter(run_state());
      if (answer_) reply(*std::exchange(answer_, std::nullopt));
    } catch (const std::exception& e) {
      say(std::string(to_string(command_.op)) + " failed: " + e.what(), true);
      answer_.reset();
      enter(recovered());
      reply({});
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  active_ = nullptr;
  backend_.reset();
}

LiveState LiveController::run_state() {
  switch (state_) {
    case LiveState::kStarting: return starting();
    case LiveState::kPaused: return paused();
    case LiveState::kRunning: return running();
    case LiveState::kStepping: return stepping();
    case LiveState::kSteppingBack: return stepping_back();
    case LiveState::kFinished: return finished();
    case LiveState::kFailed: return failed();
    case LiveState::kExited: break;
  }
  throw std::logic_error("live controller: no function for state " +
                         std::string(to_string(state_)));
}

void LiveController::enter(LiveState next) {
  if (!allowed(state_, next)) {
    throw std::logic_error("live controller: no transition from " + std::string(to_string(state_)) +
                           " to " + std::string(to_string(next)));
  }
  state_ = next;
}

LiveState LiveController::recovered() const {
  return end_ ? LiveState::kFinished : backend_ ? LiveState::kPaused : LiveState::kFailed;
}

bool LiveController::take_command() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return request_ == Request::kQuit || !commands_.empty(); });
  if (request_ == Request::kQuit) return false;
  command_ = std::move(commands_.front());
  commands_.pop_front();
  ++taken_;
  request_ = Request::kNone;  // a pause ends the command it found, not the next one
  return true;
}

LiveState LiveController::stay(LiveState here) {
  answer_ = Answer{};
  return here;
}

LiveState LiveController::refuse(std::string why, LiveState stay, std::optional<uint64_t> select) {
  say(std::move(why), true);
  answer_ = Answer{false, select};
  return stay;
}

void LiveController::set_active(backend::Backend* b) {
  std::lock_guard<std::mutex> lock(mu_);
  active_ = b;
}

// Waiting states: take the next command, go where it is carried out, or refuse it and stay.

LiveState LiveController::paused() {
  if (!take_command()) return LiveState::kExited;
  switch (command_.op) {
    case Command::Op::kReset: return LiveState::kStarting;
    case Command::Op::kStep: return LiveState::kStepping;
    case Command::Op::kStepTo:
      return command_.kind == StepKind::kInstruction ? LiveState::kStepping : LiveState::kRunning;
    case Command::Op::kRun: return LiveState::kRunning;
    case Command::Op::kStepBack:
      // A refused step back still selects the newest event, as a step back does.
      if (!caps_.step_back) return refuse(caps_.step_back_why, LiveState::kPaused, last_event());
      if (instructions_ == 0) {
        return refuse("already at the start: nothing to step back to", LiveState::kPaused,
                      last_event());
      }
      return LiveState::kSteppingBack;
    case Command::Op::kSetVmcs:
      apply_vmcs();
      return stay(LiveState::kPaused);
    default:  // a memory window (the answer publishes it), breakpoints, a pause
      return stay(LiveState::kPaused);
  }
}

LiveState LiveController::finished() {
  if (!take_command()) return LiveState::kExited;
  switch (command_.op) {
    case Command::Op::kReset: return LiveState::kStarting;
    case Command::Op::kStepBack:
      if (!caps_.step_back) return refuse(caps_.step_back_why, LiveState::kFinished, last_event());
      return LiveState::kSteppingBack;
    case Command::Op::kStep:
    case Command::Op::kStepTo:
    case Command::Op::kRun:
      return refuse("the guest's run has ended (" + std::string(trace::to_string(*end_)) +
                        "): reset" + std::string(caps_.step_back ? " or step back" : "") +
                        " to go on",
                    LiveState::kFinished);
    case Command::Op::kSetVmcs:
      apply_vmcs();
      return stay(LiveState::kFinished);
    default:  // a memory window (the answer publishes it), breakpoints, a pause
      return stay(LiveState::kFinished);
  }
}

LiveState LiveController::failed() {
  if (!take_command()) return LiveState::kExited;
  switch (command_.op) {
    case Command::Op::kReset: return LiveState::kStarting;
    case Command::Op::kStepBack:
      return refuse(caps_.step_back ? "no machine to step back" : caps_.step_back_why,
                    LiveState::kFailed);
    case Command::Op::kStep:
    case Command::Op::kStepTo:
    case Command::Op::kRun:
      return refuse("no machine: " + start_error_, LiveState::kFailed);
    default:  // a memory window (the answer publishes it), breakpoints, a pause
      return stay(LiveState::kFailed);
  }
}

// Working states: carry out the command in hand, answer it, and wait again.

LiveState LiveController::starting() {
  do_reset();
  answer_ = Answer{true, std::nullopt};
  return backend_ ? LiveState::kPaused : LiveState::kFailed;
}

LiveState LiveController::stepping() {
  const uint64_t before = events_;
  do_step(command_.op == Command::Op::kStep ? std::max<uint64_t>(command_.count, 1) : 1);
  answer_ = Answer{false, events_ > before ? last_event() : std::nullopt};
  return end_ ? LiveState::kFinished : LiveState::kPaused;
}

LiveState LiveController::running() {
  answer_ = Answer{false, command_.op == Command::Op::kRun
                              ? do_run(StepKind::kAny, true)
                              : do_run(command_.kind, false, command_.mask)};
  return end_ ? LiveState::kFinished : LiveState::kPaused;
}

LiveState LiveController::stepping_back() {
  do_step_back(std::max<uint64_t>(command_.count, 1));
  answer_ = Answer{false, last_event()};
  return end_ ? LiveState::kFinished : LiveState::kPaused;
}

void LiveController::say(std::string message, bool error) {
  message_ = std::move(message);
  message_error_ = error;
}

Status LiveController::status() const {
  Status s;
  s.state = shown(state_);
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
  s.cpl_only_at_exits = kvm();
  if (!kvm()) {
    s.technique = source_.config.technique;
    s.deprivilege = source_.config.deprivilege;
  }
  return s;
}

void LiveController::reply(const Answer& a) {
  ++commands_done_;
  publish(true, a.reset, a.select, /*answers=*/true);
}

void LiveController::publish(bool stop, bool reset, std::optional<uint64_t> select, bool answers) {
  sink_->flush();
  MachineState s;
  s.status = status();
  s.stop = stop;
  s.reset = reset;
  s.select = select;
  if (backend_) {
    s.vmcs = backend_->vmcs();
    s.console = backend_->devices().console.text();
    if (stop) {
      s.has_registers = true;
      s.registers = backend_->registers();
      s.status.real = sim::virt::real_privilege(s.status.technique, s.status.deprivilege,
                                                s.registers.cpl(), s.registers.cr0 & 1);
      s.code = read_code(s.registers);
      s.memory = read_memory();
    }
  }
  post(std::move(s), answers);
}

CodeWindow LiveController::read_code(const x86::CpuState& r) const {
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
                       [&] { return request_ != Request::kNone; });
}

// [SECTION] Commands

void LiveController::do_reset() {
  set_active(nullptr);
  end_.reset();
  backend_.reset();
  snaps_.clear();
  base_ = {};
  events_ = 0;
  event_bytes_ = 0;
  dropped_ = 0;
  instructions_ = 0;
  exit_code_ = 0;
  start_error_.clear();
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
    start_error_ = std::string("cannot start the ") +
                   (kvm() ? "KVM machine" : "simulator") + ": " + e.what();
    say(start_error_, true);
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

void LiveController::finish(const backend::RunOutcome& r) {
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
bool LiveController::returns_to_user_natively(const x86::CpuState& r) const {
  if (!kvm() || source_.host != "kvm_pvm") return false;
  const std::vector<DisasmLine> at = disassemble_around(read_code(r), 0, 0);
  if (at.empty() || !at.front().ok || !at.front().is_rip) return false;
  const std::string& t = at.front().text;
  return t.rfind("iret", 0) == 0 || t.rfind("sysret", 0) == 0 || t.rfind("retf", 0) == 0 ||
         t.rfind("ret far", 0) == 0;
}

void LiveController::do_step(uint64_t count) {
  const uint8_t cpl_before = backend_->registers().cpl();
  uint64_t done = 0;
  bool ran_natively = false;
  for (; done < count; ++done) {
    if (stop_requested()) break;
    ran_natively = ran_natively || returns_to_user_natively(backend_->registers());
    set_active(backend_.get());
    sink_->watch(0);
    const backend::RunOutcome r = backend_->step(sink_.get());
    set_active(nullptr);
    instructions_ += r.instructions;
    if (r.reason == RunEndReason::kStep || r.reason == RunEndReason::kInstructionLimit) {
      snapshot_if_due();
      continue;
    }
    // A pause that stopped this step before its instruction: paused, not an error.
    if (r.reason == RunEndReason::kStopped && stop_requested()) break;
    if (trace::ends_guest_run(r.reason)) {
      finish(r);
      return;
    }
    std::string m = "step stopped: " + std::string(trace::to_string(r.reason));
    if (kvm() && r.reason == RunEndReason::kTimeLimit) {
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

// [SECTION] Running: run, or step to an event

// What a run stops at, fixed for the whole command.
struct LiveController::RunPlan {
  bool free_run = false;     // run: until a breakpoint, the end or a pause
  uint32_t target_mask = 0;  // step to: stop after an event of these types (1 << EventType)
  bool animated = false;     // one instruction at a time at speed_ (a free run with a speed)
};

// One backend run call: the breakpoints in force when it starts, and what stops it.
struct LiveController::Slice {
  std::vector<Breakpoint> breakpoints;  // a copy: the GUI may change them meanwhile
  std::vector<uint64_t> addresses;      // the enabled address breakpoints
  bool per_instruction = false;         // one instruction (animated, or several addresses)
  backend::StopCondition stop;
};

std::optional<uint64_t> LiveController::do_run(StepKind target, bool free_run, uint32_t mask) {
  const std::optional<RunPlan> plan = plan_run(target, free_run, mask);
  if (!plan) return std::nullopt;
  publish(false, false, std::nullopt);  // "running"
  std::optional<uint64_t> select;
  for (bool done = false; !done;) {
    if (stop_requested()) {
      say_paused();
      break;
    }
    const std::optional<Slice> slice = plan_slice(*plan);
    if (!slice) break;
    const std::optional<backend::RunOutcome> r = run_slice(*slice);
    if (!r || event_limit_hit()) break;
    done = stop_after(*plan, *slice, *r, select);
  }
  return end_run(*plan, select);
}

// What the command asks for, or nullopt (said why) when this machine cannot observe it.
std::optional<LiveController::RunPlan> LiveController::plan_run(StepKind target, bool free_run,
                                                                 uint32_t mask) {
  RunPlan plan;
  plan.free_run = free_run;
  plan.target_mask = free_run ? 0 : mask ? mask : event_mask(target);
  if (kvm() && !free_run && !mask && (target == StepKind::kAny || target == StepKind::kVmExit)) {
    plan.target_mask = bit(EventType::kVmExit);  // KVM has no VT-x model transitions
  }
  if (!free_run && mask && kvm() && (mask & ~bit(EventType::kVmExit))) {
    say("KVM reports only VM exits: " + caps_.step_kinds_why, true);
    return std::nullopt;
  }
  if (!free_run && !mask) {
    if (plan.target_mask == 0) {
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
  plan.animated = free_run && speed_.load() > 0;
  return plan;
}

// Applies the VMCS changes sent since the last call, in order; a list that cannot be applied
// is refused whole, with the reason (sim/virt/vmcs.hpp apply_vmcs_spec).
void LiveController::apply_vmcs() {
  std::vector<std::string> specs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    specs.swap(vmcs_pending_);
  }
  if (specs.empty() || !backend_) return;
  std::optional<sim::virt::VmcsControls> c = backend_->vmcs();
  if (!c) {
    say("the VMCS belongs to the simulator's VT-x model: run with --backend sim --technique vt "
        "(or pv) to change its controls",
        true);
    return;
  }
  std::string done;
  for (const std::string& spec : specs) {
    std::string error;
    if (!sim::virt::apply_vmcs_spec(*c, spec, &error)) {
      say("VMCS: " + error, true);
      return;
    }
    done += (done.empty() ? "" : ",") + spec;
  }
  backend_->set_vmcs(*c);
  source_.config.vmcs = *c;  // a reset keeps them
  say("VMCS: " + done + " — the next instruction follows the new controls");
}

// The next slice under the breakpoints set now, or nullopt (said why) if KVM cannot take them.
std::optional<LiveController::Slice> LiveController::plan_slice(const RunPlan& plan) {
  apply_vmcs();  // changed during a run: from the next slice on
  Slice s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s.breakpoints = breakpoints_;
  }
  uint32_t bp_mask = 0;
  for (const Breakpoint& b : s.breakpoints) {
    if (!b.enabled) continue;
    if (b.kind == Breakpoint::Kind::kAddress) s.addresses.push_back(b.address);
    else bp_mask |= event_mask(b.event);
  }
  // An `exit` breakpoint also watches the VT-x model's exits, which KVM never has.
  if (kvm() && (bp_mask & bit(EventType::kVmExit))) bp_mask &= ~bit(EventType::kVmTransition);
  if (kvm()) {
    if (s.addresses.size() > 1) {
      say("KVM takes one address breakpoint at a time (one hardware debug register through "
          "the backend's stop condition): disable the others",
          true);
      return std::nullopt;
    }
    if (bp_mask & ~bit(EventType::kVmExit)) {
      say("KVM reports only VM exits: breakpoints on rings, exceptions or page walks need "
          "--backend sim",
          true);
      return std::nullopt;
    }
  }
  s.per_instruction = plan.animated || (!kvm() && s.addresses.size() > 1);
  s.stop.timeout_s = 3600;
  s.stop.stop_on = plan.target_mask | bp_mask;
  if (!kvm()) s.stop.max_instructions = s.per_instruction ? 1 : source_.slice;
  if (s.addresses.size() == 1 && !s.per_instruction) {
    s.stop.has_breakpoint = true;
    s.stop.breakpoint = s.addresses[0];
  }
  return s;
}

// Runs one slice; nullopt (said why) when paused before it began or the backend refused it.
std::optional<backend::RunOutcome> LiveController::run_slice(const Slice& s) {
  sink_->watch(s.stop.stop_on);
  bool paused = false;
  {
    // Checked under the lock that send() holds to stop active_: a pause is seen here or stops
    // the run below.
    std::lock_guard<std::mutex> lock(mu_);
    paused = stop_requested();
    if (!paused) active_ = backend_.get();
  }
  if (paused) {
    say_paused();
    return std::nullopt;
  }
  backend::RunOutcome r;
  try {
    r = (kvm() && s.per_instruction) ? backend_->step(sink_.get())
                                     : backend_->run(s.stop, sink_.get());
  } catch (const std::invalid_argument& e) {
    set_active(nullptr);
    say(e.what(), true);
    return std::nullopt;
  }
  set_active(nullptr);
  instructions_ += r.instructions;
  return r;
}

bool LiveController::event_limit_hit() {
  if (!sink_->limit_hit) return false;
  say("stopped: the event limit (" + with_commas(source_.max_events) + " events or " +
          with_commas(source_.max_event_bytes >> 20) + " MiB) is reached; " +
          with_commas(dropped_) + " later events dropped; reset to start again",
      true);
  return true;
}

// True when the run stops after this slice (said why; `select` the event that explains it).
bool LiveController::stop_after(const RunPlan& plan, const Slice& s, const backend::RunOutcome& r,
                                std::optional<uint64_t>& select) {
  switch (r.reason) {
    case RunEndReason::kEventMatched:
      return stop_at_watched(plan, s, select);
    case RunEndReason::kBreakpoint:
      say("breakpoint at " + hex(backend_->registers().rip));
      return true;
    case RunEndReason::kInstructionLimit:
    case RunEndReason::kStep:
    case RunEndReason::kExitLimit:
      return !go_on_after_slice(plan, s);
    case RunEndReason::kStopped:
      if (stop_requested()) say_paused();
      else say("stopped");
      return true;
    default:
      if (trace::ends_guest_run(r.reason)) {
        end_guest_run(plan, s, r, select);
      } else {
        say("stopped: " + std::string(trace::to_string(r.reason)) +
                (r.detail.empty() ? "" : " — " + r.detail),
            true);
      }
      return true;
  }
}

// A watched event came by: stop at the first that is the target or meets a breakpoint's
// conditions. False when none does (an event breakpoint's kind came by, not its condition).
bool LiveController::stop_at_watched(const RunPlan& plan, const Slice& s,
                                     std::optional<uint64_t>& select) {
  for (const auto& [index, rec] : sink_->watched) {
    if (stops_at_mask(plan.target_mask, rec.header)) {
      select = index;
      const StepKind k = step_kind_of(rec.header.type);
      // A lesson's mask can stop at types no step kind names (a VT-x transition, a trap).
      say("stopped at " +
          std::string(k == StepKind::kInstruction && rec.header.type != EventType::kInstruction
                          ? trace::to_string(rec.header.type)
                          : describe(k)) +
          " #" + with_commas(index) + ": " + event_summary(rec));
      return true;
    }
    for (const Breakpoint& bp : s.breakpoints) {
      if (bp.enabled && matches(bp, rec)) {
        select = index;
        say("breakpoint " + std::to_string(bp.id) + " (" + to_string(bp) + ") hit at event #" +
            with_commas(index));
        return true;
      }
    }
  }
  return false;
}

// After a slice that stopped short (its instruction count, a single step, an exit count): a
// snapshot when due, an address breakpoint checked when stepping, an animation frame. True to
// go on.
bool LiveController::go_on_after_slice(const RunPlan& plan, const Slice& s) {
  snapshot_if_due();
  if (s.per_instruction) {
    const uint64_t rip = backend_->registers().rip;
    if (std::find(s.addresses.begin(), s.addresses.end(), rip) != s.addresses.end()) {
      say("breakpoint at " + hex(rip));
      return false;
    }
  }
  if (plan.animated) {
    const double speed = std::max(speed_.load(), 0.01);
    publish(true, false, last_event());
    if (!sleep_for(1.0 / speed)) {
      say_paused();
      return false;
    }
  }
  return true;
}

// The guest's run ended during the slice (trace::ends_guest_run).
void LiveController::end_guest_run(const RunPlan& plan, const Slice& s,
                                   const backend::RunOutcome& r, std::optional<uint64_t>& select) {
  finish(r);
  if (kvm() && !s.addresses.empty() && source_.host == "kvm_pvm") {
    // docs/kvm-hosts.md: on kvm_pvm CPL 3 code runs natively, out of the debug registers' reach.
    message_ += " (the address breakpoint at " + hex(s.addresses[0]) +
                " was not reached: on kvm_pvm only CPL 0 and real-mode code, which KVM "
                "emulates, can stop at an address)";
  }
  // The event that ended the run (a `hlt` exit) may be what was asked for.
  for (const auto& [index, rec] : sink_->watched) {
    bool hit = stops_at_mask(plan.target_mask, rec.header);
    for (const Breakpoint& bp : s.breakpoints) hit = hit || (bp.enabled && matches(bp, rec));
    if (hit) select = index;
  }
}

// The event to select once the run is over.
std::optional<uint64_t> LiveController::end_run(const RunPlan& plan,
                                                std::optional<uint64_t> select) {
  if (!select && (end_ || plan.free_run)) select = last_event();
  // A pause (breakpoint, step-to) does not report the translation cache's execution counts
  // (a run reports them when it ends); the user looks now, so they are made current here,
  // after the event to select.
  if (backend_ && !end_) {
    backend_->report_bt_counts(*sink_);
    sink_->flush();
  }
  return select;
}

void LiveController::say_paused() { say("paused at rip=" + hex(backend_->registers().rip)); }

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
  const platform::Devices& now = backend_->devices();  // later on the same run: see Snap
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

// Entered from kPaused (not at the start) or kFinished, on the simulator (paused(), finished()).
void LiveController::do_step_back(uint64_t count) {
  publish(false, false, std::nullopt);  // "running"

  const x86::CpuState now = backend_->registers();
  const uint64_t here = instructions_;
  // Is the machine on the boundary after `here` instructions, or past it (an exception was
  // delivered and no instruction retired since)? Re-execute to `here` and compare.
  restore_to(here);
  const bool boundary = same_registers(backend_->registers(), now);
  const uint64_t target = boundary ? (here >= count ? here - count : 0)
                                   : (here + 1 >= count ? here + 1 - count : 0);
  if (target != here) restore_to(target);
  say("stepped back to " + with_commas(instructions_) + " instructions retired (rip=" +
      hex(backend_->registers().rip) + ")");
}

}  // namespace trapscope::viz
