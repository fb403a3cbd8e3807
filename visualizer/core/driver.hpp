// visualizer/core/driver.hpp — what sits behind the views: a live machine (LiveController: a
// backend on a worker thread) or a recorded trace (TraceReplay). The GUI sends Commands and,
// once per frame, poll()s the driver, which applies what happened to the Model.
#pragma once

#include <string>

#include "visualizer/core/console_commands.hpp"
#include "visualizer/core/model.hpp"

namespace trapscope::viz {

// What a driver can do, so that views grey out what it cannot and say why.
struct Capabilities {
  bool live = false;          // a running machine (false: a recorded trace)
  bool step_back = false;     // Command::kStepBack
  std::string step_back_why;  // why not, when it cannot
  uint32_t step_kinds = 0;    // bits (1 << StepKind) it can step to
  std::string step_kinds_why; // why the others cannot
  bool address_breakpoints = false;
  std::string limits;         // what this machine cannot observe, in one paragraph
};

class Driver {
 public:
  virtual ~Driver() = default;
  // Queues a command (thread-safe). Command::kPause acts at once: it stops the command in
  // progress and drops the queued ones.
  virtual void send(Command command) = 0;
  // Animated run speed in instructions per second; 0 = as fast as the machine goes.
  virtual void set_speed(double instructions_per_second) = 0;
  // GUI thread: applies what happened since the last poll to the model. True if anything did.
  virtual bool poll(Model& model) = 0;
  // A command is queued or executing, or updates wait for poll().
  virtual bool busy() const = 0;
  virtual const Capabilities& capabilities() const = 0;
};

}  // namespace trapscope::viz
