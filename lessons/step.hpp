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

// Popek and Goldberg's efficiency, counted since the guest (re)started under `technique`: of
// `instructions`, the ones the VMM handled once each (under bt its callouts, which also reach the
// devices behind `in`/`out`; otherwise its VM exits and VMM traps) and the share run directly
// (none under emulation: software runs every instruction). What `show: [efficiency]` prints, in
// the terminal and in the lesson pane.
struct Efficiency {
  uint64_t instructions = 0, by_vmm = 0, direct = 0;
  double percent = 0;  // direct / instructions, in %
};
Efficiency efficiency(const std::string& technique, uint64_t instructions, uint64_t exits,
                      uint64_t traps, uint64_t callouts);
// "run directly: 380074 of 380091 instructions (99.996 %); the VMM handled 17" (a decimal comma
// in Spanish).
std::string efficiency_line(const Efficiency& e, const std::string& technique, Lang lang);

// "step 3 (FILE:41): …", what a failed step reports.
std::string step_failure(const Lesson& lesson, size_t step, const std::string& failure);

// An event as `trapscope run` prints it ("#12 vm_exit IO out port=0xe9 …").
std::string event_line(const trace::EventHeader& event);

// The language from the locale (LC_ALL, LC_MESSAGES, LANG: Spanish when it starts with "es"),
// English when none is set.
Lang lang_from_environment();

}  // namespace trapscope::lessons
