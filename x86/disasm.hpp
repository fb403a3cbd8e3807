// x86/disasm.hpp — the one adapter between trapscope and the Zydis 4 decoder.
//
// Nothing else in trapscope includes <Zydis/...>. Shapes: bytes in, text out (Intel syntax, as
// Zydis's ZydisDisassembleIntel formats it). No allocation except the returned string.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "x86/mode.hpp"

namespace trapscope::x86 {

struct Disassembly {
  bool ok = false;      // false: the bytes do not start with a valid instruction in this mode
  uint8_t length = 0;   // instruction length in bytes (valid when ok)
  std::string text;     // "out dx, al"; for !ok: "(bad)"
  bool port_io = false; // in, out, ins*, outs*
  bool halt = false;    // hlt
};

// Disassembles the first instruction of `bytes`, executed at `runtime_address` in `mode`
// (addresses of relative branches are shown as absolute targets). kUnknown mode is treated as
// 64-bit.
Disassembly disassemble(std::span<const uint8_t> bytes, CpuMode mode,
                        uint64_t runtime_address);

}  // namespace trapscope::x86
