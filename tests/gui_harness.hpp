// tests/gui_harness.hpp — the whole GUI (`trapscope gui`) run on a script under Xvfb, for the
// [xvfb] tests.
//
// A test gives the GUI's arguments and a script (docs/visualizer.md: the script commands);
// in the script, `dump @NAME` and `screenshot @NAME` name their output files, and the harness
// puts them in fresh temporary files. The run returns the exit status, the GUI's output and
// those files: the state dump as JSON (visualizer/core/state_dump.hpp) and the screenshot as
// decoded pixels (stb_image). Every failure of the run itself (an exit status other than 0, a
// file the script did not write) fails the test with the command, the script and the GUI's
// stderr in the message.
//
//   REQUIRE_XVFB_OR_SKIP();
//   const test::GuiRun g = test::run_gui({"hello", "--backend", "sim"},
//                                        "step-to exit\n"
//                                        "screenshot @exit\n"
//                                        "dump @state\n");
//   CHECK(g.dump("state")["selected"]["type"] == "VM exit");
//   CHECK(g.screenshot("exit").stddev() > 20.0);
#pragma once

#include <array>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support.hpp"

namespace trapscope::test {

// True when xvfb-run (Debian: xvfb) is installed.
bool have_xvfb_run();

// A PNG that the GUI's `screenshot` command wrote, decoded: 8-bit RGB, rows top down.
struct Screenshot {
  int w = 0, h = 0;                // pixels
  std::vector<unsigned char> rgb;  // w * h * 3 bytes
  std::array<int, 3> pixel(int x, int y) const;  // R, G, B at column x, row y
  // The standard deviation of every channel value of every pixel: about 0 for a window
  // cleared to one colour, tens for panels, text and colours.
  double stddev() const;
  // How many rows differ from the row above: many for rows of text and widgets.
  int distinct_rows() const;
};

// One finished `trapscope gui` run.
struct GuiRun {
  std::vector<std::string> command;  // as run, for messages
  std::string script;                // the script file's text, paths filled in
  int exit_code = -1;                // -1: killed (timeout) or by a signal
  std::string out, err;              // the GUI's (and xvfb-run's) stdout and stderr
  // "NAME.json" for each `dump @NAME` in the script, "NAME.png" for each `screenshot @NAME`
  // -> the temporary file it became.
  std::map<std::string, std::string> files;

  // What `dump @NAME` wrote, parsed; a missing or malformed file fails the test.
  nlohmann::json dump(const std::string& name) const;
  // What `screenshot @NAME` wrote, decoded; a missing or undecodable file fails the test.
  Screenshot screenshot(const std::string& name) const;
  // The temporary file of "NAME.json" or "NAME.png" (a key of `files`).
  const std::string& path(const std::string& file) const;
};

enum class GuiExit {
  kSucceeds,  // the run must exit 0: anything else fails the test
  kAny,       // the test checks exit_code and err itself (a script meant to fail)
};

// Runs `trapscope gui ARGS --script FILE` under xvfb-run: a fresh X server (screen 1600x1000,
// 24-bit) with Mesa's software OpenGL, LeakSanitizer off (Mesa and X keep allocations to
// process exit). FILE holds `script` with the `@NAME` argument of every `dump` line replaced by
// a fresh temporary NAME.json and of every `screenshot` line by NAME.png (a dump and a
// screenshot of one moment may share a NAME; one NAME twice for one command fails the test).
// xvfb-run itself
// failing (its X server did not start, or its clean-up failed) is tried again on another
// display number, twice; what trapscope said is returned as it is. A run longer than
// `timeout_s` seconds is killed (exit_code -1).
GuiRun run_gui(const std::vector<std::string>& args, const std::string& script,
               GuiExit expect = GuiExit::kSucceeds, double timeout_s = 90);

// `trapscope run RUN_ARGS -q --trace FILE` (e.g. {"smc", "--technique", "bt"}); a failure fails
// the test with trapscope's stderr. Returns FILE, a fresh temporary path.
std::string record_trace(const std::vector<std::string>& run_args);

}  // namespace trapscope::test

// Skips the current test, with the reason, where xvfb-run is missing.
#define REQUIRE_XVFB_OR_SKIP()                                                                 \
  do {                                                                                         \
    if (!trapscope::test::have_xvfb_run()) {                                                   \
      WARN("SKIPPED: xvfb-run is not installed (Debian: xvfb xauth libgl1-mesa-dri), so the "  \
           "GUI cannot be run without a screen here");                                         \
      return;                                                                                  \
    }                                                                                          \
  } while (0)
