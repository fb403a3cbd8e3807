// compare/cost_model.hpp — what a comparison (compare/comparison.hpp, `trapscope compare`)
// counts per run and the cycle MODEL it prices the counts with, with the source of every figure
// (docs/references.md). compare/comparison.cpp applies it; docs/compare.md tabulates it.
//
// [SECTION] Causes
//   Every row breaks its entries into the VMM down by cause (JSON "exits_by_cause"): VM exits
//   for vt, pv and KVM (Intel basic exit reason, SDM Vol. 3C Appendix C, or KVM's exit reason);
//   traps for trap-emulate and callouts for bt (by the instruction, disassembled); the exits of
//   the simulator's VMM for emulation; plus, on every simulator row, the memory VMM's exits under
//   --paging shadow|ept (hidden/true #PF and page-table write traps → page_fault, EPT
//   violations; its CR3 and INVLPG exits only on the emulation row, where no technique counted
//   the instruction already). An I/O exit on the hypercall doorbell (port 0x510) is "hypercall".
//
// [SECTION] Cost model (cycles; a MODEL, not a measurement)
//   modelled cycles = Σ parts:
//     instructions   guest instructions × direct_instruction (vt, pv, trap-emulate, bt, kvm) or
//                    × interpreted_instruction (emulation); KVM, which cannot count them, is
//                    charged the instructions of the simulator's run of the same guest (it is
//                    deterministic, so the work is the same)
//     guest_exceptions  exceptions delivered to the guest's own IDT (#PF, #DE, …) × exception
//                    (every row; KVM: the simulator's count for the same guest)
//     vm_transitions vt, pv: Σ of the VT-x model's exit + entry costs (sim/virt/monitor.hpp);
//                    kvm: every exit KVM counted (its vCPU statistic "exits", KVM_GET_STATS_FD,
//                    the ones it handles in the kernel included) × (vm_exit + vm_entry); on a
//                    kernel without statistics its exits to user space (a lower bound)
//     traps          trap-emulate: traps × (exception + interpreted_instruction): the exception round
//                    trip to the VMM and the emulation of the instruction
//     callouts       bt: callouts × callout (every callout, adaptive ones included)
//     translations   bt: translated guest instructions × translation
//     paging_exits   the memory VMM's exits (Causes above) × (vm_exit + vm_entry); on the bt row
//                    only EPT violations (its other paging work is no VM exit: see shadow_faults)
//     vmm_exceptions bt: exceptions delivered to the guest × bt_exception: under BT every guest
//                    exception goes to the VMM first, which reflects it to the guest's handler
//                    (on top of guest_exceptions' native delivery); less callout for each one
//                    raised inside a callout (an instruction that faulted often and was
//                    retranslated into one: its callout, priced in callouts, stands for the
//                    hardware fault the VMM no longer takes, so the VMM's total stays bt_exception)
//     kernel_entries bt: entries from CPL 3 into the guest kernel that are no exception
//                    (syscall, sysenter, int n, far call through a gate; the simulator's ring
//                    transition events) × bt_kernel_entry: CPL 3 runs directly, so the VMM
//                    catches the entry and starts running the kernel from the translation cache
//     shadow_faults  bt, --paging shadow: (hidden page faults + page-table writes that trapped)
//                    × bt_hidden_fault, true page faults × bt_true_fault_walk: faults into the
//                    software VMM, not VM exits
//     shadow_updates bt, --paging shadow: page-table writes made by a callout (the store that
//                    adaptive retranslation made a callout) × bt_pte_update: the VMM emulates the
//                    store and updates its shadow without a trap (the callout is in callouts)
//   The bt prices come from the paper's software-VMM nanobenchmarks less the native figure and
//   less the callout each benchmark's loop also makes (its sysretq, iretq or the store itself,
//   priced in callouts), so that each nanobenchmark's own path costs what the paper measured;
//   the paper gives no split of those figures by component, so applying a price to a path it
//   did not measure (int n, vectors other than #DE, hidden faults) is our estimate, said in the
//   parameter's source. bt_hidden_fault has no published figure at all.
//   Not in the model: BT's in-cache sequences (charged as direct instructions), real-mode code
//   under trap-and-emulate (interpreted by the simulator, charged as direct), caches, page-walk
//   references, device emulation time; under BT, the shadow work inside an invlpg or CR3
//   callout beyond the callout's own price (the paper measured neither alone).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace trapscope::compare {

enum Cause : uint8_t {
  kIo, kHlt, kCrAccess, kInvlpg, kInterruptFlag, kDescriptorTable, kMsr, kCpuid, kPageFault,
  kException, kEptViolation, kHypercall, kMmio, kOther, kCauseCount
};
// JSON keys ("io", "hlt", "cr_access", …) in Cause order.
inline constexpr std::array<std::string_view, kCauseCount> kCauseNames = {
    "io",        "hlt",       "cr_access",     "invlpg",    "interrupt_flag",
    "descriptor_table",       "msr",           "cpuid",     "page_fault",
    "exception", "ept_violation",              "hypercall", "mmio",
    "other"};

struct Parameter {
  std::string_view name;
  uint32_t cycles;
  std::string_view source;
};
inline constexpr Parameter kDirectInstruction{
    "direct_instruction", 1,
    "an assumption of this model (one instruction per cycle), not a published figure"};
inline constexpr Parameter kInterpretedInstruction{
    "interpreted_instruction", 38,
    "Bochs documents 85-95 MIPS on a 3.4 GHz Core i7: 3.4e9 / 90e6 = 38 cycles per instruction"};
inline constexpr Parameter kVmExit{"vm_exit", 1186,
                                   "Adams & Agesen, ASPLOS 2006: page-fault VM exit on Core 2"};
inline constexpr Parameter kVmEntry{"vm_entry", 937,
                                    "Adams & Agesen, ASPLOS 2006: VM entry on Core 2"};
inline constexpr Parameter kExceptionDelivery{
    "exception", 889,
    "Adams & Agesen, ASPLOS 2006: native divide-by-zero nanobenchmark (an exception delivered "
    "and returned from), Pentium 4"};
inline constexpr Parameter kCallout{
    "callout", 216,
    "Adams & Agesen, ASPLOS 2006: the software VMM's `in` nanobenchmark (the VMM emulates the "
    "device access from the translation cache), Pentium 4"};
inline constexpr Parameter kTranslation{
    "translation", 2300,
    "Adams & Agesen, ASPLOS 2006: translation costs about 2300 cycles per instruction"};
// Binary translation's transitions into the VMM (Adams & Agesen, ASPLOS 2006, section 6.2,
// software VMM column of the nanobenchmarks, cycles on a 3.8 GHz Pentium 4).
inline constexpr Parameter kBtKernelEntry{
    "bt_kernel_entry", 2308 - 242 - 216,
    "Adams & Agesen, ASPLOS 2006, syscall nanobenchmark: software VMM 2308 - native 242 = 2066 "
    "cycles the VMM adds to a system call, less its sysretq's callout (216, priced as a callout): "
    "catching the entry from CPL 3 and running the kernel from the translation cache. For int n "
    "and far calls through a gate our estimate (the same interception; not measured)"};
inline constexpr Parameter kBtException{
    "bt_exception", 3223 - 889 - 216,
    "Adams & Agesen, ASPLOS 2006, divzero nanobenchmark: software VMM 3223 - native 889 = 2334 "
    "cycles the VMM adds to an exception the guest handles, less its iretq's callout (216, "
    "priced as a callout): the VMM catches the fault and reflects it to the guest's handler. "
    "For vectors other than #DE our estimate (the same path; not measured)"};
inline constexpr Parameter kBtTrueFaultWalk{
    "bt_true_fault_walk", 3927 - 3223,
    "Adams & Agesen, ASPLOS 2006, software VMM: pgfault 3927 - divzero 3223: what a guest page "
    "fault costs the VMM beyond another exception (with shadow page tables it walks the guest's "
    "tables to tell a true fault from a hidden one)"};
inline constexpr Parameter kBtHiddenFault{
    "bt_hidden_fault", (3223 - 889 - 216) + (3927 - 3223),
    "our estimate, no published figure: bt_exception + bt_true_fault_walk (the VMM catches the "
    "fault and walks the guest's tables as for a true page fault, then fills the shadow instead "
    "of reflecting the fault); also charged for a page-table write that trapped (before "
    "adaptive retranslation made the store a callout)"};
inline constexpr Parameter kBtPteUpdate{
    "bt_pte_update", 391 - 1 - 216,
    "Adams & Agesen, ASPLOS 2006, ptemod nanobenchmark: software VMM 391 - native 1 = 390 cycles "
    "for a PTE store that adaptive binary translation made a callout, less the callout (216): "
    "the VMM's emulation of the store and the update of its shadow page table"};
inline constexpr std::array<Parameter, 12> kParameters = {
    kDirectInstruction, kInterpretedInstruction, kVmExit, kVmEntry, kExceptionDelivery, kCallout,
    kTranslation, kBtKernelEntry, kBtException, kBtTrueFaultWalk, kBtHiddenFault, kBtPteUpdate};

// The model's terms (JSON "modelled_cycles_by_part"), in this order.
enum Part : uint8_t {
  kPartInstructions, kPartGuestExceptions, kPartVmTransitions, kPartTraps, kPartCallouts,
  kPartTranslations, kPartPagingExits, kPartVmmExceptions, kPartKernelEntries,
  kPartShadowFaults, kPartShadowUpdates, kPartCount
};
inline constexpr std::array<std::string_view, kPartCount> kPartNames = {
    "instructions", "guest_exceptions", "vm_transitions", "traps", "callouts", "translations",
    "paging_exits", "vmm_exceptions", "kernel_entries", "shadow_faults", "shadow_updates"};

// Adams & Agesen, ASPLOS 2006, nanobenchmarks, cycles on a 3.8 GHz Pentium 4 (native / software
// VMM / hardware VMM), as docs/references.md gives them.
struct PaperNano {
  std::string_view guest;      // our guest: nano-<name>
  std::string_view paper_name; // the paper's benchmark
  uint32_t native, software_vmm, hardware_vmm;
};
inline constexpr std::array<PaperNano, 7> kPaperNanos = {{
    {"nano-syscall", "syscall", 242, 2308, 246},
    {"nano-in", "in", 3209, 216, 15826},
    {"nano-cli", "cr8wr", 150, 35, 177},
    {"nano-callret", "call/ret", 11, 51, 11},
    {"nano-pgfault", "pgfault", 1093, 3927, 11242},
    {"nano-divzero", "divzero", 889, 3223, 1014},
    {"nano-ptemod", "ptemod", 1, 391, 12733},
}};
// The model in one line (JSON "cycle_model", and the last line of the table).
inline constexpr std::string_view kCycleModel =
    "modelled cycles, a MODEL (compare/cost_model.hpp): instructions x 1 (direct) or x 38 "
    "(interpreted), VM exit 1186 + entry 937 (Adams & Agesen 2006, Core 2), exception 889, callout "
    "216, translation 2300 per instruction; bt also: exception reflected by the VMM +2118, entry "
    "from CPL 3 1850, hidden fault 2822 (our estimate), true-fault walk 704, PTE store in a "
    "callout +174 (from Adams & Agesen 2006's software-VMM nanobenchmarks, Pentium 4)";

inline constexpr std::string_view kPaperSource =
    "Adams & Agesen, ASPLOS 2006, nanobenchmarks, cycles on a 3.8 GHz Pentium 4";

}  // namespace trapscope::compare
