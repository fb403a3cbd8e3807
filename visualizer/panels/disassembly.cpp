// Disassembly around RIP (Zydis, through x86/disasm.hpp), with the Popek–Goldberg class
// of each instruction from the classifier hook (visualizer/core/pg_classifier_hook.hpp, which
// forwards to x86/classify.hpp). Click the gutter to set
// or clear an address breakpoint.
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "visualizer/core/describe.hpp"
#include "visualizer/panels/panels.hpp"

namespace trapscope::viz {
namespace {

bool same_window(const CodeWindow& a, const CodeWindow& b) {
  return a.valid == b.valid && a.rip == b.rip && a.start == b.start && a.mode == b.mode &&
         a.bytes == b.bytes && a.readable == b.readable;
}

ImU32 pg_color(PgClass c) {
  switch (c) {
    case PgClass::kPrivileged: return IM_COL32(255, 120, 100, 255);
    case PgClass::kSensitive: return IM_COL32(250, 200, 80, 255);
    case PgClass::kInnocuous: return IM_COL32(120, 210, 140, 255);
    case PgClass::kUnclassified: break;
  }
  return IM_COL32(95, 102, 115, 255);
}

// A trace holds no memory, but it may hold the retired instructions: show those around the
// selected event, as they executed.
void draw_recorded_instructions(PanelContext& ctx, DisassemblyState& s) {
  const Model& m = ctx.model;
  const auto& lane = m.lane(trace::EventType::kInstruction);
  if (lane.empty()) {
    ImGui::TextDisabled("This trace holds no instructions (record them with `trapscope run "
                        "--backend sim --record-instructions`); a VM exit's instruction is in "
                        "Event details.");
    return;
  }
  ImGui::TextDisabled("recorded instructions around the selected event (a trace holds no "
                      "memory); highlighted: the next one");
  const auto sel = static_cast<uint32_t>(std::max<int64_t>(m.selected(), 0));
  auto it = std::lower_bound(lane.begin(), lane.end(), sel);  // the next instruction to run
  const auto first = it - std::min<ptrdiff_t>(it - lane.begin(), 12);
  const auto last = it + std::min<ptrdiff_t>(lane.end() - it, 28);
  const ImGuiTableFlags flags = ImGuiTableFlags_ScrollY | ImGuiTableFlags_RowBg |
                                ImGuiTableFlags_SizingFixedFit | ImGuiTableFlags_BordersInnerV;
  if (ImGui::BeginTable("recorded", 4, flags)) {
    ImGui::TableSetupScrollFreeze(0, 1);
    ImGui::TableSetupColumn("#", ImGuiTableColumnFlags_WidthFixed);
    ImGui::TableSetupColumn("CPL", ImGuiTableColumnFlags_WidthFixed);
    ImGui::TableSetupColumn("address", ImGuiTableColumnFlags_WidthFixed);
    ImGui::TableSetupColumn("instruction", ImGuiTableColumnFlags_WidthStretch);
    ImGui::TableHeadersRow();
    EventRecord r;
    for (auto i = first; i != last; ++i) {
      m.events().load(*i, &r);
      ImGui::TableNextRow();
      const bool here = it != lane.end() && *i == *it;
      if (here) {
        ImGui::TableSetBgColor(ImGuiTableBgTarget_RowBg1, theme::kRipRow);
        if (s.seen_selection != m.selection_serial()) {
          s.seen_selection = m.selection_serial();
          ImGui::SetScrollHereY(0.4f);
        }
      }
      ImGui::TableNextColumn();
      if (ImGui::Selectable(std::to_string(*i).c_str(), false, ImGuiSelectableFlags_SpanAllColumns)) {
        ctx.actions.select(*i);
      }
      ImGui::TableNextColumn();
      mono_text(ctx.fonts, theme::cpl_color(r.header.cpl), std::to_string(r.header.cpl).c_str());
      ImGui::TableNextColumn();
      mono_text(ctx.fonts, theme::kTextDim, hex_fixed(r.header.rip, 8).c_str());
      ImGui::TableNextColumn();
      mono_text(ctx.fonts, here ? IM_COL32(255, 255, 255, 255) : theme::kText,
                event_brief(r).c_str());
    }
    ImGui::EndTable();
  }
}

}  // namespace

void draw_disassembly(PanelContext& ctx, DisassemblyState& s) {
  ImGui::Begin("Disassembly");
  const Model& m = ctx.model;
  const CodeWindow& w = m.code();
  if (!w.valid && m.status().state == RunState::kTrace) {
    draw_recorded_instructions(ctx, s);
    ImGui::End();
    return;
  }
  if (!w.valid) {
    ImGui::TextDisabled("No code yet.");
    ImGui::End();
    return;
  }
  if (!same_window(w, s.cached)) {
    s.cached = w;
    s.lines = disassemble_around(w, 12, 40);
  }
  ImGui::TextDisabled("%s \u00B7 CS base %s \u00B7 RIP %s", std::string(cpu_mode_name(w.mode)).c_str(),
                      hex(w.cs_base).c_str(), hex(w.rip).c_str());
  ImGui::SameLine();
  help_marker(
      "Instructions around RIP, decoded by Zydis in the current mode. Lines before RIP are a "
      "best guess (x86 cannot be decoded backwards).\n\nThe last column is the "
      "Popek\u2013Goldberg class — privileged (traps outside ring 0), sensitive (touches state a "
      "VMM must control but does not trap) or innocuous; `trapscope classify` gives the "
      "reason.\n\nClick the gutter to "
      "toggle an address breakpoint.");

  const ImGuiTableFlags flags = ImGuiTableFlags_ScrollY | ImGuiTableFlags_RowBg |
                                ImGuiTableFlags_SizingFixedFit | ImGuiTableFlags_BordersInnerV;
  if (ImGui::BeginTable("disasm", 5, flags)) {
    ImGui::TableSetupScrollFreeze(0, 1);
    ImGui::TableSetupColumn("", ImGuiTableColumnFlags_WidthFixed, 22);
    ImGui::TableSetupColumn("address", ImGuiTableColumnFlags_WidthFixed);
    ImGui::TableSetupColumn("bytes", ImGuiTableColumnFlags_WidthFixed);
    ImGui::TableSetupColumn("instruction", ImGuiTableColumnFlags_WidthStretch);
    ImGui::TableSetupColumn("P\u2013G class", ImGuiTableColumnFlags_WidthFixed);
    ImGui::TableHeadersRow();
    bool scrolled = false;
    for (const DisasmLine& l : s.lines) {
      ImGui::TableNextRow();
      if (l.is_rip) ImGui::TableSetBgColor(ImGuiTableBgTarget_RowBg1, theme::kRipRow);
      ImGui::TableNextColumn();
      const auto& bps = m.breakpoints();
      const bool has_bp = std::any_of(bps.begin(), bps.end(), [&](const Breakpoint& b) {
        return b.kind == Breakpoint::Kind::kAddress && b.address == l.address && b.enabled;
      });
      ImGui::PushID(static_cast<int>(l.address));
      const ImVec2 p = ImGui::GetCursorScreenPos();
      const float h = ImGui::GetTextLineHeight();
      if (ImGui::InvisibleButton("gutter", ImVec2(20, h))) {
        ctx.actions.toggle_address_breakpoint(l.address);
      }
      if (ImGui::IsItemHovered()) {
        ImGui::SetTooltip(has_bp ? "Remove the breakpoint at %s" : "Stop before executing %s",
                          hex(l.address).c_str());
      }
      ImDrawList* dl = ImGui::GetWindowDrawList();
      if (has_bp) {
        dl->AddCircleFilled(ImVec2(p.x + 6, p.y + h * 0.5f), h * 0.3f, theme::kBreakpoint);
      } else if (ImGui::IsItemHovered()) {
        dl->AddCircle(ImVec2(p.x + 6, p.y + h * 0.5f), h * 0.3f, theme::kBreakpoint);
      }
      if (l.is_rip) {
        const float x = p.x + 12;
        dl->AddTriangleFilled(ImVec2(x, p.y + 2), ImVec2(x, p.y + h - 2),
                              ImVec2(x + 7, p.y + h * 0.5f), IM_COL32(120, 170, 255, 255));
        if (!scrolled && ImGui::IsWindowAppearing()) ImGui::SetScrollHereY(0.3f);
        scrolled = true;
      }
      ImGui::PopID();
      ImGui::TableNextColumn();
      mono_text(ctx.fonts, l.is_rip ? theme::kText : theme::kTextDim, hex_fixed(l.address, 8).c_str());
      ImGui::TableNextColumn();
      std::string bytes;
      for (int i = 0; i < l.length && i < 8; ++i) {
        char b[4];
        std::snprintf(b, sizeof b, "%02x ", l.bytes[i]);
        bytes += b;
      }
      if (l.length > 8) bytes += "…";
      mono_text(ctx.fonts, theme::kTextDim, bytes.c_str());
      ImGui::TableNextColumn();
      mono_text(ctx.fonts, l.ok ? (l.is_rip ? IM_COL32(255, 255, 255, 255) : theme::kText)
                                : theme::kError,
                l.text.c_str());
      ImGui::TableNextColumn();
      mono_text(ctx.fonts, pg_color(l.pg), std::string(to_string(l.pg)).c_str());
    }
    ImGui::EndTable();
  }
  ImGui::End();
}

}  // namespace trapscope::viz
