#include "trace/page_walk.hpp"

#include <cstdio>

namespace trapscope::trace {

unsigned walk_depth(uint8_t structure) {
  switch (structure & kWalkStructureMask) {
    case kWalk32Bit: return 2;
    case kWalkPae: return 3;
    case kWalk4Level: return 4;
    default: return 0;
  }
}

std::string_view walk_structure_name(uint8_t structure) {
  switch (structure & kWalkStructureMask) {
    case kWalk32Bit: return "32-bit";
    case kWalkPae: return "PAE";
    case kWalk4Level: return "4-level";
    default: return "paging off";
  }
}

std::string_view guest_level_name(uint8_t structure, unsigned level) {
  static constexpr std::string_view kNames[] = {"?", "PT", "PD", "PDPT", "PML4"};
  if ((structure & kWalkStructureMask) == kWalk32Bit && level > 2) return "?";
  return level <= 4 ? kNames[level] : "?";
}

std::string_view ept_level_name(unsigned level) {
  static constexpr std::string_view kNames[] = {"?", "EPT PT", "EPT PD", "EPT PDPT", "EPT PML4"};
  return level <= 4 ? kNames[level] : "?";
}

namespace {
// Appends `name` (space separated) when `on`.
struct FlagList {
  std::string s;
  void operator()(bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  }
};
}  // namespace

std::string guest_entry_flags(uint64_t entry, bool leaf) {
  FlagList add;
  std::string& s = add.s;
  add(entry & 1, "P");
  if (!(entry & 1)) return s.empty() ? "not present" : s;
  add(entry & 2, "RW");
  add(entry & 4, "US");
  add(entry & 8, "PWT");
  add(entry & 16, "PCD");
  add(entry & 32, "A");
  add(leaf && (entry & 64), "D");
  add(entry & 128, "PS");
  add(leaf && (entry & 256), "G");
  add(entry >> 63, "XD");
  return s;
}

std::string ept_entry_flags(uint64_t entry, bool leaf) {
  FlagList add;
  std::string& s = add.s;
  add(entry & 1, "R");
  add(entry & 2, "W");
  add(entry & 4, "X");
  if (!(entry & 7)) return "not present";
  if (leaf) {
    static constexpr const char* kTypes[] = {"UC", "WC", "2?", "3?", "WT", "WP", "WB", "7?"};
    s += std::string(" memtype=") + kTypes[(entry >> 3) & 7];
  }
  add(entry & 0x100, "A");
  add(leaf && (entry & 0x200), "D");
  return s;
}

std::vector<WalkRef> decode_walk(const PageWalkEvent& w) {
  std::vector<WalkRef> out;
  const uint8_t st = w.header.flags & kWalkStructureMask;
  const unsigned depth = walk_depth(st);
  const unsigned n = w.levels < 4 ? w.levels : 4;
  for (unsigned i = 0; i < n; ++i) {
    WalkRef r;
    r.level = depth > i ? depth - i : 0;
    r.level_name = guest_level_name(st, r.level);
    r.entry_address = w.level[i].entry_address;
    r.entry = w.level[i].entry;
    const unsigned esize = st == kWalk32Bit ? 4 : 8;
    if (st == kWalk32Bit) {
      r.index_lo = r.level == 2 ? 22 : 12;
      r.index_hi = r.index_lo + 9;
      r.table = r.entry_address & ~0xFFFull;
    } else if (st == kWalkPae && r.level == 3) {
      r.index_lo = 30;
      r.index_hi = 31;
      r.table = r.entry_address & ~0x1Full;
    } else {
      r.index_lo = 12 + 9 * (r.level - 1);
      r.index_hi = r.index_lo + 8;
      r.table = r.entry_address & ~0xFFFull;
    }
    r.index = static_cast<unsigned>((r.entry_address - r.table) / esize);
    const bool ps = (r.entry & 0x80) && (r.level == 2 || (r.level == 3 && st == kWalk4Level));
    r.leaf = r.level == 1 || ps;
    r.flags = (st == kWalkPae && r.level == 3) ? ((r.entry & 1) ? "P" : "not present")
                                               : guest_entry_flags(r.entry, r.leaf);
    out.push_back(std::move(r));
  }
  if (w.faulted && !out.empty()) out.back().fault = true;
  return out;
}

std::vector<NestedRow> nested_grid(const NestedWalkEvent& w) {
  std::vector<NestedRow> rows;
  const unsigned n = w.nrefs < kMaxNestedRefs ? w.nrefs : kMaxNestedRefs;
  for (unsigned i = 0; i < n; ++i) {
    const NestedWalkRef& r = w.ref[i];
    const unsigned step = r.step;
    while (rows.size() <= step) rows.emplace_back();
    NestedRow& row = rows[step];
    NestedCell& c = r.kind == NestedRefKind::kEpt
                        ? row.ept[r.level >= 1 && r.level <= 4 ? 4 - r.level : 0]
                        : row.guest;
    c = {true, r.hpa, r.entry, r.index, r.fault != 0};
    row.gpa = r.gpa;
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    NestedRow& row = rows[i];
    row.final_row = i == w.guest_levels && !row.guest.present;
    const unsigned depth = walk_depth(w.header.flags);
    char buf[64];
    std::snprintf(buf, sizeof buf, " (GPA 0x%llx)", static_cast<unsigned long long>(row.gpa));
    row.label = row.final_row ? "final" + std::string(buf)
                              : std::string(guest_level_name(w.header.flags,
                                                             depth > i ? depth - unsigned(i) : 0)) +
                                    buf;
  }
  return rows;
}

std::string ept_qualification_text(uint64_t q) {
  return x86::exit_qualification_text(static_cast<uint32_t>(x86::VmxExit::kEptViolation), q);
}

}  // namespace trapscope::trace
