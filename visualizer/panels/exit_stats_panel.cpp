// VM exit statistics per exit reason, in the columns of `perf kvm stat report`: samples, share
// of samples, share of handling time, min, max and mean handling time. Click a row to filter
// the event list by that reason.
#include <algorithm>
#include <cstdio>

#include "visualizer/core/describe.hpp"
#include "visualizer/panels/panels.hpp"

namespace trapscope::viz {

void draw_exit_stats(PanelContext& ctx) {
  ImGui::Begin("Exit statistics");
  const trace::ExitStats& stats = ctx.model.exit_stats();
  std::vector<std::pair<uint32_t, trace::ExitReasonStats>> rows(stats.by_reason().begin(),
                                                                 stats.by_reason().end());
  std::stable_sort(rows.begin(), rows.end(),
                   [](const auto& a, const auto& b) { return a.second.count > b.second.count; });
  uint64_t total_ns = 0;
  for (const auto& [reason, s] : rows) total_ns += s.total_ns;
  ImGui::TextDisabled("%s VM exits", with_commas(stats.total()).c_str());
  ImGui::SameLine();
  help_marker("One row per exit reason (KVM's KVM_EXIT_* numbers), with perf kvm stat's "
              "columns. Time is the host time the VMM spent handling the exit (KVM backend); "
              "the simulator does not time its VMM, so its time columns show \u2014.\n\nClick a row to show "
              "only those exits in the event list.");
  if (rows.empty()) {
    ImGui::TextDisabled("No VM exits yet.");
    ImGui::End();
    return;
  }
  const ImGuiTableFlags flags = ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerV |
                                ImGuiTableFlags_SizingFixedFit | ImGuiTableFlags_ScrollX |
                                ImGuiTableFlags_ScrollY | ImGuiTableFlags_BordersOuterH;
  if (ImGui::BeginTable("stats", 8, flags)) {
    ImGui::TableSetupScrollFreeze(0, 1);
    for (const char* h : {"VM-EXIT", "Samples", "Samples%", "Time%", "Min time", "Max time",
                          "Avg time", "Total"}) {
      ImGui::TableSetupColumn(h);
    }
    ImGui::TableHeadersRow();
    for (const auto& [reason, s] : rows) {
      ImGui::TableNextRow();
      ImGui::TableNextColumn();
      const std::string name = std::string(trace::exit_reason_name(reason)) + " (" +
                               std::to_string(reason) + ")";
      ImGui::PushID(static_cast<int>(reason));
      const ImVec2 p = ImGui::GetCursorScreenPos();
      if (ImGui::Selectable("##row", false, ImGuiSelectableFlags_SpanAllColumns)) {
        std::string err;
        ctx.actions.set_filter("reason=" + std::string(trace::exit_reason_name(reason)), &err);
      }
      ImGui::SetCursorScreenPos(p);
      chip(theme::exit_reason_color(reason), name.c_str());
      ImGui::PopID();
      auto cell = [&](const std::string& t) {
        ImGui::TableNextColumn();
        const float w = ImGui::CalcTextSize(t.c_str()).x;
        // Right-aligned; never shifted left of the column, so auto-fit sees the full width.
        ImGui::SetCursorPosX(ImGui::GetCursorPosX() + std::max(0.0f, ImGui::GetColumnWidth() - w));
        mono_text(ctx.fonts, theme::kText, t.c_str());
      };
      char buf[32];
      cell(with_commas(s.count));
      std::snprintf(buf, sizeof buf, "%.2f%%", 100.0 * static_cast<double>(s.count) /
                                                  static_cast<double>(std::max<uint64_t>(stats.total(), 1)));
      cell(buf);
      if (total_ns) {
        std::snprintf(buf, sizeof buf, "%.2f%%",
                      100.0 * static_cast<double>(s.total_ns) / static_cast<double>(total_ns));
      } else {
        std::snprintf(buf, sizeof buf, "\u2014");
      }
      cell(buf);
      if (total_ns == 0) {  // untimed (the simulator, a trace recorded with --no-timing)
        for (int c = 0; c < 4; ++c) cell("\u2014");
        continue;
      }
      cell(duration_ns(s.count ? s.min_ns : 0));
      cell(duration_ns(s.max_ns));
      cell(duration_ns(s.count ? s.total_ns / s.count : 0));
      cell(duration_ns(s.total_ns));
    }
    ImGui::EndTable();
  }
  ImGui::End();
}

}  // namespace trapscope::viz
