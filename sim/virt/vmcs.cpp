#include "sim/virt/vmcs.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <iterator>
#include <vector>

namespace trapscope::sim::virt {
namespace {

using F = VmcsField;
using C = VmcsControls;

// Every control of SDM Vol. 3C 25.6.1, 25.6.2, 25.7.1 and 25.8.1 that a VMM for these guests
// would think about; bit numbers are the SDM's.
constexpr VmcsControl kControls[] = {
    {F::kPinBased, 0, "external-interrupt exiting", "external-interrupt-exiting", nullptr, true,
     "las interrupciones externas salen (sin modelar: el simulador no tiene fuentes de interrupción)",
     "external interrupts exit (not modelled: the simulator has no interrupt sources)"},
    {F::kPinBased, 3, "NMI exiting", "nmi-exiting", nullptr, true,
     "las NMI salen (sin modelar)", "NMIs exit (not modelled)"},
    {F::kPinBased, 5, "virtual NMIs", "virtual-nmis", nullptr, true,
     "bloqueo de NMI virtual (sin modelar)", "virtual-NMI blocking (not modelled)"},
    {F::kPinBased, 6, "activate VMX-preemption timer", "activate-vmx-preemption-timer", nullptr, false,
     "temporizador de expulsión (sin modelar)", "preemption timer (not modelled)"},
    {F::kPrimary, 2, "interrupt-window exiting", "interrupt-window-exiting",
     &C::interrupt_window_exiting, false,
     "sale en cuanto RFLAGS.IF = 1 (el VMM lo borra después)",
     "exits as soon as RFLAGS.IF = 1 (the VMM clears it then)"},
    {F::kPrimary, 3, "use TSC offsetting", "use-tsc-offsetting", nullptr, false,
     "desplazamiento del TSC (sin modelar)", "TSC offset (not modelled)"},
    {F::kPrimary, 7, "HLT exiting", "hlt-exiting", &C::hlt_exiting, false,
     "HLT sale (motivo 12)", "HLT exits (reason 12)"},
    {F::kPrimary, 9, "INVLPG exiting", "invlpg-exiting", &C::invlpg_exiting, false,
     "INVLPG sale (motivo 14; cualificación = dirección lineal)",
     "INVLPG exits (reason 14; qualification = the linear address)"},
    {F::kPrimary, 10, "MWAIT exiting", "mwait-exiting", nullptr, true,
     "MWAIT sale (fuera del subconjunto del simulador)", "MWAIT exits (outside the simulator's subset)"},
    {F::kPrimary, 11, "RDPMC exiting", "rdpmc-exiting", nullptr, false,
     "RDPMC sale (fuera del subconjunto)", "RDPMC exits (outside the subset)"},
    {F::kPrimary, 12, "RDTSC exiting", "rdtsc-exiting", &C::rdtsc_exiting, false,
     "RDTSC sale (motivo 16)", "RDTSC exits (reason 16)"},
    {F::kPrimary, 15, "CR3-load exiting", "cr3-load-exiting", &C::cr3_load_exiting, false,
     "MOV a CR3 sale (motivo 28)", "MOV to CR3 exits (reason 28)"},
    {F::kPrimary, 16, "CR3-store exiting", "cr3-store-exiting", &C::cr3_store_exiting, false,
     "MOV desde CR3 sale (motivo 28)", "MOV from CR3 exits (reason 28)"},
    {F::kPrimary, 19, "CR8-load exiting", "cr8-load-exiting", nullptr, false,
     "MOV a CR8 sale (sin modelar)", "MOV to CR8 exits (not modelled)"},
    {F::kPrimary, 20, "CR8-store exiting", "cr8-store-exiting", nullptr, false,
     "MOV desde CR8 sale (sin modelar)", "MOV from CR8 exits (not modelled)"},
    {F::kPrimary, 21, "use TPR shadow", "use-tpr-shadow", nullptr, false,
     "sombra del TPR (sin modelar)", "TPR shadow (not modelled)"},
    {F::kPrimary, 22, "NMI-window exiting", "nmi-window-exiting", nullptr, false,
     "ventana de NMI (sin modelar)", "NMI window (not modelled)"},
    {F::kPrimary, 23, "MOV-DR exiting", "mov-dr-exiting", &C::mov_dr_exiting, false,
     "MOV a/desde DRn sale (motivo 29)", "MOV to/from DRn exits (reason 29)"},
    {F::kPrimary, 24, "unconditional I/O exiting", "unconditional-io-exiting",
     &C::unconditional_io_exiting, false,
     "toda E/S sale, si \"use I/O bitmaps\" es 0 (motivo 30)",
     "every I/O instruction exits, when \"use I/O bitmaps\" is 0 (reason 30)"},
    {F::kPrimary, 25, "use I/O bitmaps", "use-io-bitmaps", &C::use_io_bitmaps, false,
     "los mapas de bits de E/S deciden qué puertos salen (motivo 30)",
     "the I/O bitmaps decide which ports exit (reason 30)"},
    {F::kPrimary, 27, "monitor trap flag", "monitor-trap-flag", nullptr, false,
     "sale tras cada instrucción (sin modelar)", "exits after each instruction (not modelled)"},
    {F::kPrimary, 28, "use MSR bitmaps", "use-msr-bitmaps", &C::use_msr_bitmaps, false,
     "los mapas de bits de MSR deciden qué RDMSR/WRMSR salen (motivos 31, 32)",
     "the MSR bitmaps decide which RDMSR/WRMSR exit (reasons 31, 32)"},
    {F::kPrimary, 29, "MONITOR exiting", "monitor-exiting", nullptr, true,
     "MONITOR sale (fuera del subconjunto)", "MONITOR exits (outside the subset)"},
    {F::kPrimary, 30, "PAUSE exiting", "pause-exiting", nullptr, false,
     "PAUSE sale (sin modelar)", "PAUSE exits (not modelled)"},
    {F::kPrimary, 31, "activate secondary controls", "activate-secondary-controls", nullptr, true,
     "activa los controles secundarios", "the secondary controls are in force"},
    {F::kSecondary, 0, "virtualize APIC accesses", "virtualize-apic-accesses", nullptr, false,
     "sin APIC en el simulador", "no APIC in the simulator"},
    {F::kSecondary, 1, "enable EPT", "enable-ept", nullptr, false,
     "lo elige --paging ept (el modelo de memoria, sim/mmu.hpp)",
     "chosen by --paging ept (the memory model, sim/mmu.hpp)"},
    {F::kSecondary, 2, "descriptor-table exiting", "descriptor-table-exiting",
     &C::descriptor_table_exiting, false,
     "LGDT, LIDT, SGDT, SIDT salen (motivo 46) y LLDT, LTR, SLDT, STR (motivo 47)",
     "LGDT, LIDT, SGDT, SIDT exit (reason 46) and LLDT, LTR, SLDT, STR (reason 47)"},
    {F::kSecondary, 3, "enable RDTSCP", "enable-rdtscp", nullptr, false,
     "RDTSCP (fuera del subconjunto)", "RDTSCP (outside the subset)"},
    {F::kSecondary, 5, "enable VPID", "enable-vpid", nullptr, false,
     "etiquetas de TLB por VM (sin modelar)", "per-VM TLB tags (not modelled)"},
    {F::kSecondary, 6, "WBINVD exiting", "wbinvd-exiting", &C::wbinvd_exiting, false,
     "WBINVD sale (motivo 54)", "WBINVD exits (reason 54)"},
    {F::kSecondary, 7, "unrestricted guest", "unrestricted-guest", nullptr, true,
     "el código en modo real corre en modo no raíz", "real-mode code runs in non-root operation"},
    {F::kExit, 2, "save debug controls", "save-debug-controls", nullptr, true,
     "guarda DR7 y IA32_DEBUGCTL", "saves DR7 and IA32_DEBUGCTL"},
    {F::kExit, 9, "host address-space size", "host-address-space-size", nullptr, true,
     "el VMM es de 64 bits", "the VMM is 64-bit"},
    {F::kExit, 15, "acknowledge interrupt on exit", "acknowledge-interrupt-on-exit", nullptr, true,
     "el procesador reconoce la interrupción al salir", "the processor acknowledges the interrupt on exit"},
    {F::kExit, 18, "save IA32_PAT", "save-ia32-pat", nullptr, true, "guarda IA32_PAT", "saves IA32_PAT"},
    {F::kExit, 19, "load IA32_PAT", "load-ia32-pat", nullptr, true, "carga IA32_PAT del anfitrión",
     "loads the host's IA32_PAT"},
    {F::kExit, 20, "save IA32_EFER", "save-ia32-efer", nullptr, true, "guarda IA32_EFER del invitado",
     "saves the guest's IA32_EFER"},
    {F::kExit, 21, "load IA32_EFER", "load-ia32-efer", nullptr, true, "carga IA32_EFER del anfitrión",
     "loads the host's IA32_EFER"},
    {F::kEntry, 2, "load debug controls", "load-debug-controls", nullptr, true,
     "carga DR7 y IA32_DEBUGCTL del invitado", "loads the guest's DR7 and IA32_DEBUGCTL"},
    {F::kEntry, 9, "IA-32e mode guest", "ia-32e-mode-guest", nullptr, false,
     "sigue a EFER.LMA del invitado (panel de estado del invitado)",
     "follows the guest's EFER.LMA (guest-state area)"},
    {F::kEntry, 14, "load IA32_PAT", "entry-load-ia32-pat", nullptr, true,
     "carga IA32_PAT del invitado", "loads the guest's IA32_PAT"},
    {F::kEntry, 15, "load IA32_EFER", "entry-load-ia32-efer", nullptr, true,
     "carga IA32_EFER del invitado", "loads the guest's IA32_EFER"},
};

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::optional<uint64_t> number(std::string_view t) {
  int base = 10;
  if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) {
    t.remove_prefix(2);
    base = 16;
  }
  uint64_t v = 0;
  const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v, base);
  if (t.empty() || ec != std::errc() || p != t.data() + t.size()) return std::nullopt;
  return v;
}

// An exception vector: a number 0..31 or its mnemonic (SDM Vol. 3A table 6-1).
std::optional<unsigned> vector_of(std::string_view t) {
  static constexpr std::string_view kNames[] = {"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD",
                                                "#NM", "#DF", "",    "#TS", "#NP", "#SS", "#GP",
                                                "#PF", "",    "#MF", "#AC", "#MC", "#XM", "#VE"};
  for (unsigned v = 0; v < std::size(kNames); ++v) {
    if (!kNames[v].empty() && (iequal(t, kNames[v]) || iequal(t, kNames[v].substr(1)))) return v;
  }
  const auto n = number(t);
  if (n && *n < 32) return static_cast<unsigned>(*n);
  return std::nullopt;
}

std::string modelled_list() {
  std::string s;
  for (const VmcsControl& c : kControls) {
    if (!c.member) continue;
    if (!s.empty()) s += ", ";
    s += c.option;
  }
  return s + ", exception-bitmap=MASK, +exception:N, +io:PORT, cr0-guest-host-mask=M, "
             "cr4-guest-host-mask=M";
}

// One item of a --vmcs list; "" or what is wrong with it.
std::string apply_item(VmcsControls& c, std::string_view item) {
  if (item.empty()) return "an empty item";
  if (const size_t eq = item.find('='); eq != std::string_view::npos) {
    const std::string_view key = item.substr(0, eq);
    const auto v = number(item.substr(eq + 1));
    if (!v) return "the value must be a number (decimal or 0x-hexadecimal)";
    if (iequal(key, "exception-bitmap")) {
      if (*v > UINT32_MAX) return "the exception bitmap has 32 bits";
      c.exception_bitmap = static_cast<uint32_t>(*v);
    } else if (iequal(key, "cr0-guest-host-mask")) {
      c.cr0_guest_host_mask = *v;
    } else if (iequal(key, "cr4-guest-host-mask")) {
      c.cr4_guest_host_mask = *v;
    } else {
      return "not a VMCS field that takes a value (exception-bitmap, cr0-guest-host-mask, "
             "cr4-guest-host-mask)";
    }
    return "";
  }
  if (item[0] != '+' && item[0] != '-') return "expected +NAME, -NAME or FIELD=VALUE";
  const bool set = item[0] == '+';
  const std::string_view name = item.substr(1);
  if (name.starts_with("exception:")) {
    const auto v = vector_of(name.substr(10));
    if (!v) return "an exception vector is 0..31 or a mnemonic such as #UD or #PF";
    c.exception_bitmap = set ? c.exception_bitmap | (1u << *v) : c.exception_bitmap & ~(1u << *v);
    return "";
  }
  if (name.starts_with("io:")) {
    const auto v = number(name.substr(3));
    if (!v || *v > 0xFFFF) return "a port is 0..0xffff";
    c.io_bitmap.set(static_cast<size_t>(*v), set);
    return "";
  }
  const VmcsControl* k = find_vmcs_control(name);
  if (!k) return "not a VMCS control (" + modelled_list() + ")";
  if (!k->member) {
    return "the model does not model " + std::string(k->name) + " (it behaves as " +
           (k->fixed ? "set" : "clear") + "); it models " + modelled_list();
  }
  c.*(k->member) = set;
  return "";
}

}  // namespace

std::string_view to_string(VmcsField f) {
  switch (f) {
    case VmcsField::kPinBased: return "pin-based VM-execution controls";
    case VmcsField::kPrimary: return "primary processor-based VM-execution controls";
    case VmcsField::kSecondary: return "secondary processor-based VM-execution controls";
    case VmcsField::kExit: return "VM-exit controls";
    case VmcsField::kEntry: return "VM-entry controls";
    case VmcsField::kCount: break;
  }
  return "?";
}

std::span<const VmcsControl> vmcs_controls() { return kControls; }

const VmcsControl* find_vmcs_control(std::string_view text) {
  for (const VmcsControl& c : kControls) {
    if (iequal(text, c.option) || iequal(text, c.name)) return &c;
  }
  return nullptr;
}

bool control_value(const VmcsControls& c, const VmcsControl& k) {
  return k.member ? c.*(k.member) : k.fixed;
}

uint32_t field_word(const VmcsControls& c, VmcsField field) {
  uint32_t w = 0;
  for (const VmcsControl& k : kControls) {
    if (k.field == field && control_value(c, k)) w |= 1u << k.bit;
  }
  return w;
}

bool apply_vmcs_spec(VmcsControls& c, std::string_view spec, std::string* error) {
  if (spec.find_first_not_of(' ') == std::string_view::npos) return true;  // no items
  VmcsControls next = c;
  size_t start = 0;
  while (start <= spec.size()) {
    size_t end = spec.find(',', start);
    if (end == std::string_view::npos) end = spec.size();
    std::string_view item = spec.substr(start, end - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (const std::string why = apply_item(next, item); !why.empty()) {
      std::string e(1, '\'');  // appended apart: GCC 12's -Wrestrict misfires on "…" + string
      e += item;
      e += "': ";
      e += why;
      *error = std::move(e);
      return false;
    }
    start = end + 1;
  }
  c = std::move(next);
  return true;
}

std::string vmcs_spec_of(const VmcsControls& c) {
  const VmcsControls d;
  std::vector<std::string> items;
  for (const VmcsControl& k : kControls) {
    if (k.member && c.*(k.member) != d.*(k.member)) {
      std::string item(c.*(k.member) ? "+" : "-");
      item += k.option;
      items.push_back(std::move(item));
    }
  }
  char buf[64];
  if (c.exception_bitmap != d.exception_bitmap) {
    std::snprintf(buf, sizeof buf, "exception-bitmap=%#x", c.exception_bitmap);
    items.emplace_back(buf);
  }
  if (c.cr0_guest_host_mask != d.cr0_guest_host_mask) {
    std::snprintf(buf, sizeof buf, "cr0-guest-host-mask=%#llx",
                  static_cast<unsigned long long>(c.cr0_guest_host_mask));
    items.emplace_back(buf);
  }
  if (c.cr4_guest_host_mask != d.cr4_guest_host_mask) {
    std::snprintf(buf, sizeof buf, "cr4-guest-host-mask=%#llx",
                  static_cast<unsigned long long>(c.cr4_guest_host_mask));
    items.emplace_back(buf);
  }
  for (size_t p = 0; p < c.io_bitmap.size(); ++p) {
    if (c.io_bitmap[p] != d.io_bitmap[p]) {
      std::snprintf(buf, sizeof buf, "%cio:%#zx", c.io_bitmap[p] ? '+' : '-', p);
      items.emplace_back(buf);
    }
  }
  std::string s;
  for (const std::string& i : items) s += (s.empty() ? "" : ",") + i;
  return s;
}

}  // namespace trapscope::sim::virt
