#include "vmm/guest_memory.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace trapscope::vmm {

GuestMemory::GuestMemory(uint64_t bytes) : size_(bytes) {
  if (bytes == 0 || bytes % 4096 != 0 || bytes > UINT64_MAX / 2 - 2 * kGuardBytes) {
    throw std::system_error(EINVAL, std::generic_category(), "guest memory size");
  }
  // Guard, RAM, guard: all reserved PROT_NONE, then RAM made readable and writable.
  const uint64_t total = bytes + 2 * kGuardBytes;
  void* p = ::mmap(nullptr, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    throw std::system_error(errno, std::generic_category(), "mmap of guest memory");
  }
  base_ = static_cast<uint8_t*>(p) + kGuardBytes;
  if (::mprotect(base_, bytes, PROT_READ | PROT_WRITE) != 0) {
    const int err = errno;
    ::munmap(p, total);
    throw std::system_error(err, std::generic_category(), "mprotect of guest memory");
  }
}

GuestMemory::~GuestMemory() { ::munmap(base_ - kGuardBytes, size_ + 2 * kGuardBytes); }

bool GuestMemory::read(uint64_t gpa, std::span<uint8_t> out) const {
  if (gpa > size_ || out.size() > size_ - gpa) return false;
  std::memcpy(out.data(), base_ + gpa, out.size());
  return true;
}

}  // namespace trapscope::vmm
