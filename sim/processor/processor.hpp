// sim/processor/processor.hpp — the processor's own behaviour, as services that instruction
// handlers (sim/interp/) and the step loop (sim/sim_machine.cpp) call: privilege and mode checks,
// descriptor reads and segment-register loads, the TSS, far transfers through code segments and
// call gates, exception and interrupt delivery, control-register writes. These are what the SDM
// describes as processor behaviour shared by many instructions (or by none: an exception), not
// the semantics of one instruction; the handlers of the "system" family (sim/interp/system.cpp)
// decode their operands and call them.
//
// Sources (Intel SDM, Vol. 3A unless noted):
//   2.5          control registers; 9.8.5 IA-32e mode activation; 4.10.4 TLB invalidation
//   3.4.2–3.4.5  segment selectors, hidden parts, descriptors; 3.5 system descriptor types
//   5.5–5.8      privilege levels, DPL/RPL/CPL checks on data and stack segment loads (5.6, 5.7),
//                on control transfers (5.8: direct far jmp/call, call gates, far returns);
//                5.10 privileged instructions
//   6.4.2        software interrupts (gate DPL check); 6.12 protected-mode delivery; 6.13 error
//                codes (EXT, IDT, TI bits); 6.14 64-bit mode (16-byte gates, IST, RSP0..2, 16-byte
//                stack alignment, SS:RSP always pushed); 6.15 #DF conditions (table 6-5)
//   7.2.1/7.6/7.7  32-bit, 16-bit and 64-bit TSS layouts (SSn:ESPn, RSPn, ISTn)
//   17.3.1.1     RF in the EFLAGS image pushed by faults
//   20.1.1/20.1.4  real-mode segment loads and interrupts through the IVT
//   Vol. 2       the pseudocode of CALL, JMP, RET, IRET, INT n, MOV (CR, Sreg), LLDT, LTR
//
// [SECTION] Index
//   Privilege and mode checks   inline below
//   Atomicity                   Transaction (below)
//   Descriptors, segment loads  sim/processor/segments.cpp
//   The TSS                     sim/processor/tss.cpp
//   Far transfers and returns   sim/processor/far_transfer.cpp
//   Exception delivery, events  sim/processor/delivery.cpp
//   Control registers           sim/processor/control_registers.cpp
//
// [SECTION] Errors
//   Architectural faults are thrown with sim::raise (sim/cpu.hpp CpuFault), with the error code
//   the SDM gives (a selector's index and TI bits, `kSelectorMask`, plus EXT for delivery);
//   what the model leaves out (task switches, virtual-8086 mode) throws sim::Unsupported; a
//   fault while delivering #DF throws TripleFault.
//
// [SECTION] Atomicity
//   Services that change several registers (far transfers, delivery, stack switches) run inside
//   a Transaction: a copy of the CpuState is restored if a fault escapes, so a faulting
//   instruction leaves the registers unchanged (CR2 excepted: #PF sets it). Stack writes done
//   before the fault stay in memory, as on hardware.
//
// [SECTION] Events
//   deliver() emits a trace::ExceptionEvent for every delivery attempt (so a #GP that turns into
//   #DF shows both); whoever changes the CPL (delivery, far transfers through gates, iret,
//   syscall/sysret) calls Cpu::note_ring_transition (a trace::RingTransitionEvent).
//   Timestamps: Cpu::event_time() (host ns, see sim/cpu.hpp); s.tsc is the guest's clock.
//
// [SECTION] Not modelled (reported as Unsupported or documented as omitted)
//   task switches (task gates, jmp/call to a TSS, iret with NT=1 outside IA-32e mode),
//   virtual-8086 mode, SYSENTER/SYSEXIT, debug breakpoints (DR0–DR7 are stored only), CR4.VME/
//   PVI/DE/PCE/OSFXSR, interrupt shadows (mov ss, sti: there are no interrupts), #AC.
#pragma once

#include <cstdint>
#include <stdexcept>

#include "sim/cpu.hpp"
#include "sim/arch.hpp"

namespace trapscope::sim::processor {

// [SECTION] Privilege and mode checks

inline constexpr uint16_t kSelectorMask = 0xFFFC;  // index + TI: the error-code form of a selector

// A 64-bit linear address is canonical if bits 63:47 are all equal (SDM Vol. 1 3.3.7.1).
inline bool canonical(uint64_t a) {
  return static_cast<uint64_t>(static_cast<int64_t>(a << 16) >> 16) == a;
}

inline bool ia32e(const Cpu& cpu) { return cpu.s.long_mode_active(); }
inline bool real_mode(const Cpu& cpu) { return !cpu.protected_mode(); }
inline uint8_t iopl(const Cpu& cpu) { return static_cast<uint8_t>((cpu.s.rflags & kIOPL) >> 12); }

[[noreturn]] inline void no_v86() { throw Unsupported("virtual-8086 mode is not modelled"); }

// Privileged instructions (SDM 5.10): #GP(0) unless CPL 0. Real mode runs at CPL 0.
inline void require_cpl0(const Cpu& cpu) {
  if (cpu.cpl() != 0) raise(vec::kGP, 0);
}

// Instructions that exist only in protected mode (LLDT, LTR, SLDT, STR, LAR, LSL, VERR, VERW):
// #UD in real-address and virtual-8086 mode.
inline void require_protected(const Cpu& cpu) {
  if (real_mode(cpu) || (cpu.s.rflags & kVM)) raise(vec::kUD);
}

// SGDT, SIDT, SLDT, STR, SMSW: not privileged (the Popek–Goldberg "sensitive but
// unprivileged" instructions) unless CR4.UMIP is set, which makes them #GP(0) at CPL > 0.
inline void check_umip(const Cpu& cpu) {
  if ((cpu.s.cr4 & kCr4Umip) && cpu.cpl() > 0) raise(vec::kGP, 0);
}

// [SECTION] Atomicity: restores the registers if a fault escapes (see the header comment).
class Transaction {
 public:
  explicit Transaction(Cpu& cpu) : cpu_(cpu), saved_(cpu.s) {}
  ~Transaction() {
    if (!committed_) {
      const uint64_t cr2 = cpu_.s.cr2;
      cpu_.s = saved_;
      cpu_.s.cr2 = cr2;
    }
  }
  void commit() { committed_ = true; }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

 private:
  Cpu& cpu_;
  CpuState saved_;
  bool committed_ = false;
};

// [SECTION] Descriptors (SDM 3.4.5, 3.5; 5.8.3.1 and 6.14.1 for 16-byte ones in IA-32e mode)

struct Descriptor {
  uint64_t lo = 0, hi = 0;  // hi: the upper 8 bytes of a 16-byte system descriptor
  uint64_t address = 0;     // linear address of the descriptor (for the accessed/busy bits)

  uint8_t type() const { return (lo >> 40) & 0xF; }
  bool s() const { return (lo >> 44) & 1; }
  uint8_t dpl() const { return (lo >> 45) & 3; }
  bool present() const { return (lo >> 47) & 1; }
  bool avl() const { return (lo >> 52) & 1; }
  bool l() const { return (lo >> 53) & 1; }
  bool db() const { return (lo >> 54) & 1; }
  bool g() const { return (lo >> 55) & 1; }
  uint32_t raw_limit() const {
    return static_cast<uint32_t>((lo & 0xFFFF) | ((lo >> 32) & 0xF0000));
  }
  uint32_t limit() const { return g() ? (raw_limit() << 12) | 0xFFF : raw_limit(); }
  uint64_t base() const { return ((lo >> 16) & 0xFFFFFF) | (((lo >> 56) & 0xFF) << 24); }
  uint64_t base64() const { return base() | ((hi & 0xFFFFFFFFull) << 32); }

  bool code() const { return s() && (type() & 0x8); }
  bool data() const { return s() && !(type() & 0x8); }
  bool conforming() const { return code() && (type() & 0x4); }
  bool readable() const { return data() || (code() && (type() & 0x2)); }
  bool writable() const { return data() && (type() & 0x2); }

  // Gates (SDM 5.8.3 call gates, 6.11/6.14.1 interrupt and trap gates).
  uint16_t gate_selector() const { return static_cast<uint16_t>(lo >> 16); }
  uint64_t gate_offset32() const { return (lo & 0xFFFF) | ((lo >> 32) & 0xFFFF0000ull); }
  uint64_t gate_offset64() const { return gate_offset32() | ((hi & 0xFFFFFFFFull) << 32); }
  uint8_t gate_params() const { return (lo >> 32) & 0x1F; }
  uint8_t gate_ist() const { return (lo >> 32) & 0x7; }
};

// System descriptor types (SDM table 3-2).
enum : uint8_t {
  kTss16Avail = 0x1, kLdt = 0x2, kTss16Busy = 0x3, kCallGate16 = 0x4, kTaskGate = 0x5,
  kIntGate16 = 0x6, kTrapGate16 = 0x7, kTss32Avail = 0x9, kTss32Busy = 0xB, kCallGate32 = 0xC,
  kIntGate32 = 0xE, kTrapGate32 = 0xF,
};

// The linear address of a system-structure byte (descriptor table, TSS): 32 bits wide outside
// IA-32e mode.
inline uint64_t system_linear(const Cpu& cpu, uint64_t base, uint64_t offset) {
  const uint64_t la = base + offset;
  return ia32e(cpu) ? la : la & 0xFFFFFFFFull;
}

// Reads the descriptor `selector` names from the GDT or (TI=1) the LDT. Returns false if the
// selector lies outside the table's limit (or TI=1 with no LDT): callers raise #GP(selector).
// `bytes` = 16 reads a 16-byte system descriptor (IA-32e mode).
bool read_descriptor(Cpu& cpu, uint16_t selector, Descriptor* d, unsigned bytes = 8);
// Sets the accessed bit of a code/data descriptor (SDM 3.4.5.1: on the first load).
void mark_accessed(Cpu& cpu, Descriptor& d);
// The hidden part a segment register gets from a code/data descriptor (SDM 3.4.3).
Segment segment_from(const Descriptor& d, uint16_t selector);
// A null selector's hidden part: unusable, so that a later use faults (outside 64-bit mode).
Segment null_segment(uint16_t selector, uint8_t dpl);

// [SECTION] Segment-register loads (sim/processor/segments.cpp)

// Real-mode (and CR0.PE=0) segment load: base = selector << 4; limit and attributes stay
// (SDM 20.1.1; this is what makes "unreal mode" possible).
void load_real(Cpu& cpu, SegReg seg, uint16_t selector);
// Loads a data or stack segment register (mov/pop Sreg, lds…, and the data segments of far
// returns), with the SDM 5.6/5.7 checks in protected mode (null selector rules, type,
// DPL/RPL/CPL, present → #GP/#SS/#NP with the selector as error code) and base = selector << 4
// in real mode.
void load_segment(Cpu& cpu, SegReg seg, uint16_t selector);
// Loads CS from a checked code descriptor with RPL = the new CPL (marks it accessed).
void load_cs(Cpu& cpu, Descriptor& d, uint16_t selector, uint8_t cpl);
// After a return to an outer privilege level (RET, IRET): data segment registers whose segment
// the new CPL may not use are nulled (SDM Vol. 2 RET/IRET "RETURN-TO-OUTER-PRIVILEGE-LEVEL").
void clear_inaccessible_segments(Cpu& cpu, uint8_t new_cpl);

// [SECTION] The TSS (sim/processor/tss.cpp; SDM 7.2.1 32-bit, 7.6 16-bit, 7.7 64-bit)

// SSn:ESPn of a 32- or 16-bit TSS for privilege level n, with the SDM 6.12.1 checks of the new
// stack segment (#TS with its selector | ext, #SS if not present); ext is the EXT bit of the
// error code (1 for an event not caused by the program, SDM 6.13).
struct LegacyStack {
  uint16_t ss;
  uint32_t esp;
  Descriptor desc;
};
LegacyStack legacy_stack_for(Cpu& cpu, uint8_t n, uint8_t new_cpl, uint32_t ext);
// Loads SS:ESP from a checked LegacyStack.
void load_legacy_stack(Cpu& cpu, LegacyStack& st);
// RSPn or ISTn (n = 1..7) of the 64-bit TSS (SDM 7.7, 6.14.5); #TS(TR selector | ext) beyond
// the TSS limit.
uint64_t tss64_rsp(Cpu& cpu, uint8_t n, uint32_t ext);
uint64_t tss64_ist(Cpu& cpu, uint8_t n, uint32_t ext);

// [SECTION] Far transfers and returns (sim/processor/far_transfer.cpp; SDM 5.8)

enum class FarKind { kJmp, kCall };
// Far jmp/call to selector:offset with the instruction's operand size: real mode (base =
// selector << 4), a code segment (SDM 5.8.1, 5.8.2), or a call gate (5.8.3–5.8.6, with the
// stack switch of CALL-TO-MORE-PRIVILEGE and the copied parameters); a TSS or task gate is
// Unsupported (task switches). All or nothing (Transaction); notes a ring transition.
void far_transfer(Cpu& cpu, const Instruction& insn, FarKind kind, uint16_t selector,
                  uint64_t offset);
// The target RIP of a far transfer to code segment `cs`: 64-bit code takes the whole offset
// (it must be canonical); other code is limited to the operand size (`size` bytes) and checked
// against the segment limit (#GP(0)).
uint64_t checked_target(const Segment& cs, bool long_mode, uint64_t offset, unsigned size);
// Checks of the CS popped by RET/IRET (Vol. 2 RET "PROTECTED-MODE"): returns its descriptor.
Descriptor check_return_cs(Cpu& cpu, uint16_t csel, uint8_t cpl);
// The new SS of a far return or iret to an outer level (or of iretq in 64-bit mode): checks
// per Vol. 2 RET/IRET; a null SS is allowed only when returning to 64-bit code at RPL < 3.
void load_return_ss(Cpu& cpu, uint16_t ss_sel, uint8_t new_cpl, bool to_64bit);

// [SECTION] Exception and interrupt delivery (sim/processor/delivery.cpp)

enum class EventSource : uint8_t {
  kException,  // a fault or trap raised by the processor
  kSoftware,   // int n, int3, into (checks gate DPL >= CPL)
  kExternal,   // an external interrupt (not used yet: no interrupt controller)
};

// The guest took an exception while delivering a double fault: the machine shuts down.
struct TripleFault : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Delivers `vector` through the IDT (or the real-mode IVT): pushes the frame (SS:RSP on a
// privilege change, with the stack from the TSS or an IST), RFLAGS, CS, RIP = return_rip, the
// error code if any; clears IF for interrupt gates, TF, NT, RF (and VM); loads CS:RIP from the
// gate. A fault during delivery becomes #DF per SDM table 6-5; a fault while delivering #DF
// throws TripleFault (its message: the chain of events and the stage that faulted). Emits
// trace::ExceptionEvent and, if the CPL changes, trace::RingTransitionEvent.
void deliver(Cpu& cpu, uint8_t vector, EventSource source, bool has_error_code,
             uint32_t error_code, uint64_t return_rip);

// [SECTION] Control registers (sim/processor/control_registers.cpp; SDM 2.5, 9.8.5, 4.10.4)

// MOV to CR0/CR3/CR4 (and LMSW through write_cr0): the reserved-bit and combination checks
// (#GP(0)), IA-32e mode activation and deactivation (EFER.LMA), and the TLB invalidation the
// change requires (mmu_cr3_written for CR3: every non-global entry).
void write_cr0(Cpu& cpu, uint64_t value);
void write_cr3(Cpu& cpu, uint64_t value);
void write_cr4(Cpu& cpu, uint64_t value);

}  // namespace trapscope::sim::processor
