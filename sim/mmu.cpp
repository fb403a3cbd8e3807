#include "sim/mmu.hpp"

#include <algorithm>
#include <cstring>

#include "sim/cpu.hpp"
#include "trace/page_walk.hpp"

namespace trapscope::sim {
namespace {

constexpr uint64_t kP = 1, kRW = 2, kUS = 4, kA = 1 << 5, kD = 1 << 6, kPS = 1 << 7, kG = 1 << 8;
constexpr uint64_t kXD = 1ull << 63;
constexpr uint64_t kAddr = 0x000F'FFFF'FFFF'F000ull;
constexpr uint8_t kWriteBits = Tlb::kAllowSupWrite | Tlb::kAllowUserWrite;

// Intel basic exit reasons (SDM Vol. 3D Appendix C).
constexpr uint32_t kExitException = 0, kExitInvlpg = 14, kExitCrAccess = 28, kExitIo = 30,
                   kExitEptViolation = 48;

template <typename T>
T make_event(Cpu& cpu, trace::EventType type) {
  T ev{};
  ev.header = trace::make_header<T>(type);
  ev.header.seq = cpu.next_seq();
  ev.header.time_ns = Cpu::event_time();
  ev.header.rip = cpu.fault_rip;
  ev.header.cpl = cpu.cpl();
  ev.header.cpu_mode = cpu.s.mode();
  return ev;
}

uint8_t structure_of(const CpuState& s) {
  if (!(s.cr0 & kCr0Pg)) return 0;
  if (!(s.cr4 & kCr4Pae)) return trace::kWalk32Bit;
  return (s.efer & kEferLma) ? trace::kWalk4Level : trace::kWalkPae;
}

// An EPT violation met during a walk: the walk is abandoned, the VMM resolves the violation
// and the access is retried from the start (as the processor re-executes the instruction).
struct EptExit {
  uint64_t gpa;
  unsigned level;
  bool final_access;  // the access itself (not a guest paging-structure reference)
};

// Records one two-dimensional walk (EPT mode).
struct Nested {
  Nested(Cpu& c, uint64_t la, Access a) : cpu(c), linear(la), access(a) {}
  Cpu& cpu;
  uint64_t linear;
  Access access;
  trace::NestedWalkEvent ev{};

  void add(const trace::NestedWalkRef& r) {
    if (ev.nrefs < trace::kMaxNestedRefs) ev.ref[ev.nrefs++] = r;
  }
  // GPA → HPA through the 4-level EPT; records each reference. Throws EptExit.
  uint64_t translate(uint64_t gpa, uint8_t step, bool final_access) {
    MemoryVirtualization& st = cpu.memvirt;
    uint64_t table = 0;  // index of the table in st.ept
    for (unsigned level = 4;; --level) {
      const unsigned shift = 12 + 9 * (level - 1);
      const unsigned idx = static_cast<unsigned>((gpa >> shift) & 511);
      const uint64_t entry = st.ept[table * 512 + idx];
      trace::NestedWalkRef r{};
      r.gpa = gpa;
      r.hpa = MemoryVirtualization::kEptBase + table * 4096 + 8 * idx;
      r.entry = entry;
      r.kind = trace::NestedRefKind::kEpt;
      r.level = static_cast<uint8_t>(level);
      r.index = static_cast<uint16_t>(idx);
      r.step = step;
      r.fault = !(entry & 7);
      add(r);
      ++st.stats.nested_refs;
      if (r.fault) throw EptExit{gpa, level, final_access};
      if (level == 1) return (entry & kAddr) | (gpa & 0xFFF);
      table = ((entry & kAddr) - MemoryVirtualization::kEptBase) / 4096;
    }
  }
  void emit(uint8_t structure, uint64_t gpa, uint64_t hpa, uint8_t faulted, uint32_t error,
            uint8_t guest_levels) {
    if (!cpu.sink()) return;
    trace::NestedWalkEvent e = ev;
    const trace::NestedWalkEvent h = make_event<trace::NestedWalkEvent>(cpu, trace::EventType::kNestedWalk);
    e.header = h.header;
    e.header.flags = structure;
    e.linear = linear;
    e.gpa = gpa;
    e.hpa = hpa;
    e.access = static_cast<uint8_t>(access);
    e.faulted = faulted;
    e.error_code = error;
    e.guest_levels = guest_levels;
    cpu.sink()->on_event(e.header);
  }
};

// The VMM's answer to an EPT violation: map guest RAM lazily (4 KiB, RWX, write-back), or
// leave an address outside RAM unmapped (MMIO: the VMM emulates each access). True if mapped.
bool resolve_ept_violation(Cpu& cpu, const EptExit& x, uint64_t linear, Access access) {
  const bool final_access = x.final_access;
  MemoryVirtualization& st = cpu.memvirt;
  ++st.stats.ept_violations;
  const bool ram = cpu.memory().contains(x.gpa & ~0xFFFull, 4096);
  if (ram) {
    uint64_t table = 0;
    for (unsigned level = 4; level > 1; --level) {
      const unsigned idx = static_cast<unsigned>((x.gpa >> (12 + 9 * (level - 1))) & 511);
      uint64_t& entry = st.ept[table * 512 + idx];
      if (!(entry & 7)) {
        const uint64_t next = st.ept.size() / 512;
        st.ept.resize(st.ept.size() + 512, 0);
        st.ept[table * 512 + idx] = (MemoryVirtualization::kEptBase + next * 4096) | 7;  // R W X
        table = next;
      } else {
        table = ((entry & kAddr) - MemoryVirtualization::kEptBase) / 4096;
      }
    }
    const unsigned idx = static_cast<unsigned>((x.gpa >> 12) & 511);
    st.ept[table * 512 + idx] =
        (MemoryVirtualization::kGuestRamHpa + (x.gpa & ~0xFFFull)) | 7 | (6u << 3);  // WB
  }
  if (trace::EventSink* sink = cpu.sink()) {
    auto ev = make_event<trace::EptViolationEvent>(cpu, trace::EventType::kEptViolation);
    uint64_t q = 0;
    if (!final_access || access == Access::kRead) q |= 1;
    if (final_access && access == Access::kWrite) q |= 2;
    if (final_access && access == Access::kExecute) q |= 4;
    q |= 1u << 7;  // guest-linear address valid
    if (final_access) q |= 1u << 8;
    ev.gpa = x.gpa;
    ev.linear = linear;
    ev.qualification = q;
    ev.intel_exit_reason = kExitEptViolation;
    ev.resolution = ram ? trace::EptResolution::kMapped : trace::EptResolution::kMmio;
    ev.level = static_cast<uint8_t>(x.level);
    sink->on_event(ev.header);
  }
  return ram;
}

struct GuestWalk {
  uint64_t phys = 0;
  uint8_t allow = 0;
  uint8_t global = 0;
  uint8_t shift = 12;  // log2 of the page size
  uint8_t ntables = 0;
  uint8_t levels = 0;
  uint64_t tables[4] = {};  // guest-physical pages of the tables read
  uint64_t leaf = 0;
};

struct Walker {
  Walker(Cpu& c, uint64_t la, Access a, bool u) : cpu(c), linear(la), access(a), user(u) {}
  Cpu& cpu;
  uint64_t linear;
  Access access;
  bool user;
  Nested* nested = nullptr;  // EPT: translate each reference
  bool by_vmm = false;       // shadow: the VMM's software walk
  uint8_t structure = 0;
  trace::PageWalkEvent ev{};
  GuestWalk out;

  uint64_t read_entry(uint64_t gpa, unsigned size, unsigned level) {
    uint64_t hpa = gpa;
    bool ram = cpu.memory().contains(gpa, size);
    if (nested) {
      try {
        hpa = nested->translate(gpa, ev.levels, false);
      } catch (const EptExit& x) {
        if (ram) throw;
        resolve_ept_violation(cpu, x, linear, access);  // a table outside RAM
      }
    }
    uint64_t v = 0;
    if (ram) std::memcpy(&v, cpu.memory().data() + gpa, size);
    else v = 0;  // tables outside memory read as not present
    if (by_vmm) ++cpu.memvirt.stats.vmm_guest_refs;
    else ++cpu.memvirt.stats.guest_refs;
    if (out.ntables < 4) out.tables[out.ntables++] = gpa >> 12;
    if (nested) {
      trace::NestedWalkRef r{};
      r.gpa = gpa;
      r.hpa = ram ? MemoryVirtualization::kGuestRamHpa + gpa : hpa;
      r.entry = v;
      r.kind = trace::NestedRefKind::kGuest;
      r.level = static_cast<uint8_t>(level);
      r.index = static_cast<uint16_t>(structure == trace::kWalkPae && level == 3
                                          ? (gpa & 0x1F) / 8
                                          : (gpa & 0xFFF) / size);
      r.step = ev.levels;
      r.fault = !(v & kP);
      nested->add(r);
    }
    if (ev.levels < 4) ev.level[ev.levels] = {gpa, v};
    ++ev.levels;
    return v;
  }
  void write_entry(uint64_t gpa, unsigned size, uint64_t v) {
    if (cpu.memory().contains(gpa, size)) {
      std::memcpy(cpu.memory().data() + gpa, &v, size);
      cpu.note_write(gpa, size);
    }
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
      uint64_t v = 0;
      if (!cpu.memory().contains(pending[i].gpa, pending[i].size)) continue;
      std::memcpy(&v, cpu.memory().data() + pending[i].gpa, pending[i].size);
      if (!(v & kA)) write_entry(pending[i].gpa, pending[i].size, v | kA);
    }
  }
  void emit(uint64_t physical, bool faulted, uint32_t error) {
    if (trace::EventSink* sink = cpu.sink()) {
      const auto h = make_event<trace::PageWalkEvent>(cpu, trace::EventType::kPageWalk);
      ev.header = h.header;
      ev.header.flags = static_cast<uint8_t>(structure | (by_vmm ? trace::kWalkByVmm : 0));
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
    if (nested) nested->emit(structure, 0, 0, 1, error, ev.levels);
    raise(vec::kPF, error);
  }

  // The guest's walk (SDM 4.3–4.6): raises #PF; on success sets the A/D bits and fills `out`.
  void walk() {
    CpuState& s = cpu.s;
    structure = structure_of(s);
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
      uint64_t pde = read_entry(pde_gpa, 4, 2);
      if (!(pde & kP)) page_fault(false);
      accumulate(pde);
      if ((pde & kPS) && (s.cr4 & kCr4Pse)) {
        leaf_gpa = pde_gpa;
        leaf = pde;
        leaf_size = 4;
        out.shift = 22;
        phys = (pde & 0xFFC00000) | ((pde & 0x1FE000) << 19) | (la & 0x3FFFFF);
      } else {
        if (!(pde & kA)) set_accessed_later(pde_gpa, 4);
        const uint64_t pte_gpa = (pde & 0xFFFFF000) + 4 * ((la >> 12) & 0x3FF);
        uint64_t pte = read_entry(pte_gpa, 4, 1);
        if (!(pte & kP)) page_fault(false);
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
        const uint64_t pdpte = read_entry(pdpte_gpa, 8, 3);
        if (!(pdpte & kP)) page_fault(false);
        table = pdpte & kAddr;
        level = 2;
      }
      for (;; --level) {
        const unsigned shift = 12 + 9 * (level - 1);
        const uint64_t gpa = table + 8 * ((linear >> shift) & 0x1FF);
        const uint64_t entry = read_entry(gpa, 8, static_cast<unsigned>(level));
        if (!(entry & kP)) page_fault(false);
        accumulate(entry);
        const bool leaf_here = level == 1 || ((level == 2 || level == 3) && (entry & kPS));
        if (leaf_here) {
          leaf_gpa = gpa;
          leaf = entry;
          out.shift = static_cast<uint8_t>(shift);
          const uint64_t page_mask = (1ull << shift) - 1;
          phys = (entry & kAddr & ~page_mask) | (linear & page_mask);
          break;
        }
        if (!(entry & kA)) set_accessed_later(gpa, 8);
        table = entry & kAddr;
      }
    }

    // Access rights (SDM 4.6).
    const bool wp = s.cr0 & kCr0Wp;
    const bool may_write_sup = write_ok || !wp;
    if (user && !user_ok) page_fault(true);
    if (access == Access::kWrite && (user ? !write_ok : !may_write_sup)) page_fault(true);
    if (access == Access::kExecute && nx) page_fault(true);

    // Accessed bits of the tables, accessed and dirty bits of the leaf.
    commit_accessed();
    uint64_t new_leaf = leaf | kA;
    if (access == Access::kWrite) new_leaf |= kD;
    if (new_leaf != leaf) write_entry(leaf_gpa, leaf_size, new_leaf);
    emit(phys, false, 0);

    // What this walk proved (writes only once the page is dirty).
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
    out.phys = phys;
    out.allow = allow;
    out.global = (s.cr4 & kCr4Pge) && (new_leaf & kG);
    out.leaf = new_leaf;
    out.levels = ev.levels;
  }
};

void fill_tlb(Cpu& cpu, Tlb::Entry& e, uint64_t vpn, uint64_t phys, uint8_t allow,
              uint8_t global, uint8_t shift) {
  e.vpn = vpn;
  e.pfn = phys >> 12;
  e.allow = allow;
  e.global = global;
  e.shift = shift;
  const uint64_t page = e.pfn << 12;
  e.host = cpu.memory().contains(page, 4096) ? cpu.memory().data() + page : nullptr;
  if (shift > 12) cpu.tlb.note_large();
}

// --- shadow paging ----------------------------------------------------------------------------

void emit_shadow(Cpu& cpu, trace::ShadowAction action, uint64_t linear, Access access,
                 bool user, uint64_t gpa, uint64_t guest_entry, uint64_t shadow_entry,
                 uint32_t error, uint32_t dropped) {
  trace::EventSink* sink = cpu.sink();
  if (!sink) return;
  auto ev = make_event<trace::ShadowPagingEvent>(cpu, trace::EventType::kShadowPaging);
  ev.action = action;
  ev.access = static_cast<uint8_t>(access);
  ev.user = user;
  ev.intel_exit_reason = action == trace::ShadowAction::kInvlpg     ? kExitInvlpg
                         : action == trace::ShadowAction::kCr3Write ? kExitCrAccess
                         : action == trace::ShadowAction::kVmmWrite ? kExitIo
                                                                    : kExitException;
  ev.linear = linear;
  ev.gpa = gpa;
  ev.guest_entry = guest_entry;
  ev.shadow_entry = shadow_entry;
  ev.error_code = error;
  ev.dropped = dropped;
  sink->on_event(ev.header);
}

uint64_t shadow_entry_value(const ShadowEntry& e) {
  // As a 4-level leaf would hold it: HPA | P | RW | US | XD.
  uint64_t v = (e.pfn << 12) | kP;
  if (e.allow & kWriteBits) v |= kRW;
  if (e.allow & (Tlb::kAllowUserRead)) v |= kUS;
  if (!(e.allow & Tlb::kAllowSupExec)) v |= kXD;
  return v;
}

void release_tables(MemoryVirtualization& st, const ShadowEntry& e) {
  for (unsigned i = 0; i < e.ntables; ++i) {
    auto it = st.pt_pages.find(e.tables[i]);
    if (it != st.pt_pages.end() && --it->second == 0) st.pt_pages.erase(it);
  }
}

// Drops every shadow entry built from guest page-table page `page` (resynchronization after
// the guest wrote it); returns how many.
uint32_t drop_built_from(Cpu& cpu, uint64_t page) {
  MemoryVirtualization& st = cpu.memvirt;
  uint32_t n = 0;
  for (auto& [cr3, shadow] : st.shadows) {
    for (auto it = shadow.begin(); it != shadow.end();) {
      const ShadowEntry& e = it->second;
      bool uses = false;
      for (unsigned i = 0; i < e.ntables; ++i) uses = uses || e.tables[i] == page;
      if (uses) {
        release_tables(st, e);
        cpu.tlb.flush_page(it->first);
        it = shadow.erase(it);
        ++n;
      } else {
        ++it;
      }
    }
  }
  st.stats.shadow_dropped += n;
  return n;
}

uint64_t shadow_translate(Cpu& cpu, uint64_t linear, Access access, bool user, Tlb::Entry& te) {
  MemoryVirtualization& st = cpu.memvirt;
  const uint64_t vpn = linear >> 12;
  const uint8_t need = Tlb::need_bit(access, user);
  auto& shadow = st.shadows[cpu.s.cr3];
  st.stats.shadow_refs += 4;  // the hardware walks the (4-level) shadow table
  auto it = shadow.find(vpn);
  if (it != shadow.end() && (it->second.allow & need)) {
    fill_tlb(cpu, te, vpn, (it->second.pfn << 12), it->second.allow, it->second.global,
             it->second.shift);
    return (it->second.pfn << 12) | (linear & 0xFFF);
  }
  // A #PF VM exit (exception bitmap bit 14). A write the guest's tables allow to a
  // write-protected page-table page: the VMM emulates the write and resynchronizes. It is a
  // write the VMM's write protection trapped, as a write to a page holding code is: binary
  // translation counts both (Cpu::code_writes) and retranslates an instruction that traps
  // often into a callout (Adams & Agesen, ASPLOS 2006, section 3: adaptive binary translation
  // of page-table writes).
  auto pt_write = [&](uint64_t pfn, uint64_t guest_leaf) {
    ++st.stats.pt_write_traps;
    ++cpu.code_writes;
    const uint32_t dropped = drop_built_from(cpu, pfn);
    emit_shadow(cpu, trace::ShadowAction::kPtWrite, linear, access, user, pfn << 12, guest_leaf,
                0, 0, dropped);
    return (pfn << 12) | (linear & 0xFFF);
  };
  if (it != shadow.end() && access == Access::kWrite && (it->second.guest_allow & need) &&
      st.pt_pages.count(it->second.pfn)) {
    return pt_write(it->second.pfn, it->second.guest_leaf);
  }
  // A hidden page fault: the VMM walks the guest's tables (raising a true #PF for the guest if
  // they deny the access) and fills the shadow.
  Walker w(cpu, linear, access, user);
  w.by_vmm = true;
  w.walk();
  ShadowEntry e;
  e.pfn = w.out.phys >> 12;
  e.guest_allow = w.out.allow;
  e.global = w.out.global;
  e.shift = w.out.shift;
  e.guest_leaf = w.out.leaf;
  e.ntables = w.out.ntables;
  std::memcpy(e.tables, w.out.tables, sizeof e.tables);
  if (it != shadow.end()) {
    release_tables(st, it->second);
    shadow.erase(it);
  }
  for (unsigned i = 0; i < e.ntables; ++i) {
    if (st.pt_pages[e.tables[i]]++ > 0) continue;
    // A new guest page-table page: remove write access from the shadow mappings of it.
    const uint64_t page = e.tables[i];
    uint32_t n = 0;
    for (auto& [cr3, sh] : st.shadows) {
      for (auto& [v, se] : sh) {
        if (se.pfn == page && (se.allow & kWriteBits)) {
          se.allow &= static_cast<uint8_t>(~kWriteBits);
          cpu.tlb.flush_page(v);
          ++n;
        }
      }
    }
    emit_shadow(cpu, trace::ShadowAction::kWriteProtect, 0, Access::kRead, false, page << 12, 0,
                0, 0, n);
  }
  e.allow = e.guest_allow;
  if (st.pt_pages.count(e.pfn)) e.allow &= static_cast<uint8_t>(~kWriteBits);
  auto& placed = shadow[vpn] = e;
  ++st.stats.hidden_faults;
  emit_shadow(cpu, trace::ShadowAction::kHiddenFault, linear, access, user, w.out.phys & ~0xFFFull,
              w.out.leaf, shadow_entry_value(placed), 0, 0);
  if (!(placed.allow & need)) return pt_write(placed.pfn, placed.guest_leaf);
  fill_tlb(cpu, te, vpn, w.out.phys, placed.allow, placed.global, placed.shift);
  return w.out.phys;
}

// --- nested paging ----------------------------------------------------------------------------

uint64_t ept_translate(Cpu& cpu, uint64_t linear, Access access, bool user, Tlb::Entry& te) {
  const uint64_t vpn = linear >> 12;
  const bool paging = cpu.s.cr0 & kCr0Pg;
  for (int attempt = 0;; ++attempt) {
    Nested nested(cpu, linear, access);
    Walker w(cpu, linear, access, user);
    w.nested = &nested;
    w.structure = structure_of(cpu.s);
    uint64_t gpa = linear;
    uint8_t allow = Tlb::kAllowAll, global = 0;
    try {
      if (paging) {
        w.walk();
        gpa = w.out.phys;
        allow = w.out.allow;
        global = w.out.global;
      }
      const uint64_t hpa = nested.translate(gpa, w.out.levels, true);
      nested.emit(w.structure, gpa, hpa, 0, 0, w.out.levels);
      fill_tlb(cpu, te, vpn, gpa, allow, global, w.out.shift);  // GVA → HPA (data at the GPA)
      return gpa;
    } catch (const EptExit& x) {
      nested.emit(w.structure, x.final_access ? gpa : 0, 0, 2, 0,
                  static_cast<uint8_t>(std::min<unsigned>(w.ev.levels, 4)));
      if (!resolve_ept_violation(cpu, x, linear, access) || attempt > 16) {
        return gpa;  // not RAM: the VMM emulates the access (MMIO); nothing is cached
      }
    }
  }
}

}  // namespace

std::string_view to_string(VmmPaging mode) {
  switch (mode) {
    case VmmPaging::kNative: return "native";
    case VmmPaging::kShadow: return "shadow";
    case VmmPaging::kEpt: return "ept";
  }
  return "?";
}

std::optional<VmmPaging> parse_vmm_paging(std::string_view name) {
  if (name == "native") return VmmPaging::kNative;
  if (name == "shadow") return VmmPaging::kShadow;
  if (name == "ept") return VmmPaging::kEpt;
  return std::nullopt;
}

bool Tlb::set_entries(unsigned entries) {
  if (entries == 0 || entries > kMaxEntries || (entries & (entries - 1))) return false;
  mask_ = entries - 1;
  for (Entry& e : entries_) e.vpn = ~0ull;
  return true;
}

std::vector<std::pair<uint32_t, uint64_t>> PagingStats::exits_by_reason() const {
  std::vector<std::pair<uint32_t, uint64_t>> v;
  if (const uint64_t n = hidden_faults + true_faults + pt_write_traps) v.push_back({kExitException, n});
  if (invlpg_exits) v.push_back({kExitInvlpg, invlpg_exits});
  if (cr3_exits) v.push_back({kExitCrAccess, cr3_exits});
  if (ept_violations) v.push_back({kExitEptViolation, ept_violations});
  return v;
}

uint64_t mmu_translate(Cpu& cpu, uint64_t linear, Access access, bool user) {
  CpuState& s = cpu.s;
  const VmmPaging mode = cpu.memvirt.mode;
  if (!(s.cr0 & kCr0Pg) && mode != VmmPaging::kEpt) return linear;
  const uint64_t vpn = linear >> 12;
  Tlb& tlb = cpu.tlb;
  const uint8_t need = Tlb::need_bit(access, user);
  Tlb::Entry& e = tlb.slot(vpn);
  if (e.vpn == vpn && (e.allow & need)) {
    ++tlb.hits;
    return (e.pfn << 12) | (linear & 0xFFF);
  }
  ++tlb.misses;
  ++cpu.memvirt.stats.walks;
  if (mode == VmmPaging::kShadow) return shadow_translate(cpu, linear, access, user, e);
  if (mode == VmmPaging::kEpt) return ept_translate(cpu, linear, access, user, e);
  Walker w(cpu, linear, access, user);
  w.walk();
  fill_tlb(cpu, e, vpn, w.out.phys, w.out.allow, w.out.global, w.out.shift);
  return w.out.phys;
}

void mmu_cr3_written(Cpu& cpu) {
  cpu.tlb.flush_non_global();
  if (cpu.memvirt.mode != VmmPaging::kShadow) return;
  ++cpu.memvirt.stats.cr3_exits;
  emit_shadow(cpu, trace::ShadowAction::kCr3Write, cpu.s.cr3, Access::kRead, false, 0, 0, 0, 0,
              0);
}

void mmu_invlpg(Cpu& cpu, uint64_t linear) {
  const uint64_t vpn = linear >> 12;
  cpu.tlb.invalidate_page(vpn);
  MemoryVirtualization& st = cpu.memvirt;
  if (st.mode != VmmPaging::kShadow) return;
  ++st.stats.invlpg_exits;
  uint32_t dropped = 0;
  auto sh = st.shadows.find(cpu.s.cr3);
  if (sh != st.shadows.end()) {
    // The shadow entries of the guest page that contains the address (all 4 KiB pieces of a
    // large guest page).
    for (auto it = sh->second.begin(); it != sh->second.end();) {
      const unsigned k = it->second.shift - 12u;
      if ((it->first >> k) == (vpn >> k)) {
        release_tables(st, it->second);
        it = sh->second.erase(it);
        ++dropped;
      } else {
        ++it;
      }
    }
    st.stats.shadow_dropped += dropped;
  }
  emit_shadow(cpu, trace::ShadowAction::kInvlpg, linear, Access::kRead, false, 0, 0, 0, 0,
              dropped);
}

void mmu_flush_all(Cpu& cpu) {
  cpu.tlb.flush();
  MemoryVirtualization& st = cpu.memvirt;
  if (st.mode != VmmPaging::kShadow) return;
  uint32_t n = 0;
  for (auto& [cr3, sh] : st.shadows) n += static_cast<uint32_t>(sh.size());
  st.shadows.clear();
  st.pt_pages.clear();
  st.stats.shadow_dropped += n;
  if (n) emit_shadow(cpu, trace::ShadowAction::kFlushAll, 0, Access::kRead, false, 0, 0, 0, 0, n);
}

void mmu_flush_tlb(Cpu& cpu) { cpu.tlb.flush(); }

void mmu_vmm_table_write(Cpu& cpu, uint64_t gpa) {
  MemoryVirtualization& st = cpu.memvirt;
  if (st.mode != VmmPaging::kShadow || !st.pt_pages.count(gpa >> 12)) return;
  ++st.stats.vmm_table_writes;
  uint64_t value = 0;
  if (cpu.memory().contains(gpa, 8)) std::memcpy(&value, cpu.memory().data() + gpa, 8);
  const uint32_t dropped = drop_built_from(cpu, gpa >> 12);
  emit_shadow(cpu, trace::ShadowAction::kVmmWrite, 0, Access::kWrite, false, gpa, value, 0, 0,
              dropped);
}

void mmu_page_fault_delivered(Cpu& cpu, uint32_t error_code) {
  MemoryVirtualization& st = cpu.memvirt;
  ++st.stats.guest_page_faults;
  if (st.mode != VmmPaging::kShadow) return;
  ++st.stats.true_faults;
  // The access, from the #PF error code (SDM Vol. 3A 4.7: bit 1 W/R, bit 2 U/S, bit 4 I/D).
  const Access access = (error_code & 0x10) ? Access::kExecute
                        : (error_code & 0x2) ? Access::kWrite
                                             : Access::kRead;
  emit_shadow(cpu, trace::ShadowAction::kTrueFault, cpu.s.cr2, access, (error_code & 0x4) != 0,
              0, 0, 0, error_code, 0);
}

}  // namespace trapscope::sim
