#include "platform/guest_paging.hpp"

#include <cstring>

#include "x86/mode.hpp"
#include "x86/paging.hpp"

namespace trapscope::platform {
namespace {

using x86::kCr0Pg, x86::kCr4Pse, x86::kCr4Pae, x86::kEferLma;

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
    if (!v || !(*v & x86::kPteP)) {
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
    if ((e & x86::kPtePs) && (r.cr4 & kCr4Pse)) {
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
    table = r.cr3 & x86::kPteAddr;
    level = 4;
  } else {
    w.header.flags = trace::kWalkPae;
    if (!step((r.cr3 & 0xFFFFFFE0) + 8 * ((linear >> 30) & 3), 8, &e)) return w;
    table = e & x86::kPteAddr;
    level = 2;
  }
  for (; level >= 1; --level) {
    const unsigned shift = 12 + 9 * (level - 1);
    if (!step(table + 8 * ((linear >> shift) & 0x1FF), 8, &e)) return w;
    if (level == 1 || ((level == 2 || level == 3) && (e & x86::kPtePs))) {
      const uint64_t page_mask = (1ull << shift) - 1;
      w.physical = (e & x86::kPteAddr & ~page_mask) | (linear & page_mask);
      return w;
    }
    table = e & x86::kPteAddr;
  }
  return w;
}

std::optional<uint64_t> guest_linear_to_physical(std::span<const uint8_t> memory,
                                                 const PagingRegs& r, uint64_t linear) {
  const trace::PageWalkEvent w = guest_walk(memory, r, linear);
  if (w.faulted) return std::nullopt;
  return w.physical;
}

}  // namespace trapscope::platform
