// Registers at the last stop: the general registers, RIP and RFLAGS decoded, the segment
// registers as a descriptor-cache table (kvmtool's columns), the descriptor tables, and the
// control registers and EFER with their bits named. Values that changed since the previous
// stop are highlighted (hover for the old value).
#include <cstdio>

#include "visualizer/core/describe.hpp"
#include "visualizer/panels/panels.hpp"

namespace trapscope::viz {
namespace {

std::string h16(uint64_t v) { return hex_fixed(v, 16); }

void bits_row(const theme::Fonts& fonts, const std::vector<Bit>& bits, bool show_clear) {
  bool first = true;
  for (const Bit& b : bits) {
    if (!b.set && !show_clear) continue;
    if (!first) ImGui::SameLine(0, 4);
    first = false;
    ImGui::PushFont(fonts.mono);
    ImGui::PushStyleColor(ImGuiCol_Text, b.set ? theme::kText : IM_COL32(90, 96, 108, 255));
    ImGui::PushStyleColor(ImGuiCol_Button, b.set ? ImVec4(0.22f, 0.32f, 0.50f, 1) : ImVec4(0.14f, 0.15f, 0.18f, 1));
    ImGui::PushStyleVar(ImGuiStyleVar_FramePadding, ImVec2(4, 1));
    ImGui::SmallButton(b.name);
    ImGui::PopStyleVar();
    ImGui::PopStyleColor(2);
    ImGui::PopFont();
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s: %s (%s)", b.name, b.meaning, b.set ? "set" : "clear");
  }
  if (first) ImGui::TextDisabled("none set");
}

// Under trap-and-emulate and BT the registers are the guest's VIRTUAL state; the machine runs
// it at another CPL, IF and IOPL (sim/virt/technique.hpp real_privilege). Both, in two colours:
// the virtual (what the guest believes) in the CPL colour above, the real one in the technique
// colour here.
void real_privilege_row(PanelContext& ctx, const sim::virt::RealPrivilege& real) {
  const Lang l = ctx.lang;
  const x86::CpuState& r = ctx.model.registers();
  ImGui::PushFont(ctx.fonts.large);
  ImGui::TextColored(theme::to_vec4(theme::kRealPrivilege), "%s %u",
                     es_en(l, "CPL real", "real CPL"), real.cpl);
  ImGui::PopFont();
  ImGui::SameLine();
  ImGui::BeginGroup();
  ImGui::TextColored(theme::to_vec4(theme::kRealPrivilege), "%s · IOPL %u · IF=%d",
                     es_en(l, "lo que ejecuta la máquina", "what the machine runs"),
                     static_cast<unsigned>(real.iopl), real.interrupts ? 1 : 0);
  ImGui::TextColored(theme::to_vec4(theme::cpl_color(r.cpl())), "%s: CPL %u · IOPL %u · IF=%d",
                     es_en(l, "lo que cree el invitado (virtual)", "what the guest believes (virtual)"),
                     r.cpl(), static_cast<unsigned>((r.rflags >> 12) & 3),
                     (r.rflags & x86::kIF) ? 1 : 0);
  ImGui::EndGroup();
  tooltip(es_en(l,
                "Con atrapar y emular y con traducción binaria los registros son el estado "
                "VIRTUAL del invitado. La máquina ejecuta su núcleo en otro anillo (compresión de "
                "anillos: --deprivilege; la traducción binaria en CPL 1), con IF=1 e IOPL 0: por "
                "eso pushf, smsw o mov desde CS ven el estado real.",
                "Under trap-and-emulate and binary translation the registers are the guest's "
                "VIRTUAL state. The machine runs its kernel in another ring (ring compression: "
                "--deprivilege; translated code at CPL 1), with IF=1 and IOPL 0: which is why "
                "pushf, smsw or mov from CS see the real state."));
}

}  // namespace

void draw_registers(PanelContext& ctx) {
  ImGui::Begin("Registers");
  const Model& m = ctx.model;
  if (!m.has_registers()) {
    ImGui::TextDisabled(m.status().state == RunState::kTrace
                            ? "A trace file records events, not registers (a simulator trace "
                              "whose guest is at hand shows them by re-execution): the CPL "
                              "shown is the selected event's."
                            : "No registers yet.");
    ImGui::End();
    return;
  }
  const x86::CpuState& r = m.registers();
  const x86::CpuState& p = m.previous_registers();
  const bool prev = m.has_previous_registers();

  // The privilege level, first and large.
  const uint8_t cpl = r.cpl();
  ImGui::PushFont(ctx.fonts.large);
  ImGui::PushStyleColor(ImGuiCol_Text, theme::cpl_color(cpl));
  ImGui::Text("CPL %u", cpl);
  ImGui::PopStyleColor();
  ImGui::PopFont();
  ImGui::SameLine();
  ImGui::BeginGroup();
  ImGui::TextColored(theme::to_vec4(theme::cpl_color(cpl)), "%s", std::string(ring_name(cpl)).c_str());
  ImGui::TextDisabled("%s \u00B7 IOPL %u \u00B7 interrupts %s",
                      std::string(cpu_mode_name(r.mode())).c_str(),
                      static_cast<unsigned>((r.rflags >> 12) & 3),
                      (r.rflags & x86::kIF) ? "enabled (IF=1)" : "disabled (IF=0)");
  ImGui::EndGroup();
  tooltip("CPL = CS.RPL in protected and long mode, 0 in real mode, 3 in virtual-8086 mode "
          "(SDM Vol. 3A 5.5). IOPL: the highest CPL allowed to use in/out and cli/sti without "
          "the I/O bitmap.");
  if (const auto& real = m.status().real) real_privilege_row(ctx, *real);
  ImGui::Separator();

  static constexpr const char* kGpr[] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                         "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
  static constexpr int kOrder[] = {x86::kRax, x86::kRbx, x86::kRcx, x86::kRdx, x86::kRsi,
                                   x86::kRdi, x86::kRbp, x86::kRsp, x86::kR8,  x86::kR9,
                                   x86::kR10, x86::kR11, x86::kR12, x86::kR13, x86::kR14,
                                   x86::kR15};
  const ImGuiTableFlags tf = ImGuiTableFlags_RowBg | ImGuiTableFlags_SizingFixedFit |
                             ImGuiTableFlags_BordersInnerV;
  // Three name/value pairs a row when the panel is wide enough, else two.
  const float pair_w = ImGui::CalcTextSize("rflags 0000000000000000").x + 24;
  const int pairs = ImGui::GetContentRegionAvail().x >= 3 * pair_w ? 3 : 2;
  if (ImGui::BeginTable("gpr", pairs * 2, tf)) {
    struct Cell {
      const char* name;
      uint64_t now, was;
    };
    std::vector<Cell> cells;
    for (int g : kOrder) cells.push_back({kGpr[g], r.gpr[g], p.gpr[g]});
    cells.push_back({"rip", r.rip, p.rip});
    cells.push_back({"rflags", r.rflags, p.rflags});
    for (size_t i = 0; i < cells.size(); ++i) {
      if (i % static_cast<size_t>(pairs) == 0) ImGui::TableNextRow();
      ImGui::TableNextColumn();
      ImGui::TextDisabled("%s", cells[i].name);
      ImGui::TableNextColumn();
      value_cell(ctx.fonts, h16(cells[i].now), prev && cells[i].now != cells[i].was,
                 hex(cells[i].was));
    }
    ImGui::EndTable();
  }
  ImGui::TextDisabled("RFLAGS");
  ImGui::SameLine();
  bits_row(ctx.fonts, rflags_bits(r.rflags), false);

  if (ImGui::CollapsingHeader("Control registers and EFER", ImGuiTreeNodeFlags_DefaultOpen)) {
    if (ImGui::BeginTable("cr", 3, tf)) {
      ImGui::TableSetupColumn("reg", ImGuiTableColumnFlags_WidthFixed);
      ImGui::TableSetupColumn("value", ImGuiTableColumnFlags_WidthFixed);
      ImGui::TableSetupColumn("bits", ImGuiTableColumnFlags_WidthStretch);
      auto row = [&](const char* name, uint64_t v, uint64_t was, const std::vector<Bit>* bits,
                     const char* note) {
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        ImGui::TextDisabled("%s", name);
        ImGui::TableNextColumn();
        value_cell(ctx.fonts, h16(v), prev && v != was, hex(was));
        ImGui::TableNextColumn();
        if (bits) {
          bits_row(ctx.fonts, *bits, false);
        } else {
          ImGui::TextDisabled("%s", note);
        }
      };
      const auto cr0 = cr0_bits(r.cr0), cr4 = cr4_bits(r.cr4), efer = efer_bits(r.efer);
      row("cr0", r.cr0, p.cr0, &cr0, "");
      row("cr2", r.cr2, p.cr2, nullptr, "page-fault linear address");
      row("cr3", r.cr3, p.cr3, nullptr, "page-table root (guest-physical)");
      row("cr4", r.cr4, p.cr4, &cr4, "");
      row("efer", r.efer, p.efer, &efer, "");
      ImGui::EndTable();
    }
  }
  if (ImGui::CollapsingHeader("Segments", ImGuiTreeNodeFlags_DefaultOpen)) {
    const ImGuiTableFlags sf = ImGuiTableFlags_RowBg | ImGuiTableFlags_SizingFixedFit |
                               ImGuiTableFlags_BordersInnerV | ImGuiTableFlags_ScrollX;
    // A table with ScrollX is a child window: without an explicit height it takes whatever is
    // left of the panel (often one row). Give it room for its header, 8 rows and the scrollbar;
    // the panel itself scrolls.
    const float seg_h = 9 * ImGui::GetFrameHeight() + ImGui::GetStyle().ScrollbarSize;
    if (ImGui::BeginTable("seg", 11, sf, ImVec2(0, seg_h))) {
      for (const char* h : {"", "selector", "base", "limit", "type", "S", "DPL", "P", "L", "D/B", "G"}) {
        ImGui::TableSetupColumn(h);
      }
      ImGui::TableHeadersRow();
      static constexpr const char* kSeg[] = {"es", "cs", "ss", "ds", "fs", "gs"};
      static constexpr int kSegOrder[] = {x86::kCs, x86::kSs, x86::kDs, x86::kEs, x86::kFs, x86::kGs};
      auto row = [&](const char* name, const x86::Segment& s, const x86::Segment* was) {
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        ImGui::TextDisabled("%s", name);
        ImGui::TableNextColumn();
        char sel[16];
        std::snprintf(sel, sizeof sel, "%04x", s.selector);
        value_cell(ctx.fonts, sel, was && was->selector != s.selector, was ? hex(was->selector) : "");
        if (ImGui::IsItemHovered()) {
          ImGui::SetTooltip("index %u, table %s, RPL %u", s.selector >> 3,
                            (s.selector & 4) ? "LDT" : "GDT", s.selector & 3);
        }
        ImGui::TableNextColumn();
        value_cell(ctx.fonts, hex_fixed(s.base, s.base > 0xFFFFFFFFull ? 16 : 8),
                   was && was->base != s.base, was ? hex(was->base) : "");
        ImGui::TableNextColumn();
        value_cell(ctx.fonts, hex_fixed(s.limit, 8), was && was->limit != s.limit,
                   was ? hex(was->limit) : "");
        ImGui::TableNextColumn();
        char type[8];
        std::snprintf(type, sizeof type, "%x", s.type);
        mono_text(ctx.fonts, theme::kText, type);
        if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", segment_type(s).c_str());
        for (uint8_t v : {s.s, s.dpl, s.present, s.l, s.db, s.g}) {
          ImGui::TableNextColumn();
          char t[4];
          std::snprintf(t, sizeof t, "%u", v);
          mono_text(ctx.fonts, v ? theme::kText : theme::kTextDim, t);
        }
      };
      for (int i : kSegOrder) row(kSeg[i], r.seg[i], prev ? &p.seg[i] : nullptr);
      row("ldtr", r.ldtr, prev ? &p.ldtr : nullptr);
      row("tr", r.tr, prev ? &p.tr : nullptr);
      ImGui::EndTable();
    }
    ImGui::TextDisabled("gdtr");
    ImGui::SameLine();
    mono_text(ctx.fonts, prev && (r.gdtr.base != p.gdtr.base || r.gdtr.limit != p.gdtr.limit)
                             ? theme::kChanged : theme::kText,
              (hex(r.gdtr.base) + " limit " + hex(r.gdtr.limit)).c_str());
    ImGui::SameLine(0, 24);
    ImGui::TextDisabled("idtr");
    ImGui::SameLine();
    mono_text(ctx.fonts, prev && (r.idtr.base != p.idtr.base || r.idtr.limit != p.idtr.limit)
                             ? theme::kChanged : theme::kText,
              (hex(r.idtr.base) + " limit " + hex(r.idtr.limit)).c_str());
  }

  ImGui::End();
}

}  // namespace trapscope::viz
