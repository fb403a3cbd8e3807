// visualizer/core/script.hpp — `trapscope gui --script FILE`: the commands a script can give,
// one per line ('#' starts a comment). Every command that drives the machine waits until the
// machine has stopped and the views show the result before the next line runs, so a script is
// deterministic on the simulator.
//
//   step [N]                 execute N instructions (default 1)
//   step-to KIND             to the next exit | ring | exception | walk | translation | any
//   step-back [N]            N instructions back (simulator; a trace moves its cursor back)
//   run                      until a breakpoint or the end of the guest's run
//   run-for MS               run, and pause after MS milliseconds of wall time (MS <= 86,400,000:
//                            one day)
//   pause | reset | wait-idle
//   select N                 select event #N (as a click on it would)
//   select-next KIND         select the next event of a kind after the selection
//   break ADDR               address breakpoint (stop before executing RIP = ADDR)
//   break-event KIND [reason=NAME|N] [port=N] [vector=N] [cpl=N]
//   clear-breaks
//   filter [TEXT]            the event list's filter (empty: none)
//   memory ADDR              the memory view's guest-physical address
//   speed N                  animated run speed, instructions per second (0: full speed)
//   frames N                 render N more frames (N <= 1,000,000)
//   timeline FIRST LAST      show events FIRST..LAST in the timeline ("timeline fit": all);
//                            FIRST < LAST <= 2^53 (event numbers a double holds exactly)
//   show breakpoints|help|page walk|translation cache|compare|vmcs   open a window (hide …: close it)
//   vmcs LIST                change the VT-x model's VMCS controls, as `--vmcs LIST` (vt, pv;
//                            sim/virt/vmcs.hpp), as the VMCS panel's checkboxes do
//   tcache-select RIP        the translation-cache panel shows the block at guest RIP (as a
//                            click on its row would: its translation event is selected)
//   screenshot FILE.png      write the window's pixels (after the frame is drawn)
//   dump FILE.json           write the GUI's state (visualizer/core/state_dump.hpp)
//   assert-cpl N             the CPL the GUI shows is N
//   assert-selected KIND [conditions as break-event]
//   assert-console TEXT      the console shows TEXT (rest of the line)
//   lesson-step              run the lesson's current step (`--lesson`); waits for its verdict
//   lesson-next | lesson-prev  show the next / previous step (as the pane's buttons)
//   lesson-lang es|en        the lesson's language
//   assert-lesson passed|failed|not-run   the current step's verdict
//   lesson-answer TEXT       answer the current step's question (a number, an option's id or
//                            text; `@selected`: the event selected in the views)
//   compare-open FILE        open a `trapscope compare --json` result in the compare panel (a
//                            bad file: the panel shows the error, as the GUI would)
//   compare-run WORKLOAD [native|shadow|ept]   run a compare from the panel; waits for its end
//   compare-log on|off       the compare charts' log scale
//   quit
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "visualizer/core/console_commands.hpp"

namespace trapscope::viz {

// Limits of the numbers a script gives (larger ones are refused with the line number).
inline constexpr uint64_t kScriptMaxRunForMs = 86'400'000;
inline constexpr uint64_t kScriptMaxFrames = 1'000'000;
inline constexpr uint64_t kScriptMaxTimelineEvent = uint64_t{1} << 53;

struct ScriptCommand {
  enum class Op : uint8_t {
    kStep, kStepTo, kStepBack, kRun, kRunFor, kPause, kReset, kWaitIdle, kSelect, kSelectNext,
    kBreak, kBreakEvent, kClearBreaks, kFilter, kMemory, kSpeed, kFrames, kScreenshot, kDump,
    kAssertCpl, kAssertSelected, kAssertConsole, kTimeline, kShow, kHide, kQuit,
    kLessonStep, kLessonNext, kLessonPrev, kLessonLang, kAssertLesson, kTcacheSelect,
    kCompareOpen, kCompareRun, kCompareLog, kLessonAnswer, kVmcs,
  };
  Op op = Op::kWaitIdle;
  int line = 0;            // 1-based line in the script
  uint64_t number = 1;     // counts, addresses, milliseconds, CPL, speed; timeline FIRST
  uint64_t number2 = 0;    // timeline LAST (UINT64_MAX: fit)
  StepKind kind = StepKind::kInstruction;
  Breakpoint breakpoint;   // kBreakEvent, kAssertSelected (its conditions)
  std::string text;        // file names, filter text, console text, compare workload
  std::string text2;       // compare-run: the paging
  std::string source;      // the line as written
};

// Parses a whole script. nullopt with *error = "line N: …" for the first bad line.
std::optional<std::vector<ScriptCommand>> parse_script(std::string_view text, std::string* error);

}  // namespace trapscope::viz
