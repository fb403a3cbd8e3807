// Help: the keyboard shortcuts, and what this machine can and cannot observe.
#include <algorithm>

#include "visualizer/panels/panels.hpp"

namespace trapscope::viz {

void draw_help(PanelContext& ctx, bool* open) {
  if (!*open) return;
  ImGui::SetNextWindowSize(ImVec2(560, 420), ImGuiCond_FirstUseEver);
  const ImVec2 d = ImGui::GetIO().DisplaySize;
  ImGui::SetNextWindowPos(ImVec2(std::min(d.x * 0.5f, ctx.free_right() - 560 * 0.5f), d.y * 0.45f),
                          ImGuiCond_FirstUseEver, ImVec2(0.5f, 0.5f));  // not over the lesson pane
  if (!ImGui::Begin("Help", open)) {
    ImGui::End();
    return;
  }
  ImGui::TextUnformatted("Keyboard shortcuts (when no text field has the focus)");
  if (ImGui::BeginTable("keys", 2, ImGuiTableFlags_RowBg | ImGuiTableFlags_SizingFixedFit)) {
    static constexpr std::pair<Shortcut, const char*> kRows[] = {
        {Shortcut::kStep, "step one instruction (a trace: the next event)"},
        {Shortcut::kStepBack, "step back one instruction (simulator; a trace: previous event)"},
        {Shortcut::kStepExit, "step to the next VM exit"},
        {Shortcut::kStepRing, "step to the next ring transition"},
        {Shortcut::kStepException, "step to the next exception"},
        {Shortcut::kStepWalk, "step to the next page walk"},
        {Shortcut::kStepTranslation, "step to the next translation"},
        {Shortcut::kStepAny, "step to the next event of any kind"},
        {Shortcut::kRunPause, "run / pause"},
        {Shortcut::kReset, "reset the machine"},
    };
    for (const auto& [s, what] : kRows) {
      ImGui::TableNextRow();
      ImGui::TableNextColumn();
      mono_text(ctx.fonts, theme::kChanged, shortcut_keys(s));
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(what);
    }
    ImGui::TableNextRow();
    ImGui::TableNextColumn();
    mono_text(ctx.fonts, theme::kChanged, "Up / Down");
    ImGui::TableNextColumn();
    ImGui::TextUnformatted("previous / next row of the event list");
    ImGui::TableNextRow();
    ImGui::TableNextColumn();
    mono_text(ctx.fonts, theme::kChanged, "Ctrl+F");
    ImGui::TableNextColumn();
    ImGui::TextUnformatted("the event list's filter");
    ImGui::EndTable();
  }
  ImGui::Separator();
  ImGui::TextUnformatted("This machine");
  ImGui::PushTextWrapPos(0);
  ImGui::TextDisabled("%s", ctx.actions.capabilities().limits.c_str());
  if (!ctx.actions.capabilities().step_back_why.empty()) {
    ImGui::TextDisabled("%s", ctx.actions.capabilities().step_back_why.c_str());
  }
  ImGui::PopTextWrapPos();
  ImGui::End();
}

}  // namespace trapscope::viz
