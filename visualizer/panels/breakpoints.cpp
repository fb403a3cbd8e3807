// Breakpoints: on an address (stop before executing it) and on an event kind with conditions
// (exit reason, port, vector, CPL).
#include <algorithm>
#include <cstdio>

#include "visualizer/core/describe.hpp"
#include "visualizer/panels/panels.hpp"

namespace trapscope::viz {

void draw_breakpoints(PanelContext& ctx, BreakpointsState& s, bool* open) {
  if (!*open) return;
  ImGui::SetNextWindowSize(ImVec2(520, 330), ImGuiCond_FirstUseEver);
  const ImVec2 d = ImGui::GetIO().DisplaySize;
  ImGui::SetNextWindowPos(ImVec2(std::min(d.x * 0.5f, ctx.free_right() - 520 * 0.5f), d.y * 0.45f),
                          ImGuiCond_FirstUseEver, ImVec2(0.5f, 0.5f));  // not over the lesson pane
  if (!ImGui::Begin("Breakpoints", open)) {
    ImGui::End();
    return;
  }
  const Capabilities& caps = ctx.actions.capabilities();
  ImGui::TextUnformatted("Stop before the instruction at");
  ImGui::SameLine();
  ImGui::SetNextItemWidth(130);
  const bool add_addr = ImGui::InputTextWithHint("##bpaddr", "0x800e", s.address, sizeof s.address,
                                                 ImGuiInputTextFlags_EnterReturnsTrue);
  ImGui::SameLine();
  if (ImGui::Button("Add##addr") || add_addr) {
    std::string t = s.address;
    if (t.rfind("0x", 0) != 0) t = "0x" + t;
    if (auto a = parse_number(t)) {
      Breakpoint b;
      b.kind = Breakpoint::Kind::kAddress;
      b.address = *a;
      ctx.actions.add_breakpoint(b);
      s.error.clear();
      s.address[0] = 0;
    } else {
      s.error = "not an address: " + std::string(s.address);
    }
  }
  ImGui::SameLine();
  help_marker("RIP value (the offset in CS). The simulator takes any number of them; KVM one "
              "at a time (a hardware debug register), and on kvm_pvm hosts only in emulated "
              "code (CPL 0, real mode).");

  ImGui::TextUnformatted("Stop after an event");
  ImGui::SameLine();
  ImGui::SetNextItemWidth(260);
  const bool add_ev = ImGui::InputTextWithHint("##bpcond", "exit reason=IO port=0xe9", s.condition,
                                               sizeof s.condition, ImGuiInputTextFlags_EnterReturnsTrue);
  ImGui::SameLine();
  if (ImGui::Button("Add##event") || add_ev) {
    std::string err;
    if (auto b = parse_event_breakpoint(s.condition, &err)) {
      ctx.actions.add_breakpoint(*b);
      s.error.clear();
    } else {
      s.error = err;
    }
  }
  ImGui::SameLine();
  help_marker("KIND [reason=NAME|N] [port=N] [vector=N] [cpl=N]\n"
              "KIND: exit, ring, exception, walk or any.\n"
              "Examples:\n  exit reason=HLT\n  exit port=0x3f8\n  exception vector=14 cpl=3\n"
              "  ring cpl=0\n\nOn KVM only VM exits can be watched.");
  if (!s.error.empty()) ImGui::TextColored(theme::to_vec4(theme::kError), "%s", s.error.c_str());
  if (!caps.live) ImGui::TextDisabled("In a trace, Run moves to the next recorded event that matches.");
  ImGui::Separator();

  auto& bps = ctx.model.breakpoints();
  if (bps.empty()) ImGui::TextDisabled("No breakpoints.");
  uint32_t remove = 0;
  bool changed = false;
  if (!bps.empty() && ImGui::BeginTable("bps", 4, ImGuiTableFlags_RowBg | ImGuiTableFlags_SizingFixedFit)) {
    ImGui::TableSetupColumn("on");
    ImGui::TableSetupColumn("id");
    ImGui::TableSetupColumn("where / when", ImGuiTableColumnFlags_WidthStretch);
    ImGui::TableSetupColumn("");
    ImGui::TableHeadersRow();
    for (Breakpoint& b : bps) {
      ImGui::PushID(static_cast<int>(b.id));
      ImGui::TableNextRow();
      ImGui::TableNextColumn();
      if (ImGui::Checkbox("##on", &b.enabled)) changed = true;
      ImGui::TableNextColumn();
      ImGui::Text("%u", b.id);
      ImGui::TableNextColumn();
      const std::string what = (b.kind == Breakpoint::Kind::kAddress ? "at rip " : "after ") + to_string(b);
      mono_text(ctx.fonts, theme::kText, what.c_str());
      ImGui::TableNextColumn();
      if (ImGui::SmallButton("remove")) remove = b.id;
      ImGui::PopID();
    }
    ImGui::EndTable();
  }
  if (remove) ctx.actions.remove_breakpoint(remove);
  if (changed) ctx.actions.breakpoints_changed();
  ImGui::End();
}

}  // namespace trapscope::viz
