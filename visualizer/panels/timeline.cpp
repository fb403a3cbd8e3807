// The timeline: one lane per kind of event along the event number, the CPL as a band that
// steps between ring 0 and ring 3, VM exits coloured by exit reason. Zoom with the wheel, pan
// by dragging, click to select (everywhere), double-click to fit.
//
// [SECTION] Geometry    event number ↔ x
// [SECTION] Lanes       ticks, one per event when they fit, else one per pixel column
// [SECTION] CPL band
// [SECTION] Panel
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "visualizer/core/describe.hpp"
#include "visualizer/panels/panels.hpp"

namespace trapscope::viz {
namespace {

using trace::EventType;

// [SECTION] Geometry

struct Geometry {
  float x0, w;
  double start, span;
  double event_at(float x) const { return start + (x - x0) / w * span; }
  float x_of(double event) const { return x0 + static_cast<float>((event - start) / span * w); }
  float px_per_event() const { return static_cast<float>(w / span); }
};

double nice_step(double raw) {
  const double p = std::pow(10.0, std::floor(std::log10(std::max(raw, 1.0))));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * p >= raw) return std::max(1.0, m * p);
  }
  return std::max(1.0, 10 * p);
}

// [SECTION] Lanes

template <typename ColorFn, typename LabelFn>
void draw_lane(ImDrawList* dl, const Geometry& g, const std::vector<uint32_t>& lane, float y0,
               float y1, ColorFn color, LabelFn label) {
  const auto lo = std::lower_bound(lane.begin(), lane.end(),
                                   static_cast<uint32_t>(std::max(0.0, std::floor(g.start))));
  const auto hi = std::lower_bound(lo, lane.end(),
                                   static_cast<uint32_t>(std::max(0.0, std::ceil(g.start + g.span))));
  const auto count = static_cast<size_t>(hi - lo);
  if (count == 0) return;
  const float ppe = g.px_per_event();
  if (count <= static_cast<size_t>(g.w)) {
    const float tw = std::clamp(ppe * 0.7f, 2.0f, 14.0f);
    for (auto it = lo; it != hi; ++it) {
      const float x = g.x_of(*it + 0.5);
      const ImU32 c = color(*it);
      dl->AddRectFilled(ImVec2(x - tw * 0.5f, y0 + 2), ImVec2(x + tw * 0.5f, y1 - 2), c, 1.5f);
      if (ppe > 34) {
        const std::string text = label(*it);
        if (!text.empty()) dl->AddText(ImVec2(x + tw * 0.5f + 3, y0 + 2), c, text.c_str());
      }
    }
    return;
  }
  // Too many to draw one by one: one mark per pixel column that holds any.
  auto it = lo;
  for (float px = 0; px < g.w && it != hi; px += 1.0f) {
    const double b = g.event_at(g.x0 + px + 1.0f);
    if (*it >= b) continue;
    dl->AddLine(ImVec2(g.x0 + px + 0.5f, y0 + 2), ImVec2(g.x0 + px + 0.5f, y1 - 2), color(*it));
    it = std::lower_bound(it, hi, static_cast<uint32_t>(std::max(0.0, std::ceil(b))));
  }
}

// The lane's event nearest to x, if within `slack` pixels.
std::optional<size_t> nearest(const Geometry& g, const std::vector<uint32_t>& lane, float x,
                              float slack) {
  const double e = g.event_at(x) - 0.5;
  auto it = std::lower_bound(lane.begin(), lane.end(), static_cast<uint32_t>(std::max(0.0, e)));
  std::optional<size_t> best;
  float best_d = slack;
  for (auto c : {it, it == lane.begin() ? it : it - 1}) {
    if (c == lane.end()) continue;
    const float d = std::fabs(g.x_of(*c + 0.5) - x);
    if (d <= best_d) {
      best_d = d;
      best = *c;
    }
  }
  return best;
}

// [SECTION] CPL band

// KVM sees the CPL only when the guest exits (Status::cpl_only_at_exits): between VM exits the
// band is hatched "not observed"; each exit is a mark on its CPL's row, and where the CPL at an
// exit differs from the one before, a connector "a → b observed at exit" joins the two rows.
void draw_cpl_at_exits(ImDrawList* dl, const Geometry& g, const Model& m, float y0, float y1,
                       Lang lang) {
  const float mid = (y0 + y1) * 0.5f;
  dl->AddRectFilled(ImVec2(g.x0, y0 + 2), ImVec2(g.x0 + g.w, y1 - 2), IM_COL32(60, 64, 72, 70));
  for (float x = g.x0; x < g.x0 + g.w; x += 10.0f) {
    dl->AddLine(ImVec2(x, y1 - 2), ImVec2(x + 8, y0 + 2), IM_COL32(110, 116, 128, 55));
  }
  const char* label = es_en(lang, "no observado entre salidas VM (KVM)",
                            "not observed between VM exits (KVM)");
  dl->AddText(ImVec2(g.x0 + 4, mid - ImGui::GetTextLineHeight() * 0.5f), theme::kTextDim, label);
  auto row = [&](uint8_t cpl, float* a, float* b) {
    *a = cpl == 0 ? y0 + 2 : mid + 1;
    *b = cpl == 0 ? mid - 1 : y1 - 2;
  };
  const auto& lane = m.lane(EventType::kVmExit);
  auto lo = std::lower_bound(lane.begin(), lane.end(),
                             static_cast<uint32_t>(std::max(0.0, std::floor(g.start))));
  const auto hi = std::lower_bound(lo, lane.end(),
                                   static_cast<uint32_t>(std::max(0.0, std::ceil(g.start + g.span))));
  uint8_t prev = lo != lane.begin() ? m.events().cpl(*(lo - 1)) : trace::kCplUnknown;
  float last_label_x = -1e9f;
  for (auto it = lo; it != hi;) {
    const uint8_t cpl = m.events().cpl(*it);
    const float x = g.x_of(*it + 0.5);
    if (cpl <= 3) {
      float a, b;
      row(cpl, &a, &b);
      dl->AddRectFilled(ImVec2(x - 1.5f, a), ImVec2(x + 1.5f, b), theme::cpl_color(cpl));
      if (prev <= 3 && prev != cpl) {
        float pa, pb;
        row(prev, &pa, &pb);
        dl->AddLine(ImVec2(x, (pa + pb) * 0.5f), ImVec2(x, (a + b) * 0.5f), theme::kText, 1.5f);
        if (x - last_label_x > 150) {
          char t[64];
          std::snprintf(t, sizeof t, "%u → %u %s", prev, cpl,
                        es_en(lang, "visto en la salida", "observed at exit"));
          dl->AddText(ImVec2(x + 3, cpl == 0 ? mid + 1 : y0 + 2), theme::kText, t);
          last_label_x = x;
        }
      }
      prev = cpl;
    }
    // More exits than pixels: the next one a pixel column further (the CPL at the last one
    // skipped is what the next connector starts from).
    const auto next = std::lower_bound(it + 1, hi, static_cast<uint32_t>(std::max(
                                                       0.0, std::ceil(g.event_at(x + 1.0f)))));
    if (next - it > 1) {
      const uint8_t skipped = m.events().cpl(*(next - 1));
      if (skipped <= 3) prev = skipped;
    }
    it = next;
  }
}

void draw_cpl_band(ImDrawList* dl, const Geometry& g, const Model& m, float y0, float y1) {
  const auto& spans = m.cpl_spans();
  const double n = static_cast<double>(m.events().size());
  const float mid = (y0 + y1) * 0.5f;
  dl->AddLine(ImVec2(g.x0, mid), ImVec2(g.x0 + g.w, mid), theme::kGrid);
  if (spans.empty()) return;
  auto it = std::upper_bound(spans.begin(), spans.end(), g.start,
                             [](double v, const Model::CplSpan& s) { return v < s.first; });
  if (it != spans.begin()) --it;
  float last_x1 = -1e9f;
  int last_row = -1;
  while (it != spans.end() && it->first < g.start + g.span) {
    const double end = (it + 1 != spans.end()) ? (it + 1)->first : n;
    float x0 = std::max(g.x_of(it->first), g.x0);
    float x1 = std::min(g.x_of(end), g.x0 + g.w);
    const int row = it->cpl == 0 ? 0 : 1;  // ring 0 on top; 1..3 below
    if (x1 - x0 < 1.0f) {
      // Sub-pixel spans: one mark for this column, then skip to the next column.
      x1 = x0 + 1.0f;
      const double next = g.event_at(x1);
      auto jump = std::upper_bound(it, spans.end(), next,
                                   [](double v, const Model::CplSpan& s) { return v < s.first; });
      const float ya = row == 0 ? y0 + 2 : mid + 1, yb = row == 0 ? mid - 1 : y1 - 2;
      dl->AddRectFilled(ImVec2(x0, ya), ImVec2(x1, yb), theme::cpl_color(it->cpl));
      it = (jump == it) ? it + 1 : jump;
      continue;
    }
    const float ya = row == 0 ? y0 + 2 : mid + 1, yb = row == 0 ? mid - 1 : y1 - 2;
    dl->AddRectFilled(ImVec2(x0, ya), ImVec2(x1, yb), theme::cpl_color(it->cpl, 0.85f), 2.0f);
    if (last_row >= 0 && last_row != row && std::fabs(x0 - last_x1) < 1.5f) {
      dl->AddLine(ImVec2(x0, y0 + 2), ImVec2(x0, y1 - 2), IM_COL32(255, 255, 255, 150), 1.5f);
    }
    // Trap-and-emulate, BT: the real CPL the machine runs this span at, a strip in its own
    // colour on the real CPL's row (sim/virt/technique.hpp real_privilege).
    const Status& st = m.status();
    const auto real = sim::virt::real_privilege(
        st.technique, st.deprivilege, it->cpl,
        m.events().header(it->first).cpu_mode != trace::CpuMode::kReal16);
    if (real && real->cpl != it->cpl) {
      const float ry = real->cpl == 0 ? y0 + 2 : y1 - 6;
      dl->AddRectFilled(ImVec2(x0, ry), ImVec2(x1, ry + 4), theme::kRealPrivilege);
    }
    if (x1 - x0 > 60) {
      char t[32];
      if (real && real->cpl != it->cpl) {
        std::snprintf(t, sizeof t, "CPL %u (real %u)", it->cpl, real->cpl);
      } else {
        std::snprintf(t, sizeof t, "CPL %u", it->cpl);
      }
      dl->AddText(ImVec2(x0 + 4, ya + (yb - ya - ImGui::GetTextLineHeight()) * 0.5f),
                  IM_COL32(20, 22, 26, 255), t);
    }
    last_x1 = x1;
    last_row = row;
    ++it;
  }
}

struct LaneDef {
  const char* name;
  const char* help;
  EventType type;
  float height;
};

}  // namespace

// [SECTION] Panel

void draw_timeline(PanelContext& ctx, TimelineState& s) {
  ImGui::Begin("Timeline");
  Model& m = ctx.model;
  const size_t n = m.events().size();
  const double min_span = 16;

  // Keep the newest events in view while following; bring the selection into view when it
  // changes elsewhere.
  if (n != s.seen_events) {
    if (s.follow || s.seen_events == 0) {
      const double span = std::max(min_span, std::min(s.view_end - s.view_start,
                                                      std::max<double>(n, min_span)));
      s.view_end = std::max<double>(n, span);
      s.view_start = s.view_end - span;
      if (n <= 4096 && s.follow) {  // small runs: show all of it
        s.view_start = 0;
        s.view_end = std::max<double>(n, min_span);
      }
    }
    s.seen_events = n;
  }
  if (m.selection_serial() != s.seen_selection) {
    s.seen_selection = m.selection_serial();
    const double sel = static_cast<double>(m.selected());
    if (m.selected() >= 0 && (sel < s.view_start || sel + 1 > s.view_end)) {
      const double span = s.view_end - s.view_start;
      s.view_start = std::max(0.0, sel - span * 0.5);
      s.view_end = s.view_start + span;
    }
  }

  if (ImGui::SmallButton("Fit")) {
    s.view_start = 0;
    s.view_end = std::max<double>(n, min_span);
    s.follow = true;
  }
  ImGui::SameLine();
  ImGui::Checkbox("follow", &s.follow);
  tooltip("Keep the newest events in view as they arrive.");
  ImGui::SameLine();
  ImGui::TextDisabled("events %s \u2013 %s of %s", with_commas(static_cast<uint64_t>(std::max(0.0, s.view_start))).c_str(),
                      with_commas(static_cast<uint64_t>(std::max(0.0, std::min<double>(s.view_end, n)))).c_str(),
                      with_commas(n).c_str());
  ImGui::SameLine();
  help_marker("The horizontal axis is the event number (events in the order they happened). "
              "Mouse wheel: zoom around the pointer. Drag: pan. Click: select the nearest "
              "event of that lane in every view. Double-click: fit everything.\n\n"
              "CPL: the band sits in the top row while the CPU runs at ring 0 (kernel) and in "
              "the bottom row at ring 3 (user); a white stroke marks a ring transition.");

  static const LaneDef kLanes[] = {
      {"CPL", "Current privilege level: ring 0 (top) or ring 3 (bottom).", EventType::kMax, 38},
      {"VM exits", "Exits to the VMM, coloured by exit reason (hover for details); under "
                   "--technique vt also the VT-x model's exits, in one colour.",
       EventType::kVmExit, 24},
      {"Exceptions", "Exceptions and interrupts delivered through the guest's IDT (not VM exits).",
       EventType::kException, 24},
      {"Page walks", "TLB misses: the MMU walks the guest page tables (simulator).",
       EventType::kPageWalk, 24},
      {"Translations",
       "Translation units made by the binary translator (--technique bt); the Translation "
       "cache window (View menu) lists them.",
       EventType::kBtTranslate, 18},
      {"Instructions", "Retired instructions (simulator, when recording them).",
       EventType::kInstruction, 18},
  };
  const float label_w = 112.0f;
  const ImVec2 origin = ImGui::GetCursorScreenPos();
  const ImVec2 avail = ImGui::GetContentRegionAvail();
  const float axis_h = ImGui::GetTextLineHeight() + 6;
  float lanes_h = 0;
  for (const auto& l : kLanes) lanes_h += l.height;
  const float extra = std::max(0.0f, (avail.y - axis_h - lanes_h) / static_cast<float>(std::size(kLanes)));
  Geometry g{origin.x + label_w, std::max(avail.x - label_w, 50.0f), s.view_start,
             std::max(s.view_end - s.view_start, 1.0)};
  s.data_x0 = g.x0;
  s.data_w = g.w;
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImVec2 canvas_max(origin.x + avail.x, origin.y + std::max(avail.y, lanes_h + axis_h));
  dl->PushClipRect(origin, canvas_max, true);

  // Grid and axis.
  const double step = nice_step(g.span * 110.0 / g.w);
  const float axis_y = origin.y + lanes_h + extra * std::size(kLanes);
  // The i-th line, not t += step: far from 0 (2^53 and up) adding a step may not change t.
  const double t0 = std::ceil(g.start / step) * step;
  const double lines = std::min(std::floor((g.start + g.span - t0) / step) + 1, 1000.0);
  const int n_lines = lines > 0 ? static_cast<int>(lines) : 0;
  for (int i = 0; i < n_lines; ++i) {
    const double t = t0 + i * step;
    const float x = g.x_of(t);
    dl->AddLine(ImVec2(x, origin.y), ImVec2(x, axis_y), theme::kGrid);
    const std::string label = with_commas(static_cast<uint64_t>(std::max(0.0, t)));
    dl->AddText(ImVec2(x + 3, axis_y + 2), theme::kTextDim, label.c_str());
  }

  // Lanes.
  float y = origin.y;
  int hovered_lane = -1;
  const ImVec2 mouse = ImGui::GetIO().MousePos;
  for (size_t li = 0; li < std::size(kLanes); ++li) {
    const LaneDef& l = kLanes[li];
    const float h = l.height + extra;
    const float y1 = y + h;
    s.lane_top[li] = y;
    s.lane_bottom[li] = y1;
    dl->AddRectFilled(ImVec2(g.x0, y), ImVec2(g.x0 + g.w, y1),
                      li % 2 ? theme::kLaneBgAlt : theme::kLaneBg);
    const float ty = y + (h - ImGui::GetTextLineHeight()) * 0.5f;
    dl->AddText(ImVec2(origin.x + 4, ty), theme::kText, l.name);
    if (li == 0) {
      dl->AddText(ImVec2(origin.x + 42, y + 2), theme::cpl_color(0), "ring 0");
      dl->AddText(ImVec2(origin.x + 42, y1 - ImGui::GetTextLineHeight() - 1), theme::cpl_color(3),
                  "ring 3");
      if (m.status().cpl_only_at_exits) {
        draw_cpl_at_exits(dl, g, m, y, y1, ctx.lang);
      } else {
        draw_cpl_band(dl, g, m, y, y1);
      }
    } else if (l.type == EventType::kVmExit) {
      draw_lane(dl, g, m.lane(l.type), y, y1,
                [&](uint32_t i) { return theme::exit_reason_color(m.events().exit_reason(i)); },
                [&](uint32_t i) { return std::string(trace::exit_reason_name(m.events().exit_reason(i))); });
      // The VT-x model's exits (--technique vt, pv) share the lane, in their own colour.
      draw_lane(dl, g, m.lane(EventType::kVmTransition), y, y1,
                [&](uint32_t) { return theme::event_color(EventType::kVmTransition); },
                [&](uint32_t i) {
                  EventRecord r;
                  m.events().load(i, &r);
                  return std::string(x86::vmx_exit_reason_name(r.virt.exit_reason));
                });
    } else {
      draw_lane(dl, g, m.lane(l.type), y, y1, [&](uint32_t) { return theme::event_color(l.type); },
                [&](uint32_t i) -> std::string {
                  if (l.type != EventType::kException) return "";
                  EventRecord r;
                  m.events().load(i, &r);
                  return vector_mnemonic(r.exception.vector);
                });
    }
    if (mouse.y >= y && mouse.y < y1) hovered_lane = static_cast<int>(li);
    y = y1;
  }

  // Selection.
  if (m.selected() >= 0) {
    const float x = g.x_of(m.selected() + 0.5);
    if (x >= g.x0 && x <= g.x0 + g.w) {
      dl->AddLine(ImVec2(x, origin.y), ImVec2(x, axis_y), theme::kSelected, 1.5f);
      dl->AddTriangleFilled(ImVec2(x - 5, origin.y), ImVec2(x + 5, origin.y), ImVec2(x, origin.y + 6),
                            theme::kSelected);
    }
  }
  dl->PopClipRect();

  // Interaction: the data area is one invisible button.
  ImGui::SetCursorScreenPos(ImVec2(g.x0, origin.y));
  ImGui::InvisibleButton("##timeline", ImVec2(g.w, std::max(axis_y - origin.y, 1.0f)));
  const bool hovered = ImGui::IsItemHovered();
  ImGuiIO& io = ImGui::GetIO();
  auto pick = [&]() -> std::optional<size_t> {
    if (hovered_lane < 0) return std::nullopt;
    const LaneDef& l = kLanes[hovered_lane];
    if (hovered_lane == 0 || l.type == EventType::kMax) {
      const double e = std::floor(g.event_at(mouse.x));
      if (e < 0 || e >= static_cast<double>(n)) return std::nullopt;
      return static_cast<size_t>(e);
    }
    auto best = nearest(g, m.lane(l.type), mouse.x, 8.0f);
    if (l.type == EventType::kVmExit && !best) {
      best = nearest(g, m.lane(EventType::kVmTransition), mouse.x, 8.0f);
    }
    return best;
  };
  if (hovered && io.MouseWheel != 0) {
    const double pivot = g.event_at(mouse.x);
    const double factor = std::pow(0.8, io.MouseWheel);
    const double span = std::clamp(g.span * factor, min_span, std::max<double>(n, min_span) * 1.2);
    s.view_start = pivot - (pivot - g.start) * (span / g.span);
    s.view_end = s.view_start + span;
    s.follow = s.view_end >= static_cast<double>(n);
  }
  if (ImGui::IsItemActive() && ImGui::IsMouseDragging(ImGuiMouseButton_Left, 3.0f)) {
    s.dragging = true;
    const double shift = -io.MouseDelta.x / g.w * g.span;
    s.view_start += shift;
    s.view_end += shift;
    s.follow = s.view_end >= static_cast<double>(n);
  }
  if (ImGui::IsItemDeactivated()) {
    if (!s.dragging) {
      if (auto e = pick()) ctx.actions.select(static_cast<int64_t>(*e));
    }
    s.dragging = false;
  }
  if (hovered && ImGui::IsMouseDoubleClicked(ImGuiMouseButton_Left)) {
    s.view_start = 0;
    s.view_end = std::max<double>(n, min_span);
    s.follow = true;
  }
  if (hovered && !s.dragging) {
    if (auto e = pick()) {
      EventRecord r;
      m.events().load(*e, &r);
      ImGui::BeginTooltip();
      ImGui::PushTextWrapPos(ImGui::GetFontSize() * 36.0f);
      std::string number = "#";
      number += with_commas(*e);
      chip(r.header.type == EventType::kVmExit ? theme::exit_reason_color(r.exit.reason)
                                               : theme::event_color(r.header.type),
           number.c_str());
      ImGui::TextUnformatted(event_summary(r).c_str());
      ImGui::TextDisabled("click to select");
      ImGui::PopTextWrapPos();
      ImGui::EndTooltip();
    }
  }
  // Keep the view inside the data (with a margin).
  const double span = s.view_end - s.view_start;
  const double hi = std::max<double>(n, min_span) + span * 0.05;
  if (s.view_end > hi) {
    s.view_end = hi;
    s.view_start = hi - span;
  }
  if (s.view_start < -span * 0.05) {
    s.view_start = -span * 0.05;
    s.view_end = s.view_start + span;
  }
  ImGui::End();
}

}  // namespace trapscope::viz
