// visualizer/core/trace_replay.hpp — a recorded trace behind the views (`trapscope gui
// FILE`): the same commands move a cursor (the selection) through the recorded events instead
// of running a machine. Nothing can be stepped past the recorded end. Registers and memory are
// not in a trace file: for a simulator trace whose guest image is at hand (and matches the
// trace's checksum, or is named by the user) they come from re-executing it (trace_reexec.hpp,
// reexecution_for), otherwise those views say so. The console is rebuilt from
// the recorded debug-console and COM1 output exits up to the cursor.
#pragma once

#include <deque>
#include <memory>
#include <string>

#include "trace/trace_file.hpp"
#include "visualizer/core/driver.hpp"
#include "visualizer/core/trace_reexec.hpp"

namespace trapscope::viz {

class TraceReplay final : public Driver {
 public:
  // Takes the events of a trace read with trace::read_trace (the model is filled on first poll).
  // `reexec` (optional): the recorded guest on the simulator, for registers and memory;
  // `no_reexec_why` says why there is none (shown in the limits).
  TraceReplay(trace::TraceFile trace, std::string path,
              std::unique_ptr<TraceReexecution> reexec = nullptr, std::string no_reexec_why = "");

  void send(Command command) override;
  void set_speed(double) override {}
  bool poll(Model& model) override;
  bool busy() const override { return !commands_.empty() || !loaded_; }
  const Capabilities& capabilities() const override { return caps_; }
  const trace::TraceMetadata& metadata() const { return metadata_; }

 private:
  void execute(const Command& c, Model& model);
  void publish(Model& model, std::string message, bool error);

  trace::TraceMetadata metadata_;
  trace::Recorder events_;
  std::string path_;
  Capabilities caps_;
  std::deque<Command> commands_;
  std::vector<Breakpoint> breakpoints_;
  std::unique_ptr<TraceReexecution> reexec_;
  uint64_t memory_address_ = 0x8000, memory_length_ = 4096;
  bool loaded_ = false;
  uint64_t commands_done_ = 0;
};

}  // namespace trapscope::viz
