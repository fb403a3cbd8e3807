// sim/mmu.hpp — the simulator's paging unit: 32-bit, PAE and 4-level paging with accessed and
// dirty bits, U/S, R/W (with CR0.WP) and NX checks, a configurable TLB, and the three ways the
// simulator's VMM can virtualize memory (native, shadow page tables, nested paging/EPT).
//
// Sources: Intel SDM Vol. 3A 4.3 (32-bit paging), 4.4 (PAE), 4.5 (4-level paging), 4.6
// (access rights), 4.7 (page-fault exceptions: error code bits P, W/R, U/S, RSVD, I/D), 4.10
// (TLBs: MOV to CR3 invalidates all entries except global ones (4.10.4.1); a MOV to CR4 that
// changes PGE, PAE or PSE, and a MOV to CR0 that changes PG or WP, invalidate all; INVLPG one
// page, global or not). Vol. 3C 29.3 (EPT), 27.2.1 table 27-7 (EPT violation exit
// qualification), Vol. 3D Appendix C (basic exit reasons). Shadow paging: Adams & Agesen, ASPLOS
// 2006; Bugnion et al., TOCS 2012. Nested walks: Bhargava et al., ASPLOS 2008.
//
// Every translation that misses the TLB walks the guest's tables and emits a
// trace::PageWalkEvent (when a sink is attached) with each entry it read; the other modes add
// trace::ShadowPagingEvent, trace::NestedWalkEvent and trace::EptViolationEvent.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sim/vmm_paging.hpp"

namespace trapscope::sim {

class Cpu;

enum class Access : uint8_t { kRead, kWrite, kExecute };

// How the simulator's VMM virtualizes guest memory (VmmPaging) and the TLB's sizes:
// sim/vmm_paging.hpp.

// A direct-mapped TLB of 4 KiB translations (large pages are cached per 4 KiB page). The
// number of entries is a power of two, 1 … kMaxEntries (default kDefaultEntries).
class Tlb {
 public:
  static constexpr unsigned kMaxEntries = kTlbMaxEntries;
  static constexpr unsigned kDefaultEntries = kTlbDefaultEntries;
  struct Entry {
    uint64_t vpn = ~0ull;  // linear page number; ~0 = invalid
    uint64_t pfn = 0;      // physical page number
    uint8_t allow = 0;     // kAllow* bits for which the cached translation may be used
    uint8_t global = 0;    // G = 1 in the leaf with CR4.PGE = 1: survives MOV to CR3
    uint8_t shift = 12;    // log2 of the size of the page it came from (12, 21, 22 or 30)
    // The host-pointer cache (QEMU's softmmu TLB idea): the host address of the 4 KiB page
    // pfn when it lies wholly in guest RAM, else nullptr (MMIO). Set when the entry is filled
    // (the walk that filled it counted its miss), so it lives and dies with the modelled
    // entry: every invalidation of the TLB (MOV to CR3/CR0/CR4, INVLPG, flushes, shadow and
    // EPT changes, eviction by another page) invalidates it too, and a data access served
    // through it (Cpu::host_data) is a TLB hit, counted as one.
    uint8_t* host = nullptr;
  };
  enum : uint8_t {
    kAllowUserRead = 1, kAllowUserWrite = 2, kAllowUserExec = 4,
    kAllowSupRead = 8, kAllowSupWrite = 16, kAllowSupExec = 32,
    kAllowAll = 63,
  };
  Entry& slot(uint64_t vpn) { return entries_[vpn & mask_]; }
  const Entry& slot(uint64_t vpn) const { return entries_[vpn & mask_]; }
  static uint8_t need_bit(Access access, bool user) {
    switch (access) {
      case Access::kRead: return user ? kAllowUserRead : kAllowSupRead;
      case Access::kWrite: return user ? kAllowUserWrite : kAllowSupWrite;
      case Access::kExecute: return user ? kAllowUserExec : kAllowSupExec;
    }
    return 0;
  }
  // False (nothing changed) unless `entries` is a power of two in [1, kMaxEntries].
  bool set_entries(unsigned entries);
  unsigned entries() const { return static_cast<unsigned>(mask_ + 1); }
  void flush() {  // every entry, global or not
    for (uint64_t i = 0; i <= mask_; ++i) entries_[i].vpn = ~0ull;
    has_large_ = false;
    ++flushes;
  }
  // INVLPG (SDM Vol. 2 INVLPG, Vol. 3A 4.10.4.1): every entry for the page that contains the
  // address, global or not; for a large page, all the 4 KiB pieces cached from it.
  void invalidate_page(uint64_t vpn) {
    flush_page(vpn);
    if (!has_large_) return;
    for (uint64_t i = 0; i <= mask_; ++i) {
      Entry& e = entries_[i];
      if (e.vpn != ~0ull && e.shift > 12 && (e.vpn >> (e.shift - 12)) == (vpn >> (e.shift - 12))) {
        e.vpn = ~0ull;
      }
    }
  }
  void note_large() { has_large_ = true; }
  void flush_non_global() {  // MOV to CR3 (SDM 4.10.4.1)
    for (uint64_t i = 0; i <= mask_; ++i) {
      if (!entries_[i].global) entries_[i].vpn = ~0ull;
    }
    ++flushes;
  }
  void flush_page(uint64_t vpn) {
    Entry& e = slot(vpn);
    if (e.vpn == vpn) e.vpn = ~0ull;
  }
  uint64_t hits = 0, misses = 0, flushes = 0;

 private:
  uint64_t mask_ = kDefaultEntries - 1;
  bool has_large_ = false;  // some entry may come from a large page (invalidate_page scans)
  Entry entries_[kMaxEntries];
};

// PagingStats (the counters): sim/vmm_paging.hpp.

// The VMM's memory-virtualization state (shadow tables, EPT): Cpu::memvirt, below.
struct ShadowEntry {
  uint64_t pfn = 0;        // guest-physical (= host-physical in this model) page
  uint8_t allow = 0;       // Tlb::kAllow* the shadow grants (guest_allow minus write on
                           // write-protected page-table pages)
  uint8_t guest_allow = 0; // Tlb::kAllow* the guest's tables grant
  uint8_t global = 0;
  uint8_t shift = 12;       // log2 of the guest page's size
  uint8_t ntables = 0;
  uint64_t tables[4] = {};  // guest-physical pages of the guest tables it was built from
  uint64_t guest_leaf = 0;
};
struct MemoryVirtualization {
  VmmPaging mode = VmmPaging::kNative;
  // Shadow: one shadow table per guest CR3 (the VMM keeps the shadows of address spaces the
  // guest switches between), GVA page → entry; and how many shadow entries were built from
  // each guest page-table page (those pages are write-protected).
  std::unordered_map<uint64_t, std::unordered_map<uint64_t, ShadowEntry>> shadows;
  std::unordered_map<uint64_t, uint32_t> pt_pages;
  // EPT: 4-level tables in host memory outside the guest's (host-physical kEptBase + offset);
  // guest RAM sits at host-physical kGuestRamHpa + GPA.
  static constexpr uint64_t kGuestRamHpa = 0x1'0000'0000ull;
  static constexpr uint64_t kEptBase = 0x2'0000'0000ull;
  std::vector<uint64_t> ept;  // 512-entry tables back to back; table 0 = the EPT PML4
  PagingStats stats;
};

// Linear → guest-physical for an access at CPL 3 (`user`) or supervisor. Raises #PF (with CR2
// set) through sim::raise on a fault.
uint64_t mmu_translate(Cpu& cpu, uint64_t linear, Access access, bool user);

// VMM hooks called by the instructions that the shadow-paging VMM traps.
void mmu_cr3_written(Cpu& cpu);                  // after MOV to CR3
void mmu_invlpg(Cpu& cpu, uint64_t linear);      // INVLPG
void mmu_flush_all(Cpu& cpu);                    // paging-mode change, state restored
// The TLB flush a hypercall asks for (platform/hypercall.hpp mmu_update): every TLB entry, global
// ones too, as toggling CR4.PGE does (SDM Vol. 3A 4.10.4.1). Unlike mmu_flush_all it keeps the
// shadow tables: a TLB flush changes no guest table, and the VMM keeps each shadow entry equal to
// the guest entries it was built from (write protection, mmu_vmm_table_write), so the shadow has
// nothing stale to discard. (Dropping them all made every page the guest touched next a hidden
// page fault.)
void mmu_flush_tlb(Cpu& cpu);
// The VMM wrote guest memory at `gpa` for the guest (the PTE store of a validated mmu_update).
// Under shadow paging, if that page is a shadowed guest page table, the VMM resynchronizes as
// after a trapped write to it, without the trap: the shadow entries built from that page, and
// their TLB entries, are dropped (the next access to each page refills it, a hidden fault that
// also sets the new entry's A/D bits as the hardware would), the others stay: what INVLPG does
// for one page (SDM Vol. 2 INVLPG), not a flush of every shadow. A shadowing VMM propagates each
// validated page-table update to its shadow (Barham et al., SOSP 2003, 3.3.3, on VMware ESX's
// shadow tables); Xen, shadowing a PV guest, writes the entry and revalidates the shadows of that
// one entry (xen/arch/x86/mm/shadow/pv.c, sh_write_guest_entry → sh_validate_guest_entry).
void mmu_vmm_table_write(Cpu& cpu, uint64_t gpa);
void mmu_page_fault_delivered(Cpu& cpu, uint32_t error_code);

}  // namespace trapscope::sim
