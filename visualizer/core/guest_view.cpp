#include "visualizer/core/guest_view.hpp"

#include <algorithm>
#include <optional>

#include "platform/guest_paging.hpp"

namespace trapscope::viz {
namespace {
constexpr uint64_t kPage = 4096;
}  // namespace

CodeWindow code_window(std::span<const uint8_t> mem, const x86::CpuState& r) {
  CodeWindow w;
  w.mode = r.mode();
  w.rip = r.rip;
  w.cs_base = r.code64() ? 0 : r.seg[x86::kCs].base;
  constexpr uint64_t kBefore = 64, kLength = 256;
  w.start = r.rip >= kBefore ? r.rip - kBefore : 0;
  w.bytes.assign(kLength, 0);
  w.readable.assign(kLength, 0);
  const platform::PagingRegs paging{r.cr0, r.cr3, r.cr4, r.efer};
  uint64_t cached_page = UINT64_MAX;
  std::optional<uint64_t> cached_phys;
  for (uint64_t i = 0; i < kLength; ++i) {
    uint64_t linear = w.cs_base + w.start + i;
    if (!r.long_mode_active()) linear &= 0xFFFFFFFFull;
    const uint64_t page = linear & ~(kPage - 1);
    if (page != cached_page) {
      cached_page = page;
      cached_phys = platform::guest_linear_to_physical(mem, paging, page);
    }
    if (!cached_phys) continue;
    const uint64_t phys = *cached_phys + (linear & (kPage - 1));
    if (phys >= mem.size()) continue;
    w.bytes[i] = mem[phys];
    w.readable[i] = 1;
  }
  w.valid = true;
  return w;
}

MemoryWindow memory_window(std::span<const uint8_t> mem, uint64_t address, uint64_t length) {
  MemoryWindow w;
  w.address = std::min<uint64_t>(address, mem.size());
  const uint64_t n = std::min<uint64_t>(length, mem.size() - w.address);
  w.bytes.assign(mem.begin() + static_cast<ptrdiff_t>(w.address),
                 mem.begin() + static_cast<ptrdiff_t>(w.address + n));
  return w;
}

}  // namespace trapscope::viz
