// x86/address.hpp — effective and linear addresses of memory operands.
//
// Sources: Intel SDM Vol. 1 3.7.5 (effective address = base + index × scale + displacement,
// truncated to the address size), Vol. 2 2.2.1.6 (RIP-relative addressing is relative to the
// NEXT instruction), Vol. 3A 3.4.4 (in 64-bit mode the CS, DS, ES and SS bases are treated as 0;
// FS and GS keep theirs), 3.4.3 (outside 64-bit mode linear = base + offset, 32 bits).
#pragma once

#include <cstdint>

#include "x86/insn.hpp"
#include "x86/state.hpp"

namespace trapscope::x86 {

// The offset of memory operand `op` of `insn` within its segment, masked to the instruction's
// address size. `s.rip` must be the next instruction's RIP (for RIP-relative operands).
inline uint64_t effective_address(const Instruction& insn, const Operand& op, const CpuState& s) {
  uint64_t ea = static_cast<uint64_t>(op.disp);
  if (op.base == kRipBase) {
    ea += s.rip;
  } else if (op.base != kNoReg) {
    ea += s.gpr[op.base];
  }
  if (op.index != kNoReg) ea += s.gpr[op.index] * op.scale;
  const unsigned bits = insn.address_size;
  return bits >= 64 ? ea : ea & ((1ull << bits) - 1);
}

// The linear address of `offset` in segment `seg` (no limit or type checks).
inline uint64_t linear_address(const CpuState& s, SegReg seg, uint64_t offset) {
  if (s.code64()) return (seg == kFs || seg == kGs) ? s.seg[seg].base + offset : offset;
  return (s.seg[seg].base + offset) & 0xFFFFFFFFull;
}

}  // namespace trapscope::x86
