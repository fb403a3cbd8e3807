// The toolbar: stepping commands with their shortcuts, run/pause and the animation speed, the
// machine's status, and the current privilege level, large, where the eye goes first.
#include <algorithm>
#include <cfloat>
#include <cstdio>

#include "visualizer/core/describe.hpp"
#include "visualizer/panels/panels.hpp"

namespace trapscope::viz {
namespace {

void cpl_badge(PanelContext& ctx, float right_edge, float top, float height) {
  const auto cpl = ctx.model.shown_cpl();
  const auto mode = ctx.model.shown_mode();
  char big[16];
  std::snprintf(big, sizeof big, "CPL %s", cpl ? std::to_string(*cpl).c_str() : "?");
  const std::string_view ring = !cpl        ? std::string_view("no CPL yet")
                                : *cpl == 0 ? std::string_view("ring 0 \u00B7 kernel")
                                : *cpl == 3 ? std::string_view("ring 3 \u00B7 user")
                                            : ring_name(*cpl);
  std::string_view mode_name = mode ? cpu_mode_name(*mode) : std::string_view("");
  // Trap-and-emulate, BT: the guest's CPL (virtual) beside the machine's (real), two colours.
  const auto& real = ctx.model.status().real;
  std::string ring_text(ring), real_text;
  if (real && ctx.model.has_registers()) {
    ring_text += es_en(ctx.lang, " (virtual)", " (virtual)");
    char buf[96];
    std::snprintf(buf, sizeof buf, "%s %u · IF=%d IOPL %u", es_en(ctx.lang, "CPL real", "real CPL"),
                  real->cpl, real->interrupts ? 1 : 0, static_cast<unsigned>(real->iopl));
    real_text = buf;
    mode_name = real_text;
  }

  ImGui::PushFont(ctx.fonts.large);
  const ImVec2 big_size = ImGui::CalcTextSize(big);
  ImGui::PopFont();
  const float text_w = std::max(ImGui::CalcTextSize(ring_text.c_str()).x,
                                ImGui::CalcTextSize(mode_name.data(), mode_name.data() + mode_name.size()).x);
  const float pad = 10.0f;
  const float badge_w = big_size.x + 2 * pad;
  const float total_w = badge_w + 10 + text_w;
  const ImVec2 win = ImGui::GetWindowPos();
  const ImVec2 p0(win.x + right_edge - total_w, win.y + top);
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImU32 col = theme::cpl_color(cpl ? *cpl : 0xFF);
  dl->AddRectFilled(p0, ImVec2(p0.x + badge_w, p0.y + height), col, 6.0f);
  ImGui::PushFont(ctx.fonts.large);
  dl->AddText(ImVec2(p0.x + pad, p0.y + (height - big_size.y) * 0.5f), IM_COL32(20, 22, 26, 255),
              big);
  ImGui::PopFont();
  const float line = ImGui::GetTextLineHeight();
  const float tx = p0.x + badge_w + 10;
  const float ty = p0.y + (height - 2 * line - 2) * 0.5f;
  dl->AddText(ImVec2(tx, ty), col, ring_text.c_str());
  dl->AddText(ImVec2(tx, ty + line + 2), real_text.empty() ? theme::kTextDim : theme::kRealPrivilege,
              mode_name.data(), mode_name.data() + mode_name.size());
  ImGui::SetCursorScreenPos(p0);
  ImGui::InvisibleButton("##cplbadge", ImVec2(total_w, height));
  tooltip(ctx.model.status().state == RunState::kTrace
              ? "The CPL of the selected recorded event (a trace holds no registers)."
              : "The current privilege level: the RPL of CS in protected and long mode "
                "(0 in real mode) — Intel SDM Vol. 3A 5.5. Ring 0 runs the kernel; ring 3 user "
                "code, which traps to ring 0 when it tries anything privileged.");
}

}  // namespace

void draw_toolbar(PanelContext& ctx, bool* show_breakpoints) {
  ImGui::Begin("Controls", nullptr,
               ImGuiWindowFlags_NoTitleBar | ImGuiWindowFlags_NoScrollbar |
                   ImGuiWindowFlags_NoScrollWithMouse);
  const Status& st = ctx.model.status();
  const Capabilities& caps = ctx.actions.capabilities();
  const bool trace = st.state == RunState::kTrace;
  const bool running = st.state == RunState::kRunning;
  const bool can_go = trace || st.state == RunState::kIdle;
  const char* why_not =
      running ? "The machine is running: pause it first."
      : st.state == RunState::kFinished
          ? "The guest's run has ended: reset, or step back (simulator)."
          : st.state == RunState::kError ? "The machine could not be started (see the status)."
                                         : "Starting…";
  const float top = ImGui::GetCursorPosY();

  if (tool_button("\u21BA Reset", "Back to the state just after loading the guest.",
                  Shortcut::kReset, !running && st.state != RunState::kStarting)) {
    ctx.actions.command(Command::Op::kReset);
  }
  ImGui::SameLine();
  const bool can_back = caps.step_back && !running && st.state != RunState::kStarting &&
                        st.state != RunState::kError;
  if (tool_button("\u25C0 Back",
                  trace ? "Move to the previous recorded event."
                        : "Step back one instruction: the simulator restores the nearest "
                          "snapshot and re-executes up to the instruction before (it is "
                          "deterministic).",
                  Shortcut::kStepBack, can_back,
                  caps.step_back ? why_not : caps.step_back_why.c_str())) {
    ctx.actions.command(Command::Op::kStepBack);
  }
  ImGui::SameLine();
  if (tool_button("Step \u25B6",
                  trace ? "Move to the next recorded event."
                        : "Execute one instruction. On KVM this is KVM_SET_GUEST_DEBUG "
                          "single-step, which some hosts honour only for emulated code.",
                  Shortcut::kStep, can_go, why_not)) {
    ctx.actions.command(Command::Op::kStep);
  }
  ImGui::SameLine(0, 16);
  ImGui::TextDisabled("step to");
  static constexpr StepKind kKinds[] = {StepKind::kVmExit, StepKind::kRing, StepKind::kException,
                                        StepKind::kPageWalk, StepKind::kTranslation,
                                        StepKind::kAny};
  static constexpr const char* kLabels[] = {"VM exit", "Ring", "Exception", "Page walk",
                                            "Translation", "Any event"};
  for (size_t i = 0; i < std::size(kKinds); ++i) {
    ImGui::SameLine();
    const StepKind k = kKinds[i];
    const bool supported = caps.step_kinds & (1u << static_cast<int>(k));
    char tip[160];
    std::snprintf(tip, sizeof tip, "%s to the next %s.", trace ? "Move" : "Run",
                  std::string(describe(k)).c_str());
    ImGui::PushID(static_cast<int>(i));
    ImGui::PushStyleColor(ImGuiCol_Button,
                          k == StepKind::kVmExit      ? ImVec4(0.18f, 0.30f, 0.48f, 1)
                          : k == StepKind::kRing      ? ImVec4(0.40f, 0.33f, 0.14f, 1)
                          : k == StepKind::kException ? ImVec4(0.45f, 0.18f, 0.17f, 1)
                          : k == StepKind::kPageWalk  ? ImVec4(0.17f, 0.36f, 0.23f, 1)
                                                      : ImVec4(0.20f, 0.25f, 0.33f, 1));
    if (tool_button(kLabels[i], tip, shortcut_for(k), supported && can_go,
                    supported ? why_not : caps.step_kinds_why.c_str())) {
      ctx.actions.command(Command::Op::kStepTo, k);
    }
    ImGui::PopStyleColor();
    ImGui::PopID();
  }
  ImGui::SameLine(0, 16);
  if (running) {
    if (tool_button("\u25AE\u25AE Pause", "Stop the machine where it is.", Shortcut::kRunPause,
                    true)) {
      ctx.actions.toggle_run();
    }
  } else {
    if (tool_button("\u25B6 Run",
                    trace ? "Move to the next breakpoint or the recorded end."
                          : "Run until a breakpoint, the end of the guest's run, or Pause. "
                            "With a speed set, the run is animated: one instruction at a time.",
                    Shortcut::kRunPause, can_go, why_not)) {
      ctx.actions.toggle_run();
    }
  }
  ImGui::SameLine();
  float speed = ctx.actions.speed();
  bool animate = speed > 0;
  ImGui::BeginDisabled(trace);
  if (ImGui::Checkbox("animate", &animate)) ctx.actions.set_speed(animate ? 20.0f : 0.0f);
  tooltip("Animated run: execute one instruction at a time at the speed on the right, "
          "refreshing every view after each one. Off: run at full speed.");
  ImGui::SameLine();
  ImGui::SetNextItemWidth(130);
  ImGui::BeginDisabled(!animate);
  float shown = animate ? speed : 20.0f;
  if (ImGui::SliderFloat("##speed", &shown, 1.0f, 2000.0f, "%.0f insn/s",
                         ImGuiSliderFlags_Logarithmic)) {
    ctx.actions.set_speed(shown);
  }
  tooltip("Animation speed in instructions per second.");
  ImGui::EndDisabled();
  ImGui::EndDisabled();
  ImGui::SameLine(0, 16);
  char bp_label[48];
  std::snprintf(bp_label, sizeof bp_label, "Breakpoints (%zu)", ctx.model.breakpoints().size());
  if (ImGui::Button(bp_label)) *show_breakpoints = !*show_breakpoints;
  tooltip("Address breakpoints (also: click the gutter of the disassembly) and event "
          "breakpoints with conditions: exit reason, port, vector, CPL.");

  // Second row: the status.
  const ImU32 msg_col = st.message_is_error ? theme::kError
                        : running           ? theme::kChanged
                                            : theme::kText;
  ImGui::PushStyleColor(ImGuiCol_Text, msg_col);
  std::string state_text = "[";
  state_text += to_string(st.state);
  state_text += "] ";
  ImGui::TextUnformatted(state_text.c_str());
  ImGui::SameLine(0, 2);
  const float wrap_x = ImGui::GetWindowContentRegionMax().x - 420;
  const float wrap_w = std::max(wrap_x - ImGui::GetCursorPosX(), 200.0f);
  const bool whole = ImGui::CalcTextSize(st.message.c_str(), nullptr, false, wrap_w).y >
                     ImGui::GetTextLineHeight() * 1.5f;
  if (whole) {  // its first line here, the whole message below
    const char* text = st.message.c_str();
    const char* end = ImGui::GetFont()->CalcWordWrapPositionA(
        ImGui::GetFontSize() / ImGui::GetFont()->FontSize, text, text + st.message.size(), wrap_w);
    std::string first(text, end);
    first += " \u2026";
    ImGui::TextUnformatted(first.c_str());
  } else {
    ImGui::PushTextWrapPos(wrap_x);
    ImGui::TextUnformatted(st.message.c_str());
    ImGui::PopTextWrapPos();
  }
  ImGui::PopStyleColor();
  if (whole) {
    // The status row has room for one line: a longer message (a refusal and its reason) is
    // shown whole just under it, above the timeline, until the next message.
    const ImVec2 wp = ImGui::GetWindowPos();
    ImGui::SetNextWindowPos(ImVec2(wp.x + ImGui::GetStyle().WindowPadding.x,
                                   wp.y + ImGui::GetWindowHeight()));
    ImGui::SetNextWindowSizeConstraints(ImVec2(wrap_w, 0), ImVec2(wrap_w + 24, FLT_MAX));
    ImGui::Begin("##message", nullptr,
                 ImGuiWindowFlags_NoTitleBar | ImGuiWindowFlags_AlwaysAutoResize |
                     ImGuiWindowFlags_NoMove | ImGuiWindowFlags_NoSavedSettings |
                     ImGuiWindowFlags_NoFocusOnAppearing);
    ImGui::PushStyleColor(ImGuiCol_Text, msg_col);
    ImGui::PushTextWrapPos(0.0f);
    ImGui::TextUnformatted(st.message.c_str());
    ImGui::PopTextWrapPos();
    ImGui::PopStyleColor();
    ImGui::End();
  }

  const float right = ImGui::GetWindowContentRegionMax().x;
  cpl_badge(ctx, right, top, ImGui::GetWindowHeight() - top - ImGui::GetStyle().WindowPadding.y);
  ImGui::End();
}

}  // namespace trapscope::viz
