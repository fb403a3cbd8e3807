#include "visualizer/app/script_runner.hpp"

#include <cstdio>
#include <fstream>

#include "visualizer/core/describe.hpp"
#include "visualizer/core/lesson_driver.hpp"
#include "visualizer/core/state_dump.hpp"

namespace trapscope::viz {

using Op = ScriptCommand::Op;

ScriptRunner::ScriptRunner(std::vector<ScriptCommand> commands, App& app, Driver& driver,
                           Model& model, double timeout_s, std::function<nlohmann::json()> gui_info)
    : commands_(std::move(commands)),
      app_(app),
      driver_(driver),
      model_(model),
      gui_info_(std::move(gui_info)),
      deadline_(std::chrono::steady_clock::now() +
                std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000))) {
  waiting_ = true;  // the machine is starting
  settle_frames_ = 2;
}

void ScriptRunner::fail(const ScriptCommand& c, const std::string& why, int code) {
  std::fprintf(stderr, "trapscope gui: script line %d (%s): %s\n", c.line, c.source.c_str(),
               why.c_str());
  exit_code_ = code;
  finished_ = true;
}

void ScriptRunner::screenshot_taken(bool ok, const std::string& error) {
  if (ok) {
    screenshots_.push_back(screenshot_);
    std::fprintf(stderr, "trapscope gui: wrote %s\n", screenshot_.c_str());
  } else {
    exit_code_ = 1;
    finished_ = true;
    std::fprintf(stderr, "trapscope gui: screenshot failed: %s\n", error.c_str());
  }
  screenshot_.clear();
}

void ScriptRunner::after_frame() {
  if (finished_ || !screenshot_.empty()) return;
  if (std::chrono::steady_clock::now() > deadline_) {
    const ScriptCommand& c = commands_[pc_ > 0 ? pc_ - 1 : 0];
    fail(c, "the script timed out (--script-timeout)", 4);
    return;
  }
  if (run_for_) {
    if (std::chrono::steady_clock::now() < run_for_end_) return;
    run_for_ = false;
    Command pause;
    pause.op = Command::Op::kPause;
    app_.send(pause);
    waiting_ = true;
    settle_frames_ = 2;
    return;
  }
  if (waiting_) {
    if (driver_.busy() || (app_.lesson() && app_.lesson()->running()) || app_.compare().run) return;
    if (settle_frames_-- > 0) return;
    waiting_ = false;
  }
  if (frames_left_ > 0) {
    --frames_left_;
    return;
  }
  while (!finished_ && !waiting_ && !run_for_ && frames_left_ == 0 && screenshot_.empty()) {
    if (pc_ >= commands_.size()) {
      finished_ = true;
      return;
    }
    execute(commands_[pc_++]);
  }
}

void ScriptRunner::execute(const ScriptCommand& c) {
  auto machine = [&](Command::Op op, StepKind kind = StepKind::kInstruction, uint64_t count = 1) {
    Command cmd;
    cmd.op = op;
    cmd.kind = kind;
    cmd.count = count;
    app_.send(cmd);
    waiting_ = true;
    settle_frames_ = 2;
  };
  switch (c.op) {
    case Op::kStep: machine(Command::Op::kStep, StepKind::kInstruction, c.number); break;
    case Op::kStepTo: machine(Command::Op::kStepTo, c.kind); break;
    case Op::kStepBack: machine(Command::Op::kStepBack, StepKind::kInstruction, c.number); break;
    case Op::kRun: machine(Command::Op::kRun); break;
    case Op::kRunFor: {
      Command run;
      run.op = Command::Op::kRun;
      app_.send(run);
      run_for_ = true;
      run_for_end_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(c.number);
      break;
    }
    case Op::kPause: machine(Command::Op::kPause); break;
    case Op::kReset: machine(Command::Op::kReset); break;
    case Op::kWaitIdle:
      waiting_ = true;
      settle_frames_ = 2;
      break;
    case Op::kSelect:
      if (c.number >= model_.events().size()) {
        fail(c, "there is no event #" + std::to_string(c.number) + " (" +
                    std::to_string(model_.events().size()) + " events)");
        return;
      }
      app_.select(static_cast<int64_t>(c.number));
      frames_left_ = 2;
      break;
    case Op::kSelectNext:
      if (auto i = model_.find_next(c.kind, model_.selected())) {
        app_.select(static_cast<int64_t>(*i));
        frames_left_ = 2;
      } else {
        fail(c, "no " + std::string(describe(c.kind)) + " after the selection");
      }
      break;
    case Op::kVmcs: {
      Command cmd;
      cmd.op = Command::Op::kSetVmcs;
      cmd.text = c.text;
      app_.send(cmd);
      waiting_ = true;
      settle_frames_ = 2;
      break;
    }
    case Op::kBreak:
    case Op::kBreakEvent:
      app_.add_breakpoint(c.breakpoint);
      break;
    case Op::kClearBreaks:
      model_.breakpoints().clear();
      app_.breakpoints_changed();
      break;
    case Op::kFilter: {
      std::string err;
      if (!app_.set_filter(c.text, &err)) fail(c, err, 2);
      frames_left_ = 2;
      break;
    }
    case Op::kMemory:
      app_.set_memory_address(c.number);
      waiting_ = true;
      settle_frames_ = 2;
      break;
    case Op::kSpeed: app_.set_speed(static_cast<float>(c.number)); break;
    case Op::kFrames: frames_left_ = static_cast<int>(c.number); break;
    case Op::kScreenshot: screenshot_ = c.text; break;
    case Op::kDump: {
      nlohmann::json j = dump_state(model_);
      if (app_.lesson()) j["lesson"] = dump_lesson(*app_.lesson());
      j["compare"] = dump_compare(app_.compare());
      j["gui"] = gui_info_();
      std::ofstream out(c.text);
      out << j.dump(2) << "\n";
      if (!out) fail(c, "cannot write " + c.text, 2);
      break;
    }
    case Op::kAssertCpl: {
      const auto cpl = model_.shown_cpl();
      if (!cpl || *cpl != c.number) {
        fail(c, "the GUI shows CPL " + (cpl ? std::to_string(*cpl) : std::string("(none)")));
      }
      break;
    }
    case Op::kAssertSelected: {
      if (model_.selected() < 0) {
        fail(c, "no event is selected");
        break;
      }
      EventRecord r;
      model_.events().load(static_cast<size_t>(model_.selected()), &r);
      if (!matches(c.breakpoint, r)) fail(c, "the selected event is: " + event_summary(r));
      break;
    }
    case Op::kAssertConsole:
      if (model_.console().find(c.text) == std::string::npos) {
        fail(c, "the console shows \"" + model_.console() + "\"");
      }
      break;
    case Op::kTimeline: {
      const double n = static_cast<double>(model_.events().size());
      app_.set_timeline_view(static_cast<double>(c.number),
                             c.number2 == UINT64_MAX ? n : static_cast<double>(c.number2));
      frames_left_ = 2;
      break;
    }
    case Op::kShow:
    case Op::kHide:
      app_.show_window(c.text, c.op == Op::kShow);
      frames_left_ = 2;
      break;
    case Op::kQuit:
      finished_ = true;
      break;
    case Op::kTcacheSelect: {
      TranslationCacheView& tc = model_.tcache();
      const auto block = tc.block_at(c.number);
      if (!block) {
        fail(c, "no translated block at guest RIP " + hex(c.number) + " (" +
                    std::to_string(tc.blocks().size()) + " blocks)");
        break;
      }
      tc.select(*block);
      app_.select(tc.units()[tc.blocks()[*block].newest].event);
      frames_left_ = 2;
      break;
    }
    case Op::kCompareOpen: {
      CompareState& s = app_.compare();
      std::string error;
      if (auto r = load_compare(c.text, &error)) {
        s.result = std::move(r);
        s.error.clear();
      } else {
        s.error = error;
      }
      s.warning.clear();
      app_.show_window("compare", true);
      frames_left_ = 2;
      break;
    }
    case Op::kCompareRun:
      app_.show_window("compare", true);
      if (!start_compare_run(app_.compare(), c.text, c.text2)) {
        fail(c, app_.compare().error, 2);
        break;
      }
      waiting_ = true;  // until the run has finished and its result is drawn
      settle_frames_ = 2;
      break;
    case Op::kCompareLog:
      app_.compare().log_scale = c.number != 0;
      frames_left_ = 2;
      break;
    case Op::kLessonStep:
    case Op::kLessonNext:
    case Op::kLessonPrev:
    case Op::kLessonLang:
    case Op::kLessonAnswer:
    case Op::kAssertLesson: {
      LessonDriver* l = app_.lesson();
      if (!l) {
        fail(c, "no lesson is open (trapscope gui --lesson ID)", 2);
        break;
      }
      if (c.op == Op::kLessonStep) {
        if (!l->can_run()) {
          fail(c, "step " + std::to_string(l->current() + 1) + " cannot run: " +
                      (l->result(l->current()).verdict != Verdict::kNotRun ? "it has run"
                       : l->failed() ? "a step before it failed"
                                     : "the steps before it have not run"));
          break;
        }
        l->run_step();
        waiting_ = true;
        settle_frames_ = 2;
      } else if (c.op == Op::kLessonNext) {
        l->next();
        frames_left_ = 2;
      } else if (c.op == Op::kLessonPrev) {
        l->previous();
        frames_left_ = 2;
      } else if (c.op == Op::kLessonLang) {
        l->set_lang(*lessons::parse_lang(c.text));
        frames_left_ = 2;
      } else if (c.op == Op::kLessonAnswer) {
        if (!l->lesson().steps[l->current()].grade) {
          fail(c, "step " + std::to_string(l->current() + 1) + " has no graded question");
          break;
        }
        l->answer(c.text == "@selected" ? "" : c.text,
                  c.text == "@selected" ? model_.selected() : -1);
        frames_left_ = 2;
      } else {
        const StepResult& r = l->result(l->current());
        const std::string v(to_string(r.verdict));
        if (v != (c.text == "not-run" ? "not run" : c.text)) {
          fail(c, "step " + std::to_string(l->current() + 1) + " is " + v +
                      (r.failure.empty() ? "" : ": " + r.failure));
        }
      }
      break;
    }
  }
}

}  // namespace trapscope::viz
