// sim/processor/delivery.cpp — exception and interrupt delivery: through the real-mode IVT,
// through protected-mode and IA-32e-mode interrupt and trap gates (with the stack switch from
// the TSS or an IST), the double-fault and triple-fault rules, and the events that record them
// (declared and documented in sim/processor/processor.hpp).
//
// Sources (Intel SDM Vol. 3A): 6.3.1 (vectors), 6.4.2 (software interrupts: gate DPL check),
// 6.12 (protected-mode delivery; 6.12.1 stack switch), 6.13 (error codes: EXT, IDT, TI bits),
// 6.14 (64-bit mode: 16-byte gates, IST, RSP0..2, 16-byte stack alignment, SS:RSP always
// pushed), 6.15 (#DF conditions: tables 6-4 and 6-5), table 6-1 (faults, traps, aborts),
// 17.3.1.1 (RF in the EFLAGS image pushed by faults), 20.1.4 (real-mode interrupts through the
// IVT).
#include <cstdio>
#include <string>
#include <utility>

#include "sim/processor/processor.hpp"

namespace trapscope::sim::processor {
namespace {

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
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

}  // namespace trapscope::sim::processor

namespace trapscope::sim {

// [SECTION] Ring transitions (whoever changes the CPL calls this: processor.hpp [SECTION] Events)

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

}  // namespace trapscope::sim
