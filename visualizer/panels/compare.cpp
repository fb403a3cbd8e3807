// The compare panel: a `trapscope compare` result (visualizer/core/compare_view.hpp) as bar
// charts drawn with ImDrawList (Debian's Dear ImGui 1.86 has no ImPlot): one chart per metric,
// one bar per technique row in the row's colour (the legend), a cluster per member for a group
// of metrics (VM exits by cause), linear or log10 scale, the value in a tooltip, hatched "n/a"
// where a row lacks the metric. Above the charts: a compare run for a chosen workload, in the
// background (visualizer/core/compare_run.hpp: the compare library on a worker thread), with
// its progress; and a JSON file to open.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

#include <nlohmann/json.hpp>

#include "visualizer/panels/panels.hpp"

namespace trapscope::viz {
namespace {

constexpr const char* kPagings[] = {"native", "shadow", "ept"};

ImU32 palette_color(size_t row) {
  static constexpr ImU32 kPalette[] = {
      IM_COL32(150, 160, 175, 255),  // grey
      IM_COL32(240, 150, 60, 255),   // orange
      IM_COL32(80, 150, 240, 255),   // blue
      IM_COL32(90, 200, 120, 255),   // green
      IM_COL32(190, 120, 230, 255),  // violet
      IM_COL32(235, 90, 90, 255),    // red
      IM_COL32(240, 200, 80, 255),   // yellow
      IM_COL32(70, 200, 200, 255),   // teal
      IM_COL32(230, 120, 170, 255),  // pink
      IM_COL32(160, 130, 90, 255),   // brown
  };
  return kPalette[row % std::size(kPalette)];
}

// A technique's index among the result's techniques (first-seen order): its colour, so that a
// result of several workloads (`compare nano`) colours every row of one technique alike.
size_t technique_index(const CompareResult& r, size_t row) {
  std::vector<std::string_view> seen;
  for (size_t i = 0;; ++i) {
    const std::string_view t = r.rows[i].technique;
    const auto it = std::find(seen.begin(), seen.end(), t);
    const size_t index = static_cast<size_t>(it - seen.begin());
    if (it == seen.end()) seen.push_back(t);
    if (i == row) return index;
  }
}

ImU32 row_color(const CompareResult& r, size_t row) { return palette_color(technique_index(r, row)); }

// An axis label: 0, 950, 1.2k, 34M, 5.6G, 0.25.
std::string compact(double v) {
  const double a = std::fabs(v);
  char buf[32];
  if (a >= 1e12) std::snprintf(buf, sizeof buf, "%.3gT", v / 1e12);
  else if (a >= 1e9) std::snprintf(buf, sizeof buf, "%.3gG", v / 1e9);
  else if (a >= 1e6) std::snprintf(buf, sizeof buf, "%.3gM", v / 1e6);
  else if (a >= 1e4) std::snprintf(buf, sizeof buf, "%.3gk", v / 1e3);
  else std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

void run_controls(CompareState& s) {
  const bool running = s.run && !s.run->finished();
  ImGui::AlignTextToFramePadding();
  ImGui::TextUnformatted("Run compare on");
  ImGui::SameLine();
  ImGui::SetNextItemWidth(ImGui::GetFontSize() * 9);
  ImGui::BeginDisabled(running || s.workloads.empty());
  const char* current = s.workloads.empty() ? "(no guests)" : s.workloads[static_cast<size_t>(s.workload)].c_str();
  if (ImGui::BeginCombo("##workload", current)) {
    for (size_t i = 0; i < s.workloads.size(); ++i) {
      if (ImGui::Selectable(s.workloads[i].c_str(), static_cast<int>(i) == s.workload)) {
        s.workload = static_cast<int>(i);
      }
    }
    ImGui::EndCombo();
  }
  ImGui::SameLine();
  ImGui::SetNextItemWidth(ImGui::GetFontSize() * 6);
  ImGui::Combo("paging##compare", &s.paging, kPagings, static_cast<int>(std::size(kPagings)));
  ImGui::SameLine();
  if (ImGui::Button("Run") && !s.workloads.empty()) {
    start_compare_run(s, s.workloads[static_cast<size_t>(s.workload)], kPagings[s.paging]);
  }
  ImGui::EndDisabled();
  tooltip("Runs `trapscope compare WORKLOAD --paging P` in the background: the same guest "
          "under emulation, trap-and-emulate, the VT-x model, BT, PV and KVM.");
  if (running) {
    ImGui::SameLine();
    if (ImGui::Button("Cancel")) s.run->cancel();
    const CompareRun::Progress p = s.run->progress();
    const std::string what = p.technique.empty() ? "starting" : p.technique + " " + p.guest;
    char overlay[256];
    std::snprintf(overlay, sizeof overlay, "%zu/%zu %s  (%.1f s)", p.done, p.total, what.c_str(),
                  p.elapsed_s);
    ImGui::ProgressBar(p.total > 0 ? static_cast<float>(p.done) / static_cast<float>(p.total) : 0.0f,
                       ImVec2(-1, 0), overlay);
  }
}

void legend(const CompareResult& r) {
  // One entry per row; per technique when rows repeat techniques (several workloads).
  std::vector<size_t> shown;
  for (size_t i = 0; i < r.rows.size(); ++i) {
    if (technique_index(r, i) == shown.size()) shown.push_back(i);
  }
  const bool by_technique = shown.size() < r.rows.size();
  if (!by_technique) {
    shown.clear();
    for (size_t i = 0; i < r.rows.size(); ++i) shown.push_back(i);
  }
  const float right = ImGui::GetWindowContentRegionMax().x;
  for (size_t i : shown) {
    const std::string label = by_technique ? r.rows[i].technique : r.rows[i].label();
    const float w = ImGui::GetTextLineHeight() * 0.6f + 5 + ImGui::CalcTextSize(label.c_str()).x;
    if (i != shown.front()) {
      ImGui::SameLine(0, 14);
      if (ImGui::GetCursorPosX() + w > right) ImGui::NewLine();
    }
    chip(row_color(r, i), label.c_str());
  }
}

// One chart in a child window of `size`; records where its bars went.
void draw_chart(const PanelContext& ctx, CompareState& s, const CompareChart& c, ImVec2 size) {
  const CompareResult& r = *s.result;
  // Only a chart wholly in view is recorded for tests (its bars are all on the screen).
  const ImVec2 at = ImGui::GetCursorScreenPos();
  const ImVec2 clip_min = ImGui::GetWindowDrawList()->GetClipRectMin();
  const ImVec2 clip_max = ImGui::GetWindowDrawList()->GetClipRectMax();
  const bool in_view = at.x >= clip_min.x && at.y >= clip_min.y && at.x + size.x <= clip_max.x + 1 &&
                       at.y + size.y <= clip_max.y + 1;
  if (!ImGui::BeginChild(c.key.c_str(), size, true,
                         ImGuiWindowFlags_NoScrollbar | ImGuiWindowFlags_NoScrollWithMouse)) {
    ImGui::EndChild();  // scrolled out of view
    return;
  }
  ImGui::PushFont(ctx.fonts.bold);
  ImGui::TextUnformatted(c.title.c_str());
  ImGui::PopFont();
  if (!c.note.empty()) {  // the second line: what kind of figure, and its source
    chip(c.modelled ? theme::kChanged : theme::kTextDim, c.modelled ? "model" : "published");
    ImGui::SameLine();
    ImGui::TextDisabled("%s", c.note.substr(c.note.find(':') + 1).c_str());
    tooltip(c.note.c_str());
  } else {
    ImGui::TextDisabled("%s", c.key.c_str());
    for (size_t i = 0; i < c.cluster_notes.size(); ++i) {  // members that are models or papers
      const std::string& n = c.cluster_notes[i];
      if (n.empty()) continue;
      ImGui::SameLine(0, 12);
      const bool model = n.rfind("model", 0) == 0;
      chip(model ? theme::kChanged : theme::kTextDim,
           (c.clusters[i] + (model ? ": model" : ": published")).c_str());
      tooltip(n.c_str());
    }
  }
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImVec2 win = ImGui::GetWindowPos();
  const ImVec2 cur = ImGui::GetCursorScreenPos();
  const float line = ImGui::GetTextLineHeight();
  const bool clustered = c.clusters.size() > 1 || !c.clusters.front().empty();
  const float axis_w = ImGui::CalcTextSize("100.0M").x + 6;
  const float x0 = cur.x + axis_w, y0 = cur.y + line * 0.5f;
  const float x1 = win.x + size.x - ImGui::GetStyle().WindowPadding.x;
  const float y1 = win.y + size.y - ImGui::GetStyle().WindowPadding.y - (clustered ? line + 2 : 2);
  if (x1 - x0 < 20 || y1 - y0 < 20) {
    ImGui::EndChild();
    return;
  }
  const ChartLayout l = layout_chart(c, x0, y0, x1 - x0, y1 - y0, s.log_scale);
  // Grid and axis: every decade (log), or 0, half and the top (linear).
  auto grid = [&](double v, float y) {
    dl->AddLine(ImVec2(x0, y), ImVec2(x1, y), theme::kGrid);
    const std::string t = compact(v);
    dl->AddText(ImVec2(x0 - 4 - ImGui::CalcTextSize(t.c_str()).x, y - line * 0.5f), theme::kTextDim, t.c_str());
  };
  if (s.log_scale) {
    const double lo = std::log10(l.axis_min), hi = std::log10(l.axis_max);
    const int step = std::max(1, static_cast<int>(std::ceil((hi - lo) / 5)));
    for (double e = lo; e <= hi + 1e-9; e += step) {
      grid(std::pow(10.0, e), y1 - static_cast<float>((e - lo) / (hi - lo)) * (y1 - y0));
    }
  } else {
    for (double f : {0.0, 0.5, 1.0}) grid(l.axis_max * f, y1 - static_cast<float>(f) * (y1 - y0));
  }
  const ImVec2 mouse = ImGui::GetIO().MousePos;
  const ChartBar* hover = ImGui::IsWindowHovered() ? bar_at(l, mouse.x, mouse.y) : nullptr;
  for (const ChartBar& b : l.bars) {
    const ImU32 col = row_color(r, b.row);
    if (!b.value) {  // n/a: a hatched, outlined stub, never a bar of 0
      const float top = std::max(y0, y1 - line * 1.6f);
      dl->PushClipRect(ImVec2(b.x0, top), ImVec2(b.x1, y1), true);
      for (float x = b.x0 - (y1 - top); x < b.x1; x += 5) {
        dl->AddLine(ImVec2(x, y1), ImVec2(x + (y1 - top), top), theme::kTextDim);
      }
      dl->PopClipRect();
      dl->AddRect(ImVec2(b.x0, top), ImVec2(b.x1, y1), theme::kTextDim);
      const ImVec2 t = ImGui::CalcTextSize("n/a");
      if (t.x + 2 <= b.x1 - b.x0) {
        dl->AddText(ImVec2((b.x0 + b.x1 - t.x) * 0.5f, top - t.y - 1), theme::kTextDim, "n/a");
      }
    } else if (b.y0 < b.y1 - 0.5f) {
      dl->AddRectFilled(ImVec2(b.x0, b.y0), ImVec2(b.x1, b.y1), col);
    } else {  // 0 (or under the log scale's bottom): a line on the baseline
      dl->AddLine(ImVec2(b.x0, y1 - 1), ImVec2(b.x1, y1 - 1), col, 2.0f);
    }
    if (&b == hover) {
      dl->AddRect(ImVec2(b.x0 - 1, std::min(b.y0, y1 - 3) - 1), ImVec2(b.x1 + 1, y1 + 1), theme::kSelected);
    }
  }
  dl->AddLine(ImVec2(x0, y1), ImVec2(x1, y1), theme::kTextDim);
  if (clustered) {  // the members' names under their clusters, clipped to their slots
    const float slot = (x1 - x0) / static_cast<float>(c.clusters.size());
    for (size_t i = 0; i < c.clusters.size(); ++i) {
      const float sx = x0 + slot * static_cast<float>(i);
      const char* name = c.clusters[i].empty() ? "total" : c.clusters[i].c_str();
      const float tw = ImGui::CalcTextSize(name).x;
      dl->PushClipRect(ImVec2(sx, y1), ImVec2(sx + slot, y1 + line + 4), true);
      dl->AddText(ImVec2(sx + std::max(0.0f, (slot - tw) * 0.5f), y1 + 2), theme::kText, name);
      dl->PopClipRect();
    }
  }
  if (hover) {
    const std::string tip = bar_tooltip(r, c, *hover);
    ImGui::BeginTooltip();
    ImGui::PushTextWrapPos(ImGui::GetFontSize() * 30.0f);
    ImGui::TextUnformatted(tip.c_str());
    ImGui::PopTextWrapPos();
    ImGui::EndTooltip();
  }
  if (in_view) s.drawn.push_back({c.key, x0, y0, x1 - x0, y1 - y0, l});
  ImGui::EndChild();
}

}  // namespace

bool start_compare_run(CompareState& s, const std::string& workload, const std::string& paging) {
  if (s.run && !s.run->finished()) {
    s.error = "a compare run is going on";
    return false;
  }
  const auto w = std::find(s.workloads.begin(), s.workloads.end(), workload);
  const auto p = std::find(std::begin(kPagings), std::end(kPagings), paging);
  if (w == s.workloads.end() || p == std::end(kPagings)) {
    s.error = "no built-in workload '" + workload + "' with paging '" + paging + "'";
    return false;
  }
  s.workload = static_cast<int>(w - s.workloads.begin());
  s.paging = static_cast<int>(p - std::begin(kPagings));
  s.error.clear();
  s.warning.clear();
  compare::Options options;
  options.workload = workload;
  options.paging = paging;
  s.run = std::make_unique<CompareRun>(std::move(options));
  return true;
}

bool collect_compare_run(CompareState& s) {
  if (!s.run || !s.run->finished()) return false;
  std::string error, warning;
  auto r = s.run->result(&error, &warning);
  if (r) s.result = std::move(r);
  s.error = error;
  s.warning = warning;
  s.run.reset();
  return true;
}

void draw_compare(PanelContext& ctx, CompareState& s, bool* open) {
  s.drawn.clear();
  if (!*open) return;
  collect_compare_run(s);
  if (s.focus) {
    ImGui::SetNextWindowFocus();
    s.focus = false;
  }
  if (!ImGui::Begin("Compare", open)) {
    ImGui::End();
    return;
  }
  run_controls(s);
  if (!s.error.empty()) ImGui::TextColored(theme::to_vec4(theme::kError), "%s", s.error.c_str());
  if (!s.warning.empty()) ImGui::TextColored(theme::to_vec4(theme::kChanged), "%s", s.warning.c_str());
  ImGui::Separator();
  if (!s.result) {
    ImGui::TextDisabled("No compare result yet: run one above, or open a file written by "
                        "`trapscope compare WORKLOAD --json FILE` with `trapscope gui --compare FILE`.");
    ImGui::End();
    return;
  }
  const CompareResult& r = *s.result;
  ImGui::Text("%s%s%s", r.workload.empty() ? "" : ("workload " + r.workload).c_str(),
              r.paging.empty() ? "" : (" \u00B7 paging " + r.paging).c_str(),
              (" \u00B7 " + std::to_string(r.rows.size()) + " rows \u00B7 " + r.source).c_str());
  ImGui::SameLine();
  std::string about = "Every number of a row is a chart, every group of numbers (e.g. exits by "
                      "cause) a grouped chart; n/a (hatched) is a count the row's technique "
                      "cannot observe, not a zero. Host wall time is noisy.\n";
  for (const auto& [k, v] : r.header) about += "\n" + k + ": " + v;
  help_marker(about.c_str());
  ImGui::SameLine(0, 24);
  ImGui::Checkbox("log scale", &s.log_scale);
  tooltip("log10 axis: counts differ by orders of magnitude between techniques. A zero has "
          "no bar under a log scale (a line on the baseline).");
  legend(r);
  ImGui::BeginChild("charts", ImVec2(0, 0), false);
  const float avail = ImGui::GetContentRegionAvail().x;
  const float spacing = ImGui::GetStyle().ItemSpacing.x;
  const int columns = std::max(1, static_cast<int>(avail / (ImGui::GetFontSize() * 24)));
  const float w = std::floor((avail - spacing * static_cast<float>(columns - 1)) / static_cast<float>(columns));
  const float h = std::floor(ImGui::GetFontSize() * 12);
  // A grid in the table's order. Groups get room: two cells for a few members, a whole line
  // for many — such a chart waits for the line it would break to be full, so no hole is left.
  int col = 0;
  std::vector<size_t> waiting;
  auto span_of = [&](const CompareChart& c) {
    if (c.clusters.size() > 8) return columns;
    return c.clusters.size() > 3 ? std::min(2, columns) : 1;
  };
  auto put = [&](size_t i) {
    const int span = span_of(r.charts[i]);
    if (col + span > columns) col = 0;  // a new line
    if (col > 0) ImGui::SameLine();
    draw_chart(ctx, s, r.charts[i], ImVec2(w * static_cast<float>(span) + spacing * static_cast<float>(span - 1), h));
    col = (col + span) % columns;
  };
  auto flush = [&] {
    for (size_t i : waiting) put(i);
    waiting.clear();
  };
  for (size_t i = 0; i < r.charts.size(); ++i) {
    if (span_of(r.charts[i]) == columns && col != 0) {
      waiting.push_back(i);
      continue;
    }
    if (col + span_of(r.charts[i]) > columns) flush();
    put(i);
    if (col == 0) flush();
  }
  col = 0;
  flush();
  ImGui::EndChild();
  ImGui::End();
}

nlohmann::json dump_compare(const CompareState& s) {
  nlohmann::json j;
  j["loaded"] = s.result.has_value();
  j["error"] = s.error;
  j["warning"] = s.warning;
  j["log_scale"] = s.log_scale;
  j["running"] = s.run && !s.run->finished();
  if (s.result) {
    j["source"] = s.result->source;
    j["workload"] = s.result->workload;
    j["rows"] = nlohmann::json::array();
    for (const CompareRow& row : s.result->rows) j["rows"].push_back(row.label());
  }
  j["charts"] = nlohmann::json::array();
  for (const auto& d : s.drawn) {
    const CompareChart* c = s.result ? s.result->chart(d.key) : nullptr;
    nlohmann::json cj = {{"key", d.key},
                         {"title", c ? c->title : ""},
                         {"note", c ? c->note : ""},
                         {"plot", {d.x, d.y, d.w, d.h}},
                         {"axis_min", d.layout.axis_min},
                         {"axis_max", d.layout.axis_max},
                         {"bars", nlohmann::json::array()}};
    for (const ChartBar& b : d.layout.bars) {
      cj["bars"].push_back({{"row", b.row},
                            {"cluster", c ? c->clusters[b.cluster] : ""},
                            {"value", b.value ? nlohmann::json(*b.value) : nlohmann::json(nullptr)},
                            {"rect", {b.x0, b.y0, b.x1, b.y1}}});
    }
    j["charts"].push_back(cj);
  }
  return j;
}

}  // namespace trapscope::viz
