#include "sim/virt/monitor.hpp"

#include <cstring>

#include "sim/interp/handlers.hpp"
#include "x86/classify.hpp"

namespace trapscope::sim::virt {
namespace {

using sim::Cpu;
using x86::Instruction;
using x86::Op;
using x86::OperandKind;
using x86::RegClass;
using trace::VmxExitReason;
using x86::Classification;
using x86::PgClass;
using x86::classify;

void run_handler(Cpu& cpu, const Instruction& insn) {
  sim::kHandlers[static_cast<size_t>(insn.op)](cpu, insn);
}

// The exit qualification of a control-register access (SDM Vol. 3C 28.2.1, table "Exit
// Qualification for Control-Register Accesses").
uint64_t cr_qualification(unsigned cr, unsigned access_type, unsigned gpr, uint16_t lmsw = 0) {
  return (cr & 0xF) | (uint64_t{access_type & 3} << 4) | (uint64_t{gpr & 0xF} << 8) |
         (uint64_t{lmsw} << 16);
}

// The exit qualification of an I/O instruction (SDM Vol. 3C 28.2.1, table "Exit Qualification
// for I/O Instructions").
uint64_t io_qualification(unsigned size, bool in, bool string, bool rep, bool immediate,
                          uint16_t port) {
  return ((size - 1) & 7) | (in ? 1u << 3 : 0) | (string ? 1u << 4 : 0) | (rep ? 1u << 5 : 0) |
         (immediate ? 1u << 6 : 0) | (uint64_t{port} << 16);
}

bool msr_exits(const VmcsControls& c, uint32_t msr, bool write) {
  if (!c.use_msr_bitmaps) return true;
  if (msr <= 0x1FFF) return write ? c.msr_write_low[msr] : c.msr_read_low[msr];
  if (msr >= 0xC0000000 && msr <= 0xC0001FFF) {
    return write ? c.msr_write_high[msr - 0xC0000000] : c.msr_read_high[msr - 0xC0000000];
  }
  return true;  // outside both ranges: always exits (SDM Vol. 3C 25.6.9)
}

bool io_exits(const VmcsControls& c, uint16_t port, unsigned size) {
  // SDM Vol. 3C 26.1.3: with "use I/O bitmaps" 0, "unconditional I/O exiting" decides.
  if (!c.use_io_bitmaps) return c.unconditional_io_exiting;
  for (unsigned i = 0; i < size; ++i) {
    if (c.io_bitmap[(port + i) & 0xFFFF]) return true;
  }
  return false;
}

// A VM exit the controls ask for: reason, qualification and (descriptor-table exits) the
// VM-exit instruction-information field.
struct Exit {
  uint32_t reason;
  uint64_t qualification = 0;
  uint32_t info = 0;
};

// Descriptor-table exiting (SDM Vol. 3C 26.1.3, secondary control bit 2): reason 46 for the
// GDTR/IDTR instructions, 47 for LDTR/TR; the qualification is the operand's displacement
// (28.2.1), the instruction information says which one (tables 28-10, 28-11). The loads are
// privileged (#GP at CPL > 0 comes first), the stores are not; SLDT/STR/LLDT/LTR are #UD in
// real mode (the instruction's own fault comes first).
std::optional<Exit> descriptor_table_exit(const Cpu& cpu, const Instruction& insn) {
  unsigned identity = 0;
  bool gdt_idt = true, privileged = false;
  switch (insn.op) {
    case Op::kSgdt: identity = 0; break;
    case Op::kSidt: identity = 1; break;
    case Op::kLgdt: identity = 2; privileged = true; break;
    case Op::kLidt: identity = 3; privileged = true; break;
    case Op::kSldt: identity = 0; gdt_idt = false; break;
    case Op::kStr: identity = 1; gdt_idt = false; break;
    case Op::kLldt: identity = 2; gdt_idt = false; privileged = true; break;
    case Op::kLtr: identity = 3; gdt_idt = false; privileged = true; break;
    default: return std::nullopt;
  }
  if (privileged && cpu.cpl() != 0) return std::nullopt;
  if (!gdt_idt && !cpu.protected_mode()) return std::nullopt;
  const x86::Operand& op = insn.ops[0];
  const uint64_t disp = op.kind == OperandKind::kMem ? static_cast<uint64_t>(op.disp) : 0;
  return Exit{static_cast<uint32_t>(gdt_idt ? VmxExitReason::kGdtrIdtrAccess
                                            : VmxExitReason::kLdtrTrAccess),
              disp, x86::descriptor_table_info(identity)};
}

std::optional<Exit> exit_for(const Cpu& cpu, const VmcsControls& c, const Instruction& insn,
                             std::span<const uint8_t> bytes) {
  const sim::CpuState& s = cpu.s;
  auto reason = [](VmxExitReason r) { return static_cast<uint32_t>(r); };
  if (c.descriptor_table_exiting) {
    if (auto x = descriptor_table_exit(cpu, insn)) return x;
  }
  switch (insn.op) {
    case Op::kCpuid: return Exit{reason(VmxExitReason::kCpuid)};
    case Op::kHlt:
      if (c.hlt_exiting) return Exit{reason(VmxExitReason::kHlt)};
      break;
    case Op::kInvlpg:
      if (c.invlpg_exiting && cpu.cpl() == 0) {
        return Exit{reason(VmxExitReason::kInvlpg),
                    cpu.effective_address(insn, insn.ops[0])};  // the operand's linear address
      }
      break;
    case Op::kRdtsc:
      if (c.rdtsc_exiting) return Exit{reason(VmxExitReason::kRdtsc)};
      break;
    case Op::kNop: {
      const Classification k = classify(insn, bytes);
      if (k.cls == PgClass::kPrivileged && cpu.cpl() == 0) {
        // invd exits unconditionally; wbinvd only with "WBINVD exiting" (modelled as set)
        const bool invd = bytes.size() >= 2 && bytes[bytes.size() - 1] == 0x08;
        if (invd) return Exit{reason(VmxExitReason::kInvd)};
        if (c.wbinvd_exiting) return Exit{reason(VmxExitReason::kWbinvd)};
      }
      break;
    }
    case Op::kMovDr:
      if (c.mov_dr_exiting && cpu.cpl() == 0) return Exit{reason(VmxExitReason::kDrAccess)};
      break;
    case Op::kMovCr: {
      if (cpu.cpl() != 0) break;  // #GP in the guest first (exceptions have priority)
      const bool to_cr = insn.ops[0].reg_class == RegClass::kCr;
      const unsigned cr = to_cr ? insn.ops[0].reg : insn.ops[1].reg;
      const unsigned gpr = to_cr ? insn.ops[1].reg : insn.ops[0].reg;
      const uint64_t q = cr_qualification(cr, to_cr ? 0 : 1, gpr);
      if (cr == 3 && (to_cr ? c.cr3_load_exiting : c.cr3_store_exiting)) {
        return Exit{reason(VmxExitReason::kCrAccess), q};
      }
      if (to_cr && (cr == 0 || cr == 4)) {
        // Exits if the write changes a bit the VMM owns (SDM Vol. 3C 26.1.3).
        const uint64_t v = cpu.s.gpr[gpr];
        const uint64_t old = cr == 0 ? s.cr0 : s.cr4;
        const uint64_t m = cr == 0 ? c.cr0_guest_host_mask : c.cr4_guest_host_mask;
        if ((v ^ old) & m) return Exit{reason(VmxExitReason::kCrAccess), q};
      }
      break;
    }
    case Op::kClts:
      if (cpu.cpl() == 0 && (c.cr0_guest_host_mask & sim::kCr0Ts)) {
        return Exit{reason(VmxExitReason::kCrAccess), cr_qualification(0, 2, 0)};
      }
      break;
    case Op::kLmsw:
      if (cpu.cpl() == 0 && (c.cr0_guest_host_mask & 0xF)) {
        Cpu& mut = const_cast<Cpu&>(cpu);  // read_op only reads (register or memory)
        const uint16_t src = static_cast<uint16_t>(mut.read_op(insn, 0));
        if ((src ^ s.cr0) & 0xF & c.cr0_guest_host_mask) {
          return Exit{reason(VmxExitReason::kCrAccess), cr_qualification(0, 3, 0, src)};
        }
      }
      break;
    case Op::kIn:
    case Op::kOut: {
      const bool in = insn.op == Op::kIn;
      const sim::Operand& port_op = in ? insn.ops[1] : insn.ops[0];
      const unsigned size = in ? insn.ops[0].size : insn.ops[1].size;
      const bool imm = port_op.kind == OperandKind::kImm;
      const uint16_t port =
          imm ? static_cast<uint16_t>(port_op.imm & 0xFF) : static_cast<uint16_t>(s.gpr[sim::kRdx]);
      if (io_exits(c, port, size)) {
        return Exit{reason(VmxExitReason::kIoInstruction),
                    io_qualification(size, in, false, false, imm, port)};
      }
      break;
    }
    case Op::kIns:
    case Op::kOuts: {
      const unsigned size = insn.operand_size / 8;
      const uint16_t port = static_cast<uint16_t>(s.gpr[sim::kRdx]);
      if (io_exits(c, port, size)) {
        return Exit{reason(VmxExitReason::kIoInstruction),
                    io_qualification(size, insn.op == Op::kIns, true, insn.rep != 0, false, port)};
      }
      break;
    }
    case Op::kRdmsr:
    case Op::kWrmsr: {
      if (cpu.cpl() != 0) break;
      const bool write = insn.op == Op::kWrmsr;
      if (msr_exits(c, static_cast<uint32_t>(s.gpr[sim::kRcx]), write)) {
        return Exit{reason(write ? VmxExitReason::kWrmsr : VmxExitReason::kRdmsr)};
      }
      break;
    }
    default:
      break;
  }
  return std::nullopt;
}

}  // namespace

std::string_view to_string(Technique t) {
  switch (t) {
    case Technique::kEmulation: return "emulation";
    case Technique::kTrapEmulate: return "trap-emulate";
    case Technique::kVt: return "vt";
    case Technique::kBt: return "bt";
    case Technique::kPv: return "pv";
  }
  return "?";
}

std::optional<Technique> parse_technique(std::string_view name) {
  for (Technique t : {Technique::kEmulation, Technique::kTrapEmulate, Technique::kVt,
                      Technique::kBt, Technique::kPv}) {
    if (name == to_string(t)) return t;
  }
  return std::nullopt;
}

std::optional<RealPrivilege> real_privilege(Technique t, uint8_t deprivilege, uint8_t cpl,
                                            bool protected_mode) {
  if (!protected_mode || cpl > 3) return std::nullopt;
  if (t == Technique::kTrapEmulate) return RealPrivilege{cpl == 0 ? deprivilege : cpl, true, 0};
  if (t == Technique::kBt) return RealPrivilege{static_cast<uint8_t>(cpl < 3 ? 1 : 3), true, 0};
  return std::nullopt;
}

Monitor::Monitor(Technique technique, uint8_t deprivilege, const VmcsControls& controls,
                 const CostModel& cost)
    : technique_(technique), deprivilege_(deprivilege), controls_(controls), cost_(cost) {}

void Monitor::emit(Cpu& cpu, trace::EventType type, const Instruction* insn, const uint8_t* bytes,
                   uint32_t reason, uint64_t qualification, uint32_t info, uint32_t cost,
                   bool entry) {
  trace::EventSink* sink = cpu.sink();
  if (!sink) return;
  trace::VirtEvent e{};
  e.header = trace::make_header<trace::VirtEvent>(type);
  e.header.seq = cpu.next_seq();
  e.header.time_ns = Cpu::event_time();
  e.header.rip = insn ? cpu.fault_rip : cpu.s.rip;
  e.header.cpl = cpu.cpl();
  e.header.cpu_mode = cpu.s.mode();
  e.header.flags = entry ? trace::kVirtFlagEntry : 0;
  using VT = trace::VirtTechnique;  // the trace format's numbers, not virt::Technique's
  e.technique = static_cast<uint8_t>(technique_ == Technique::kTrapEmulate ? VT::kTrapEmulate
                                     : technique_ == Technique::kPv        ? VT::kPv
                                                                           : VT::kVt);
  const auto real = real_privilege(technique_, deprivilege_, cpu.cpl(), cpu.protected_mode());
  e.real_cpl = real ? real->cpl : cpu.cpl();
  if (insn && bytes) {
    e.insn_len = insn->length;
    std::memcpy(e.insn, bytes, insn->length);
  }
  e.exit_reason = reason;
  e.interruption_info = info;
  e.cost_cycles = cost;
  e.qualification = qualification;
  sink->on_event(e.header);
}

void Monitor::execute(Cpu& cpu, const Instruction& insn, const uint8_t* bytes) {
  if (technique_ == Technique::kTrapEmulate) {
    trap_emulate(cpu, insn, bytes);
  } else if (technique_ == Technique::kVt || technique_ == Technique::kPv) {
    vt(cpu, insn, bytes);
  } else {
    run_handler(cpu, insn);
  }
}

// --- trap-and-emulate ---------------------------------------------------------------------------

void Monitor::trap_emulate(Cpu& cpu, const Instruction& insn, const uint8_t* bytes) {
  if (cpu.cpl() != 0 || !cpu.protected_mode()) {
    run_handler(cpu, insn);  // guest user code runs directly; real mode is interpreted
    return;
  }
  const Classification k = classify(insn, {bytes, insn.length});
  if (k.cls == PgClass::kInnocuous) {
    run_handler(cpu, insn);
    return;
  }
  if (k.cls == PgClass::kPrivileged) {
    ++stats_.traps;
    emit(cpu, trace::EventType::kVmmTrap, &insn, bytes, sim::vec::kGP, 0, 0, 0, false);
    run_handler(cpu, insn);  // the VMM emulates it on the virtual state
    return;
  }
  ++stats_.sensitive_no_trap;
  emit(cpu, trace::EventType::kSensitiveNoTrap, &insn, bytes, 0, 0, 0, 0, false);
  run_deprivileged(cpu, insn);
}

// Runs a sensitive, unprivileged instruction as the real hardware does at the deprivileged CPL:
// the fields the hardware really holds are put in place for the instruction and the guest's
// (virtual) values restored afterwards, also if it faults.
void Monitor::run_deprivileged(Cpu& cpu, const Instruction& insn) {
  sim::CpuState& s = cpu.s;
  const sim::CpuState virt = s;
  const uint8_t r = deprivilege_;
  auto restore = [&] {
    // Fields that were only overlaid go back to the virtual values; the instruction's own
    // results (registers, memory, other flags) stay.
    s.seg[sim::kCs].selector = virt.seg[sim::kCs].selector;
    s.seg[sim::kSs].selector = virt.seg[sim::kSs].selector;
    s.seg[sim::kSs].dpl = virt.seg[sim::kSs].dpl;
    s.gdtr = virt.gdtr;
    s.idtr = virt.idtr;
    s.ldtr.selector = virt.ldtr.selector;
    s.tr.selector = virt.tr.selector;
    s.cr0 = virt.cr0;
  };
  switch (insn.op) {
    case Op::kPushf: {
      s.rflags = (s.rflags & ~sim::kIOPL) | sim::kIF;  // the real IF = 1, IOPL = 0
      try {
        run_handler(cpu, insn);
      } catch (...) {
        s.rflags = virt.rflags;
        throw;
      }
      s.rflags = virt.rflags;
      return;
    }
    case Op::kPopf:
      // CPL > IOPL: IF and IOPL are silently left as they were (SDM Vol. 2 POPF).
      run_handler(cpu, insn);
      s.rflags = (s.rflags & ~(sim::kIF | sim::kIOPL)) | (virt.rflags & (sim::kIF | sim::kIOPL));
      return;
    case Op::kPush:
    case Op::kMovFromSeg:
      s.seg[sim::kCs].selector = static_cast<uint16_t>((s.seg[sim::kCs].selector & ~3) | r);
      s.seg[sim::kSs].selector = static_cast<uint16_t>((s.seg[sim::kSs].selector & ~3) | r);
      break;
    case Op::kSgdt:
    case Op::kSidt:
    case Op::kSldt:
    case Op::kStr:
    case Op::kSmsw:
      // Only the register the instruction stores is overlaid (the GDTR/IDTR/TR/LDTR/CR0 still
      // govern the instruction's own memory access); smsw stores CR0 bits 15:0 only, so only
      // those come from the host (the guest's PE is the host's too).
      if (insn.op == Op::kSgdt) s.gdtr = {kHostState.gdt_base, kHostState.gdt_limit};
      if (insn.op == Op::kSidt) s.idtr = {kHostState.idt_base, kHostState.idt_limit};
      if (insn.op == Op::kSldt) s.ldtr.selector = kHostState.ldtr;
      if (insn.op == Op::kStr) s.tr.selector = kHostState.tr;
      if (insn.op == Op::kSmsw) s.cr0 = (s.cr0 & ~0xFFFFull) | (kHostState.cr0 & 0xFFFF);
      break;
    case Op::kLar:
    case Op::kLsl:
    case Op::kVerr:
    case Op::kVerw:
      s.seg[sim::kSs].dpl = r;  // the CPL the DPL checks see
      break;
    default:
      // Far transfers, iret, segment loads, int n, syscall: executed as on the bare machine
      // (see [SECTION] Trap-and-emulate in the header).
      break;
  }
  try {
    run_handler(cpu, insn);
  } catch (...) {
    restore();
    throw;
  }
  // push/pop of DS/ES/FS/GS and pops to CS/SS are not overlaid; a `pop ss` or `mov ss` keeps
  // its loaded selector.
  if (insn.op == Op::kPush || insn.op == Op::kMovFromSeg || insn.op == Op::kSgdt ||
      insn.op == Op::kSidt || insn.op == Op::kSldt || insn.op == Op::kStr ||
      insn.op == Op::kSmsw || insn.op == Op::kLar || insn.op == Op::kLsl ||
      insn.op == Op::kVerr || insn.op == Op::kVerw) {
    restore();
  }
}

// --- VT-x model ---------------------------------------------------------------------------------

void Monitor::vm_exit(Cpu& cpu, const Instruction* insn, const uint8_t* bytes, uint32_t reason,
                      uint64_t qualification, uint32_t info) {
  ++stats_.vm_exits;
  ++stats_.exits_by_reason[reason];
  stats_.modelled_cycles += cost_.vm_exit_cycles + cost_.vm_entry_cycles;
  emit(cpu, trace::EventType::kVmTransition, insn, bytes, reason, qualification, info,
       cost_.vm_exit_cycles, false);
}

void Monitor::vm_entry(Cpu& cpu, const Instruction* insn, const uint8_t* bytes,
                       uint32_t reason) {
  emit(cpu, trace::EventType::kVmTransition, insn, bytes, reason, 0, 0, cost_.vm_entry_cycles,
       true);
}

void Monitor::vt(Cpu& cpu, const Instruction& insn, const uint8_t* bytes) {
  const auto x = exit_for(cpu, controls_, insn, {bytes, insn.length});
  if (!x) {
    run_handler(cpu, insn);  // non-root operation: runs natively at the guest's own CPL
  } else {
    vm_exit(cpu, &insn, bytes, x->reason, x->qualification, x->info);
    try {
      run_handler(cpu, insn);  // the VMM in root operation emulates it on the guest state
    } catch (...) {
      vm_entry(cpu, &insn, bytes, x->reason);  // resumes the guest with the exception injected
      throw;
    }
    vm_entry(cpu, &insn, bytes, x->reason);
  }
  if (controls_.interrupt_window_exiting && (cpu.s.rflags & sim::kIF)) {
    // The window is open at the next instruction boundary; a VMM would inject its pending
    // interrupt now and clear the control (the simulator has none to inject).
    const auto r = static_cast<uint32_t>(VmxExitReason::kInterruptWindow);
    vm_exit(cpu, nullptr, nullptr, r, 0);
    controls_.interrupt_window_exiting = false;
    vm_entry(cpu, nullptr, nullptr, r);
  }
}

void Monitor::on_exception(Cpu& cpu, uint8_t vector, bool has_error_code, uint32_t error_code) {
  if ((technique_ != Technique::kVt && technique_ != Technique::kPv) || vector >= 32 || !(controls_.exception_bitmap & (1u << vector))) {
    return;
  }
  // VM-exit interruption information (SDM Vol. 3C 25.9.2): bit 31 valid, bits 10:8 type
  // (3 = hardware exception), bit 11 error code valid, bits 7:0 vector.
  const uint32_t info = 0x80000000u | (3u << 8) | (has_error_code ? 1u << 11 : 0) | vector;
  const uint64_t q = vector == sim::vec::kPF ? cpu.s.cr2 : 0;
  (void)error_code;
  const auto r = static_cast<uint32_t>(VmxExitReason::kExceptionOrNmi);
  vm_exit(cpu, nullptr, nullptr, r, q, info);
  vm_entry(cpu, nullptr, nullptr, r);  // the VMM reflects the exception into the guest
}

}  // namespace trapscope::sim::virt
