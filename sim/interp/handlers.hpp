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

}  // namespace trapscope::sim
