// Small widgets shared by the panels: help markers (after imgui_demo.cpp's HelpMarker),
// colour chips, buttons with shortcut tooltips, highlighted values.
#include "visualizer/panels/panels.hpp"

namespace trapscope::viz {

const char* shortcut_keys(Shortcut s) {
  switch (s) {
    case Shortcut::kStep: return "S or F10";
    case Shortcut::kStepBack: return "B or Shift+F10";
    case Shortcut::kStepExit: return "X or F8";
    case Shortcut::kStepRing: return "R";
    case Shortcut::kStepException: return "E";
    case Shortcut::kStepWalk: return "W";
    case Shortcut::kStepTranslation: return "T";
    case Shortcut::kStepAny: return "A";
    case Shortcut::kRunPause: return "F5 or Space";
    case Shortcut::kReset: return "Ctrl+R";
    case Shortcut::kCount: break;
  }
  return "";
}

Shortcut shortcut_for(StepKind k) {
  switch (k) {
    case StepKind::kInstruction: return Shortcut::kStep;
    case StepKind::kVmExit:
    case StepKind::kVtExit: return Shortcut::kStepExit;
    case StepKind::kRing: return Shortcut::kStepRing;
    case StepKind::kException: return Shortcut::kStepException;
    case StepKind::kPageWalk: return Shortcut::kStepWalk;
    case StepKind::kTranslation: return Shortcut::kStepTranslation;
    case StepKind::kAny:
    case StepKind::kCount: break;
  }
  return Shortcut::kStepAny;
}

void help_marker(const char* text) {
  ImGui::TextDisabled("(?)");
  if (ImGui::IsItemHovered()) {
    ImGui::BeginTooltip();
    ImGui::PushTextWrapPos(ImGui::GetFontSize() * 32.0f);
    ImGui::TextUnformatted(text);
    ImGui::PopTextWrapPos();
    ImGui::EndTooltip();
  }
}

void tooltip(const char* text) {
  if (ImGui::IsItemHovered(ImGuiHoveredFlags_AllowWhenDisabled)) {
    ImGui::BeginTooltip();
    ImGui::PushTextWrapPos(ImGui::GetFontSize() * 32.0f);
    ImGui::TextUnformatted(text);
    ImGui::PopTextWrapPos();
    ImGui::EndTooltip();
  }
}

void chip(ImU32 color, const char* text) {
  const float h = ImGui::GetTextLineHeight();
  const ImVec2 p = ImGui::GetCursorScreenPos();
  ImGui::GetWindowDrawList()->AddRectFilled(ImVec2(p.x, p.y + h * 0.2f),
                                            ImVec2(p.x + h * 0.6f, p.y + h * 0.8f), color, 2.0f);
  ImGui::Dummy(ImVec2(h * 0.6f, h));
  if (text && *text) {
    ImGui::SameLine(0, 5);
    ImGui::TextUnformatted(text);
  }
}

bool tool_button(const char* label, const char* tip, Shortcut shortcut, bool enabled,
                 const char* disabled_why) {
  ImGui::BeginDisabled(!enabled);
  const bool pressed = ImGui::Button(label);
  ImGui::EndDisabled();
  if (ImGui::IsItemHovered(ImGuiHoveredFlags_AllowWhenDisabled)) {
    ImGui::BeginTooltip();
    ImGui::PushTextWrapPos(ImGui::GetFontSize() * 30.0f);
    ImGui::TextUnformatted(tip);
    if (shortcut != Shortcut::kCount) {
      ImGui::TextDisabled("Shortcut: %s", shortcut_keys(shortcut));
    }
    if (!enabled && disabled_why) {
      ImGui::Separator();
      ImGui::TextColored(theme::to_vec4(theme::kError), "%s", disabled_why);
    }
    ImGui::PopTextWrapPos();
    ImGui::EndTooltip();
  }
  return pressed && enabled;
}

void mono_text(const theme::Fonts& fonts, ImU32 color, const char* text) {
  ImGui::PushFont(fonts.mono);
  ImGui::PushStyleColor(ImGuiCol_Text, color);
  ImGui::TextUnformatted(text);
  ImGui::PopStyleColor();
  ImGui::PopFont();
}

void value_cell(const theme::Fonts& fonts, const std::string& text, bool changed,
                const std::string& was) {
  if (changed) ImGui::TableSetBgColor(ImGuiTableBgTarget_CellBg, theme::kChangedBg);
  mono_text(fonts, changed ? theme::kChanged : theme::kText, text.c_str());
  if (changed && !was.empty() && ImGui::IsItemHovered()) {
    ImGui::SetTooltip("changed since the previous stop (was %s)", was.c_str());
  }
}

}  // namespace trapscope::viz
