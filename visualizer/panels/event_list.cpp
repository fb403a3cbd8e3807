// The event list: every event (or those the filter lets through) in a table that only formats
// the rows on screen; clicking selects (everywhere), Up/Down move the selection.
#include <cstdio>

#include "visualizer/core/describe.hpp"
#include "visualizer/panels/panels.hpp"

namespace trapscope::viz {

void draw_event_list(PanelContext& ctx, EventListState& s) {
  ImGui::Begin("Events");
  Model& m = ctx.model;

  ImGui::SetNextItemWidth(-ImGui::CalcTextSize("9,999,999 of 9,999,999 (?)").x - 16);
  if (s.focus_filter) {
    ImGui::SetKeyboardFocusHere();
    s.focus_filter = false;
  }
  if (ImGui::InputTextWithHint("##filter", "filter: exit  io port=0xe9  cpl=3  -insn  text…",
                               s.filter, sizeof s.filter)) {
    std::string err;
    if (ctx.actions.set_filter(s.filter, &err)) {
      s.filter_error.clear();
    } else {
      s.filter_error = err;
    }
  }
  ImGui::SameLine();
  ImGui::TextDisabled("%s of %s", with_commas(m.visible_count()).c_str(),
                      with_commas(m.events().size()).c_str());
  if (m.dropped() != 0) {  // the model's cap (trace/limits.hpp)
    ImGui::SameLine();
    ImGui::TextColored({1.0f, 0.6f, 0.2f, 1.0f}, "(%s events dropped: limit of %zu MiB)",
                       with_commas(m.dropped()).c_str(), m.limit_bytes() >> 20);
  }
  ImGui::SameLine();
  help_marker(
      "All words must match.\n"
      "  exit ring exception walk insn end — an event type\n"
      "  io hlt mmio shutdown … — a VM exit reason\n"
      "  cpl=3  port=0xe9  vector=14  reason=IO — a field\n"
      "  rip=0x8000..0x8100 — a RIP range\n"
      "  in / out — I/O direction;  -word — negation\n"
      "  anything else — text in the event's description (slower on big traces)");
  if (!s.filter_error.empty()) {
    ImGui::TextColored(theme::to_vec4(theme::kError), "%s", s.filter_error.c_str());
  }
  if (m.filter_pending()) {
    ImGui::ProgressBar(static_cast<float>(m.filter_progress()), ImVec2(-1, 0), "filtering…");
  }

  const ImGuiTableFlags flags = ImGuiTableFlags_ScrollY | ImGuiTableFlags_RowBg |
                                ImGuiTableFlags_BordersOuter | ImGuiTableFlags_BordersV |
                                ImGuiTableFlags_Resizable | ImGuiTableFlags_SizingFixedFit;
  const float row_h = ImGui::GetTextLineHeight() + 2 * ImGui::GetStyle().CellPadding.y;
  if (ImGui::BeginTable("events", 5, flags, ImVec2(0, 0))) {
    ImGui::TableSetupScrollFreeze(0, 1);
    ImGui::TableSetupColumn("#", ImGuiTableColumnFlags_WidthFixed, 64);
    ImGui::TableSetupColumn("type", ImGuiTableColumnFlags_WidthFixed, 86);
    ImGui::TableSetupColumn("CPL", ImGuiTableColumnFlags_WidthFixed, 32);
    ImGui::TableSetupColumn("RIP", ImGuiTableColumnFlags_WidthFixed, 80);
    ImGui::TableSetupColumn("what", ImGuiTableColumnFlags_WidthStretch);
    ImGui::TableHeadersRow();

    // Scroll to a selection made elsewhere (timeline, a step, a script).
    if (s.seen_selection != m.selection_serial()) {
      s.seen_selection = m.selection_serial();
      if (m.selected() >= 0) {
        if (auto row = m.row_of(static_cast<size_t>(m.selected()))) {
          const float y = static_cast<float>(*row) * row_h;
          const float view = ImGui::GetWindowHeight() - row_h * 2;
          if (y < ImGui::GetScrollY() || y > ImGui::GetScrollY() + view) {
            ImGui::SetScrollY(std::max(0.0f, y - view * 0.5f));
          }
        }
      }
    }
    // Up/Down move the selection through the visible rows.
    if (ImGui::IsWindowFocused(ImGuiFocusedFlags_RootAndChildWindows) &&
        !ImGui::GetIO().WantTextInput && m.visible_count() > 0) {
      const int up = ImGui::GetKeyIndex(ImGuiKey_UpArrow);
      const int down = ImGui::GetKeyIndex(ImGuiKey_DownArrow);
      const auto row = m.selected() >= 0 ? m.row_of(static_cast<size_t>(m.selected())) : std::nullopt;
      if (ImGui::IsKeyPressed(down)) {
        const size_t next = row ? std::min(*row + 1, m.visible_count() - 1) : 0;
        ctx.actions.select(static_cast<int64_t>(m.visible(next)));
      } else if (ImGui::IsKeyPressed(up) && row && *row > 0) {
        ctx.actions.select(static_cast<int64_t>(m.visible(*row - 1)));
      }
    }

    ImGuiListClipper clipper;
    clipper.Begin(static_cast<int>(m.visible_count()), row_h);
    EventRecord r;
    while (clipper.Step()) {
      for (int row = clipper.DisplayStart; row < clipper.DisplayEnd; ++row) {
        const size_t i = m.visible(static_cast<size_t>(row));
        m.events().load(i, &r);
        ImGui::TableNextRow(0, row_h);
        ImGui::TableNextColumn();
        char num[32];
        std::snprintf(num, sizeof num, "%zu", i);
        const bool selected = static_cast<int64_t>(i) == m.selected();
        ImGui::PushFont(ctx.fonts.mono);
        if (ImGui::Selectable(num, selected,
                              ImGuiSelectableFlags_SpanAllColumns | ImGuiSelectableFlags_AllowItemOverlap,
                              ImVec2(0, 0))) {
          ctx.actions.select(static_cast<int64_t>(i));
        }
        ImGui::PopFont();
        ImGui::TableNextColumn();
        const ImU32 c = r.header.type == trace::EventType::kVmExit
                            ? theme::exit_reason_color(r.exit.reason)
                            : theme::event_color(r.header.type);
        std::string type(type_label(r.header.type));
        if (r.header.type == trace::EventType::kVmExit) {
          type = trace::exit_reason_name(r.exit.reason);
        } else if (r.header.type == trace::EventType::kException) {
          type = vector_mnemonic(r.exception.vector);
        }
        chip(c, type.c_str());
        ImGui::TableNextColumn();
        if (r.header.cpl <= 3) {
          char cpl[4];
          std::snprintf(cpl, sizeof cpl, "%u", r.header.cpl);
          mono_text(ctx.fonts, theme::cpl_color(r.header.cpl), cpl);
        }
        ImGui::TableNextColumn();
        mono_text(ctx.fonts, theme::kTextDim, hex(r.header.rip).c_str());
        ImGui::TableNextColumn();
        const std::string what = event_brief(r);
        if (r.header.type == trace::EventType::kInstruction) {
          mono_text(ctx.fonts, theme::kTextDim, what.c_str());
        } else {
          mono_text(ctx.fonts, theme::kText, what.c_str());
        }
      }
    }
    ImGui::EndTable();
  }
  ImGui::End();
}

void draw_event_details(PanelContext& ctx) {
  ImGui::Begin("Event details");
  Model& m = ctx.model;
  if (m.selected() < 0) {
    ImGui::TextDisabled("No event selected: step, or click an event in the list or timeline.");
    ImGui::End();
    return;
  }
  EventRecord r;
  m.events().load(static_cast<size_t>(m.selected()), &r);
  const ImU32 c = r.header.type == trace::EventType::kVmExit ? theme::exit_reason_color(r.exit.reason)
                                                             : theme::event_color(r.header.type);
  ImGui::PushFont(ctx.fonts.large);
  std::string title = std::string(type_label(r.header.type));
  if (r.header.type == trace::EventType::kVmExit) {
    title += " \u2014 " + std::string(trace::exit_reason_name(r.exit.reason));
  } else if (r.header.type == trace::EventType::kException) {
    title += " \u2014 " + vector_mnemonic(r.exception.vector);
  } else if (r.header.type == trace::EventType::kVmTransition) {
    title += " \u2014 " + std::string(x86::vmx_exit_reason_name(r.virt.exit_reason));
  }
  chip(c, title.c_str());
  ImGui::PopFont();
  ImGui::PushTextWrapPos(0.0f);
  ImGui::TextDisabled("%s", explain(r, ctx.lang).c_str());
  ImGui::PopTextWrapPos();
  ImGui::Spacing();
  if (ImGui::BeginTable("fields", 2, ImGuiTableFlags_RowBg | ImGuiTableFlags_SizingStretchProp)) {
    // VT-x exit qualifications name their bits ("5:4 access type"): a wider name column.
    const bool vt = r.header.type == trace::EventType::kVmTransition;
    ImGui::TableSetupColumn("field", ImGuiTableColumnFlags_WidthFixed, vt ? 230.0f : 120.0f);
    ImGui::TableSetupColumn("value", ImGuiTableColumnFlags_WidthStretch);
    for (const Field& f : event_fields(r, ctx.lang)) {
      ImGui::TableNextRow();
      ImGui::TableNextColumn();
      ImGui::TextDisabled("%s", f.name.c_str());
      ImGui::TableNextColumn();
      mono_text(ctx.fonts, theme::kText, f.value.c_str());
      if (!f.note.empty()) {
        ImGui::SameLine();
        ImGui::TextDisabled("%s", f.note.c_str());
      }
    }
    ImGui::EndTable();
  }
  ImGui::End();
}

}  // namespace trapscope::viz
