#include "visualizer/core/lesson_driver.hpp"

#include <algorithm>
#include <utility>

#include "visualizer/core/event_store.hpp"

namespace trapscope::viz {

std::string_view to_string(Verdict v) {
  switch (v) {
    case Verdict::kNotRun: return "not run";
    case Verdict::kRunning: return "running";
    case Verdict::kPassed: return "passed";
    case Verdict::kFailed: return "failed";
  }
  return "?";
}

LiveSource LessonDriver::live_source(const lessons::Lesson& lesson, backend::Kind backend) {
  LiveSource s;
  s.kind = backend;
  s.config = lessons::machine_config(lesson, lessons::initial_setup(lesson));
  const auto image = lessons::guest_image(lesson);
  s.image.assign(image.begin(), image.end());
  s.name = lesson.guest + " (lesson " + lesson.id + ")";
  s.memory_address = s.config.load_address & ~0xFull;
  return s;
}

LessonDriver::LessonDriver(lessons::Lesson lesson, LiveController& controller,
                           backend::Kind backend, lessons::Lang lang)
    : lesson_(std::move(lesson)),
      controller_(controller),
      backend_(backend),
      lang_(lang),
      setup_(lessons::initial_setup(lesson_)),
      results_(lesson_.steps.size()),
      answers_(lesson_.steps.size()) {}

const AnswerState& LessonDriver::answer(const std::string& typed, int64_t selected) {
  AnswerState& a = answers_[current_];
  const lessons::Step& s = lesson_.steps[current_];
  if (!s.grade || a.done()) return a;
  std::optional<uint64_t> event;
  if (s.grade->kind == lessons::Grade::Kind::kEvent) {
    const StepResult& r = results_[current_];
    if (r.verdict != Verdict::kPassed || r.event < 0) {
      a.message = lang_ == lessons::Lang::kEs ? "primero ejecuta el paso" : "run the step first";
      return a;
    }
    if (selected < 0) {
      a.message = lang_ == lessons::Lang::kEs ? "selecciona un evento en la lista"
                                              : "select an event in the list";
      return a;
    }
    event = static_cast<uint64_t>(r.event);
    if (lessons::accepts(*s.grade, std::to_string(selected), event)) {
      a.right = true;
      a.message.clear();
      return a;
    }
  } else {
    if (const std::string why = lessons::unreadable(*s.grade, typed, lang_); !why.empty()) {
      a.message = why;  // not an answer: no try spent
      return a;
    }
    if (lessons::accepts(*s.grade, typed, std::nullopt)) {
      a.right = true;
      a.message.clear();
      return a;
    }
  }
  ++a.tries;
  a.message = lang_ == lessons::Lang::kEs ? "no" : "no";
  return a;
}

void LessonDriver::give_up() {
  if (lesson_.steps[current_].grade) answers_[current_].given_up = true;
}

bool LessonDriver::answer_shown(size_t step) const {
  const lessons::Step& s = lesson_.steps.at(step);
  const bool ran = results_.at(step).verdict == Verdict::kPassed;
  return ran && (!s.grade || answers_.at(step).done());
}

size_t LessonDriver::questions() const {
  size_t n = 0;
  for (const lessons::Step& s : lesson_.steps) n += s.grade.has_value();
  return n;
}

size_t LessonDriver::right() const {
  size_t n = 0;
  for (const AnswerState& a : answers_) n += a.right;
  return n;
}

bool LessonDriver::failed() const {
  for (const StepResult& r : results_)
    if (r.verdict == Verdict::kFailed) return true;
  return false;
}

void LessonDriver::run_step() {
  if (!can_run()) return;
  const lessons::Step& s = lesson_.steps[next_];
  results_[next_] = StepResult{};
  results_[next_].verdict = Verdict::kRunning;
  sent_ = false;
  if (s.restart) {
    setup_ = lessons::after_restart(setup_, *s.restart);
    try {
      controller_.restart(lessons::machine_config(lesson_, setup_));
    } catch (const std::exception& e) {
      fail(next_, e.what());
      return;
    }
    cursor_ = 0;  // update() waits while the controller is busy: the model is truncated then
    exits_ = traps_ = callouts_ = 0;
  }
}

void LessonDriver::next() {
  if (running()) return;
  const lessons::Step& s = lesson_.steps[current_];
  // A step with nothing to run is done once it has been read.
  if (can_run() && !s.run_until && !s.restart && !s.exits && !s.console) {
    results_[next_].verdict = Verdict::kPassed;
    ++next_;
  }
  if (current_ + 1 < count()) ++current_;
  draft_.clear();
}

void LessonDriver::previous() {
  if (current_ > 0) --current_;
  draft_.clear();
}

void LessonDriver::fail(size_t step, std::string why) {
  results_[step].verdict = Verdict::kFailed;
  results_[step].failure = std::move(why);
  next_ = count();  // the machine is not where the next steps expect it
  sent_ = false;
}

void LessonDriver::finish(size_t step, const Model& model, const trace::EventHeader* event,
                          int64_t index) {
  const lessons::Step& s = lesson_.steps[step];
  StepResult& r = results_[step];
  r.event = index;
  if (event) r.event_line = lessons::event_line(*event);
  std::string failure = lessons::check_step(s, event, exits_, model.console());
  if (!failure.empty()) {
    fail(step, std::move(failure));
    r.event = index;
    return;
  }
  r.verdict = Verdict::kPassed;
  const Status& st = model.status();
  if (st.instructions_known &&
      std::find(s.show.begin(), s.show.end(), lessons::Show::kEfficiency) != s.show.end())
    r.efficiency = lessons::efficiency(setup_.technique, st.instructions, exits_, traps_, callouts_);
  sent_ = false;
  ++next_;
}

std::optional<int64_t> LessonDriver::update(const Model& model) {
  if (!running()) return std::nullopt;
  if (controller_.busy()) return std::nullopt;  // the model is not up to date yet
  const size_t step = next_;
  const lessons::Step& s = lesson_.steps[step];
  const uint64_t n = model.events().size();
  if (cursor_ > n) cursor_ = n;  // the machine was reset under the lesson
  if (!s.run_until) {
    finish(step, model, nullptr, -1);
    return std::nullopt;
  }
  const lessons::Predicate& p = *s.run_until;
  EventRecord rec;
  for (; cursor_ < n; ++cursor_) {
    model.events().load(cursor_, &rec);
    const trace::EventHeader& e = rec.header;
    if (trace::is_vm_exit(e)) ++exits_;
    if (e.type == trace::EventType::kVmmTrap) ++traps_;
    if (e.type == trace::EventType::kBtCallout) ++callouts_;
    if (p.matches(e)) {
      const auto index = static_cast<int64_t>(cursor_++);
      finish(step, model, &e, index);
      return index;
    }
    if (e.type == trace::EventType::kRunEnd) {
      ++cursor_;
      fail(step, lessons::ended_before(e, model.status().message, p));
      return static_cast<int64_t>(cursor_ - 1);
    }
  }
  const Status& st = model.status();
  if (st.state == RunState::kFinished || st.state == RunState::kError) {
    fail(step, "the guest's run has ended; nothing more happens (" + st.message + ")");
    return std::nullopt;
  }
  if (sent_ && n == sent_events_) {  // the machine stopped with nothing new (paused, an error)
    fail(step, "the machine stopped before " + p.describe() + ": " + st.message);
    return std::nullopt;
  }
  uint32_t mask = 0;
  if (std::string why = lessons::stop_mask_on(p, backend_, &mask); !why.empty()) {
    fail(step, why);
    return std::nullopt;
  }
  Command c;
  c.op = mask ? Command::Op::kStepTo : Command::Op::kRun;
  c.kind = StepKind::kAny;
  c.mask = mask;
  controller_.send(std::move(c));
  sent_ = true;
  sent_events_ = n;
  return std::nullopt;
}

}  // namespace trapscope::viz
