// sim/virt/monitor.hpp — the simulator's virtual machine monitors: trap-and-emulate on classic
// x86 (ring compression) and a model of hardware-assisted virtualization (VT-x).
//
// [SECTION] How it runs
//   The guest's architectural state in the Cpu is its VIRTUAL state (what it would see on its
//   own machine). Under plain emulation no Monitor exists and the step loop calls the handler
//   directly; under a technique the step loop hands every instruction to Monitor::execute.
//
// [SECTION] Trap-and-emulate (Technique::kTrapEmulate; Popek & Goldberg 1974, Theorem 1)
//   Ring compression: the guest kernel (virtual CPL 0) really runs at CPL `deprivilege` (1 or 3)
//   with the real IOPL 0, real IF 1 and the VMM's own GDT/IDT/TSS loaded. For each instruction
//   the guest executes at virtual CPL 0 in protected or long mode, the classifier
//   (x86/classify.hpp) decides:
//     privileged → the hardware raises #GP at the real CPL, the VMM gets the trap (a kVmmTrap
//       event, counted) and emulates the instruction on the virtual state: the same result as
//       on the bare machine;
//     sensitive but unprivileged → it runs WITHOUT trapping, against what the real hardware
//       holds at the deprivileged CPL (a kSensitiveNoTrap event):
//         pushf      pushes the real IF (1) and IOPL (0);
//         popf       IF and IOPL stay as they were (CPL > IOPL: SDM Vol. 2 POPF);
//         push/mov from CS, SS   the selector's RPL is the real CPL;
//         sgdt/sidt/sldt/str/smsw  the VMM's GDTR/IDTR/LDTR/TR/CR0 (kHostState below);
//         lar/lsl/verr/verw        the DPL checks use the real CPL;
//       the others (far call/jmp/ret, iret, mov/pop to Sreg, lds…, int n, syscall) are counted
//       and reported, but executed as on the bare machine: a real VMM keeps them working by
//       shadowing the descriptor tables, which this model does not show;
//     innocuous → runs directly.
//   Guest user code (virtual CPL 3) runs directly; real-mode code is interpreted as under
//   emulation (a classic VMM used virtual-8086 mode or binary translation for it).
//   Not modelled: CR4.UMIP (the classic x86 before it), the cost of a trap.
//
// [SECTION] VT-x model (Technique::kVt; Intel SDM Vol. 3C chapters 24–28)
//   The guest runs in VMX non-root operation at its own CPL, so sensitive instructions behave
//   natively; the VM-execution controls below (a VMCS-like structure) say which events cause a
//   VM exit. Each exit is a kVmTransition event with Intel's basic exit reason (SDM Vol. 3C
//   Appendix C) and exit qualification (SDM Vol. 3C 28.2.1: control-register accesses: bits 3:0
//   CR number, 5:4 access type (0 mov to CR, 1 mov from CR, 2 clts, 3 lmsw), 11:8 GPR, 31:16
//   lmsw source; I/O: bits 2:0 size − 1, bit 3 direction (1 = in), bit 4 string, bit 5 rep,
//   bit 6 immediate operand, 31:16 port; INVLPG: the linear address; #PF: the faulting linear
//   address); the root-mode VMM then emulates the instruction and resumes the guest with a VM
//   entry (another kVmTransition event). Exits: CR0/CR3/CR4 accesses, I/O instructions through
//   the I/O bitmap (or unconditional I/O exiting), rdmsr/wrmsr through the MSR bitmap,
//   exceptions through the exception bitmap, HLT, CPUID and INVD (unconditional, SDM Vol. 3C
//   26.1.2), INVLPG, RDTSC, MOV DR, WBINVD, interrupt window, and with descriptor-table exiting
//   LGDT/LIDT/SGDT/SIDT (46) and LLDT/LTR/SLDT/STR (47), the instruction's identity in the
//   VM-exit instruction-information field (x86/vmx.hpp). The controls can change between
//   instructions (controls(): `--vmcs`, the visualizer's VMCS panel); the next instruction
//   follows them. Not modelled: VPID, interrupt injection (the simulator has no interrupt
//   sources); EPT is the memory model's (--paging ept, sim/mmu.hpp).
//
// [SECTION] Paravirtualization (Technique::kPv; Barham et al., "Xen and the Art of
//   Virtualization", SOSP 2003)
//   The guest is modified: in place of sensitive instructions it makes hypercalls through the
//   doorbell of platform/hypercall.hpp (console output by the buffer, batched page-table updates,
//   CR3 switches, an event mask in shared memory instead of cli/sti). The doorbell is an I/O
//   instruction, so the VMM sees each hypercall as one VM exit, as the KVM backend does
//   (KVM_EXIT_IO). The model uses the VT-x controls above for everything else: an
//   unmodified instruction that would exit still exits (counted as a VM exit, with its cost),
//   which is what makes a PV guest's savings visible beside the same work under `vt`.
//
// [SECTION] Cost model (cycles; a MODEL, not a measurement)
//   VM exit 1186 cycles and VM entry 937 cycles: the hardware transitions measured by Adams &
//   Agesen, "A Comparison of Software and Hardware Techniques for x86 Virtualization", ASPLOS
//   2006, on Core 2 (Pentium 4: exit 1931, entry 2409). Later cores are cheaper: round trip 1266
//   (Penryn), 1009 (Nehalem), 784 (Sandy Bridge) — Agesen et al., USENIX ATC 2012. See
//   docs/references.md.
#pragma once

#include <bitset>
#include <cstdint>
#include <map>
#include <optional>
#include <string_view>

#include "sim/cpu.hpp"
#include "sim/arch.hpp"
#include "sim/virt/technique.hpp"
#include "sim/virt/vmcs.hpp"

namespace trapscope::sim::virt {

// The techniques: sim/virt/technique.hpp.

// What the real hardware holds while a ring-compressed guest runs (HostState, kHostState):
// sim/virt/vmcs.hpp, which the VT-x model's host-state area shows too.

// The VM-execution controls of the model (SDM Vol. 3C 25.6): sim/virt/vmcs.hpp.

struct CostModel {
  uint32_t vm_exit_cycles = 1186;  // Adams & Agesen 2006, Core 2
  uint32_t vm_entry_cycles = 937;  // Adams & Agesen 2006, Core 2
};

struct MonitorStats {
  uint64_t traps = 0;              // trap-and-emulate: privileged instructions that trapped
  uint64_t sensitive_no_trap = 0;  // trap-and-emulate: sensitive instructions that did not
  uint64_t vm_exits = 0;           // VT: VM exits (each followed by a VM entry)
  uint64_t modelled_cycles = 0;    // VT: Σ modelled exit + entry cost
  std::map<uint32_t, uint64_t> exits_by_reason;  // VT: Intel basic exit reason → count
};

class Monitor {
 public:
  // deprivilege: the real CPL of the guest kernel under trap-and-emulate (1 or 3).
  Monitor(Technique technique, uint8_t deprivilege, const VmcsControls& controls = {},
          const CostModel& cost = {});

  // Executes one instruction of the guest in place of its handler (RIP already advanced).
  void execute(sim::Cpu& cpu, const sim::Instruction& insn, const uint8_t* bytes);
  // An exception is about to be delivered to the guest (VT: the exception bitmap).
  void on_exception(sim::Cpu& cpu, uint8_t vector, bool has_error_code, uint32_t error_code);

  Technique technique() const { return technique_; }
  uint8_t deprivilege() const { return deprivilege_; }
  const MonitorStats& stats() const { return stats_; }
  VmcsControls& controls() { return controls_; }
  const VmcsControls& controls() const { return controls_; }

 private:
  void trap_emulate(sim::Cpu& cpu, const sim::Instruction& insn, const uint8_t* bytes);
  void run_deprivileged(sim::Cpu& cpu, const sim::Instruction& insn);
  void vt(sim::Cpu& cpu, const sim::Instruction& insn, const uint8_t* bytes);
  void emit(sim::Cpu& cpu, trace::EventType type, const sim::Instruction* insn,
            const uint8_t* bytes, uint32_t reason, uint64_t qualification, uint32_t info,
            uint32_t cost, bool entry);
  void vm_exit(sim::Cpu& cpu, const sim::Instruction* insn, const uint8_t* bytes,
               uint32_t reason, uint64_t qualification, uint32_t info = 0);
  void vm_entry(sim::Cpu& cpu, const sim::Instruction* insn, const uint8_t* bytes,
                uint32_t reason);

  Technique technique_;
  uint8_t deprivilege_;
  VmcsControls controls_;
  CostModel cost_;
  MonitorStats stats_;
};

}  // namespace trapscope::sim::virt
