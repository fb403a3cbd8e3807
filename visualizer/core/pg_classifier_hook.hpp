// visualizer/core/pg_classifier_hook.hpp — HOOK for the Popek–Goldberg classifier.
//
// The disassembly view marks each instruction as privileged (traps when executed outside
// CPL 0), sensitive (reads or changes machine state that a VMM must control, whether or not
// it traps), or innocuous — Popek & Goldberg, "Formal requirements for virtualizable third
// generation architectures", CACM 17(7), 1974. The classes come from the simulator's classifier
// (x86/classify.hpp); bytes that do not decode are kUnclassified.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "x86/classify.hpp"
#include "trace/event.hpp"

namespace trapscope::viz {

enum class PgClass : uint8_t {
  kUnclassified,  // the bytes do not decode as an instruction
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
inline PgClass classify_popek_goldberg(std::span<const uint8_t> bytes, trace::CpuMode mode) {
  const x86::ClassifiedInstruction ci = x86::classify_bytes(bytes, mode, 0);
  if (!ci.ok) return PgClass::kUnclassified;
  switch (ci.c.cls) {
    case x86::PgClass::kInnocuous: return PgClass::kInnocuous;
    case x86::PgClass::kSensitive: return PgClass::kSensitive;
    case x86::PgClass::kPrivileged: return PgClass::kPrivileged;
  }
  return PgClass::kUnclassified;
}

}  // namespace trapscope::viz
