// sim/virt/vmcs.hpp — the VMCS of the simulator's VT-x model (sim/virt/monitor.hpp): its
// VM-execution controls as the model honours them, and the table of every control by its SDM
// name, which the `--vmcs` option, the visualizer's VMCS panel and the docs share
// (docs/vmcs.md).
//
// Sources: Intel SDM Vol. 3C chapter 25 "Virtual Machine Control Structures": 25.6.1 pin-based
// VM-execution controls, 25.6.2 processor-based VM-execution controls (primary and secondary),
// 25.6.3 exception bitmap, 25.6.4 I/O bitmaps, 25.6.6 guest/host masks and read shadows for CR0
// and CR4, 25.6.9 MSR bitmaps, 25.7.1 VM-exit controls, 25.8.1 VM-entry controls; which
// instruction exits under which control: 26.1.2 (unconditionally), 26.1.3 (by control).
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace trapscope::sim::virt {

// What the real hardware holds while the VMM runs: under trap-and-emulate the VMM's own tables
// while a ring-compressed guest runs (what sgdt, sidt, sldt, str and smsw reveal), and under the
// VT-x model the host-state area's values (SDM Vol. 3C 25.5) — the VMM's tables, at addresses a
// 32-bit VMM would use near the top of the address space, and a Linux host's CR0.
struct HostState {
  uint64_t gdt_base = 0xFFC00000;
  uint16_t gdt_limit = 0x00FF;
  uint64_t idt_base = 0xFFC01000;
  uint16_t idt_limit = 0x07FF;
  uint16_t ldtr = 0x0000;
  uint16_t tr = 0x0040;
  uint64_t cr0 = 0x80050033;  // PE MP ET NE WP AM PG
};
inline constexpr HostState kHostState{};

// The controls the model honours; defaults are what a VMM such as KVM sets for a guest without
// EPT-based MMIO: everything that touches the platform exits. Each bool is the control of the
// same name (table below).
struct VmcsControls {
  // Primary processor-based VM-execution controls (25.6.2)
  bool interrupt_window_exiting = false;  // exit once RFLAGS.IF = 1 (then the VMM clears it)
  bool hlt_exiting = true;
  bool invlpg_exiting = true;
  bool rdtsc_exiting = false;
  bool cr3_load_exiting = true;
  bool cr3_store_exiting = true;
  bool mov_dr_exiting = true;
  bool unconditional_io_exiting = false;  // used only when use_io_bitmaps is 0
  bool use_io_bitmaps = true;
  bool use_msr_bitmaps = true;  // false: every rdmsr/wrmsr exits
  // Secondary processor-based VM-execution controls (25.6.2)
  bool descriptor_table_exiting = false;  // LGDT LIDT LLDT LTR SGDT SIDT SLDT STR exit (46, 47)
  bool wbinvd_exiting = true;
  // 25.6.6: bits the VMM owns; a MOV to CR0/CR4 that changes one exits (CLTS, LMSW likewise).
  uint64_t cr0_guest_host_mask = ~0ull;
  uint64_t cr4_guest_host_mask = ~0ull;
  uint32_t exception_bitmap = 0;  // 25.6.3: bit n: exception vector n exits
  // 25.6.4: I/O bitmaps A (ports 0–0x7FFF) and B (0x8000–0xFFFF) as one: bit = port exits.
  std::bitset<65536> io_bitmap = std::bitset<65536>().set();
  // MSR bitmaps (25.6.9): MSRs 0..0x1FFF and 0xC0000000..0xC0001FFF; others exit.
  std::bitset<8192> msr_read_low = std::bitset<8192>().set(), msr_read_high = std::bitset<8192>().set();
  std::bitset<8192> msr_write_low = std::bitset<8192>().set(), msr_write_high = std::bitset<8192>().set();
};

// The VMCS's control fields.
enum class VmcsField : uint8_t { kPinBased, kPrimary, kSecondary, kExit, kEntry, kCount };
std::string_view to_string(VmcsField field);  // "pin-based VM-execution controls", …

// One control bit by its SDM name. `member` is the VmcsControls bool the model honours; null
// for a control the model does not model, which keeps `fixed` (what the model behaves as).
struct VmcsControl {
  VmcsField field;
  unsigned bit;
  std::string_view name;     // the SDM's name: "descriptor-table exiting"
  std::string_view option;   // the same for --vmcs: "descriptor-table-exiting"
  bool VmcsControls::*member;
  bool fixed;                // unmodelled: its value
  std::string_view es;       // what it does, in Spanish …
  std::string_view en;       // … and in English
};
std::span<const VmcsControl> vmcs_controls();
const VmcsControl* find_vmcs_control(std::string_view option_or_name);

// The value of a control (a modelled one from `c`, else its fixed value), and the whole field as
// the 32-bit word the VMCS holds (bits of controls the table does not list are 0).
bool control_value(const VmcsControls& c, const VmcsControl& control);
uint32_t field_word(const VmcsControls& c, VmcsField field);

// Applies a --vmcs list, comma-separated items (docs/vmcs.md):
//   +NAME / -NAME           set / clear a modelled control (hlt-exiting, descriptor-table-exiting…)
//   exception-bitmap=MASK   the exception bitmap (decimal or 0x-hex)
//   +exception:N / -exception:N   one vector's bit (N a number or #UD, #PF, #GP, …)
//   +io:PORT / -io:PORT     one port's bit in the I/O bitmaps
//   cr0-guest-host-mask=M / cr4-guest-host-mask=M
// False with *error naming the item and what is wrong ("'-hlt': not a VMCS control (…)",
// "'nmi-exiting': the model does not model it (…)"); `c` is left unchanged then. An empty
// list changes nothing.
bool apply_vmcs_spec(VmcsControls& c, std::string_view spec, std::string* error);

// The differences from the defaults as a --vmcs list ("" when there are none).
std::string vmcs_spec_of(const VmcsControls& c);

}  // namespace trapscope::sim::virt
