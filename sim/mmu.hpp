// sim/mmu.hpp — the simulator's paging unit: 32-bit, PAE and 4-level paging with accessed and
// dirty bits, U/S, R/W (with CR0.WP) and NX checks, and a TLB.
//
// Sources: Intel SDM Vol. 3A 4.3 (32-bit paging), 4.4 (PAE), 4.5 (4-level paging), 4.6
// (access rights), 4.7 (page-fault exceptions: error code bits P, W/R, U/S, RSVD, I/D), 4.10
// (TLBs: flushed by MOV to CR3 and by INVLPG for one page).
//
// Every translation that misses the TLB walks the guest's tables and emits a
// trace::PageWalkEvent (when a sink is attached) with each entry it read.
#pragma once

#include <cstdint>

namespace trapscope::sim {

class Cpu;

enum class Access : uint8_t { kRead, kWrite, kExecute };

// A direct-mapped TLB of 4 KiB translations (large pages are cached per 4 KiB page).
class Tlb {
 public:
  static constexpr unsigned kEntries = 256;
  struct Entry {
    uint64_t vpn = ~0ull;  // linear page number; ~0 = invalid
    uint64_t pfn = 0;      // physical page number
    uint8_t allow = 0;     // kAllow* bits for which the cached translation may be used
  };
  enum : uint8_t {
    kAllowUserRead = 1, kAllowUserWrite = 2, kAllowUserExec = 4,
    kAllowSupRead = 8, kAllowSupWrite = 16, kAllowSupExec = 32,
  };
  Entry& slot(uint64_t vpn) { return entries_[vpn % kEntries]; }
  static uint8_t need_bit(Access access, bool user) {
    switch (access) {
      case Access::kRead: return user ? kAllowUserRead : kAllowSupRead;
      case Access::kWrite: return user ? kAllowUserWrite : kAllowSupWrite;
      case Access::kExecute: return user ? kAllowUserExec : kAllowSupExec;
    }
    return 0;
  }
  void flush() {
    for (Entry& e : entries_) e.vpn = ~0ull;
  }
  void flush_page(uint64_t vpn) {
    Entry& e = slot(vpn);
    if (e.vpn == vpn) e.vpn = ~0ull;
  }
  uint64_t hits = 0, misses = 0;

 private:
  Entry entries_[kEntries];
};

// Linear → guest-physical for an access at CPL 3 (`user`) or supervisor. Raises #PF (with CR2
// set) through sim::raise on a fault.
uint64_t mmu_translate(Cpu& cpu, uint64_t linear, Access access, bool user);

}  // namespace trapscope::sim
