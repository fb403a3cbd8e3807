#include "trace/printer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <span>

#include "x86/disasm.hpp"
#include "trace/page_walk.hpp"

namespace trapscope::trace {
namespace {

std::string hex(uint64_t v) { return fmt::format("{:#x}", v); }

std::string bytes_hex(std::span<const uint8_t> bytes) {
  return fmt::format("{:02x}", fmt::join(bytes, ""));
}

// The instruction bytes a record holds: its length field clamped to the array, since a crafted
// or corrupt trace can claim more than the 15 bytes there are (reading on would read the next
// record).
template <size_t N>
std::span<const uint8_t> held(const uint8_t (&bytes)[N], size_t len) {
  return {bytes, std::min<size_t>(len, N)};
}

// A packed record's field as a value: nlohmann::json (and any T&& parameter) would bind a
// reference to it, and a field at an unaligned offset makes that reference misaligned (UBSan:
// "reference binding to misaligned address").
template <typename T>
T value(T field) {
  return field;
}

std::string duration(uint64_t ns) {
  char buf[32];
  if (ns < 10'000) {
    std::snprintf(buf, sizeof buf, "%.2fus", static_cast<double>(ns) / 1e3);
  } else if (ns < 10'000'000) {
    std::snprintf(buf, sizeof buf, "%.1fus", static_cast<double>(ns) / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.1fms", static_cast<double>(ns) / 1e6);
  }
  return buf;
}

// Mnemonics of the exception vectors (SDM Vol. 3A table 6-1).
constexpr const char* kAccessName[] = {"read", "write", "fetch"};

std::string_view vector_name(uint8_t v) {
  static constexpr std::string_view kNames[] = {
      "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP",
      "#SS", "#GP", "#PF", "(15)", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP"};
  return v < std::size(kNames) ? kNames[v] : "interrupt";
}

std::string disasm_of(const VmExitEvent& e) {
  if (e.insn_len == 0) return "(instruction bytes not readable)";
  return x86::disassemble(held(e.insn, e.insn_len), e.header.cpu_mode, e.insn_addr).text;
}

std::string printable(uint64_t v, unsigned size) {
  char buf[8] = "";
  if (size == 1 && v >= 0x20 && v < 0x7f) std::snprintf(buf, sizeof buf, " '%c'", char(v));
  if (size == 1 && v == '\n') std::snprintf(buf, sizeof buf, " '\\n'");
  return buf;
}

std::string exit_detail_text(const VmExitEvent& e) {
  const ExitPayload& p = e.payload;
  switch (static_cast<ExitReason>(e.reason)) {
    case ExitReason::kIo:
      return fmt::format("port={:#x} {} size={}{} value={:#x}{}", p.io.port,
                         p.io.direction ? "out" : "in", p.io.size,
                         p.io.count > 1 ? " count=" + std::to_string(p.io.count) : "",
                         value(p.io.value), printable(p.io.value, p.io.size));
    case ExitReason::kMmio:
      return fmt::format("gpa={:#x} {} len={} data={:#x}", value(p.mmio.gpa),
                         p.mmio.is_write ? "write" : "read", p.mmio.len, value(p.mmio.data));
    case ExitReason::kInternalError:
      return fmt::format("suberror={}{} ndata={}", value(p.internal.suberror),
                         p.internal.suberror == 1 ? " (emulation failure)" : "",
                         value(p.internal.ndata));
    case ExitReason::kFailEntry:
      return fmt::format("hardware_entry_failure_reason={:#x} cpu={}",
                         value(p.fail_entry.hardware_entry_failure_reason),
                         value(p.fail_entry.cpu));
    case ExitReason::kDebug:
      return fmt::format("exception={} dr6={:#x} dr7={:#x}", value(p.debug.exception),
                         value(p.debug.dr6), value(p.debug.dr7));
    case ExitReason::kSystemEvent:
      return fmt::format("type={}", value(p.system_event.type));
    case ExitReason::kHypercall:  // platform/hypercall.hpp: the call behind the I/O exit before it
      return fmt::format("nr={} arg1={:#x} arg2={:#x} result={}", value(p.hypercall.nr),
                         value(p.hypercall.arg1), value(p.hypercall.arg2),
                         value(p.hypercall.result));
    default:
      return "";
  }
}

nlohmann::json exit_detail_json(const VmExitEvent& e) {
  const ExitPayload& p = e.payload;
  switch (static_cast<ExitReason>(e.reason)) {
    case ExitReason::kIo:
      return {{"io",
               {{"port", value(p.io.port)},
                {"direction", p.io.direction ? "out" : "in"},
                {"size", value(p.io.size)},
                {"count", value(p.io.count)},
                {"value", value(p.io.value)}}}};
    case ExitReason::kMmio:
      return {{"mmio",
               {{"gpa", hex(p.mmio.gpa)},
                {"direction", p.mmio.is_write ? "write" : "read"},
                {"len", value(p.mmio.len)},
                {"data", hex(p.mmio.data)}}}};
    case ExitReason::kInternalError:
      return {{"internal_error",
               {{"suberror", value(p.internal.suberror)},
                {"ndata", value(p.internal.ndata)},
                {"data", {hex(p.internal.data[0]), hex(p.internal.data[1])}}}}};
    case ExitReason::kFailEntry:
      return {{"fail_entry",
               {{"hardware_entry_failure_reason", hex(p.fail_entry.hardware_entry_failure_reason)},
                {"cpu", value(p.fail_entry.cpu)}}}};
    case ExitReason::kDebug:
      return {{"debug",
               {{"exception", value(p.debug.exception)},
                {"dr6", hex(p.debug.dr6)},
                {"dr7", hex(p.debug.dr7)}}}};
    case ExitReason::kSystemEvent:
      return {{"system_event", {{"type", value(p.system_event.type)}}}};
    case ExitReason::kHypercall:
      return {{"hypercall",
               {{"nr", value(p.hypercall.nr)},
                {"arg1", hex(p.hypercall.arg1)},
                {"arg2", hex(p.hypercall.arg2)},
                {"result", value(p.hypercall.result)}}}};
    default:
      return nlohmann::json::object();
  }
}

std::string_view bt_kind_name(uint8_t kind) {
  return to_string(static_cast<BtKind>(std::min<uint8_t>(kind, static_cast<uint8_t>(BtKind::kMax))));
}

std::string disasm(std::span<const uint8_t> bytes, const EventHeader& h) {
  return x86::disassemble(bytes, h.cpu_mode, h.rip).text;
}

// [SECTION] Binary translation's texts (bt_event_text)
std::string bt_text(const BtTranslateEvent& e) {
  const EventHeader& h = e.header;
  std::string s = "bt translate unit " + std::to_string(e.unit) + " rip=" + hex(h.rip) + ".." +
                  hex(h.rip + e.guest_bytes) + " gpa=" + hex(e.guest_pa) + " " +
                  std::to_string(e.count) + " insns";
  if (e.generation) s += " (retranslation " + std::to_string(e.generation) + ")";
  s += ":";
  for (unsigned i = 0; i < e.count && i < kBtMaxUnitInsns; ++i) {
    s += " " + std::to_string(e.len[i]) + ":" + std::string(bt_kind_name(e.kind[i]));
  }
  return s;
}
std::string bt_text(const BtChainEvent& e) {
  const EventHeader& h = e.header;
  return "bt chain  unit " + std::to_string(e.from_unit) +
         ((h.flags & kBtFlagTaken) ? " (taken)" : " (fall-through)") + " -> unit " +
         std::to_string(e.to_unit) + " at rip=" + hex(h.rip);
}
std::string bt_text(const BtLookupEvent& e) {
  const EventHeader& h = e.header;
  return std::string("bt lookup ") + ((h.flags & kBtFlagHit) ? "hit" : "miss") + " rip=" +
         hex(h.rip) + " unit " + std::to_string(e.unit);
}
std::string bt_text(const BtInvalidateEvent& e) {
  return "bt invalidate " + std::to_string(e.units) + " units of page gpa=" + hex(e.page_pa) +
         " (written since translated)";
}
std::string bt_text(const BtCalloutEvent& e) {
  const EventHeader& h = e.header;
  return std::string("bt callout") + ((h.flags & kBtFlagAdaptive) ? " (adaptive)" : "") +
         " unit " + std::to_string(e.unit) + " rip=" + hex(h.rip) + " " +
         disasm(held(e.insn, e.insn_len), h);
}
std::string bt_text(const BtCountsEvent& e) {
  return "bt counts unit " + std::to_string(e.unit) + " rip=" + hex(e.header.rip) + ": " +
         std::to_string(e.executions) + " executions, " + std::to_string(e.instructions) +
         " instructions executed";
}

// "ata 0 command READ SECTORS (0x20) lba=1 count=1": the device, its unit, the action and the
// fields that action fills (trace/device_event.hpp).
std::string device_text(const DeviceEvent& e) {
  std::string s = fmt::format("{} {} {}", to_string(e.device), e.unit, to_string(e.action));
  const auto command_name = [&]() -> std::string {
    std::string_view name = e.device == DeviceKind::kAta
                                ? ata_command_name(static_cast<uint8_t>(e.command))
                                : e.device == DeviceKind::kVirtioBlk
                                      ? virtio_blk_type_name(e.command)
                                      : std::string_view("?");
    return name == "?" ? hex(e.command) : fmt::format("{} ({:#x})", name, value(e.command));
  };
  switch (e.action) {
    case DeviceAction::kRegisterRead:
    case DeviceAction::kRegisterWrite:
      s += fmt::format(" reg={:#x} value={:#x} ({} bytes)", value(e.command), value(e.value),
                       value(e.count));
      break;
    case DeviceAction::kCommand:
      s += fmt::format(" {} lba={} count={}", command_name(), value(e.address), value(e.count));
      break;
    case DeviceAction::kData:
      s += fmt::format(" {} accesses, {} bytes", value(e.count), value(e.bytes));
      break;
    case DeviceAction::kComplete:
      s += fmt::format(" {} status={:#04x} sectors={}", command_name(), value(e.status),
                       value(e.count));
      break;
    case DeviceAction::kError:
      s += fmt::format(" {} status={:#04x} error={:#x}", command_name(), value(e.status),
                       value(e.value));
      break;
    case DeviceAction::kNotify: s += fmt::format(" queue {}", value(e.command)); break;
    case DeviceAction::kChain:
      s += fmt::format(" head={} {} sector={} descriptors={} bytes={}", value(e.value),
                       command_name(), value(e.address), value(e.count), value(e.bytes));
      break;
    case DeviceAction::kUsed: s += fmt::format(" used.idx={}", value(e.value)); break;
    case DeviceAction::kNeedsReset: s += fmt::format(" reason={}", value(e.value)); break;
    case DeviceAction::kDma:
      s += fmt::format(" address={:#x} -> gpa={:#x} bytes={}", value(e.address), value(e.value),
                       value(e.bytes));
      break;
    case DeviceAction::kIommuFault:
      s += fmt::format(" address={:#x} bytes={} blocked", value(e.address), value(e.bytes));
      break;
    case DeviceAction::kFlush:
    case DeviceAction::kMax: break;
  }
  return s;
}

// [SECTION] Text: one function per record type, called through trace::visit (events.def).
// Each appends what follows the sequence number and time; `timing` adds the host times.
struct TextLine {
  std::string& line;
  bool timing;

  void operator()(const EventHeader& h) {  // an unknown type or a record of the wrong size
    line += " event type " + std::to_string(static_cast<unsigned>(h.type));
  }
  void operator()(const VmExitEvent& e) {
    const EventHeader& h = e.header;
    line += fmt::format(" VM exit {:<14} rip=0x{:<8x} cpl={} {:<8}", exit_reason_name(e.reason),
                        value(h.rip), h.cpl == kCplUnknown ? "?" : std::to_string(h.cpl),
                        to_string(h.cpu_mode));
    line += fmt::format(" {:<22} {}", disasm_of(e), exit_detail_text(e));
    if (timing) line += "  handled in " + duration(e.handle_ns);
  }
  void operator()(const RunEndEvent& e) {
    line += " run end: " + std::string(to_string(e.reason));
    if (e.reason == RunEndReason::kGuestExit) line += " " + std::to_string(e.exit_code);
    line += " at rip=" + hex(e.header.rip) + " after " + std::to_string(e.exits) + " VM exits";
    if (timing) line += " in " + duration(e.duration_ns);
  }
  void operator()(const RingTransitionEvent& e) {
    line += fmt::format(" ring    CPL {} -> {} by {}", e.from_cpl, e.to_cpl, to_string(e.cause));
    if (e.cause == RingCause::kException || e.cause == RingCause::kInterrupt ||
        e.cause == RingCause::kSoftwareInt) {
      line += " (vector " + std::to_string(e.vector) + ")";
    }
    line += " at rip=" + hex(e.from_rip) + " -> " + hex(e.header.rip);
  }
  void operator()(const ExceptionEvent& e) {
    const EventHeader& h = e.header;
    line += " exception " + std::string(vector_name(e.vector)) + " (vector " +
            std::to_string(e.vector) + ")";
    if (e.has_error_code) line += " error=" + hex(e.error_code);
    if (e.vector == 14) line += " cr2=" + hex(e.cr2);
    line += std::string(e.software ? " software" : "") + " at rip=" + hex(h.rip) +
            " cpl=" + std::to_string(h.cpl);
  }
  void operator()(const PageWalkEvent& e) {
    const EventHeader& h = e.header;
    line += " walk    " + hex(e.linear) + " " + kAccessName[e.access % 3] +
            (e.user ? " user" : " supervisor") + " (" +
            std::string(walk_structure_name(h.flags)) +
            ((h.flags & kWalkByVmm) ? ", by the shadow-paging VMM" : "") + "):";
    for (const WalkRef& r : decode_walk(e)) {
      line += " " + std::string(r.level_name) + "[" + std::to_string(r.index) + "]@" +
              hex(r.entry_address) + "=" + hex(r.entry) + " (" + r.flags + ")";
    }
    line += e.faulted ? " -> #PF error=" + hex(e.error_code) : " -> " + hex(e.physical);
  }
  void operator()(const NestedWalkEvent& e) {
    const EventHeader& h = e.header;
    line += " 2D walk " + hex(e.linear) + " " + kAccessName[e.access % 3] + " (" +
            std::string(walk_structure_name(h.flags)) + " guest over 4-level EPT, " +
            std::to_string(e.nrefs) + " references):";
    for (unsigned i = 0; i < e.nrefs && i < kMaxNestedRefs; ++i) {
      const NestedWalkRef& r = e.ref[i];
      line += r.kind == NestedRefKind::kEpt
                  ? " " + std::string(ept_level_name(r.level)) + "[" + std::to_string(r.index) +
                        "]"
                  : " | " + std::string(guest_level_name(h.flags, r.level)) + "[" +
                        std::to_string(r.index) + "]@" + hex(r.gpa) + "=" + hex(r.entry) + " |";
      if (r.fault) line += "!";
    }
    if (e.faulted == 1) line += " -> #PF error=" + hex(e.error_code);
    else if (e.faulted == 2) line += " -> EPT violation";
    else line += " -> GPA " + hex(e.gpa) + " HPA " + hex(e.hpa);
  }
  void operator()(const ShadowPagingEvent& e) {
    line += " shadow  " + std::string(to_string(e.action)) + " (Intel exit reason " +
            std::to_string(e.intel_exit_reason) + ")";
    switch (e.action) {
      case ShadowAction::kCr3Write: line += " cr3=" + hex(e.linear); break;
      case ShadowAction::kFlushAll: break;
      case ShadowAction::kWriteProtect: line += " gpa=" + hex(e.gpa); break;
      case ShadowAction::kVmmWrite:
        line += " gpa=" + hex(e.gpa) + " value=" + hex(e.guest_entry);
        break;
      default:
        line += " gva=" + hex(e.linear) + " " + kAccessName[e.access % 3] +
                (e.user ? " user" : " supervisor");
        if (e.action != ShadowAction::kInvlpg) line += " gpa=" + hex(e.gpa);
        break;
    }
    if (e.action == ShadowAction::kHiddenFault) {
      line += " guest entry=" + hex(e.guest_entry) + " shadow entry=" + hex(e.shadow_entry);
    }
    if (e.action == ShadowAction::kTrueFault) line += " error=" + hex(e.error_code);
    if (e.dropped) line += " dropped " + std::to_string(e.dropped) + " shadow entries";
  }
  void operator()(const EptViolationEvent& e) {
    line += " EPT violation (Intel exit reason " + std::to_string(e.intel_exit_reason) +
            ") gpa=" + hex(e.gpa) + " gva=" + hex(e.linear) + " qualification=" +
            hex(e.qualification) + " (" + ept_qualification_text(e.qualification) + ") at " +
            std::string(ept_level_name(e.level)) +
            (e.resolution == EptResolution::kMapped ? ": VMM mapped the page"
                                                    : ": not RAM, VMM emulates (MMIO)");
  }
  void operator()(const InstructionEvent& e) {
    const EventHeader& h = e.header;
    line += " insn    rip=" + hex(h.rip) + " cpl=" + std::to_string(h.cpl) + " " +
            disasm(held(e.bytes, e.len), h);
  }
  void operator()(const VirtEvent& e) { line += " " + virt_event_text(e, true); }
  void operator()(const DeviceEvent& e) { line += " device  " + device_text(e); }
  template <typename Bt>
    requires(requires(const Bt& b) { bt_text(b); })
  void operator()(const Bt& e) {
    line += " " + bt_text(e);
  }
};

// [SECTION] JSON: the fields beyond the header's, one function per record type.
struct JsonFields {
  nlohmann::json& j;
  bool timing;

  void operator()(const EventHeader&) {}
  void operator()(const VmExitEvent& e) {
    j["reason"] = exit_reason_name(e.reason);
    j["kvm_exit_reason"] = value(e.reason);
    j["insn_addr"] = hex(e.insn_addr);
    j["insn_bytes"] = bytes_hex(held(e.insn, e.insn_len));
    j["disasm"] = disasm_of(e);
    if (timing) j["handle_ns"] = value(e.handle_ns);
    j.update(exit_detail_json(e));
  }
  void operator()(const RingTransitionEvent& e) {
    j["from_cpl"] = value(e.from_cpl);
    j["to_cpl"] = value(e.to_cpl);
    j["cause"] = to_string(e.cause);
    j["vector"] = value(e.vector);
    j["from_rip"] = hex(e.from_rip);
  }
  void operator()(const ExceptionEvent& e) {
    j["vector"] = value(e.vector);
    j["name"] = vector_name(e.vector);
    if (e.has_error_code) j["error_code"] = value(e.error_code);
    if (e.vector == 14) j["cr2"] = hex(e.cr2);
    j["software"] = e.software != 0;
  }
  void operator()(const PageWalkEvent& e) {
    const EventHeader& h = e.header;
    j["linear"] = hex(e.linear);
    j["access"] = kAccessName[e.access % 3];
    j["user"] = e.user != 0;
    j["structure"] = walk_structure_name(h.flags);
    j["by_vmm"] = (h.flags & kWalkByVmm) != 0;
    nlohmann::json levels = nlohmann::json::array();
    for (const WalkRef& r : decode_walk(e)) {
      levels.push_back({{"level", r.level_name}, {"index", value(r.index)},
                        {"table", hex(r.table)}, {"entry_address", hex(r.entry_address)},
                        {"entry", hex(r.entry)}, {"flags", r.flags}, {"fault", value(r.fault)}});
    }
    j["levels"] = levels;
    if (e.faulted) j["page_fault_error"] = value(e.error_code);
    else j["physical"] = hex(e.physical);
  }
  void operator()(const NestedWalkEvent& e) {
    const EventHeader& h = e.header;
    j["linear"] = hex(e.linear);
    j["access"] = kAccessName[e.access % 3];
    j["structure"] = walk_structure_name(h.flags);
    j["guest_levels"] = value(e.guest_levels);
    nlohmann::json refs = nlohmann::json::array();
    for (unsigned i = 0; i < e.nrefs && i < kMaxNestedRefs; ++i) {
      const NestedWalkRef& r = e.ref[i];
      const bool ept = r.kind == NestedRefKind::kEpt;
      refs.push_back({{"kind", ept ? "ept" : "guest"},
                      {"level", ept ? ept_level_name(r.level) : guest_level_name(h.flags, r.level)},
                      {"index", value(r.index)}, {"gpa", hex(r.gpa)}, {"hpa", hex(r.hpa)},
                      {"entry", hex(r.entry)},
                      {"flags", ept ? ept_entry_flags(r.entry, r.level == 1)
                                    : guest_entry_flags(r.entry, r.level == 1)},
                      {"fault", r.fault != 0}});
    }
    j["refs"] = refs;
    if (e.faulted == 1) j["page_fault_error"] = value(e.error_code);
    else if (e.faulted == 2) j["ept_violation"] = true;
    else {
      j["gpa"] = hex(e.gpa);
      j["hpa"] = hex(e.hpa);
    }
  }
  void operator()(const ShadowPagingEvent& e) {
    j["action"] = to_string(e.action);
    j["intel_exit_reason"] = value(e.intel_exit_reason);
    j["linear"] = hex(e.linear);
    j["gpa"] = hex(e.gpa);
    j["access"] = kAccessName[e.access % 3];
    j["user"] = e.user != 0;
    j["guest_entry"] = hex(e.guest_entry);
    j["shadow_entry"] = hex(e.shadow_entry);
    j["error_code"] = value(e.error_code);
    j["dropped"] = value(e.dropped);
  }
  void operator()(const EptViolationEvent& e) {
    j["intel_exit_reason"] = value(e.intel_exit_reason);
    j["gpa"] = hex(e.gpa);
    j["linear"] = hex(e.linear);
    j["qualification"] = hex(e.qualification);
    j["qualification_text"] = ept_qualification_text(e.qualification);
    j["ept_level"] = value(e.level);
    j["resolution"] = e.resolution == EptResolution::kMapped ? "mapped" : "mmio";
  }
  void operator()(const InstructionEvent& e) {
    j["insn_bytes"] = bytes_hex(held(e.bytes, e.len));
    j["disasm"] = disasm(held(e.bytes, e.len), e.header);
  }
  void operator()(const VirtEvent& e) {
    const EventHeader& h = e.header;
    j["technique"] = to_string(static_cast<VirtTechnique>(e.technique));
    j["real_cpl"] = value(e.real_cpl);
    j["insn_bytes"] = bytes_hex(held(e.insn, e.insn_len));
    j["disasm"] = e.insn_len ? disasm(held(e.insn, e.insn_len), h) : std::string();
    if (h.type == EventType::kVmTransition) {
      j["transition"] = (h.flags & kVirtFlagEntry) ? "vm_entry" : "vm_exit";
      j["vmx_exit_reason"] = value(e.exit_reason);
      j["vmx_exit_reason_name"] = vmx_exit_reason_name(e.exit_reason);
      j["exit_qualification"] = hex(e.qualification);
      if (!(h.flags & kVirtFlagEntry)) {
        nlohmann::json fields = nlohmann::json::array();
        for (const x86::VmxField& f :
             x86::decode_exit_qualification(e.exit_reason, e.qualification, e.interruption_info)) {
          fields.push_back({{"bits", f.bits}, {"name", f.name}, {"value", f.value}});
        }
        j["exit_qualification_fields"] = fields;  // SDM Vol. 3C 28.2.1 (x86/vmx.hpp)
      }
      if (e.interruption_info) {
        const bool dt = e.exit_reason == static_cast<uint32_t>(x86::VmxExit::kGdtrIdtrAccess) ||
                        e.exit_reason == static_cast<uint32_t>(x86::VmxExit::kLdtrTrAccess);
        j[dt ? "instruction_info" : "interruption_info"] = hex(e.interruption_info);
      }
      j["modelled_cycles"] = value(e.cost_cycles);
    } else if (h.type == EventType::kVmmTrap) {
      j["trap_vector"] = value(e.exit_reason);
    }
  }
  void operator()(const BtTranslateEvent& e) {
    j["unit"] = value(e.unit);
    j["guest_pa"] = hex(e.guest_pa);
    j["guest_bytes"] = value(e.guest_bytes);
    j["retranslation"] = value(e.generation);
    nlohmann::json insns = nlohmann::json::array();
    for (unsigned i = 0; i < e.count && i < kBtMaxUnitInsns; ++i) {
      insns.push_back({{"len", value(e.len[i])}, {"kind", bt_kind_name(e.kind[i])}});
    }
    j["insns"] = insns;
    j["code"] = bytes_hex(held(e.code, e.guest_bytes));
  }
  void operator()(const BtCountsEvent& e) {
    j["unit"] = value(e.unit);
    j["executions"] = value(e.executions);
    j["instructions"] = value(e.instructions);
  }
  void operator()(const BtChainEvent& e) {
    j["from_unit"] = value(e.from_unit);
    j["to_unit"] = value(e.to_unit);
    j["exit"] = (e.header.flags & kBtFlagTaken) ? "taken" : "fall-through";
  }
  void operator()(const BtLookupEvent& e) {
    j["unit"] = value(e.unit);
    j["hit"] = (e.header.flags & kBtFlagHit) != 0;
  }
  void operator()(const BtInvalidateEvent& e) {
    j["page_pa"] = hex(e.page_pa);
    j["units"] = value(e.units);
  }
  void operator()(const BtCalloutEvent& e) {
    j["unit"] = value(e.unit);
    j["adaptive"] = (e.header.flags & kBtFlagAdaptive) != 0;
    j["insn_bytes"] = bytes_hex(held(e.insn, e.insn_len));
    j["disasm"] = disasm(held(e.insn, e.insn_len), e.header);
  }
  void operator()(const DeviceEvent& e) {
    j["device"] = to_string(e.device);
    j["unit"] = value(e.unit);
    j["action"] = to_string(e.action);
    j["status"] = value(e.status);
    j["command"] = value(e.command);
    j["address"] = value(e.address);
    j["count"] = value(e.count);
    j["bytes"] = value(e.bytes);
    j["value"] = value(e.value);
    j["text"] = device_text(e);
  }
  void operator()(const RunEndEvent& e) {
    j["reason"] = to_string(e.reason);
    j["exit_code"] = value(e.exit_code);
    j["exits"] = value(e.exits);
    if (timing) j["duration_ns"] = value(e.duration_ns);
  }
};

}  // namespace

std::string EventFormatter::format(const EventHeader& event) {
  if (!have_base_) {
    have_base_ = true;
    base_ns_ = event.time_ns;
  }
  return options_.format == Format::kJsonl ? jsonl(event) : text(event);
}

std::string EventFormatter::text(const EventHeader& h) {
  std::string line = "#";
  line += std::to_string(h.seq);
  line.resize(std::max<size_t>(line.size(), 6), ' ');
  if (options_.timing) {
    line += " +" + duration(h.time_ns - base_ns_);
    line.resize(std::max<size_t>(line.size(), 18), ' ');
  }
  visit(h, TextLine{line, options_.timing});
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line;
}

std::string EventFormatter::jsonl(const EventHeader& h) {
  nlohmann::json j{{"seq", value(h.seq)}, {"type", to_string(h.type)}, {"rip", hex(h.rip)},
                   {"mode", to_string(h.cpu_mode)}};
  if (h.cpl != kCplUnknown) j["cpl"] = value(h.cpl);
  if (options_.timing) j["time_ns"] = value(h.time_ns);
  visit(h, JsonFields{j, options_.timing});
  return j.dump();
}

std::string bt_event_text(const EventHeader& h) {
  return visit(h, [](const auto& e) -> std::string {
    if constexpr (requires { bt_text(e); }) {
      return bt_text(e);
    } else {
      return "";
    }
  });
}

std::string virt_event_text(const VirtEvent& e, bool with_cost) {
  const EventHeader& h = e.header;
  const std::string dis = e.insn_len ? disasm(held(e.insn, e.insn_len), h) : "";
  if (h.type == EventType::kVmmTrap) {
    return fmt::format("trap    rip={:#x} {}: privileged at real CPL {} -> #GP, trapped to the "
                       "VMM, emulated",
                       value(h.rip), dis, e.real_cpl);
  }
  if (h.type == EventType::kSensitiveNoTrap) {
    return fmt::format("NO TRAP rip={:#x} {}: sensitive instruction did not trap (ran at real "
                       "CPL {} against the real state)",
                       value(h.rip), dis, e.real_cpl);
  }
  const bool entry = h.flags & kVirtFlagEntry;
  std::string s = std::string(entry ? "VM entry" : "VM exit ") + " " +
                  std::to_string(e.exit_reason) + " " +
                  std::string(vmx_exit_reason_name(e.exit_reason)) + " rip=" + hex(h.rip);
  if (!dis.empty()) s += " " + dis;
  if (!entry) {
    s += " qualification=" + hex(e.qualification);
    const std::string q = x86::exit_qualification_text(e.exit_reason, e.qualification,
                                                       e.interruption_info);
    if (!q.empty()) s += " (" + q + ")";
    const bool dt = e.exit_reason == static_cast<uint32_t>(x86::VmxExit::kGdtrIdtrAccess) ||
                    e.exit_reason == static_cast<uint32_t>(x86::VmxExit::kLdtrTrAccess);
    if (e.interruption_info) {
      s += (dt ? " instruction-info=" : " interruption-info=") + hex(e.interruption_info);
    }
  }
  if (with_cost) s += " cost=" + std::to_string(e.cost_cycles) + " cycles (model)";
  return s;
}

void PrintSink::on_event(const EventHeader& event) {
  std::string line = formatter_.format(event);
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), out_);
}

}  // namespace trapscope::trace
