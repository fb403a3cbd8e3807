// VM exit statistics per exit reason, in the columns of `perf kvm stat report`: samples, share
// of samples, share of handling time, min, max and mean handling time. Click a row to filter
// the event list by that reason.
#include <algorithm>
#include <cstdio>

#include "visualizer/core/describe.hpp"
#include "visualizer/panels/panels.hpp"

namespace trapscope::viz {

namespace {

// The VT-x model's exits by basic exit reason (--technique vt, pv; trace/exit_stats.hpp).
void vmx_rows(PanelContext& ctx, const trace::ExitStats& stats) {
  const Lang l = ctx.lang;
  std::vector<std::pair<uint32_t, uint64_t>> rows(stats.by_vmx_reason().begin(),
                                                  stats.by_vmx_reason().end());
  std::stable_sort(rows.begin(), rows.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  ImGui::TextDisabled("%s %s", with_commas(stats.vmx_total()).c_str(),
                      es_en(l, "salidas VM del modelo VT-x", "VT-x model VM exits"));
  ImGui::SameLine();
  help_marker(es_en(l,
                    "Una fila por motivo básico de salida (Intel SDM Vol. 3C, apéndice C): las "
                    "salidas que los controles de la VMCS piden (panel VMCS). Clic en una fila: "
                    "la lista de eventos muestra solo esas transiciones.",
                    "One row per basic exit reason (Intel SDM Vol. 3C Appendix C): the exits the "
                    "VMCS controls ask for (VMCS panel). Click a row to show only those "
                    "transitions in the event list."));
  const ImGuiTableFlags flags = ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerV |
                                ImGuiTableFlags_SizingFixedFit | ImGuiTableFlags_BordersOuterH;
  if (!ImGui::BeginTable("vmx", 3, flags)) return;
  ImGui::TableSetupColumn(es_en(l, "motivo básico", "basic exit reason"));
  ImGui::TableSetupColumn(es_en(l, "salidas", "exits"));
  ImGui::TableSetupColumn("%");
  ImGui::TableHeadersRow();
  for (const auto& [reason, n] : rows) {
    ImGui::TableNextRow();
    ImGui::TableNextColumn();
    const std::string name =
        std::string(x86::vmx_exit_reason_name(reason)) + " (" + std::to_string(reason) + ")";
    ImGui::PushID(static_cast<int>(reason) + 0x10000);
    const ImVec2 p = ImGui::GetCursorScreenPos();
    if (ImGui::Selectable("##vmx", false, ImGuiSelectableFlags_SpanAllColumns)) {
      std::string err;
      ctx.actions.set_filter("vm_transition reason=" + std::string(x86::vmx_exit_reason_name(reason)),
                             &err);
    }
    tooltip(std::string(x86::vmx_exit_reason_title(reason)).c_str());
    ImGui::SetCursorScreenPos(p);
    chip(theme::event_color(trace::EventType::kVmTransition), name.c_str());
    ImGui::PopID();
    ImGui::TableNextColumn();
    mono_text(ctx.fonts, theme::kText, with_commas(n).c_str());
    ImGui::TableNextColumn();
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f%%",
                  100.0 * static_cast<double>(n) / static_cast<double>(stats.vmx_total()));
    mono_text(ctx.fonts, theme::kText, buf);
  }
  ImGui::EndTable();
  ImGui::Spacing();
}

}  // namespace

void draw_exit_stats(PanelContext& ctx) {
  ImGui::Begin("Exit statistics");
  const trace::ExitStats& stats = ctx.model.exit_stats();
  if (stats.vmx_total()) vmx_rows(ctx, stats);
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
    if (!stats.vmx_total()) ImGui::TextDisabled("%s", es_en(ctx.lang, "Aún no hay salidas VM.", "No VM exits yet."));
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
