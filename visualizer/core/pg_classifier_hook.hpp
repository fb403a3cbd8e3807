// visualizer/core/pg_classifier_hook.hpp — HOOK for the Popek–Goldberg classifier (issue 6).
//
// The disassembly view marks each instruction as privileged (traps when executed outside
// CPL 0), sensitive (reads or changes machine state that a VMM must control, whether or not
// it traps), or innocuous — Popek & Goldberg, "Formal requirements for virtualizable third
// generation architectures", CACM 17(7), 1974. Until the classifier exists, every instruction
// is kUnclassified and the view says so. Replace the body of classify_popek_goldberg() (or
// forward it to the classifier) and the view picks the classes up; nothing else changes.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "trace/event.hpp"

namespace trapscope::viz {

enum class PgClass : uint8_t {
  kUnclassified,  // the classifier does not exist yet (issue 6)
  kInnocuous,
  kSensitive,     // sensitive but not privileged: the x86 virtualization holes (popf, sgdt, …)
  kPrivileged,    // privileged (and sensitive): traps outside CPL 0
};

inline std::string_view to_string(PgClass c) {
  switch (c) {
    case PgClass::kInnocuous: return "innocuous";
    case PgClass::kSensitive: return "sensitive";
    case PgClass::kPrivileged: return "privileged";
    case PgClass::kUnclassified: break;
  }
  return "unclassified";
}

// The one hook: the class of the instruction at the start of `bytes` in `mode`.
inline PgClass classify_popek_goldberg(std::span<const uint8_t> /*bytes*/,
                                       trace::CpuMode /*mode*/) {
  return PgClass::kUnclassified;
}

}  // namespace trapscope::viz
