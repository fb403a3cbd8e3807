// vmm/guest_memory.hpp — guest-physical memory: one anonymous host mapping that backs guest-physical
// [0, size). Used as KVM memory slot 0 (KVM_SET_USER_MEMORY_REGION) and, later, by the simulator.
//
// Guard pages: the mapping is reserved with kGuardBytes more on each side, PROT_NONE (address
// space only: nothing is committed for it), so that a VMM bug that reads or writes just before
// or past guest RAM from a guest-controlled address (as a hypercall once wrote at RAM
// base + RAM size) faults at once instead of silently changing the VMM's own memory — as
// Firecracker does for its guest memory regions. The guards are never given to KVM.
#pragma once

#include <cstdint>
#include <span>

namespace trapscope::vmm {

class GuestMemory {
 public:
  // A PROT_NONE reservation before and after guest RAM (bytes).
  static constexpr uint64_t kGuardBytes = 2ull << 20;

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
