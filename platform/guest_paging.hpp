// platform/guest_paging.hpp — reading the guest's own page tables from guest memory (the VMM's view
// of a guest page walk, on either engine). Entry formats: x86/paging.hpp. Sources: Intel SDM Vol. 3A chapter 4: 4.3 (32-bit paging), 4.4 (PAE),
// 4.5 (4-level paging). Accessed/dirty bits are not set and no fault is raised: this only reads.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "trace/event.hpp"

namespace trapscope::platform {

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

}  // namespace trapscope::platform
