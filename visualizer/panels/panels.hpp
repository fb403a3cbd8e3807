// visualizer/panels/panels.hpp — the views, one file each (after Tracy's TracyView_*.cpp).
//
// A panel draws one ImGui window from the Model and asks for changes only through Actions
// (select an event, send a command, edit breakpoints): it never reaches into a backend. Its
// own UI state (scroll, zoom, text fields) lives in a struct below that the App owns — no
// static locals.
//
// [SECTION] Actions           what a panel may ask for
// [SECTION] Shortcuts         the stepping keys, shown in tooltips
// [SECTION] Panel states
// [SECTION] Panels            draw_* functions
// [SECTION] Widgets           help markers, chips (widgets.cpp)
#pragma once

#include <imgui.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "visualizer/app/theme.hpp"
#include "visualizer/core/compare_view.hpp"
#include "visualizer/core/compare_run.hpp"
#include "visualizer/core/disasm_window.hpp"
#include "visualizer/core/driver.hpp"
#include "visualizer/core/model.hpp"
#include "visualizer/core/words.hpp"

namespace trapscope::viz {

class LessonDriver;

// [SECTION] Actions

class Actions {
 public:
  virtual ~Actions() = default;
  virtual void select(int64_t event) = 0;  // everywhere: list, timeline, details
  virtual void command(Command::Op op, StepKind kind = StepKind::kInstruction) = 0;
  virtual void toggle_run() = 0;  // run, or pause a running machine
  virtual void set_speed(float instructions_per_second) = 0;  // 0: full speed
  virtual float speed() const = 0;
  virtual bool set_filter(const std::string& text, std::string* error) = 0;
  virtual void set_memory_address(uint64_t gpa) = 0;
  virtual void toggle_address_breakpoint(uint64_t rip) = 0;
  virtual void add_breakpoint(Breakpoint bp) = 0;  // id assigned here
  virtual void remove_breakpoint(uint32_t id) = 0;
  virtual void breakpoints_changed() = 0;  // after editing Model::breakpoints() in place
  virtual const Capabilities& capabilities() const = 0;
  // Change the VT-x model's VMCS controls by a --vmcs list (sim/virt/vmcs.hpp).
  virtual void set_vmcs(const std::string& spec) { (void)spec; }
};

// [SECTION] Shortcuts

enum class Shortcut : uint8_t {
  kStep, kStepBack, kStepExit, kStepRing, kStepException, kStepWalk, kStepTranslation,
  kStepAny, kRunPause, kReset, kCount,
};
const char* shortcut_keys(Shortcut s);  // "S or F10", for tooltips and the help window
Shortcut shortcut_for(StepKind kind);

// [SECTION] Panel states

struct TimelineState {
  double view_start = 0, view_end = 64;  // event numbers shown
  bool follow = true;                    // keep the newest events in view
  bool dragging = false;
  float drag_x = 0;
  uint64_t seen_selection = 0;
  size_t seen_events = 0;
  // Where the last frame drew the data area and each lane (screen pixels), for tests.
  float data_x0 = 0, data_w = 0;
  float lane_top[6] = {}, lane_bottom[6] = {};
};

struct EventListState {
  char filter[256] = "";
  std::string filter_error;
  uint64_t seen_selection = 0;
  bool focus_filter = false;
};

struct DisassemblyState {
  CodeWindow cached;  // the window the lines were made from
  std::vector<DisasmLine> lines;
  uint64_t seen_selection = 0;  // trace mode: scroll to the selection when it changes
};

struct MemoryState {
  char address[32] = "0x8000";
  uint64_t shown_address = 0;
  bool follow_rip = false;
};

struct ConsoleState {
  size_t seen_bytes = 0;
};

struct BreakpointsState {
  char address[32] = "";
  char condition[160] = "exit reason=IO port=0xe9";
  std::string error;
};

struct TcacheState {
  TcColumn sort = TcColumn::kExecutions;  // the block table's order (its header's sort spec)
  bool descending = true;
  std::vector<uint32_t> rows;            // sorted block indexes
  uint64_t sorted_revision = ~0ull;      // the TranslationCacheView revision rows were sorted at
  uint32_t unit = 0;                     // the translation of the selected block shown
  uint64_t seen_selection = 0;
  bool scroll_to_selection = false;
  bool opened_once = false;              // the first translation opens the panel, once
};
// The compare panel (compare.cpp): a compare result as bar charts, and a compare run started
// from the panel (or a script) in the background.
struct CompareState {
  std::optional<CompareResult> result;
  std::string error;    // the last open or run that failed (shown in the panel)
  std::string warning;  // the last run's result came with a warning
  bool log_scale = true;
  // Running a compare from the GUI (compare_run.hpp): the workloads offered (built-in
  // guests), the choice, and the run going.
  std::vector<std::string> workloads;
  int workload = 0;
  int paging = 0;  // index into native, shadow, ept
  std::unique_ptr<CompareRun> run;
  // Where the last frame drew each chart's plot and its bars (screen pixels), for tests.
  struct Drawn {
    std::string key;
    float x = 0, y = 0, w = 0, h = 0;
    ChartLayout layout;
  };
  std::vector<Drawn> drawn;
  bool focus = false;  // bring the window to the front on the next frame
};
// Starts a compare run of `workload` under `paging` ("native", "shadow", "ept"); false (and
// state.error) if one is running or the workload is not offered.
bool start_compare_run(CompareState& state, const std::string& workload, const std::string& paging);
// Takes a finished run's result (or error) into the state; true if a run finished this call.
bool collect_compare_run(CompareState& state);

struct PanelContext {
  Model& model;
  Actions& actions;
  const theme::Fonts& fonts;
  Lang lang = Lang::kEn;  // the visualizer's words (visualizer/core/words.hpp)
  // Where a floating window (page walk, translation cache, breakpoints, help) first opens: the
  // display less the lesson pane, which no window may cover. x1 = 0: the whole display.
  float free_x1 = 0;
  float free_right() const { return free_x1 > 0 ? free_x1 : ImGui::GetIO().DisplaySize.x; }
};

// [SECTION] Panels

void draw_toolbar(PanelContext& ctx, bool* show_breakpoints);
void draw_timeline(PanelContext& ctx, TimelineState& state);
void draw_event_list(PanelContext& ctx, EventListState& state);
void draw_event_details(PanelContext& ctx);
void draw_registers(PanelContext& ctx);
void draw_disassembly(PanelContext& ctx, DisassemblyState& state);
void draw_memory(PanelContext& ctx, MemoryState& state);
void draw_console(PanelContext& ctx, ConsoleState& state);
void draw_exit_stats(PanelContext& ctx);
void draw_breakpoints(PanelContext& ctx, BreakpointsState& state, bool* open);
void draw_help(PanelContext& ctx, bool* open);
// The selected page walk / 2D walk / shadow entry (page_walk.cpp); a window opened from View.
void draw_page_walk(PanelContext& ctx, bool* open);
// The translation-cache panel (tcache.cpp): blocks with translation and execution counts, the
// selected block's guest code beside its translation, chain edges, invalidations. Opens itself
// the first time a translation arrives.
void draw_tcache(PanelContext& ctx, TcacheState& state, bool* open);
// The lesson pane (lesson.cpp): the step's text, its question, "Run step", the verdict and the
// answer, Previous/Next and the language (`trapscope gui --lesson ID`).
void draw_lesson(PanelContext& ctx, LessonDriver& lesson);
// The compare panel (compare.cpp): grouped bar charts of a `trapscope compare` result, one per
// metric, one bar per technique row, log scale, values on hover, n/a for a metric a row lacks;
// and a compare run for a chosen workload in the background, with its progress.
void draw_compare(PanelContext& ctx, CompareState& state, bool* open);
// The VMCS panel (vmcs_panel.cpp): the VT-x model's guest-state and host-state areas, its control
// fields by SDM name with the modelled ones as checkboxes, the exception bitmap, I/O bitmaps,
// CR0/CR4 guest/host masks and read shadows (--technique vt, pv).
void draw_vmcs(PanelContext& ctx, bool* open);
// The panel's state for `dump` (script) and --dump-state: {loaded, error, warning, log_scale,
// running, source, workload, rows[label], charts[{key, title, note, plot[x, y, w, h], axis_min,
// axis_max, bars[{row, cluster, value (null: n/a), rect[x0, y0, x1, y1]}]}]} — screen pixels of
// the last frame, y down; only charts wholly in view are listed.
nlohmann::json dump_compare(const CompareState& state);
// Markdown, simply: paragraphs (blank lines), **strong** (bold font) and `code` (mono font),
// wrapped at the window's width.
void markdown_text(const theme::Fonts& fonts, const std::string& text);

// [SECTION] Widgets

void help_marker(const char* text);  // a "(?)" whose tooltip is `text`
void tooltip(const char* text);      // tooltip for the last item, when hovered
// A small filled rounded rectangle in `color`, then the text on the same line.
void chip(ImU32 color, const char* text);
// A button that shows `tip` (and the shortcut) when hovered; greyed out if !enabled.
bool tool_button(const char* label, const char* tip, Shortcut shortcut, bool enabled,
                 const char* disabled_why = nullptr);
// Text in a colour, in the mono font.
void mono_text(const theme::Fonts& fonts, ImU32 color, const char* text);
// The value of `i` under the mouse, as text in the mono font, highlighted if changed.
void value_cell(const theme::Fonts& fonts, const std::string& text, bool changed,
                const std::string& was = "");

}  // namespace trapscope::viz
