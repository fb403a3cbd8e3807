#include "vmm/memory.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace trapscope::vmm {

GuestMemory::GuestMemory(uint64_t bytes) : size_(bytes) {
  if (bytes == 0 || bytes % 4096 != 0) {
    throw std::system_error(EINVAL, std::generic_category(), "guest memory size");
  }
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    throw std::system_error(errno, std::generic_category(), "mmap of guest memory");
  }
  base_ = static_cast<uint8_t*>(p);
}

GuestMemory::~GuestMemory() { ::munmap(base_, size_); }

bool GuestMemory::read(uint64_t gpa, std::span<uint8_t> out) const {
  if (gpa > size_ || out.size() > size_ - gpa) return false;
  std::memcpy(out.data(), base_ + gpa, out.size());
  return true;
}

}  // namespace trapscope::vmm
