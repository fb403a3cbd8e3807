// visualizer/core/lesson_driver.hpp — a lesson (lessons/lesson.hpp) driving the live machine of
// the visualizer: it knows the current step, and "run step" makes the LiveController run until
// the step's predicate matches, then checks the step as the terminal runner does (the same
// code: lessons/step.hpp) and reveals the answer. No GUI: the lesson pane
// (visualizer/panels/lesson_panel.cpp) draws it and scripts drive it.
//
// [SECTION] How a step runs
//   The model holds every event the machine recorded since it (re)started. The driver keeps a
//   cursor into it: "run step" examines the events after the cursor, in order (counting VM
//   exits); when none matches, it sends a step-to whose stop mask is the predicate's event types
//   (Command::mask) — or a run to the end for `run_end` — and looks again once the machine has
//   stopped and the model has the new events. The first match ends the action: the driver asks
//   for it to be selected (every view shows it), then checks `expect`, `exits` and `console`.
//   The events a step did not examine are the next step's, as in the terminal runner.
//   A step with `restart` first starts the guest again on a new machine (LiveController::
//   restart) under the step's technique and paging; the cursor and the exit count start at 0.
//
// Steps run in order: only the first step not yet run can run (the machine is where the steps
// before it left it); Previous/Next only change the step shown.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lessons/grade.hpp"
#include "lessons/lesson.hpp"
#include "lessons/step.hpp"
#include "visualizer/core/live_controller.hpp"
#include "visualizer/core/model.hpp"

namespace trapscope::viz {

enum class Verdict : uint8_t { kNotRun, kRunning, kPassed, kFailed };
std::string_view to_string(Verdict v);  // "not run", "running", "passed", "failed"

// A student's answer to a step's graded question (lessons/grade.hpp): two tries, the lesson's
// hint after a wrong one, then the answer is revealed. A number or a choice may be answered
// before the step runs (a prediction); an event, once it has run: the event selected in the
// views is the answer.
struct AnswerState {
  int tries = 0;           // wrong tries so far
  bool right = false;      // answered right
  bool given_up = false;   // the student asked for the answer
  std::string message;     // what the last try got ("", "not a number …")
  bool done() const { return right || given_up || tries >= kTries; }
  static constexpr int kTries = 2;
};

struct StepResult {
  Verdict verdict = Verdict::kNotRun;
  // `show: [efficiency]`: the share of instructions run directly since the guest (re)started,
  // when the step passed on the simulator (lessons::efficiency, as the terminal prints it).
  std::optional<lessons::Efficiency> efficiency;
  std::string failure;       // kFailed: what did not hold (lessons::check_step's message)
  int64_t event = -1;        // the event the action ended at (a model event number), or -1
  std::string event_line;    // that event as `trapscope run` prints it
};

class LessonDriver {
 public:
  // `controller` must outlive the driver and run the lesson's guest on machine_config(lesson,
  // initial_setup(lesson)) (see live_source()).
  LessonDriver(lessons::Lesson lesson, LiveController& controller, backend::Kind backend,
               lessons::Lang lang);

  // The LiveSource a lesson starts on (its guest, backend and initial setup).
  static LiveSource live_source(const lessons::Lesson& lesson, backend::Kind backend);

  const lessons::Lesson& lesson() const { return lesson_; }
  lessons::Lang lang() const { return lang_; }
  void set_lang(lessons::Lang lang) { lang_ = lang; }
  size_t current() const { return current_; }  // the step shown, 0-based
  size_t count() const { return lesson_.steps.size(); }
  const StepResult& result(size_t step) const { return results_.at(step); }
  const lessons::Setup& setup() const { return setup_; }  // what the guest runs under now

  // The step that can run next (== count() when all have run or one failed).
  size_t next_to_run() const { return next_; }
  bool can_run() const { return current_ == next_ && next_ < count() && !running(); }
  bool running() const { return next_ < count() && results_[next_].verdict == Verdict::kRunning; }
  bool failed() const;  // a step failed (the ones after it cannot run)

  void run_step();  // runs the current step (when can_run())

  // Grading the current step's question: `typed` is what the student typed or clicked (an
  // option's id), `selected` the event selected in the views (an event question; -1 none).
  // Returns the state after the try; a try after done() changes nothing.
  const AnswerState& answer(const std::string& typed, int64_t selected = -1);
  void give_up();  // reveal the current step's answer without a right one
  const AnswerState& answer_state(size_t step) const { return answers_.at(step); }
  // Whether the current step's answer may be shown: its action has run (or it has none) and its
  // question, if graded, is done.
  bool answer_shown(size_t step) const;
  size_t questions() const;  // graded questions in the lesson
  size_t right() const;      // answered right
  std::string& draft() { return draft_; }  // the answer field's text (the pane's input)
  void next();      // shows the next step (running the current one first when it has no action)
  void previous();

  // GUI thread, once per frame after the controller's poll(model): advances a running step.
  // Returns an event the views should select (the action's match).
  std::optional<int64_t> update(const Model& model);

 private:
  void finish(size_t step, const Model& model, const trace::EventHeader* event, int64_t index);
  void fail(size_t step, std::string why);

  lessons::Lesson lesson_;
  LiveController& controller_;
  backend::Kind backend_;
  lessons::Lang lang_;
  lessons::Setup setup_;
  std::vector<StepResult> results_;
  std::vector<AnswerState> answers_;
  std::string draft_;
  size_t current_ = 0;
  size_t next_ = 0;
  uint64_t cursor_ = 0;  // the first model event no step has examined
  uint64_t exits_ = 0;   // VM exits examined since the guest (re)started
  uint64_t traps_ = 0, callouts_ = 0;  // VMM traps and BT callouts examined since then
  bool sent_ = false;    // a command is out for the running step
  uint64_t sent_events_ = 0;  // the model's event count when it was sent
};

}  // namespace trapscope::viz
