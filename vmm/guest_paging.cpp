#include "vmm/guest_paging.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace trapscope::vmm {
namespace {

constexpr uint64_t kCr0Pe = 1ull << 0;
constexpr uint64_t kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pse = 1ull << 4;
constexpr uint64_t kCr4Pae = 1ull << 5;
constexpr uint64_t kEferLma = 1ull << 10;
constexpr uint64_t kPresent = 1;
constexpr uint64_t kPageSize = 1ull << 7;  // PS bit in PDE/PDPTE
constexpr uint64_t kAddrMask = 0x000F'FFFF'FFFF'F000ull;

std::optional<uint64_t> load(std::span<const uint8_t> memory, uint64_t gpa, unsigned bytes) {
  if (gpa > memory.size() || bytes > memory.size() - gpa) return std::nullopt;
  uint64_t v = 0;
  std::memcpy(&v, memory.data() + gpa, bytes);
  return v;
}

}  // namespace

trace::PageWalkEvent guest_walk(std::span<const uint8_t> memory, const PagingRegs& r,
                                uint64_t linear) {
  trace::PageWalkEvent w{};
  w.header = trace::make_header<trace::PageWalkEvent>(trace::EventType::kPageWalk);
  w.linear = linear;
  if (!(r.cr0 & kCr0Pg)) {
    w.physical = linear;
    return w;
  }
  // Reads one entry, records it; false (walk faulted) if not present or outside memory.
  auto step = [&](uint64_t gpa, unsigned bytes, uint64_t* out) {
    auto v = load(memory, gpa, bytes);
    *out = v.value_or(0);
    if (w.levels < 4) w.level[w.levels++] = {gpa, *out};
    if (!v || !(*v & kPresent)) {
      w.faulted = 1;
      return false;
    }
    return true;
  };
  uint64_t e = 0;
  if (!(r.cr4 & kCr4Pae)) {
    // 32-bit paging: 10 + 10 + 12 bits, 4 MiB pages with CR4.PSE.
    w.header.flags = trace::kWalk32Bit;
    const uint32_t la = static_cast<uint32_t>(linear);
    if (!step((r.cr3 & 0xFFFFF000) + 4 * (la >> 22), 4, &e)) return w;
    if ((e & kPageSize) && (r.cr4 & kCr4Pse)) {
      w.physical = (e & 0xFFC00000) | ((e & 0x1FE000) << 19) | (la & 0x3FFFFF);
      return w;
    }
    if (!step((e & 0xFFFFF000) + 4 * ((la >> 12) & 0x3FF), 4, &e)) return w;
    w.physical = (e & 0xFFFFF000) | (la & 0xFFF);
    return w;
  }
  // PAE (3 levels, from a 32-byte PDPT) or 4-level paging.
  uint64_t table;
  int level;
  if (r.efer & kEferLma) {
    w.header.flags = trace::kWalk4Level;
    table = r.cr3 & kAddrMask;
    level = 4;
  } else {
    w.header.flags = trace::kWalkPae;
    if (!step((r.cr3 & 0xFFFFFFE0) + 8 * ((linear >> 30) & 3), 8, &e)) return w;
    table = e & kAddrMask;
    level = 2;
  }
  for (; level >= 1; --level) {
    const unsigned shift = 12 + 9 * (level - 1);
    if (!step(table + 8 * ((linear >> shift) & 0x1FF), 8, &e)) return w;
    if (level == 1 || ((level == 2 || level == 3) && (e & kPageSize))) {
      const uint64_t page_mask = (1ull << shift) - 1;
      w.physical = (e & kAddrMask & ~page_mask) | (linear & page_mask);
      return w;
    }
    table = e & kAddrMask;
  }
  return w;
}

std::optional<uint64_t> guest_linear_to_physical(std::span<const uint8_t> memory,
                                                 const PagingRegs& r, uint64_t linear) {
  const trace::PageWalkEvent w = guest_walk(memory, r, linear);
  if (w.faulted) return std::nullopt;
  return w.physical;
}

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

trace::CpuMode cpu_mode(uint64_t cr0, uint64_t efer, bool cs_l, bool cs_db, uint64_t rflags) {
  using trace::CpuMode;
  if (!(cr0 & kCr0Pe)) return CpuMode::kReal16;
  if (rflags & (1ull << 17)) return CpuMode::kReal16;  // virtual-8086 mode decodes as 16-bit
  if (efer & kEferLma) {
    if (cs_l) return CpuMode::kLong64;
    return cs_db ? CpuMode::kCompat32 : CpuMode::kCompat16;
  }
  return cs_db ? CpuMode::kProtected32 : CpuMode::kProtected16;
}

}  // namespace trapscope::vmm
