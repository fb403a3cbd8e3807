// lessons/step.hpp — what a lesson step does, apart from how it is shown: the machine it runs
// on, the event types its action stops at, and the checks after the action. Both runners share
// it: the terminal's (lessons/runner.cpp) and the visualizer's lesson pane
// (visualizer/core/lesson_driver.hpp), so a lesson passes or fails the same way in both.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "backend/backend.hpp"
#include "lessons/lesson.hpp"
#include "trace/event.hpp"

namespace trapscope::lessons {

// What the simulator runs the guest under: the lesson's setting, then each restart's (a
// restart that leaves technique or paging empty keeps the current one).
struct Setup {
  std::string technique;
  int deprivilege = 1;
  std::string paging;
};
Setup initial_setup(const Lesson& lesson);
Setup after_restart(const Setup& now, const Restart& restart);

// The machine a lesson's guest starts on under `setup` (the guest's boot mode unless the lesson
// names one; no per-instruction events, as `lesson run` records none). Throws LessonError when
// the guest is not built in.
backend::Config machine_config(const Lesson& lesson, const Setup& setup);
// The lesson's guest image. Throws LessonError when the guest is not built in.
std::span<const uint8_t> guest_image(const Lesson& lesson);

// Loads the lesson's guest into `machine` and, when the lesson has parameters, writes their
// block at kParamsAddress (lessons/params.hpp). False when the block does not fit in memory.
bool load_guest(const Lesson& lesson, backend::Backend& machine);

// The event types (bits 1 << trace::EventType) a run for `until` stops on, on `backend` (KVM:
// VM exits only; 0: run to the end). Empty string, or why the step cannot run there.
std::string stop_mask_on(const Predicate& until, backend::Kind backend, uint32_t* mask);

// The failure of a step's checks after its action ("" = they held): `event` is the event the
// action ended at (nullptr: no action), `exits` the VM exits since the guest (re)started up to
// it, `console` the guest's console output so far.
std::string check_step(const Step& step, const trace::EventHeader* event, uint64_t exits,
                       const std::string& console);

// "the guest's run ended (guest halted: detail) before vm_exit reason=IO"
std::string ended_before(const trace::EventHeader& run_end, const std::string& detail,
                         const Predicate& until);

// "step 3 (FILE:41): …", what a failed step reports.
std::string step_failure(const Lesson& lesson, size_t step, const std::string& failure);

// An event as `trapscope run` prints it ("#12 vm_exit IO out port=0xe9 …").
std::string event_line(const trace::EventHeader& event);

// The language from the locale (LC_ALL, LC_MESSAGES, LANG: Spanish when it starts with "es"),
// English when none is set.
Lang lang_from_environment();

}  // namespace trapscope::lessons
