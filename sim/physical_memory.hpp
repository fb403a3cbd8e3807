// sim/physical_memory.hpp — the simulator's guest-physical memory: [0, size) backed by host memory;
// accesses outside it are MMIO (reads all ones, writes recorded in Devices::mmio_writes), as
// on the KVM backend. The bytes come from calloc, so the host maps zero pages lazily and a
// machine that touches little memory costs little (tests create thousands of machines).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <span>

namespace trapscope::sim {

class PhysicalMemory {
 public:
  explicit PhysicalMemory(uint64_t bytes)
      : bytes_(static_cast<uint8_t*>(std::calloc(bytes ? bytes : 1, 1))), size_(bytes) {
    if (!bytes_) throw std::bad_alloc();
  }
  uint64_t size() const { return size_; }
  uint8_t* data() { return bytes_.get(); }
  const uint8_t* data() const { return bytes_.get(); }
  std::span<uint8_t> span() { return {bytes_.get(), size_}; }
  std::span<const uint8_t> span() const { return {bytes_.get(), size_}; }
  bool contains(uint64_t gpa, unsigned size) const { return gpa < size_ && size <= size_ - gpa; }

 private:
  struct FreeDeleter {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t[], FreeDeleter> bytes_;
  uint64_t size_;
};

}  // namespace trapscope::sim
