// x86/io_insn.hpp — recognising the instruction that caused an IO or HLT exit from its bytes,
// without a disassembler (this runs at every traced exit).
//
// Port-I/O opcodes (SDM Vol. 2: IN, OUT, INS, OUTS): E4/E5 in imm8, E6/E7 out imm8, EC/ED in dx,
// EE/EF out dx, 6C/6D ins, 6E/6F outs; byte forms are the even opcodes; the others are 16 or 32
// bits by the operand-size prefix 66 and the mode. HLT is F4. Prefixes: 66, 67, F2, F3, F0,
// segment overrides, and (in 64-bit mode) REX 40–4F.
#pragma once

#include <cstdint>
#include <span>

namespace trapscope::x86 {

struct IoExitInfo {
  uint16_t port;
  uint8_t size;   // 1, 2 or 4
  bool out;
};

// Length of the instruction at `bytes` if it is a port-I/O instruction that accesses `io.port`
// (imm8 forms: the immediate; DX forms: `dx`) with io.size and io.out; 0 otherwise.
// default16: the default operand size is 16 bits (real mode, 16-bit code segment).
unsigned match_io_instruction(std::span<const uint8_t> bytes, const IoExitInfo& io, uint16_t dx,
                              bool default16, bool mode64);

// True if `b` is an instruction prefix: a legacy prefix (SDM Vol. 2 2.1.1: lock/rep F0, F2, F3;
// segment overrides 26, 2E, 36, 3E, 64, 65; operand and address size 66, 67) or, in 64-bit
// mode, a REX prefix 40–4F (2.2.1).
constexpr bool is_prefix(uint8_t b, bool mode64) {
  switch (b) {
    case 0x26: case 0x2E: case 0x36: case 0x3E: case 0x64: case 0x65: case 0x66: case 0x67:
    case 0xF0: case 0xF2: case 0xF3: return true;
    default: return mode64 && (b & 0xF0) == 0x40;
  }
}

// 1 if bytes start with `hlt` (F4, possibly after prefixes), with the length; 0 otherwise.
unsigned match_hlt(std::span<const uint8_t> bytes, bool mode64);

}  // namespace trapscope::x86
