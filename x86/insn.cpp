#include "x86/insn.hpp"

#include <iterator>

namespace trapscope::x86 {

std::string_view op_name(Op op) {
  static constexpr std::string_view kNames[] = {
      "unsupported",
#define TRAPSCOPE_OP(name, family) #name,
#include "x86/ops.def"
#undef TRAPSCOPE_OP
  };
  const auto i = static_cast<size_t>(op);
  return i < std::size(kNames) ? kNames[i] : "?";
}

}  // namespace trapscope::x86
