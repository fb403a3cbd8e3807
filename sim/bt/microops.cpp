// sim/bt/microops.cpp — the micro-ops of binary translation (sim/bt/microops.hpp) and the choice
// of one per translated instruction. Every micro-op has the same architectural effect as the
// interpreter's handler for its instruction (sim/interp/*), except that a flag-less form leaves
// the arithmetic flags as they were (only chosen where liveness proved them dead). A micro-op
// that touches memory first checks everything its fast path needs and, if anything is missing,
// runs the interpreter's handler instead (run_generic) before it has changed any state.
#include "sim/bt/microops.hpp"

#include <array>
#include <cstring>
#include <type_traits>
#include <utility>

#include "sim/bt/translator.hpp"
#include "sim/interp/flags.hpp"

namespace trapscope::sim::bt {
namespace {

// --- registers, the generic path --------------------------------------------------------

// The new value of a general register whose low S bytes are written with v, from its old value
// (4 bytes zero-extend, SDM Vol. 1 3.4.1.1).
template <unsigned S>
inline uint64_t merged(uint64_t old, uint64_t v) {
  if constexpr (S == 1) return (old & ~0xFFull) | (v & 0xFF);
  else if constexpr (S == 2) return (old & ~0xFFFFull) | (v & 0xFFFF);
  else if constexpr (S == 4) return v & 0xFFFFFFFFull;
  else return v;
}

// The accumulator (`acc`, the micro-ops' last argument): the value of the guest register that
// the previous micro-op of the unit wrote (MicroOp::acc_out), passed in a host register, so
// that the next instruction reading it does not wait for the store to c.s.gpr to be forwarded
// to its load (the loop's chain of dependent instructions is what bounds its speed, not the
// number of host instructions). Every micro-op still stores its result to c.s.gpr, so state
// is exact at every point. A micro-op variant with A = true reads that operand from acc (the
// translator chose it because the operand is the register in acc: make_micro_op's acc_in).
template <bool A>
inline uint64_t gpr(const Cpu& c, unsigned r, uint64_t acc) {
  if constexpr (A) return acc;
  else return c.s.gpr[r];
}
template <unsigned S, bool A = false>
inline uint64_t reg(const Cpu& c, unsigned r, uint64_t acc = 0) {
  return gpr<A>(c, r, acc) & mask(S);
}

// Writes the low S bytes of register r (A: its old value is acc); returns its new value.
template <unsigned S, bool A = false>
inline uint64_t put(Cpu& c, unsigned r, uint64_t v, uint64_t acc = 0) {
  uint64_t n;
  if constexpr (S >= 4) n = merged<S>(0, v);
  else n = merged<S>(gpr<A>(c, r, acc), v);
  c.s.gpr[r] = n;
  return n;
}

// Threaded dispatch: a micro-op ends by running the next one (a tail call); the unit's last
// micro-op is followed by end_op, which returns to the executor.
inline void next(Cpu& c, const MicroOp* op, MicroRun& run, uint64_t acc) {
  op[1].fn(c, op + 1, run, acc);
}

// The interpreter's handler with the step loop's bookkeeping (sim/sim_machine.cpp step_cached):
// the faulting RIP, the instruction bytes, RIP = the next instruction. If the handler exited
// (MMIO) or wrote a page holding code, the unit stops after it: the executor finds the
// instruction by c.fault_rip.
[[gnu::noinline]] void run_generic(Cpu& c, const MicroOp* op, MicroRun& run, uint64_t acc) {
  const TransInsn& t = *op->t;
  c.fault_rip = t.rip;
  c.insn_bytes = t.code + 1;
  c.insn_len = t.insn.length;
  c.s.rip = t.next_rip;
  const uint64_t exits = c.exits, code_writes = c.code_writes;
  t.handler(c, t.insn);
  if (c.exits != exits || c.code_writes != code_writes) return;
  if (op->acc_out != kNoReg) acc = c.s.gpr[op->acc_out];
  return next(c, op, run, acc);
}

void generic_op(Cpu& c, const MicroOp* op, MicroRun& run, uint64_t acc) {
  return run_generic(c, op, run, acc);
}

// A register-only instruction: the interpreter's handler needs no bookkeeping (it reads no RIP,
// instruction bytes or memory, and cannot fault).
void pure_op(Cpu& c, const MicroOp* op, MicroRun& run, uint64_t acc) {
  op->t->handler(c, op->t->insn);
  return next(c, op, run, acc);
}

void nop_op(Cpu& c, const MicroOp* op, MicroRun& run, uint64_t acc) {
  return next(c, op, run, acc);
}

void end_op(Cpu&, const MicroOp*, MicroRun&, uint64_t) {}

// The end of a chainable unit (end_micro_op): the chained inner loop inside the threaded
// dispatch. The unit ran whole, with no generic path that exited or wrote code (that returns
// before this op), and changes neither the mode, CS, CPL nor paging (Unit::chainable), so the
// fetch context in `run` still holds. Its successor was linked (Cache::link) from the exit RIP
// took, in a context with the same CS base and mode (the unit's key), so what can have changed
// since is checked: the link itself (null, or not the RIP's unit), the successor's validity
// and page generation, the CS limit, the physical address the RIP maps to now (the TLB,
// CR0.PG) and the instruction limit. These are the checks of step_bt's lookup path (code_pa,
// chained_unit, fits_cs). In real mode (`Real`: the unit's mode, which it keeps) there is no
// paging (CR0.PG needs CR0.PE, SDM Vol. 3A 2.5), so the successor's physical address is
// (CS base + RIP) mod 2^32 now as when it was linked. `StoreRip`: the unit's last micro-op does
// not write RIP (Unit::fast_next_rip).
template <bool Real, bool StoreRip>
void chain_op(Cpu& c, const MicroOp* op, MicroRun& run, uint64_t) {
  Unit& u = *op->unit;
  if constexpr (StoreRip) c.s.rip = u.fast_next_rip;
  const uint64_t rip = c.s.rip;
  Unit* next = u.chain[rip == u.next_rip[1]];
  if (next == nullptr || next->rip != rip || !next->valid ||
      next->generation != *next->generation_counter) {
    return;
  }
  const uint64_t n = u.insns;
  const uint64_t done = run.done + n;
  if (done + next->insns > run.limit) return;
  if constexpr (Real) {
    if (next->last_rip > run.cs_limit || run.paging) return;
  } else {
    if (!run.m64 && next->last_rip > run.cs_limit) return;
    uint64_t pa;
    if (!fetch_pa(c, run, rip, &pa) || next->pa != pa) return;
  }
  c.s.tsc += n;
  u.instructions += n;
  run.done = done;
  ++run.linked;
  ++next->executions;
  run.unit = next;
  const MicroOp* ops = next->micro.data();
  return ops[0].fn(c, ops, run, 0);
}

// --- the fast data path ----------------------------------------------------------------

// `BaseOnly`: the operand is [base + disp] (no index), the common form, chosen at translation
// (make_micro_op) so that the moves skip the index test.
template <bool BaseOnly = false>
inline uint64_t effective_address(const Cpu& c, const MicroOp& op) {
  if constexpr (BaseOnly) return (c.s.gpr[op.base] + op.disp) & op.amask;
  uint64_t a = op.disp;
  if (op.base != kNoReg) a += c.s.gpr[op.base];
  if (op.index != kNoReg) a += c.s.gpr[op.index] * op.scale;
  return a & op.amask;
}

// The host address of an access of `size` bytes at seg:offset by translated code, or nullptr
// when the access needs the full path (Cpu::read/write through the generic handler): the
// host-pointer fast path, Cpu::host_data, with the TLB hits the interpreter's accesses count
// (`hits`). Translated code is never at CPL 3 (execute.cpp runs CPL 3 directly), so the access
// is a supervisor one.
template <bool Write>
inline uint8_t* fast_data(Cpu& c, const MicroOp& op, uint64_t offset, unsigned size,
                          unsigned hits) {
  return c.host_data<Write>(static_cast<SegReg>(op.seg), offset, size, op.amode, false, hits);
}

template <unsigned S>
inline uint64_t load(const uint8_t* p) {
  uint64_t v = 0;
  std::memcpy(&v, p, S);
  return v;
}
template <unsigned S>
inline void store(uint8_t* p, uint64_t v) {
  std::memcpy(p, &v, S);
}

// --- moves -------------------------------------------------------------------------------

template <unsigned S, bool A0, bool A1>
void mov_rr(Cpu& c, const MicroOp* op, MicroRun& run, uint64_t acc) {
  return next(c, op, run, put<S, A0>(c, op->r0, gpr<A1>(c, op->r1, acc), acc));
}
template <unsigned S, bool A0>
void mov_ri(Cpu& c, const MicroOp* op, MicroRun& run, uint64_t acc) {
  return next(c, op, run, put<S, A0>(c, op->r0, op->imm, acc));
}

template <unsigned S, bool BaseOnly>
void mov_rm(Cpu& c, const MicroOp* op, MicroRun& run, uint64_t acc) {
  if (const uint8_t* p = fast_data<false>(c, *op, effective_address<BaseOnly>(c, *op), S, 1))
      [[likely]] {
    return next(c, op, run, put<S>(c, op->r0, load<S>(p)));
  }
  return run_generic(c, op, run, acc);
}

template <unsigned S, bool A1, bool BaseOnly>
void mov_mr(Cpu& c, const MicroOp* op, MicroRun& run, uint64_t acc) {
  if (uint8_t* p = fast_data<true>(c, *op, effective_address<BaseOnly>(c, *op), S, 1))
      [[likely]] {
    store<S>(p, gpr<A1>(c, op->r1, acc));
    return next(c, op, run, acc);
  }
  return run_generic(c, op, run, acc);
}

template <unsigned S>
void mov_mi(Cpu& c, const MicroOp* op, MicroRun& run, uint64_t acc) {
  if (uint8_t* p = fast_data<true>(c, *op, effective_address(c, *op), S, 1)) [[likely]] {
    store<S>(p, op->imm);
    return next(c, op, run, acc);
  }
  return run_generic(c, op, run, acc);
}

// --- two-operand arithmetic and logic ------------------------------------------------------

// --- the host's ALU for the flags -----------------------------------------------------------
//
// On an x86-64 host a translated add, sub, cmp, and, or, xor, test, inc or dec with live flags
// runs as the same host instruction on the same operand size, and the flags are read back with
// LAHF (SF ZF AF PF CF: bits 7 6 4 2 0 of AH, the same bits as in RFLAGS, SDM Vol. 2 LAHF) and
// SETO: IDENT in the strict sense, and ~5x cheaper than computing them (interp/flags.hpp, which
// the interpreter and every other host use). The bits are the ones the SDM defines, which the
// interpreter computes: add/sub/cmp define all six; and/or/xor/test clear CF and OF and leave
// AF undefined, which the interpreter clears (interp/flags.hpp), so AF is masked here; inc/dec
// keep CF, so the guest's CF is kept. The test "bt: the host ALU gives the interpreter's flags"
// compares every form and size with the interpreter over edge operands.
template <unsigned S>
using uint_of = std::conditional_t<S == 1, uint8_t, std::conditional_t<S == 2, uint16_t,
                std::conditional_t<S == 4, uint32_t, uint64_t>>>;

#if defined(__x86_64__) && defined(__GNUC__)
constexpr bool kNativeFlags = true;

// RFLAGS bits of AH after LAHF (SF ZF AF PF CF) and of AL after SETO (OF), in one register.
inline uint64_t lahf_seto_flags(uint64_t ax) {
  return ((ax >> 8) & (kSF | kZF | kAF | kPF | kCF)) | ((ax & 1) << 11);
}

// a = `K a, b` on S-byte operands (not for cmp/test, which leave a) with the host's flags: the
// arithmetic flags in RFLAGS form (the other bits 0).
#define TRAPSCOPE_NATIVE_ALU(KIND, INSN)                                                    \
  template <unsigned S>                                                                     \
  inline uint64_t native_alu(std::integral_constant<Alu, Alu::KIND>, uint_of<S>& a,         \
                             uint_of<S> b) {                                                \
    uint64_t ax;                                                                            \
    asm(INSN " %[b], %[a]\n\tlahf\n\tseto %%al" : [a] "+r"(a), "=&a"(ax) : [b] "r"(b) : "cc"); \
    return lahf_seto_flags(ax);                                                             \
  }
TRAPSCOPE_NATIVE_ALU(kAdd, "add")
TRAPSCOPE_NATIVE_ALU(kSub, "sub")
TRAPSCOPE_NATIVE_ALU(kCmp, "cmp")
TRAPSCOPE_NATIVE_ALU(kAnd, "and")
TRAPSCOPE_NATIVE_ALU(kOr, "or")
TRAPSCOPE_NATIVE_ALU(kXor, "xor")
TRAPSCOPE_NATIVE_ALU(kTest, "test")
#undef TRAPSCOPE_NATIVE_ALU

template <bool Inc, unsigned S>
inline uint64_t native_inc_dec(uint_of<S>& a) {
  uint64_t ax;
  if constexpr (Inc) asm("inc %[a]\n\tlahf\n\tseto %%al" : [a] "+r"(a), "=&a"(ax) : : "cc");
  else asm("dec %[a]\n\tlahf\n\tseto %%al" : [a] "+r"(a), "=&a"(ax) : : "cc");
  return lahf_seto_flags(ax);
}
#else
constexpr bool kNativeFlags = false;
// Declared so that the branches `if constexpr (... kNativeFlags ...)` discards still parse;
// never instantiated, never defined.
template <unsigned S, typename K>
uint64_t native_alu(K, uint_of<S>& a, uint_of<S> b);
template <bool Inc, unsigned S>
uint64_t native_inc_dec(uint_of<S>& a);
#endif

// The forms the host computes (adc and sbb would need the guest's CF in the host's first).
constexpr bool native_alu_kind(Alu k) { return k != Alu::kAdc && k != Alu::kSbb; }

// `K a, b` on S-byte operands with the flags; the result, and *rflags updated (F) or only
// read (adc/sbb, !F), as alu_result does.
template <Alu K, unsigned S, bool F>
inline uint64_t alu_op(uint64_t a, uint64_t b, uint64_t* rflags) {
  if constexpr (F && kNativeFlags && native_alu_kind(K)) {
    uint_of<S> x = static_cast<uint_of<S>>(a);
    uint64_t f = native_alu<S>(std::integral_constant<Alu, K>{}, x, static_cast<uint_of<S>>(b));
    if constexpr (K == Alu::kAnd || K == Alu::kOr || K == Alu::kXor || K == Alu::kTest) {
      f &= ~kAF;  // undefined; the interpreter clears it
    }
    *rflags = (*rflags & ~kArithFlags) | f;
    return x;
  } else {
    return alu_result<K, S, F>(a, b, rflags);
  }
}

// `K r0, b` (A0: r0's value is acc); returns the accumulator for the next micro-op: r0's new
// value, or acc when r0 is not written (cmp, test).
template <Alu K, unsigned S, bool F, bool A0>
inline uint64_t alu_to_reg(Cpu& c, unsigned r0, uint64_t b, uint64_t acc) {
  uint64_t f = c.s.rflags;
  const uint64_t r = alu_op<K, S, F>(reg<S, A0>(c, r0, acc), b, &f);
  if constexpr (F) c.s.rflags = f;
  if constexpr (alu_writes_dest(K)) return put<S, A0>(c, r0, r, acc);
  else return acc;
}

template <Alu K, unsigned S, bool F, bool A0, bool A1>
void alu_rr(Cpu& c, const MicroOp* op, MicroRun& run, uint64_t acc) {
  return next(c, op, run, alu_to_reg<K, S, F, A0>(c, op->r0, reg<S, A1>(c, op->r1, acc), acc));
}
template <Alu K, unsigned S, bool F, bool A0>
void alu_ri(Cpu& c, const MicroOp* op, MicroRun& run, uint64_t acc) {
  return next(c, op, run, alu_to_reg<K, S, F, A0>(c, op->r0, op->imm, acc));
}

template <Alu K, unsigned S, bool F>
void alu_rm(Cpu& c, const MicroOp* op, MicroRun& run, uint64_t acc) {
  if (const uint8_t* p = fast_data<false>(c, *op, effective_address(c, *op), S, 1)) [[likely]] {
    return next(c, op, run, alu_to_reg<K, S, F, false>(c, op->r0, load<S>(p), acc));
  }
  return run_generic(c, op, run, acc);
}

// op mem, reg|imm (Imm: the source is op->imm). A read-modify-write accesses the operand twice
// in the interpreter (Cpu::read, then Cpu::write): two TLB hits.
template <Alu K, unsigned S, bool F, bool Imm>
void alu_m(Cpu& c, const MicroOp* op, MicroRun& run, uint64_t acc) {
  constexpr bool kWrite = alu_writes_dest(K);
  if (uint8_t* p = fast_data<kWrite>(c, *op, effective_address(c, *op), S, kWrite ? 2 : 1))
      [[likely]] {
    uint64_t f = c.s.rflags;
    const uint64_t r = alu_op<K, S, F>(load<S>(p), Imm ? op->imm : reg<S>(c, op->r1), &f);
    if constexpr (kWrite) store<S>(p, r);
    if constexpr (F) c.s.rflags = f;
    return next(c, op, run, acc);
  }
  return run_generic(c, op, run, acc);
}

// --- other register forms ------------------------------------------------------------------

// inc/dec reg: as add/sub 1 with CF kept (alu.cpp inc_dec).
template <bool Inc, unsigned S, bool F, bool A0>
void inc_dec(Cpu& c, const MicroOp* op, MicroRun& run, uint64_t acc) {
  const uint64_t a = reg<S, A0>(c, op->r0, acc);
  if constexpr (F && kNativeFlags) {
    uint_of<S> x = static_cast<uint_of<S>>(a);
    const uint64_t g = native_inc_dec<Inc, S>(x);
    c.s.rflags = (c.s.rflags & ~(kArithFlags & ~kCF)) | (g & ~kCF);
    return next(c, op, run, put<S, A0>(c, op->r0, x, acc));
  }
  const uint64_t r = (Inc ? a + 1 : a - 1) & mask(S);
  if constexpr (F) {
    const uint64_t f = c.s.rflags;
    const uint64_t g = Inc ? add_flags(f, a, 1, 0, r, S) : sub_flags(f, a, 1, 0, r, S);
    c.s.rflags = (g & ~kCF) | (f & kCF);
  }
  return next(c, op, run, put<S, A0>(c, op->r0, r, acc));
}

enum class Sh { kShl, kShr, kSar, kRol, kRor };

// shift/rotate reg, imm with its flags dead (op->imm: the count already masked to 5 or 6 bits).
// The result is the interpreter's (alu.cpp shift); a count of 0 writes the register back
// unchanged, which clears the upper half of a 32-bit one as the interpreter does.
template <Sh K, unsigned S, bool A0>
void shift_nf(Cpu& c, const MicroOp* op, MicroRun& run, uint64_t acc) {
  constexpr unsigned bits = S * 8;
  constexpr uint64_t m = mask(S);
  const uint64_t v = gpr<A0>(c, op->r0, acc) & m;
  const unsigned n = static_cast<unsigned>(op->imm);
  uint64_t r;
  if constexpr (K == Sh::kShl) {
    r = (v << n) & m;
  } else if constexpr (K == Sh::kShr) {
    r = v >> n;
  } else if constexpr (K == Sh::kSar) {
    r = static_cast<uint64_t>(sign_extend(v, S) >> (n < bits ? n : bits - 1)) & m;
  } else {
    const unsigned k = n & (bits - 1);
    if (k == 0) r = v;
    else if constexpr (K == Sh::kRol) r = ((v << k) | (v >> (bits - k))) & m;
    else r = ((v >> k) | (v << (bits - k))) & m;
  }
  return next(c, op, run, put<S, A0>(c, op->r0, r, acc));
}

// imul reg, reg / imul reg, reg, imm (alu.cpp imul_form): CF = OF = the signed product does not
// fit the destination; SF, ZF, AF, PF unchanged.
template <unsigned S, bool Three, bool F, bool A0, bool A1>
void imul(Cpu& c, const MicroOp* op, MicroRun& run, uint64_t acc) {
  const int64_t x = sign_extend(Three ? gpr<A1>(c, op->r1, acc) : gpr<A0>(c, op->r0, acc), S);
  const int64_t y = sign_extend(Three ? op->imm : gpr<A1>(c, op->r1, acc), S);
  uint64_t lo;
  bool over = false;
  if constexpr (S <= 4) {
    const int64_t p = x * y;  // |x|, |y| <= 2^31: no overflow
    lo = static_cast<uint64_t>(p) & mask(S);
    if constexpr (F) over = p != sign_extend(lo, S);
  } else {
    const __int128 p = static_cast<__int128>(x) * y;
    lo = static_cast<uint64_t>(p);
    if constexpr (F) over = p != static_cast<__int128>(static_cast<int64_t>(lo));
  }
  if constexpr (F) c.s.rflags = (c.s.rflags & ~(kCF | kOF)) | (over ? kCF | kOF : 0);
  return next(c, op, run, put<S, A0>(c, op->r0, lo, acc));
}

// --- direct control flow (always a unit's last instruction) -------------------------------

// The target was checked for canonical form at translation time in 64-bit mode; outside it the
// CS limit is checked here (control.cpp check_target): #GP(0) before anything changes.
inline void branch(Cpu& c, const MicroOp* op) {
  if (op->amode != AddrMode::kLong && op->target > c.s.seg[kCs].limit) raise(vec::kGP, 0);
  c.s.rip = op->target;
}

template <uint8_t CC>
void jcc_op(Cpu& c, const MicroOp* op, MicroRun& run, uint64_t acc) {
  if (cond_cc<CC>(c.s.rflags)) {
    branch(c, op);
  } else {
    c.s.rip = op->next;
  }
  return next(c, op, run, acc);
}

void jmp_op(Cpu& c, const MicroOp* op, MicroRun& run, uint64_t acc) {
  branch(c, op);
  return next(c, op, run, acc);
}

// loop: the counter (CX, ECX, RCX by address size AS) is decremented with no flag change and
// written after the target check (control.cpp loop).
template <unsigned AS>
void loop_op(Cpu& c, const MicroOp* op, MicroRun& run, uint64_t acc) {
  uint64_t& rcx = c.s.gpr[kRcx];
  const uint64_t count = (rcx - 1) & mask(AS);
  const bool take = count != 0;
  if (take && op->amode != AddrMode::kLong && op->target > c.s.seg[kCs].limit) {
    c.fault_rip = op->t->rip;
    raise(vec::kGP, 0);
  }
  if constexpr (AS == 2) rcx = (rcx & ~0xFFFFull) | count;
  else rcx = count;
  c.s.rip = take ? op->target : op->next;
  return next(c, op, run, acc);
}

// --- tables --------------------------------------------------------------------------------

template <size_t... I>
constexpr auto jcc_table(std::index_sequence<I...>) {
  return std::array<MicroFn, sizeof...(I)>{&jcc_op<static_cast<uint8_t>(I)>...};
}
constexpr auto kJcc = jcc_table(std::make_index_sequence<16>{});

// &BODY<..., S, ...> for a size S of 1, 2, 4 or 8 bytes (nullptr otherwise).
#define TRAPSCOPE_SIZED(size, EXPR)                    \
  switch (size) {                                      \
    case 1: { constexpr unsigned S = 1; return EXPR; } \
    case 2: { constexpr unsigned S = 2; return EXPR; } \
    case 4: { constexpr unsigned S = 4; return EXPR; } \
    case 8: { constexpr unsigned S = 8; return EXPR; } \
    default: return nullptr;                           \
  }

enum class Form { kRR, kRI, kRM, kMR, kMI };

// f(A0, A1) with A0, A1 as std::bool_constant: the variant that reads r0 / r1 from acc.
template <typename Fn>
MicroFn with_acc(bool a0, bool a1, Fn f) {
  using T = std::true_type;
  using N = std::false_type;
  if (a0) return a1 ? f(T{}, T{}) : f(T{}, N{});
  return a1 ? f(N{}, T{}) : f(N{}, N{});
}
#define TRAPSCOPE_A0 decltype(A0)::value
#define TRAPSCOPE_A1 decltype(A1)::value

// Which operands of a micro-op come from the accumulator.
struct AccUse {
  bool r0 = false, r1 = false;
};

template <Alu K, bool F>
MicroFn alu_fn(Form form, unsigned size, AccUse a) {
  switch (form) {
    case Form::kRR:
      return with_acc(a.r0, a.r1, [&](auto A0, auto A1) -> MicroFn {
        TRAPSCOPE_SIZED(size, (&alu_rr<K, S, F, TRAPSCOPE_A0, TRAPSCOPE_A1>))
      });
    case Form::kRI:
      return with_acc(a.r0, false, [&](auto A0, auto) -> MicroFn {
        TRAPSCOPE_SIZED(size, (&alu_ri<K, S, F, TRAPSCOPE_A0>))
      });
    case Form::kRM: TRAPSCOPE_SIZED(size, (&alu_rm<K, S, F>))
    case Form::kMR: TRAPSCOPE_SIZED(size, (&alu_m<K, S, F, false>))
    case Form::kMI: TRAPSCOPE_SIZED(size, (&alu_m<K, S, F, true>))
  }
  return nullptr;
}

template <Alu K>
MicroFn alu_fn(Form form, unsigned size, bool flags, AccUse a) {
  return flags ? alu_fn<K, true>(form, size, a) : alu_fn<K, false>(form, size, a);
}

MicroFn alu_fn(Op o, Form form, unsigned size, bool flags, AccUse a) {
  switch (o) {
    case Op::kAdd: return alu_fn<Alu::kAdd>(form, size, flags, a);
    case Op::kAdc: return alu_fn<Alu::kAdc>(form, size, flags, a);
    case Op::kSub: return alu_fn<Alu::kSub>(form, size, flags, a);
    case Op::kSbb: return alu_fn<Alu::kSbb>(form, size, flags, a);
    case Op::kAnd: return alu_fn<Alu::kAnd>(form, size, flags, a);
    case Op::kOr: return alu_fn<Alu::kOr>(form, size, flags, a);
    case Op::kXor: return alu_fn<Alu::kXor>(form, size, flags, a);
    case Op::kCmp: return alu_fn<Alu::kCmp>(form, size, flags, a);
    case Op::kTest: return alu_fn<Alu::kTest>(form, size, flags, a);
    default: return nullptr;
  }
}

MicroFn mov_fn(Form form, unsigned size, AccUse a, bool base_only) {
  switch (form) {
    case Form::kRR:
      return with_acc(a.r0, a.r1, [&](auto A0, auto A1) -> MicroFn {
        TRAPSCOPE_SIZED(size, (&mov_rr<S, TRAPSCOPE_A0, TRAPSCOPE_A1>))
      });
    case Form::kRI:
      return with_acc(a.r0, false, [&](auto A0, auto) -> MicroFn {
        TRAPSCOPE_SIZED(size, (&mov_ri<S, TRAPSCOPE_A0>))
      });
    case Form::kRM:
      return with_acc(base_only, false, [&](auto B, auto) -> MicroFn {
        TRAPSCOPE_SIZED(size, (&mov_rm<S, decltype(B)::value>))
      });
    case Form::kMR:
      return with_acc(base_only, a.r1, [&](auto B, auto A1) -> MicroFn {
        TRAPSCOPE_SIZED(size, (&mov_mr<S, TRAPSCOPE_A1, decltype(B)::value>))
      });
    case Form::kMI: TRAPSCOPE_SIZED(size, (&mov_mi<S>))
  }
  return nullptr;
}

template <Sh K>
MicroFn shift_fn(unsigned size, AccUse a) {
  return with_acc(a.r0, false, [&](auto A0, auto) -> MicroFn {
    TRAPSCOPE_SIZED(size, (&shift_nf<K, S, TRAPSCOPE_A0>))
  });
}

template <bool Inc>
MicroFn inc_dec_fn(unsigned size, bool flags, AccUse a) {
  return with_acc(a.r0, flags, [&](auto A0, auto F) -> MicroFn {
    TRAPSCOPE_SIZED(size, (&inc_dec<Inc, S, decltype(F)::value, TRAPSCOPE_A0>))
  });
}

template <bool Three>
MicroFn imul_fn(unsigned size, bool flags, AccUse a) {
  if (size == 1) return nullptr;
  return with_acc(a.r0, a.r1, [&](auto A0, auto A1) -> MicroFn {
    if (flags) TRAPSCOPE_SIZED(size, (&imul<S, Three, true, TRAPSCOPE_A0, TRAPSCOPE_A1>))
    TRAPSCOPE_SIZED(size, (&imul<S, Three, false, TRAPSCOPE_A0, TRAPSCOPE_A1>))
  });
}

#undef TRAPSCOPE_A0
#undef TRAPSCOPE_A1

#undef TRAPSCOPE_SIZED

bool is_alu(Op o) {
  switch (o) {
    case Op::kAdd: case Op::kAdc: case Op::kSub: case Op::kSbb: case Op::kAnd: case Op::kOr:
    case Op::kXor: case Op::kCmp: case Op::kTest:
      return true;
    default: return false;
  }
}

inline bool is_gpr(const Operand& o) {
  return o.kind == OperandKind::kReg && o.reg_class == RegClass::kGpr;
}
inline bool is_reg_or_imm(const Operand& o) {
  return o.kind == OperandKind::kImm ||
         (o.kind == OperandKind::kReg &&
          (o.reg_class == RegClass::kGpr || o.reg_class == RegClass::kGprHigh));
}
// A memory operand the fast data path can address (RIP-relative ones were made absolute).
inline bool is_plain_mem(const Operand& o) {
  return o.kind == OperandKind::kMem && o.base != kRipBase && o.base < 16 && o.index < 16 &&
         o.seg < kSegCount;
}
bool has_mem(const Instruction& in) {
  for (unsigned i = 0; i < in.operand_count; ++i) {
    if (in.ops[i].kind == OperandKind::kMem) return true;
  }
  return false;
}

// Register-only instructions whose interpreter handler may run with no bookkeeping (pure_op):
// no memory, RIP, instruction bytes or TSC, and no fault.
bool is_pure(const Instruction& in) {
  switch (in.op) {
    case Op::kAdd: case Op::kAdc: case Op::kSub: case Op::kSbb: case Op::kAnd: case Op::kOr:
    case Op::kXor: case Op::kCmp: case Op::kTest: case Op::kInc: case Op::kDec: case Op::kNeg:
    case Op::kNot: case Op::kShl: case Op::kShr: case Op::kSar: case Op::kRol: case Op::kRor:
    case Op::kRcl: case Op::kRcr: case Op::kImul: case Op::kMul: case Op::kMov: case Op::kMovzx:
    case Op::kMovsx: case Op::kMovsxd: case Op::kXchg: case Op::kBswap: case Op::kCbw:
    case Op::kCwd: case Op::kSetcc: case Op::kCmovcc: case Op::kBt: case Op::kBts:
    case Op::kBtr: case Op::kBtc: case Op::kBsf: case Op::kBsr: case Op::kClc: case Op::kStc:
    case Op::kCmc: case Op::kCld: case Op::kStd: case Op::kNop: case Op::kLahf: case Op::kSahf:
      break;
    case Op::kLea: return !in.lock && in.operand_count == 2 && is_gpr(in.ops[0]) &&
                          is_plain_mem(in.ops[1]);
    default: return false;
  }
  if (in.lock) return false;
  for (unsigned i = 0; i < in.operand_count; ++i) {
    if (!is_reg_or_imm(in.ops[i])) return false;
  }
  return true;
}

// The count of a shift/rotate by an immediate, masked as the processor masks it.
unsigned imm_count(const Instruction& in) {
  return static_cast<unsigned>(in.ops[1].imm) & (in.ops[0].size == 8 ? 0x3F : 0x1F);
}

}  // namespace

FlagUse flag_use(const TransInsn& t) {
  const Instruction& in = t.insn;
  FlagUse u;  // not modelled: reads everything, writes nothing for sure
  if (t.kind != BtKind::kIdent && t.kind != BtKind::kPcRelative &&
      t.kind != BtKind::kDirectBranch) {
    return u;
  }
  const bool mem = has_mem(in) && in.op != Op::kLea;
  if (!is_pure(in) && !(mem && (is_alu(in.op) || in.op == Op::kMov)) && in.op != Op::kJcc &&
      in.op != Op::kJmp && in.op != Op::kLoop) {
    return u;
  }
  constexpr uint64_t kAll = kArithFlags;
  uint64_t read = 0, may = 0, must = 0;
  switch (in.op) {
    case Op::kAdd: case Op::kSub: case Op::kCmp: case Op::kAnd: case Op::kOr: case Op::kXor:
    case Op::kTest: case Op::kNeg:
      may = must = kAll;
      break;
    case Op::kAdc: case Op::kSbb:
      read = kCF;
      may = must = kAll;
      break;
    case Op::kInc: case Op::kDec:
      may = must = kAll & ~kCF;
      break;
    case Op::kShl: case Op::kShr: case Op::kSar: case Op::kRol: case Op::kRor: case Op::kRcl:
    case Op::kRcr: {
      const bool rotate = in.op != Op::kShl && in.op != Op::kShr && in.op != Op::kSar;
      const bool through_cf = in.op == Op::kRcl || in.op == Op::kRcr;
      may = rotate ? (kCF | kOF) : kAll;
      read = through_cf ? kCF : 0;
      if (in.operand_count < 2) {
        must = 0;  // not the reg, imm|cl form the decoder gives: conservative
      } else if (in.ops[1].kind == OperandKind::kImm) {
        if (imm_count(in) == 0) may = read = 0;  // no flag changes (count_zero)
        must = may;
      } else {
        must = 0;  // a count of 0 in CL leaves the flags
      }
      break;
    }
    case Op::kImul: case Op::kMul:
      may = must = kCF | kOF;
      break;
    case Op::kSetcc: case Op::kCmovcc: case Op::kJcc:
      read = cond_reads(in.cc);
      break;
    case Op::kBt: case Op::kBts: case Op::kBtr: case Op::kBtc:
      may = must = kCF;
      break;
    case Op::kBsf: case Op::kBsr:
      may = must = kAll;  // undefined ones included (sim/interp/undefined.hpp)
      break;
    case Op::kClc: case Op::kStc:
      may = must = kCF;
      break;
    case Op::kCmc:
      read = may = must = kCF;
      break;
    case Op::kLahf:
      read = kSF | kZF | kAF | kPF | kCF;
      break;
    case Op::kSahf:
      may = must = kSF | kZF | kAF | kPF | kCF;
      break;
    default:  // mov, movzx, movsx, movsxd, xchg, bswap, cbw, cwd, cld, std, nop, lea, jmp, loop
      break;
  }
  // A memory access or a branch may fault: the exception handler sees every flag.
  if (mem || in.op == Op::kJcc || in.op == Op::kJmp || in.op == Op::kLoop) read = kAll;
  u.read = read;
  u.may_write = may;
  u.must_write = must;
  u.exact = true;
  return u;
}

MicroOp make_micro_op(const TransInsn& t, trace::CpuMode mode, bool need_flags, int acc_in) {
  const Instruction& in = t.insn;
  MicroOp op;
  op.t = &t;
  op.acc_out = kNoReg;  // unless a form below says otherwise
  op.next = t.next_rip;
  op.amode = mode == trace::CpuMode::kLong64 ? AddrMode::kLong
             : mode == trace::CpuMode::kReal16 ? AddrMode::kReal
                                                : AddrMode::kProtected;
  op.fn = &generic_op;
  op.generic = op.sets_rip = true;
  if (in.lock || (t.kind != BtKind::kIdent && t.kind != BtKind::kPcRelative &&
                  t.kind != BtKind::kDirectBranch)) {
    return op;
  }
  const Operand* o = in.ops;
  const unsigned size = o[0].size;
  auto use = [&](MicroFn fn) {
    if (fn == nullptr) return false;
    op.fn = fn;
    op.generic = op.sets_rip = false;
    return true;
  };
  auto mem_operand = [&](const Operand& m) {
    op.disp = static_cast<uint64_t>(m.disp);
    op.base = m.base;
    op.index = m.index;
    op.scale = m.index == kNoReg ? 0 : m.scale;
    op.seg = m.seg;
    op.amask = mask(in.address_size / 8);
  };

  // Direct control flow.
  if (t.kind == BtKind::kDirectBranch) {
    if (o[0].kind != OperandKind::kImm) return op;
    op.target = (t.next_rip + o[0].imm) & mask(in.operand_size / 8);
    if (mode == trace::CpuMode::kLong64 &&
        static_cast<uint64_t>(static_cast<int64_t>(op.target << 16) >> 16) != op.target) {
      return op;  // the generic path raises #GP
    }
    MicroFn fn = nullptr;
    if (in.op == Op::kJcc && in.cc < 16) fn = kJcc[in.cc];
    if (in.op == Op::kJmp) fn = &jmp_op;
    if (in.op == Op::kLoop) {
      fn = in.address_size == 16 ? &loop_op<2> : in.address_size == 32 ? &loop_op<4>
                                                                       : &loop_op<8>;
    }
    if (use(fn)) op.sets_rip = true;
    return op;
  }

  if (in.operand_count == 2 && (in.op == Op::kMov || is_alu(in.op))) {
    const bool dst_reg = is_gpr(o[0]), dst_mem = is_plain_mem(o[0]);
    const bool src_reg = is_gpr(o[1]) && o[1].size == size;
    const bool src_imm = o[1].kind == OperandKind::kImm;
    const bool src_mem = is_plain_mem(o[1]) && o[1].size == size;
    Form form;
    if (dst_reg && src_reg) form = Form::kRR;
    else if (dst_reg && src_imm) form = Form::kRI;
    else if (dst_reg && src_mem) form = Form::kRM;
    else if (dst_mem && src_reg) form = Form::kMR;
    else if (dst_mem && src_imm) form = Form::kMI;
    else return op;
    op.r0 = o[0].reg;
    op.r1 = o[1].reg;
    if (src_imm) op.imm = o[1].imm & mask(size);
    if (form == Form::kRM) mem_operand(o[1]);
    if (form == Form::kMR || form == Form::kMI) mem_operand(o[0]);
    const bool memory = form == Form::kRM || form == Form::kMR || form == Form::kMI;
    const AccUse a{dst_reg && acc_in == op.r0, src_reg && acc_in == op.r1};
    const bool writes_reg = dst_reg && in.op != Op::kCmp && in.op != Op::kTest;
    MicroFn fn = nullptr;
    if (in.op == Op::kMov) {
      const Operand& m = form == Form::kRM ? o[1] : o[0];
      const bool base_only =
          m.kind == OperandKind::kMem && m.base != kNoReg && m.index == kNoReg;
      fn = mov_fn(form, size, a, base_only);
    } else if (!memory && !need_flags && (in.op == Op::kCmp || in.op == Op::kTest)) {
      fn = &nop_op;  // only flags, and they are dead
    } else {
      fn = alu_fn(in.op, form, size, need_flags, a);
    }
    op.flags = need_flags;
    // The accumulator afterwards: the destination register, or (memory destination, cmp,
    // test) still the one before; the generic path (a slow access) passes the same
    // (run_generic).
    if (use(fn)) op.acc_out = static_cast<int8_t>(writes_reg ? op.r0 : acc_in);
    return op;
  }

  if (!is_pure(in)) return op;
  if (is_gpr(o[0])) {
    op.r0 = o[0].reg;
    AccUse a{acc_in == op.r0, false};
    MicroFn fn = nullptr;
    if ((in.op == Op::kInc || in.op == Op::kDec) && in.operand_count == 1) {
      fn = in.op == Op::kInc ? inc_dec_fn<true>(size, need_flags, a)
                             : inc_dec_fn<false>(size, need_flags, a);
    } else if (!need_flags && in.operand_count == 2 && o[1].kind == OperandKind::kImm) {
      op.imm = imm_count(in);
      switch (in.op) {
        case Op::kShl: fn = shift_fn<Sh::kShl>(size, a); break;
        case Op::kShr: fn = shift_fn<Sh::kShr>(size, a); break;
        case Op::kSar: fn = shift_fn<Sh::kSar>(size, a); break;
        case Op::kRol: fn = shift_fn<Sh::kRol>(size, a); break;
        case Op::kRor: fn = shift_fn<Sh::kRor>(size, a); break;
        default: break;
      }
    } else if (in.op == Op::kImul && is_gpr(o[1]) && o[1].size == size && size >= 2) {
      op.r1 = o[1].reg;
      a.r1 = acc_in == op.r1;
      if (in.operand_count == 3 && o[2].kind == OperandKind::kImm) {
        op.imm = o[2].imm;
        fn = imul_fn<true>(size, need_flags, a);
      } else if (in.operand_count == 2) {
        fn = imul_fn<false>(size, need_flags, a);
      }
    }
    if (use(fn)) {
      op.flags = need_flags;
      op.acc_out = static_cast<int8_t>(op.r0);  // each of these writes r0
      return op;
    }
  }
  use(&pure_op);
  return op;
}

MicroOp end_micro_op(Unit* chain_from) {
  MicroOp op;
  op.fn = &end_op;
  op.unit = chain_from;
  if (chain_from != nullptr) {
    const bool real = chain_from->mode == trace::CpuMode::kReal16;
    const bool store_rip = chain_from->fast_next_rip != 0;
    op.fn = real ? (store_rip ? &chain_op<true, true> : &chain_op<true, false>)
                 : (store_rip ? &chain_op<false, true> : &chain_op<false, false>);
  }
  return op;
}

}  // namespace trapscope::sim::bt
