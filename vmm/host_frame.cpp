#include "vmm/host_frame.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace trapscope::vmm {

std::optional<HostFrame> host_frame(const void* host_address, std::string* why) {
  HostFrame f;
  f.host_virtual = reinterpret_cast<uintptr_t>(host_address);
  const int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *why = std::string("cannot open /proc/self/pagemap: ") + std::strerror(errno);
    return std::nullopt;
  }
  uint64_t entry = 0;
  const off_t offset = static_cast<off_t>((f.host_virtual / 4096) * 8);
  const ssize_t n = ::pread(fd, &entry, sizeof entry, offset);
  ::close(fd);
  if (n != sizeof entry) {
    *why = std::string("cannot read /proc/self/pagemap: ") +
           (n < 0 ? std::strerror(errno) : "short read");
    return std::nullopt;
  }
  f.present = (entry >> 63) & 1;
  f.swapped = (entry >> 62) & 1;
  f.pfn = entry & ((1ull << 55) - 1);
  f.pfn_visible = f.present && !f.swapped && f.pfn != 0;
  return f;
}

}  // namespace trapscope::vmm
