#include "sim/interp/handlers.hpp"

namespace trapscope::sim {

const Handler kHandlers[static_cast<size_t>(Op::kCount)] = {
    nullptr,
#define TRAPSCOPE_OP(name, family) &exec_##name,
#include "x86/ops.def"
#undef TRAPSCOPE_OP
};

Handler select_handler(const Instruction& insn) {
  if (Handler h = select_alu_handler(insn)) return h;
  if (Handler h = select_datamov_handler(insn)) return h;
  if (Handler h = select_control_handler(insn)) return h;
  return kHandlers[static_cast<size_t>(insn.op)];
}

}  // namespace trapscope::sim
