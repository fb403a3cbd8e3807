#include "sim/mmu.hpp"

#include <cstring>

#include "sim/cpu.hpp"

namespace trapscope::sim {
namespace {

constexpr uint64_t kP = 1, kRW = 2, kUS = 4, kA = 1 << 5, kD = 1 << 6, kPS = 1 << 7;
constexpr uint64_t kXD = 1ull << 63;
constexpr uint64_t kAddr = 0x000F'FFFF'FFFF'F000ull;

struct Walker {
  Cpu& cpu;
  uint64_t linear;
  Access access;
  bool user;
  trace::PageWalkEvent ev{};

  uint64_t read_entry(uint64_t gpa, unsigned size) {
    uint64_t v = 0;
    if (cpu.memory().contains(gpa, size)) std::memcpy(&v, cpu.memory().data() + gpa, size);
    else v = 0;  // tables outside memory read as not present
    return v;
  }
  void write_entry(uint64_t gpa, unsigned size, uint64_t v) {
    if (cpu.memory().contains(gpa, size)) {
      std::memcpy(cpu.memory().data() + gpa, &v, size);
      cpu.note_write(gpa, size);
    }
  }
  void record(uint64_t gpa, uint64_t entry) {
    if (ev.levels < 4) ev.level[ev.levels] = {gpa, entry};
    ++ev.levels;
  }
  // Non-leaf entries whose accessed bit must be set once the translation succeeds. (The SDM,
  // Vol. 3A 4.8, leaves A-bit updates on a walk that faults implementation-specific; this model
  // sets A and D bits only for successful translations.)
  struct Pending {
    uint64_t gpa;
    unsigned size;
  };
  Pending pending[4] = {};
  unsigned npending = 0;
  void set_accessed_later(uint64_t gpa, unsigned size) {
    if (npending < 4) pending[npending++] = {gpa, size};
  }
  void commit_accessed() {
    for (unsigned i = 0; i < npending; ++i) {
      const uint64_t v = read_entry(pending[i].gpa, pending[i].size);
      if (!(v & kA)) write_entry(pending[i].gpa, pending[i].size, v | kA);
    }
  }
  void emit(uint64_t physical, bool faulted, uint32_t error) {
    if (trace::EventSink* sink = cpu.sink()) {
      ev.header = trace::make_header<trace::PageWalkEvent>(trace::EventType::kPageWalk);
      ev.header.seq = cpu.next_seq();
      ev.header.time_ns = Cpu::event_time();
      ev.header.rip = cpu.fault_rip;
      ev.header.cpl = cpu.cpl();
      ev.header.cpu_mode = cpu.s.mode();
      ev.linear = linear;
      ev.physical = physical;
      ev.access = static_cast<uint8_t>(access);
      ev.user = user;
      ev.faulted = faulted;
      ev.error_code = error;
      sink->on_event(ev.header);
    }
  }
  [[noreturn]] void page_fault(bool present) {
    uint32_t error = present ? 1 : 0;
    if (access == Access::kWrite) error |= 2;
    if (user) error |= 4;
    if (access == Access::kExecute && (cpu.s.efer & kEferNxe)) error |= 16;
    cpu.s.cr2 = linear;
    emit(0, true, error);
    raise(vec::kPF, error);
  }
};

}  // namespace

uint64_t mmu_translate(Cpu& cpu, uint64_t linear, Access access, bool user) {
  CpuState& s = cpu.s;
  if (!(s.cr0 & kCr0Pg)) return linear;
  const uint64_t vpn = linear >> 12;
  Tlb& tlb = cpu.tlb;
  const uint8_t need = Tlb::need_bit(access, user);
  Tlb::Entry& e = tlb.slot(vpn);
  if (e.vpn == vpn && (e.allow & need)) {
    ++tlb.hits;
    return (e.pfn << 12) | (linear & 0xFFF);
  }
  ++tlb.misses;

  Walker w{cpu, linear, access, user};
  const bool nxe = s.efer & kEferNxe;
  bool user_ok = true, write_ok = true, nx = false;
  uint64_t phys = 0;
  uint64_t leaf_gpa = 0, leaf = 0;
  unsigned leaf_size = 8;

  auto accumulate = [&](uint64_t entry) {
    user_ok = user_ok && (entry & kUS);
    write_ok = write_ok && (entry & kRW);
    if (nxe && (entry & kXD)) nx = true;
  };

  if (!(s.cr4 & kCr4Pae)) {
    // 32-bit paging (SDM 4.3): PDE (bits 31:22), PTE (21:12); 4 MiB pages with CR4.PSE.
    const uint32_t la = static_cast<uint32_t>(linear);
    const uint64_t pde_gpa = (s.cr3 & 0xFFFFF000) + 4 * (la >> 22);
    uint64_t pde = w.read_entry(pde_gpa, 4);
    w.record(pde_gpa, pde);
    if (!(pde & kP)) w.page_fault(false);
    accumulate(pde);
    if ((pde & kPS) && (s.cr4 & kCr4Pse)) {
      leaf_gpa = pde_gpa;
      leaf = pde;
      leaf_size = 4;
      phys = (pde & 0xFFC00000) | ((pde & 0x1FE000) << 19) | (la & 0x3FFFFF);
    } else {
      if (!(pde & kA)) w.set_accessed_later(pde_gpa, 4);
      const uint64_t pte_gpa = (pde & 0xFFFFF000) + 4 * ((la >> 12) & 0x3FF);
      uint64_t pte = w.read_entry(pte_gpa, 4);
      w.record(pte_gpa, pte);
      if (!(pte & kP)) w.page_fault(false);
      accumulate(pte);
      leaf_gpa = pte_gpa;
      leaf = pte;
      leaf_size = 4;
      phys = (pte & 0xFFFFF000) | (la & 0xFFF);
    }
  } else {
    uint64_t table;
    int level;
    if (s.efer & kEferLma) {
      table = s.cr3 & kAddr;
      level = 4;
    } else {
      // PAE (SDM 4.4): a 4-entry PDPT at CR3[31:5]; PDPTEs carry no access rights.
      const uint64_t pdpte_gpa = (s.cr3 & 0xFFFFFFE0) + 8 * ((linear >> 30) & 3);
      const uint64_t pdpte = w.read_entry(pdpte_gpa, 8);
      w.record(pdpte_gpa, pdpte);
      if (!(pdpte & kP)) w.page_fault(false);
      table = pdpte & kAddr;
      level = 2;
    }
    for (;; --level) {
      const unsigned shift = 12 + 9 * (level - 1);
      const uint64_t gpa = table + 8 * ((linear >> shift) & 0x1FF);
      const uint64_t entry = w.read_entry(gpa, 8);
      w.record(gpa, entry);
      if (!(entry & kP)) w.page_fault(false);
      accumulate(entry);
      const bool leaf_here = level == 1 || ((level == 2 || level == 3) && (entry & kPS));
      if (leaf_here) {
        leaf_gpa = gpa;
        leaf = entry;
        const uint64_t page_mask = (1ull << shift) - 1;
        phys = (entry & kAddr & ~page_mask) | (linear & page_mask);
        break;
      }
      if (!(entry & kA)) w.set_accessed_later(gpa, 8);
      table = entry & kAddr;
    }
  }

  // Access rights (SDM 4.6).
  const bool wp = s.cr0 & kCr0Wp;
  const bool may_write_sup = write_ok || !wp;
  if (user && !user_ok) w.page_fault(true);
  if (access == Access::kWrite && (user ? !write_ok : !may_write_sup)) w.page_fault(true);
  if (access == Access::kExecute && nx) w.page_fault(true);

  // Accessed bits of the tables, accessed and dirty bits of the leaf.
  w.commit_accessed();
  uint64_t new_leaf = leaf | kA;
  if (access == Access::kWrite) new_leaf |= kD;
  if (new_leaf != leaf) w.write_entry(leaf_gpa, leaf_size, new_leaf);
  w.emit(phys, false, 0);

  // Cache what this walk proved (writes only once the page is dirty).
  uint8_t allow = Tlb::kAllowSupRead;
  if (!nx) allow |= Tlb::kAllowSupExec;
  if (user_ok) {
    allow |= Tlb::kAllowUserRead;
    if (!nx) allow |= Tlb::kAllowUserExec;
  }
  if (new_leaf & kD) {
    if (may_write_sup) allow |= Tlb::kAllowSupWrite;
    if (user_ok && write_ok) allow |= Tlb::kAllowUserWrite;
  }
  e.vpn = vpn;
  e.pfn = phys >> 12;
  e.allow = allow;
  return phys;
}

}  // namespace trapscope::sim
