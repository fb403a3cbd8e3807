#include "visualizer/gui_main.hpp"

#include <imgui.h>

#include <algorithm>
#include <cfloat>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "visualizer/app/app.hpp"
#include "visualizer/app/script_runner.hpp"
#include "visualizer/app/theme.hpp"
#include "visualizer/core/model.hpp"
#include "visualizer/core/state_dump.hpp"
#include "visualizer/platform/window.hpp"

namespace trapscope::viz {

int run_gui(GuiOptions o) {
  IMGUI_CHECKVERSION();
  ImGui::CreateContext();
  ImGuiIO& io = ImGui::GetIO();
  io.IniFilename = nullptr;  // no layout file: the layout is computed (app.cpp), not saved
  bool restored = false;
  if (!o.layout_file.empty()) {
    std::error_code ec;
    const std::filesystem::path ini(o.layout_file);
    if (ini.has_parent_path()) std::filesystem::create_directories(ini.parent_path(), ec);
    restored = std::filesystem::is_regular_file(ini, ec);
    io.IniFilename = o.layout_file.c_str();  // o outlives the context
  }
  io.ConfigFlags |= ImGuiConfigFlags_NavEnableKeyboard;
  io.ConfigWindowsMoveFromTitleBarOnly = true;

  platform::WindowOptions wo;
  wo.width = o.width;
  wo.height = o.height;
  wo.title = o.title;
  wo.vsync = !o.has_script;  // scripts run as fast as frames can be drawn
  std::string error;
  std::unique_ptr<platform::Window> window = platform::Window::open(wo, &error);
  if (!window) {
    std::fprintf(stderr, "trapscope gui: %s\n", error.c_str());
    ImGui::DestroyContext();
    return 2;
  }
  const theme::Fonts fonts = theme::load_fonts(o.font_scale);
  theme::apply_style();

  Model model;
  Driver& driver = *o.driver;
  App app(driver, model, fonts, &platform::Window::key_index);
  app.set_lang(o.lang);
  if (o.lesson) app.set_lesson(o.lesson.get());
  if (restored) app.keep_restored_layout();
  app.compare().workloads = o.compare_workloads;
  if (o.compare) {
    CompareState& s = app.compare();
    const auto w = std::find(s.workloads.begin(), s.workloads.end(), o.compare->workload);
    if (w != s.workloads.end()) s.workload = static_cast<int>(w - s.workloads.begin());
    s.result = std::move(o.compare);
    app.show_window("compare", true);
  }
  uint64_t frames = 0;
  auto gui_info = [&]() {
    nlohmann::json j;
    j["frames"] = frames;
    j["framebuffer"] = {window->framebuffer_width(), window->framebuffer_height()};
    j["renderer"] = window->renderer();
    j["script"] = o.script_path;
    for (const char* w : {"breakpoints", "help", "page walk", "translation cache", "vmcs"}) {
      j["windows"][w] = app.window_shown(w);
    }
    return j;
  };
  std::unique_ptr<ScriptRunner> runner;
  if (o.has_script) {
    runner = std::make_unique<ScriptRunner>(std::move(o.script), app, driver, model,
                                            o.script_timeout_s, gui_info);
  }

  while (!window->should_close() && !app.quit_requested() && !(runner && runner->finished())) {
    // Idle interactive windows sleep until an event (or a tick to pick up the machine's news).
    if (runner || driver.busy() || model.filter_pending() || (o.lesson && o.lesson->running())) {
      window->poll_events();
    } else {
      window->wait_events(0.1);
    }
    driver.poll(model);
    model.advance_filter_for(3.0);  // a long filter is spread over frames
    window->begin_frame();
    // A script's frames must not depend on where the (virtual) pointer happens to be.
    if (runner) io.MousePos = ImVec2(-FLT_MAX, -FLT_MAX);
    ImGui::NewFrame();
    app.frame();
    ImGui::Render();
    window->render();
    ++frames;
    if (runner && !runner->screenshot_wanted().empty()) {
      std::string err;
      const bool ok = window->screenshot(runner->screenshot_wanted(), &err);
      runner->screenshot_taken(ok, err);
    }
    window->present();
    if (runner) runner->after_frame();
  }

  int status = runner ? runner->exit_code() : 0;
  if (!o.dump_path.empty()) {
    nlohmann::json j = dump_state(model);
    if (o.lesson) j["lesson"] = dump_lesson(*o.lesson);
    j["compare"] = dump_compare(app.compare());
    nlohmann::json g = gui_info();
    if (runner) g["screenshots"] = runner->screenshots();
    j["gui"] = g;
    std::ofstream out(o.dump_path);
    out << j.dump(2) << "\n";
    if (!out) {
      std::fprintf(stderr, "trapscope gui: cannot write %s\n", o.dump_path.c_str());
      if (status == 0) status = 2;
    }
  }
  // The driver (and its worker thread) goes before the window and the ImGui context; a compare
  // run still going is cancelled.
  app.compare().run.reset();
  o.lesson.reset();
  o.driver.reset();
  window.reset();
  ImGui::DestroyContext();
  return status;
}

}  // namespace trapscope::viz
