// vmm/guest_paging.hpp — reading the guest's own page tables from guest memory (the VMM's view
// of a guest page walk). Sources: Intel SDM Vol. 3A chapter 4: 4.3 (32-bit paging), 4.4 (PAE),
// 4.5 (4-level paging). Accessed/dirty bits are not set and no fault is raised: this only reads.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "trace/event.hpp"

namespace trapscope::vmm {

struct PagingRegs {
  uint64_t cr0 = 0, cr3 = 0, cr4 = 0, efer = 0;
};

// Guest-linear → guest-physical through the guest's tables; nullopt if a table entry is not
// present or a table lies outside guest memory. With CR0.PG = 0 the address is returned as is.
std::optional<uint64_t> guest_linear_to_physical(std::span<const uint8_t> memory,
                                                 const PagingRegs& regs, uint64_t linear);

// The processor mode from CR0, EFER and the code segment's L and D/B bits (SDM Vol. 3A 2.2).
trace::CpuMode cpu_mode(uint64_t cr0, uint64_t efer, bool cs_l, bool cs_db, uint64_t rflags);

}  // namespace trapscope::vmm
