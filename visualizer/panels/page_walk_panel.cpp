// The page-walk panel: the selected page walk, reference by reference. For a guest walk
// (trace::PageWalkEvent): the GVA's bits split into each level's index, then each level's entry
// with its flags decoded. For a nested walk (trace::NestedWalkEvent): the 2D grid, one row per
// guest reference plus the final GPA, each row's four EPT references then the guest entry, in
// the order the hardware makes them (Bhargava et al., ASPLOS 2008). For a shadow-paging event
// (trace::ShadowPagingEvent): the guest's leaf entry beside the shadow entry the VMM built, with
// the bits that differ marked. Sources: Intel SDM Vol. 3A 4.3–4.5, Vol. 3C 29.3.
#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "trace/page_walk.hpp"
#include "visualizer/core/describe.hpp"
#include "visualizer/panels/panels.hpp"

namespace trapscope::viz {
namespace {

void bit_split(const theme::Fonts& fonts, uint64_t gva, const std::vector<trace::WalkRef>& refs) {
  ImGui::TextDisabled("GVA");
  ImGui::SameLine();
  mono_text(fonts, IM_COL32(230, 230, 230, 255), hex(gva).c_str());
  if (!ImGui::BeginTable("bits", static_cast<int>(refs.size()) + 1,
                         ImGuiTableFlags_Borders | ImGuiTableFlags_SizingFixedFit)) {
    return;
  }
  for (const auto& r : refs) ImGui::TableSetupColumn(std::string(r.level_name).c_str());
  ImGui::TableSetupColumn("offset");
  ImGui::TableHeadersRow();
  ImGui::TableNextRow();
  unsigned lo = 12;
  for (const auto& r : refs) {
    ImGui::TableNextColumn();
    ImGui::Text("bits %u:%u", r.index_hi, r.index_lo);
    lo = r.index_lo;
  }
  ImGui::TableNextColumn();
  ImGui::Text("bits %u:0", lo - 1);
  ImGui::TableNextRow();
  for (const auto& r : refs) {
    ImGui::TableNextColumn();
    ImGui::Text("%u", r.index);
  }
  ImGui::TableNextColumn();
  ImGui::Text("%s", hex(gva & ((uint64_t{1} << lo) - 1)).c_str());
  ImGui::EndTable();
}

void guest_walk(PanelContext& ctx, const trace::PageWalkEvent& w) {
  const auto refs = trace::decode_walk(w);
  ImGui::Text("%s paging%s", std::string(trace::walk_structure_name(w.header.flags)).c_str(),
              (w.header.flags & trace::kWalkByVmm) ? ", walked by the shadow-paging VMM" : "");
  bit_split(ctx.fonts, w.linear, refs);
  if (ImGui::BeginTable("levels", 5, ImGuiTableFlags_RowBg | ImGuiTableFlags_SizingFixedFit)) {
    for (const char* h : {"level", "index", "entry at GPA", "value", "flags"}) {
      ImGui::TableSetupColumn(h);
    }
    ImGui::TableHeadersRow();
    for (const auto& r : refs) {
      ImGui::TableNextRow();
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(std::string(r.level_name).c_str());
      ImGui::TableNextColumn();
      ImGui::Text("%u", r.index);
      ImGui::TableNextColumn();
      mono_text(ctx.fonts, IM_COL32(200, 200, 200, 255), hex(r.entry_address).c_str());
      ImGui::TableNextColumn();
      mono_text(ctx.fonts, r.fault ? IM_COL32(240, 90, 90, 255) : IM_COL32(230, 230, 230, 255),
                hex(r.entry).c_str());
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(r.flags.c_str());
    }
    ImGui::EndTable();
  }
  if (w.faulted) {
    ImGui::TextColored(ImVec4(0.95f, 0.4f, 0.4f, 1), "#PF, error code 0x%x: %s", w.error_code,
                       page_fault_error(w.error_code).c_str());
  } else {
    ImGui::Text("\u2192 GPA %s", hex(w.physical).c_str());
  }
}

void nested_walk(PanelContext& ctx, const trace::NestedWalkEvent& w) {
  ImGui::Text("%s guest over 4-level EPT: %u references (n\u00B7m + n + m with n = %u, m = 4)",
              std::string(trace::walk_structure_name(w.header.flags)).c_str(), w.nrefs,
              w.guest_levels);
  const auto rows = trace::nested_grid(w);
  if (ImGui::BeginTable("grid", 6, ImGuiTableFlags_Borders | ImGuiTableFlags_SizingFixedFit)) {
    for (const char* h : {"translates", "EPT PML4", "EPT PDPT", "EPT PD", "EPT PT", "guest entry"}) {
      ImGui::TableSetupColumn(h);
    }
    ImGui::TableHeadersRow();
    unsigned order = 0;
    for (const auto& row : rows) {
      ImGui::TableNextRow();
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(row.label.c_str());
      auto cell = [&](const trace::NestedCell& c) {
        ImGui::TableNextColumn();
        if (!c.present) {
          ImGui::TextDisabled("\u2014");
          return;
        }
        ++order;
        const ImU32 color = c.fault ? IM_COL32(240, 90, 90, 255) : IM_COL32(230, 230, 230, 255);
        char buf[64];
        std::snprintf(buf, sizeof buf, "%u. [%u] %s", order, c.index, hex(c.entry).c_str());
        mono_text(ctx.fonts, color, buf);
        if (ImGui::IsItemHovered()) {
          ImGui::SetTooltip("entry at HPA %s", hex(c.hpa).c_str());
        }
      };
      for (const auto& c : row.ept) cell(c);
      cell(row.guest);
    }
    ImGui::EndTable();
  }
  if (w.faulted == 1) ImGui::Text("guest #PF, error code 0x%x", w.error_code);
  else if (w.faulted == 2) ImGui::Text("EPT violation: a VM exit (reason 48); the walk restarts");
  else ImGui::Text("\u2192 GPA %s \u2192 HPA %s", hex(w.gpa).c_str(), hex(w.hpa).c_str());
}

void shadow_entry(PanelContext& ctx, const trace::ShadowPagingEvent& e) {
  ImGui::Text("%s at GVA %s", std::string(trace::to_string(e.action)).c_str(),
              hex(e.linear).c_str());
  if (e.action != trace::ShadowAction::kHiddenFault) return;
  ImGui::TextDisabled("guest leaf entry (guest-physical) and the shadow entry the VMM built "
                      "(host-physical); differing bits in red");
  if (ImGui::BeginTable("side", 3, ImGuiTableFlags_Borders | ImGuiTableFlags_SizingFixedFit)) {
    ImGui::TableSetupColumn("bit");
    ImGui::TableSetupColumn("guest");
    ImGui::TableSetupColumn("shadow");
    ImGui::TableHeadersRow();
    struct Bit {
      const char* name;
      uint64_t mask;
    };
    const Bit bits[] = {{"P", 1}, {"RW", 2}, {"US", 4}, {"A", 32}, {"D", 64}, {"G", 256},
                        {"XD", 1ull << 63}, {"frame", 0x000FFFFFFFFFF000ull}};
    for (const Bit& b : bits) {
      const uint64_t g = e.guest_entry & b.mask, s = e.shadow_entry & b.mask;
      const ImU32 color = g != s ? IM_COL32(240, 90, 90, 255) : IM_COL32(230, 230, 230, 255);
      ImGui::TableNextRow();
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(b.name);
      ImGui::TableNextColumn();
      mono_text(ctx.fonts, color, b.mask == 0x000FFFFFFFFFF000ull ? hex(g).c_str() : (g ? "1" : "0"));
      ImGui::TableNextColumn();
      mono_text(ctx.fonts, color, b.mask == 0x000FFFFFFFFFF000ull ? hex(s).c_str() : (s ? "1" : "0"));
    }
    ImGui::EndTable();
  }
}

}  // namespace

void draw_page_walk(PanelContext& ctx, bool* open) {
  if (!*open) return;
  // First shown over the disassembly and memory, never over the lesson pane.
  const ImVec2 d = ImGui::GetIO().DisplaySize;
  const float w = std::min(d.x * 0.52f, ctx.free_right());
  ImGui::SetNextWindowPos(ImVec2(std::min(d.x * 0.31f, ctx.free_right() - w), d.y * 0.45f),
                          ImGuiCond_FirstUseEver);
  ImGui::SetNextWindowSize(ImVec2(w, d.y * 0.3f), ImGuiCond_FirstUseEver);
  if (!ImGui::Begin("Page walk", open)) {
    ImGui::End();
    return;
  }
  Model& m = ctx.model;
  EventRecord r;
  if (m.selected() >= 0) m.events().load(static_cast<size_t>(m.selected()), &r);
  const trace::EventType t = m.selected() >= 0 ? r.header.type : trace::EventType::kMax;
  if (t == trace::EventType::kPageWalk) guest_walk(ctx, r.walk);
  else if (t == trace::EventType::kNestedWalk) nested_walk(ctx, r.nested_walk);
  else if (t == trace::EventType::kShadowPaging) shadow_entry(ctx, r.shadow);
  else ImGui::TextDisabled("Select a page walk (W steps to the next), a 2D walk or a shadow-paging "
                           "event.");
  ImGui::End();
}

}  // namespace trapscope::viz
