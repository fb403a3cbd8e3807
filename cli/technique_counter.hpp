// cli/technique_counter.hpp — counts the events of a virtualization technique
// (sim/virt/monitor.hpp) for the summary that `run` and `demo` print.
#pragma once

#include <map>
#include <string>

#include "backend/backend.hpp"
#include "trace/event.hpp"
#include "trace/recorder.hpp"

namespace trapscope::cli {

// Counts the events of a virtualization technique for the run's summary.
class TechniqueCounter final : public trace::EventSink {
 public:
  void on_event(const trace::EventHeader& h) override {
    if (h.type == trace::EventType::kVmmTrap) ++traps;
    if (h.type == trace::EventType::kSensitiveNoTrap) ++no_trap;
    if (h.type == trace::EventType::kVmTransition && h.size == sizeof(trace::VirtEvent)) {
      const auto& e = reinterpret_cast<const trace::VirtEvent&>(h);
      cycles += e.cost_cycles;
      if (!(h.flags & trace::kVirtFlagEntry)) ++exits[e.exit_reason];
    }
    if (h.type == trace::EventType::kVmExit && (h.flags & trace::kExitFlagHypercallRecord)) {
      const auto& e = reinterpret_cast<const trace::VmExitEvent&>(h);
      ++hypercalls;
      if (e.payload.hypercall.result != 0) ++hypercall_errors;
    }
  }
  std::string summary(const backend::Config& cfg) const {
    std::string s;
    if (cfg.technique == sim::virt::Technique::kTrapEmulate) {
      s = "trap-and-emulate (guest kernel at real CPL " + std::to_string(cfg.deprivilege) +
          "): " + std::to_string(traps) + " privileged instructions trapped to the VMM, " +
          std::to_string(no_trap) + " sensitive instructions did NOT trap\n";
    } else {
      uint64_t n = 0;
      std::string by;
      for (const auto& [reason, count] : exits) {
        n += count;
        by += (by.empty() ? "" : ", ") + std::to_string(count) + " " +
              std::string(trace::vmx_exit_reason_name(reason)) + " (" + std::to_string(reason) +
              ")";
      }
      s = std::string(cfg.technique == sim::virt::Technique::kPv ? "paravirtualization (" +
                                                                  std::to_string(hypercalls) +
                                                                  " hypercalls, " +
                                                                  std::to_string(hypercall_errors) +
                                                                  " refused) over the VT-x model: "
                                                            : "VT-x model: ") +
          std::to_string(n) + " VM exits" + (by.empty() ? "" : " [" + by + "]") +
          ", modelled cost of exits + entries " + std::to_string(cycles) +
          " cycles (a model: Adams & Agesen 2006, Core 2)\n";
    }
    return s;
  }
  uint64_t traps = 0, no_trap = 0, cycles = 0, hypercalls = 0, hypercall_errors = 0;
  std::map<uint32_t, uint64_t> exits;
};

}  // namespace trapscope::cli
