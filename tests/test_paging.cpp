// Memory virtualization on the simulator (sim/mmu.hpp): walk detail, the TLB, and the three
// modes of the VMM (native, shadow page tables, nested paging) on the `paging` and `rings`
// guests. The counts checked follow from the definitions (references per 2D walk, a hidden
// fault per first touch, true faults = the guest's own #PF).
#include <catch2/catch.hpp>

#include <cstring>
#include <map>

#include "backend/backend.hpp"
#include "backend/cosim.hpp"
#include "guests/guest_catalog.hpp"
#include "sim/cpu.hpp"
#include "trace/page_walk.hpp"
#include "trace/recorder.hpp"
#include "tests/support.hpp"

using namespace trapscope;
using trace::EventType;

namespace {

struct Run {
  backend::RunOutcome outcome;
  x86::CpuState regs;
  std::vector<uint8_t> memory;
  std::string console;
  backend::PagingCounters counters;
  trace::Recorder events;
};

std::unique_ptr<Run> run_sim(const char* guest, sim::VmmPaging paging,
                             unsigned tlb_entries = sim::Tlb::kDefaultEntries,
                             bool record = true) {
  auto g = guests::find(guest);
  REQUIRE(g);
  backend::Config cfg;
  cfg.mode = *platform::parse_boot_mode(g->mode);
  cfg.paging = paging;
  cfg.tlb_entries = tlb_entries;
  auto m = backend::make_backend(backend::Kind::kSim, cfg);
  m->load(g->image);
  auto r = std::make_unique<Run>();
  r->outcome = m->run({30.0, 0, 50'000'000}, record ? &r->events : nullptr);
  r->regs = m->registers();
  r->memory.assign(m->memory().begin(), m->memory().end());
  r->console = m->devices().console.text();
  r->counters = *m->paging_counters();
  return r;
}

template <typename T>
std::vector<const T*> all(const trace::Recorder& rec, EventType type) {
  std::vector<const T*> v;
  for (size_t i = 0; i < rec.size(); ++i) {
    if (const T* e = rec.get<T>(i, type)) v.push_back(e);
  }
  return v;
}

size_t guest_page_faults(const trace::Recorder& rec) {
  size_t n = 0;
  for (const auto* e : all<trace::ExceptionEvent>(rec, EventType::kException)) n += e->vector == 14;
  return n;
}

constexpr sim::VmmPaging kModes[] = {sim::VmmPaging::kNative, sim::VmmPaging::kShadow,
                                     sim::VmmPaging::kEpt};

}  // namespace

TEST_CASE("paging guest passes in every memory-virtualization mode", "[paging][sim]") {
  for (sim::VmmPaging mode : kModes) {
    INFO("--paging " << sim::to_string(mode));
    auto r = run_sim("paging", mode);
    CHECK(r->outcome.reason == trace::RunEndReason::kGuestExit);
    CHECK(r->outcome.exit_code == 0);
    CHECK_THAT(r->console, Catch::Contains("7 seven page faults, all handled: passed"));
    // The guest's own #PF count (7 by its design) is the true-fault count in every mode.
    CHECK(guest_page_faults(r->events) == 7);
    CHECK(r->counters.stats.guest_page_faults == 7);
  }
}

TEST_CASE("guest-visible behaviour is identical in native, shadow and EPT modes",
          "[paging][sim]") {
  for (const char* guest : {"paging", "rings", "boot", "hello"}) {
    INFO(guest);
    auto native = run_sim(guest, sim::VmmPaging::kNative, sim::Tlb::kDefaultEntries, false);
    for (sim::VmmPaging mode : {sim::VmmPaging::kShadow, sim::VmmPaging::kEpt}) {
      INFO("--paging " << sim::to_string(mode));
      auto other = run_sim(guest, mode, sim::Tlb::kDefaultEntries, false);
      CHECK(other->console == native->console);
      CHECK(other->outcome.reason == native->outcome.reason);
      CHECK(other->outcome.exit_code == native->outcome.exit_code);
      CHECK(other->outcome.instructions == native->outcome.instructions);
      CHECK(other->regs == native->regs);
      CHECK(other->memory == native->memory);
    }
  }
}

TEST_CASE("page-walk events carry each reference's level, index and flags", "[paging][sim]") {
  auto r = run_sim("paging", sim::VmmPaging::kNative);
  const auto walks = all<trace::PageWalkEvent>(r->events, EventType::kPageWalk);
  REQUIRE(!walks.empty());
  bool saw_heap = false;
  for (const auto* w : walks) {
    CHECK((w->header.flags & trace::kWalkStructureMask) == trace::kWalk4Level);
    const auto refs = trace::decode_walk(*w);
    REQUIRE(refs.size() == w->levels);
    for (const auto& ref : refs) {
      const unsigned expected =
          static_cast<unsigned>((w->linear >> ref.index_lo) & ((1u << (ref.index_hi - ref.index_lo + 1)) - 1));
      CHECK(ref.index == expected);
    }
    // The guest's heap (0x200000..) uses its own 4 KiB tables: PML4, PDPT, PD, PT.
    if (w->linear == 0x200000 && !w->faulted && refs.size() == 4) {
      saw_heap = true;
      CHECK(refs[0].level_name == "PML4");
      CHECK(refs[3].level_name == "PT");
      CHECK(refs[2].index == 1);  // bits 29:21 of 0x200000
      CHECK(refs[3].index == 0);
      CHECK(refs[3].leaf);
      CHECK_THAT(refs[3].flags, Catch::StartsWith("P ") && Catch::Contains("A D"));
    }
    if (w->faulted) CHECK(refs.back().fault);
  }
  CHECK(saw_heap);
}

TEST_CASE("TLB: size is configurable, smaller TLBs miss more, hits and misses add up",
          "[paging][sim]") {
  auto big = run_sim("paging", sim::VmmPaging::kNative, 4096, false);
  auto tiny = run_sim("paging", sim::VmmPaging::kNative, 1, false);
  CHECK(big->counters.tlb_entries == 4096);
  CHECK(tiny->counters.tlb_entries == 1);
  CHECK(tiny->counters.tlb_misses > big->counters.tlb_misses);
  CHECK(tiny->memory == big->memory);  // the TLB is invisible to a guest that invalidates
  // Every miss walked: walks = misses (native).
  CHECK(big->counters.stats.walks == big->counters.tlb_misses);
  sim::Tlb tlb;
  CHECK_FALSE(tlb.set_entries(0));
  CHECK_FALSE(tlb.set_entries(3));
  CHECK_FALSE(tlb.set_entries(8192));
  CHECK(tlb.set_entries(64));
  CHECK(tlb.entries() == 64);
}

TEST_CASE("TLB: MOV to CR3 keeps global entries, INVLPG and a full flush do not",
          "[paging][sim]") {
  sim::Tlb tlb;
  tlb.slot(5) = {5, 50, sim::Tlb::kAllowSupRead, 1};
  tlb.slot(6) = {6, 60, sim::Tlb::kAllowSupRead, 0};
  tlb.flush_non_global();
  CHECK(tlb.slot(5).vpn == 5);
  CHECK(tlb.slot(6).vpn == ~0ull);
  tlb.flush_page(5);
  CHECK(tlb.slot(5).vpn == ~0ull);
  tlb.slot(5) = {5, 50, sim::Tlb::kAllowSupRead, 1};
  tlb.flush();
  CHECK(tlb.slot(5).vpn == ~0ull);
}

TEST_CASE("nested paging: 24 references per 4-level walk over the 4-level EPT",
          "[paging][sim][ept]") {
  auto r = run_sim("paging", sim::VmmPaging::kEpt);
  const auto walks = all<trace::NestedWalkEvent>(r->events, EventType::kNestedWalk);
  REQUIRE(!walks.empty());
  size_t complete = 0;
  for (const auto* w : walks) {
    if (w->faulted) continue;
    // (n+1)(m+1) − 1 for every walk: n = 3 for the VMM's 2 MiB pages, 4 for 4 KiB pages.
    unsigned n = 0;
    for (unsigned i = 0; i < w->nrefs; ++i) n += w->ref[i].kind == trace::NestedRefKind::kGuest;
    CHECK(n == w->guest_levels);
    CHECK(w->nrefs == (n + 1) * 5 - 1);
    if (w->guest_levels != 4) continue;
    ++complete;
    // n·m + n + m with n = m = 4, in hardware order: 4 EPT refs then the guest entry, four
    // times, then 4 EPT refs for the final GPA.
    REQUIRE(w->nrefs == 24);
    for (unsigned i = 0; i < 24; ++i) {
      const bool guest = i % 5 == 4 && i < 20;
      CHECK((w->ref[i].kind == trace::NestedRefKind::kGuest) == guest);
      if (!guest) CHECK(w->ref[i].level == 4 - (i % 5));
    }
    CHECK(w->hpa == sim::MemoryVirtualization::kGuestRamHpa + w->gpa);
  }
  CHECK(complete > 10);
  // Every EPT violation became a VM exit with reason 48 and a qualification.
  const auto v = all<trace::EptViolationEvent>(r->events, EventType::kEptViolation);
  CHECK(v.size() == r->counters.stats.ept_violations);
  REQUIRE(!v.empty());
  for (const auto* e : v) {
    CHECK(e->intel_exit_reason == 48);
    CHECK((e->qualification & 0x80) != 0);  // guest-linear address valid
    CHECK((e->qualification & 0x38) == 0);  // the entry was not present: no R/W/X
    CHECK((e->qualification & 7) != 0);     // some access type
  }
  // The lazily filled EPT maps each guest page touched once: no violation twice for a page.
  std::map<uint64_t, int> per_page;
  for (const auto* e : v) CHECK(++per_page[e->gpa >> 12] == 1);
  CHECK(r->counters.stats.walk_refs() ==
        r->counters.stats.guest_refs + r->counters.stats.nested_refs);
}

TEST_CASE("nested paging: a 2-level 32-bit guest walk makes 14 references, paging off 4",
          "[paging][sim][ept]") {
  // boot switches real -> protected (paging off) -> long mode: paging-off accesses are
  // translated through the EPT alone (1 × 4 references).
  auto r = run_sim("boot", sim::VmmPaging::kEpt);
  size_t off = 0;
  for (const auto* w : all<trace::NestedWalkEvent>(r->events, EventType::kNestedWalk)) {
    if (w->faulted) continue;
    if (w->guest_levels == 0) {
      ++off;
      CHECK(w->nrefs == 4);
    }
    if (w->guest_levels == 2) CHECK(w->nrefs == 14);  // (2+1)(4+1) − 1
  }
  CHECK(off > 0);
}

TEST_CASE("shadow paging: hidden faults, true faults, traps", "[paging][sim][shadow]") {
  auto r = run_sim("paging", sim::VmmPaging::kShadow);
  const auto& s = r->counters.stats;
  const auto ev = all<trace::ShadowPagingEvent>(r->events, EventType::kShadowPaging);
  std::map<trace::ShadowAction, uint64_t> n;
  for (const auto* e : ev) ++n[e->action];
  // True faults: exactly the guest's own page faults, reflected by the VMM.
  CHECK(s.true_faults == 7);
  CHECK(n[trace::ShadowAction::kTrueFault] == 7);
  // A hidden fault for the first touch of each mapped page: every distinct 4 KiB page the
  // guest touched under paging needed one (later misses may add more, never fewer).
  for (const auto* w : all<trace::PageWalkEvent>(r->events, EventType::kPageWalk)) {
    CHECK((w->header.flags & trace::kWalkByVmm) != 0);  // only the VMM walks guest tables
  }
  CHECK(s.hidden_faults == n[trace::ShadowAction::kHiddenFault]);
  CHECK(s.hidden_faults >= 10);
  // The guest loads CR3 three times (A, B, A) and executes INVLPG four times (steps 3, 4, 5
  // and the handler in step 4); it writes its page tables while they are in use.
  CHECK(s.cr3_exits == 3);
  CHECK(n[trace::ShadowAction::kCr3Write] == 3);
  CHECK(s.invlpg_exits == 4);
  CHECK(s.pt_write_traps > 0);
  CHECK(n[trace::ShadowAction::kPtWrite] == s.pt_write_traps);
  // The hardware walked only the shadow: 4 references per walk.
  CHECK(s.shadow_refs == 4 * s.walks);
  CHECK(s.guest_refs == 0);
}

TEST_CASE("shadow paging: the first touch of a mapped page is a hidden fault",
          "[paging][sim][shadow]") {
  auto r = run_sim("rings", sim::VmmPaging::kShadow);
  // Each hidden fault fills one GVA page; the first access to every page walked by the VMM
  // is a hidden fault.
  std::map<uint64_t, int> first;
  for (size_t i = 0; i < r->events.size(); ++i) {
    if (const auto* e = r->events.get<trace::ShadowPagingEvent>(i, EventType::kShadowPaging)) {
      if (e->action == trace::ShadowAction::kHiddenFault) ++first[e->linear >> 12];
    }
  }
  CHECK(first.count(0x8000 >> 12) == 1);  // the first instruction fetch after enabling CR3
  CHECK(r->counters.stats.hidden_faults >= first.size());
  CHECK(r->counters.stats.true_faults == guest_page_faults(r->events));
}

TEST_CASE("co-simulation: paging (KVM against each simulator mode)", "[cosim][kvm][sim]") {
  REQUIRE_KVM_OR_SKIP();
  auto g = guests::find("paging");
  REQUIRE(g);
  for (sim::VmmPaging mode : kModes) {
    INFO("--paging " << sim::to_string(mode));
    backend::Config cfg;
    cfg.mode = *platform::parse_boot_mode(g->mode);
    cfg.paging = mode;
    const auto r = backend::cosimulate(g->image, cfg, {30.0, 100000, 50'000'000});
    INFO(r.report);
    CHECK(r.equal);
  }
}

TEST_CASE("run --stats prints the memory-virtualization counters", "[paging][cli]") {
  const auto r = test::run_trapscope(
      {"run", "paging", "--backend", "sim", "--paging", "ept", "--stats", "-q"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("EPT violation"));
  CHECK_THAT(r.out, Catch::Contains("true page faults"));
  const auto bad = test::run_trapscope({"run", "paging", "--backend", "sim", "--tlb-entries", "3"});
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.err, Catch::Contains("power of two"));
  const auto kvm = test::run_trapscope({"run", "paging", "--backend", "kvm", "--paging", "ept"});
  CHECK(kvm.exit_code == 2);
}

TEST_CASE("walk: the guest's walk of an address, then GPA -> host-virtual -> host-physical",
          "[paging][cli]") {
  const auto r = test::run_trapscope({"walk", "paging", "--backend", "sim", "--gva", "0x200000",
                                      "--gva", "0x400000"});
  REQUIRE(r.exit_code == 0);
  // The final state of `paging`: heap page 0 re-pointed to 0x180000 (step 3).
  CHECK_THAT(r.out, Catch::Contains("PD   [  1] at GPA 0x22008"));
  CHECK_THAT(r.out, Catch::Contains("PT   [  0] at GPA 0x24000    = 0x0000000000180063  P RW A D"));
  CHECK_THAT(r.out, Catch::Contains("-> GPA 0x180000"));
  CHECK_THAT(r.out, Catch::Contains("host-virtual"));
  // Root sees the frame; anyone else is told the host hides it.
  CHECK_THAT(r.out, Catch::Contains("-> host-physical 0x") || Catch::Contains("hidden by the host"));
  // 0x400000 is PD[2], which the guest never filled.
  CHECK_THAT(r.out, Catch::Contains("PD   [  2] at GPA 0x22010    = 0x0000000000000000  not present"));
  CHECK_THAT(r.out, Catch::Contains("not mapped"));
  const auto bad = test::run_trapscope({"walk", "paging", "--backend", "sim"});
  CHECK(bad.exit_code == 2);  // --gva is required
}

TEST_CASE("walk on KVM stops at the requested VM exit", "[paging][cli][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  // After 100 exits (console bytes) `paging` runs on its own tables (CR3 = address space A).
  const auto r = test::run_trapscope({"walk", "paging", "--backend", "kvm", "--at-exit", "100",
                                      "--gva", "0x8000"});
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("after 100 VM exits"));
  CHECK_THAT(r.out, Catch::Contains("memory slot 0"));
  CHECK_THAT(r.out, Catch::Contains("-> GPA 0x8000"));
}

TEST_CASE("nested_grid: a 4-level 2D walk is 5 rows of EPT references and a guest entry",
          "[paging][sim][ept]") {
  auto r = run_sim("paging", sim::VmmPaging::kEpt);
  const trace::NestedWalkEvent* full = nullptr;
  for (const auto* w : all<trace::NestedWalkEvent>(r->events, EventType::kNestedWalk)) {
    if (!w->faulted && w->nrefs == 24) full = w;
  }
  REQUIRE(full);
  const auto rows = trace::nested_grid(*full);
  REQUIRE(rows.size() == 5);
  for (size_t i = 0; i < 5; ++i) {
    for (const auto& c : rows[i].ept) CHECK(c.present);
    CHECK(rows[i].guest.present == (i < 4));
    CHECK(rows[i].final_row == (i == 4));
  }
  CHECK_THAT(rows[0].label, Catch::StartsWith("PML4"));
  CHECK_THAT(rows[3].label, Catch::StartsWith("PT"));
  CHECK(rows[4].gpa == full->gpa);
}

TEST_CASE("trace files keep the memory-virtualization events", "[paging][cli]") {
  for (const char* mode : {"shadow", "ept"}) {
    INFO(mode);
    const std::string path = test::temp_path(std::string("paging-") + mode + ".trace");
    const auto r = test::run_trapscope(
        {"run", "paging", "--backend", "sim", "--paging", mode, "--trace", path, "-q"});
    REQUIRE(r.exit_code == 0);
    const auto s = test::run_trapscope({"show", path, "--no-timing"});
    REQUIRE(s.exit_code == 0);
    if (std::string(mode) == "shadow") {
      CHECK_THAT(s.out, Catch::Contains("shadow  hidden page fault (Intel exit reason 0)"));
      CHECK_THAT(s.out, Catch::Contains("shadow  page-table write"));
      CHECK_THAT(s.out, Catch::Contains("by the shadow-paging VMM"));
    } else {
      CHECK_THAT(s.out, Catch::Contains("24 references"));
      CHECK_THAT(s.out, Catch::Contains("EPT violation (Intel exit reason 48)"));
    }
    const auto j = test::run_trapscope({"show", path, "--format", "jsonl", "--no-timing"});
    CHECK_THAT(j.out, Catch::Contains(std::string("\"type\":\"") +
                                      (std::string(mode) == "shadow" ? "shadow_paging"
                                                                     : "nested_walk")));
  }
}

TEST_CASE("TLB: INVLPG in a large page drops every 4 KiB piece cached from it", "[paging][sim]") {
  sim::Tlb tlb;
  for (uint64_t v = 0x200; v < 0x204; ++v) tlb.slot(v) = {v, v, sim::Tlb::kAllowSupRead, 0, 21};
  tlb.slot(0x410) = {0x410, 0x410, sim::Tlb::kAllowSupRead, 0, 21};  // another 2 MiB page
  tlb.slot(0x205) = {0x205, 0x205, sim::Tlb::kAllowSupRead, 0, 12};  // a 4 KiB page
  tlb.note_large();
  tlb.invalidate_page(0x201);
  for (uint64_t v = 0x200; v < 0x204; ++v) CHECK(tlb.slot(v).vpn == ~0ull);
  CHECK(tlb.slot(0x410).vpn == 0x410);
  CHECK(tlb.slot(0x205).vpn == 0x205);
}

// The host-pointer cache (Tlb::Entry::host, Cpu::host_data) lives and dies with the modelled TLB
// entry: the TLB counts are those of the full path, a stale TLB entry stays stale until INVLPG
// (SDM Vol. 3A 4.10.4), writes to code pages and MMIO take the full path.
TEST_CASE("host-pointer cache: behind the modelled TLB, exact counts, code pages and MMIO",
          "[paging][sim][unit]") {
  sim::PhysicalMemory mem(1 << 20);
  platform::Devices devices;
  sim::Cpu cpu(mem, devices);
  x86::CpuState& s = cpu.s;
  s.cr0 = x86::kCr0Pe | x86::kCr0Pg;
  s.cr4 = x86::kCr4Pae;
  s.efer = x86::kEferLme | x86::kEferLma;
  s.seg[x86::kCs].l = 1;  // 64-bit mode, CPL 0
  s.cr3 = 0x1000;
  auto put = [&](uint64_t gpa, uint64_t v) { std::memcpy(mem.data() + gpa, &v, 8); };
  auto get = [&](uint64_t gpa) {
    uint64_t v;
    std::memcpy(&v, mem.data() + gpa, 8);
    return v;
  };
  put(0x1000, 0x2000 | 3);               // PML4[0] -> PDPT
  put(0x2000, 0x3000 | 3);               // PDPT[0] -> PD
  put(0x3000, 0x4000 | 3);               // PD[0] -> PT
  put(0x4000 + 8 * 0x10, 0x20000 | 3);   // 0x10000 -> 0x20000, RW
  put(0x4000 + 8 * 0x11, 0x200000 | 3);  // 0x11000 -> 0x200000: outside RAM (MMIO)
  const auto ds = x86::kDs;

  cpu.write(ds, 0x10008, 8, 0x1122334455667788ull);  // miss: walk, fill
  CHECK(cpu.tlb.misses == 1);
  CHECK(cpu.tlb.hits == 0);
  CHECK(get(0x20008) == 0x1122334455667788ull);
  CHECK(cpu.host_data<true>(ds, 0x10010, 8, sim::AddrMode::kLong, false, 1) ==
        mem.data() + 0x20010);
  CHECK(cpu.tlb.hits == 1);  // counted as the TLB hit it is
  CHECK(cpu.read(ds, 0x10008, 8) == 0x1122334455667788ull);
  CHECK(cpu.tlb.hits == 2);
  CHECK(cpu.tlb.misses == 1);
  // A page crossing takes the full path (two translations, two hits here: same page table).
  CHECK(cpu.host_data<false>(ds, 0x10FFC, 8, sim::AddrMode::kLong, false, 1) == nullptr);
  CHECK(cpu.tlb.hits == 2);

  // A page that holds cached code: its writes go through note_write (self-modifying code).
  cpu.mark_code_page(0x20000);
  CHECK(cpu.host_data<true>(ds, 0x10008, 8, sim::AddrMode::kLong, false, 1) == nullptr);
  CHECK(cpu.host_data<false>(ds, 0x10008, 8, sim::AddrMode::kLong, false, 1) != nullptr);
  const uint32_t gen = cpu.code_generation(0x20000);
  cpu.write(ds, 0x10008, 8, 1);
  CHECK(cpu.code_generation(0x20000) == gen + 1);
  CHECK(cpu.code_writes == 1);

  // The PTE changes without INVLPG: the TLB (and so the cache) still maps the old page.
  put(0x4000 + 8 * 0x10, 0x30000 | 3);
  CHECK(cpu.read(ds, 0x10008, 8) == 1);
  sim::mmu_invlpg(cpu, 0x10000);
  CHECK(cpu.host_data<false>(ds, 0x10008, 8, sim::AddrMode::kLong, false, 1) == nullptr);
  const uint64_t misses = cpu.tlb.misses;
  cpu.write(ds, 0x10008, 8, 7);
  CHECK(cpu.tlb.misses == misses + 1);
  CHECK(get(0x30008) == 7);
  CHECK(get(0x20008) == 1);

  // MMIO: translated by the TLB, but never a host pointer; the write is recorded.
  cpu.write(ds, 0x11000, 4, 0xABCD);
  REQUIRE(devices.mmio_writes.size() == 1);
  CHECK(devices.mmio_writes[0].gpa == 0x200000);
  CHECK(cpu.host_data<true>(ds, 0x11000, 4, sim::AddrMode::kLong, false, 1) == nullptr);
  cpu.write(ds, 0x11000, 4, 0xABCD);
  CHECK(devices.mmio_writes.size() == 2);

  // A user access to a supervisor page is no hit: the full path raises #PF.
  CHECK(cpu.host_data<false>(ds, 0x10008, 8, sim::AddrMode::kLong, true, 1) == nullptr);
}
