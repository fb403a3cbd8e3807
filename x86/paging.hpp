// x86/paging.hpp — the formats of x86 paging-structure entries, as the SDM defines them.
//
// Sources: Intel SDM Vol. 3A 4.3 (32-bit paging, Tables 4-4..4-6), 4.4 (PAE paging, Table 4-8..
// 4-11), 4.5 (4-level paging, Tables 4-14..4-20): bit 0 P, 1 R/W, 2 U/S, 5 A, 6 D, 7 PS (in a
// PDE/PDPTE: the entry maps a large page; in a PTE: PAT), 8 G, 63 XD (with EFER.NXE); bits 51:12
// the physical address of the next table or page (M = 52, the architectural maximum).
#pragma once

#include <cstdint>

namespace trapscope::x86 {

inline constexpr uint64_t kPteP = 1ull << 0, kPteRw = 1ull << 1, kPteUs = 1ull << 2,
                          kPteA = 1ull << 5, kPteD = 1ull << 6, kPtePs = 1ull << 7,
                          kPteG = 1ull << 8, kPteXd = 1ull << 63;
inline constexpr uint64_t kPteAddr = 0x000F'FFFF'FFFF'F000ull;  // bits 51:12
inline constexpr uint64_t kPageSize = 4096;

}  // namespace trapscope::x86
