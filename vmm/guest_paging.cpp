#include "vmm/guest_paging.hpp"

#include <cstring>

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

std::optional<uint64_t> guest_linear_to_physical(std::span<const uint8_t> memory,
                                                 const PagingRegs& r, uint64_t linear) {
  if (!(r.cr0 & kCr0Pg)) return linear;
  if (!(r.cr4 & kCr4Pae)) {
    // 32-bit paging: 10 + 10 + 12 bits, 4 MiB pages with CR4.PSE.
    const uint32_t la = static_cast<uint32_t>(linear);
    auto pde = load(memory, (r.cr3 & 0xFFFFF000) + 4 * (la >> 22), 4);
    if (!pde || !(*pde & kPresent)) return std::nullopt;
    if ((*pde & kPageSize) && (r.cr4 & kCr4Pse)) {
      return (*pde & 0xFFC00000) | ((*pde & 0x1FE000) << 19) | (la & 0x3FFFFF);
    }
    auto pte = load(memory, (*pde & 0xFFFFF000) + 4 * ((la >> 12) & 0x3FF), 4);
    if (!pte || !(*pte & kPresent)) return std::nullopt;
    return (*pte & 0xFFFFF000) | (la & 0xFFF);
  }
  // PAE (3 levels, from a 32-byte PDPT) or 4-level paging.
  uint64_t table;
  int level;
  if (r.efer & kEferLma) {
    table = r.cr3 & kAddrMask;
    level = 4;
  } else {
    auto pdpte = load(memory, (r.cr3 & 0xFFFFFFE0) + 8 * ((linear >> 30) & 3), 8);
    if (!pdpte || !(*pdpte & kPresent)) return std::nullopt;
    table = *pdpte & kAddrMask;
    level = 2;
  }
  for (; level >= 1; --level) {
    const unsigned shift = 12 + 9 * (level - 1);
    auto entry = load(memory, table + 8 * ((linear >> shift) & 0x1FF), 8);
    if (!entry || !(*entry & kPresent)) return std::nullopt;
    if (level == 1 || ((level == 2 || level == 3) && (*entry & kPageSize))) {
      const uint64_t page_mask = (1ull << shift) - 1;
      return (*entry & kAddrMask & ~page_mask) | (linear & page_mask);
    }
    table = *entry & kAddrMask;
  }
  return std::nullopt;
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
