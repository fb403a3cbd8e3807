// sim/memory.hpp — the simulator's guest-physical memory: [0, size) backed by host memory;
// accesses outside it are MMIO (reads all ones, writes recorded in Devices::mmio_writes), as
// on the KVM backend.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace trapscope::sim {

class PhysicalMemory {
 public:
  explicit PhysicalMemory(uint64_t bytes) : bytes_(bytes, 0) {}
  uint64_t size() const { return bytes_.size(); }
  uint8_t* data() { return bytes_.data(); }
  const uint8_t* data() const { return bytes_.data(); }
  std::span<uint8_t> span() { return bytes_; }
  std::span<const uint8_t> span() const { return bytes_; }
  bool contains(uint64_t gpa, unsigned size) const {
    return gpa < bytes_.size() && size <= bytes_.size() - gpa;
  }

 private:
  std::vector<uint8_t> bytes_;
};

}  // namespace trapscope::sim
