// sim/interp/control.cpp — near control transfers: jmp, jcc, call, ret [imm16], jcxz/jecxz/jrcxz
// and loop/loope/loopne (see x86/ops.def).
//
// Sources: Intel SDM Vol. 2 "JMP", "Jcc", "CALL", "RET", "LOOP/LOOPcc" (near forms). While a
// handler runs, s.rip already holds the address of the next instruction; a relative target is
// s.rip + displacement truncated to the operand size (a 16-bit IP wraps at 64 KiB). The target
// is checked (CS limit outside 64-bit mode, canonical form in 64-bit mode: #GP(0)) before
// anything is changed, so a faulting branch leaves the state as it was.
#include <array>
#include <utility>

#include "sim/interp/flags.hpp"
#include "sim/interp/handlers.hpp"

namespace trapscope::sim {
namespace {

inline void check_target(const Cpu& cpu, uint64_t target) {
  if (cpu.mode64()) {
    if (static_cast<uint64_t>(static_cast<int64_t>(target << 16) >> 16) != target) {
      raise(vec::kGP, 0);
    }
  } else if (target > cpu.s.seg[kCs].limit) {
    raise(vec::kGP, 0);
  }
}

inline uint64_t relative_target(const Cpu& cpu, const Instruction& insn) {
  return (cpu.s.rip + insn.ops[0].imm) & mask(insn.operand_size / 8);
}

// The target of jmp/call: rel (immediate displacement) or r/m (absolute, operand-sized).
inline uint64_t branch_target(Cpu& cpu, const Instruction& insn) {
  const Operand& op = insn.ops[0];
  if (op.kind == OperandKind::kImm) return relative_target(cpu, insn);
  if (op.kind == OperandKind::kReg && op.reg_class == RegClass::kGpr) {
    return cpu.s.gpr[op.reg] & mask(op.size);
  }
  return cpu.read_op(insn, 0);
}

inline void put_gpr(CpuState& s, unsigned reg, unsigned size, uint64_t v) {
  uint64_t& r = s.gpr[reg];
  switch (size) {
    case 2: r = (r & ~0xFFFFull) | (v & 0xFFFF); break;
    case 4: r = v & 0xFFFFFFFFull; break;
    default: r = v; break;
  }
}

enum class LoopKind { kLoop, kLoope, kLoopne };

// loop/loope/loopne: decrement the counter (CX, ECX or RCX by ADDRESS size) without touching
// the flags; branch if it is not zero (and ZF = 1 / ZF = 0).
template <LoopKind K>
inline void loop(Cpu& cpu, const Instruction& insn) {
  CpuState& s = cpu.s;
  const unsigned as = insn.address_size / 8;
  const uint64_t count = (s.gpr[kRcx] - 1) & mask(as);
  bool take = count != 0;
  if constexpr (K == LoopKind::kLoope) take = take && (s.rflags & kZF);
  if constexpr (K == LoopKind::kLoopne) take = take && !(s.rflags & kZF);
  if (take) {
    const uint64_t target = relative_target(cpu, insn);
    check_target(cpu, target);
    put_gpr(s, kRcx, as, count);
    s.rip = target;
  } else {
    put_gpr(s, kRcx, as, count);
  }
}

}  // namespace

void exec_kJmp(Cpu& cpu, const Instruction& insn) {
  const uint64_t target = branch_target(cpu, insn);
  check_target(cpu, target);
  cpu.s.rip = target;
}

void exec_kJcc(Cpu& cpu, const Instruction& insn) {
  if (!cpu.cond(insn.cc)) return;
  const uint64_t target = relative_target(cpu, insn);
  check_target(cpu, target);
  cpu.s.rip = target;
}

// call rel/r/m: the target is read and checked, then the return address (the next
// instruction) is pushed with the operand size.
void exec_kCall(Cpu& cpu, const Instruction& insn) {
  const unsigned size = insn.operand_size / 8;
  const uint64_t target = branch_target(cpu, insn);
  check_target(cpu, target);
  cpu.push(cpu.s.rip & mask(size), size);
  cpu.s.rip = target;
}

// ret [imm16]: the return address is read and checked before SP moves; then SP += size + imm16.
void exec_kRet(Cpu& cpu, const Instruction& insn) {
  CpuState& s = cpu.s;
  const unsigned size = insn.operand_size / 8;
  const unsigned as = cpu.stack_address_size();
  const uint64_t am = mask(as);
  const uint64_t sp = s.gpr[kRsp] & am;
  const uint64_t target = cpu.read(kSs, sp, size);
  check_target(cpu, target);
  const uint64_t release = insn.operand_count ? (insn.ops[0].imm & 0xFFFF) : 0;
  const uint64_t next = (sp + size + release) & am;
  if (as == 2) s.gpr[kRsp] = (s.gpr[kRsp] & ~0xFFFFull) | next;
  else put_gpr(s, kRsp, as, next);
  s.rip = target;
}

// jcxz/jecxz/jrcxz: by address size.
void exec_kJcxz(Cpu& cpu, const Instruction& insn) {
  if (cpu.s.gpr[kRcx] & mask(insn.address_size / 8)) return;
  const uint64_t target = relative_target(cpu, insn);
  check_target(cpu, target);
  cpu.s.rip = target;
}

void exec_kLoop(Cpu& cpu, const Instruction& insn) { loop<LoopKind::kLoop>(cpu, insn); }
void exec_kLoope(Cpu& cpu, const Instruction& insn) { loop<LoopKind::kLoope>(cpu, insn); }
void exec_kLoopne(Cpu& cpu, const Instruction& insn) { loop<LoopKind::kLoopne>(cpu, insn); }

// [SECTION] Jcc specialised for its condition code (the test of Cpu::cond inlined).

namespace {

template <uint8_t CC>
void jcc(Cpu& cpu, const Instruction& insn) {
  if (!cond_cc<CC>(cpu.s.rflags)) return;
  const uint64_t target = relative_target(cpu, insn);
  check_target(cpu, target);
  cpu.s.rip = target;
}

template <size_t... I>
constexpr auto jcc_table(std::index_sequence<I...>) {
  return std::array<Handler, sizeof...(I)>{&jcc<static_cast<uint8_t>(I)>...};
}
constexpr auto kJcc = jcc_table(std::make_index_sequence<16>{});

}  // namespace

Handler select_control_handler(const Instruction& insn) {
  if (insn.op == Op::kJcc && insn.cc < 16 && insn.ops[0].kind == OperandKind::kImm) {
    return kJcc[insn.cc];
  }
  return nullptr;
}

}  // namespace trapscope::sim
