#include "trace/printer.hpp"

#include <algorithm>
#include <cinttypes>
#include <nlohmann/json.hpp>
#include <span>

#include "x86/disasm.hpp"
#include "trace/page_walk.hpp"

namespace trapscope::trace {
namespace {

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

std::string bytes_hex(std::span<const uint8_t> bytes) {
  std::string s;
  char buf[4];
  for (const uint8_t b : bytes) {
    std::snprintf(buf, sizeof buf, "%02x", b);
    s += buf;
  }
  return s;
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
  char buf[160];
  const ExitPayload& p = e.payload;
  switch (static_cast<ExitReason>(e.reason)) {
    case ExitReason::kIo:
      std::snprintf(buf, sizeof buf, "port=0x%x %s size=%u%s value=0x%" PRIx64 "%s",
                    p.io.port, p.io.direction ? "out" : "in", p.io.size,
                    p.io.count > 1 ? (" count=" + std::to_string(p.io.count)).c_str() : "",
                    p.io.value, printable(p.io.value, p.io.size).c_str());
      return buf;
    case ExitReason::kMmio:
      std::snprintf(buf, sizeof buf, "gpa=0x%" PRIx64 " %s len=%u data=0x%" PRIx64, p.mmio.gpa,
                    p.mmio.is_write ? "write" : "read", p.mmio.len, p.mmio.data);
      return buf;
    case ExitReason::kInternalError:
      std::snprintf(buf, sizeof buf, "suberror=%u%s ndata=%u", p.internal.suberror,
                    p.internal.suberror == 1 ? " (emulation failure)" : "", p.internal.ndata);
      return buf;
    case ExitReason::kFailEntry:
      std::snprintf(buf, sizeof buf, "hardware_entry_failure_reason=0x%" PRIx64 " cpu=%u",
                    p.fail_entry.hardware_entry_failure_reason, p.fail_entry.cpu);
      return buf;
    case ExitReason::kDebug:
      std::snprintf(buf, sizeof buf, "exception=%u dr6=0x%" PRIx64 " dr7=0x%" PRIx64,
                    p.debug.exception, p.debug.dr6, p.debug.dr7);
      return buf;
    case ExitReason::kSystemEvent:
      std::snprintf(buf, sizeof buf, "type=%u", p.system_event.type);
      return buf;
    case ExitReason::kHypercall:  // platform/hypercall.hpp: the call behind the I/O exit before it
      std::snprintf(buf, sizeof buf, "nr=%u arg1=0x%" PRIx64 " arg2=0x%" PRIx64 " result=%d",
                    p.hypercall.nr, p.hypercall.arg1, p.hypercall.arg2, p.hypercall.result);
      return buf;
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
  if (h.type == EventType::kVmExit && h.size == sizeof(VmExitEvent)) {
    const auto& e = reinterpret_cast<const VmExitEvent&>(h);
    char head[96];
    std::snprintf(head, sizeof head, " VM exit %-14s rip=0x%-8" PRIx64 " cpl=%s %-8s",
                  std::string(exit_reason_name(e.reason)).c_str(), h.rip,
                  h.cpl == kCplUnknown ? "?" : std::to_string(h.cpl).c_str(),
                  std::string(to_string(h.cpu_mode)).c_str());
    line += head;
    std::string dis = disasm_of(e);
    dis.resize(std::max<size_t>(dis.size(), 22), ' ');
    line += " " + dis + " " + exit_detail_text(e);
    if (options_.timing) line += "  handled in " + duration(e.handle_ns);
  } else if (h.type == EventType::kRunEnd && h.size == sizeof(RunEndEvent)) {
    const auto& e = reinterpret_cast<const RunEndEvent&>(h);
    line += " run end: " + std::string(to_string(e.reason));
    if (e.reason == RunEndReason::kGuestExit) line += " " + std::to_string(e.exit_code);
    line += " at rip=" + hex(h.rip) + " after " + std::to_string(e.exits) + " VM exits";
    if (options_.timing) line += " in " + duration(e.duration_ns);
  } else if (h.type == EventType::kRingTransition && h.size == sizeof(RingTransitionEvent)) {
    const auto& e = reinterpret_cast<const RingTransitionEvent&>(h);
    char buf[160];
    std::snprintf(buf, sizeof buf, " ring    CPL %u -> %u by %s", e.from_cpl, e.to_cpl,
                  std::string(to_string(e.cause)).c_str());
    line += buf;
    if (e.cause == RingCause::kException || e.cause == RingCause::kInterrupt ||
        e.cause == RingCause::kSoftwareInt) {
      line += " (vector " + std::to_string(e.vector) + ")";
    }
    line += " at rip=" + hex(e.from_rip) + " -> " + hex(h.rip);
  } else if (h.type == EventType::kException && h.size == sizeof(ExceptionEvent)) {
    const auto& e = reinterpret_cast<const ExceptionEvent&>(h);
    line += " exception " + std::string(vector_name(e.vector)) + " (vector " +
            std::to_string(e.vector) + ")";
    if (e.has_error_code) line += " error=" + hex(e.error_code);
    if (e.vector == 14) line += " cr2=" + hex(e.cr2);
    line += std::string(e.software ? " software" : "") + " at rip=" + hex(h.rip) +
            " cpl=" + std::to_string(h.cpl);
  } else if (h.type == EventType::kPageWalk && h.size == sizeof(PageWalkEvent)) {
    const auto& e = reinterpret_cast<const PageWalkEvent&>(h);
    line += " walk    " + hex(e.linear) + " " + kAccessName[e.access % 3] +
            (e.user ? " user" : " supervisor") + " (" +
            std::string(walk_structure_name(h.flags)) +
            ((h.flags & kWalkByVmm) ? ", by the shadow-paging VMM" : "") + "):";
    for (const WalkRef& r : decode_walk(e)) {
      line += " " + std::string(r.level_name) + "[" + std::to_string(r.index) + "]@" +
              hex(r.entry_address) + "=" + hex(r.entry) + " (" + r.flags + ")";
    }
    line += e.faulted ? " -> #PF error=" + hex(e.error_code) : " -> " + hex(e.physical);
  } else if (h.type == EventType::kNestedWalk && h.size == sizeof(NestedWalkEvent)) {
    const auto& e = reinterpret_cast<const NestedWalkEvent&>(h);
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
  } else if (h.type == EventType::kShadowPaging && h.size == sizeof(ShadowPagingEvent)) {
    const auto& e = reinterpret_cast<const ShadowPagingEvent&>(h);
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
  } else if (h.type == EventType::kEptViolation && h.size == sizeof(EptViolationEvent)) {
    const auto& e = reinterpret_cast<const EptViolationEvent&>(h);
    line += " EPT violation (Intel exit reason " + std::to_string(e.intel_exit_reason) +
            ") gpa=" + hex(e.gpa) + " gva=" + hex(e.linear) + " qualification=" +
            hex(e.qualification) + " (" + ept_qualification_text(e.qualification) + ") at " +
            std::string(ept_level_name(e.level)) +
            (e.resolution == EptResolution::kMapped ? ": VMM mapped the page"
                                                    : ": not RAM, VMM emulates (MMIO)");
  } else if (h.type == EventType::kInstruction && h.size == sizeof(InstructionEvent)) {
    const auto& e = reinterpret_cast<const InstructionEvent&>(h);
    line += " insn    rip=" + hex(h.rip) + " cpl=" + std::to_string(h.cpl) + " " +
            x86::disassemble(held(e.bytes, e.len), h.cpu_mode, h.rip).text;
  } else if (h.size == sizeof(VirtEvent) &&
             (h.type == EventType::kVmmTrap || h.type == EventType::kSensitiveNoTrap ||
              h.type == EventType::kVmTransition)) {
    line += " " + virt_event_text(reinterpret_cast<const VirtEvent&>(h), true);
  } else if (std::string bt = bt_event_text(h); !bt.empty()) {
    line += " " + bt;
  } else {
    line += " event type " + std::to_string(static_cast<unsigned>(h.type));
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line;
}

std::string EventFormatter::jsonl(const EventHeader& h) {
  nlohmann::json j{{"seq", value(h.seq)}, {"type", to_string(h.type)}, {"rip", hex(h.rip)},
                   {"mode", to_string(h.cpu_mode)}};
  if (h.cpl != kCplUnknown) j["cpl"] = value(h.cpl);
  if (options_.timing) j["time_ns"] = value(h.time_ns);
  if (h.type == EventType::kVmExit && h.size == sizeof(VmExitEvent)) {
    const auto& e = reinterpret_cast<const VmExitEvent&>(h);
    j["reason"] = exit_reason_name(e.reason);
    j["kvm_exit_reason"] = value(e.reason);
    j["insn_addr"] = hex(e.insn_addr);
    j["insn_bytes"] = bytes_hex(held(e.insn, e.insn_len));
    j["disasm"] = disasm_of(e);
    if (options_.timing) j["handle_ns"] = value(e.handle_ns);
    j.update(exit_detail_json(e));
  } else if (h.type == EventType::kRingTransition && h.size == sizeof(RingTransitionEvent)) {
    const auto& e = reinterpret_cast<const RingTransitionEvent&>(h);
    j["from_cpl"] = value(e.from_cpl);
    j["to_cpl"] = value(e.to_cpl);
    j["cause"] = to_string(e.cause);
    j["vector"] = value(e.vector);
    j["from_rip"] = hex(e.from_rip);
  } else if (h.type == EventType::kException && h.size == sizeof(ExceptionEvent)) {
    const auto& e = reinterpret_cast<const ExceptionEvent&>(h);
    j["vector"] = value(e.vector);
    j["name"] = vector_name(e.vector);
    if (e.has_error_code) j["error_code"] = value(e.error_code);
    if (e.vector == 14) j["cr2"] = hex(e.cr2);
    j["software"] = e.software != 0;
  } else if (h.type == EventType::kPageWalk && h.size == sizeof(PageWalkEvent)) {
    const auto& e = reinterpret_cast<const PageWalkEvent&>(h);
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
  } else if (h.type == EventType::kNestedWalk && h.size == sizeof(NestedWalkEvent)) {
    const auto& e = reinterpret_cast<const NestedWalkEvent&>(h);
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
  } else if (h.type == EventType::kShadowPaging && h.size == sizeof(ShadowPagingEvent)) {
    const auto& e = reinterpret_cast<const ShadowPagingEvent&>(h);
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
  } else if (h.type == EventType::kEptViolation && h.size == sizeof(EptViolationEvent)) {
    const auto& e = reinterpret_cast<const EptViolationEvent&>(h);
    j["intel_exit_reason"] = value(e.intel_exit_reason);
    j["gpa"] = hex(e.gpa);
    j["linear"] = hex(e.linear);
    j["qualification"] = hex(e.qualification);
    j["qualification_text"] = ept_qualification_text(e.qualification);
    j["ept_level"] = value(e.level);
    j["resolution"] = e.resolution == EptResolution::kMapped ? "mapped" : "mmio";
  } else if (h.type == EventType::kInstruction && h.size == sizeof(InstructionEvent)) {
    const auto& e = reinterpret_cast<const InstructionEvent&>(h);
    j["insn_bytes"] = bytes_hex(held(e.bytes, e.len));
    j["disasm"] = x86::disassemble(held(e.bytes, e.len), h.cpu_mode, h.rip).text;
  } else if (h.size == sizeof(VirtEvent) &&
             (h.type == EventType::kVmmTrap || h.type == EventType::kSensitiveNoTrap ||
              h.type == EventType::kVmTransition)) {
    const auto& e = reinterpret_cast<const VirtEvent&>(h);
    j["technique"] = e.technique == 1 ? "trap-emulate" : "vt";
    j["real_cpl"] = value(e.real_cpl);
    j["insn_bytes"] = bytes_hex(held(e.insn, e.insn_len));
    j["disasm"] = e.insn_len ? x86::disassemble(held(e.insn, e.insn_len), h.cpu_mode, h.rip).text
                             : std::string();
    if (h.type == EventType::kVmTransition) {
      j["transition"] = (h.flags & kVirtFlagEntry) ? "vm_entry" : "vm_exit";
      j["vmx_exit_reason"] = value(e.exit_reason);
      j["vmx_exit_reason_name"] = vmx_exit_reason_name(e.exit_reason);
      j["exit_qualification"] = hex(e.qualification);
      if (e.interruption_info) j["interruption_info"] = hex(e.interruption_info);
      j["modelled_cycles"] = value(e.cost_cycles);
    } else if (h.type == EventType::kVmmTrap) {
      j["trap_vector"] = value(e.exit_reason);
    }
  } else if (h.type == EventType::kBtTranslate && h.size == sizeof(BtTranslateEvent)) {
    const auto& e = reinterpret_cast<const BtTranslateEvent&>(h);
    j["unit"] = value(e.unit);
    j["guest_pa"] = hex(e.guest_pa);
    j["guest_bytes"] = value(e.guest_bytes);
    j["retranslation"] = value(e.generation);
    nlohmann::json insns = nlohmann::json::array();
    for (unsigned i = 0; i < e.count && i < kBtMaxUnitInsns; ++i) {
      insns.push_back({{"len", value(e.len[i])},
                       {"kind", to_string(static_cast<BtKind>(std::min<uint8_t>(
                                    e.kind[i], static_cast<uint8_t>(BtKind::kMax))))}});
    }
    j["insns"] = insns;
    j["code"] = bytes_hex(held(e.code, e.guest_bytes));
  } else if (h.type == EventType::kBtCounts && h.size == sizeof(BtCountsEvent)) {
    const auto& e = reinterpret_cast<const BtCountsEvent&>(h);
    j["unit"] = value(e.unit);
    j["executions"] = value(e.executions);
    j["instructions"] = value(e.instructions);
  } else if (h.type == EventType::kBtChain && h.size == sizeof(BtChainEvent)) {
    const auto& e = reinterpret_cast<const BtChainEvent&>(h);
    j["from_unit"] = value(e.from_unit);
    j["to_unit"] = value(e.to_unit);
    j["exit"] = (h.flags & kBtFlagTaken) ? "taken" : "fall-through";
  } else if (h.type == EventType::kBtLookup && h.size == sizeof(BtLookupEvent)) {
    j["unit"] = value(reinterpret_cast<const BtLookupEvent&>(h).unit);
    j["hit"] = (h.flags & kBtFlagHit) != 0;
  } else if (h.type == EventType::kBtInvalidate && h.size == sizeof(BtInvalidateEvent)) {
    const auto& e = reinterpret_cast<const BtInvalidateEvent&>(h);
    j["page_pa"] = hex(e.page_pa);
    j["units"] = value(e.units);
  } else if (h.type == EventType::kBtCallout && h.size == sizeof(BtCalloutEvent)) {
    const auto& e = reinterpret_cast<const BtCalloutEvent&>(h);
    j["unit"] = value(e.unit);
    j["adaptive"] = (h.flags & kBtFlagAdaptive) != 0;
    j["insn_bytes"] = bytes_hex(held(e.insn, e.insn_len));
    j["disasm"] = x86::disassemble(held(e.insn, e.insn_len), h.cpu_mode, h.rip).text;
  } else if (h.type == EventType::kRunEnd && h.size == sizeof(RunEndEvent)) {
    const auto& e = reinterpret_cast<const RunEndEvent&>(h);
    j["reason"] = to_string(e.reason);
    j["exit_code"] = value(e.exit_code);
    j["exits"] = value(e.exits);
    if (options_.timing) j["duration_ns"] = value(e.duration_ns);
  }
  return j.dump();
}

std::string bt_event_text(const EventHeader& h) {
  if (h.size != event_size(h.type)) return "";
  switch (h.type) {
    case EventType::kBtTranslate: {
      const auto& e = reinterpret_cast<const BtTranslateEvent&>(h);
      std::string s = "bt translate unit " + std::to_string(e.unit) + " rip=" + hex(h.rip) +
                      ".." + hex(h.rip + e.guest_bytes) + " gpa=" + hex(e.guest_pa) + " " +
                      std::to_string(e.count) + " insns";
      if (e.generation) s += " (retranslation " + std::to_string(e.generation) + ")";
      s += ":";
      for (unsigned i = 0; i < e.count && i < kBtMaxUnitInsns; ++i) {
        s += " " + std::to_string(e.len[i]) + ":" +
             std::string(to_string(static_cast<BtKind>(std::min<uint8_t>(
                 e.kind[i], static_cast<uint8_t>(BtKind::kMax)))));
      }
      return s;
    }
    case EventType::kBtChain: {
      const auto& e = reinterpret_cast<const BtChainEvent&>(h);
      return "bt chain  unit " + std::to_string(e.from_unit) +
             ((h.flags & kBtFlagTaken) ? " (taken)" : " (fall-through)") + " -> unit " +
             std::to_string(e.to_unit) + " at rip=" + hex(h.rip);
    }
    case EventType::kBtLookup: {
      const auto& e = reinterpret_cast<const BtLookupEvent&>(h);
      return std::string("bt lookup ") + ((h.flags & kBtFlagHit) ? "hit" : "miss") + " rip=" +
             hex(h.rip) + " unit " + std::to_string(e.unit);
    }
    case EventType::kBtInvalidate: {
      const auto& e = reinterpret_cast<const BtInvalidateEvent&>(h);
      return "bt invalidate " + std::to_string(e.units) + " units of page gpa=" +
             hex(e.page_pa) + " (written since translated)";
    }
    case EventType::kBtCallout: {
      const auto& e = reinterpret_cast<const BtCalloutEvent&>(h);
      return std::string("bt callout") + ((h.flags & kBtFlagAdaptive) ? " (adaptive)" : "") +
             " unit " + std::to_string(e.unit) + " rip=" + hex(h.rip) + " " +
             x86::disassemble(held(e.insn, e.insn_len), h.cpu_mode, h.rip).text;
    }
    case EventType::kBtCounts: {
      const auto& e = reinterpret_cast<const BtCountsEvent&>(h);
      return "bt counts unit " + std::to_string(e.unit) + " rip=" + hex(h.rip) + ": " +
             std::to_string(e.executions) + " executions, " + std::to_string(e.instructions) +
             " instructions executed";
    }
    default: return "";
  }
}

std::string virt_event_text(const VirtEvent& e, bool with_cost) {
  const EventHeader& h = e.header;
  const std::string dis =
      e.insn_len ? x86::disassemble(held(e.insn, e.insn_len), h.cpu_mode, h.rip).text : "";
  char buf[200];
  if (h.type == EventType::kVmmTrap) {
    std::snprintf(buf, sizeof buf,
                  "trap    rip=0x%" PRIx64 " %s: privileged at real CPL %u -> #GP, trapped to the "
                  "VMM, emulated",
                  h.rip, dis.c_str(), e.real_cpl);
  } else if (h.type == EventType::kSensitiveNoTrap) {
    std::snprintf(buf, sizeof buf,
                  "NO TRAP rip=0x%" PRIx64 " %s: sensitive instruction did not trap (ran at real "
                  "CPL %u against the real state)",
                  h.rip, dis.c_str(), e.real_cpl);
  } else {
    const bool entry = h.flags & kVirtFlagEntry;
    std::string s = std::string(entry ? "VM entry" : "VM exit ") + " " +
                    std::to_string(e.exit_reason) + " " +
                    std::string(vmx_exit_reason_name(e.exit_reason)) + " rip=" + hex(h.rip);
    if (!dis.empty()) s += " " + dis;
    if (!entry) {
      s += " qualification=" + hex(e.qualification);
      if (e.interruption_info) s += " interruption-info=" + hex(e.interruption_info);
    }
    if (with_cost) s += " cost=" + std::to_string(e.cost_cycles) + " cycles (model)";
    return s;
  }
  return buf;
}

void PrintSink::on_event(const EventHeader& event) {
  std::string line = formatter_.format(event);
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), out_);
}

}  // namespace trapscope::trace
