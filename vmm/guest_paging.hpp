// vmm/guest_paging.hpp — reading the guest's own page tables from guest memory (the VMM's view
// of a guest page walk). Sources: Intel SDM Vol. 3A chapter 4: 4.3 (32-bit paging), 4.4 (PAE),
// 4.5 (4-level paging). Accessed/dirty bits are not set and no fault is raised: this only reads.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "trace/event.hpp"

namespace trapscope::vmm {

struct PagingRegs {
  uint64_t cr0 = 0, cr3 = 0, cr4 = 0, efer = 0;
};

// The guest's walk of `linear`, entry by entry (a trace::PageWalkEvent: header.flags names the
// paging structure, level[] the entries read root first, faulted = 1 when an entry was not
// present or a table lies outside guest memory; access rights are not checked, no A/D bits are
// set). trace/page_walk.hpp decodes it.
trace::PageWalkEvent guest_walk(std::span<const uint8_t> memory, const PagingRegs& regs,
                                uint64_t linear);

// Guest-linear → guest-physical through the guest's tables; nullopt if a table entry is not
// present or a table lies outside guest memory. With CR0.PG = 0 the address is returned as is.
std::optional<uint64_t> guest_linear_to_physical(std::span<const uint8_t> memory,
                                                 const PagingRegs& regs, uint64_t linear);

// Where a page of this process's memory lives in host-physical memory, from /proc/self/pagemap
// (Linux Documentation/admin-guide/mm/pagemap.rst: bit 63 present, 62 swapped, 54:0 the page
// frame number). Since Linux 4.2 the PFN reads as 0 without CAP_SYS_ADMIN: pfn_visible is false
// then. For the KVM backend, guest memory is one memory slot (KVM_SET_USER_MEMORY_REGION, slot
// 0 at GPA 0), so GPA g lives at host-virtual slot base + g. nullopt (and *why) if pagemap
// cannot be read.
struct HostFrame {
  uint64_t host_virtual = 0;
  bool present = false;      // the host page is resident
  bool swapped = false;
  bool pfn_visible = false;  // the PFN was shown (root, page present)
  uint64_t pfn = 0;          // host-physical frame number (HPA = pfn * 4096 + offset)
};
std::optional<HostFrame> host_frame(const void* host_address, std::string* why);

// The processor mode from CR0, EFER and the code segment's L and D/B bits (SDM Vol. 3A 2.2).
trace::CpuMode cpu_mode(uint64_t cr0, uint64_t efer, bool cs_l, bool cs_db, uint64_t rflags);

}  // namespace trapscope::vmm
