// x86/decoder.hpp — Zydis 4 → x86::Instruction (the simulator's decoded form).
// Part of the one Zydis adapter (with disasm.hpp); nothing else in trapscope includes Zydis.
#pragma once

#include <cstdint>
#include <span>

#include "x86/state.hpp"
#include "x86/insn.hpp"

namespace trapscope::x86 {

enum class DecodeStatus : uint8_t {
  kOk,
  kInvalid,    // not a valid instruction in this mode (→ #UD)
  kTruncated,  // the bytes end before the instruction does (→ fetch more, or #PF/#GP)
};

// Decodes the instruction at the start of `bytes` for `mode`. An instruction that decodes but
// is outside the simulator's subset comes back kOk with op == Op::kUnsupported.
DecodeStatus decode(std::span<const uint8_t> bytes, CpuMode mode, Instruction* out);

}  // namespace trapscope::x86
