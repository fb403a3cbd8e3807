// visualizer/core/trace_reexec.hpp — registers and memory for a trace recorded on the
// simulator. A trace file holds events, not machine state; but the simulator is deterministic,
// so re-running the same guest image with the same configuration (the trace's metadata: mode,
// load address, memory size, whether instructions were recorded) records the same events, and
// the machine after the step that recorded event N is the machine the recording saw there.
// Every re-executed event is checked against the recording (type and RIP); at the first
// difference re-execution stops for good and says where.
//
// A trace is untrusted input: reexecution_for runs only a guest that is the one recorded (its
// SHA-256 matches the metadata's guest_sha256) or one the user names (`gui TRACE --guest
// FILE`); it never loads the file a trace names when the trace has no checksum of it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "trace/trace_file.hpp"
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

// The re-execution of trace `t`, or nullptr with *why (shown in the views' limits). The guest:
//   - `guest_arg` if not empty (the user's choice: a built-in guest name or a flat binary);
//   - else the metadata's guest, a built-in guest or a file, loaded only if the trace records
//     its SHA-256 and the image matches it; a built-in guest of a trace without a checksum is
//     run too (it is part of trapscope, and a wrong one is caught by the event check);
//   - a file named by a trace without a checksum is not read at all (files from before
//     guest_sha256 existed: give --guest).
// Only simulator traces can be re-executed; the metadata's configuration is validated first
// (memory at most kMaxReexecMemory).
inline constexpr uint64_t kMaxReexecMemory = uint64_t{3584} << 20;  // as `run --mem`
std::unique_ptr<TraceReexecution> reexecution_for(const trace::TraceFile& t,
                                                  const std::string& guest_arg, std::string* why);

}  // namespace trapscope::viz
