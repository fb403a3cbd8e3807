#include "x86/mode.hpp"

namespace trapscope::x86 {

std::string_view to_string(CpuMode mode) {
  switch (mode) {
    case CpuMode::kReal16: return "real";
    case CpuMode::kProtected16: return "protected16";
    case CpuMode::kProtected32: return "protected32";
    case CpuMode::kLong64: return "long64";
    case CpuMode::kCompat32: return "compat32";
    case CpuMode::kCompat16: return "compat16";
    case CpuMode::kUnknown:
    case CpuMode::kMax: break;
  }
  return "unknown";
}

}  // namespace trapscope::x86
