#include "platform/block.hpp"

namespace trapscope::platform {

std::string_view to_string(BlockStatus status) {
  switch (status) {
    case BlockStatus::kOk: return "ok";
    case BlockStatus::kOutOfRange: return "sector out of range";
    case BlockStatus::kReadOnly: return "disk is read-only";
    case BlockStatus::kIoError: return "host I/O error";
  }
  return "?";
}

}  // namespace trapscope::platform
