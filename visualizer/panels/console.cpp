// The guest's console: what it wrote to the debug console (port 0xE9) and COM1.
#include "visualizer/core/describe.hpp"
#include "visualizer/panels/panels.hpp"

namespace trapscope::viz {

void draw_console(PanelContext& ctx, ConsoleState& s) {
  ImGui::Begin("Guest console");
  const std::string& text = ctx.model.console();
  ImGui::TextDisabled("%s bytes from port 0xE9 (debug console) and COM1", with_commas(text.size()).c_str());
  ImGui::SameLine();
  help_marker("Every byte a guest writes with `out` to port 0xE9 or COM1 is a VM exit (reason "
              "IO): the VMM's device model appends it here.");
  ImGui::BeginChild("console", ImVec2(0, 0), true, ImGuiWindowFlags_HorizontalScrollbar);
  ImGui::PushFont(ctx.fonts.mono);
  if (text.empty()) {
    ImGui::TextDisabled("(no output yet)");
  } else {
    ImGui::TextUnformatted(text.data(), text.data() + text.size());
  }
  ImGui::PopFont();
  if (text.size() != s.seen_bytes) {
    if (text.size() > s.seen_bytes) ImGui::SetScrollHereY(1.0f);
    s.seen_bytes = text.size();
  }
  ImGui::EndChild();
  ImGui::End();
}

}  // namespace trapscope::viz
