// sim/interp/flags.hpp — the arithmetic flags of the integer instructions and the condition
// codes, as inline functions of operand values and RFLAGS. Shared by the interpreter's handlers
// (sim/interp/alu.cpp, control.cpp) and binary translation's micro-ops (sim/bt/microops.cpp),
// so that both compute the same bits.
//
// Sources: Intel SDM Vol. 1 3.4.3.1 and Appendix A (EFLAGS), Appendix B.1 (condition codes);
// Vol. 2, each instruction's "Flags Affected". Undefined flags: as the model CPU, which
// sim/interp/undefined.hpp names (with its value per instruction): and/or/xor/test clear AF.
#pragma once

#include <cstdint>

#include "sim/cpu.hpp"

namespace trapscope::sim {

inline bool parity_even(uint64_t v) { return !(__builtin_popcount(static_cast<uint8_t>(v)) & 1); }

// SF, ZF, PF of a result `r` already truncated to `size` bytes.
inline uint64_t szp(uint64_t r, unsigned size) {
  return (r == 0 ? kZF : 0) | ((r & sign_bit(size)) ? kSF : 0) | (parity_even(r) ? kPF : 0);
}

// SF, ZF, PF from `r` (size bytes) plus the given CF, OF and AF; other flags kept.
inline void set_flags(CpuState& s, uint64_t r, unsigned size, bool cf, bool of, bool af) {
  r &= mask(size);
  uint64_t f = s.rflags & ~kArithFlags;
  f |= cf ? kCF : 0;
  f |= of ? kOF : 0;
  f |= af ? kAF : 0;
  f |= szp(r, size);
  s.rflags = f;
}

// RFLAGS f with the arithmetic flags of a + b + carry = r and of a - b - borrow = r (a, b, r
// truncated to `size`).
inline uint64_t add_flags(uint64_t f, uint64_t a, uint64_t b, uint64_t carry, uint64_t r,
                          unsigned size) {
  const bool cf = carry ? r <= a : r < a;
  return (f & ~kArithFlags) | szp(r, size) | (cf ? kCF : 0) |
         ((((a ^ r) & (b ^ r)) & sign_bit(size)) ? kOF : 0) | ((a ^ b ^ r) & kAF);
}
inline uint64_t sub_flags(uint64_t f, uint64_t a, uint64_t b, uint64_t borrow, uint64_t r,
                          unsigned size) {
  const bool cf = borrow ? a <= b : a < b;
  return (f & ~kArithFlags) | szp(r, size) | (cf ? kCF : 0) |
         ((((a ^ b) & (a ^ r)) & sign_bit(size)) ? kOF : 0) | ((a ^ b ^ r) & kAF);
}
inline void flags_add(CpuState& s, uint64_t a, uint64_t b, uint64_t carry, uint64_t r,
                      unsigned size) {
  s.rflags = add_flags(s.rflags, a, b, carry, r, size);
}
inline void flags_sub(CpuState& s, uint64_t a, uint64_t b, uint64_t borrow, uint64_t r,
                      unsigned size) {
  s.rflags = sub_flags(s.rflags, a, b, borrow, r, size);
}

// The two-operand ALU instructions.
enum class Alu { kAdd, kAdc, kSub, kSbb, kAnd, kOr, kXor, kCmp, kTest };
constexpr bool alu_writes_dest(Alu k) { return k != Alu::kCmp && k != Alu::kTest; }

// The result of `K a, b` on S-byte operands (a, b truncated to S bytes; adc/sbb read CF from
// *rflags). With Flags, *rflags gets the instruction's arithmetic flags; without, it is only
// read: the caller has proved that no one reads the flags before they are written again
// (binary translation's flag liveness, sim/bt/translator.hpp). The caller writes the result
// (unless cmp/test) BEFORE it stores *rflags, so that a faulting write changes nothing.
template <Alu K, unsigned S, bool Flags = true>
inline uint64_t alu_result(uint64_t a, uint64_t b, uint64_t* rflags) {
  constexpr uint64_t m = mask(S);
  uint64_t r;
  if constexpr (K == Alu::kAdd || K == Alu::kAdc) {
    const uint64_t c = K == Alu::kAdc ? (*rflags & kCF) : 0;
    r = (a + b + c) & m;
    if constexpr (Flags) *rflags = add_flags(*rflags, a, b, c, r, S);
  } else if constexpr (K == Alu::kSub || K == Alu::kSbb || K == Alu::kCmp) {
    const uint64_t c = K == Alu::kSbb ? (*rflags & kCF) : 0;
    r = (a - b - c) & m;
    if constexpr (Flags) *rflags = sub_flags(*rflags, a, b, c, r, S);
  } else {
    if constexpr (K == Alu::kAnd || K == Alu::kTest) r = a & b;
    else if constexpr (K == Alu::kOr) r = a | b;
    else r = a ^ b;
    // CF = OF = 0; AF is undefined: the reference host clears it (as Bochs does).
    if constexpr (Flags) *rflags = (*rflags & ~kArithFlags) | szp(r, S);
  }
  return r;
}

// Condition code CC (0..15) of Jcc/SETcc/CMOVcc on RFLAGS f (SDM Vol. 1 B.1).
template <uint8_t CC>
inline bool cond_cc(uint64_t f) {
  bool r;
  if constexpr ((CC >> 1) == 0) r = f & kOF;
  else if constexpr ((CC >> 1) == 1) r = f & kCF;
  else if constexpr ((CC >> 1) == 2) r = f & kZF;
  else if constexpr ((CC >> 1) == 3) r = (f & kCF) || (f & kZF);
  else if constexpr ((CC >> 1) == 4) r = f & kSF;
  else if constexpr ((CC >> 1) == 5) r = f & kPF;
  else if constexpr ((CC >> 1) == 6) r = !(f & kSF) != !(f & kOF);
  else r = (f & kZF) || (!(f & kSF) != !(f & kOF));
  return (CC & 1) ? !r : r;
}

// The flags condition code cc reads (for flag liveness).
constexpr uint64_t cond_reads(uint8_t cc) {
  switch (cc >> 1) {
    case 0: return kOF;
    case 1: return kCF;
    case 2: return kZF;
    case 3: return kCF | kZF;
    case 4: return kSF;
    case 5: return kPF;
    case 6: return kSF | kOF;
    default: return kZF | kSF | kOF;
  }
}

}  // namespace trapscope::sim
