// The VMCS of the simulator's VT-x model (--technique vt, pv): its guest-state and host-state
// areas and its control fields by their SDM names (Intel SDM Vol. 3C chapter 25; the table is
// sim/virt/vmcs.hpp). The controls the model honours are checkboxes: a change goes to the
// machine as a kSetVmcs command and the next instruction follows it (docs/vmcs.md).
//
// [SECTION] Guest-state area   from the registers at the last stop (25.4)
// [SECTION] Host-state area    the model's VMM (25.5)
// [SECTION] Controls           pin-based, primary and secondary processor-based, exit, entry
// [SECTION] Bitmaps and masks  exception bitmap, I/O bitmaps, CR0/CR4 masks and read shadows
#include <cstdio>
#include <cstdlib>

#include "visualizer/core/describe.hpp"
#include "visualizer/panels/panels.hpp"

namespace trapscope::viz {
namespace {

using sim::virt::VmcsControl;
using sim::virt::VmcsControls;
using sim::virt::VmcsField;

void row(const theme::Fonts& fonts, const char* name, const std::string& value,
         const char* note = nullptr) {
  ImGui::TableNextRow();
  ImGui::TableNextColumn();
  ImGui::TextDisabled("%s", name);
  ImGui::TableNextColumn();
  mono_text(fonts, theme::kText, value.c_str());
  if (note) {
    ImGui::SameLine();
    ImGui::TextDisabled("%s", note);
  }
}

bool begin_fields(const char* id) {
  return ImGui::BeginTable(id, 2, ImGuiTableFlags_RowBg | ImGuiTableFlags_SizingStretchProp);
}

// [SECTION] Guest-state area

void guest_state(PanelContext& ctx) {
  const Lang l = ctx.lang;
  const Model& m = ctx.model;
  if (!m.has_registers()) {
    ImGui::TextDisabled("%s", es_en(l, "Sin registros todavía.", "No registers yet."));
    return;
  }
  const x86::CpuState& r = m.registers();
  if (!begin_fields("guest")) return;
  row(ctx.fonts, "CR0", hex(r.cr0), set_bit_names(cr0_bits(r.cr0)).c_str());
  row(ctx.fonts, "CR3", hex(r.cr3));
  row(ctx.fonts, "CR4", hex(r.cr4), set_bit_names(cr4_bits(r.cr4)).c_str());
  row(ctx.fonts, "RSP", hex(r.gpr[4]));
  row(ctx.fonts, "RIP", hex(r.rip));
  row(ctx.fonts, "RFLAGS", hex(r.rflags), set_bit_names(rflags_bits(r.rflags)).c_str());
  static constexpr const char* kSeg[] = {"ES", "CS", "SS", "DS", "FS", "GS"};
  auto seg = [&](const char* name, const x86::Segment& s) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "sel %04x base %llx limit %x DPL %u", s.selector,
                  static_cast<unsigned long long>(s.base), s.limit, s.dpl);
    row(ctx.fonts, name, buf);
  };
  for (int i = 0; i < x86::kSegCount; ++i) seg(kSeg[i], r.seg[i]);
  seg("LDTR", r.ldtr);
  seg("TR", r.tr);
  row(ctx.fonts, "GDTR", hex(r.gdtr.base) + " / " + hex(r.gdtr.limit));
  row(ctx.fonts, "IDTR", hex(r.idtr.base) + " / " + hex(r.idtr.limit));
  row(ctx.fonts, "IA32_EFER", hex(r.efer), set_bit_names(efer_bits(r.efer)).c_str());
  row(ctx.fonts, "CPL", std::to_string(r.cpl()),
      es_en(l, "= SS.DPL (SDM Vol. 3A 5.5)", "= SS.DPL (SDM Vol. 3A 5.5)"));
  ImGui::EndTable();
}

// [SECTION] Host-state area

void host_state(PanelContext& ctx) {
  const Lang l = ctx.lang;
  const sim::virt::HostState& h = sim::virt::kHostState;
  if (!begin_fields("host")) return;
  row(ctx.fonts, "CR0", hex(h.cr0), set_bit_names(cr0_bits(h.cr0)).c_str());
  row(ctx.fonts, "GDTR base", hex(h.gdt_base));
  row(ctx.fonts, "IDTR base", hex(h.idt_base));
  row(ctx.fonts, "TR selector", hex(h.tr));
  const char* vmm = es_en(l, "el VMM del modelo (sin modelar: el simulador no ejecuta su código)",
                          "the model's VMM (not modelled: the simulator runs no VMM code)");
  row(ctx.fonts, "CR3, CR4, RSP, RIP", "\u2014", vmm);
  ImGui::EndTable();
}

// [SECTION] Controls

void controls(PanelContext& ctx, const VmcsControls& c, bool live) {
  const Lang l = ctx.lang;
  for (int f = 0; f < static_cast<int>(VmcsField::kCount); ++f) {
    const auto field = static_cast<VmcsField>(f);
    char title[128];
    std::snprintf(title, sizeof title, "%s  %08x###field%d",
                  std::string(sim::virt::to_string(field)).c_str(),
                  sim::virt::field_word(c, field), f);
    if (!ImGui::CollapsingHeader(title, f <= 2 ? ImGuiTreeNodeFlags_DefaultOpen : 0)) continue;
    for (const VmcsControl& k : sim::virt::vmcs_controls()) {
      if (k.field != field) continue;
      bool v = sim::virt::control_value(c, k);
      char label[96];
      std::snprintf(label, sizeof label, "%2u %s", k.bit, std::string(k.name).c_str());
      ImGui::BeginDisabled(!k.member || !live);
      if (ImGui::Checkbox(label, &v)) {
        std::string change(v ? "+" : "-");  // appended apart: GCC 12's -Wrestrict misfires
        change += k.option;
        ctx.actions.set_vmcs(change);
      }
      ImGui::EndDisabled();
      const std::string tip = std::string(l == Lang::kEs ? k.es : k.en) +
                              (k.member ? "" : es_en(l, " — fijo en el modelo", " — fixed in the model"));
      tooltip(tip.c_str());
    }
  }
}

// [SECTION] Bitmaps and masks

void exception_bitmap(PanelContext& ctx, const VmcsControls& c, bool live) {
  ImGui::TextDisabled("%s %08x", es_en(ctx.lang, "mapa de bits de excepciones", "exception bitmap"),
                      c.exception_bitmap);
  for (unsigned v = 0; v < 22; ++v) {
    if (v == 9 || v == 15) continue;  // reserved vectors
    bool b = c.exception_bitmap & (1u << v);
    const std::string label = vector_mnemonic(static_cast<uint8_t>(v)) + "##exc";
    if (v % 6 != 0) ImGui::SameLine();
    ImGui::BeginDisabled(!live);
    if (ImGui::Checkbox(label.c_str(), &b)) {
      std::string change(b ? "+exception:" : "-exception:");
      change += std::to_string(v);
      ctx.actions.set_vmcs(change);
    }
    ImGui::EndDisabled();
    tooltip(std::string(vector_long_name(static_cast<uint8_t>(v))).c_str());
  }
}

void io_bitmaps(PanelContext& ctx, const VmcsControls& c, bool live) {
  const Lang l = ctx.lang;
  size_t exiting = c.io_bitmap.count();
  ImGui::TextDisabled("%s: %zu / 65536 %s", es_en(l, "mapas de bits de E/S A y B", "I/O bitmaps A and B"),
                      exiting, es_en(l, "puertos salen", "ports exit"));
  std::string pass;
  int shown = 0;
  for (size_t p = 0; p < c.io_bitmap.size() && shown < 16; ++p) {
    if (!c.io_bitmap[p]) {
      if (!pass.empty()) pass += ' ';
      pass += hex(p);
      ++shown;
    }
  }
  if (!pass.empty()) {
    ImGui::TextDisabled("%s %s", es_en(l, "pasan sin salir:", "pass through:"), pass.c_str());
  }
  // The ports of this machine's devices (platform/devices.hpp).
  static constexpr uint16_t kPorts[] = {0xE9, 0xF4, 0x3F8};
  for (uint16_t p : kPorts) {
    bool b = c.io_bitmap[p];
    std::string label = hex(p);
    label += "##io";
    ImGui::SameLine();
    ImGui::BeginDisabled(!live);
    if (ImGui::Checkbox(label.c_str(), &b)) {
      std::string change(b ? "+io:" : "-io:");
      change += hex(p);
      ctx.actions.set_vmcs(change);
    }
    ImGui::EndDisabled();
  }
}

void masks(PanelContext& ctx, const VmcsControls& c) {
  const Lang l = ctx.lang;
  const Model& m = ctx.model;
  if (!begin_fields("masks")) return;
  row(ctx.fonts, "CR0 guest/host mask", hex(c.cr0_guest_host_mask),
      es_en(l, "bits del VMM: cambiarlos sale", "bits the VMM owns: changing one exits"));
  row(ctx.fonts, "CR4 guest/host mask", hex(c.cr4_guest_host_mask), "");
  const char* shadow = es_en(l, "lo que el invitado lee de los bits del VMM: su propio valor",
                             "what the guest reads for the VMM's bits: its own value");
  row(ctx.fonts, "CR0 read shadow", m.has_registers() ? hex(m.registers().cr0) : "\u2014", shadow);
  row(ctx.fonts, "CR4 read shadow", m.has_registers() ? hex(m.registers().cr4) : "\u2014", shadow);
  row(ctx.fonts, "MSR bitmaps",
      c.use_msr_bitmaps ? es_en(l, "todos los MSR salen", "every MSR exits")
                        : es_en(l, "sin mapas: todo RDMSR/WRMSR sale", "off: every RDMSR/WRMSR exits"));
  ImGui::EndTable();
}

}  // namespace

void draw_vmcs(PanelContext& ctx, bool* open) {
  if (!*open) return;
  const Lang l = ctx.lang;
  if (!ImGui::Begin("VMCS", open)) {
    ImGui::End();
    return;
  }
  const auto& vmcs = ctx.model.vmcs();
  if (!vmcs) {
    ImGui::PushTextWrapPos(0.0f);
    ImGui::TextDisabled("%s", es_en(l,
        "La VMCS es del modelo VT-x del simulador: abra el invitado con --backend sim "
        "--technique vt (o pv) para verla y cambiar sus controles.",
        "The VMCS belongs to the simulator's VT-x model: open the guest with --backend sim "
        "--technique vt (or pv) to see it and change its controls."));
    ImGui::PopTextWrapPos();
    ImGui::End();
    return;
  }
  const bool live = ctx.actions.capabilities().live;  // during a run too: from the next slice
  ImGui::TextDisabled("%s", es_en(l, "Intel SDM Vol. 3C cap. 25 · marque un control: la siguiente "
                                     "instrucción lo obedece",
                                  "Intel SDM Vol. 3C ch. 25 · tick a control: the next "
                                  "instruction follows it"));
  const std::string spec = sim::virt::vmcs_spec_of(*vmcs);
  ImGui::TextDisabled("--vmcs %s", spec.empty() ? es_en(l, "(por defecto)", "(defaults)") : spec.c_str());
  if (ImGui::CollapsingHeader(es_en(l, "Área de estado del invitado###guest", "Guest-state area###guest"))) {
    guest_state(ctx);
  }
  if (ImGui::CollapsingHeader(es_en(l, "Área de estado del anfitrión###host", "Host-state area###host"))) {
    host_state(ctx);
  }
  controls(ctx, *vmcs, live);
  if (ImGui::CollapsingHeader(es_en(l, "Mapas de bits, máscaras y sombras###bitmaps",
                                    "Bitmaps, masks and read shadows###bitmaps"),
                              ImGuiTreeNodeFlags_DefaultOpen)) {
    exception_bitmap(ctx, *vmcs, live);
    io_bitmaps(ctx, *vmcs, live);
    masks(ctx, *vmcs);
  }
  ImGui::End();
}

}  // namespace trapscope::viz
