#include "visualizer/app/app.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <utility>

#include "visualizer/core/describe.hpp"
#include "visualizer/core/lesson_driver.hpp"

namespace trapscope::viz {

App::App(Driver& driver, Model& model, theme::Fonts fonts, KeyIndex keys)
    : driver_(driver), model_(model), fonts_(fonts), keys_(keys) {}

// [SECTION] Frame

void App::frame() {
  const ImVec2 display = ImGui::GetIO().DisplaySize;
  if (display.x != last_display_.x || display.y != last_display_.y) {
    const bool first = last_display_.x == 0 && last_display_.y == 0;
    last_display_ = display;
    if (!(first && keep_restored_)) layout_pending_ = true;  // a new window size: tile again
  }
  menu_bar();
  shortcuts();
  PanelContext ctx{model_, *this, fonts_, lang()};
  if (lesson_) ctx.free_x1 = lesson_left();  // floating windows open left of the lesson pane
  if (lesson_) {
    if (auto event = lesson_->update(model_)) select(*event);
  }
  place("Controls");
  draw_toolbar(ctx, &show_breakpoints_);
  place("Timeline");
  draw_timeline(ctx, timeline_);
  place("Events");
  draw_event_list(ctx, events_);
  place("Event details");
  draw_event_details(ctx);
  place("Disassembly");
  draw_disassembly(ctx, disassembly_);
  place("Memory");
  draw_memory(ctx, memory_);
  place("Guest console");
  draw_console(ctx, console_);
  place("Registers");
  draw_registers(ctx);
  if (lesson_) {
    place("Lesson");
    draw_lesson(ctx, *lesson_);
  }
  place("Exit statistics");
  draw_exit_stats(ctx);
  draw_breakpoints(ctx, breakpoints_, &show_breakpoints_);
  draw_help(ctx, &show_help_);
  draw_page_walk(ctx, &show_page_walk_);
  draw_tcache(ctx, tcache_, &show_tcache_);
  if (!vmcs_opened_once_ && model_.vmcs()) {  // --technique vt, pv: the VMCS is the point
    vmcs_opened_once_ = true;
    show_vmcs_ = true;
  }
  if (show_vmcs_) place("VMCS");
  draw_vmcs(ctx, &show_vmcs_);
  if (lesson_) devices_.lang = lesson_->lang();
  draw_devices(ctx, devices_, &show_devices_);
  if (show_compare_) place("Compare");
  draw_compare(ctx, compare_, &show_compare_);
  layout_pending_ = false;
}

void App::menu_bar() {
  if (!ImGui::BeginMainMenuBar()) return;
  menu_height_ = ImGui::GetWindowSize().y;
  if (ImGui::BeginMenu("File")) {
    if (ImGui::MenuItem("Quit", "Ctrl+Q")) quit_ = true;
    ImGui::EndMenu();
  }
  if (ImGui::BeginMenu("Machine")) {
    const bool running = model_.status().state == RunState::kRunning;
    if (ImGui::MenuItem("Step", shortcut_keys(Shortcut::kStep))) command(Command::Op::kStep);
    if (ImGui::MenuItem("Step back", shortcut_keys(Shortcut::kStepBack), false,
                        capabilities().step_back)) {
      command(Command::Op::kStepBack);
    }
    for (StepKind k : {StepKind::kVmExit, StepKind::kRing, StepKind::kException,
                       StepKind::kPageWalk, StepKind::kTranslation, StepKind::kAny}) {
      const std::string label = "Step to next " + std::string(describe(k));
      if (ImGui::MenuItem(label.c_str(), shortcut_keys(shortcut_for(k)), false,
                          capabilities().step_kinds & (1u << static_cast<int>(k)))) {
        command(Command::Op::kStepTo, k);
      }
    }
    if (ImGui::MenuItem(running ? "Pause" : "Run", shortcut_keys(Shortcut::kRunPause))) toggle_run();
    if (ImGui::MenuItem("Reset", shortcut_keys(Shortcut::kReset))) command(Command::Op::kReset);
    ImGui::Separator();
    ImGui::MenuItem("Breakpoints…", nullptr, &show_breakpoints_);
    ImGui::EndMenu();
  }
  if (ImGui::BeginMenu("View")) {
    if (ImGui::MenuItem("Reset layout")) layout_pending_ = true;
    ImGui::MenuItem("Page walk", nullptr, &show_page_walk_);
    ImGui::MenuItem("Translation cache", nullptr, &show_tcache_);
    ImGui::MenuItem("VMCS (VT-x)", nullptr, &show_vmcs_);
    ImGui::MenuItem("Devices", nullptr, &show_devices_);
    if (ImGui::MenuItem("Compare techniques", nullptr, &show_compare_) && show_compare_) {
      compare_.focus = true;
    }
    ImGui::EndMenu();
  }
  if (ImGui::BeginMenu("Help")) {
    ImGui::MenuItem("Shortcuts and limits", nullptr, &show_help_);
    ImGui::EndMenu();
  }
  const Status& st = model_.status();
  std::string right = st.source;
  right += " \u00B7 ";
  right += st.backend;
  right += " \u00B7 " + with_commas(model_.events().size()) + " events \u00B7 " +
           with_commas(model_.exit_stats().total()) + " VM exits";
  if (st.instructions_known) right += " \u00B7 " + with_commas(st.instructions) + " instructions";
  const float w = ImGui::CalcTextSize(right.c_str()).x + ImGui::CalcTextSize("(?)").x + 12;
  ImGui::SameLine(ImGui::GetWindowWidth() - w - 16);
  ImGui::TextDisabled("%s", right.c_str());
  ImGui::SameLine();
  help_marker(capabilities().limits.c_str());
  ImGui::EndMainMenuBar();
}

void App::shortcuts() {
  ImGuiIO& io = ImGui::GetIO();
  if (io.WantTextInput) return;
  auto pressed = [&](Key k) { return ImGui::IsKeyPressed(keys_(k), true); };
  if (io.KeyCtrl) {
    if (ImGui::IsKeyPressed(keys_(Key::kR), false)) command(Command::Op::kReset);
    if (ImGui::IsKeyPressed(keys_(Key::kF), false)) events_.focus_filter = true;
    return;
  }
  if (pressed(Key::kF10)) {
    command(io.KeyShift ? Command::Op::kStepBack : Command::Op::kStep);
  } else if (pressed(Key::kS)) {
    command(Command::Op::kStep);
  } else if (pressed(Key::kB)) {
    command(Command::Op::kStepBack);
  } else if (pressed(Key::kX) || pressed(Key::kF8)) {
    command(Command::Op::kStepTo, StepKind::kVmExit);
  } else if (pressed(Key::kR)) {
    command(Command::Op::kStepTo, StepKind::kRing);
  } else if (pressed(Key::kE)) {
    command(Command::Op::kStepTo, StepKind::kException);
  } else if (pressed(Key::kW)) {
    command(Command::Op::kStepTo, StepKind::kPageWalk);
  } else if (pressed(Key::kT)) {
    command(Command::Op::kStepTo, StepKind::kTranslation);
  } else if (pressed(Key::kA)) {
    command(Command::Op::kStepTo, StepKind::kAny);
  } else if (ImGui::IsKeyPressed(keys_(Key::kF5), false) ||
             ImGui::IsKeyPressed(keys_(Key::kSpace), false)) {
    toggle_run();
  }
}

// [SECTION] Layout
//
// Dear ImGui 1.86 (Debian) has no docking, so the default layout tiles the windows: the
// controls and the timeline across the top; events, details and exit statistics on the left;
// disassembly, memory and console in the middle; registers (with segments) on the right. Windows can
// be moved and resized; View → Reset layout (or a new window size) tiles them again.

void App::place(const char* window) {
  const ImVec2 d = ImGui::GetIO().DisplaySize;
  const ImGuiStyle& st = ImGui::GetStyle();
  const float top = menu_height_ > 0 ? menu_height_ : ImGui::GetFrameHeight();
  const float tool_h = ImGui::GetFrameHeight() + ImGui::GetTextLineHeight() + st.ItemSpacing.y +
                       2 * st.WindowPadding.y + 2;
  const float time_y = top + tool_h;
  // The timeline needs its title, its header row, the lanes (timeline.cpp: 146 px) and the axis.
  const float time_min = 2 * ImGui::GetFrameHeight() + st.ItemSpacing.y + 2 * st.WindowPadding.y +
                         146 + ImGui::GetTextLineHeight() + 12;
  const float time_h = std::clamp(d.y * 0.22f, time_min, std::max(time_min, 300.0f));
  const float y = time_y + time_h;
  const float h = std::max(d.y - y, 200.0f);
  const float aw = std::floor(d.x * 0.31f), bw = std::floor(d.x * 0.35f), cw = d.x - aw - bw;
  const float free_w = lesson_ ? lesson_left() : d.x;  // what a window may cover
  struct Rect {
    float x, y, w, h;
  };
  Rect r{0, 0, 400, 300};
  const std::string_view name = window;
  auto part = [&](float from, float to) {  // a vertical slice of the area under the timeline
    const float a = std::floor(h * from), b = std::floor(h * to);
    return std::pair<float, float>{y + a, b - a};
  };
  auto column = [&](float x, float w, float from, float to) {
    const auto [top_y, height] = part(from, to);
    return Rect{x, top_y, w, height};
  };
  if (name == "Controls") r = {0, top, d.x, tool_h};
  else if (name == "Timeline") r = {0, time_y, d.x, time_h};
  else if (name == "Events") r = column(0, aw, 0.0f, 0.44f);
  else if (name == "Event details") r = column(0, aw, 0.44f, 0.78f);
  else if (name == "Exit statistics") r = column(0, aw, 0.78f, 1.0f);
  else if (name == "Disassembly") r = column(aw, bw, 0.0f, 0.46f);
  else if (name == "Memory") r = column(aw, bw, 0.46f, 0.74f);
  else if (name == "Guest console") r = column(aw, bw, 0.74f, 1.0f);
  else if (name == "Registers") r = column(aw + bw, cw, lesson_ ? 0.66f : 0.0f, 1.0f);
  else if (name == "Lesson") r = column(aw + bw, cw, 0.0f, 0.66f);
  else if (name == "VMCS") r = column(aw, bw, 0.0f, 1.0f);  // over disassembly, memory, console
  else if (name == "Compare") r = {0, time_y, free_w, d.y - time_y};  // over all but the controls
                                                                        // (and the lesson pane)
  const ImGuiCond cond = layout_pending_ ? ImGuiCond_Always : ImGuiCond_FirstUseEver;
  ImGui::SetNextWindowPos(ImVec2(r.x, r.y), cond);
  ImGui::SetNextWindowSize(ImVec2(r.w, r.h), cond);
}

Lang App::lang() const { return lesson_ ? lesson_->lang() : lang_; }

// The left edge of the lesson pane (the right column of place()'s tiling).
float App::lesson_left() const {
  const float w = ImGui::GetIO().DisplaySize.x;
  return std::floor(w * 0.31f) + std::floor(w * 0.35f);
}

// [SECTION] Actions

void App::send(Command c) {
  if (c.op == Command::Op::kSetBreakpoints) c.breakpoints = model_.breakpoints();
  driver_.send(std::move(c));
}

void App::select(int64_t event) { model_.select(event); }

void App::set_vmcs(const std::string& spec) {
  Command c;
  c.op = Command::Op::kSetVmcs;
  c.text = spec;
  send(std::move(c));
}

void App::set_timeline_view(double first, double last) {
  timeline_.view_start = first;
  timeline_.view_end = std::max(last, first + 16);
  timeline_.follow = last >= static_cast<double>(model_.events().size());
  timeline_.seen_selection = model_.selection_serial();  // keep this view
}

void App::show_window(const std::string& name, bool show) {
  if (name == "breakpoints") show_breakpoints_ = show;
  if (name == "help") show_help_ = show;
  if (name == "page walk") show_page_walk_ = show;
  if (name == "translation cache") {
    show_tcache_ = show;
    tcache_.opened_once = true;  // a script's choice stands
  }
  if (name == "devices") {
    show_devices_ = show;
    devices_.opened_once = true;
  }
  if (name == "compare") {
    if (show && !show_compare_) compare_.focus = true;
    show_compare_ = show;
  }
  if (name == "vmcs") {
    show_vmcs_ = show;
    vmcs_opened_once_ = true;  // a script's choice stands
  }
}

bool App::window_shown(const std::string& name) const {
  if (name == "breakpoints") return show_breakpoints_;
  if (name == "help") return show_help_;
  if (name == "page walk") return show_page_walk_;
  if (name == "translation cache") return show_tcache_;
  if (name == "compare") return show_compare_;
  if (name == "vmcs") return show_vmcs_;
  if (name == "devices") return show_devices_;
  return false;
}

void App::command(Command::Op op, StepKind kind) {
  const RunState s = model_.status().state;
  if (op != Command::Op::kPause && s == RunState::kRunning) return;  // one at a time
  Command c;
  c.op = op;
  c.kind = kind;
  send(std::move(c));
}

void App::toggle_run() {
  if (model_.status().state == RunState::kRunning) {
    command(Command::Op::kPause);
  } else {
    command(Command::Op::kRun);
  }
}

void App::set_speed(float ips) {
  speed_ = std::max(0.0f, ips);
  driver_.set_speed(speed_);
}

bool App::set_filter(const std::string& text, std::string* error) {
  if (!model_.set_filter(text, error)) return false;
  if (text != events_.filter) {
    std::snprintf(events_.filter, sizeof events_.filter, "%s", text.c_str());
  }
  events_.filter_error.clear();
  return true;
}

void App::set_memory_address(uint64_t gpa) {
  Command c;
  c.op = Command::Op::kSetMemoryWindow;
  c.address = gpa;
  c.length = 4096;
  send(std::move(c));
  std::snprintf(memory_.address, sizeof memory_.address, "%llx", static_cast<unsigned long long>(gpa));
}

void App::toggle_address_breakpoint(uint64_t rip) {
  auto& bps = model_.breakpoints();
  auto it = std::find_if(bps.begin(), bps.end(), [&](const Breakpoint& b) {
    return b.kind == Breakpoint::Kind::kAddress && b.address == rip;
  });
  if (it != bps.end()) {
    bps.erase(it);
    breakpoints_changed();
    return;
  }
  Breakpoint b;
  b.kind = Breakpoint::Kind::kAddress;
  b.address = rip;
  add_breakpoint(b);
}

void App::add_breakpoint(Breakpoint bp) {
  bp.id = model_.new_breakpoint_id();
  model_.breakpoints().push_back(bp);
  breakpoints_changed();
}

void App::remove_breakpoint(uint32_t id) {
  auto& bps = model_.breakpoints();
  bps.erase(std::remove_if(bps.begin(), bps.end(), [&](const Breakpoint& b) { return b.id == id; }),
            bps.end());
  breakpoints_changed();
}

void App::breakpoints_changed() {
  Command c;
  c.op = Command::Op::kSetBreakpoints;
  send(std::move(c));
}

}  // namespace trapscope::viz
