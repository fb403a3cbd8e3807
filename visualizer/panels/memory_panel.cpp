// Memory: a window of guest-physical memory as hex and ASCII, refreshed at every stop; bytes
// that changed since the previous stop are highlighted.
#include <cctype>
#include <cstdio>

#include "visualizer/core/describe.hpp"
#include "visualizer/panels/panels.hpp"

namespace trapscope::viz {

void draw_memory(PanelContext& ctx, MemoryState& s) {
  ImGui::Begin("Memory");
  const Model& m = ctx.model;
  if (m.status().state == RunState::kTrace && !m.has_registers()) {
    ImGui::TextDisabled("A trace file does not hold guest memory (a simulator trace whose guest "
                        "is at hand shows it by re-execution).");
    ImGui::End();
    return;
  }
  const MemoryWindow& w = m.memory();
  ImGui::SetNextItemWidth(120);
  const bool entered = ImGui::InputText("##addr", s.address, sizeof s.address,
                                        ImGuiInputTextFlags_EnterReturnsTrue |
                                            ImGuiInputTextFlags_CharsHexadecimal);
  ImGui::SameLine();
  if (ImGui::Button("Go") || entered) {
    if (auto a = parse_number(std::string("0x") + s.address)) {
      ctx.actions.set_memory_address(*a & ~0xFull);
    } else if (auto b = parse_number(s.address)) {
      ctx.actions.set_memory_address(*b & ~0xFull);
    }
  }
  ImGui::SameLine();
  const x86::CpuState& r = m.registers();
  auto go_linear = [&](uint64_t linear) {
    ctx.actions.set_memory_address(linear & ~0xFull);
    std::snprintf(s.address, sizeof s.address, "%llx", static_cast<unsigned long long>(linear & ~0xFull));
  };
  ImGui::BeginDisabled(!m.has_registers());
  if (ImGui::SmallButton("RIP")) go_linear(r.code64() ? r.rip : r.seg[x86::kCs].base + r.rip);
  tooltip("Show the bytes at CS:RIP (guest-physical = linear for the teaching guests, which "
          "identity-map their memory).");
  ImGui::SameLine();
  if (ImGui::SmallButton("RSP")) go_linear(r.code64() ? r.gpr[x86::kRsp] : r.seg[x86::kSs].base + r.gpr[x86::kRsp]);
  tooltip("Show the stack at SS:RSP.");
  ImGui::EndDisabled();
  ImGui::SameLine();
  ImGui::TextDisabled("guest-physical %s \u2013 %s", hex(w.address).c_str(),
                      hex(w.address + w.bytes.size()).c_str());
  ImGui::SameLine();
  help_marker("Guest-physical memory (GPA), refreshed at every stop. Bytes that "
              "changed since the previous stop are highlighted.");

  const MemoryWindow& prev = m.previous_memory();
  const bool compare = prev.address == w.address && prev.bytes.size() == w.bytes.size();
  ImGui::PushFont(ctx.fonts.mono);
  ImGui::BeginChild("hex", ImVec2(0, 0), false, ImGuiWindowFlags_HorizontalScrollbar);
  const float cw = ImGui::CalcTextSize("0").x;
  // 16 bytes a row when they fit (address, hex, ASCII: 77 columns), else 8.
  const size_t per_row = ImGui::GetContentRegionAvail().x >= cw * 78 ? 16 : 8;
  const size_t rows = (w.bytes.size() + per_row - 1) / per_row;
  ImGuiListClipper clipper;
  clipper.Begin(static_cast<int>(rows));
  while (clipper.Step()) {
    for (int row = clipper.DisplayStart; row < clipper.DisplayEnd; ++row) {
      const size_t base = static_cast<size_t>(row) * per_row;
      ImGui::TextColored(theme::to_vec4(theme::kTextDim), "%s", hex_fixed(w.address + base, 8).c_str());
      for (size_t i = 0; i < per_row && base + i < w.bytes.size(); ++i) {
        ImGui::SameLine(cw * (10 + 3 * static_cast<float>(i) + (i >= 8 ? 1 : 0)));
        const uint8_t b = w.bytes[base + i];
        const bool changed = compare && prev.bytes[base + i] != b;
        if (changed) {
          const ImVec2 p = ImGui::GetCursorScreenPos();
          ImGui::GetWindowDrawList()->AddRectFilled(
              p, ImVec2(p.x + cw * 2, p.y + ImGui::GetTextLineHeight()), theme::kChangedBg);
        }
        ImGui::TextColored(theme::to_vec4(changed ? theme::kChanged : b ? theme::kText : theme::kTextDim),
                           "%02x", b);
      }
      ImGui::SameLine(cw * (11 + 3 * static_cast<float>(per_row) + (per_row > 8 ? 1 : 0)));
      char ascii[17] = {};
      for (size_t i = 0; i < per_row && base + i < w.bytes.size(); ++i) {
        const uint8_t b = w.bytes[base + i];
        ascii[i] = (b >= 0x20 && b < 0x7F) ? static_cast<char>(b) : '.';
      }
      ImGui::TextColored(theme::to_vec4(theme::kTextDim), "%s", ascii);
    }
  }
  ImGui::EndChild();
  ImGui::PopFont();
  ImGui::End();
}

}  // namespace trapscope::viz
