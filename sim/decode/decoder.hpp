// sim/decode/decoder.hpp — Zydis 4 → sim::Instruction (the simulator's decoded form).
// Part of the one Zydis adapter (with disasm.hpp); nothing else in trapscope includes Zydis.
#pragma once

#include <cstdint>
#include <span>

#include "sim/cpu_state.hpp"
#include "sim/insn.hpp"
#include "trace/event.hpp"

namespace trapscope::decode {

enum class DecodeStatus : uint8_t {
  kOk,
  kInvalid,    // not a valid instruction in this mode (→ #UD)
  kTruncated,  // the bytes end before the instruction does (→ fetch more, or #PF/#GP)
};

// Decodes the instruction at the start of `bytes` for `mode`. An instruction that decodes but
// is outside the simulator's subset comes back kOk with op == sim::Op::kUnsupported.
DecodeStatus decode(std::span<const uint8_t> bytes, trace::CpuMode mode, sim::Instruction* out);

}  // namespace trapscope::decode
