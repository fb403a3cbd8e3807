// visualizer/app/theme.hpp — colours and fonts, in one place, so that every view gives a thing
// the same colour: CPL 0 warm, CPL 3 cool, each VM exit reason its own hue, exceptions red.
#pragma once

#include <imgui.h>

#include <cstdint>

#include "trace/event.hpp"

namespace trapscope::viz::theme {

struct Fonts {
  ImFont* ui = nullptr;     // proportional text
  ImFont* mono = nullptr;   // registers, addresses, bytes, disassembly, console
  ImFont* large = nullptr;  // the CPL badge
  ImFont* bold = nullptr;   // **strong** text in the lesson pane (DejaVu Sans Bold, else ui)
};

// Loads DejaVu Sans / Sans Mono (Debian's fonts-dejavu-core) when present, else ImGui's
// built-in font; `scale` multiplies the pixel sizes.
Fonts load_fonts(float scale);
void apply_style();

ImU32 cpl_color(uint8_t cpl, float alpha = 1.0f);  // 0 orange, 3 teal, 1/2 violet, ? grey
ImU32 exit_reason_color(uint32_t kvm_exit_reason);
ImU32 event_color(trace::EventType type);           // lane / chip colour per type
ImVec4 to_vec4(ImU32 c);

inline constexpr ImU32 kText = IM_COL32(222, 226, 232, 255);
inline constexpr ImU32 kTextDim = IM_COL32(140, 148, 160, 255);
inline constexpr ImU32 kChanged = IM_COL32(255, 210, 90, 255);      // a value that changed
inline constexpr ImU32 kChangedBg = IM_COL32(255, 200, 60, 40);
inline constexpr ImU32 kSelected = IM_COL32(255, 255, 255, 235);
inline constexpr ImU32 kError = IM_COL32(255, 110, 100, 255);
inline constexpr ImU32 kOk = IM_COL32(120, 220, 140, 255);
inline constexpr ImU32 kLaneBg = IM_COL32(30, 34, 42, 255);
inline constexpr ImU32 kLaneBgAlt = IM_COL32(36, 40, 49, 255);
inline constexpr ImU32 kGrid = IM_COL32(70, 76, 90, 120);
inline constexpr ImU32 kRipRow = IM_COL32(90, 140, 255, 60);
inline constexpr ImU32 kBreakpoint = IM_COL32(235, 70, 70, 255);
// The real privilege under trap-and-emulate and BT, beside the virtual one (cpl_color).
// Violet: apart from both CPL colours (ring 0 orange, ring 3 teal).
inline constexpr ImU32 kRealPrivilege = IM_COL32(196, 140, 255, 255);

}  // namespace trapscope::viz::theme
