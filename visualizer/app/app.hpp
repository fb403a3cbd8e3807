// visualizer/app/app.hpp — the application: lays the panels out, owns their UI state, turns
// keys into commands, and implements the Actions the panels (and scripts) use. It sees only
// ImGui, the Model and a Driver: the window system and OpenGL are the platform layer's
// (visualizer/platform/), as Dear ImGui keeps its backends apart from application code.
#pragma once

#include <cstdint>
#include <string>

#include "visualizer/app/theme.hpp"
#include "visualizer/core/driver.hpp"
#include "visualizer/panels/panels.hpp"
#include "visualizer/panels/devices_panel.hpp"

namespace trapscope::viz {

// The keys the app binds; the platform says which ImGui key index each one is.
enum class Key : uint8_t { kF5, kF8, kF10, kSpace, kS, kB, kX, kR, kE, kW, kT, kA, kF, kCount };
using KeyIndex = int (*)(Key);

class App final : public Actions {
 public:
  App(Driver& driver, Model& model, theme::Fonts fonts, KeyIndex keys);

  // One frame of UI, between ImGui::NewFrame() and ImGui::Render().
  void frame();
  bool quit_requested() const { return quit_; }
  void request_layout() { layout_pending_ = true; }
  // A layout was restored from the .ini file (gui_main.cpp): the first frame keeps it instead
  // of tiling (View → Reset layout and a later window-size change still tile).
  void keep_restored_layout() { layout_pending_ = false; keep_restored_ = true; }
  void send(Command command);  // as a button would (scripts use it too)
  void set_timeline_view(double first_event, double last_event);
  void show_window(const std::string& name, bool show);  // "breakpoints", "help", "page walk",
                                                          // "translation cache", "compare", "vmcs"
  const TimelineState& timeline_state() const { return timeline_; }
  bool window_shown(const std::string& name) const;  // the names show_window() takes
  // A lesson driving the machine (`trapscope gui --lesson ID`): its pane is drawn, and each
  // frame advances its running step (visualizer/core/lesson_driver.hpp). Not owned.
  void set_lesson(LessonDriver* lesson) { lesson_ = lesson; layout_pending_ = true; }
  LessonDriver* lesson() const { return lesson_; }
  // The language of the visualizer's own words (a lesson's pane switch overrides it).
  void set_lang(Lang lang) { lang_ = lang; }
  Lang lang() const;
  // The compare panel (`trapscope gui --compare FILE`, View → Compare): its result, its run.
  CompareState& compare() { return compare_; }

  // Actions
  void select(int64_t event) override;
  void command(Command::Op op, StepKind kind = StepKind::kInstruction) override;
  void toggle_run() override;
  void set_speed(float instructions_per_second) override;
  float speed() const override { return speed_; }
  bool set_filter(const std::string& text, std::string* error) override;
  void set_memory_address(uint64_t gpa) override;
  void toggle_address_breakpoint(uint64_t rip) override;
  void add_breakpoint(Breakpoint bp) override;
  void remove_breakpoint(uint32_t id) override;
  void breakpoints_changed() override;
  const Capabilities& capabilities() const override { return driver_.capabilities(); }
  void set_vmcs(const std::string& spec) override;

 private:
  void menu_bar();
  void shortcuts();
  void place(const char* window);  // the default tiling, applied on first use or on request
  float lesson_left() const;       // x where the lesson pane starts

  Driver& driver_;
  Model& model_;
  theme::Fonts fonts_;
  KeyIndex keys_;
  TimelineState timeline_;
  EventListState events_;
  DisassemblyState disassembly_;
  MemoryState memory_;
  ConsoleState console_;
  BreakpointsState breakpoints_;
  bool show_breakpoints_ = false;
  bool show_help_ = false;
  bool show_page_walk_ = false;
  bool show_tcache_ = false;
  TcacheState tcache_;
  bool show_devices_ = false;
  DevicesState devices_;
  bool show_compare_ = false;
  bool show_vmcs_ = false;
  bool vmcs_opened_once_ = false;  // the VMCS window opens itself once when a VT-x model appears
  CompareState compare_;
  LessonDriver* lesson_ = nullptr;
  Lang lang_ = Lang::kEn;
  bool layout_pending_ = true;
  bool keep_restored_ = false;
  float menu_height_ = 0;
  ImVec2 last_display_{0, 0};
  float speed_ = 0;
  bool quit_ = false;
};

}  // namespace trapscope::viz
