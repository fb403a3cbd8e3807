// sim/interp/alu.cpp — integer arithmetic, logic, shifts and rotates, multiply and divide, bit
// tests and scans, and the flag instructions (see x86/ops.def).
//
// Sources: Intel SDM Vol. 2 (each instruction's "Operation" and "Flags Affected" sections) and
// Vol. 1 Appendix A (EFLAGS cross-reference). Where the SDM calls a flag or result "undefined",
// the value computed here is what the model CPU produces: which CPU that is (AMD EPYC Zen 4,
// family 0x19 model 0x11, measured), and the value per instruction, are in
// sim/interp/undefined.hpp ("the reference host" below means that CPU).
//
// Operands: ops[0] is the destination (and first source), ops[1] the source. An immediate's
// Operand::size is its ENCODED width (1 for an imm8) while op.imm is already sign-extended to 64
// bits, so immediates are taken from op.imm and truncated to the destination size here (not
// through Cpu::read_op, which would truncate them to the encoded width).
//
// Ordering: every handler reads its operands, computes, writes its destination and only then
// updates RFLAGS and implicit registers, so that a fault on the write leaves the state as it was.
#include "sim/interp/flags.hpp"
#include "sim/interp/handlers.hpp"

namespace trapscope::sim {
namespace {

using u128 = unsigned __int128;
using i128 = __int128;

// --- operand access (fast path for general registers) ------------------------------------

inline void put_gpr(CpuState& s, unsigned reg, unsigned size, uint64_t v) {
  uint64_t& r = s.gpr[reg];
  switch (size) {
    case 1: r = (r & ~0xFFull) | (v & 0xFF); break;
    case 2: r = (r & ~0xFFFFull) | (v & 0xFFFF); break;
    case 4: r = v & 0xFFFFFFFFull; break;  // zero-extends (SDM Vol. 1 3.4.1.1)
    default: r = v; break;
  }
}

inline uint64_t rd(Cpu& cpu, const Instruction& insn, unsigned i) {
  const Operand& op = insn.ops[i];
  if (op.kind == OperandKind::kReg && op.reg_class == RegClass::kGpr) {
    return cpu.s.gpr[op.reg] & mask(op.size);
  }
  return cpu.read_op(insn, i);
}

// Source operand i as a value of `size` bytes (immediates sign-extended to that size).
inline uint64_t rd_src(Cpu& cpu, const Instruction& insn, unsigned i, unsigned size) {
  const Operand& op = insn.ops[i];
  if (op.kind == OperandKind::kImm) return op.imm & mask(size);
  return rd(cpu, insn, i);
}

inline void wr(Cpu& cpu, const Instruction& insn, unsigned i, uint64_t v) {
  const Operand& op = insn.ops[i];
  if (op.kind == OperandKind::kReg && op.reg_class == RegClass::kGpr) {
    put_gpr(cpu.s, op.reg, op.size, v);
  } else {
    cpu.write_op(insn, i, v);
  }
}

// The same with the operand size S (bytes) known at compile time: the hot handlers switch on the
// operand size once and run a specialised body (constant masks and sign bits). F says what the
// operand is when that is known when the instruction is decoded (select_alu_handler): then the
// body has no operand-kind tests either.
enum class Form { kAny, kReg, kImm };  // kReg: a general register (RegClass::kGpr)

template <unsigned S, Form F = Form::kAny>
inline uint64_t rd_n(Cpu& cpu, const Instruction& insn, unsigned i) {
  const Operand& op = insn.ops[i];
  if constexpr (F == Form::kReg) {
    return cpu.s.gpr[op.reg] & mask(S);
  } else if constexpr (F == Form::kImm) {
    return op.imm & mask(S);
  } else {
    if (op.kind == OperandKind::kReg && op.reg_class == RegClass::kGpr) {
      return cpu.s.gpr[op.reg] & mask(S);
    }
    if (op.kind == OperandKind::kImm) return op.imm & mask(S);
    return cpu.read_op(insn, i);
  }
}

template <unsigned S, Form F = Form::kAny>
inline void wr_n(Cpu& cpu, const Instruction& insn, unsigned i, uint64_t v) {
  const Operand& op = insn.ops[i];
  if (F == Form::kReg || (op.kind == OperandKind::kReg && op.reg_class == RegClass::kGpr)) {
    put_gpr(cpu.s, op.reg, S, v);
  } else {
    cpu.write_op(insn, i, v);
  }
}

// Calls BODY<..., S>(cpu, insn) for the size of the first operand.
#define TRAPSCOPE_BY_SIZE(BODY, ...)                                   \
  switch (insn.ops[0].size) {                                          \
    case 1: return BODY<__VA_ARGS__ __VA_OPT__(,) 1>(cpu, insn);        \
    case 2: return BODY<__VA_ARGS__ __VA_OPT__(,) 2>(cpu, insn);        \
    case 4: return BODY<__VA_ARGS__ __VA_OPT__(,) 4>(cpu, insn);        \
    default: return BODY<__VA_ARGS__ __VA_OPT__(,) 8>(cpu, insn);       \
  }

// --- flags (the shared ones: sim/interp/flags.hpp) ---------------------------------------

// CF and OF only (the others kept).
inline void set_cf_of(CpuState& s, bool cf, bool of) {
  s.rflags = (s.rflags & ~(kCF | kOF)) | (cf ? kCF : 0) | (of ? kOF : 0);
}

inline bool msb(uint64_t v, unsigned size) { return (v & sign_bit(size)) != 0; }

// --- two-operand arithmetic and logic ------------------------------------------------------

template <Alu K, unsigned S, Form D = Form::kAny, Form Src = Form::kAny>
void alu2(Cpu& cpu, const Instruction& insn) {
  const uint64_t a = rd_n<S, D>(cpu, insn, 0);
  const uint64_t b = rd_n<S, Src>(cpu, insn, 1);
  uint64_t f = cpu.s.rflags;
  const uint64_t r = alu_result<K, S>(a, b, &f);
  if constexpr (alu_writes_dest(K)) wr_n<S, D>(cpu, insn, 0, r);
  cpu.s.rflags = f;
}

// --- shifts and rotates ------------------------------------------------------------------

// The masked count (5 bits, 6 for 64-bit operands: SDM "SAL/SAR/SHL/SHR", "RCL/RCR/ROL/ROR").
inline unsigned shift_count(Cpu& cpu, const Instruction& insn, unsigned i, unsigned size) {
  const Operand& op = insn.ops[i];
  const uint64_t c = op.kind == OperandKind::kImm ? op.imm : rd(cpu, insn, i);
  return static_cast<unsigned>(c) & (size == 8 ? 0x3F : 0x1F);
}

// A shift or rotate whose masked count is 0 changes no flag and no bit of the destination, but
// a 32-bit register destination is still written (its upper half cleared) in 64-bit mode, as on
// the reference host.
inline void count_zero(Cpu& cpu, const Instruction& insn) {
  const Operand& op = insn.ops[0];
  if (op.kind == OperandKind::kReg && op.reg_class == RegClass::kGpr && op.size == 4) {
    cpu.s.gpr[op.reg] &= 0xFFFFFFFFull;
  }
}

enum class Sh { kShl, kShr, kSar, kRol, kRor, kRcl, kRcr };

template <Sh K, unsigned S, Form D = Form::kAny>
void shift(Cpu& cpu, const Instruction& insn) {
  constexpr unsigned size = S;
  constexpr unsigned bits = size * 8;
  constexpr uint64_t m = mask(size);
  const uint64_t v = rd_n<S, D>(cpu, insn, 0);
  const unsigned count = shift_count(cpu, insn, 1, size);
  if (count == 0) return count_zero(cpu, insn);
  CpuState& s = cpu.s;
  const bool cf_in = s.rflags & kCF;
  uint64_t r;
  bool cf, of;
  if constexpr (K == Sh::kShl) {
    // count can exceed the width only for 8- and 16-bit operands (count <= 31).
    r = count < 64 ? (v << count) & m : 0;
    cf = count <= bits ? (v >> (bits - count)) & 1 : false;
    of = msb(r, size) != cf;
    wr_n<S, D>(cpu, insn, 0, r);
    set_flags(s, r, size, cf, of, true);  // AF = 1 (undefined: as the reference host)
    return;
  } else if constexpr (K == Sh::kShr) {
    r = v >> count;  // v is zero above bit `bits`, so counts past the width give 0
    cf = (v >> (count - 1)) & 1;
    of = msb(r ^ (r << 1), size);  // count 1: MSB(dest); larger counts: 0
    wr_n<S, D>(cpu, insn, 0, r);
    set_flags(s, r, size, cf, of, true);
    return;
  } else if constexpr (K == Sh::kSar) {
    const int64_t sv = sign_extend(v, size);
    const unsigned c = count < bits ? count : bits - 1;
    r = static_cast<uint64_t>(sv >> c) & m;
    cf = count < bits ? (static_cast<uint64_t>(sv) >> (count - 1)) & 1 : sv < 0;
    of = false;  // count 1: 0; larger counts: bit N-1 ^ bit N-2 of r, which is also 0
    wr_n<S, D>(cpu, insn, 0, r);
    set_flags(s, r, size, cf, of, true);
    return;
  } else if constexpr (K == Sh::kRol) {
    const unsigned c = count & (bits - 1);
    r = c ? ((v << c) | (v >> (bits - c))) & m : v;
    cf = r & 1;
    of = msb(r, size) != cf;
  } else if constexpr (K == Sh::kRor) {
    const unsigned c = count & (bits - 1);
    r = c ? ((v >> c) | (v << (bits - c))) & m : v;
    cf = msb(r, size);
    of = cf != msb(r << 1, size);
  } else if constexpr (K == Sh::kRcl) {
    // Rotate the (bits + 1)-bit quantity CF:dest left (8/16-bit counts modulo 9/17).
    const unsigned c = bits == 8 ? count % 9 : bits == 16 ? count % 17 : count;
    if (c == 0) {
      r = v;
      cf = cf_in;
    } else {
      const u128 wide = (static_cast<u128>(cf_in) << bits) | v;
      const u128 rot = (wide << c) | (wide >> (bits + 1 - c));
      r = static_cast<uint64_t>(rot) & m;
      cf = static_cast<uint64_t>(rot >> bits) & 1;
    }
    of = msb(r, size) != cf;
  } else {  // kRcr
    const unsigned c = bits == 8 ? count % 9 : bits == 16 ? count % 17 : count;
    if (c == 0) {
      r = v;
      cf = cf_in;
    } else {
      const u128 wide = (static_cast<u128>(cf_in) << bits) | v;
      const u128 rot = (wide >> c) | (wide << (bits + 1 - c));
      r = static_cast<uint64_t>(rot) & m;
      cf = static_cast<uint64_t>(rot >> bits) & 1;
    }
    of = msb(r, size) != msb(r << 1, size);
  }
  // Rotates change only CF and OF (count 1: as the SDM; larger counts: as the reference host).
  wr_n<S, D>(cpu, insn, 0, r);
  s.rflags = (s.rflags & ~(kCF | kOF)) | (cf ? kCF : 0) | (of ? kOF : 0);
}

// shld/shrd dest, src, count.
template <bool Left>
inline void double_shift(Cpu& cpu, const Instruction& insn) {
  const unsigned size = insn.ops[0].size;
  const unsigned bits = size * 8;
  const uint64_t m = mask(size);
  const uint64_t d = rd(cpu, insn, 0);
  const uint64_t src = rd(cpu, insn, 1);
  const unsigned count = shift_count(cpu, insn, 2, size);
  if (count == 0) return count_zero(cpu, insn);
  uint64_t r;
  bool cf, of;
  if (bits == 16 && count >= 16) {
    // 16-bit operands with a count of 16..31: the result is undefined. The reference host
    // (AMD) gives the source rotated by count - 16 (the pattern src:src) with CF = 0 past 16;
    // at exactly 16 the result is the source and CF the last bit shifted out of the
    // destination (shld: OF = CF; shrd: OF as below).
    const uint64_t w = (src << 16) | src;
    const unsigned c = count - 16;
    if constexpr (Left) {
      r = ((w << c) >> 16) & m;
      cf = count == 16 ? d & 1 : false;
      of = cf;
    } else {
      r = (w >> c) & m;
      cf = count == 16 ? (d >> 15) & 1 : false;
      of = msb(r ^ (r << 1), size);
    }
  } else if constexpr (Left) {
    r = ((d << count) | (src >> (bits - count))) & m;
    cf = (d >> (bits - count)) & 1;
    of = msb(r, size) != cf;  // count 1: the sign changed; larger counts: as the host
  } else {
    r = ((d >> count) | (src << (bits - count))) & m;
    cf = (d >> (count - 1)) & 1;
    of = msb(r ^ (r << 1), size);  // count 1: the sign changed; larger counts: as the host
  }
  wr(cpu, insn, 0, r);
  set_flags(cpu.s, r, size, cf, of, true);
}

// --- bit test ------------------------------------------------------------------------------

enum class Bt { kTest, kSet, kReset, kComplement };

template <Bt K>
inline void bit_test(Cpu& cpu, const Instruction& insn) {
  const Operand& dst = insn.ops[0];
  const Operand& off = insn.ops[1];
  const unsigned size = dst.size;
  const unsigned bits = size * 8;
  CpuState& s = cpu.s;
  uint64_t v, r;
  unsigned bit;
  if (dst.kind == OperandKind::kMem && off.kind == OperandKind::kReg) {
    // A register bit offset into memory is a signed offset from the operand's address: the
    // operand-sized unit at ea + (offset SAR log2(bits)) * size (SDM "BT", Table 3-2).
    const uint64_t raw = rd(cpu, insn, 1);
    const int64_t soff = sign_extend(raw, size);
    const unsigned shift = size == 2 ? 4 : size == 4 ? 5 : 6;
    const uint64_t ea = (cpu.effective_address(insn, dst) +
                         static_cast<uint64_t>((soff >> shift) * static_cast<int64_t>(size))) &
                        mask(insn.address_size / 8);
    bit = static_cast<unsigned>(raw) & (bits - 1);
    const SegReg seg = static_cast<SegReg>(dst.seg);
    v = cpu.read(seg, ea, size, K == Bt::kTest ? Access::kRead : Access::kWrite);
    if constexpr (K == Bt::kSet) r = v | (1ull << bit);
    else if constexpr (K == Bt::kReset) r = v & ~(1ull << bit);
    else if constexpr (K == Bt::kComplement) r = v ^ (1ull << bit);
    if constexpr (K != Bt::kTest) cpu.write(seg, ea, size, r);
  } else {
    bit = static_cast<unsigned>(off.kind == OperandKind::kImm ? off.imm : rd(cpu, insn, 1)) &
          (bits - 1);
    v = rd(cpu, insn, 0);
    if constexpr (K == Bt::kSet) r = v | (1ull << bit);
    else if constexpr (K == Bt::kReset) r = v & ~(1ull << bit);
    else if constexpr (K == Bt::kComplement) r = v ^ (1ull << bit);
    if constexpr (K != Bt::kTest) wr(cpu, insn, 0, r);
  }
  // CF = the bit; ZF unchanged; OF, SF, AF, PF undefined: unchanged on the reference host.
  s.rflags = (s.rflags & ~kCF) | ((v >> bit) & 1);
}

}  // namespace

// [SECTION] Arithmetic and logic

void exec_kAdd(Cpu& cpu, const Instruction& insn) { TRAPSCOPE_BY_SIZE(alu2, Alu::kAdd) }
void exec_kAdc(Cpu& cpu, const Instruction& insn) { TRAPSCOPE_BY_SIZE(alu2, Alu::kAdc) }
void exec_kSub(Cpu& cpu, const Instruction& insn) { TRAPSCOPE_BY_SIZE(alu2, Alu::kSub) }
void exec_kSbb(Cpu& cpu, const Instruction& insn) { TRAPSCOPE_BY_SIZE(alu2, Alu::kSbb) }
void exec_kAnd(Cpu& cpu, const Instruction& insn) { TRAPSCOPE_BY_SIZE(alu2, Alu::kAnd) }
void exec_kOr(Cpu& cpu, const Instruction& insn) { TRAPSCOPE_BY_SIZE(alu2, Alu::kOr) }
void exec_kXor(Cpu& cpu, const Instruction& insn) { TRAPSCOPE_BY_SIZE(alu2, Alu::kXor) }
void exec_kCmp(Cpu& cpu, const Instruction& insn) { TRAPSCOPE_BY_SIZE(alu2, Alu::kCmp) }
void exec_kTest(Cpu& cpu, const Instruction& insn) { TRAPSCOPE_BY_SIZE(alu2, Alu::kTest) }

// inc/dec: like add/sub 1 but CF is preserved.
namespace {
template <bool Inc, unsigned S, Form D = Form::kAny>
void inc_dec(Cpu& cpu, const Instruction& insn) {
  const uint64_t a = rd_n<S, D>(cpu, insn, 0);
  const uint64_t r = (Inc ? a + 1 : a - 1) & mask(S);
  wr_n<S, D>(cpu, insn, 0, r);
  const uint64_t cf = cpu.s.rflags & kCF;
  if constexpr (Inc) flags_add(cpu.s, a, 1, 0, r, S);
  else flags_sub(cpu.s, a, 1, 0, r, S);
  cpu.s.rflags = (cpu.s.rflags & ~kCF) | cf;
}
}  // namespace

void exec_kInc(Cpu& cpu, const Instruction& insn) { TRAPSCOPE_BY_SIZE(inc_dec, true) }
void exec_kDec(Cpu& cpu, const Instruction& insn) { TRAPSCOPE_BY_SIZE(inc_dec, false) }

// neg: 0 - dest; CF = (dest != 0).
void exec_kNeg(Cpu& cpu, const Instruction& insn) {
  const unsigned size = insn.ops[0].size;
  const uint64_t a = rd(cpu, insn, 0);
  const uint64_t r = (0 - a) & mask(size);
  wr(cpu, insn, 0, r);
  flags_sub(cpu.s, 0, a, 0, r, size);
}

// not: no flags.
void exec_kNot(Cpu& cpu, const Instruction& insn) {
  wr(cpu, insn, 0, ~rd(cpu, insn, 0) & mask(insn.ops[0].size));
}

// [SECTION] Shifts and rotates

void exec_kShl(Cpu& cpu, const Instruction& insn) { TRAPSCOPE_BY_SIZE(shift, Sh::kShl) }
void exec_kShr(Cpu& cpu, const Instruction& insn) { TRAPSCOPE_BY_SIZE(shift, Sh::kShr) }
void exec_kSar(Cpu& cpu, const Instruction& insn) { TRAPSCOPE_BY_SIZE(shift, Sh::kSar) }
void exec_kRol(Cpu& cpu, const Instruction& insn) { TRAPSCOPE_BY_SIZE(shift, Sh::kRol) }
void exec_kRor(Cpu& cpu, const Instruction& insn) { TRAPSCOPE_BY_SIZE(shift, Sh::kRor) }
void exec_kRcl(Cpu& cpu, const Instruction& insn) { TRAPSCOPE_BY_SIZE(shift, Sh::kRcl) }
void exec_kRcr(Cpu& cpu, const Instruction& insn) { TRAPSCOPE_BY_SIZE(shift, Sh::kRcr) }
void exec_kShld(Cpu& cpu, const Instruction& insn) { double_shift<true>(cpu, insn); }
void exec_kShrd(Cpu& cpu, const Instruction& insn) { double_shift<false>(cpu, insn); }

// [SECTION] Multiply and divide

// mul r/m: AX = AL * src, DX:AX, EDX:EAX, RDX:RAX = accumulator * src. CF = OF = (upper half
// != 0). SF, ZF, AF, PF are undefined: the reference host (AMD) leaves them unchanged.
void exec_kMul(Cpu& cpu, const Instruction& insn) {
  const unsigned size = insn.ops[0].size;
  const uint64_t src = rd(cpu, insn, 0);
  CpuState& s = cpu.s;
  uint64_t lo, hi;
  switch (size) {
    case 1: {
      const uint64_t p = (s.gpr[kRax] & 0xFF) * src;
      put_gpr(s, kRax, 2, p);
      lo = p & 0xFF;
      hi = p >> 8;
      break;
    }
    case 2: {
      const uint64_t p = (s.gpr[kRax] & 0xFFFF) * src;
      lo = p & 0xFFFF;
      hi = p >> 16;
      put_gpr(s, kRax, 2, lo);
      put_gpr(s, kRdx, 2, hi);
      break;
    }
    case 4: {
      const uint64_t p = (s.gpr[kRax] & 0xFFFFFFFF) * src;
      lo = p & 0xFFFFFFFF;
      hi = p >> 32;
      put_gpr(s, kRax, 4, lo);
      put_gpr(s, kRdx, 4, hi);
      break;
    }
    default: {
      const u128 p = static_cast<u128>(s.gpr[kRax]) * src;
      lo = static_cast<uint64_t>(p);
      hi = static_cast<uint64_t>(p >> 64);
      s.gpr[kRax] = lo;
      s.gpr[kRdx] = hi;
      break;
    }
  }
  const bool over = hi != 0;
  set_cf_of(s, over, over);
}

// imul: one operand (signed accumulator * src into the double-width pair), two operands
// (dest = dest * src) and three operands (dest = src * imm). CF = OF = the signed product does
// not fit the destination. SF, ZF, AF, PF: unchanged, as on the reference host.
void exec_kImul(Cpu& cpu, const Instruction& insn) {
  const unsigned size = insn.ops[0].size;
  CpuState& s = cpu.s;
  if (insn.operand_count == 1) {
    const int64_t src = sign_extend(rd(cpu, insn, 0), size);
    uint64_t lo;
    bool over;
    switch (size) {
      case 1: {
        const int64_t p = sign_extend(s.gpr[kRax], 1) * src;
        put_gpr(s, kRax, 2, static_cast<uint64_t>(p));
        lo = static_cast<uint64_t>(p) & 0xFF;
        over = p != sign_extend(lo, 1);
        break;
      }
      case 2: {
        const int64_t p = sign_extend(s.gpr[kRax], 2) * src;
        lo = static_cast<uint64_t>(p) & 0xFFFF;
        put_gpr(s, kRax, 2, lo);
        put_gpr(s, kRdx, 2, static_cast<uint64_t>(p) >> 16);
        over = p != sign_extend(lo, 2);
        break;
      }
      case 4: {
        const int64_t p = sign_extend(s.gpr[kRax], 4) * src;
        lo = static_cast<uint64_t>(p) & 0xFFFFFFFF;
        put_gpr(s, kRax, 4, lo);
        put_gpr(s, kRdx, 4, static_cast<uint64_t>(p) >> 32);
        over = p != sign_extend(lo, 4);
        break;
      }
      default: {
        const i128 p = static_cast<i128>(static_cast<int64_t>(s.gpr[kRax])) * src;
        lo = static_cast<uint64_t>(p);
        s.gpr[kRax] = lo;
        s.gpr[kRdx] = static_cast<uint64_t>(static_cast<u128>(p) >> 64);
        over = p != static_cast<i128>(static_cast<int64_t>(lo));
        break;
      }
    }
    set_cf_of(s, over, over);
    return;
  }
  const unsigned a = insn.operand_count == 3 ? 1 : 0;
  const int64_t x = sign_extend(rd(cpu, insn, a), size);
  const int64_t y = sign_extend(rd_src(cpu, insn, a + 1, size), size);
  const i128 p = static_cast<i128>(x) * y;
  const uint64_t lo = static_cast<uint64_t>(p) & mask(size);
  const bool over = p != static_cast<i128>(sign_extend(lo, size));
  wr(cpu, insn, 0, lo);
  set_cf_of(s, over, over);
}

// The arithmetic flags after div/idiv are undefined; the reference host (AMD) clears SF, ZF and
// PF, sets AF and keeps CF and OF, whatever the operands.
inline void div_flags(CpuState& s) { s.rflags = (s.rflags & ~(kSF | kZF | kPF)) | kAF; }

// div r/m: unsigned; #DE on a zero divisor or a quotient that does not fit.
void exec_kDiv(Cpu& cpu, const Instruction& insn) {
  const unsigned size = insn.ops[0].size;
  const uint64_t d = rd(cpu, insn, 0);
  if (d == 0) raise(vec::kDE);
  CpuState& s = cpu.s;
  switch (size) {
    case 1: {
      const uint64_t n = s.gpr[kRax] & 0xFFFF;
      const uint64_t q = n / d;
      if (q > 0xFF) raise(vec::kDE);
      put_gpr(s, kRax, 2, ((n % d) << 8) | q);
      break;
    }
    case 2: {
      const uint64_t n = ((s.gpr[kRdx] & 0xFFFF) << 16) | (s.gpr[kRax] & 0xFFFF);
      const uint64_t q = n / d;
      if (q > 0xFFFF) raise(vec::kDE);
      put_gpr(s, kRax, 2, q);
      put_gpr(s, kRdx, 2, n % d);
      break;
    }
    case 4: {
      const uint64_t n = (s.gpr[kRdx] << 32) | (s.gpr[kRax] & 0xFFFFFFFF);
      const uint64_t q = n / d;
      if (q > 0xFFFFFFFF) raise(vec::kDE);
      put_gpr(s, kRax, 4, q);
      put_gpr(s, kRdx, 4, n % d);
      break;
    }
    default: {
      if (s.gpr[kRdx] >= d) raise(vec::kDE);  // the quotient would not fit in 64 bits
      const u128 n = (static_cast<u128>(s.gpr[kRdx]) << 64) | s.gpr[kRax];
      s.gpr[kRax] = static_cast<uint64_t>(n / d);
      s.gpr[kRdx] = static_cast<uint64_t>(n % d);
      break;
    }
  }
  div_flags(s);
}

// idiv r/m: signed, quotient truncated toward zero, remainder with the dividend's sign; #DE on
// a zero divisor or a quotient outside the signed range (including MIN / -1).
void exec_kIdiv(Cpu& cpu, const Instruction& insn) {
  const unsigned size = insn.ops[0].size;
  const uint64_t raw = rd(cpu, insn, 0);
  if (raw == 0) raise(vec::kDE);
  CpuState& s = cpu.s;
  const int64_t d = sign_extend(raw, size);
  switch (size) {
    case 1: {
      const int64_t n = sign_extend(s.gpr[kRax], 2);
      const int64_t q = n / d;
      if (q < -128 || q > 127) raise(vec::kDE);
      put_gpr(s, kRax, 2, ((static_cast<uint64_t>(n % d) & 0xFF) << 8) |
                              (static_cast<uint64_t>(q) & 0xFF));
      break;
    }
    case 2: {
      const int64_t n = sign_extend(((s.gpr[kRdx] & 0xFFFF) << 16) | (s.gpr[kRax] & 0xFFFF), 4);
      const int64_t q = n / d;
      if (q < -32768 || q > 32767) raise(vec::kDE);
      put_gpr(s, kRax, 2, static_cast<uint64_t>(q));
      put_gpr(s, kRdx, 2, static_cast<uint64_t>(n % d));
      break;
    }
    case 4: {
      const i128 n = static_cast<int64_t>((s.gpr[kRdx] << 32) | (s.gpr[kRax] & 0xFFFFFFFF));
      const i128 q = n / d;
      if (q < INT32_MIN || q > INT32_MAX) raise(vec::kDE);
      put_gpr(s, kRax, 4, static_cast<uint64_t>(q));
      put_gpr(s, kRdx, 4, static_cast<uint64_t>(n % d));
      break;
    }
    default: {
      // Magnitudes avoid the undefined INT128_MIN / -1 of C++.
      const u128 n = (static_cast<u128>(s.gpr[kRdx]) << 64) | s.gpr[kRax];
      const bool n_neg = static_cast<int64_t>(s.gpr[kRdx]) < 0;
      const u128 un = n_neg ? -n : n;
      const uint64_t ud = d < 0 ? 0 - raw : raw;
      const u128 uq = un / ud;
      const uint64_t ur = static_cast<uint64_t>(un % ud);
      const bool q_neg = n_neg != (d < 0);
      if (uq > (q_neg ? u128{1} << 63 : (u128{1} << 63) - 1)) raise(vec::kDE);
      s.gpr[kRax] = q_neg ? 0 - static_cast<uint64_t>(uq) : static_cast<uint64_t>(uq);
      s.gpr[kRdx] = n_neg ? 0 - ur : ur;
      break;
    }
  }
  div_flags(s);
}

// [SECTION] Bit test and scan

void exec_kBt(Cpu& cpu, const Instruction& insn) { bit_test<Bt::kTest>(cpu, insn); }
void exec_kBts(Cpu& cpu, const Instruction& insn) { bit_test<Bt::kSet>(cpu, insn); }
void exec_kBtr(Cpu& cpu, const Instruction& insn) { bit_test<Bt::kReset>(cpu, insn); }
void exec_kBtc(Cpu& cpu, const Instruction& insn) { bit_test<Bt::kComplement>(cpu, insn); }

// bsf/bsr: a zero source sets ZF and leaves the destination unchanged (AMD documents this; Intel
// calls it undefined); otherwise ZF = 0 and dest = the index. CF, OF, SF, AF, PF are undefined:
// as on the reference host (Zen 4), CF = OF = SF = AF = 0 and PF = the parity of the index (of
// 0 for a zero source).
template <bool Forward>
inline void bit_scan(Cpu& cpu, const Instruction& insn) {
  const uint64_t v = rd(cpu, insn, 1);
  CpuState& s = cpu.s;
  unsigned idx = 0;
  if (v != 0) {
    idx = Forward ? static_cast<unsigned>(__builtin_ctzll(v))
                  : 63u - static_cast<unsigned>(__builtin_clzll(v));
    wr(cpu, insn, 0, idx);
  }
  s.rflags = (s.rflags & ~kArithFlags) | (v == 0 ? kZF : 0) | (parity_even(idx) ? kPF : 0);
}

void exec_kBsf(Cpu& cpu, const Instruction& insn) { bit_scan<true>(cpu, insn); }
void exec_kBsr(Cpu& cpu, const Instruction& insn) { bit_scan<false>(cpu, insn); }

// [SECTION] Flag instructions

void exec_kClc(Cpu& cpu, const Instruction&) { cpu.s.rflags &= ~kCF; }
void exec_kStc(Cpu& cpu, const Instruction&) { cpu.s.rflags |= kCF; }
void exec_kCmc(Cpu& cpu, const Instruction&) { cpu.s.rflags ^= kCF; }
void exec_kCld(Cpu& cpu, const Instruction&) { cpu.s.rflags &= ~kDF; }
void exec_kStd(Cpu& cpu, const Instruction&) { cpu.s.rflags |= kDF; }

// [SECTION] Handlers specialised for an operand form

namespace {

inline bool is_gpr(const Operand& op) {
  return op.kind == OperandKind::kReg && op.reg_class == RegClass::kGpr;
}

// &BODY<K, S, forms...> for the destination's size S (1, 2, 4 or 8 bytes), else nullptr.
#define TRAPSCOPE_PICK(BODY, K, ...)              \
  switch (insn.ops[0].size) {                     \
    case 1: return &BODY<K, 1, __VA_ARGS__>;      \
    case 2: return &BODY<K, 2, __VA_ARGS__>;      \
    case 4: return &BODY<K, 4, __VA_ARGS__>;      \
    case 8: return &BODY<K, 8, __VA_ARGS__>;      \
    default: return nullptr;                      \
  }

// op mem, reg|imm (Src) and op reg, mem through the host-pointer fast path; anything it does not
// serve goes to alu2's generic path (read_op/write_op), before any state changed. A
// read-modify-write reads and writes the operand: two TLB hits, as the generic path counts.
template <Alu K, unsigned S, Form Src>
void alu_mem_dest(Cpu& cpu, const Instruction& insn) {
  constexpr bool kWrite = alu_writes_dest(K);
  uint8_t* p = host_operand<S, kWrite>(cpu, insn, insn.ops[0], kWrite ? 2 : 1);
  if (p == nullptr) [[unlikely]] return alu2<K, S, Form::kAny, Src>(cpu, insn);
  const uint64_t b = rd_n<S, Src>(cpu, insn, 1);
  uint64_t f = cpu.s.rflags;
  const uint64_t r = alu_result<K, S>(load_host<S>(p), b, &f);
  if constexpr (kWrite) store_host<S>(p, r);
  cpu.s.rflags = f;
}

template <Alu K, unsigned S, Form Unused>
void alu_mem_src(Cpu& cpu, const Instruction& insn) {
  const uint8_t* p = host_operand<S, false>(cpu, insn, insn.ops[1]);
  if (p == nullptr) [[unlikely]] return alu2<K, S, Form::kReg, Form::kAny>(cpu, insn);
  uint64_t f = cpu.s.rflags;
  const uint64_t r = alu_result<K, S>(rd_n<S, Form::kReg>(cpu, insn, 0), load_host<S>(p), &f);
  if constexpr (alu_writes_dest(K)) wr_n<S, Form::kReg>(cpu, insn, 0, r);
  cpu.s.rflags = f;
}

// op reg, reg and op reg, imm.
template <Alu K>
Handler alu_form(const Instruction& insn) {
  if (insn.operand_count != 2) return nullptr;
  if (insn.ops[0].kind == OperandKind::kMem) {
    if (is_gpr(insn.ops[1]) && insn.ops[1].size == insn.ops[0].size) {
      TRAPSCOPE_PICK(alu_mem_dest, K, Form::kReg)
    }
    if (insn.ops[1].kind == OperandKind::kImm) {
      TRAPSCOPE_PICK(alu_mem_dest, K, Form::kImm)
    }
    return nullptr;
  }
  if (!is_gpr(insn.ops[0])) return nullptr;
  if (insn.ops[1].kind == OperandKind::kMem && insn.ops[1].size == insn.ops[0].size) {
    TRAPSCOPE_PICK(alu_mem_src, K, Form::kAny)
  }
  if (is_gpr(insn.ops[1]) && insn.ops[1].size == insn.ops[0].size) {
    TRAPSCOPE_PICK(alu2, K, Form::kReg, Form::kReg)
  }
  if (insn.ops[1].kind == OperandKind::kImm) {
    TRAPSCOPE_PICK(alu2, K, Form::kReg, Form::kImm)
  }
  return nullptr;
}

// shift/rotate reg, imm|cl.
template <Sh K>
Handler shift_form(const Instruction& insn) {
  if (insn.operand_count != 2 || !is_gpr(insn.ops[0])) return nullptr;
  TRAPSCOPE_PICK(shift, K, Form::kReg)
}

// inc/dec reg.
template <bool Inc>
Handler inc_dec_form(const Instruction& insn) {
  if (!is_gpr(insn.ops[0])) return nullptr;
  TRAPSCOPE_PICK(inc_dec, Inc, Form::kReg)
}

// imul reg, reg (two operands) and imul reg, reg, imm (three): as exec_kImul.
template <unsigned S, bool Three>
void imul_form(Cpu& cpu, const Instruction& insn) {
  CpuState& s = cpu.s;
  const int64_t x = sign_extend(s.gpr[insn.ops[Three ? 1 : 0].reg], S);
  const int64_t y = Three ? sign_extend(insn.ops[2].imm, S)
                          : sign_extend(s.gpr[insn.ops[1].reg], S);
  uint64_t lo;
  bool over;
  if constexpr (S <= 4) {
    const int64_t p = x * y;  // |x|, |y| <= 2^31: no overflow
    lo = static_cast<uint64_t>(p) & mask(S);
    over = p != sign_extend(lo, S);
  } else {
    const i128 p = static_cast<i128>(x) * y;
    lo = static_cast<uint64_t>(p);
    over = p != static_cast<i128>(static_cast<int64_t>(lo));
  }
  put_gpr(s, insn.ops[0].reg, S, lo);
  set_cf_of(s, over, over);
}

Handler imul_form_of(const Instruction& insn) {
  const Operand* o = insn.ops;
  const unsigned size = o[0].size;
  if (size != 2 && size != 4 && size != 8) return nullptr;
  if (!is_gpr(o[0]) || !is_gpr(o[1]) || o[1].size != size) return nullptr;
  if (insn.operand_count == 3 && o[2].kind == OperandKind::kImm) {
    return size == 2 ? &imul_form<2, true> : size == 4 ? &imul_form<4, true> : &imul_form<8, true>;
  }
  if (insn.operand_count == 2) {
    return size == 2 ? &imul_form<2, false> : size == 4 ? &imul_form<4, false>
                                                       : &imul_form<8, false>;
  }
  return nullptr;
}

#undef TRAPSCOPE_PICK

}  // namespace

Handler select_alu_handler(const Instruction& insn) {
  switch (insn.op) {
    case Op::kAdd: return alu_form<Alu::kAdd>(insn);
    case Op::kAdc: return alu_form<Alu::kAdc>(insn);
    case Op::kSub: return alu_form<Alu::kSub>(insn);
    case Op::kSbb: return alu_form<Alu::kSbb>(insn);
    case Op::kAnd: return alu_form<Alu::kAnd>(insn);
    case Op::kOr: return alu_form<Alu::kOr>(insn);
    case Op::kXor: return alu_form<Alu::kXor>(insn);
    case Op::kCmp: return alu_form<Alu::kCmp>(insn);
    case Op::kTest: return alu_form<Alu::kTest>(insn);
    case Op::kInc: return inc_dec_form<true>(insn);
    case Op::kDec: return inc_dec_form<false>(insn);
    case Op::kShl: return shift_form<Sh::kShl>(insn);
    case Op::kShr: return shift_form<Sh::kShr>(insn);
    case Op::kSar: return shift_form<Sh::kSar>(insn);
    case Op::kRol: return shift_form<Sh::kRol>(insn);
    case Op::kRor: return shift_form<Sh::kRor>(insn);
    case Op::kRcl: return shift_form<Sh::kRcl>(insn);
    case Op::kRcr: return shift_form<Sh::kRcr>(insn);
    case Op::kImul: return imul_form_of(insn);
    default: return nullptr;
  }
}

}  // namespace trapscope::sim
