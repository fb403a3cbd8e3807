// The translation-cache panel (binary translation, `--technique bt`): one row per translated
// block with its translation count, execution count and instructions executed (QEMU's
// hotblocks columns), sortable; for the selected block its guest code beside its translation,
// each instruction IDENT or non-IDENT with why (Adams & Agesen, ASPLOS 2006, section 3); its
// chain edges (successors and predecessors, clickable); the invalidations. Everything comes
// from the model's TranslationCacheView (visualizer/core/tcache_view.hpp): what the translator
// recorded in the BT events.
#include <algorithm>
#include <cstdio>

#include "visualizer/core/describe.hpp"
#include "visualizer/panels/panels.hpp"

namespace trapscope::viz {
namespace {

ImU32 kind_color(trace::BtKind k) {
  switch (k) {
    case trace::BtKind::kIdent: return IM_COL32(110, 190, 120, 255);
    case trace::BtKind::kPcRelative: return IM_COL32(120, 170, 240, 255);
    case trace::BtKind::kDirectBranch: return IM_COL32(90, 200, 220, 255);
    case trace::BtKind::kIndirectBranch: return IM_COL32(170, 140, 240, 255);
    case trace::BtKind::kInCache: return IM_COL32(240, 200, 90, 255);
    case trace::BtKind::kCallout: return IM_COL32(240, 120, 90, 255);
    case trace::BtKind::kAdaptive: return IM_COL32(240, 90, 150, 255);
    case trace::BtKind::kMax: break;
  }
  return theme::kTextDim;
}

// The unit whose events the model's selection points at, if it is a BT event.
std::optional<uint32_t> unit_of_selected(const Model& m) {
  if (m.selected() < 0) return std::nullopt;
  const auto i = static_cast<size_t>(m.selected());
  const trace::EventType t = m.events().type(i);
  if (t < trace::EventType::kBtTranslate || t > trace::EventType::kBtCounts) return std::nullopt;
  EventRecord r;
  m.events().load(i, &r);
  const TranslationCacheView& tc = m.tcache();
  switch (t) {
    case trace::EventType::kBtTranslate: return tc.unit_by_id(r.bt_translate.unit);
    case trace::EventType::kBtChain: return tc.unit_by_id(r.bt_chain.to_unit);
    case trace::EventType::kBtLookup: return tc.unit_by_id(r.bt_lookup.unit);
    case trace::EventType::kBtCallout: return tc.unit_by_id(r.bt_callout.unit);
    case trace::EventType::kBtCounts: return tc.unit_by_id(r.bt_counts.unit);
    default: return std::nullopt;
  }
}

void summary(PanelContext& ctx) {
  const TcTotals& t = ctx.model.tcache().totals();
  ImGui::Text("%zu blocks, %s translations (%s guest instructions: %s IDENT, %s non-IDENT), "
              "%s chains, %s callouts (%s adaptive), %s units invalidated",
              ctx.model.tcache().blocks().size(), with_commas(t.translations).c_str(),
              with_commas(t.translated_insns).c_str(), with_commas(t.ident).c_str(),
              with_commas(t.non_ident).c_str(), with_commas(t.chains).c_str(),
              with_commas(t.callouts).c_str(), with_commas(t.adaptive_callouts).c_str(),
              with_commas(t.invalidated_units).c_str());
  ImGui::SameLine();
  help_marker(
      "Binary translation (Adams & Agesen, ASPLOS 2006): guest kernel code runs from units "
      "translated into the translation cache. A block is a guest address (RIP, GPA, mode); "
      "each translation there is a unit.\n\nExecutions and instructions executed are the "
      "cache's own counters (bt_counts events): an entry through a chain records no event, so "
      "they are reported at each stop (a step, a slice of a run, a breakpoint, a step-to, the "
      "guest's end) and just before an invalidated unit is freed, not as they happen.");
  if (t.count_reports == 0) {
    ImGui::TextDisabled("Execution counts: not reported yet (they come at each stop).");
  } else {
    ImGui::TextDisabled("Executed from the cache: %s unit entries, %s guest instructions "
                        "(as of the last stop)",
                        with_commas(t.executions).c_str(), with_commas(t.instructions).c_str());
  }
}

void block_table(PanelContext& ctx, TcacheState& st, float height) {
  TranslationCacheView& tc = ctx.model.tcache();
  const ImGuiTableFlags flags = ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerV |
                                ImGuiTableFlags_Sortable | ImGuiTableFlags_ScrollY |
                                ImGuiTableFlags_SizingFixedFit | ImGuiTableFlags_Resizable;
  if (!ImGui::BeginTable("blocks", 8, flags, ImVec2(0, height))) return;
  ImGui::TableSetupScrollFreeze(0, 1);
  for (int c = 0; c < static_cast<int>(TcColumn::kCount); ++c) {
    const auto col = static_cast<TcColumn>(c);
    ImGuiTableColumnFlags f = ImGuiTableColumnFlags_None;
    if (col == TcColumn::kExecutions) {
      f |= ImGuiTableColumnFlags_DefaultSort | ImGuiTableColumnFlags_PreferSortDescending;
    } else if (col != TcColumn::kRip && col != TcColumn::kPa) {
      f |= ImGuiTableColumnFlags_PreferSortDescending;
    }
    ImGui::TableSetupColumn(std::string(to_string(col)).c_str(), f);
  }
  ImGui::TableSetupColumn("state", ImGuiTableColumnFlags_NoSort);
  ImGui::TableHeadersRow();
  if (ImGuiTableSortSpecs* specs = ImGui::TableGetSortSpecs()) {
    if (specs->SpecsDirty && specs->SpecsCount > 0) {
      st.sort = static_cast<TcColumn>(specs->Specs[0].ColumnIndex);
      st.descending = specs->Specs[0].SortDirection == ImGuiSortDirection_Descending;
      st.sorted_revision = ~0ull;
      specs->SpecsDirty = false;
    }
  }
  if (st.sorted_revision != tc.revision() || st.rows.size() != tc.blocks().size()) {
    st.rows = sorted_blocks(tc, st.sort, st.descending);
    st.sorted_revision = tc.revision();
  }
  ImGuiListClipper clip;
  clip.Begin(static_cast<int>(st.rows.size()));
  if (st.scroll_to_selection && tc.selected()) {  // draw the selected row, wherever it is
    const auto at = std::find(st.rows.begin(), st.rows.end(), *tc.selected());
    if (at != st.rows.end()) {
      const int row = static_cast<int>(at - st.rows.begin());
      clip.ForceDisplayRangeByIndices(row, row + 1);
    } else {
      st.scroll_to_selection = false;
    }
  }
  while (clip.Step()) {
    for (int r = clip.DisplayStart; r < clip.DisplayEnd; ++r) {
      const uint32_t bi = st.rows[static_cast<size_t>(r)];
      const TcBlock& b = tc.blocks()[bi];
      ImGui::TableNextRow();
      ImGui::TableNextColumn();
      ImGui::PushID(static_cast<int>(bi));
      const bool selected = tc.selected() == bi;
      const ImVec2 p = ImGui::GetCursorScreenPos();
      if (ImGui::Selectable("##row", selected, ImGuiSelectableFlags_SpanAllColumns)) {
        tc.select(bi);
        st.unit = b.newest;
        ctx.actions.select(tc.units()[b.newest].event);
      }
      if (st.scroll_to_selection && selected) {
        ImGui::SetScrollHereY();
        st.scroll_to_selection = false;
      }
      ImGui::SetCursorScreenPos(p);
      mono_text(ctx.fonts, theme::kText, hex(b.rip).c_str());
      ImGui::PopID();
      ImGui::TableNextColumn();
      mono_text(ctx.fonts, theme::kTextDim, hex(b.pa).c_str());
      ImGui::TableNextColumn();
      ImGui::Text("%u", b.count);
      ImGui::TableNextColumn();
      ImGui::Text("%u", b.translations);
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(with_commas(b.executions).c_str());
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(with_commas(b.instructions).c_str());
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(with_commas(b.callouts).c_str());
      ImGui::TableNextColumn();
      if (b.live) ImGui::TextUnformatted("in cache");
      else ImGui::TextColored(theme::to_vec4(theme::kError), "dropped");
    }
  }
  ImGui::EndTable();
}

void neighbours(PanelContext& ctx, TcacheState& st, const char* label,
                const std::vector<TranslationCacheView::Neighbour>& list) {
  TranslationCacheView& tc = ctx.model.tcache();
  ImGui::TextDisabled("%s", label);
  if (list.empty()) {
    ImGui::SameLine();
    ImGui::TextDisabled("none");
    return;
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const TcBlock& b = tc.blocks()[list[i].block];
    ImGui::SameLine();
    const std::string text = hex(b.rip) + (list[i].taken ? " (taken)" : " (fall-through)") +
                             "##" + label + std::to_string(i);
    if (ImGui::SmallButton(text.c_str())) {
      tc.select(list[i].block);
      st.unit = b.newest;
      st.scroll_to_selection = true;
      ctx.actions.select(tc.units()[b.newest].event);
    }
  }
}

void block_detail(PanelContext& ctx, TcacheState& st) {
  TranslationCacheView& tc = ctx.model.tcache();
  if (!tc.selected()) {
    ImGui::TextDisabled("Select a block (or a BT event in the event list) to see its guest code "
                        "beside its translation.");
    return;
  }
  const uint32_t bi = *tc.selected();
  const TcBlock& b = tc.blocks()[bi];
  const std::vector<uint32_t> units = tc.units_of(bi);
  if (std::find(units.begin(), units.end(), st.unit) == units.end()) st.unit = b.newest;
  const TcUnit& u = tc.units()[st.unit];
  ImGui::Text("Block %s (GPA %s, %s): %u translation%s", hex(b.rip).c_str(), hex(b.pa).c_str(),
              std::string(cpu_mode_name(b.mode)).c_str(), b.translations,
              b.translations == 1 ? "" : "s");
  if (units.size() > 1) {
    for (size_t k = 0; k < units.size(); ++k) {
      ImGui::SameLine();
      const std::string label = "unit " + std::to_string(tc.units()[units[k]].id);
      if (ImGui::RadioButton(label.c_str(), st.unit == units[k])) st.unit = units[k];
    }
  }
  ImGui::Text("unit %u: %u instructions (%u IDENT), translated at event #%u; %s executions, "
              "%s instructions executed, %s callouts, %s traps",
              u.id, u.count, u.ident, u.event, with_commas(u.executions).c_str(),
              with_commas(u.instructions).c_str(), with_commas(u.callouts).c_str(),
              with_commas(u.traps).c_str());
  if (u.adaptive_threshold != 0) {
    ImGui::SameLine();
    help_marker(("The translator retranslates an instruction into a callout after it traps " +
                 std::to_string(u.adaptive_threshold) +
                 " times (its adaptive threshold, recorded with the unit).")
                    .c_str());
  }
  ImGui::SameLine();
  if (u.live) {
    ImGui::TextColored(theme::to_vec4(theme::kOk), "in the cache");
  } else if (u.dropped_by >= 0) {
    ImGui::TextColored(theme::to_vec4(theme::kError), "invalidated at event #%lld",
                       static_cast<long long>(u.dropped_by));
  } else {
    ImGui::TextColored(theme::to_vec4(theme::kError), "replaced by a newer translation");
  }
  neighbours(ctx, st, "Successors (chained to):", tc.successors(bi));
  neighbours(ctx, st, "Predecessors (chained from):", tc.predecessors(bi));
  const auto lines = tc.lines(st.unit, ctx.model.events());
  const ImGuiTableFlags flags = ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerV |
                                ImGuiTableFlags_SizingFixedFit | ImGuiTableFlags_Resizable;
  if (ImGui::BeginTable("side", 5, flags)) {
    ImGui::TableSetupColumn("guest RIP");
    ImGui::TableSetupColumn("bytes");
    ImGui::TableSetupColumn("guest code");
    ImGui::TableSetupColumn("kind");
    ImGui::TableSetupColumn("translation", ImGuiTableColumnFlags_WidthStretch);
    ImGui::TableHeadersRow();
    for (const TcLine& l : lines) {
      ImGui::TableNextRow();
      ImGui::TableNextColumn();
      mono_text(ctx.fonts, theme::kTextDim, hex(l.rip).c_str());
      ImGui::TableNextColumn();
      mono_text(ctx.fonts, theme::kTextDim, l.bytes.c_str());
      ImGui::TableNextColumn();
      mono_text(ctx.fonts, theme::kText, l.guest.c_str());
      ImGui::TableNextColumn();
      chip(kind_color(l.kind), l.kind_name.c_str());
      if (!l.why.empty()) tooltip(l.why.c_str());
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(l.translated.c_str());
      if (!l.why.empty()) {
        ImGui::PushStyleColor(ImGuiCol_Text, theme::kTextDim);
        ImGui::TextWrapped("%s", l.why.c_str());
        ImGui::PopStyleColor();
      }
    }
    ImGui::EndTable();
  }
}

void invalidations(PanelContext& ctx) {
  const auto& list = ctx.model.tcache().invalidations();
  const std::string header = "Invalidations (" + std::to_string(list.size()) + ")###inval";
  if (!ImGui::CollapsingHeader(header.c_str())) return;
  if (list.empty()) {
    ImGui::TextDisabled("No page holding translated code was written.");
    return;
  }
  for (size_t i = 0; i < list.size() && i < 1000; ++i) {
    const TcInvalidation& v = list[i];
    char label[48];
    std::snprintf(label, sizeof label, "#%u##inv%zu", v.event, i);
    if (ImGui::SmallButton(label)) ctx.actions.select(v.event);
    ImGui::SameLine();
    ImGui::Text("page GPA %s: %u unit%s dropped (rip %s)", hex(v.page_pa).c_str(), v.units,
                v.units == 1 ? "" : "s", hex(v.rip).c_str());
  }
}

}  // namespace

void draw_tcache(PanelContext& ctx, TcacheState& st, bool* open) {
  TranslationCacheView& tc = ctx.model.tcache();
  if (!st.opened_once && !tc.empty()) {  // the first translation opens the panel
    st.opened_once = true;
    *open = true;
  }
  if (!*open) return;
  // First shown over the middle and right columns, never over the lesson pane.
  const ImVec2 d = ImGui::GetIO().DisplaySize;
  const float w = std::min(d.x * 0.69f, ctx.free_right());
  ImGui::SetNextWindowPos(ImVec2(ctx.free_right() - w, d.y * 0.30f), ImGuiCond_FirstUseEver);
  ImGui::SetNextWindowSize(ImVec2(w, d.y * 0.70f), ImGuiCond_FirstUseEver);
  if (!ImGui::Begin("Translation cache", open)) {
    ImGui::End();
    return;
  }
  if (st.seen_selection != ctx.model.selection_serial()) {
    st.seen_selection = ctx.model.selection_serial();
    if (const auto u = unit_of_selected(ctx.model)) {
      if (tc.selected() != tc.units()[*u].block) st.scroll_to_selection = true;
      tc.select(tc.units()[*u].block);
      st.unit = *u;
    }
  }
  if (tc.empty()) {
    ImGui::TextDisabled("No translations. The translation cache belongs to binary translation: "
                        "trapscope gui GUEST --technique bt, or a trace recorded with "
                        "trapscope run GUEST --technique bt --trace FILE.");
    ImGui::End();
    return;
  }
  summary(ctx);
  const float avail = ImGui::GetContentRegionAvail().y;
  block_table(ctx, st, std::max(120.0f, avail * 0.42f));
  ImGui::Separator();
  if (ImGui::BeginChild("detail", ImVec2(0, 0))) {
    block_detail(ctx, st);
    invalidations(ctx);
  }
  ImGui::EndChild();
  ImGui::End();
}

}  // namespace trapscope::viz
