// sim/interp/handlers.hpp — one handler per Op (x86/ops.def), grouped by family in
// sim/interp/<family>.cpp. A handler executes one decoded instruction on the Cpu; it raises
// architectural exceptions with sim::raise() and reports gaps with sim::Unsupported.
#pragma once

#include <cstring>

#include "sim/cpu.hpp"
#include "sim/arch.hpp"

namespace trapscope::sim {

using Handler = void (*)(Cpu&, const Instruction&);

#define TRAPSCOPE_OP(name, family) void exec_##name(Cpu& cpu, const Instruction& insn);
#include "x86/ops.def"
#undef TRAPSCOPE_OP

// The handler of each Op, indexed by its number (kUnsupported has none).
extern const Handler kHandlers[static_cast<size_t>(Op::kCount)];

// The handler to cache for a decoded instruction: one specialised for its operand form where
// there is one (e.g. `add r32, imm`: the operand size and kinds fixed at compile time, no tests
// of them per execution; the commonest forms of the integer ALU, shifts, inc/dec, mov and jcc),
// else kHandlers[insn.op]. Same architectural effect either way; the step loop
// (sim/sim_machine.cpp) calls this once, when the instruction enters its decode cache.
Handler select_handler(const Instruction& insn);
Handler select_alu_handler(const Instruction& insn);      // alu.cpp; nullptr if none
Handler select_datamov_handler(const Instruction& insn);  // datamov.cpp; nullptr if none
Handler select_control_handler(const Instruction& insn);  // control.cpp; nullptr if none

// The host address of memory operand `op` (S bytes) through the host-pointer fast path
// (Cpu::host_data, at the current CPL and address mode; `hits`: 2 for a read-modify-write), or
// nullptr: then the handler takes its generic path (Cpu::read/write: the full checks, faults
// and events) before it has changed any state.
template <unsigned S, bool Write>
[[gnu::always_inline]] inline uint8_t* host_operand(Cpu& cpu, const Instruction& insn, const Operand& op,
                             unsigned hits = 1) {
  return cpu.host_data<Write>(static_cast<SegReg>(op.seg), cpu.effective_address(insn, op), S,
                              cpu.addr_mode(), cpu.cpl() == 3, hits);
}
template <unsigned S>
inline uint64_t load_host(const uint8_t* p) {
  uint64_t v = 0;
  std::memcpy(&v, p, S);  // little-endian host (x86-64, as the guest)
  return v;
}
template <unsigned S>
inline void store_host(uint8_t* p, uint64_t v) {
  std::memcpy(p, &v, S);
}

}  // namespace trapscope::sim
