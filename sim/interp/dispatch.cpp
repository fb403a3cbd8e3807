#include "sim/interp/handlers.hpp"

namespace trapscope::sim {

const Handler kHandlers[static_cast<size_t>(Op::kCount)] = {
    nullptr,
#define TRAPSCOPE_OP(name, family) &exec_##name,
#include "sim/ops.def"
#undef TRAPSCOPE_OP
};

Handler select_handler(const Instruction& insn) {
  if (Handler h = select_alu_handler(insn)) return h;
  if (Handler h = select_datamov_handler(insn)) return h;
  if (Handler h = select_control_handler(insn)) return h;
  return kHandlers[static_cast<size_t>(insn.op)];
}

std::string_view op_name(Op op) {
  static constexpr std::string_view kNames[] = {
      "unsupported",
#define TRAPSCOPE_OP(name, family) #name,
#include "sim/ops.def"
#undef TRAPSCOPE_OP
  };
  const auto i = static_cast<size_t>(op);
  return i < std::size(kNames) ? kNames[i] : "?";
}

}  // namespace trapscope::sim
