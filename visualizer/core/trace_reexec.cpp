#include "visualizer/core/trace_reexec.hpp"

#include "visualizer/core/describe.hpp"

namespace trapscope::viz {

// Counts the re-executed events and compares each with the recording.
class TraceReexecution::Checker final : public trace::EventSink {
 public:
  Checker(TraceReexecution& r, const EventStore& recorded, uint64_t target)
      : r_(r), recorded_(recorded), target_(target) {}

  void on_event(const trace::EventHeader& e) override {
    // The run end of a run stopped here (after an event) is not part of the recording.
    if (e.type == trace::EventType::kRunEnd && e.size == sizeof(trace::RunEndEvent)) {
      const auto reason = reinterpret_cast<const trace::RunEndEvent&>(e).reason;
      if (reason == trace::RunEndReason::kEventMatched || reason == trace::RunEndReason::kStopped) {
        return;
      }
    }
    if (!mismatch.empty()) return;
    const uint64_t i = r_.produced_++;
    if (i >= recorded_.size()) {
      mismatch = "re-execution recorded more events than the trace holds (" +
                 with_commas(recorded_.size()) + ")";
    } else {
      EventRecord want;
      recorded_.load(static_cast<size_t>(i), &want);
      if (want.header.type != e.type || want.header.rip != e.rip) {
        mismatch = "re-execution diverged from the recording at event #" + with_commas(i) +
                   ": recorded " + std::string(trace::to_string(want.header.type)) + " at rip=" +
                   hex(want.header.rip) + ", re-executed " + std::string(trace::to_string(e.type)) +
                   " at rip=" + hex(e.rip);
      }
    }
  }
  bool done() const { return !mismatch.empty() || r_.produced_ > target_; }

  std::string mismatch;

 private:
  TraceReexecution& r_;
  const EventStore& recorded_;
  uint64_t target_;
};

TraceReexecution::TraceReexecution(std::vector<uint8_t> image, backend::Config config)
    : image_(std::move(image)), config_(std::move(config)) {
  restart();
}

TraceReexecution::~TraceReexecution() = default;

void TraceReexecution::restart() {
  machine_ = backend::make_backend(backend::Kind::kSim, config_);
  machine_->load(image_);
  produced_ = 0;
  step_first_ = 0;
}

void TraceReexecution::rewind() {
  if (!failed() && produced_ > 0) restart();
}

bool TraceReexecution::seek(size_t index, const EventStore& recorded, std::string* why) {
  if (failed()) {
    *why = failure_;
    return false;
  }
  // Events [step_first_, produced_) came from the machine's last step: it is already there.
  if (index < produced_ && index < step_first_) restart();
  if (index >= produced_) {
    // Stop after every step that records an event (the simulator checks a stop request only
    // every few thousand instructions: too late to land on an event).
    Checker checker(*this, recorded, index);
    backend::StopCondition stop;
    stop.timeout_s = 600;
    stop.stop_on = ~(1u << static_cast<unsigned>(trace::EventType::kRunEnd));
    backend::RunOutcome out;
    do {
      out = machine_->run(stop, &checker);
    } while (out.reason == trace::RunEndReason::kEventMatched && !checker.done());
    step_first_ = index;
    if (!checker.mismatch.empty()) {
      failure_ = checker.mismatch;
    } else if (produced_ <= index) {
      failure_ = "re-execution ended (" + std::string(trace::to_string(out.reason)) +
                 ") after " + with_commas(produced_) + " events, before event #" +
                 with_commas(index);
    }
  }
  if (failed()) {
    machine_.reset();
    *why = failure_;
    return false;
  }
  return true;
}

}  // namespace trapscope::viz
