// vmm/memory.hpp — guest-physical memory: one anonymous host mapping that backs guest-physical
// [0, size). Used as KVM memory slot 0 (KVM_SET_USER_MEMORY_REGION) and, later, by the simulator.
#pragma once

#include <cstdint>
#include <span>

namespace trapscope::vmm {

class GuestMemory {
 public:
  // bytes: a multiple of 4096, > 0. Throws std::system_error if the host cannot map it.
  explicit GuestMemory(uint64_t bytes);
  ~GuestMemory();
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;

  uint64_t size() const { return size_; }
  uint8_t* host_address() const { return base_; }  // HVA of GPA 0
  std::span<uint8_t> bytes() { return {base_, size_}; }
  std::span<const uint8_t> bytes() const { return {base_, size_}; }
  // True and copies if [gpa, gpa + out.size()) lies inside guest memory.
  bool read(uint64_t gpa, std::span<uint8_t> out) const;

 private:
  uint8_t* base_;
  uint64_t size_;
};

}  // namespace trapscope::vmm
