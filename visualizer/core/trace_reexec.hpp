// visualizer/core/trace_reexec.hpp — registers and memory for a trace recorded on the
// simulator. A trace file holds events, not machine state; but the simulator is deterministic,
// so re-running the same guest image with the same configuration (the trace's metadata: mode,
// load address, memory size, whether instructions were recorded) records the same events, and
// the machine after the step that recorded event N is the machine the recording saw there.
// Every re-executed event is checked against the recording (type and RIP); at the first
// difference re-execution stops for good and says where.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "visualizer/core/event_store.hpp"

namespace trapscope::viz {

class TraceReexecution {
 public:
  TraceReexecution(std::vector<uint8_t> image, backend::Config config);
  ~TraceReexecution();

  // Moves the machine to just after the step that recorded event `index` of `recorded`: forward
  // by running on, backward by loading the guest again and re-running from the start. The step
  // may record more than one event (an exception and the ring transition that delivers it):
  // the machine is then after all of them. False, with *why, if the re-execution diverged from
  // the recording or ended before `index`; it stays off afterwards (failed()).
  bool seek(size_t index, const EventStore& recorded, std::string* why);

  // Back to the machine just after loading (the cursor before the first event).
  void rewind();

  backend::Backend& machine() { return *machine_; }
  bool failed() const { return !failure_.empty(); }
  const std::string& failure() const { return failure_; }

 private:
  class Checker;
  void restart();

  std::vector<uint8_t> image_;
  backend::Config config_;
  std::unique_ptr<backend::Backend> machine_;
  uint64_t produced_ = 0;    // events the machine has recorded since loading
  uint64_t step_first_ = 0;  // the first event of its last step
  std::string failure_;
};

}  // namespace trapscope::viz
