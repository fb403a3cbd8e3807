// sim/interp/system.cpp — system instructions (sim/ops.def "system" family) and the x86
// protection model: descriptor tables, segment loads, far transfers, call gates, interrupt and
// exception delivery, privilege checks.
//
// Sources (Intel SDM, Vol. 3A unless noted):
//   3.4.2–3.4.5  segment selectors, hidden parts, descriptors; 3.5 system descriptor types
//   5.5–5.8      privilege levels, DPL/RPL/CPL checks on data and stack segment loads (5.6, 5.7),
//                on control transfers (5.8: direct far jmp/call, call gates, far returns)
//   5.8.7/5.8.8  SYSCALL/SYSRET (and Vol. 2 SYSCALL, SYSRET)
//   5.10         privileged instructions (CPL 0 only); 2.8 system instruction summary
//   6.4.2        software interrupts (gate DPL check); 6.12 protected-mode delivery; 6.13 error
//                codes (EXT, IDT, TI bits); 6.14 64-bit mode (16-byte gates, IST, RSP0..2, 16-byte
//                stack alignment, SS:RSP always pushed); 6.15 #DF conditions (table 6-5)
//   7.2.1/7.7    32-bit and 64-bit TSS layouts (SSn:ESPn, RSPn, ISTn)
//   17.3.1.1     RF in the EFLAGS image pushed by faults
//   20.1.4       real-mode interrupts through the IVT
//   Vol. 2       the pseudocode of CALL, JMP, RET, IRET, INT n, LAR, LSL, VERR/VERW, MOV (CR, DR,
//                Sreg), LGDT/SGDT, LLDT, LTR, LMSW, SMSW, RDMSR/WRMSR, CPUID, RDTSC, CLI/STI, HLT
//
// [SECTION] Atomicity
//   Handlers that change several registers (far transfers, iret, stack switches) run inside
//   `Transaction`: a copy of the CpuState is restored if a fault escapes, so a faulting
//   instruction leaves the registers unchanged (CR2 excepted: #PF sets it). Stack writes done
//   before the fault stay in memory, as on hardware.
// [SECTION] Events
//   deliver() emits a trace::ExceptionEvent for every delivery attempt (so a #GP that turns into
//   #DF shows both), and a trace::RingTransitionEvent whenever the CPL changes (exceptions,
//   int n, iret, far call/return through gates, syscall/sysret). Timestamps: Cpu::event_time(),
//   as every other simulator event (host ns, see sim/cpu.hpp); s.tsc is the guest's clock.
// [SECTION] Not modelled (reported as Unsupported or documented as omitted)
//   task switches (task gates, jmp/call to a TSS, iret with NT=1 outside IA-32e mode),
//   virtual-8086 mode, SYSENTER/SYSEXIT, debug breakpoints (DR0–DR7 are stored only), CR4.VME/
//   PVI/DE/PCE/OSFXSR, interrupt shadows (mov ss, sti: there are no interrupts), #AC.
#include <cstdio>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "sim/interp/handlers.hpp"
#include "sim/interp/protection.hpp"

namespace trapscope::sim {
namespace {

// [SECTION] Small helpers

constexpr uint16_t kSelectorMask = 0xFFFC;  // index + TI: the error-code form of a selector

std::string hex(uint64_t v) { return fmt::format("{:#x}", v); }

bool canonical(uint64_t a) {
  return static_cast<uint64_t>(static_cast<int64_t>(a << 16) >> 16) == a;
}

bool ia32e(const Cpu& cpu) { return cpu.s.long_mode_active(); }
bool real_mode(const Cpu& cpu) { return !cpu.protected_mode(); }
uint8_t iopl(const Cpu& cpu) { return static_cast<uint8_t>((cpu.s.rflags & kIOPL) >> 12); }

[[noreturn]] void no_v86() { throw Unsupported("virtual-8086 mode is not modelled"); }

// Privileged instructions (SDM 5.10): #GP(0) unless CPL 0. Real mode runs at CPL 0.
void require_cpl0(const Cpu& cpu) {
  if (cpu.cpl() != 0) raise(vec::kGP, 0);
}

// Instructions that exist only in protected mode (LLDT, LTR, SLDT, STR, LAR, LSL, VERR, VERW):
// #UD in real-address and virtual-8086 mode.
void require_protected(const Cpu& cpu) {
  if (real_mode(cpu) || (cpu.s.rflags & kVM)) raise(vec::kUD);
}

// Restores the registers if a fault escapes (see [SECTION] Atomicity).
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

// Sets (E/R)SP after a stack switch or a far return, with the width of `size` bytes (the
// operand size of the instruction, or 8 in 64-bit mode): 2 → only SP changes.
void set_sp(Cpu& cpu, uint64_t value, unsigned size) {
  uint64_t& rsp = cpu.s.gpr[kRsp];
  if (size == 2) rsp = (rsp & ~0xFFFFull) | (value & 0xFFFF);
  else if (size == 4) rsp = value & 0xFFFFFFFFull;
  else rsp = value;
}

// Adds to (E/R)SP with the stack's address size (RET imm16, far return to an outer level).
void add_sp(Cpu& cpu, uint64_t delta) {
  const unsigned as = cpu.stack_address_size();
  const uint64_t sp = (cpu.s.gpr[kRsp] + delta) & mask(as);
  set_sp(cpu, sp, as);
}

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

uint64_t system_linear(const Cpu& cpu, uint64_t base, uint64_t offset) {
  const uint64_t la = base + offset;
  return ia32e(cpu) ? la : la & 0xFFFFFFFFull;
}

// Reads the descriptor `selector` names from the GDT or (TI=1) the LDT. Returns false if the
// selector lies outside the table's limit (or TI=1 with no LDT): callers raise #GP(selector).
// `bytes` = 16 reads a 16-byte system descriptor (IA-32e mode).
bool read_descriptor(Cpu& cpu, uint16_t selector, Descriptor* d, unsigned bytes = 8) {
  const CpuState& s = cpu.s;
  uint64_t base;
  uint32_t limit;
  if (selector & 4) {
    if (s.ldtr.unusable || (s.ldtr.selector & kSelectorMask) == 0 || !s.ldtr.present) {
      return false;
    }
    base = s.ldtr.base;
    limit = s.ldtr.limit;
  } else {
    base = s.gdtr.base;
    limit = s.gdtr.limit;
  }
  const uint32_t offset = selector & 0xFFF8u;
  if (offset + bytes - 1 > limit) return false;
  d->address = system_linear(cpu, base, offset);
  d->lo = cpu.read_system(d->address, 8);
  d->hi = bytes == 16 ? cpu.read_system(system_linear(cpu, base, offset + 8), 8) : 0;
  return true;
}

// Reads the upper half of a 16-byte descriptor already read with 8 bytes.
bool widen_descriptor(Cpu& cpu, uint16_t selector, Descriptor* d) {
  return read_descriptor(cpu, selector, d, 16);
}

// Sets the accessed bit of a code/data descriptor (SDM 3.4.5.1: on the first load).
void mark_accessed(Cpu& cpu, Descriptor& d) {
  if (!d.s() || (d.type() & 1)) return;
  d.lo |= 1ull << 40;
  cpu.write_system(d.address + 5, 1, (d.lo >> 40) & 0xFF);
}

// The hidden part a segment register gets from a code/data descriptor (SDM 3.4.3).
Segment segment_from(const Descriptor& d, uint16_t selector) {
  Segment sg;
  sg.selector = selector;
  sg.base = d.s() ? d.base() : d.base64();
  sg.limit = d.limit();
  sg.type = d.type();
  sg.s = d.s();
  sg.dpl = d.dpl();
  sg.present = d.present();
  sg.db = d.db();
  sg.l = d.l();
  sg.g = d.g();
  sg.avl = d.avl();
  sg.unusable = 0;
  return sg;
}

// A null selector's hidden part: unusable, so that a later use faults (outside 64-bit mode).
Segment null_segment(uint16_t selector, uint8_t dpl) {
  Segment sg;
  sg.selector = selector;
  sg.base = 0;
  sg.limit = 0;
  sg.type = 0x3;
  sg.s = 1;
  sg.dpl = dpl;
  sg.present = 0;
  sg.db = 0;
  sg.l = 0;
  sg.g = 0;
  sg.avl = 0;
  sg.unusable = 1;
  return sg;
}

// Real-mode (and CR0.PE=0) segment load: base = selector << 4; limit and attributes stay
// (SDM 20.1.1; this is what makes "unreal mode" possible).
void load_real(Cpu& cpu, SegReg seg, uint16_t selector) {
  Segment& sg = cpu.s.seg[seg];
  sg.selector = selector;
  sg.base = uint64_t{selector} << 4;
  sg.present = 1;
  sg.unusable = 0;
}

// After a return to an outer privilege level (RET, IRET): data segment registers whose segment
// the new CPL may not use are nulled (SDM Vol. 2 RET/IRET "RETURN-TO-OUTER-PRIVILEGE-LEVEL").
void clear_inaccessible_segments(Cpu& cpu, uint8_t new_cpl) {
  for (SegReg r : {kEs, kFs, kGs, kDs}) {
    Segment& sg = cpu.s.seg[r];
    if (sg.unusable || !sg.s) continue;
    const bool code = sg.type & 0x8;
    const bool conforming = code && (sg.type & 0x4);
    if (!conforming && sg.dpl < new_cpl) {
      const uint64_t base = sg.base;
      sg = null_segment(0, 0);
      if (r == kFs || r == kGs) sg.base = base;  // 64-bit FS/GS bases live in MSRs too
    }
  }
}

// Loads CS from a checked code descriptor with RPL = the new CPL.
void load_cs(Cpu& cpu, Descriptor& d, uint16_t selector, uint8_t cpl) {
  mark_accessed(cpu, d);
  cpu.s.seg[kCs] = segment_from(d, static_cast<uint16_t>((selector & kSelectorMask) | cpl));
}

// The target RIP of a far transfer to code segment `cs`: 64-bit code takes the whole offset
// (it must be canonical); other code is limited to the operand size and checked against the
// segment limit (#GP(0)).
uint64_t checked_target(const Segment& cs, bool long_mode, uint64_t offset, unsigned size) {
  if (long_mode && cs.l) {
    if (!canonical(offset)) raise(vec::kGP, 0);
    return offset;
  }
  offset &= mask(size > 4 ? 4 : size);
  if (offset > cs.limit) raise(vec::kGP, 0);
  return offset;
}

// [SECTION] The TSS (SDM 7.2.1 32-bit, 7.6 16-bit, 7.7 64-bit)

// Reads `size` bytes at `offset` in the current TSS; #TS(TR selector) beyond its limit.
uint64_t read_tss(Cpu& cpu, uint32_t offset, unsigned size, uint32_t ext) {
  const Segment& tr = cpu.s.tr;
  if (tr.unusable || !tr.present || offset + size - 1 > tr.limit) {
    raise(vec::kTS, (tr.selector & kSelectorMask) | ext);
  }
  return cpu.read_system(system_linear(cpu, tr.base, offset), size);
}

// SSn:ESPn of a 32- or 16-bit TSS for privilege level n, and the SDM 6.12.1 checks of the new
// stack segment (#TS with its selector, #SS if not present).
struct LegacyStack {
  uint16_t ss;
  uint32_t esp;
  Descriptor desc;
};
LegacyStack legacy_stack_for(Cpu& cpu, uint8_t n, uint8_t new_cpl, uint32_t ext) {
  LegacyStack st{};
  const bool tss32 = (cpu.s.tr.type & 0x8) != 0;
  if (tss32) {
    st.esp = static_cast<uint32_t>(read_tss(cpu, 4 + 8 * n, 4, ext));
    st.ss = static_cast<uint16_t>(read_tss(cpu, 8 + 8 * n, 2, ext));
  } else {
    st.esp = static_cast<uint32_t>(read_tss(cpu, 2 + 4 * n, 2, ext));
    st.ss = static_cast<uint16_t>(read_tss(cpu, 4 + 4 * n, 2, ext));
  }
  const uint32_t err = (st.ss & kSelectorMask) | ext;
  if ((st.ss & kSelectorMask) == 0) raise(vec::kTS, ext);
  if (!read_descriptor(cpu, st.ss, &st.desc)) raise(vec::kTS, err);
  if ((st.ss & 3) != new_cpl || st.desc.dpl() != new_cpl || !st.desc.writable()) {
    raise(vec::kTS, err);
  }
  if (!st.desc.present()) raise(vec::kSS, err);
  return st;
}

void load_legacy_stack(Cpu& cpu, LegacyStack& st) {
  mark_accessed(cpu, st.desc);
  cpu.s.seg[kSs] = segment_from(st.desc, st.ss);
  cpu.s.gpr[kRsp] = st.esp;  // ESP (the upper half of RSP is zero outside IA-32e mode)
}

// RSPn or ISTn of the 64-bit TSS (SDM 7.7, 6.14.5).
uint64_t tss64_rsp(Cpu& cpu, uint8_t n, uint32_t ext) { return read_tss(cpu, 4 + 8 * n, 8, ext); }
uint64_t tss64_ist(Cpu& cpu, uint8_t n, uint32_t ext) {
  return read_tss(cpu, 0x24 + 8 * (n - 1), 8, ext);
}

// [SECTION] Events

const char* vector_mnemonic(uint8_t v) {
  static const char* const kNames[32] = {
      "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS",
      "#NP", "#SS", "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
      "#22", "#23", "#24", "#25", "#26", "#27", "#HV", "#VC", "#SX", "#31"};
  return v < 32 ? kNames[v] : "INT";
}

std::string describe_event(uint8_t vector, bool has_error, uint32_t error) {
  std::string s;
  if (vector < 32) {
    s = vector_mnemonic(vector);
  } else {
    s = "vector ";
    s += std::to_string(vector);
  }
  if (has_error) {
    s += '(';
    s += hex(error);
    s += ')';
  }
  return s;
}

void emit_exception(Cpu& cpu, uint8_t vector, EventSource source, bool has_error, uint32_t error,
                    uint64_t rip) {
  if (vector == vec::kPF && source != EventSource::kSoftware) {
    mmu_page_fault_delivered(cpu, error);
  }
  trace::EventSink* sink = cpu.sink();
  if (!sink) return;
  trace::ExceptionEvent e{};
  e.header = trace::make_header<trace::ExceptionEvent>(trace::EventType::kException);
  e.header.seq = cpu.next_seq();
  e.header.time_ns = Cpu::event_time();
  e.header.rip = rip;
  e.header.cpl = cpu.cpl();
  e.header.cpu_mode = cpu.s.mode();
  e.vector = vector;
  e.has_error_code = has_error;
  e.software = source == EventSource::kSoftware;
  e.error_code = error;
  e.cr2 = vector == vec::kPF ? cpu.s.cr2 : 0;
  sink->on_event(e.header);
}

// [SECTION] Exception and interrupt delivery

// Why a delivery attempt faulted, for the triple-fault message.
struct DeliveryContext {
  std::string stage;
};

[[noreturn]] void fail(DeliveryContext& ctx, std::string why, uint8_t vector, uint32_t error) {
  ctx.stage = std::move(why);
  raise(vector, error);
}

bool is_fault_class(uint8_t vector) {
  // SDM table 6-1: faults. #DB may be a fault or a trap (treated as a trap here: no
  // instruction breakpoints), #BP/#OF are traps, #DF/#MC aborts, NMI an interrupt.
  switch (vector) {
    case 0: case 5: case 6: case 7: case 10: case 11: case 12: case 13: case 14: case 16:
    case 17: case 19: case 20: case 21: return true;
    default: return false;
  }
}

// Real-address mode (SDM 20.1.4): the IVT entry at IDTR.base + 4 * vector holds IP, CS; push
// FLAGS, CS, IP (no error code); clear IF, TF, AC.
void deliver_real(Cpu& cpu, uint8_t vector, uint64_t return_rip, DeliveryContext& ctx) {
  CpuState& s = cpu.s;
  const uint32_t entry = 4u * vector;
  if (entry + 3 > s.idtr.limit) {
    fail(ctx, "IVT entry " + std::to_string(vector) + " (bytes " + hex(entry) + "-" +
                  hex(entry + 3) + ") is beyond the IDTR limit " + hex(s.idtr.limit),
         vec::kGP, 0);
  }
  ctx.stage = "reading IVT entry " + std::to_string(vector);
  const uint64_t ivt = cpu.read_system((s.idtr.base + entry) & 0xFFFFFFFFull, 4);
  ctx.stage = "pushing the real-mode interrupt frame at SS:SP " + hex(s.seg[kSs].selector) + ":" +
              hex(s.gpr[kRsp] & 0xFFFF);
  cpu.push(s.rflags & 0xFFFF, 2);
  cpu.push(s.seg[kCs].selector, 2);
  cpu.push(return_rip & 0xFFFF, 2);
  load_real(cpu, kCs, static_cast<uint16_t>(ivt >> 16));
  s.rip = ivt & 0xFFFF;
  s.rflags &= ~(kIF | kTF | kAC);
}

// Protected mode (SDM 6.12.1) and IA-32e mode (SDM 6.14). Returns the new CPL.
uint8_t deliver_protected(Cpu& cpu, uint8_t vector, EventSource source, bool has_error,
                          uint32_t error, uint64_t return_rip, DeliveryContext& ctx) {
  CpuState& s = cpu.s;
  if (s.rflags & kVM) no_v86();
  const bool long_mode = ia32e(cpu);
  // EXT (error code bit 0): the event was not caused by the program (SDM 6.13).
  const uint32_t ext = source == EventSource::kSoftware ? 0 : 1;
  const uint32_t idt_error = vector * 8u + 2u + ext;  // IDT bit set, index = vector
  const uint8_t cpl = cpu.cpl();

  // 1. The gate.
  const unsigned gate_bytes = long_mode ? 16 : 8;
  const uint32_t offset = vector * gate_bytes;
  if (offset + gate_bytes - 1 > s.idtr.limit) {
    fail(ctx, "IDT entry " + std::to_string(vector) + " (bytes " + hex(offset) + "-" +
                  hex(offset + gate_bytes - 1) + ") is beyond the IDTR limit " +
                  hex(s.idtr.limit),
         vec::kGP, idt_error);
  }
  ctx.stage = "reading IDT entry " + std::to_string(vector);
  Descriptor gate;
  gate.address = system_linear(cpu, s.idtr.base, offset);
  gate.lo = cpu.read_system(gate.address, 8);
  if (long_mode) gate.hi = cpu.read_system(system_linear(cpu, s.idtr.base, offset + 8), 8);
  const uint8_t type = gate.type();
  const bool valid_type =
      !gate.s() && (long_mode ? (type == kIntGate32 || type == kTrapGate32)
                              : (type == kTaskGate || type == kIntGate16 || type == kTrapGate16 ||
                                 type == kIntGate32 || type == kTrapGate32));
  if (!valid_type) {
    fail(ctx, "IDT entry " + std::to_string(vector) + " is not an interrupt or trap gate (type " +
                  hex(type) + (gate.s() ? ", S=1" : "") + ")",
         vec::kGP, idt_error);
  }
  // 2. Software interrupts may only use gates with DPL >= CPL (SDM 6.12.1.1).
  if (source == EventSource::kSoftware && gate.dpl() < cpl) {
    fail(ctx, "gate DPL " + std::to_string(gate.dpl()) + " < CPL " + std::to_string(cpl),
         vec::kGP, vector * 8u + 2u);
  }
  if (!gate.present()) {
    fail(ctx, "IDT entry " + std::to_string(vector) + " is not present", vec::kNP, idt_error);
  }
  if (type == kTaskGate) throw Unsupported("task gates (hardware task switching)");

  // 3. The handler's code segment.
  const uint16_t sel = gate.gate_selector();
  const uint32_t sel_error = (sel & kSelectorMask) | ext;
  if ((sel & kSelectorMask) == 0) fail(ctx, "the gate's code selector is null", vec::kGP, ext);
  Descriptor code;
  ctx.stage = "reading the handler's code descriptor " + hex(sel);
  if (!read_descriptor(cpu, sel, &code)) {
    fail(ctx, "the gate's code selector " + hex(sel) + " is beyond the descriptor table limit",
         vec::kGP, sel_error);
  }
  if (!code.code() || code.dpl() > cpl) {
    fail(ctx, "the gate's selector " + hex(sel) + " is not a code segment with DPL <= CPL",
         vec::kGP, sel_error);
  }
  if (!code.present()) fail(ctx, "the handler's code segment is not present", vec::kNP, sel_error);
  if (long_mode && (!code.l() || code.db())) {
    fail(ctx, "the handler's code segment is not a 64-bit code segment", vec::kGP, sel_error);
  }

  const uint8_t new_cpl = code.conforming() ? cpl : code.dpl();
  const bool inter = new_cpl < cpl;
  const bool trap_gate = type & 1;
  const uint64_t target =
      long_mode ? gate.gate_offset64() : (type & 0x8 ? gate.gate_offset32() : gate.lo & 0xFFFF);

  // 4. The frame. RF is 1 in the image pushed by a fault (SDM 17.3.1.1).
  uint64_t flags_image = s.rflags;
  if (source == EventSource::kException && is_fault_class(vector)) flags_image |= kRF;
  const Segment old_ss = s.seg[kSs];
  const uint16_t old_cs = s.seg[kCs].selector;
  const uint64_t old_rsp = s.gpr[kRsp];

  if (long_mode) {
    // SDM 6.14.4/6.14.5: the stack is ISTn if the gate names one, else RSPn of the TSS on a
    // privilege change, else the current one; SDM 6.14.2: RSP aligned to 16 bytes before the
    // pushes, and SS:RSP always pushed (64-bit mode frame).
    uint64_t rsp = old_rsp;
    if (gate.gate_ist()) {
      ctx.stage = "reading IST" + std::to_string(gate.gate_ist()) + " from the TSS";
      rsp = tss64_ist(cpu, gate.gate_ist(), ext);
    } else if (inter) {
      ctx.stage = "reading RSP" + std::to_string(new_cpl) + " from the TSS";
      rsp = tss64_rsp(cpu, new_cpl, ext);
    }
    if (!canonical(rsp)) fail(ctx, "the new RSP " + hex(rsp) + " is not canonical", vec::kSS, ext);
    if (!canonical(target)) fail(ctx, "the handler RIP " + hex(target) + " is not canonical", vec::kGP, ext);
    rsp &= ~0xFull;
    if (inter) s.seg[kSs] = null_segment(new_cpl, new_cpl);  // SS = NULL with RPL = new CPL
    load_cs(cpu, code, sel, new_cpl);
    s.gpr[kRsp] = rsp;
    ctx.stage = "pushing the 64-bit interrupt frame at RSP " + hex(rsp);
    cpu.push(old_ss.selector, 8);
    cpu.push(old_rsp, 8);
    cpu.push(flags_image, 8);
    cpu.push(old_cs, 8);
    cpu.push(return_rip, 8);
    if (has_error) cpu.push(error, 8);
  } else {
    const unsigned size = (type & 0x8) ? 4 : 2;
    if (inter) {
      ctx.stage = "reading SS" + std::to_string(new_cpl) + ":ESP" + std::to_string(new_cpl) +
                  " from the TSS";
      LegacyStack st = legacy_stack_for(cpu, new_cpl, new_cpl, ext);
      load_legacy_stack(cpu, st);
    }
    load_cs(cpu, code, sel, new_cpl);
    ctx.stage = "pushing the interrupt frame at SS:ESP " + hex(s.seg[kSs].selector) + ":" +
                hex(s.gpr[kRsp]);
    if (inter) {
      cpu.push(old_ss.selector, size);
      cpu.push(old_rsp & mask(size), size);
    }
    cpu.push(flags_image & mask(size), size);
    cpu.push(old_cs, size);
    cpu.push(return_rip & mask(size), size);
    if (has_error) cpu.push(error & mask(size), size);
    if (target > s.seg[kCs].limit) {
      fail(ctx, "the handler offset " + hex(target) + " is beyond the code segment limit",
           vec::kGP, ext);
    }
  }
  s.rip = target;
  s.rflags &= ~(kTF | kNT | kRF | kVM);
  if (!trap_gate) s.rflags &= ~kIF;
  return new_cpl;
}

enum class Class { kBenign, kContributory, kPageFault };

Class class_of(uint8_t vector) {  // SDM table 6-4
  switch (vector) {
    case vec::kDE: case vec::kTS: case vec::kNP: case vec::kSS: case vec::kGP:
      return Class::kContributory;
    case vec::kPF: return Class::kPageFault;
    default: return Class::kBenign;
  }
}

// One delivery attempt: all or nothing (registers restored on a fault). Events after success.
void deliver_once(Cpu& cpu, uint8_t vector, EventSource source, bool has_error, uint32_t error,
                  uint64_t return_rip, DeliveryContext& ctx) {
  emit_exception(cpu, vector, source, has_error, error, return_rip);
  Transaction tx(cpu);
  const uint8_t from_cpl = cpu.cpl();
  ctx.stage.clear();
  uint8_t to_cpl = 0;
  if (real_mode(cpu)) {
    deliver_real(cpu, vector, return_rip, ctx);
  } else {
    to_cpl = deliver_protected(cpu, vector, source, has_error, error, return_rip, ctx);
  }
  tx.commit();
  if (to_cpl != from_cpl) {
    const RingCause cause = source == EventSource::kSoftware   ? RingCause::kSoftwareInt
                            : source == EventSource::kExternal ? RingCause::kInterrupt
                                                               : RingCause::kException;
    cpu.note_ring_transition(from_cpl, to_cpl, cause, vector);
  }
}

}  // namespace

void deliver(Cpu& cpu, uint8_t vector, EventSource source, bool has_error_code,
             uint32_t error_code, uint64_t return_rip) {
  DeliveryContext ctx;
  if (source == EventSource::kSoftware) {
    // INT n, INT3, INTO: a fault while delivering is an ordinary fault of the instruction
    // (table 6-5: the first event is not an exception), reported by the step loop.
    deliver_once(cpu, vector, source, has_error_code, error_code, return_rip, ctx);
    return;
  }
  std::string history = describe_event(vector, has_error_code, error_code) + " at rip " +
                        hex(cpu.fault_rip);
  for (int depth = 0;; ++depth) {
    try {
      deliver_once(cpu, vector, source, has_error_code, error_code, return_rip, ctx);
      return;
    } catch (const CpuFault& f) {
      const std::string second = describe_event(f.vector, f.has_error_code, f.error_code);
      const std::string why = ctx.stage.empty() ? std::string() : " (" + ctx.stage + ")";
      if (vector == vec::kDF || depth > 16) {
        throw TripleFault(second + " while delivering #DF" + why + "; events: " + history +
                          " -> " + second + " -> shutdown");
      }
      // SDM 6.15 table 6-5: contributory after contributory, or contributory/#PF after #PF,
      // becomes #DF (error code 0); otherwise the second exception is handled serially.
      const Class first = source == EventSource::kExternal ? Class::kBenign : class_of(vector);
      const Class next = class_of(f.vector);
      const bool dbl = (first == Class::kContributory && next == Class::kContributory) ||
                       (first == Class::kPageFault && next != Class::kBenign);
      history += " -> " + second + why;
      source = EventSource::kException;
      if (dbl) {
        vector = vec::kDF;
        has_error_code = true;
        error_code = 0;
        history += " -> #DF";
      } else {
        vector = f.vector;
        has_error_code = f.has_error_code;
        error_code = f.error_code;
      }
    }
  }
}

void Cpu::note_ring_transition(uint8_t from_cpl, uint8_t to_cpl, RingCause cause,
                               uint8_t vector) {
  if (!sink_) return;
  trace::RingTransitionEvent e{};
  e.header = trace::make_header<trace::RingTransitionEvent>(trace::EventType::kRingTransition);
  e.header.seq = next_seq();
  e.header.time_ns = event_time();
  e.header.rip = s.rip;
  e.header.cpl = to_cpl;
  e.header.cpu_mode = s.mode();
  e.from_cpl = from_cpl;
  e.to_cpl = to_cpl;
  e.cause = cause;
  e.vector = vector;
  e.from_rip = fault_rip;
  sink_->on_event(e.header);
}

// [SECTION] Data and stack segment loads (SDM 5.6, 5.7; Vol. 2 MOV Sreg, POP Sreg, LDS…)

void load_segment(Cpu& cpu, SegReg seg, uint16_t selector) {
  CpuState& s = cpu.s;
  if (seg == kCs) throw Unsupported("load_segment(CS): CS is loaded by far transfers only");
  if (real_mode(cpu)) return load_real(cpu, seg, selector);
  if (s.rflags & kVM) no_v86();
  const uint8_t cpl = cpu.cpl();
  const uint8_t rpl = selector & 3;
  const uint32_t err = selector & kSelectorMask;

  if ((selector & kSelectorMask) == 0) {
    if (seg == kSs) {
      // A null SS is allowed only in 64-bit mode at CPL < 3 with RPL = CPL (Vol. 2 MOV).
      if (!cpu.mode64() || cpl == 3 || rpl != cpl) raise(vec::kGP, 0);
      s.seg[kSs] = null_segment(selector, cpl);
      return;
    }
    s.seg[seg] = null_segment(selector, 0);  // a later use faults with #GP(0)
    return;
  }

  Descriptor d;
  if (!read_descriptor(cpu, selector, &d)) raise(vec::kGP, err);
  if (seg == kSs) {
    // SDM 5.7: RPL = CPL, writable data segment with DPL = CPL.
    if (rpl != cpl || !d.writable() || d.dpl() != cpl) raise(vec::kGP, err);
    if (!d.present()) raise(vec::kSS, err);
  } else {
    // SDM 5.6: a data or readable code segment; for data and non-conforming code the DPL
    // must be >= both CPL and RPL.
    if (!d.readable()) raise(vec::kGP, err);
    if (!d.conforming() && (d.dpl() < cpl || d.dpl() < rpl)) raise(vec::kGP, err);
    if (!d.present()) raise(vec::kNP, err);
  }
  mark_accessed(cpu, d);
  s.seg[seg] = segment_from(d, selector);
}

// [SECTION] Far transfers (SDM 5.8; Vol. 2 JMP, CALL, RET)

namespace {

enum class FarKind { kJmp, kCall };

void far_real(Cpu& cpu, FarKind kind, uint16_t selector, uint64_t offset, unsigned size) {
  CpuState& s = cpu.s;
  if (kind == FarKind::kCall) {
    cpu.push(s.seg[kCs].selector, size);
    cpu.push(s.rip & mask(size), size);
  }
  offset &= mask(size);
  if (offset > s.seg[kCs].limit) raise(vec::kGP, 0);  // the limit CS keeps (64 KiB normally)
  load_real(cpu, kCs, selector);
  s.rip = offset;
}

// Direct far jmp/call to a code segment, or through a call gate (SDM 5.8.1–5.8.6).
void far_transfer(Cpu& cpu, const Instruction& insn, FarKind kind, uint16_t selector,
                  uint64_t offset) {
  CpuState& s = cpu.s;
  const unsigned size = insn.operand_size / 8;
  Transaction tx(cpu);
  if (real_mode(cpu)) {
    far_real(cpu, kind, selector, offset, size);
    tx.commit();
    return;
  }
  if (s.rflags & kVM) no_v86();
  const bool long_mode = ia32e(cpu);
  const uint8_t cpl = cpu.cpl();
  const uint8_t rpl = selector & 3;
  const uint32_t err = selector & kSelectorMask;
  if (err == 0) raise(vec::kGP, 0);
  Descriptor d;
  if (!read_descriptor(cpu, selector, &d)) raise(vec::kGP, err);

  if (d.s()) {
    // A code segment: conforming needs DPL <= CPL; non-conforming RPL <= CPL and DPL = CPL.
    if (!d.code()) raise(vec::kGP, err);
    if (d.conforming() ? d.dpl() > cpl : (rpl > cpl || d.dpl() != cpl)) raise(vec::kGP, err);
    if (!d.present()) raise(vec::kNP, err);
    if (long_mode && d.l() && d.db()) raise(vec::kGP, err);
    const Segment target = segment_from(d, selector);
    const uint64_t rip = checked_target(target, long_mode, offset, size);
    if (kind == FarKind::kCall) {
      cpu.push(s.seg[kCs].selector, size);
      cpu.push(s.rip & mask(size), size);
    }
    load_cs(cpu, d, selector, cpl);
    s.rip = rip;
    tx.commit();
    return;
  }

  // A system descriptor: call gate, or task switch (not modelled).
  const uint8_t type = d.type();
  if (type == kTaskGate || type == kTss16Avail || type == kTss32Avail) {
    if (long_mode) raise(vec::kGP, err);
    throw Unsupported("far jmp/call to a TSS or task gate (hardware task switching)");
  }
  if (!(type == kCallGate32 || (!long_mode && type == kCallGate16))) raise(vec::kGP, err);
  if (d.dpl() < cpl || d.dpl() < rpl) raise(vec::kGP, err);
  if (!d.present()) raise(vec::kNP, err);
  if (long_mode) {
    // 64-bit call gates are 16 bytes; the upper type field must be 0 (SDM 5.8.3.1).
    if (!widen_descriptor(cpu, selector, &d)) raise(vec::kGP, err);
    if ((d.hi >> 40) & 0x1F) raise(vec::kGP, err);
  }
  const uint16_t csel = d.gate_selector();
  const uint32_t cerr = csel & kSelectorMask;
  if (cerr == 0) raise(vec::kGP, 0);
  Descriptor code;
  if (!read_descriptor(cpu, csel, &code)) raise(vec::kGP, cerr);
  if (!code.code() || code.dpl() > cpl) raise(vec::kGP, cerr);
  if (kind == FarKind::kJmp && !code.conforming() && code.dpl() != cpl) raise(vec::kGP, cerr);
  if (!code.present()) raise(vec::kNP, cerr);
  if (long_mode && (!code.l() || code.db())) raise(vec::kGP, cerr);

  const unsigned gate_size = long_mode ? 8 : (type == kCallGate32 ? 4 : 2);
  const uint64_t gate_offset =
      long_mode ? d.gate_offset64() : (gate_size == 4 ? d.gate_offset32() : d.lo & 0xFFFF);
  const Segment target_cs = segment_from(code, csel);
  const uint64_t rip = checked_target(target_cs, long_mode, gate_offset, gate_size);
  const uint16_t old_cs = s.seg[kCs].selector;
  const uint64_t old_rip = s.rip;

  if (kind == FarKind::kCall && !code.conforming() && code.dpl() < cpl) {
    // CALL-TO-MORE-PRIVILEGE (SDM 5.8.5, 5.8.6): switch to the stack of the new CPL.
    const uint8_t new_cpl = code.dpl();
    const uint16_t old_ss = s.seg[kSs].selector;
    const uint64_t old_rsp = s.gpr[kRsp];
    if (long_mode) {
      uint64_t rsp = tss64_rsp(cpu, new_cpl, 0);
      if (!canonical(rsp)) raise(vec::kSS, 0);
      s.seg[kSs] = null_segment(new_cpl, new_cpl);
      load_cs(cpu, code, csel, new_cpl);
      s.gpr[kRsp] = rsp;
      cpu.push(old_ss, 8);
      cpu.push(old_rsp, 8);
      cpu.push(old_cs, 8);
      cpu.push(old_rip, 8);
    } else {
      // Copy the gate's parameter count of words/dwords from the caller's stack.
      const unsigned count = d.gate_params();
      uint64_t params[32];
      const unsigned old_as = cpu.stack_address_size();
      for (unsigned i = 0; i < count; ++i) {
        params[i] = cpu.read(kSs, (old_rsp + i * gate_size) & mask(old_as), gate_size);
      }
      LegacyStack st = legacy_stack_for(cpu, new_cpl, new_cpl, 0);
      load_legacy_stack(cpu, st);
      load_cs(cpu, code, csel, new_cpl);
      cpu.push(old_ss, gate_size);
      cpu.push(old_rsp & mask(gate_size), gate_size);
      for (unsigned i = count; i-- > 0;) cpu.push(params[i], gate_size);
      cpu.push(old_cs, gate_size);
      cpu.push(old_rip & mask(gate_size), gate_size);
    }
    s.rip = rip;
    tx.commit();
    cpu.note_ring_transition(cpl, new_cpl, RingCause::kFarCall, 0);
    return;
  }
  if (kind == FarKind::kCall) {
    cpu.push(old_cs, gate_size);
    cpu.push(old_rip & mask(gate_size), gate_size);
  }
  load_cs(cpu, code, csel, cpl);
  s.rip = rip;
  tx.commit();
}

// The far pointer operand of jmp/call far: ptr16:16/32 immediate or m16:16/32/64.
void far_operand(Cpu& cpu, const Instruction& insn, uint16_t* selector, uint64_t* offset) {
  const Operand& op = insn.ops[0];
  if (op.kind == OperandKind::kFarPtr) {
    *selector = op.far_selector;
    *offset = op.imm;
    return;
  }
  if (op.kind != OperandKind::kMem) raise(vec::kUD);
  const unsigned size = insn.operand_size / 8;
  const uint64_t ea = cpu.effective_address(insn, op);
  const SegReg seg = static_cast<SegReg>(op.seg);
  *offset = cpu.read(seg, ea, size);
  *selector = static_cast<uint16_t>(cpu.read(seg, (ea + size) & mask(insn.address_size / 8), 2));
}

// The new SS of a far return or iret to an outer level (or of iretq in 64-bit mode): checks
// per Vol. 2 RET/IRET; a null SS is allowed only when returning to 64-bit code at RPL < 3.
void load_return_ss(Cpu& cpu, uint16_t ss_sel, uint8_t new_cpl, bool to_64bit) {
  const uint32_t err = ss_sel & kSelectorMask;
  if (err == 0) {
    if (!to_64bit || new_cpl == 3 || (ss_sel & 3) != new_cpl) raise(vec::kGP, 0);
    cpu.s.seg[kSs] = null_segment(ss_sel, new_cpl);
    return;
  }
  Descriptor d;
  if (!read_descriptor(cpu, ss_sel, &d)) raise(vec::kGP, err);
  if ((ss_sel & 3) != new_cpl || !d.writable() || d.dpl() != new_cpl) raise(vec::kGP, err);
  if (!d.present()) raise(vec::kSS, err);
  mark_accessed(cpu, d);
  cpu.s.seg[kSs] = segment_from(d, ss_sel);
}

// Checks of the CS popped by RET/IRET (Vol. 2 RET "PROTECTED-MODE"): returns its descriptor.
Descriptor check_return_cs(Cpu& cpu, uint16_t csel, uint8_t cpl) {
  const uint32_t err = csel & kSelectorMask;
  const uint8_t rpl = csel & 3;
  if (err == 0) raise(vec::kGP, 0);
  Descriptor d;
  if (!read_descriptor(cpu, csel, &d)) raise(vec::kGP, err);
  if (!d.code() || rpl < cpl) raise(vec::kGP, err);
  if (d.conforming() ? d.dpl() > rpl : d.dpl() != rpl) raise(vec::kGP, err);
  if (!d.present()) raise(vec::kNP, err);
  if (ia32e(cpu) && d.l() && d.db()) raise(vec::kGP, err);
  return d;
}

}  // namespace

void exec_kJmpFar(Cpu& cpu, const Instruction& insn) {
  uint16_t selector;
  uint64_t offset;
  far_operand(cpu, insn, &selector, &offset);
  far_transfer(cpu, insn, FarKind::kJmp, selector, offset);
}

void exec_kCallFar(Cpu& cpu, const Instruction& insn) {
  uint16_t selector;
  uint64_t offset;
  far_operand(cpu, insn, &selector, &offset);
  far_transfer(cpu, insn, FarKind::kCall, selector, offset);
}

void exec_kRetFar(Cpu& cpu, const Instruction& insn) {
  CpuState& s = cpu.s;
  const unsigned size = insn.operand_size / 8;
  const uint64_t imm =
      insn.operand_count > 0 && insn.ops[0].kind == OperandKind::kImm ? insn.ops[0].imm & 0xFFFF : 0;
  Transaction tx(cpu);
  const uint64_t ip = cpu.pop(size);
  const uint16_t csel = static_cast<uint16_t>(cpu.pop(size));
  if (real_mode(cpu)) {
    if ((ip & mask(size)) > s.seg[kCs].limit) raise(vec::kGP, 0);
    load_real(cpu, kCs, csel);
    s.rip = ip & mask(size);
    add_sp(cpu, imm);
    tx.commit();
    return;
  }
  if (s.rflags & kVM) no_v86();
  const uint8_t cpl = cpu.cpl();
  const uint8_t rpl = csel & 3;
  Descriptor d = check_return_cs(cpu, csel, cpl);
  const bool long_mode = ia32e(cpu);
  const uint64_t rip = checked_target(segment_from(d, csel), long_mode, ip, size);
  if (rpl == cpl) {
    add_sp(cpu, imm);
    load_cs(cpu, d, csel, cpl);
    s.rip = rip;
    tx.commit();
    return;
  }
  // RETURN-TO-OUTER-PRIVILEGE-LEVEL: skip the parameters, pop SS:(E/R)SP of the caller.
  add_sp(cpu, imm);
  const uint64_t new_sp = cpu.pop(size);
  const uint16_t ss_sel = static_cast<uint16_t>(cpu.pop(size));
  load_cs(cpu, d, csel, rpl);
  load_return_ss(cpu, ss_sel, rpl, long_mode && d.l());
  set_sp(cpu, new_sp, cpu.mode64() ? 8 : size);
  add_sp(cpu, imm);
  s.rip = rip;
  clear_inaccessible_segments(cpu, rpl);
  tx.commit();
  cpu.note_ring_transition(cpl, rpl, RingCause::kFarReturn, 0);
}

// [SECTION] Segment registers

void exec_kMovToSeg(Cpu& cpu, const Instruction& insn) {
  const SegReg seg = static_cast<SegReg>(insn.ops[0].reg);
  if (seg == kCs || seg >= kSegCount) raise(vec::kUD);  // mov cs, r/m is invalid
  const uint16_t selector = static_cast<uint16_t>(cpu.read_op(insn, 1));
  load_segment(cpu, seg, selector);
  // mov ss blocks interrupts and debug traps for one instruction: no effect here.
}

void exec_kMovFromSeg(Cpu& cpu, const Instruction& insn) {
  // Register destinations are zero-extended to the operand size; memory gets 16 bits.
  cpu.write_op(insn, 0, cpu.s.seg[insn.ops[1].reg].selector);
}

void exec_kLoadFarPointer(Cpu& cpu, const Instruction& insn) {
  const SegReg seg = static_cast<SegReg>(insn.cc);
  const Operand& mem = insn.ops[1];
  if (mem.kind != OperandKind::kMem) raise(vec::kUD);
  const unsigned size = insn.ops[0].size;
  const uint64_t ea = cpu.effective_address(insn, mem);
  const SegReg ms = static_cast<SegReg>(mem.seg);
  const uint64_t offset = cpu.read(ms, ea, size);
  const uint16_t selector =
      static_cast<uint16_t>(cpu.read(ms, (ea + size) & mask(insn.address_size / 8), 2));
  Transaction tx(cpu);
  load_segment(cpu, seg, selector);
  cpu.write_op(insn, 0, offset);
  tx.commit();
}

// [SECTION] Descriptor-table registers (Vol. 2 LGDT/LIDT, SGDT/SIDT, LLDT, SLDT, LTR, STR)

namespace {

void load_table_register(Cpu& cpu, const Instruction& insn, DescriptorTable* reg) {
  require_cpl0(cpu);
  const Operand& op = insn.ops[0];
  if (op.kind != OperandKind::kMem) raise(vec::kUD);
  const uint64_t ea = cpu.effective_address(insn, op);
  const SegReg seg = static_cast<SegReg>(op.seg);
  const uint64_t am = mask(insn.address_size / 8);
  const uint16_t limit = static_cast<uint16_t>(cpu.read(seg, ea, 2));
  uint64_t base;
  if (cpu.mode64()) {
    base = cpu.read(seg, (ea + 2) & am, 8);  // 10-byte operand
    if (!canonical(base)) raise(vec::kGP, 0);
  } else {
    base = cpu.read(seg, (ea + 2) & am, 4);  // 6-byte operand: 24-bit base with o16
    if (insn.operand_size == 16) base &= 0xFFFFFF;
  }
  reg->base = base;
  reg->limit = limit;
}

// SGDT, SIDT, SLDT, STR, SMSW: not privileged (the Popek–Goldberg "sensitive but
// unprivileged" instructions) unless CR4.UMIP is set, which makes them #GP(0) at CPL > 0.
void check_umip(const Cpu& cpu) {
  if ((cpu.s.cr4 & kCr4Umip) && cpu.cpl() > 0) raise(vec::kGP, 0);
}

void store_table_register(Cpu& cpu, const Instruction& insn, const DescriptorTable& reg) {
  check_umip(cpu);
  const Operand& op = insn.ops[0];
  if (op.kind != OperandKind::kMem) raise(vec::kUD);
  const uint64_t ea = cpu.effective_address(insn, op);
  const SegReg seg = static_cast<SegReg>(op.seg);
  const uint64_t am = mask(insn.address_size / 8);
  const unsigned base_size = cpu.mode64() ? 8 : 4;  // the full 32-bit base even with o16
  // Check both parts before writing either (a fault leaves memory unchanged).
  cpu.linear_address(seg, ea, 2 + base_size, Access::kWrite);
  cpu.write(seg, ea, 2, reg.limit);
  cpu.write(seg, (ea + 2) & am, base_size, reg.base & mask(base_size));
}

}  // namespace

void exec_kLgdt(Cpu& cpu, const Instruction& insn) { load_table_register(cpu, insn, &cpu.s.gdtr); }
void exec_kLidt(Cpu& cpu, const Instruction& insn) { load_table_register(cpu, insn, &cpu.s.idtr); }
void exec_kSgdt(Cpu& cpu, const Instruction& insn) { store_table_register(cpu, insn, cpu.s.gdtr); }
void exec_kSidt(Cpu& cpu, const Instruction& insn) { store_table_register(cpu, insn, cpu.s.idtr); }

void exec_kLldt(Cpu& cpu, const Instruction& insn) {
  require_protected(cpu);
  require_cpl0(cpu);
  const uint16_t selector = static_cast<uint16_t>(cpu.read_op(insn, 0));
  const uint32_t err = selector & kSelectorMask;
  if (err == 0) {  // a null LDT: later LDT references fault
    cpu.s.ldtr = null_segment(selector, 0);
    cpu.s.ldtr.s = 0;
    cpu.s.ldtr.type = kLdt;
    return;
  }
  if (selector & 4) raise(vec::kGP, err);  // must be in the GDT
  Descriptor d;
  if (!read_descriptor(cpu, selector, &d, ia32e(cpu) ? 16 : 8)) raise(vec::kGP, err);
  if (d.s() || d.type() != kLdt) raise(vec::kGP, err);
  if (!d.present()) raise(vec::kNP, err);
  cpu.s.ldtr = segment_from(d, selector);
  if (!ia32e(cpu)) cpu.s.ldtr.base &= 0xFFFFFFFFull;
}

void exec_kSldt(Cpu& cpu, const Instruction& insn) {
  require_protected(cpu);
  check_umip(cpu);
  cpu.write_op(insn, 0, cpu.s.ldtr.selector);
}

void exec_kLtr(Cpu& cpu, const Instruction& insn) {
  require_protected(cpu);
  require_cpl0(cpu);
  const uint16_t selector = static_cast<uint16_t>(cpu.read_op(insn, 0));
  const uint32_t err = selector & kSelectorMask;
  if (err == 0) raise(vec::kGP, 0);
  if (selector & 4) raise(vec::kGP, err);
  const bool long_mode = ia32e(cpu);
  Descriptor d;
  if (!read_descriptor(cpu, selector, &d, long_mode ? 16 : 8)) raise(vec::kGP, err);
  // An available TSS: 32/64-bit (type 9) — or 16-bit (type 1) outside IA-32e mode.
  if (d.s() || !(d.type() == kTss32Avail || (!long_mode && d.type() == kTss16Avail))) {
    raise(vec::kGP, err);
  }
  if (!d.present()) raise(vec::kNP, err);
  if (long_mode && !canonical(d.base64())) raise(vec::kGP, err);
  // Mark it busy in the GDT (type bit 1), then load TR.
  d.lo |= 2ull << 40;
  cpu.write_system(d.address + 5, 1, (d.lo >> 40) & 0xFF);
  cpu.s.tr = segment_from(d, selector);
  if (!long_mode) cpu.s.tr.base &= 0xFFFFFFFFull;
}

void exec_kStr(Cpu& cpu, const Instruction& insn) {
  require_protected(cpu);
  check_umip(cpu);
  cpu.write_op(insn, 0, cpu.s.tr.selector);
}

// [SECTION] Control registers (SDM 2.5, 2.2.1, 9.8.5 (IA-32e activation), 4.10.4 (TLB
// invalidation); Vol. 2 MOV CR, LMSW, SMSW, CLTS)

namespace {

constexpr uint64_t kCr0Writable = kCr0Pe | kCr0Mp | kCr0Em | kCr0Ts | kCr0Et | kCr0Ne | kCr0Wp |
                                  kCr0Am | kCr0Nw | kCr0Cd | kCr0Pg;
// CR4 bits the model implements (and CPUID advertises): TSD, PSE, PAE, PGE, UMIP.
constexpr uint64_t kCr4Writable = kCr4Tsd | kCr4Pse | kCr4Pae | kCr4Pge | kCr4Umip;

void write_cr0(Cpu& cpu, uint64_t value) {
  CpuState& s = cpu.s;
  if (value >> 32) raise(vec::kGP, 0);
  value = (value & kCr0Writable) | kCr0Et;  // other bits of 31:0 are ignored; ET is fixed 1
  if ((value & kCr0Pg) && !(value & kCr0Pe)) raise(vec::kGP, 0);
  if ((value & kCr0Nw) && !(value & kCr0Cd)) raise(vec::kGP, 0);
  const bool pg_on = (value & kCr0Pg) && !(s.cr0 & kCr0Pg);
  const bool pg_off = !(value & kCr0Pg) && (s.cr0 & kCr0Pg);
  uint64_t efer = s.efer;
  if (pg_on && (s.efer & kEferLme)) {
    // Activating IA-32e mode (SDM 9.8.5): needs CR4.PAE and a non-64-bit CS.
    if (!(s.cr4 & kCr4Pae) || s.seg[kCs].l) raise(vec::kGP, 0);
    efer |= kEferLma;
  }
  if (pg_off && (s.efer & kEferLma)) {
    if (cpu.mode64()) raise(vec::kGP, 0);  // leave 64-bit mode first (compatibility mode)
    efer &= ~kEferLma;
  }
  const uint64_t changed = value ^ s.cr0;
  s.cr0 = value;
  s.efer = efer;
  if (changed & (kCr0Pg | kCr0Pe | kCr0Wp)) cpu.flush_tlb();
}

void write_cr3(Cpu& cpu, uint64_t value) {
  if (cpu.s.long_mode_active() && (value >> 52)) raise(vec::kGP, 0);  // reserved bits
  cpu.s.cr3 = cpu.s.long_mode_active() ? value : value & 0xFFFFFFFFull;
  mmu_cr3_written(cpu);  // no PCIDs: every non-global TLB entry (SDM 4.10.4.1)
}

void write_cr4(Cpu& cpu, uint64_t value) {
  CpuState& s = cpu.s;
  if (value & ~kCr4Writable) raise(vec::kGP, 0);
  if (s.long_mode_active() && !(value & kCr4Pae)) raise(vec::kGP, 0);
  const uint64_t changed = value ^ s.cr4;
  s.cr4 = value;
  if (changed & (kCr4Pge | kCr4Pae | kCr4Pse)) cpu.flush_tlb();
}

}  // namespace

void exec_kMovCr(Cpu& cpu, const Instruction& insn) {
  const bool to_cr = insn.ops[0].kind == OperandKind::kReg && insn.ops[0].reg_class == RegClass::kCr;
  const Operand& cr = to_cr ? insn.ops[0] : insn.ops[1];
  const Operand& gpr = to_cr ? insn.ops[1] : insn.ops[0];
  const unsigned n = cr.reg;
  if (n != 0 && n != 2 && n != 3 && n != 4 && n != 8) raise(vec::kUD);
  if (n == 8 && !cpu.mode64()) raise(vec::kUD);
  require_cpl0(cpu);
  CpuState& s = cpu.s;
  if (!to_cr) {
    uint64_t v = 0;
    switch (n) {
      case 0: v = s.cr0; break;
      case 2: v = s.cr2; break;
      case 3: v = s.cr3; break;
      case 4: v = s.cr4; break;
      default: v = s.cr8 & 0xF; break;
    }
    cpu.set_gpr(gpr.reg, gpr.size, v);
    return;
  }
  const uint64_t v = cpu.gpr(gpr.reg, gpr.size);
  switch (n) {
    case 0: write_cr0(cpu, v); break;
    case 2: s.cr2 = v; break;
    case 3: write_cr3(cpu, v); break;
    case 4: write_cr4(cpu, v); break;
    default:
      if (v >> 4) raise(vec::kGP, 0);
      s.cr8 = v;
      break;
  }
}

void exec_kMovDr(Cpu& cpu, const Instruction& insn) {
  // Debug registers are stored but breakpoints are not modelled. DR4/DR5 alias DR6/DR7
  // (CR4.DE is not supported, SDM 17.2.2).
  const bool to_dr = insn.ops[0].kind == OperandKind::kReg && insn.ops[0].reg_class == RegClass::kDr;
  const Operand& dr = to_dr ? insn.ops[0] : insn.ops[1];
  const Operand& gpr = to_dr ? insn.ops[1] : insn.ops[0];
  unsigned n = dr.reg;
  if (n > 7) raise(vec::kUD);
  require_cpl0(cpu);
  if (n == 4 || n == 5) n += 2;
  CpuState& s = cpu.s;
  if (!to_dr) {
    cpu.set_gpr(gpr.reg, gpr.size, s.dr[n]);
    return;
  }
  uint64_t v = cpu.gpr(gpr.reg, gpr.size);
  if ((n == 6 || n == 7) && (v >> 32)) raise(vec::kGP, 0);
  if (n == 6) v = (v | 0xFFFF0FF0ull) & ~(1ull << 12);
  if (n == 7) v = (v | 0x400) & ~((1ull << 12) | (1ull << 14) | (1ull << 15));
  s.dr[n] = v;
}

void exec_kSmsw(Cpu& cpu, const Instruction& insn) {
  check_umip(cpu);
  const Operand& op = insn.ops[0];
  const unsigned size = op.kind == OperandKind::kMem ? 2 : op.size;
  cpu.write_op(insn, 0, cpu.s.cr0 & mask(size));
}

void exec_kLmsw(Cpu& cpu, const Instruction& insn) {
  require_cpl0(cpu);
  // Loads PE, MP, EM, TS; can set PE but not clear it.
  const uint64_t v = cpu.read_op(insn, 0) & 0xF;
  const uint64_t cr0 = cpu.s.cr0;
  const uint64_t next = (cr0 & ~0xEull) | (v & 0xE) | ((v | cr0) & kCr0Pe);
  write_cr0(cpu, next);
}

void exec_kClts(Cpu& cpu, const Instruction&) {
  require_cpl0(cpu);
  cpu.s.cr0 &= ~kCr0Ts;
}

void exec_kInvlpg(Cpu& cpu, const Instruction& insn) {
  require_cpl0(cpu);
  const Operand& op = insn.ops[0];
  if (op.kind != OperandKind::kMem) raise(vec::kUD);
  const uint64_t ea = cpu.effective_address(insn, op);
  const SegReg seg = static_cast<SegReg>(op.seg);
  uint64_t la;
  if (cpu.mode64()) {
    la = ea + ((seg == kFs || seg == kGs) ? cpu.s.seg[seg].base : 0);
    if (!canonical(la)) return;  // a non-canonical address invalidates nothing (no fault)
  } else {
    la = (cpu.s.seg[seg].base + ea) & 0xFFFFFFFFull;
  }
  mmu_invlpg(cpu, la);
}

// [SECTION] MSRs (SDM 2.2.1 EFER; Vol. 4 table 2-2; Vol. 2 RDMSR/WRMSR)

void exec_kRdmsr(Cpu& cpu, const Instruction&) {
  require_cpl0(cpu);
  const CpuState& s = cpu.s;
  const uint32_t msr = static_cast<uint32_t>(cpu.gpr(kRcx, 4));
  uint64_t v;
  switch (msr) {
    case kMsrEfer: v = s.efer; break;
    case kMsrStar: v = s.star; break;
    case kMsrLstar: v = s.lstar; break;
    case kMsrCstar: v = s.cstar; break;
    case kMsrFmask: v = s.fmask; break;
    case kMsrFsBase: v = s.seg[kFs].base; break;
    case kMsrGsBase: v = s.seg[kGs].base; break;
    case kMsrKernelGsBase: v = s.kernel_gs_base; break;
    case kMsrTsc: v = s.tsc; break;
    default: raise(vec::kGP, 0);
  }
  cpu.set_gpr(kRax, 4, v & 0xFFFFFFFFull);
  cpu.set_gpr(kRdx, 4, v >> 32);
}

void exec_kWrmsr(Cpu& cpu, const Instruction&) {
  require_cpl0(cpu);
  CpuState& s = cpu.s;
  const uint32_t msr = static_cast<uint32_t>(cpu.gpr(kRcx, 4));
  const uint64_t v = (cpu.gpr(kRdx, 4) << 32) | cpu.gpr(kRax, 4);
  auto need_canonical = [](uint64_t a) {
    if (!canonical(a)) raise(vec::kGP, 0);
  };
  switch (msr) {
    case kMsrEfer: {
      if (v & ~(kEferSce | kEferLme | kEferLma | kEferNxe)) raise(vec::kGP, 0);
      // LME may not change while paging is on; LMA is read-only (SDM 9.8.5).
      if ((s.cr0 & kCr0Pg) && ((v ^ s.efer) & kEferLme)) raise(vec::kGP, 0);
      const uint64_t next = (v & ~kEferLma) | (s.efer & kEferLma);
      if ((next ^ s.efer) & kEferNxe) cpu.flush_tlb();  // cached rights depend on NXE
      s.efer = next;
      break;
    }
    case kMsrStar: s.star = v; break;
    case kMsrLstar: need_canonical(v); s.lstar = v; break;
    case kMsrCstar: need_canonical(v); s.cstar = v; break;
    case kMsrFmask: s.fmask = v & 0xFFFFFFFFull; break;
    case kMsrFsBase: need_canonical(v); s.seg[kFs].base = v; break;
    case kMsrGsBase: need_canonical(v); s.seg[kGs].base = v; break;
    case kMsrKernelGsBase: need_canonical(v); s.kernel_gs_base = v; break;
    case kMsrTsc: s.tsc = v; break;
    default: raise(vec::kGP, 0);
  }
}

// [SECTION] CPUID: a fixed table (the model's identity; deterministic on every host).
//
//   leaf 0           max basic leaf 7, vendor "TrapScopeSim" (EBX, EDX, ECX)
//   leaf 1           EAX 0x00000600 (family 6, model 0, stepping 0); EBX 0; ECX 0;
//                    EDX = PSE(3) TSC(4) MSR(5) PAE(6) PGE(13) CMOV(15) PSE-36(17)
//                    (no FPU, no CX8, no APIC, no SEP, no MMX/SSE: not implemented)
//   leaf 7 subleaf 0 EBX 0, ECX = UMIP(2), EDX 0
//   leaves 2–6       zero
//   0x80000000       max extended leaf 0x80000008
//   0x80000001       ECX = LAHF/SAHF in 64-bit mode(0); EDX = SYSCALL(11) NX(20) LM(29)
//   0x80000002–4     brand string "TrapScope deterministic x86-64 simulator"
//   0x80000008       EAX 0x3024 (36 physical, 48 linear address bits)
// Other leaves: as Intel, the data of the highest basic leaf (SDM Vol. 2 CPUID).

namespace {

struct CpuidResult {
  uint32_t a, b, c, d;
};

constexpr uint32_t chars(const char* p) {
  return static_cast<uint32_t>(static_cast<uint8_t>(p[0])) |
         static_cast<uint32_t>(static_cast<uint8_t>(p[1])) << 8 |
         static_cast<uint32_t>(static_cast<uint8_t>(p[2])) << 16 |
         static_cast<uint32_t>(static_cast<uint8_t>(p[3])) << 24;
}

CpuidResult cpuid(uint32_t leaf, uint32_t subleaf) {
  constexpr uint32_t kMaxBasic = 7, kMaxExtended = 0x80000008;
  if ((leaf > kMaxBasic && leaf < 0x80000000) || leaf > kMaxExtended) leaf = kMaxBasic;
  static const char kBrand[49] = "TrapScope deterministic x86-64 simulator";
  switch (leaf) {
    case 0: return {kMaxBasic, chars("Trap"), chars("eSim"), chars("Scop")};
    case 1: {
      constexpr uint32_t edx = (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 13) |
                               (1u << 15) | (1u << 17);
      return {0x00000600, 0, 0, edx};
    }
    case 7: return subleaf == 0 ? CpuidResult{0, 0, 1u << 2, 0} : CpuidResult{0, 0, 0, 0};
    case 0x80000000: return {kMaxExtended, 0, 0, 0};
    case 0x80000001: return {0, 0, 1u << 0, (1u << 11) | (1u << 20) | (1u << 29)};
    case 0x80000002: case 0x80000003: case 0x80000004: {
      const char* p = kBrand + 16 * (leaf - 0x80000002);
      return {chars(p), chars(p + 4), chars(p + 8), chars(p + 12)};
    }
    case 0x80000008: return {0x3024, 0, 0, 0};
    default: return {0, 0, 0, 0};
  }
}

}  // namespace

void exec_kCpuid(Cpu& cpu, const Instruction&) {
  const CpuidResult r =
      cpuid(static_cast<uint32_t>(cpu.gpr(kRax, 4)), static_cast<uint32_t>(cpu.gpr(kRcx, 4)));
  cpu.set_gpr(kRax, 4, r.a);
  cpu.set_gpr(kRbx, 4, r.b);
  cpu.set_gpr(kRcx, 4, r.c);
  cpu.set_gpr(kRdx, 4, r.d);
}

void exec_kRdtsc(Cpu& cpu, const Instruction&) {
  if ((cpu.s.cr4 & kCr4Tsd) && cpu.protected_mode() && cpu.cpl() > 0) raise(vec::kGP, 0);
  cpu.set_gpr(kRax, 4, cpu.s.tsc & 0xFFFFFFFFull);
  cpu.set_gpr(kRdx, 4, cpu.s.tsc >> 32);
}

// [SECTION] Interrupt flag and halt (SDM 6.8.1; Vol. 2 CLI, STI, HLT)

void exec_kCli(Cpu& cpu, const Instruction&) {
  if (cpu.s.rflags & kVM) no_v86();
  if (cpu.protected_mode() && cpu.cpl() > iopl(cpu)) raise(vec::kGP, 0);
  cpu.set_flag(kIF, false);
}

void exec_kSti(Cpu& cpu, const Instruction&) {
  if (cpu.s.rflags & kVM) no_v86();
  if (cpu.protected_mode() && cpu.cpl() > iopl(cpu)) raise(vec::kGP, 0);
  cpu.set_flag(kIF, true);  // the one-instruction interrupt shadow has no effect here
}

void exec_kHlt(Cpu& cpu, const Instruction&) {
  require_cpl0(cpu);
  cpu.record_exit_hlt();
}

// [SECTION] IRET (Vol. 2 IRET/IRETD/IRETQ; SDM 6.12.1, 6.14.3)

namespace {

// EFLAGS from the popped image (Vol. 2 IRET, POPF): IF only if CPL <= IOPL, IOPL (and VIF/VIP)
// only at CPL 0, with the CPL before the return; a 16-bit image only changes bits 15:0.
uint64_t iret_flags(uint64_t current, uint64_t image, unsigned size, uint8_t cpl, uint8_t iopl_now) {
  uint64_t changeable = kArithFlags | kTF | kDF | kNT;
  if (size >= 4) changeable |= kRF | kAC | kID;
  if (cpl <= iopl_now) changeable |= kIF;
  if (cpl == 0) {
    changeable |= kIOPL;
    if (size >= 4) changeable |= kVIF | kVIP;
  }
  if (size == 2) changeable &= 0xFFFF;
  return ((current & ~changeable) | (image & changeable)) | 0x2;
}

}  // namespace

void exec_kIret(Cpu& cpu, const Instruction& insn) {
  CpuState& s = cpu.s;
  const unsigned size = insn.operand_size / 8;
  Transaction tx(cpu);
  if (real_mode(cpu)) {
    const uint64_t ip = cpu.pop(size);
    const uint16_t csel = static_cast<uint16_t>(cpu.pop(size));
    const uint64_t fl = cpu.pop(size);
    if ((ip & mask(size)) > s.seg[kCs].limit) raise(vec::kGP, 0);
    load_real(cpu, kCs, csel);
    s.rip = ip & mask(size);
    if (size == 2) {
      s.rflags = (s.rflags & ~0xFFFFull) | (fl & 0x7FD5) | 0x2;
    } else {
      // tempEFLAGS AND 257FD5H OR (EFLAGS AND 1A0000H): VM, VIF, VIP keep their values.
      s.rflags = (fl & 0x257FD5) | (s.rflags & 0x1A0000) | 0x2;
    }
    tx.commit();
    return;
  }
  if (s.rflags & kVM) no_v86();
  const bool long_mode = ia32e(cpu);
  if (s.rflags & kNT) {
    if (long_mode) raise(vec::kGP, 0);
    throw Unsupported("iret with NT=1 (return from a nested task)");
  }
  const uint8_t cpl = cpu.cpl();
  const bool from_64 = cpu.mode64();
  const uint64_t ip = cpu.pop(size);
  const uint16_t csel = static_cast<uint16_t>(cpu.pop(size));
  const uint64_t fl = cpu.pop(size);
  if ((fl & kVM) && cpl == 0 && !long_mode && size == 4) {
    throw Unsupported("iret to virtual-8086 mode");
  }
  Descriptor d = check_return_cs(cpu, csel, cpl);
  const uint8_t rpl = csel & 3;
  const bool to_64 = long_mode && d.l();
  const uint64_t rip = checked_target(segment_from(d, csel), long_mode, ip, size);
  // 64-bit mode always pops SS:RSP; otherwise only on a return to an outer level.
  const bool pop_stack = from_64 || rpl > cpl;
  uint64_t new_sp = 0;
  uint16_t ss_sel = 0;
  if (pop_stack) {
    new_sp = cpu.pop(size);
    ss_sel = static_cast<uint16_t>(cpu.pop(size));
  }
  const uint64_t flags = iret_flags(s.rflags, fl, size, cpl, iopl(cpu));
  load_cs(cpu, d, csel, rpl);
  if (pop_stack) {
    load_return_ss(cpu, ss_sel, rpl, to_64);
    set_sp(cpu, new_sp, to_64 ? 8 : size);
  }
  s.rip = rip;
  s.rflags = flags;
  if (rpl > cpl) clear_inaccessible_segments(cpu, rpl);
  tx.commit();
  if (rpl != cpl) cpu.note_ring_transition(cpl, rpl, RingCause::kIret, 0);
}

// [SECTION] Software interrupts (SDM 6.4.2; Vol. 2 INT n/INTO/INT3)

void exec_kInt(Cpu& cpu, const Instruction& insn) {
  if (cpu.s.rflags & kVM) no_v86();
  const uint8_t vector = static_cast<uint8_t>(insn.ops[0].imm);
  deliver(cpu, vector, EventSource::kSoftware, false, 0, cpu.s.rip);
}

void exec_kInt3(Cpu& cpu, const Instruction&) {
  if (cpu.s.rflags & kVM) no_v86();
  deliver(cpu, vec::kBP, EventSource::kSoftware, false, 0, cpu.s.rip);
}

void exec_kInto(Cpu& cpu, const Instruction&) {
  if (cpu.mode64()) raise(vec::kUD);
  if (cpu.s.rflags & kVM) no_v86();
  if (cpu.flag(kOF)) deliver(cpu, vec::kOF, EventSource::kSoftware, false, 0, cpu.s.rip);
}

// [SECTION] SYSCALL, SYSRET, SWAPGS (SDM 5.8.8; Vol. 2)

void exec_kSyscall(Cpu& cpu, const Instruction&) {
  CpuState& s = cpu.s;
  if (!cpu.mode64() || !(s.efer & kEferSce)) raise(vec::kUD);
  const uint8_t from = cpu.cpl();
  const uint16_t sel = static_cast<uint16_t>(s.star >> 32);
  s.gpr[kRcx] = s.rip;
  s.gpr[kR11] = s.rflags & ~kRF;
  s.rip = s.lstar;
  s.rflags = (s.rflags & ~(s.fmask | kRF)) | 0x2;
  // Flat 64-bit CS and flat SS, DPL 0 (fixed values, not read from the GDT).
  Segment cs;
  cs.selector = sel & kSelectorMask;
  cs.base = 0;
  cs.limit = 0xFFFFFFFF;
  cs.type = 0xB;
  cs.s = 1;
  cs.dpl = 0;
  cs.present = 1;
  cs.l = 1;
  cs.db = 0;
  cs.g = 1;
  Segment ss = cs;
  ss.selector = static_cast<uint16_t>((sel + 8) & kSelectorMask);
  ss.type = 0x3;
  ss.l = 0;
  ss.db = 1;
  s.seg[kCs] = cs;
  s.seg[kSs] = ss;
  if (from != 0) cpu.note_ring_transition(from, 0, RingCause::kSyscall, 0);
}

void exec_kSysret(Cpu& cpu, const Instruction& insn) {
  CpuState& s = cpu.s;
  if (!cpu.mode64() || !(s.efer & kEferSce)) raise(vec::kUD);
  require_cpl0(cpu);
  const bool to_64 = insn.operand_size == 64;
  const uint16_t sel = static_cast<uint16_t>(s.star >> 48);
  uint64_t rip;
  if (to_64) {
    rip = s.gpr[kRcx];
    if (!canonical(rip)) raise(vec::kGP, 0);
  } else {
    rip = s.gpr[kRcx] & 0xFFFFFFFFull;
  }
  Segment cs;
  cs.selector = static_cast<uint16_t>((to_64 ? sel + 16 : sel) | 3);
  cs.base = 0;
  cs.limit = 0xFFFFFFFF;
  cs.type = 0xB;
  cs.s = 1;
  cs.dpl = 3;
  cs.present = 1;
  cs.l = to_64;
  cs.db = !to_64;
  cs.g = 1;
  Segment ss = cs;
  ss.selector = static_cast<uint16_t>((sel + 8) | 3);
  ss.type = 0x3;
  ss.l = 0;
  ss.db = 1;
  s.rflags = (s.gpr[kR11] & 0x3C7FD7) | 0x2;
  s.seg[kCs] = cs;
  s.seg[kSs] = ss;
  s.rip = rip;
  cpu.note_ring_transition(0, 3, RingCause::kSysret, 0);
}

void exec_kSwapgs(Cpu& cpu, const Instruction&) {
  if (!cpu.mode64()) raise(vec::kUD);
  require_cpl0(cpu);
  std::swap(cpu.s.seg[kGs].base, cpu.s.kernel_gs_base);
}

// [SECTION] LAR, LSL, VERR, VERW (Vol. 2): ZF says whether the segment is visible at the
// current CPL and the selector's RPL; they never fault on a bad selector.

namespace {

// Reads the descriptor for LAR/LSL/VERR/VERW; false (ZF = 0) if null or outside the table.
bool probe(Cpu& cpu, uint16_t selector, Descriptor* d) {
  if ((selector & kSelectorMask) == 0) return false;
  return read_descriptor(cpu, selector, d);
}

// The DPL rule of all four: conforming code is always visible; anything else needs
// DPL >= CPL and DPL >= RPL.
bool visible(const Cpu& cpu, const Descriptor& d, uint16_t selector) {
  if (d.conforming()) return true;
  return d.dpl() >= cpu.cpl() && d.dpl() >= (selector & 3);
}

}  // namespace

void exec_kLar(Cpu& cpu, const Instruction& insn) {
  require_protected(cpu);
  const uint16_t selector = static_cast<uint16_t>(cpu.read_op(insn, 1));
  Descriptor d;
  bool ok = probe(cpu, selector, &d);
  if (ok && !d.s()) {
    // System types LAR accepts (Vol. 2 LAR table): LDT, TSS (avail/busy), call gates; in
    // IA-32e mode only the 64-bit forms; outside it also 16-bit TSS/gates and task gates.
    const uint8_t t = d.type();
    ok = ia32e(cpu) ? (t == kLdt || t == kTss32Avail || t == kTss32Busy || t == kCallGate32)
                    : (t == kTss16Avail || t == kLdt || t == kTss16Busy || t == kCallGate16 ||
                       t == kTaskGate || t == kTss32Avail || t == kTss32Busy ||
                       t == kCallGate32);
  }
  if (ok) ok = visible(cpu, d, selector);
  cpu.set_flag(kZF, ok);
  if (!ok) return;
  const uint64_t rights = (d.lo >> 32) & 0x00F0FF00;
  const Operand& dst = insn.ops[0];
  cpu.set_gpr(dst.reg, dst.size, dst.size == 2 ? rights & 0xFF00 : rights);
}

void exec_kLsl(Cpu& cpu, const Instruction& insn) {
  require_protected(cpu);
  const uint16_t selector = static_cast<uint16_t>(cpu.read_op(insn, 1));
  Descriptor d;
  bool ok = probe(cpu, selector, &d);
  if (ok && !d.s()) {
    const uint8_t t = d.type();  // LDT and TSS only (Vol. 2 LSL table)
    ok = ia32e(cpu) ? (t == kLdt || t == kTss32Avail || t == kTss32Busy)
                    : (t == kTss16Avail || t == kLdt || t == kTss16Busy || t == kTss32Avail ||
                       t == kTss32Busy);
  }
  if (ok) ok = visible(cpu, d, selector);
  cpu.set_flag(kZF, ok);
  if (!ok) return;
  const Operand& dst = insn.ops[0];
  cpu.set_gpr(dst.reg, dst.size, d.limit());
}

void exec_kVerr(Cpu& cpu, const Instruction& insn) {
  require_protected(cpu);
  const uint16_t selector = static_cast<uint16_t>(cpu.read_op(insn, 0));
  Descriptor d;
  const bool ok = probe(cpu, selector, &d) && d.s() && d.readable() && visible(cpu, d, selector);
  cpu.set_flag(kZF, ok);
}

void exec_kVerw(Cpu& cpu, const Instruction& insn) {
  require_protected(cpu);
  const uint16_t selector = static_cast<uint16_t>(cpu.read_op(insn, 0));
  Descriptor d;
  const bool ok = probe(cpu, selector, &d) && d.writable() && visible(cpu, d, selector);
  cpu.set_flag(kZF, ok);
}

void exec_kUd(Cpu&, const Instruction&) { raise(vec::kUD); }

}  // namespace trapscope::sim
