#include "visualizer/app/theme.hpp"

#include <sys/stat.h>

namespace trapscope::viz::theme {
namespace {

bool exists(const char* path) {
  struct stat st {};
  return ::stat(path, &st) == 0;
}

const ImWchar* glyph_ranges() {
  // Latin-1, general punctuation (— … ·), arrows (→ ←), geometric shapes (▶ ◀ ■ ●), check
  // and ballot marks (✓ ✗: the lesson pane's verdicts).
  static const ImWchar kRanges[] = {0x0020, 0x00FF, 0x2010, 0x2027, 0x2190, 0x21FF,
                                    0x2500, 0x25FF, 0x2713, 0x2717, 0};
  return kRanges;
}

}  // namespace

Fonts load_fonts(float scale) {
  ImGuiIO& io = ImGui::GetIO();
  Fonts f;
  const char* sans = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
  const char* mono = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf";
  const char* bold = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";
  if (exists(sans) && exists(mono)) {
    ImFontConfig cfg;
    cfg.OversampleH = 2;
    f.ui = io.Fonts->AddFontFromFileTTF(sans, 15.0f * scale, &cfg, glyph_ranges());
    f.mono = io.Fonts->AddFontFromFileTTF(mono, 14.0f * scale, &cfg, glyph_ranges());
    f.large = io.Fonts->AddFontFromFileTTF(exists(bold) ? bold : sans, 22.0f * scale, &cfg,
                                           glyph_ranges());
    f.bold = io.Fonts->AddFontFromFileTTF(exists(bold) ? bold : sans, 15.0f * scale, &cfg,
                                          glyph_ranges());
  }
  if (!f.ui || !f.mono || !f.large) {
    io.Fonts->Clear();
    ImFontConfig cfg;
    cfg.SizePixels = 13.0f * scale;
    f.ui = f.mono = io.Fonts->AddFontDefault(&cfg);
    ImFontConfig big;
    big.SizePixels = 20.0f * scale;
    f.large = io.Fonts->AddFontDefault(&big);
  }
  if (!f.bold) f.bold = f.ui;
  return f;
}

void apply_style() {
  ImGui::StyleColorsDark();
  ImGuiStyle& s = ImGui::GetStyle();
  s.WindowRounding = 4.0f;
  s.ChildRounding = 3.0f;
  s.FrameRounding = 3.0f;
  s.PopupRounding = 3.0f;
  s.GrabRounding = 3.0f;
  s.TabRounding = 3.0f;
  s.ScrollbarRounding = 6.0f;
  s.WindowBorderSize = 1.0f;
  s.FrameBorderSize = 0.0f;
  s.WindowPadding = ImVec2(8, 6);
  s.FramePadding = ImVec2(7, 4);
  s.ItemSpacing = ImVec2(7, 5);
  s.CellPadding = ImVec2(5, 2);
  s.ScrollbarSize = 12.0f;
  s.WindowTitleAlign = ImVec2(0.0f, 0.5f);
  ImVec4* c = s.Colors;
  c[ImGuiCol_Text] = ImVec4(0.87f, 0.89f, 0.91f, 1.00f);
  c[ImGuiCol_TextDisabled] = ImVec4(0.52f, 0.55f, 0.60f, 1.00f);
  c[ImGuiCol_WindowBg] = ImVec4(0.105f, 0.115f, 0.135f, 1.00f);
  c[ImGuiCol_ChildBg] = ImVec4(0.0f, 0.0f, 0.0f, 0.0f);
  c[ImGuiCol_PopupBg] = ImVec4(0.12f, 0.13f, 0.16f, 0.98f);
  c[ImGuiCol_Border] = ImVec4(0.22f, 0.24f, 0.29f, 1.00f);
  c[ImGuiCol_FrameBg] = ImVec4(0.16f, 0.18f, 0.22f, 1.00f);
  c[ImGuiCol_FrameBgHovered] = ImVec4(0.21f, 0.24f, 0.30f, 1.00f);
  c[ImGuiCol_FrameBgActive] = ImVec4(0.24f, 0.28f, 0.36f, 1.00f);
  c[ImGuiCol_TitleBg] = ImVec4(0.085f, 0.095f, 0.115f, 1.00f);
  c[ImGuiCol_TitleBgActive] = ImVec4(0.12f, 0.15f, 0.21f, 1.00f);
  c[ImGuiCol_TitleBgCollapsed] = ImVec4(0.085f, 0.095f, 0.115f, 1.00f);
  c[ImGuiCol_MenuBarBg] = ImVec4(0.09f, 0.10f, 0.12f, 1.00f);
  c[ImGuiCol_ScrollbarBg] = ImVec4(0.09f, 0.10f, 0.12f, 0.60f);
  c[ImGuiCol_Button] = ImVec4(0.20f, 0.25f, 0.33f, 1.00f);
  c[ImGuiCol_ButtonHovered] = ImVec4(0.27f, 0.35f, 0.48f, 1.00f);
  c[ImGuiCol_ButtonActive] = ImVec4(0.31f, 0.42f, 0.60f, 1.00f);
  c[ImGuiCol_Header] = ImVec4(0.22f, 0.30f, 0.44f, 0.70f);
  c[ImGuiCol_HeaderHovered] = ImVec4(0.26f, 0.36f, 0.53f, 0.80f);
  c[ImGuiCol_HeaderActive] = ImVec4(0.30f, 0.42f, 0.62f, 1.00f);
  c[ImGuiCol_TableHeaderBg] = ImVec4(0.14f, 0.16f, 0.20f, 1.00f);
  c[ImGuiCol_TableRowBgAlt] = ImVec4(1.0f, 1.0f, 1.0f, 0.025f);
  c[ImGuiCol_TableBorderStrong] = ImVec4(0.22f, 0.24f, 0.29f, 1.00f);
  c[ImGuiCol_TableBorderLight] = ImVec4(0.18f, 0.20f, 0.24f, 1.00f);
  c[ImGuiCol_SliderGrab] = ImVec4(0.45f, 0.62f, 0.90f, 1.00f);
  c[ImGuiCol_SliderGrabActive] = ImVec4(0.55f, 0.72f, 1.00f, 1.00f);
  c[ImGuiCol_CheckMark] = ImVec4(0.55f, 0.75f, 1.00f, 1.00f);
  c[ImGuiCol_Separator] = ImVec4(0.22f, 0.24f, 0.29f, 1.00f);
  c[ImGuiCol_Tab] = ImVec4(0.14f, 0.16f, 0.20f, 1.00f);
  c[ImGuiCol_TabHovered] = ImVec4(0.27f, 0.35f, 0.48f, 1.00f);
  c[ImGuiCol_TabActive] = ImVec4(0.22f, 0.30f, 0.44f, 1.00f);
  c[ImGuiCol_PlotHistogram] = ImVec4(0.45f, 0.62f, 0.90f, 1.00f);
}

ImU32 cpl_color(uint8_t cpl, float a) {
  const auto alpha = static_cast<int>(a * 255.0f);
  switch (cpl) {
    case 0: return IM_COL32(240, 140, 60, alpha);   // kernel: warm orange
    case 3: return IM_COL32(60, 190, 200, alpha);   // user: teal
    case 1:
    case 2: return IM_COL32(170, 130, 230, alpha);
    default: return IM_COL32(120, 120, 130, alpha);
  }
}

ImU32 exit_reason_color(uint32_t r) {
  switch (static_cast<trace::ExitReason>(r)) {
    case trace::ExitReason::kIo: return IM_COL32(90, 160, 255, 255);
    case trace::ExitReason::kHlt: return IM_COL32(190, 120, 255, 255);
    case trace::ExitReason::kMmio: return IM_COL32(245, 200, 70, 255);
    case trace::ExitReason::kShutdown: return IM_COL32(255, 70, 70, 255);
    case trace::ExitReason::kInternalError: return IM_COL32(230, 60, 120, 255);
    case trace::ExitReason::kFailEntry: return IM_COL32(230, 60, 120, 255);
    case trace::ExitReason::kDebug: return IM_COL32(170, 175, 185, 255);
    case trace::ExitReason::kHypercall: return IM_COL32(110, 220, 130, 255);
    case trace::ExitReason::kX86Rdmsr:
    case trace::ExitReason::kX86Wrmsr: return IM_COL32(230, 150, 90, 255);
    default: {
      const uint32_t h = r * 2654435761u;  // a stable hue per reason number
      return IM_COL32(120 + (h & 0x7F), 120 + ((h >> 8) & 0x7F), 120 + ((h >> 16) & 0x7F), 255);
    }
  }
}

ImU32 event_color(trace::EventType t) {
  switch (t) {
    case trace::EventType::kVmExit: return IM_COL32(90, 160, 255, 255);
    case trace::EventType::kException: return IM_COL32(255, 95, 85, 255);
    case trace::EventType::kRingTransition: return IM_COL32(240, 200, 90, 255);
    case trace::EventType::kPageWalk: return IM_COL32(120, 210, 140, 255);
    case trace::EventType::kInstruction: return IM_COL32(120, 128, 142, 255);
    case trace::EventType::kRunEnd: return IM_COL32(230, 230, 240, 255);
    case trace::EventType::kBtTranslate: return IM_COL32(190, 140, 250, 255);
    default: return IM_COL32(150, 150, 150, 255);
  }
}

ImVec4 to_vec4(ImU32 c) { return ImGui::ColorConvertU32ToFloat4(c); }

}  // namespace trapscope::viz::theme
