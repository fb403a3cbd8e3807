// sim/interp/handlers.hpp — one handler per Op (sim/ops.def), grouped by family in
// sim/interp/<family>.cpp. A handler executes one decoded instruction on the Cpu; it raises
// architectural exceptions with sim::raise() and reports gaps with sim::Unsupported.
#pragma once

#include "sim/cpu.hpp"
#include "sim/insn.hpp"

namespace trapscope::sim {

using Handler = void (*)(Cpu&, const Instruction&);

#define TRAPSCOPE_OP(name, family) void exec_##name(Cpu& cpu, const Instruction& insn);
#include "sim/ops.def"
#undef TRAPSCOPE_OP

// The handler of each Op, indexed by its number (kUnsupported has none).
extern const Handler kHandlers[static_cast<size_t>(Op::kCount)];

// The handler to cache for a decoded instruction: one specialised for its operand form where
// there is one (e.g. `add r32, imm`: the operand size and kinds fixed at compile time, no tests
// of them per execution; the commonest forms of the integer ALU, shifts, inc/dec, mov and jcc),
// else kHandlers[insn.op]. Same architectural effect either way; the step loop
// (sim/machine.cpp) calls this once, when the instruction enters its decode cache.
Handler select_handler(const Instruction& insn);
Handler select_alu_handler(const Instruction& insn);      // alu.cpp; nullptr if none
Handler select_datamov_handler(const Instruction& insn);  // datamov.cpp; nullptr if none
Handler select_control_handler(const Instruction& insn);  // control.cpp; nullptr if none

}  // namespace trapscope::sim
