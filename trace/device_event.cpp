#include "trace/device_event.hpp"

#include <iterator>

namespace trapscope::trace {

std::string_view to_string(DeviceKind kind) {
  static constexpr std::string_view kNames[] = {"ata", "virtio-blk", "passthrough", "iommu",
                                                "disk"};
  static_assert(std::size(kNames) == static_cast<size_t>(DeviceKind::kMax));
  const auto i = static_cast<size_t>(kind);
  return i < std::size(kNames) ? kNames[i] : "?";
}

std::string_view to_string(DeviceAction action) {
  static constexpr std::string_view kNames[] = {
      "register_read", "register_write", "command", "data",   "complete",
      "error",         "flush",          "notify",  "chain",  "used",
      "needs_reset",   "dma",            "iommu_fault"};
  static_assert(std::size(kNames) == static_cast<size_t>(DeviceAction::kMax));
  const auto i = static_cast<size_t>(action);
  return i < std::size(kNames) ? kNames[i] : "?";
}

std::string_view ata_command_name(uint8_t opcode) {
  switch (opcode) {
    case 0x20: return "READ SECTORS";
    case 0x30: return "WRITE SECTORS";
    case 0xE7: return "FLUSH CACHE";
    case 0xEC: return "IDENTIFY DEVICE";
    default: return "?";
  }
}

std::string_view virtio_blk_type_name(uint32_t type) {
  switch (type) {
    case 0: return "IN";
    case 1: return "OUT";
    case 4: return "FLUSH";
    case 8: return "GET_ID";
    default: return "?";
  }
}

}  // namespace trapscope::trace
