#include "compare/event_counts.hpp"

#include <initializer_list>

#include "x86/disasm.hpp"
#include "platform/hypercall.hpp"

namespace trapscope::compare {

Cause cause_of_instruction(std::string_view text) {
  const std::string_view m = text.substr(0, text.find(' '));
  auto any = [&](std::initializer_list<std::string_view> names) {
    for (auto n : names) {
      if (m == n) return true;
    }
    return false;
  };
  if (any({"in", "out", "insb", "insw", "insd", "outsb", "outsw", "outsd"})) return kIo;
  if (m == "hlt") return kHlt;
  if ((m == "mov" && text.find("cr") != std::string_view::npos) || any({"lmsw", "clts", "smsw"})) {
    return kCrAccess;
  }
  if (m == "invlpg") return kInvlpg;
  if (any({"cli", "sti", "pushf", "pushfd", "pushfq", "popf", "popfd", "popfq"})) {
    return kInterruptFlag;
  }
  if (any({"lgdt", "lidt", "lldt", "ltr", "sgdt", "sidt", "sldt", "str"})) {
    return kDescriptorTable;
  }
  if (any({"rdmsr", "wrmsr"})) return kMsr;
  if (m == "cpuid") return kCpuid;
  return kOther;
}

void Counts::on_event(const trace::EventHeader& h) {
  using T = trace::EventType;
  switch (h.type) {
    case T::kVmmTrap: {
      ++traps;
      const auto& e = reinterpret_cast<const trace::VirtEvent&>(h);
      if (source_ == Source::kTraps) ++causes[instruction_cause(h, e.insn, e.insn_len)];
      break;
    }
    case T::kVmTransition: {
      const auto& e = reinterpret_cast<const trace::VirtEvent&>(h);
      vt_cycles += e.cost_cycles;
      if (h.flags & trace::kVirtFlagEntry) break;
      ++vt_exits;
      if (source_ == Source::kVtExits) ++causes[vt_cause(e)];
      break;
    }
    case T::kVmExit: {
      const auto& e = reinterpret_cast<const trace::VmExitEvent&>(h);
      if (h.flags & trace::kExitFlagHypercallRecord) {
        ++hypercalls;
      } else if (source_ == Source::kVmExits) {
        ++causes[kvm_cause(e)];
      }
      break;
    }
    case T::kBtTranslate: ++translations; break;
    case T::kException:
      ++exceptions;
      // Raised by the emulation in the last callout (an instruction that faulted often and was
      // retranslated into a callout): the VMM took no hardware fault for it.
      if (h.rip == last_callout_rip_) ++callout_exceptions;
      break;
    case T::kBtCallout: {
      ++callouts;
      last_callout_rip_ = h.rip;
      const auto& e = reinterpret_cast<const trace::BtCalloutEvent&>(h);
      if (source_ == Source::kCallouts) ++causes[instruction_cause(h, e.insn, e.insn_len)];
      break;
    }
    case T::kRingTransition: {
      // Into the kernel from CPL 3 other than by an exception (those are priced as such).
      const auto& e = reinterpret_cast<const trace::RingTransitionEvent&>(h);
      if (e.from_cpl == 3 && e.to_cpl < 3 && e.cause != trace::RingCause::kException) {
        ++kernel_entries;
      }
      break;
    }
    case T::kShadowPaging: {
      // A page-table write made by the instruction the last callout ran (its header.rip is
      // the writing instruction, as the callout's): the callout's own work, not a trap.
      const auto& e = reinterpret_cast<const trace::ShadowPagingEvent&>(h);
      if (e.action == trace::ShadowAction::kPtWrite && last_callout_rip_ == h.rip) {
        ++callout_pt_writes;
        last_callout_rip_ = kNoRip;
      }
      break;
    }
    default: break;
  }
}

Cause Counts::kvm_cause(const trace::VmExitEvent& e) {
  switch (static_cast<trace::ExitReason>(e.reason)) {
    case trace::ExitReason::kIo:
      return e.payload.io.port == platform::kHypercallPort ? kHypercall : kIo;
    case trace::ExitReason::kHlt: return kHlt;
    case trace::ExitReason::kMmio: return kMmio;
    default: return kOther;
  }
}

Cause Counts::vt_cause(const trace::VirtEvent& e) {
  using R = trace::VmxExitReason;
  switch (static_cast<R>(e.exit_reason)) {
    case R::kIoInstruction:  // qualification bits 31:16 = port (SDM Vol. 3C 28.2.1)
      return ((e.qualification >> 16) & 0xFFFF) == platform::kHypercallPort ? kHypercall : kIo;
    case R::kHlt: return kHlt;
    case R::kCrAccess: return kCrAccess;
    case R::kInvlpg: return kInvlpg;
    case R::kCpuid: return kCpuid;
    case R::kRdmsr: case R::kWrmsr: return kMsr;
    case R::kExceptionOrNmi:
      return (e.interruption_info & 0xFF) == 14 ? kPageFault : kException;
    default: return kOther;
  }
}

Cause Counts::instruction_cause(const trace::EventHeader& h, const uint8_t* insn, uint8_t len) {
  const auto it = cause_by_rip_.find(h.rip);
  if (it != cause_by_rip_.end()) return it->second;
  const auto d = x86::disassemble({insn, len}, h.cpu_mode, h.rip);
  return cause_by_rip_[h.rip] = d.ok ? cause_of_instruction(d.text) : kOther;
}

}  // namespace trapscope::compare
