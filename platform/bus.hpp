// platform/bus.hpp — an address bus of devices at non-overlapping ranges: the port-I/O bus
// (16-bit port numbers) and the MMIO bus (guest-physical addresses) of platform/devices.hpp.
// After Firecracker's vmm/src/devices/bus.rs: inserting a range that overlaps one already on the
// bus is refused, so two devices can never both answer one access.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace trapscope::platform {

// A device on a bus of addresses `Addr`. offset: the address − the device's base. data: the
// access, little-endian (port I/O: 1, 2 or 4 bytes; MMIO: 1 to 8).
template <typename Addr>
class BusDevice {
 public:
  virtual ~BusDevice() = default;
  virtual std::string_view name() const = 0;
  virtual void read(Addr offset, std::span<uint8_t> data) = 0;
  virtual void write(Addr offset, std::span<const uint8_t> data) = 0;
};

template <typename Addr>
class Bus {
 public:
  using Device = BusDevice<Addr>;

  // Throws std::invalid_argument for an empty range, one past the end of the address space, or
  // one that overlaps a range already on the bus (naming both devices).
  void insert(Addr base, Addr len, Device* device) {
    if (len == 0 || base > std::numeric_limits<Addr>::max() - (len - 1)) {
      throw std::invalid_argument(std::string(kName) + ": bad range for " +
                                  std::string(device->name()));
    }
    for (const Range& r : ranges_) {
      if (base <= r.base + (r.len - 1) && r.base <= base + (len - 1)) {
        throw std::invalid_argument(std::string(kName) + ": " + std::string(device->name()) +
                                    " overlaps " + std::string(r.device->name()));
      }
    }
    ranges_.push_back({base, len, device});
  }
  // The device that claims `addr`, with the offset into it; nullptr if none does.
  Device* find(Addr addr, Addr* offset) const {
    for (const Range& r : ranges_) {
      if (addr >= r.base && addr - r.base < r.len) {
        *offset = static_cast<Addr>(addr - r.base);
        return r.device;
      }
    }
    return nullptr;
  }
  // False if no device claims `addr`: a read then returns all ones, a write is dropped.
  bool read(Addr addr, std::span<uint8_t> data) {
    Addr offset;
    if (Device* d = find(addr, &offset)) {
      d->read(offset, data);
      return true;
    }
    std::memset(data.data(), 0xFF, data.size());
    return false;
  }
  bool write(Addr addr, std::span<const uint8_t> data) {
    Addr offset;
    if (Device* d = find(addr, &offset)) {
      d->write(offset, data);
      return true;
    }
    return false;
  }

 private:
  static constexpr std::string_view kName = sizeof(Addr) == 2 ? "PioBus" : "MmioBus";
  struct Range {
    Addr base;
    Addr len;
    Device* device;
  };
  std::vector<Range> ranges_;
};

using PioDevice = BusDevice<uint16_t>;
using PioBus = Bus<uint16_t>;
using MmioDevice = BusDevice<uint64_t>;
using MmioBus = Bus<uint64_t>;

}  // namespace trapscope::platform
