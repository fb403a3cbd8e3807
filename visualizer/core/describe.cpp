#include "visualizer/core/describe.hpp"

#include <fmt/format.h>

#include <cinttypes>
#include <cstdio>

#include "x86/disasm.hpp"
#include "trace/fields.hpp"
#include "trace/printer.hpp"

namespace trapscope::viz {

using trace::EventType;

// [SECTION] Numbers

std::string hex(uint64_t v) { return fmt::format("{:#x}", v); }

std::string hex_fixed(uint64_t v, int digits) { return fmt::format("{:0{}x}", v, digits); }

std::string with_commas(uint64_t v) {
  const std::string digits = std::to_string(v);
  std::string s;
  s.reserve(digits.size() + digits.size() / 3);
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s.push_back(',');
    s.push_back(digits[i]);
  }
  return s;
}

std::string duration_ns(uint64_t ns) {
  char buf[32];
  if (ns < 1000) {
    std::snprintf(buf, sizeof buf, "%" PRIu64 " ns", ns);
  } else if (ns < 1'000'000) {
    std::snprintf(buf, sizeof buf, "%.2f µs", static_cast<double>(ns) / 1e3);
  } else if (ns < 1'000'000'000) {
    std::snprintf(buf, sizeof buf, "%.2f ms", static_cast<double>(ns) / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f s", static_cast<double>(ns) / 1e9);
  }
  return buf;
}

// [SECTION] Events

std::string event_summary(const EventRecord& e) {
  trace::EventFormatter f(trace::PrintOptions{trace::Format::kText, false});
  std::string line = f.format(e.header);
  // Drop "#<seq>" and the padding after it.
  size_t i = 0;
  if (!line.empty() && line[0] == '#') {
    while (i < line.size() && line[i] != ' ') ++i;
  }
  while (i < line.size() && line[i] == ' ') ++i;
  // Collapse the printer's column padding.
  std::string out;
  out.reserve(line.size() - i);
  for (; i < line.size(); ++i) {
    if (line[i] == ' ' && !out.empty() && out.back() == ' ') continue;
    out.push_back(line[i]);
  }
  return out;
}

std::string event_brief(const EventRecord& e) {
  const trace::EventHeader& h = e.header;
  const std::string dot = " \u00B7 ";
  return trace::visit(h, trace::Overloaded{
    [&](const trace::VmExitEvent&) -> std::string {
      const auto& x = e.exit;
      std::string s = x.insn_len ? x86::disassemble({x.insn, x.insn_len}, h.cpu_mode, x.insn_addr).text
                                 : std::string("(no bytes)");
      const trace::ExitPayload& p = x.payload;
      switch (static_cast<trace::ExitReason>(x.reason)) {
        case trace::ExitReason::kIo: {
          s += dot;
          s += "port " + hex(p.io.port) + (p.io.direction ? " out" : " in");
          s += dot;
          s += hex(p.io.value);
          if (p.io.size == 1 && p.io.value >= 0x20 && p.io.value < 0x7F) {
            s += " '";
            s += static_cast<char>(p.io.value);
            s += "'";
          } else if (p.io.size == 1 && p.io.value == '\n') {
            s += " '\\n'";
          }
          break;
        }
        case trace::ExitReason::kMmio:
          s += dot;
          s += (p.mmio.is_write ? "write " : "read ") + hex(p.mmio.gpa);
          break;
        default:
          break;
      }
      return s;
    },
    [&](const trace::InstructionEvent&) -> std::string {
      return x86::disassemble({e.insn.bytes, e.insn.len}, h.cpu_mode, h.rip).text;
    },
    [&](const trace::VirtEvent&) -> std::string {
      return trace::virt_event_text(e.virt, true);
    },
    [&](const trace::ExceptionEvent&) -> std::string {
      std::string s = vector_mnemonic(e.exception.vector);
      s += " ";
      s += vector_long_name(e.exception.vector);
      if (e.exception.has_error_code) s += dot + "error " + hex(e.exception.error_code);
      if (e.exception.vector == 14) s += dot + "CR2 " + hex(e.exception.cr2);
      return s;
    },
    [&](const trace::RingTransitionEvent&) -> std::string {
      std::string s = "CPL " + std::to_string(e.ring.from_cpl) + " \u2192 " +
                      std::to_string(e.ring.to_cpl) + " by ";
      s += trace::to_string(e.ring.cause);
      if (e.ring.cause == trace::RingCause::kException ||
          e.ring.cause == trace::RingCause::kInterrupt ||
          e.ring.cause == trace::RingCause::kSoftwareInt) {
        s += " (" + vector_mnemonic(e.ring.vector) + ")";
      }
      return s;
    },
    [&](const trace::PageWalkEvent&) -> std::string {
      static constexpr const char* kAccess[] = {"read", "write", "fetch"};
      std::string s = hex(e.walk.linear);
      s += " ";
      s += kAccess[e.walk.access % 3];
      s += e.walk.user ? " user" : " supervisor";
      s += e.walk.faulted ? " \u2192 #PF" : " \u2192 " + hex(e.walk.physical);
      s += dot + std::to_string(e.walk.levels) + " levels";
      return s;
    },
    [&](const trace::RunEndEvent&) -> std::string {
      std::string s(trace::to_string(e.run_end.reason));
      if (e.run_end.reason == trace::RunEndReason::kGuestExit) {
        s += " " + std::to_string(e.run_end.exit_code);
      }
      return s;
    },
    [&](const auto&) -> std::string {
      return event_summary(e);
    }});
}

std::string_view type_label(EventType type) { return trace::event_label(type); }

namespace {

std::string cpl_text(uint8_t cpl) {
  return cpl == trace::kCplUnknown ? "unknown" : std::to_string(cpl);
}

std::string bytes_text(const uint8_t* p, size_t n) {
  return fmt::format("{:02x}", fmt::join(p, p + n, " "));
}

void exit_fields(const trace::VmExitEvent& e, std::vector<Field>* f) {
  const std::string_view name = trace::exit_reason_name(e.reason);
  f->push_back({"exit reason", std::string(name) + " (" + std::to_string(e.reason) + ")",
                "KVM_EXIT_" + std::string(name) + " — KVM API 5, struct kvm_run"});
  if (e.insn_len) {
    const auto d = x86::disassemble({e.insn, e.insn_len}, e.header.cpu_mode, e.insn_addr);
    f->push_back({"instruction", d.text, "the instruction that caused the exit (Zydis)"});
    f->push_back({"bytes", bytes_text(e.insn, e.insn_len), "read at linear " + hex(e.insn_addr)});
  } else {
    f->push_back({"instruction", "(bytes not readable)", ""});
  }
  if (e.header.flags & trace::kExitFlagRipAdvanced) {
    f->push_back({"RIP", "advanced past the instruction",
                  "the host emulated it before the VMM saw the exit (kvm_pvm, hlt)"});
  }
  const trace::ExitPayload& p = e.payload;
  switch (static_cast<trace::ExitReason>(e.reason)) {
    case trace::ExitReason::kIo: {
      f->push_back({"port", hex(p.io.port),
                    p.io.port == 0xE9   ? "debug console"
                    : p.io.port == 0xF4 ? "trapscope control port (ends the run)"
                    : (p.io.port >= 0x3F8 && p.io.port <= 0x3FF) ? "COM1 (16550 UART)"
                                                                 : ""});
      f->push_back({"direction", p.io.direction ? "out (guest → device)" : "in (device → guest)",
                    ""});
      f->push_back({"size", std::to_string(p.io.size) + " byte(s)" +
                                (p.io.count > 1 ? " × " + std::to_string(p.io.count) : ""),
                    ""});
      std::string v = hex(p.io.value);
      if (p.io.size == 1 && p.io.value >= 0x20 && p.io.value < 0x7F) {
        v += " '" + std::string(1, static_cast<char>(p.io.value)) + "'";
      } else if (p.io.size == 1 && p.io.value == '\n') {
        v += " '\\n'";
      }
      f->push_back({"value", v, ""});
      break;
    }
    case trace::ExitReason::kMmio:
      f->push_back({"GPA", hex(p.mmio.gpa), "guest-physical address not backed by memory"});
      f->push_back({"access", std::string(p.mmio.is_write ? "write" : "read") + ", " +
                                  std::to_string(p.mmio.len) + " byte(s)",
                    ""});
      f->push_back({"data", hex(p.mmio.data), ""});
      break;
    case trace::ExitReason::kInternalError:
      f->push_back({"suberror", std::to_string(p.internal.suberror),
                    p.internal.suberror == 1 ? "emulation failure: KVM could not emulate it" : ""});
      break;
    case trace::ExitReason::kDebug:
      f->push_back({"exception", vector_mnemonic(static_cast<uint8_t>(p.debug.exception)), ""});
      f->push_back({"DR6", hex(p.debug.dr6), ""});
      break;
    default:
      break;
  }
  f->push_back({"handling time", e.handle_ns ? duration_ns(e.handle_ns) : "not measured",
                e.handle_ns ? "host time in the VMM's handler" : "the simulator does not time its VMM"});
}

// A VT-x model event (kVmTransition), a trap-and-emulate trap or a sensitive instruction that
// did not trap: the instruction, the two privilege levels, and for a VM exit its basic exit
// reason and the exit qualification decoded field by field (x86/vmx.hpp, SDM Vol. 3C 28.2.1).
void virt_fields(const trace::VirtEvent& e, std::vector<Field>* f, Lang l) {
  const trace::EventHeader& h = e.header;
  if (h.type == EventType::kVmTransition) {
    const bool entry = h.flags & trace::kVirtFlagEntry;
    f->push_back({es_en(l, "transición", "transition"),
                  entry ? es_en(l, "entrada VM (VM entry)", "VM entry")
                        : es_en(l, "salida VM (VM exit)", "VM exit"),
                  es_en(l, "modelo VT-x del simulador (sim/virt/monitor.hpp)",
                        "the simulator's VT-x model (sim/virt/monitor.hpp)")});
    f->push_back({es_en(l, "motivo básico de salida", "basic exit reason"),
                  std::string(x86::vmx_exit_reason_name(e.exit_reason)) + " (" +
                      std::to_string(e.exit_reason) + ")",
                  std::string(x86::vmx_exit_reason_title(e.exit_reason)) +
                      " — Intel SDM Vol. 3C, Appendix C"});
  }
  if (e.insn_len) {
    const auto d = x86::disassemble({e.insn, e.insn_len}, h.cpu_mode, h.rip);
    f->push_back({es_en(l, "instrucción", "instruction"), d.text, ""});
    f->push_back({"bytes", bytes_text(e.insn, e.insn_len), ""});
  }
  f->push_back({es_en(l, "CPL virtual", "virtual CPL"), cpl_text(h.cpl),
                es_en(l, "el que cree el invitado", "what the guest believes")});
  f->push_back({es_en(l, "CPL real", "real CPL"), cpl_text(e.real_cpl),
                es_en(l, "al que la máquina lo ejecuta", "what the machine runs it at")});
  if (h.type == EventType::kVmmTrap) {
    f->push_back({es_en(l, "trampa", "trap"), vector_mnemonic(static_cast<uint8_t>(e.exit_reason)),
                  es_en(l, "la excepción que levantó la instrucción desprivilegiada",
                        "the exception the deprivileged instruction raised")});
  }
  if (h.type != EventType::kVmTransition || (h.flags & trace::kVirtFlagEntry)) {
    if (h.type == EventType::kVmTransition) {
      f->push_back({es_en(l, "coste", "cost"), std::to_string(e.cost_cycles) + " cycles",
                    es_en(l, "un modelo: Adams & Agesen 2006, Core 2",
                          "a model: Adams & Agesen 2006, Core 2")});
    }
    return;
  }
  f->push_back({es_en(l, "cualificación de salida", "exit qualification"), hex(e.qualification),
                "SDM Vol. 3C 28.2.1"});
  for (const x86::VmxField& q :
       x86::decode_exit_qualification(e.exit_reason, e.qualification, e.interruption_info)) {
    f->push_back({"  " + q.bits + " " + q.name, q.value, ""});
  }
  if (e.interruption_info && e.exit_reason == static_cast<uint32_t>(x86::VmxExit::kExceptionOrNmi)) {
    f->push_back({es_en(l, "información de interrupción", "interruption information"),
                  hex(e.interruption_info),
                  vector_mnemonic(static_cast<uint8_t>(e.interruption_info & 0xFF)) +
                      " — SDM Vol. 3C 25.9.2"});
  }
  f->push_back({es_en(l, "coste", "cost"), std::to_string(e.cost_cycles) + " cycles",
                es_en(l, "un modelo: Adams & Agesen 2006, Core 2",
                      "a model: Adams & Agesen 2006, Core 2")});
}

}  // namespace

std::vector<Field> event_fields(const EventRecord& e, Lang lang) {
  std::vector<Field> f;
  const trace::EventHeader& h = e.header;
  std::string event = "#";
  event += with_commas(h.seq);
  event += "  ";
  event += type_label(h.type);
  f.push_back({"event", event, ""});
  f.push_back({"RIP", hex(h.rip), ""});
  f.push_back({"CPL", cpl_text(h.cpl), h.cpl <= 3 ? std::string(ring_name(h.cpl)) : ""});
  f.push_back({"mode", std::string(cpu_mode_name(h.cpu_mode)), ""});
  trace::visit(h, trace::Overloaded{
    [&](const trace::VmExitEvent&) -> void {
      exit_fields(e.exit, &f);
    },
    [&](const trace::ExceptionEvent&) -> void {
      const auto& x = e.exception;
      f.push_back({"vector", vector_mnemonic(x.vector) + " (" + std::to_string(x.vector) + ")",
                   std::string(vector_long_name(x.vector))});
      if (x.has_error_code) {
        f.push_back({"error code", hex(x.error_code),
                     x.vector == 14 ? page_fault_error(x.error_code)
                                    : (x.error_code ? "selector index " +
                                                          std::to_string(x.error_code >> 3)
                                                    : "0")});
      }
      if (x.vector == 14) f.push_back({"CR2", hex(x.cr2), "the linear address that faulted"});
      f.push_back({"source", x.software ? "software (int n / int3 / into)" : "the processor", ""});
      f.push_back({"note", "delivered through the guest's IDT",
                   "not a VM exit: the guest kernel handles it without the VMM"});
    },
    [&](const trace::RingTransitionEvent&) -> void {
      const auto& r = e.ring;
      f.push_back({"transition", "CPL " + std::to_string(r.from_cpl) + " → " +
                                     std::to_string(r.to_cpl),
                   std::string(ring_name(r.to_cpl))});
      f.push_back({"cause", std::string(trace::to_string(r.cause)), ""});
      if (r.cause == trace::RingCause::kException || r.cause == trace::RingCause::kInterrupt ||
          r.cause == trace::RingCause::kSoftwareInt) {
        f.push_back({"vector", vector_mnemonic(r.vector) + " (" + std::to_string(r.vector) + ")",
                     ""});
      }
      f.push_back({"from RIP", hex(r.from_rip), "the instruction that caused it"});
      f.push_back({"to RIP", hex(h.rip), "where execution continues"});
    },
    [&](const trace::PageWalkEvent&) -> void {
      const auto& w = e.walk;
      static constexpr const char* kAccess[] = {"read", "write", "instruction fetch"};
      f.push_back({"linear address", hex(w.linear), "guest-virtual (GVA)"});
      f.push_back({"access", std::string(kAccess[w.access % 3]) +
                                 (w.user ? " at CPL 3 (user)" : " (supervisor)"),
                   ""});
      for (unsigned i = 0; i < w.levels && i < 4; ++i) {
        f.push_back({std::string(walk_level_name(w.levels, i)) + " entry",
                     hex(w.level[i].entry),
                     "at GPA " + hex(w.level[i].entry_address) + ": " +
                         pte_flags(w.level[i].entry)});
      }
      if (w.faulted) {
        f.push_back({"result", "#PF, error " + hex(w.error_code), page_fault_error(w.error_code)});
      } else {
        f.push_back({"physical address", hex(w.physical), "guest-physical (GPA)"});
      }
    },
    [&](const trace::InstructionEvent&) -> void {
      const auto& i = e.insn;
      const auto d = x86::disassemble({i.bytes, i.len}, h.cpu_mode, h.rip);
      f.push_back({"instruction", d.text, "retired"});
      f.push_back({"bytes", bytes_text(i.bytes, i.len), ""});
    },
    [&](const trace::RunEndEvent&) -> void {
      const auto& r = e.run_end;
      std::string v(trace::to_string(r.reason));
      if (r.reason == trace::RunEndReason::kGuestExit) v += " " + std::to_string(r.exit_code);
      f.push_back({"run ended", v, ""});
      f.push_back({"VM exits", with_commas(r.exits), "during the run"});
    },
    [&](const trace::VirtEvent&) -> void { virt_fields(e.virt, &f, lang); },
    [&](const auto&) -> void {
      // The other types: their fields as trace/events.def names them (trace/fields.hpp).
      for (const trace::Field* field : trace::fields_of(h.type)) {
        if (field->header_only()) continue;
        if (auto v = trace::field_text(*field, h)) f.push_back({std::string(field->name), *v, ""});
      }
    }});
  return f;
}

namespace {

// What a VT-x model event, a trap or an untrapped sensitive instruction means (sim/virt/monitor.hpp).
std::string explain_virt(const trace::VirtEvent& e, Lang l) {
  const trace::EventHeader& h = e.header;
  const std::string insn =
      e.insn_len ? "`" + x86::disassemble({e.insn, e.insn_len}, h.cpu_mode, h.rip).text + "`"
                 : std::string(es_en(l, "un evento", "an event"));
  const std::string virt = cpl_text(h.cpl), real = cpl_text(e.real_cpl);
  if (h.type == EventType::kVmmTrap) {
    return fmt::format(fmt::runtime(es_en(l,
        "Atrapar y emular: el núcleo invitado ejecutó {} en su CPL virtual {}, pero la máquina lo "
        "ejecuta en CPL real {}: la instrucción es privilegiada, levantó {} y el VMM la atrapó y la "
        "emuló sobre el estado virtual, con el mismo resultado que en la máquina desnuda.",
        "Trap-and-emulate: the guest kernel executed {} at its virtual CPL {}, but the machine "
        "runs it at real CPL {}: the instruction is privileged, raised {}, and the VMM trapped "
        "it and emulated it on the virtual state, with the same result as on the bare machine.")),
        insn, virt, real, vector_mnemonic(static_cast<uint8_t>(e.exit_reason)));
  }
  if (h.type == EventType::kSensitiveNoTrap) {
    return fmt::format(fmt::runtime(es_en(l,
        "Sensible pero no privilegiada: {} se ejecutó en CPL real {} SIN atrapar (el invitado cree "
        "estar en CPL {}), así que vio el estado real de la máquina y no el virtual: la "
        "violación de Popek y Goldberg del x86 clásico.",
        "Sensitive but not privileged: {} ran at real CPL {} WITHOUT trapping (the guest "
        "believes it is at CPL {}), so it saw the machine's real state, not the virtual one: "
        "classic x86's violation of Popek and Goldberg.")),
        insn, real, virt);
  }
  const std::string reason = std::string(x86::vmx_exit_reason_name(e.exit_reason)) + " (" +
                             std::to_string(e.exit_reason) + ")";
  if (h.flags & trace::kVirtFlagEntry) {
    return fmt::format(fmt::runtime(es_en(l,
        "Entrada VM: el VMM, en modo raíz, terminó de tratar la salida {} y reanudó al invitado "
        "en modo no raíz (coste modelado {} ciclos).",
        "VM entry: the VMM, in root operation, finished handling the {} exit and resumed the "
        "guest in non-root operation (modelled cost {} cycles).")),
        reason, e.cost_cycles);
  }
  const std::string q =
      x86::exit_qualification_text(e.exit_reason, e.qualification, e.interruption_info);
  return fmt::format(fmt::runtime(es_en(l,
      "Salida VM del modelo VT-x, motivo básico {}: el invitado ejecutó {} en CPL {} en modo no "
      "raíz y los controles de ejecución de la VMCS piden una salida para ello (panel VMCS). "
      "{}{}El VMM en modo raíz la emula y vuelve con una entrada VM.",
      "VT-x model VM exit, basic exit reason {}: the guest executed {} at CPL {} in VMX non-root "
      "operation, and the VMCS's execution controls ask for an exit on it (VMCS panel). "
      "{}{}The VMM in root operation emulates it and resumes with a VM entry.")),
      reason, insn, virt,
      q.empty() ? "" : std::string(es_en(l, "La cualificación dice: ", "The qualification says: ")),
      q.empty() ? "" : q + ". ");
}

}  // namespace

std::string explain(const EventRecord& e, Lang lang) {
  const trace::EventHeader& h = e.header;
  const std::string where = h.cpl <= 3 ? " at CPL " + std::to_string(h.cpl) : "";
  return trace::visit(h, trace::Overloaded{
    [&](const trace::VmExitEvent&) -> std::string {
      std::string insn = "an instruction";
      if (e.exit.insn_len) {
        insn = "`" +
               x86::disassemble({e.exit.insn, e.exit.insn_len}, h.cpu_mode, e.exit.insn_addr)
                   .text +
               "`";
      }
      const auto reason = static_cast<trace::ExitReason>(e.exit.reason);
      if (reason == trace::ExitReason::kIo) {
        return "The guest executed " + insn + where +
               ". Port I/O is intercepted: the CPU left the guest (a VM exit, reason IO) and the "
               "VMM emulated the device at port " + hex(e.exit.payload.io.port) +
               ", then resumed the guest after the instruction.";
      }
      if (reason == trace::ExitReason::kHlt) {
        return "The guest executed " + insn + where +
               ": it has nothing to do until an interrupt. The VMM got the exit (reason HLT); "
               "with no interrupt to deliver, the run ends.";
      }
      if (reason == trace::ExitReason::kMmio) {
        return "The guest accessed guest-physical memory that no RAM backs" + where +
               ": the access exits to the VMM (reason MMIO), which emulates it.";
      }
      if (reason == trace::ExitReason::kShutdown) {
        return "A triple fault: delivering an exception failed twice" + where +
               ", so the processor shut down; the VMM sees a SHUTDOWN exit.";
      }
      return "The guest left to the VMM (a VM exit, reason " +
             std::string(trace::exit_reason_name(e.exit.reason)) + ")" + where + ".";
    },
    [&](const trace::ExceptionEvent&) -> std::string {
      return "The processor raised " + vector_mnemonic(e.exception.vector) + " (" +
             std::string(vector_long_name(e.exception.vector)) + ")" + where +
             " and delivered it through the guest's IDT to the guest kernel's handler. It is "
             "not a VM exit: the VMM does not see it.";
    },
    [&](const trace::RingTransitionEvent&) -> std::string {
      return "The CPL changed from " + std::to_string(e.ring.from_cpl) + " to " +
             std::to_string(e.ring.to_cpl) + " (" + std::string(trace::to_string(e.ring.cause)) +
             "): the processor switched privilege level" +
             (e.ring.to_cpl < e.ring.from_cpl ? ", and stacks, to the more privileged ring."
                                              : " back to the less privileged ring.");
    },
    [&](const trace::PageWalkEvent&) -> std::string {
      return std::string("The TLB had no translation for ") + hex(e.walk.linear) +
             ", so the MMU walked the guest's page tables (" + std::to_string(e.walk.levels) +
             " levels, each a guest-physical read)" +
             (e.walk.faulted ? " and found no valid mapping: #PF." : ".");
    },
    [&](const trace::InstructionEvent&) -> std::string {
      return "An instruction retired" + where + ".";
    },
    [&](const trace::RunEndEvent&) -> std::string {
      return "The run ended: " + std::string(trace::to_string(e.run_end.reason)) + ".";
    },
    [&](const trace::NestedWalkEvent&) -> std::string {
      return "Nested paging: each of the guest's " + std::to_string(e.nested_walk.guest_levels) +
             " table references, and the final guest-physical address, was translated through "
             "the 4-level EPT: " + std::to_string(e.nested_walk.nrefs) +
             " memory references in all (n\u00B7m + n + m; Bhargava et al., ASPLOS 2008).";
    },
    [&](const trace::ShadowPagingEvent&) -> std::string {
      switch (e.shadow.action) {
        case trace::ShadowAction::kHiddenFault:
          return "A hidden page fault: the shadow table had no entry (or not the right) for " +
                 hex(e.shadow.linear) + "; the VMM walked the guest's tables and filled the "
                 "shadow. The guest never sees this fault.";
        case trace::ShadowAction::kTrueFault:
          return "A true page fault: the guest's own tables deny the access, so the VMM "
                 "reflects #PF to the guest.";
        case trace::ShadowAction::kPtWrite:
          return "The guest wrote one of its page tables, which the VMM keeps write-protected: "
                 "the VMM emulated the write and dropped the shadow entries built from it.";
        case trace::ShadowAction::kVmmWrite:
          return "The VMM wrote one of the guest's page tables for it (a paravirtual "
                 "mmu_update) and dropped only the shadow entries built from that page; the "
                 "next access to each refills it.";
        default:
          return "The shadow-paging VMM: " + std::string(trace::to_string(e.shadow.action)) + ".";
      }
    },
    [&](const trace::BtTranslateEvent&) -> std::string {
      return "Binary translation: the code about to run at CPL " + std::to_string(h.cpl) +
             " was translated into translation unit " + std::to_string(e.bt_translate.unit) +
             " (" + std::to_string(e.bt_translate.count) +
             " instructions; innocuous ones IDENT, the rest rewritten or turned into callouts; "
             "Adams & Agesen, ASPLOS 2006).";
    },
    [&](const trace::BtChainEvent&) -> std::string {
      return "Chaining: the exit of unit " + std::to_string(e.bt_chain.from_unit) +
             " now jumps straight to unit " + std::to_string(e.bt_chain.to_unit) +
             ", with no translation-cache lookup.";
    },
    [&](const trace::BtLookupEvent&) -> std::string {
      return std::string("A translation-cache lookup: ") +
             ((h.flags & trace::kBtFlagHit) ? "hit." : "miss, so the code was translated.");
    },
    [&](const trace::BtInvalidateEvent&) -> std::string {
      return "The guest wrote a page that holds translated code: its " +
             std::to_string(e.bt_invalidate.units) +
             " units were dropped and will be translated again (self-modifying code, page reuse).";
    },
    [&](const trace::BtCalloutEvent&) -> std::string {
      return "A callout: translated code left the cache so that the VMM emulates a privileged "
             "or sensitive instruction on the virtual CPU" +
             std::string((h.flags & trace::kBtFlagAdaptive)
                             ? " (adaptive: it trapped often, so it was retranslated into a callout)."
                             : ".");
    },
    [&](const trace::BtCountsEvent&) -> std::string {
      return "The translation cache's counters of unit " + std::to_string(e.bt_counts.unit) +
             ": entered " + std::to_string(e.bt_counts.executions) + " times, " +
             std::to_string(e.bt_counts.instructions) +
             " guest instructions executed from it. Entries through a chain record no event, "
             "so the cache reports its counters at the end of each run.";
    },
    [&](const trace::EptViolationEvent&) -> std::string {
      return "An EPT violation VM exit (basic exit reason 48): the EPT had no entry for "
             "guest-physical " + hex(e.ept_violation.gpa) +
             (e.ept_violation.resolution == trace::EptResolution::kMapped
                  ? "; the VMM mapped the page and the guest retries."
                  : "; there is no RAM there, so the VMM emulates the access (MMIO).");
    },
    [&](const trace::VirtEvent&) -> std::string { return explain_virt(e.virt, lang); },
    [&](const auto&) -> std::string {
      return "";
    }});
}

// [SECTION] Exceptions

std::string vector_mnemonic(uint8_t v) {
  static constexpr const char* kNames[] = {
      "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS",
      "#NP", "#SS", "#GP", "#PF", "(15)", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP"};
  if (v < std::size(kNames)) return kNames[v];
  return "int " + std::to_string(v);
}

std::string_view vector_long_name(uint8_t v) {
  static constexpr std::string_view kNames[] = {
      "divide error", "debug", "non-maskable interrupt", "breakpoint", "overflow",
      "BOUND range exceeded", "invalid opcode", "device not available", "double fault",
      "coprocessor segment overrun", "invalid TSS", "segment not present",
      "stack-segment fault", "general protection", "page fault", "reserved",
      "x87 floating-point error", "alignment check", "machine check", "SIMD floating-point",
      "virtualization exception", "control protection"};
  return v < std::size(kNames) ? kNames[v] : "interrupt";
}

// [SECTION] Flags and control registers

std::vector<Bit> rflags_bits(uint64_t f) {
  using namespace x86;
  return {{"CF", "carry", (f & kCF) != 0},          {"PF", "parity", (f & kPF) != 0},
          {"AF", "auxiliary carry", (f & kAF) != 0}, {"ZF", "zero", (f & kZF) != 0},
          {"SF", "sign", (f & kSF) != 0},           {"TF", "trap (single-step)", (f & kTF) != 0},
          {"IF", "interrupts enabled", (f & kIF) != 0},
          {"DF", "direction (string ops go down)", (f & kDF) != 0},
          {"OF", "overflow", (f & kOF) != 0},       {"NT", "nested task", (f & kNT) != 0},
          {"RF", "resume (suppress #DB)", (f & kRF) != 0},
          {"VM", "virtual-8086 mode", (f & kVM) != 0},
          {"AC", "alignment check / SMAP access", (f & kAC) != 0},
          {"VIF", "virtual IF", (f & kVIF) != 0},   {"VIP", "virtual interrupt pending", (f & kVIP) != 0},
          {"ID", "CPUID available", (f & kID) != 0}};
}

std::vector<Bit> cr0_bits(uint64_t v) {
  using namespace x86;
  return {{"PE", "protection enable (protected mode)", (v & kCr0Pe) != 0},
          {"MP", "monitor coprocessor", (v & kCr0Mp) != 0},
          {"EM", "x87 emulation", (v & kCr0Em) != 0},
          {"TS", "task switched", (v & kCr0Ts) != 0},
          {"ET", "extension type", (v & kCr0Et) != 0},
          {"NE", "numeric error", (v & kCr0Ne) != 0},
          {"WP", "write protect (supervisor honours R/W)", (v & kCr0Wp) != 0},
          {"AM", "alignment mask", (v & kCr0Am) != 0},
          {"NW", "not write-through", (v & kCr0Nw) != 0},
          {"CD", "cache disable", (v & kCr0Cd) != 0},
          {"PG", "paging", (v & kCr0Pg) != 0}};
}

std::vector<Bit> cr4_bits(uint64_t v) {
  using namespace x86;
  return {{"VME", "virtual-8086 mode extensions", (v & kCr4Vme) != 0},
          {"PVI", "protected-mode virtual interrupts", (v & kCr4Pvi) != 0},
          {"TSD", "RDTSC only at CPL 0", (v & kCr4Tsd) != 0},
          {"DE", "debugging extensions", (v & kCr4De) != 0},
          {"PSE", "4 MiB pages (32-bit paging)", (v & kCr4Pse) != 0},
          {"PAE", "physical address extension", (v & kCr4Pae) != 0},
          {"PGE", "global pages", (v & kCr4Pge) != 0},
          {"OSFXSR", "FXSAVE/SSE enabled", (v & kCr4Osfxsr) != 0},
          {"UMIP", "SGDT/SIDT/SLDT/SMSW/STR only at CPL 0", (v & kCr4Umip) != 0}};
}

std::vector<Bit> efer_bits(uint64_t v) {
  using namespace x86;
  return {{"SCE", "SYSCALL/SYSRET enabled", (v & kEferSce) != 0},
          {"LME", "long mode enable", (v & kEferLme) != 0},
          {"LMA", "long mode active", (v & kEferLma) != 0},
          {"NXE", "no-execute pages", (v & kEferNxe) != 0}};
}

std::string set_bit_names(const std::vector<Bit>& bits) {
  std::string s;
  for (const Bit& b : bits) {
    if (!b.set) continue;
    if (!s.empty()) s += ' ';
    s += b.name;
  }
  return s.empty() ? "—" : s;
}

// [SECTION] Segments

std::string segment_type(const x86::Segment& s) {
  if (s.unusable) return "unusable";
  const unsigned t = s.type & 0xF;
  if (s.s) {
    std::string out;
    if (t & 8) {
      out = "code, execute";
      if (t & 2) out += "/read";
      if (t & 4) out += ", conforming";
    } else {
      out = "data, read";
      if (t & 2) out += "/write";
      if (t & 4) out += ", expand-down";
    }
    if (t & 1) out += ", accessed";
    return out;
  }
  switch (t) {
    case 0x2: return "LDT";
    case 0x1: return "16-bit TSS (available)";
    case 0x3: return "16-bit TSS (busy)";
    case 0x9: return "TSS (available)";
    case 0xB: return "TSS (busy)";
    case 0xC: return "call gate";
    case 0xE: return "interrupt gate";
    case 0xF: return "trap gate";
    default: return "system type " + std::to_string(t);
  }
}

std::string_view cpu_mode_name(trace::CpuMode mode) {
  switch (mode) {
    case trace::CpuMode::kReal16: return "real mode (16-bit)";
    case trace::CpuMode::kProtected16: return "protected mode, 16-bit code";
    case trace::CpuMode::kProtected32: return "protected mode, 32-bit code";
    case trace::CpuMode::kLong64: return "long mode, 64-bit code";
    case trace::CpuMode::kCompat32: return "long mode, 32-bit compatibility code";
    case trace::CpuMode::kCompat16: return "long mode, 16-bit compatibility code";
    default: return "unknown mode";
  }
}

std::string_view ring_name(uint8_t cpl) {
  switch (cpl) {
    case 0: return "ring 0 — kernel (most privileged)";
    case 1: return "ring 1";
    case 2: return "ring 2";
    case 3: return "ring 3 — user (least privileged)";
    default: return "unknown ring";
  }
}

// [SECTION] Paging

std::string pte_flags(uint64_t e) {
  if (!(e & 1)) return "not present";
  std::string s = "P";
  s += (e & 2) ? " RW" : " RO";
  s += (e & 4) ? " US" : " S";
  if (e & 0x20) s += " A";
  if (e & 0x40) s += " D";
  if (e & 0x80) s += " PS";
  if (e & 0x100) s += " G";
  if (e & (1ull << 63)) s += " NX";
  return s;
}

std::string page_fault_error(uint32_t ec) {
  std::string s = (ec & 1) ? "protection violation" : "page not present";
  s += (ec & 2) ? ", write" : ", read";
  s += (ec & 4) ? ", user mode (CPL 3)" : ", supervisor mode";
  if (ec & 8) s += ", reserved bit set";
  if (ec & 16) s += ", instruction fetch";
  return s;
}

std::string_view walk_level_name(unsigned levels, unsigned index) {
  static constexpr std::string_view k4[] = {"PML4", "PDPT", "PD", "PT"};
  if (levels > 4 || index >= levels) return "?";
  return k4[4 - levels + index];
}

}  // namespace trapscope::viz
