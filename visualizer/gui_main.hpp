// visualizer/gui_main.hpp — the entry of `trapscope gui` (cli/cmd_gui.cpp parses the command
// line and builds the driver): opens the window and runs the frame loop, interactively or
// under a script.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "visualizer/core/compare_view.hpp"
#include "visualizer/core/driver.hpp"
#include "visualizer/core/lesson_driver.hpp"
#include "visualizer/core/script.hpp"
#include "visualizer/core/words.hpp"

namespace trapscope::viz {

struct GuiOptions {
  std::unique_ptr<Driver> driver;
  std::unique_ptr<LessonDriver> lesson;  // --lesson: drives `driver` (a LiveController)
  std::string title = "trapscope";
  int width = 1600;
  int height = 900;
  float font_scale = 1.0f;
  // The window layout's Dear ImGui .ini file: read at start (the saved layout replaces the
  // default tiling) and written as windows move and at exit. "": not saved (scripts, tests).
  std::string layout_file;
  Lang lang = Lang::kEn;  // the visualizer's own words (`--lang`, else LANG; words.hpp)
  bool has_script = false;
  std::string script_path;
  std::vector<ScriptCommand> script;
  double script_timeout_s = 120;
  std::string dump_path;  // the state after the script (or at exit)
  // --compare FILE: the compare panel opens on this result. The panel offers these workloads
  // (the built-in guests) to run a compare on.
  std::optional<CompareResult> compare;
  std::vector<std::string> compare_workloads;
};

// Exit status: 0 ok; 1 a script assertion failed; 2 no window could be opened; 4 the script
// timed out.
int run_gui(GuiOptions options);

}  // namespace trapscope::viz
