// trace/page_walk.hpp — decodes the references of a recorded page walk (trace::PageWalkEvent,
// trace::NestedWalkEvent): each reference's level name, the bits of the linear address that
// index it, the table it is in, and its flags. Shared by the printers, the visualizer and the
// tests so that every view names levels and flags the same way.
//
// Sources: Intel SDM Vol. 3A 4.3 (32-bit paging: PD, PT; 4-byte entries, index bits 31:22,
// 21:12), 4.4 (PAE: PDPT with 4 entries indexed by bits 31:30, then PD, PT with 8-byte entries),
// 4.5 (4-level paging: PML4 47:39, PDPT 38:30, PD 29:21, PT 20:12), tables 4-4..4-20 (entry
// bits); Vol. 3C 29.3.2 (EPT entries: R W X, memory type 5:3, A 8, D 9; same index bits as
// 4-level paging).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "trace/event.hpp"

namespace trapscope::trace {

struct WalkRef {
  std::string_view level_name;  // "PML4", "PDPT", "PD", "PT"; "EPT PML4", …
  unsigned level = 0;           // 4 … 1 (4-level), 3 … 1 (PAE), 2 … 1 (32-bit)
  unsigned index = 0;           // the entry's index in its table
  unsigned index_hi = 0;        // the linear-address bits that give it: [index_hi:index_lo]
  unsigned index_lo = 0;
  uint64_t table = 0;           // (guest-)physical address of the table
  uint64_t entry_address = 0;
  uint64_t entry = 0;
  bool leaf = false;            // maps a page (PT entry, or PS = 1)
  bool fault = false;           // the walk ended here with a fault
  std::string flags;            // "P RW US A D PS G XD", only the set bits
};

// Number of levels of a guest paging structure (header.flags & kWalkStructureMask): 2, 3, 4.
unsigned walk_depth(uint8_t structure);
// "32-bit", "PAE", "4-level", "paging off".
std::string_view walk_structure_name(uint8_t structure);
// Decoded references of a guest walk, root first.
std::vector<WalkRef> decode_walk(const PageWalkEvent& walk);
// The flags of a guest paging-structure entry (SDM tables 4-4..4-20).
std::string guest_entry_flags(uint64_t entry, bool leaf);
// The flags of an EPT entry: "R W X" + memory type for a leaf (SDM Vol. 3C table 29-6).
std::string ept_entry_flags(uint64_t entry, bool leaf);
// "EPT PML4" … "EPT PT" for EPT levels 4 … 1; "PML4" … "PT" for a guest level of the given
// structure.
std::string_view ept_level_name(unsigned level);
std::string_view guest_level_name(uint8_t structure, unsigned level);
// A 2D walk as a grid in the order the hardware makes its references (Bhargava et al., figure
// of the 2D walk): row r < guest_levels translates the guest table at step r through the EPT
// (ept[0] = EPT PML4 … ept[3] = EPT PT) and then reads the guest entry; the last row translates
// the final guest-physical address. Missing cells (the walk stopped) have present = false.
struct NestedCell {
  bool present = false;
  uint64_t hpa = 0;
  uint64_t entry = 0;
  unsigned index = 0;
  bool fault = false;
};
struct NestedRow {
  std::string label;     // "PML4 (GPA 0x20000)", …, "final GPA 0x100000"
  uint64_t gpa = 0;      // the guest-physical address this row translates
  NestedCell ept[4];     // EPT PML4, PDPT, PD, PT
  NestedCell guest;      // the guest entry (absent in the final row)
  bool final_row = false;
};
std::vector<NestedRow> nested_grid(const NestedWalkEvent& walk);

// The exit qualification of an EPT violation, decoded: "data read, guest-linear valid, access to
// a guest paging-structure entry" (SDM Vol. 3C table 27-7).
std::string ept_qualification_text(uint64_t qualification);

}  // namespace trapscope::trace
