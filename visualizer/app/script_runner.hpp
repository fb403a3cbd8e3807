// visualizer/app/script_runner.hpp — runs a `--script` (visualizer/core/script.hpp) against the
// live GUI, one command at a time, between frames: a command that drives the machine is sent
// as a button would send it, then the runner waits until the driver is idle and two more frames
// have been drawn (so the views show the result) before the next line. Screenshots are taken
// from the frame drawn just before.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "visualizer/app/app.hpp"
#include "visualizer/core/script.hpp"

namespace trapscope::viz {

class ScriptRunner {
 public:
  // gui_info: extra facts for `dump` (frames drawn, window size, renderer, screenshots).
  ScriptRunner(std::vector<ScriptCommand> commands, App& app, Driver& driver, Model& model,
               double timeout_s, std::function<nlohmann::json()> gui_info);

  // Called after each frame is drawn (before it is presented). Returns a PNG path when the
  // platform should save that frame now.
  void after_frame();
  const std::string& screenshot_wanted() const { return screenshot_; }
  void screenshot_taken(bool ok, const std::string& error);

  bool finished() const { return finished_; }
  int exit_code() const { return exit_code_; }  // 0 ok, 1 an assertion failed, 4 timed out
  const std::vector<std::string>& screenshots() const { return screenshots_; }

 private:
  void execute(const ScriptCommand& c);
  void fail(const ScriptCommand& c, const std::string& why, int code = 1);

  std::vector<ScriptCommand> commands_;
  App& app_;
  Driver& driver_;
  Model& model_;
  std::function<nlohmann::json()> gui_info_;
  size_t pc_ = 0;
  bool waiting_ = false;
  int settle_frames_ = 0;
  int frames_left_ = 0;
  bool run_for_ = false;
  std::chrono::steady_clock::time_point run_for_end_;
  std::string screenshot_;
  std::vector<std::string> screenshots_;
  bool finished_ = false;
  int exit_code_ = 0;
  std::chrono::steady_clock::time_point deadline_;
};

}  // namespace trapscope::viz
