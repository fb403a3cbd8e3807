#include "sim/interp/handlers.hpp"

namespace trapscope::sim {

const Handler kHandlers[static_cast<size_t>(Op::kCount)] = {
    nullptr,
#define TRAPSCOPE_OP(name, family) &exec_##name,
#include "sim/ops.def"
#undef TRAPSCOPE_OP
};

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
