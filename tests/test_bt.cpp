// Binary translation (`--technique bt`, sim/bt/translator.hpp): IDENT/non-IDENT translation,
// the 12-instruction unit limit, chaining, coherence with self-modifying code, adaptive
// callouts, stop conditions inside a unit, and equivalence with the interpreter and with KVM.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "backend/backend.hpp"
#include "backend/cosim.hpp"
#include "guests/guest_catalog.hpp"
#include "sim/bt/translator.hpp"
#include "x86/decoder.hpp"
#include "sim/sim_machine.hpp"
#include "trace/printer.hpp"
#include "trace/recorder.hpp"
#include "tests/support.hpp"
#include "visualizer/core/event_store.hpp"
#include "visualizer/core/trace_reexec.hpp"

namespace {

using namespace trapscope;
using trace::BtKind;

backend::Config bt_config(const std::string& mode = "real") {
  backend::Config cfg;
  cfg.mode = *platform::parse_boot_mode(mode);
  cfg.technique = sim::virt::Technique::kBt;
  return cfg;
}

struct Translated {
  BtKind kind;
  x86::Instruction insn;
  std::string_view reason;
};

Translated translate(std::vector<uint8_t> bytes, trace::CpuMode mode, uint64_t next_rip) {
  Translated t{};
  REQUIRE(x86::decode(bytes, mode, &t.insn) == x86::DecodeStatus::kOk);
  t.kind = sim::bt::translate_insn(t.insn, bytes, next_rip, &t.reason);
  return t;
}

// A flat image (real mode unless `mode` says otherwise) run by the simulator under `technique` (5 s at most); it must halt.
std::unique_ptr<sim::SimMachine> run_until_halt(const std::vector<uint8_t>& code,
                                                sim::virt::Technique technique,
                                                platform::BootMode mode = platform::BootMode::kReal) {
  sim::SimConfig cfg;
  cfg.technique = technique;
  cfg.mode = mode;
  auto m = std::make_unique<sim::SimMachine>(cfg);
  m->load(code);
  sim::SimLimits limits;
  limits.timeout_s = 5.0;
  CHECK(m->run(limits, nullptr).reason == trace::RunEndReason::kHalted);
  return m;
}

std::vector<trace::BtTranslateEvent> translations(const trace::Recorder& r) {
  std::vector<trace::BtTranslateEvent> out;
  for (size_t i = 0; i < r.size(); ++i) {
    if (const auto* e = r.get<trace::BtTranslateEvent>(i, trace::EventType::kBtTranslate)) {
      out.push_back(*e);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("bt: innocuous instructions translate IDENT, the others non-IDENT with a reason",
          "[bt][sim]") {
  using trace::CpuMode;
  CHECK(translate({0x01, 0xD8}, CpuMode::kLong64, 0x1002).kind == BtKind::kIdent);  // add eax, ebx
  // mov eax, [rip + 0x10] at 0x1000 (6 bytes): the absolute address 0x1006 + 0x10.
  const Translated pc = translate({0x8B, 0x05, 0x10, 0, 0, 0}, CpuMode::kLong64, 0x1006);
  CHECK(pc.kind == BtKind::kPcRelative);
  CHECK(pc.insn.ops[1].base == x86::kNoReg);
  CHECK(pc.insn.ops[1].disp == 0x1016);
  CHECK(translate({0xEB, 0x05}, CpuMode::kLong64, 0).kind == BtKind::kDirectBranch);  // jmp rel8
  CHECK(translate({0x75, 0x05}, CpuMode::kReal16, 0).kind == BtKind::kDirectBranch);  // jnz
  CHECK(translate({0xE2, 0xFE}, CpuMode::kReal16, 0).kind == BtKind::kDirectBranch);  // loop
  CHECK(translate({0xC3}, CpuMode::kLong64, 0).kind == BtKind::kIndirectBranch);      // ret
  CHECK(translate({0xFF, 0xE0}, CpuMode::kLong64, 0).kind == BtKind::kIndirectBranch);  // jmp rax
  CHECK(translate({0xFA}, CpuMode::kProtected32, 0).kind == BtKind::kInCache);  // cli
  CHECK(translate({0x9C}, CpuMode::kProtected32, 0).kind == BtKind::kInCache);  // pushfd
  CHECK(translate({0x0F, 0x01, 0x00}, CpuMode::kProtected32, 0).kind ==
        BtKind::kInCache);  // sgdt [eax]
  const Translated cr3 = translate({0x0F, 0x22, 0xD8}, CpuMode::kLong64, 0);  // mov cr3, rax
  CHECK(cr3.kind == BtKind::kCallout);
  CHECK_FALSE(cr3.reason.empty());
  CHECK(translate({0xEE}, CpuMode::kProtected32, 0).kind == BtKind::kCallout);  // out dx, al
  CHECK(translate({0xF4}, CpuMode::kProtected32, 0).kind == BtKind::kCallout);  // hlt
  CHECK(translate({0xCF}, CpuMode::kProtected32, 0).kind == BtKind::kCallout);  // iretd
}

TEST_CASE("bt: a translation unit ends after 12 instructions or at control flow", "[bt][sim]") {
  // 30 nops, then jmp $+2 and hlt (real mode at 0x8000).
  std::vector<uint8_t> code(30, 0x90);
  code.insert(code.end(), {0xEB, 0x00, 0xF4});
  auto m = backend::make_backend(backend::Kind::kSim, bt_config());
  m->load(code);
  trace::Recorder events;
  const auto r = m->run({5.0, 0, 0}, &events);
  CHECK(r.reason == trace::RunEndReason::kHalted);
  CHECK(r.instructions == 32);
  const auto t = translations(events);
  REQUIRE(t.size() == 4);
  CHECK(t[0].count == 12);
  CHECK(t[1].count == 12);
  CHECK(t[2].count == 7);  // 6 nops and the jmp, which ends the unit
  CHECK(t[2].kind[6] == static_cast<uint8_t>(BtKind::kDirectBranch));
  CHECK(t[3].count == 1);  // hlt: a callout
  CHECK(t[3].kind[0] == static_cast<uint8_t>(BtKind::kCallout));
  CHECK(t[0].header.rip == 0x8000);
  CHECK(t[1].header.rip == 0x800C);
  CHECK(t[0].guest_bytes == 12);
  for (unsigned i = 0; i < 12; ++i) CHECK(t[0].kind[i] == static_cast<uint8_t>(BtKind::kIdent));
  const std::string text = trace::bt_event_text(t[2].header);
  CHECK_THAT(text, Catch::Contains("1:IDENT") && Catch::Contains("2:direct-branch"));
}

TEST_CASE("bt: a loop runs through its chained exits, not the hash table", "[bt][sim]") {
  // mov cx, 1000; l: inc ax; loop l; hlt
  const std::vector<uint8_t> code = {0xB9, 0xE8, 0x03, 0x40, 0xE2, 0xFD, 0xF4};
  auto m = backend::make_backend(backend::Kind::kSim, bt_config());
  m->load(code);
  trace::Recorder events;
  const auto r = m->run({5.0, 0, 0}, &events);
  CHECK(r.reason == trace::RunEndReason::kHalted);
  CHECK(m->registers().gpr[x86::kRax] == 1000);
  const sim::bt::BtStats* s = m->bt_stats();
  REQUIRE(s != nullptr);
  CHECK(s->translations == 3);  // mov..loop, inc..loop, hlt and nothing else
  CHECK(s->chains >= 1);
  // The loop's taken exit, patched once, is followed until step_bt returns to the run loop
  // (every 64 units): a lookup then.
  CHECK(s->chained >= 950);
  CHECK(s->lookups <= 1000 / 64 + 5);
  size_t chain_events = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    if (const auto* e = events.get<trace::BtChainEvent>(i, trace::EventType::kBtChain)) {
      ++chain_events;
      if (e->header.flags & trace::kBtFlagTaken) CHECK(e->header.rip == 0x8003);
    }
  }
  CHECK(chain_events == s->chains);
}

TEST_CASE("bt: self-modifying code invalidates its units, a trapping store becomes a callout",
          "[bt][sim]") {
  auto g = guests::find("smc");
  REQUIRE(g);
  auto m = backend::make_backend(backend::Kind::kSim, bt_config(std::string(g->mode)));
  m->load(g->image);
  trace::Recorder events;
  const auto r = m->run({5.0, 0, 0}, &events);
  INFO(m->devices().console.text());
  CHECK(r.reason == trace::RunEndReason::kGuestExit);
  CHECK(r.exit_code == 0);  // 1: a stale translation ran
  CHECK_THAT(m->devices().console.text(), Catch::Contains("smc: ok"));
  const sim::bt::BtStats* s = m->bt_stats();
  REQUIRE(s != nullptr);
  CHECK(s->invalidations >= 99);
  CHECK(s->adaptive == 1);  // the patching store, after kBtAdaptiveThreshold traps
  size_t invalidate = 0, adaptive_callouts = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    if (events.get<trace::BtInvalidateEvent>(i, trace::EventType::kBtInvalidate)) ++invalidate;
    if (const auto* c = events.get<trace::BtCalloutEvent>(i, trace::EventType::kBtCallout)) {
      if (c->header.flags & trace::kBtFlagAdaptive) ++adaptive_callouts;
    }
  }
  CHECK(invalidate >= 99);
  CHECK(adaptive_callouts >= 90);
}

// Adaptive BT (Adams & Agesen 2006, docs/references.md): an instruction that traps often (e.g.
// a store to a page-table page under shadow paging) is retranslated into a callout. nano-ptemod
// stores to a page table that is in use, so the shadow-paging VMM write-protects it and every
// store traps until BT adapts.
TEST_CASE("bt: a page-table store trapped by shadow paging becomes an adaptive callout",
          "[bt][sim][paging]") {
  auto g = guests::find("nano-ptemod");
  REQUIRE(g);
  auto cfg = bt_config(std::string(g->mode));
  cfg.paging = sim::VmmPaging::kShadow;
  auto m = backend::make_backend(backend::Kind::kSim, cfg);
  m->load(g->image);
  trace::Recorder events;
  const auto r = m->run({30.0, 0, 0}, &events);
  CHECK(r.reason == trace::RunEndReason::kGuestExit);
  CHECK(r.exit_code == 0);
  REQUIRE(m->bt_stats() != nullptr);
  CHECK(m->bt_stats()->adaptive == 1);  // the PTE store (`mov [PT_N], rax`)
  REQUIRE(m->paging_counters());
  CHECK(m->paging_counters()->stats.pt_write_traps >= 999);  // one store per iteration
  size_t adaptive_callouts = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    if (const auto* c = events.get<trace::BtCalloutEvent>(i, trace::EventType::kBtCallout)) {
      if (c->header.flags & trace::kBtFlagAdaptive) ++adaptive_callouts;
    }
  }
  // The first store does not trap (the page table is shadowed by the read after it), the next
  // kBtAdaptiveThreshold do; every later one is a callout.
  CHECK(adaptive_callouts == 1000 - 1 - sim::bt::kBtAdaptiveThreshold);
}

TEST_CASE("bt: invalidated units are freed, so code rewritten 20,000 times keeps the cache small",
          "[bt][sim]") {
  // Real mode at 0:8000, a JIT-like churn: 20,000 passes, each patching the immediate of
  // `add bx, imm16` on the next page and then running it, so each pass invalidates that page's
  // unit and translates it again (sim/bt/translator.hpp [SECTION] Freeing invalidated units).
  // Every 8th pass goes there through `rare`, a live unit on the unwritten page whose chained
  // exit still points to the unit it reached 8 passes before, long retired: collect() must cut
  // that link before it frees the unit (a dangling chain[] is a use after free under ASan, and
  // a link left in place below).
  //   8000 xor bx, bx
  //   8002 mov cx, 20000
  //   8005 mov [0x9002], cx        ; again: the imm16 of the add at 0x9000
  //   8009 test cl, 7
  //   800c jz 8011
  //   800e jmp 9000
  //   8011 jmp 9000                ; rare
  //   8014 loop 8005               ; back
  //   8016 hlt
  //   9000 add bx, 0               ; patch
  //   9004 jmp 8014
  const uint8_t loop[] = {0x31, 0xDB, 0xB9, 0x20, 0x4E, 0x89, 0x0E, 0x02, 0x90, 0xF6, 0xC1, 0x07,
                          0x74, 0x03, 0xE9, 0xEF, 0x0F, 0xE9, 0xEC, 0x0F, 0xE2, 0xEF, 0xF4};
  const uint8_t patch[] = {0x81, 0xC3, 0x00, 0x00, 0xE9, 0x0D, 0xF0};
  std::vector<uint8_t> code(0x1000 + sizeof patch, 0x90);
  std::copy(std::begin(loop), std::end(loop), code.begin());
  std::copy(std::begin(patch), std::end(patch), code.begin() + 0x1000);
  sim::SimConfig cfg;
  cfg.technique = sim::virt::Technique::kBt;
  sim::SimMachine m(cfg);
  m.load(code);
  trace::Recorder events;
  sim::SimLimits limits;
  limits.timeout_s = 30.0;
  limits.max_instructions = 5000;  // slices: the cache is looked at between them
  size_t most_held = 0, most_bytes = 0, slices = 0, stale_links = 0;
  bool links_cut = true;
  for (;; ++slices) {
    const auto r = m.run(limits, &events);
    sim::bt::Cache& c = *m.bt_cache();
    CHECK(c.retired() < std::max<uint64_t>(sim::bt::kBtCollectMin, c.stats().units / 2));
    most_held = std::max(most_held, c.units().size());
    most_bytes = std::max(most_bytes, c.bytes());
    // The exits of live units that lead to retired units: freeing must null each of them
    // (checked before anything is allocated again, which could reuse a freed unit's address).
    std::vector<sim::bt::Unit* const*> stale;
    for (const auto& u : c.units()) {
      if (!u->valid) continue;
      for (sim::bt::Unit* const& next : u->chain) {
        if (next && !next->valid) stale.push_back(&next);
      }
    }
    stale_links += stale.size();
    c.free_retired(m.cpu());
    CHECK(c.retired() == 0);
    for (sim::bt::Unit* const* slot : stale) links_cut = links_cut && *slot == nullptr;
    if (r.reason != trace::RunEndReason::kInstructionLimit) {
      CHECK(r.reason == trace::RunEndReason::kHalted);
      break;
    }
  }
  CHECK(slices > 10);
  CHECK(stale_links > 0);  // `rare`'s exit, at least
  CHECK(links_cut);
  const sim::bt::BtStats& s = m.bt_cache()->stats();
  CHECK(s.invalidations >= 19999);  // every pass but the first (the unit is not there yet)
  CHECK(s.freed >= 19000);
  CHECK(s.flushes == 0);
  // Without freeing, every one of the 20,000+ translations stayed until a flush at kBtMaxUnits.
  CHECK(most_held <= 100);
  CHECK(most_bytes <= 100 * (sizeof(sim::bt::Unit) + 13 * sizeof(sim::bt::TransInsn) +
                             13 * sizeof(sim::bt::MicroOp)));
  CHECK((m.cpu().s.gpr[x86::kRbx] & 0xFFFF) == (20000ull * 20001 / 2) % 65536);  // 1 + … + 20000
  // The freed units' counters reached the event stream before they went: each unit's last
  // bt_counts event adds up to the cache's own totals.
  std::unordered_map<uint32_t, std::pair<uint64_t, uint64_t>> last;
  for (size_t i = 0; i < events.size(); ++i) {
    if (const auto* e = events.get<trace::BtCountsEvent>(i, trace::EventType::kBtCounts)) {
      last[e->unit] = {e->executions, e->instructions};
    }
  }
  uint64_t executions = 0, instructions = 0;
  for (const auto& [unit, n] : last) {
    executions += n.first;
    instructions += n.second;
  }
  CHECK(executions == s.unit_executions);
  CHECK(instructions == s.cache_insns);
}

TEST_CASE("bt: instruction limits and breakpoints stop inside a unit", "[bt][sim]") {
  std::vector<uint8_t> code(20, 0x90);
  code.push_back(0xF4);
  auto m = backend::make_backend(backend::Kind::kSim, bt_config());
  m->load(code);
  auto r = m->run({5.0, 0, 5}, nullptr);
  CHECK(r.reason == trace::RunEndReason::kInstructionLimit);
  CHECK(r.instructions == 5);
  CHECK(m->registers().rip == 0x8005);
  backend::StopCondition bp{5.0, 0, 0};
  bp.has_breakpoint = true;
  bp.breakpoint = 0x8009;
  r = m->run(bp, nullptr);
  CHECK(r.reason == trace::RunEndReason::kBreakpoint);
  CHECK(m->registers().rip == 0x8009);
  r = m->step(nullptr);
  CHECK(r.reason == trace::RunEndReason::kStep);
  CHECK(m->registers().rip == 0x800A);
  r = m->run({5.0, 0, 0}, nullptr);
  CHECK(r.reason == trace::RunEndReason::kHalted);
}

// Audit: the translator read up to 15 bytes to the end of the code's page, which lay
// past guest memory when its size was not a whole number of pages (a trace's metadata can say
// so): a heap over-read under ASan, and translated bytes the interpreter never sees.
TEST_CASE("bt: code running to the end of memory that is not whole pages stays inside it",
          "[bt][sim][hostile]") {
  // Nops to the last byte of memory; past it the fetch reads all ones (MMIO): #UD, delivered
  // through the real-mode IVT. bt must end where the interpreter does.
  const std::vector<uint8_t> code(16, 0x90);
  auto end_state = [&](sim::virt::Technique t) {
    auto cfg = bt_config();
    cfg.technique = t;
    cfg.memory_bytes = platform::kDefaultLoadAddress + code.size();
    auto m = backend::make_backend(backend::Kind::kSim, cfg);
    m->load(code);
    const auto r = m->run({5.0, 0, 40}, nullptr);
    CHECK(r.reason == trace::RunEndReason::kInstructionLimit);
    return m->registers();
  };
  const x86::CpuState native = end_state(sim::virt::Technique::kEmulation);
  const x86::CpuState bt = end_state(sim::virt::Technique::kBt);
  CHECK(bt.rip == native.rip);
  CHECK(std::memcmp(bt.gpr, native.gpr, sizeof bt.gpr) == 0);
  CHECK(bt.seg[x86::kCs].base == native.seg[x86::kCs].base);
}

TEST_CASE("bt: every teaching guest behaves as under the interpreter", "[bt][sim]") {
  for (const auto& entry : guests::catalog()) {
    const auto g = guests::find(entry.name);
    REQUIRE(g);
    INFO(entry.name);
    auto cfg = bt_config(std::string(g->mode));
    const auto eq = backend::compare_with_native(g->image, cfg, {30.0, 100000, 50'000'000});
    INFO(eq.report);
    CHECK(eq.equal);
    // ... and really ran from the translation cache (mostly, except nano-syscall, whose loop
    // runs at CPL 3: directly).
    auto m = backend::make_backend(backend::Kind::kSim, cfg);
    m->load(g->image);
    m->run({30.0, 100000, 50'000'000}, nullptr);
    REQUIRE(m->bt_stats() != nullptr);
    if (std::string_view(entry.name) == "nano-syscall") {
      CHECK(m->bt_stats()->direct_insns > m->bt_stats()->cache_insns);
      CHECK(m->bt_stats()->cache_insns > 1000);  // the kernel's sysretq, from the cache
    } else {
      CHECK(m->bt_stats()->cache_insns > m->bt_stats()->direct_insns);
    }
  }
}

TEST_CASE("bt: every teaching guest behaves as on KVM", "[bt][cosim][kvm][sim]") {
  REQUIRE_KVM_OR_SKIP();
  for (const char* name : {"hello", "long-hello", "boot", "rings", "popek", "smc", "kernelops"}) {
    const auto g = guests::find(name);
    REQUIRE(g);
    INFO(name);
    const auto r = backend::cosimulate(g->image, bt_config(std::string(g->mode)),
                                       {30.0, 100000, 50'000'000});
    INFO(r.report);
    CHECK(r.equal);
  }
}

TEST_CASE("bt: micro-ops skip dead flags but a fault inside a unit sees every flag",
          "[bt][sim]") {
  // Real mode at 0:8000, one unit (the hlt callout ends it):
  //   8000 mov word [0x34], 0x8020 ; IVT entry 13 (#GP) -> 0:8020
  //   8006 mov word [0x36], 0
  //   800c mov ax, 0x7fff
  //   800f mov bx, 1
  //   8012 add ax, bx              ; flags dead: the cmp below writes them all
  //   8014 cmp ax, ax              ; dead too: the add below writes them all
  //   8016 add ax, bx              ; 0x8001: SF = 1, the rest 0; live: the load may fault
  //   8018 mov ecx, [0xfffe]       ; past the 64 KiB limit: #GP(0)
  //   801d cmp ax, ax
  //   801f hlt
  //   8020 pop si ; pop di ; pop dx ; hlt   ; the #GP handler: IP, CS, FLAGS of the fault
  const std::vector<uint8_t> code = {
      0xC7, 0x06, 0x34, 0x00, 0x20, 0x80, 0xC7, 0x06, 0x36, 0x00, 0x00, 0x00,
      0xB8, 0xFF, 0x7F, 0xBB, 0x01, 0x00, 0x01, 0xD8, 0x39, 0xC0, 0x01, 0xD8,
      0x66, 0x8B, 0x0E, 0xFE, 0xFF, 0x39, 0xC0, 0xF4, 0x5E, 0x5F, 0x5A, 0xF4};
  auto mp = run_until_halt(code, sim::virt::Technique::kBt);
  sim::SimMachine& m = *mp;
  const x86::CpuState& s = m.cpu().s;
  CHECK(s.gpr[x86::kRsi] == 0x8018);  // the faulting instruction
  CHECK(s.gpr[x86::kRdx] == (0x2 | x86::kSF));  // the second add's flags, not the cmp's
  CHECK(s.gpr[x86::kRcx] == 0);
  REQUIRE(m.bt_cache() != nullptr);
  const auto& units = m.bt_cache()->units();
  REQUIRE(!units.empty());
  const sim::bt::Unit& u = *units.front();
  REQUIRE(u.code.size() == 10);
  REQUIRE(u.micro.size() >= 9);
  CHECK_FALSE(u.micro[4].flags);  // add: dead
  CHECK_FALSE(u.micro[5].flags);  // cmp: dead
  CHECK(u.micro[6].flags);        // add: a fault may see them
  CHECK(u.micro[8].flags);        // cmp: the unit's exit
  CHECK(u.fast == 9);             // the hlt callout runs on the generic path
  // The same under the interpreter (registers, memory, exits).
  backend::Config bcfg = bt_config();
  const auto eq = backend::compare_with_native(code, bcfg, {5.0, 0, 0});
  INFO(eq.report);
  CHECK(eq.equal);

  // Stopped before the first add (a breakpoint), then resumed: the unit goes on from there and
  // the fault in it has the same RIP, flags, TSC and instruction count.
  sim::SimConfig cfg;
  cfg.technique = sim::virt::Technique::kBt;
  sim::SimMachine r(cfg);
  r.load(code);
  sim::SimLimits bp;
  bp.has_breakpoint = true;
  bp.breakpoint = 0x8012;
  REQUIRE(r.run(bp, nullptr).reason == trace::RunEndReason::kBreakpoint);
  REQUIRE(r.run({}, nullptr).reason == trace::RunEndReason::kHalted);
  CHECK(r.cpu().s.gpr[x86::kRsi] == 0x8018);
  CHECK(r.cpu().s.gpr[x86::kRdx] == (0x2 | x86::kSF));
  CHECK(r.cpu().s.tsc == s.tsc);
  CHECK(r.instructions() == m.instructions());
  REQUIRE(r.bt_cache()->units().size() == m.bt_cache()->units().size());
  CHECK(r.bt_cache()->units().front()->instructions == u.instructions);  // 7: up to the fault
  CHECK(r.bt_cache()->units().front()->executions == 1);
}

TEST_CASE("bt: a fault in a unit reached by the chained inner loop has the interpreter's state",
          "[bt][sim]") {
  // Real mode at 0:8000; the loop's two units chain to each other and run in the
  // chained inner loop until the load faults in the 7th pass:
  //   8000 mov word [0x34], 0x8030 ; IVT entry 13 (#GP) -> 0:8030
  //   8006 mov word [0x36], 0
  //   800c mov bx, 0xfff0
  //   800f mov cx, 8
  //   8012 add bx, 2               ; unit A
  //   8015 jmp 8017
  //   8017 mov eax, [bx]           ; unit B: bx = 0xfffe reads past the 64 KiB limit: #GP(0)
  //   801a loop 8012
  //   801c hlt
  //   8030 pop si ; pop di ; pop dx ; hlt   ; the #GP handler: IP, CS, FLAGS of the fault
  const uint8_t loop[] = {0xC7, 0x06, 0x34, 0x00, 0x30, 0x80, 0xC7, 0x06, 0x36, 0x00,
                          0x00, 0x00, 0xBB, 0xF0, 0xFF, 0xB9, 0x08, 0x00, 0x83, 0xC3,
                          0x02, 0xEB, 0x00, 0x66, 0x8B, 0x07, 0xE2, 0xF6, 0xF4};
  const uint8_t handler[] = {0x5E, 0x5F, 0x5A, 0xF4};
  std::vector<uint8_t> code(0x30 + sizeof handler, 0x90);  // nop between them
  std::copy(std::begin(loop), std::end(loop), code.begin());
  std::copy(std::begin(handler), std::end(handler), code.begin() + 0x30);
  auto mp = run_until_halt(code, sim::virt::Technique::kBt);
  sim::SimMachine& m = *mp;
  const x86::CpuState& s = m.cpu().s;
  CHECK(s.gpr[x86::kRsi] == 0x8017);  // the faulting load
  CHECK((s.gpr[x86::kRbx] & 0xFFFF) == 0xFFFE);
  CHECK((s.gpr[x86::kRcx] & 0xFFFF) == 2);  // six passes completed
  REQUIRE(m.bt_cache() != nullptr);
  CHECK(m.bt_cache()->stats().chained >= 10);  // the passes ran through chains
  // The interpreter retires as many instructions and ends with the same TSC.
  auto im = run_until_halt(code, sim::virt::Technique::kEmulation);
  CHECK(m.instructions() == im->instructions());
  CHECK(s.tsc == im->cpu().s.tsc);
  // The same under the interpreter (registers, memory, exits, instruction count).
  backend::Config bcfg = bt_config();
  const auto eq = backend::compare_with_native(code, bcfg, {5.0, 0, 0});
  INFO(eq.report);
  CHECK(eq.equal);
}

// [SECTION] Stopping inside a unit and going on (sim/bt/translator.hpp, Resuming a unit)

namespace {

// A guest run under bt to its end, either straight through or stopped after every event (as
// the visualizer's re-execution runs it) or every `step` instructions, or with a breakpoint.
struct BtRun {
  std::unique_ptr<sim::SimMachine> m;
  trace::Recorder events{};
  trace::RunEndReason end = trace::RunEndReason::kStopped;
};

std::unique_ptr<sim::SimMachine> bt_machine(const guests::Guest& g, bool record = false,
                                            sim::VmmPaging paging = sim::VmmPaging::kNative) {
  sim::SimConfig cfg;
  cfg.record_instructions = record;
  cfg.paging = paging;
  cfg.mode = *platform::parse_boot_mode(std::string(g.mode));
  cfg.technique = sim::virt::Technique::kBt;
  auto m = std::make_unique<sim::SimMachine>(cfg);
  m->load(g.image);
  return m;
}

// Runs on until the run ends for another reason than `pause`.
void run_through(BtRun& r, sim::SimLimits limits, trace::RunEndReason pause) {
  limits.timeout_s = 30;
  do {
    r.end = r.m->run(limits, &r.events).reason;
  } while (r.end == pause);
}

BtRun run_straight(const guests::Guest& g, bool record = false,
                   sim::VmmPaging paging = sim::VmmPaging::kNative) {
  BtRun r{bt_machine(g, record, paging)};
  run_through(r, {}, trace::RunEndReason::kStopped);
  return r;
}

BtRun run_stopping_after_every_event(const guests::Guest& g, bool record = false,
                                     sim::VmmPaging paging = sim::VmmPaging::kNative) {
  BtRun r{bt_machine(g, record, paging)};
  sim::SimLimits stop;
  stop.stop_on = ~(1u << static_cast<unsigned>(trace::EventType::kRunEnd));
  run_through(r, stop, trace::RunEndReason::kEventMatched);
  return r;
}

// The numbers of the events of a recording; without the run ends and the unit counts reported
// before each (`ends`: false), for a run that ended many times (instruction limits) to compare
// with one. (Numbers, not references: an instruction event's reference lives only for the
// next few Recorder::at() calls.)
std::vector<size_t> events_of(const trace::Recorder& r, bool ends) {
  std::vector<size_t> out;
  for (size_t i = 0; i < r.size(); ++i) {
    const trace::EventType type = r.at(i).type;
    if (!ends && (type == trace::EventType::kRunEnd || type == trace::EventType::kBtCounts)) {
      continue;
    }
    out.push_back(i);
  }
  return out;
}

// The two runs recorded the same events (all but host times), retired the same instructions,
// and ended with the same registers, memory, units and unit counters. `ends`: b paused only
// (breakpoints, watched events), so even its run ends and sequence numbers are a's.
void check_same_run(const BtRun& a, const BtRun& b, bool ends = true, bool seqs = true) {
  CHECK(a.end == b.end);
  const auto ea = events_of(a.events, ends);
  const auto eb = events_of(b.events, ends);
  for (size_t i = 0; i < std::min(ea.size(), eb.size()); ++i) {
    const trace::EventHeader& x = a.events.at(ea[i]);
    const trace::EventHeader& y = b.events.at(eb[i]);
    INFO("event #" << i << ": " << trace::to_string(x.type) << " at " << std::hex << x.rip
                   << ", " << trace::to_string(y.type) << " at " << y.rip);
    REQUIRE(x.type == y.type);
    REQUIRE(x.rip == y.rip);
    if (ends && seqs) CHECK(x.seq == y.seq);
    CHECK(x.flags == y.flags);
    if (x.type == trace::EventType::kRunEnd) continue;  // its duration is host time
    // Every other payload (unit numbers, counters, instruction bytes) is the same.
    std::vector<uint8_t> px(x.size), py(y.size);
    std::memcpy(px.data(), &x, x.size);
    std::memcpy(py.data(), &y, y.size);
    REQUIRE(x.size == y.size);
    CHECK(std::equal(px.begin() + sizeof(trace::EventHeader), px.end(),
                     py.begin() + sizeof(trace::EventHeader)));
  }
  REQUIRE(ea.size() == eb.size());
  CHECK(a.m->instructions() == b.m->instructions());
  const x86::CpuState& sa = a.m->cpu().s;
  const x86::CpuState& sb = b.m->cpu().s;
  CHECK(sa.rip == sb.rip);
  CHECK(sa.rflags == sb.rflags);
  CHECK(sa.tsc == sb.tsc);
  for (int i = 0; i < 16; ++i) CHECK(sa.gpr[i] == sb.gpr[i]);
  const auto ma = a.m->memory().span();
  const auto mb = b.m->memory().span();
  CHECK(std::equal(ma.begin(), ma.end(), mb.begin(), mb.end()));
  const auto& ua = a.m->bt_cache()->units();
  const auto& ub = b.m->bt_cache()->units();
  REQUIRE(ua.size() == ub.size());
  for (size_t i = 0; i < ua.size(); ++i) {
    INFO("unit " << i << " at " << std::hex << ua[i]->rip);
    CHECK(ua[i]->rip == ub[i]->rip);
    CHECK(ua[i]->insns == ub[i]->insns);
    CHECK(ua[i]->valid == ub[i]->valid);
    CHECK(ua[i]->executions == ub[i]->executions);
    CHECK(ua[i]->instructions == ub[i]->instructions);
    CHECK(ua[i]->id == ub[i]->id);
    CHECK(ua[i]->translations == ub[i]->translations);
    for (int k = 0; k < 2; ++k) {  // the same links, to the same units (by number)
      CHECK((ua[i]->chain[k] ? int64_t{ua[i]->chain[k]->id} : -1) ==
            (ub[i]->chain[k] ? int64_t{ub[i]->chain[k]->id} : -1));
    }
  }
  CHECK(a.m->bt_cache()->retired() == b.m->bt_cache()->retired());
  const sim::bt::BtStats& x = a.m->bt_cache()->stats();
  const sim::bt::BtStats& y = b.m->bt_cache()->stats();
  CHECK(x.units == y.units);
  CHECK(x.translations == y.translations);
  CHECK(x.translated_insns == y.translated_insns);
  CHECK(x.chains == y.chains);
  CHECK(x.invalidations == y.invalidations);
  CHECK(x.freed == y.freed);
  CHECK(x.flushes == y.flushes);
  CHECK(x.adaptive == y.adaptive);
  CHECK(x.callouts == y.callouts);
  CHECK(x.unit_executions == y.unit_executions);
  CHECK(x.cache_insns == y.cache_insns);
  CHECK(x.direct_insns == y.direct_insns);
}

}  // namespace

TEST_CASE("bt: a run stopped after every event translates, chains and counts as one that is not",
          "[bt][sim]") {
  for (const auto& entry : guests::catalog()) {
    const auto g = guests::find(entry.name);
    REQUIRE(g);
    INFO(entry.name);
    const BtRun straight = run_straight(*g);
    const BtRun stopped = run_stopping_after_every_event(*g);
    CHECK(straight.events.size() > 10);
    check_same_run(straight, stopped);
  }
  // With an event per instruction (as the visualizer records), and under shadow paging and EPT.
  for (const char* name : {"rings", "smc", "paging"}) {
    const auto g = guests::find(name);
    REQUIRE(g);
    INFO(name << " recording instructions");
    check_same_run(run_straight(*g, true), run_stopping_after_every_event(*g, true));
  }
  for (const auto paging : {sim::VmmPaging::kShadow, sim::VmmPaging::kEpt}) {
    const auto g = guests::find("ptes");
    REQUIRE(g);
    INFO("ptes under " << (paging == sim::VmmPaging::kShadow ? "shadow paging" : "EPT"));
    check_same_run(run_straight(*g, false, paging),
                   run_stopping_after_every_event(*g, false, paging));
  }
}

TEST_CASE("bt: single steps and a breakpoint inside a unit go on with that unit", "[bt][sim]") {
  const auto g = guests::find("kernelops");
  REQUIRE(g);
  const BtRun straight = run_straight(*g);
  REQUIRE(straight.end == trace::RunEndReason::kGuestExit);

  SECTION("a breakpoint in the middle of the longest unit, then on to the end") {
    // The first of the longest units: stop before its 3rd instruction, then continue.
    const sim::bt::Unit* big = nullptr;
    for (const auto& u : straight.m->bt_cache()->units()) {
      if (!big || u->insns > big->insns) big = u.get();
    }
    REQUIRE(big->insns >= 4);
    BtRun r{bt_machine(*g)};
    sim::SimLimits bp;
    bp.timeout_s = 30;
    bp.has_breakpoint = true;
    bp.breakpoint = big->code[2].rip;
    REQUIRE(r.m->run(bp, &r.events).reason == trace::RunEndReason::kBreakpoint);
    CHECK(r.m->cpu().s.rip == big->code[2].rip);
    const size_t units = r.m->bt_cache()->units().size();
    REQUIRE(units > 0);
    CHECK(r.m->bt_cache()->units().back()->rip == big->rip);  // stopped in that unit
    // Continuing translates nothing at the breakpoint: the next unit starts after `big`.
    sim::SimLimits rest;
    rest.max_instructions = big->insns - 2;
    REQUIRE(r.m->run(rest, &r.events).reason == trace::RunEndReason::kInstructionLimit);
    CHECK(r.m->bt_cache()->units().size() == units);
    CHECK(r.m->bt_cache()->units().back()->executions == 1);
    CHECK(r.m->bt_cache()->units().back()->instructions == big->insns);
    run_through(r, {}, trace::RunEndReason::kStopped);
    check_same_run(straight, r, false);
  }

  SECTION("single steps (the backend's step: one instruction per run)") {
    BtRun r{bt_machine(*g)};
    sim::SimLimits one;
    one.max_instructions = 1;
    run_through(r, one, trace::RunEndReason::kInstructionLimit);
    check_same_run(straight, r, false);
  }

  SECTION("instruction limits that end inside units (3, 5, 7, … instructions per run)") {
    BtRun r{bt_machine(*g)};
    sim::SimLimits limits;
    limits.timeout_s = 30;
    for (uint64_t n = 3;; n += 2) {
      limits.max_instructions = n;
      r.end = r.m->run(limits, &r.events).reason;
      if (r.end != trace::RunEndReason::kInstructionLimit) break;
    }
    check_same_run(straight, r, false);
  }
}

// [SECTION] Snapshots (sim/bt/translator.hpp [SECTION] Snapshots): a run restored from a
// snapshot goes on as the run that never went past it.

namespace {

// What the live visualizer's snapshot holds (backend.cpp's SimBackend::snapshot), on a bare
// SimMachine so that the test can look at its cache.
struct MachineSnapshot {
  x86::CpuState registers;
  std::vector<uint8_t> memory;
  platform::Devices::State devices;
  uint64_t instructions = 0;
  sim::CodeState code;
};

MachineSnapshot take_snapshot(sim::SimMachine& m) {
  const auto mem = m.memory().span();
  return {m.cpu().s, {mem.begin(), mem.end()}, m.devices().save(), m.instructions(),
          m.save_code_state()};
}

void restore_snapshot(sim::SimMachine& m, const MachineSnapshot& s) {
  std::memcpy(m.memory().data(), s.memory.data(), s.memory.size());
  m.restore_state(s.registers, s.instructions, &s.code);
  m.devices().restore(s.devices);
}

// What the cache held when a snapshot was taken (to show which cases a test reached).
struct SnapshotCover {
  size_t retired = 0;       // snapshots with retired units not freed yet
  size_t stale = 0;         // with a unit still valid whose page was written since
  size_t resume_inside = 0; // taken inside a unit (Cache::resume names an instruction)
  size_t traps = 0;         // with trap counts below the adaptive threshold
};

// Stops `make()`'s guest after `at` instructions (flushing the TLB there, as the visualizer does
// at its snapshots) and runs it on to its end: straight, and after a snapshot at `at`, a run
// past it to the end, and a restore. Both must record the same events from `at` on (sequence
// numbers aside: they go on counting) and end with the same machine and cache.
void check_restored_run(const std::function<std::unique_ptr<sim::SimMachine>()>& make,
                        uint64_t at, SnapshotCover* cover) {
  INFO("snapshot after " << at << " instructions");
  sim::SimLimits to_at;
  to_at.timeout_s = 30;
  to_at.max_instructions = at;
  BtRun straight{make()};
  trace::Recorder before;
  REQUIRE(straight.m->run(to_at, &before).reason == trace::RunEndReason::kInstructionLimit);
  straight.m->cpu().flush_tlb();
  run_through(straight, {}, trace::RunEndReason::kStopped);

  BtRun back{make()};
  REQUIRE(back.m->run(to_at, &before).reason == trace::RunEndReason::kInstructionLimit);
  back.m->cpu().flush_tlb();
  const sim::bt::Cache& cache = *back.m->bt_cache();
  cover->retired += cache.retired() > 0;
  cover->resume_inside += cache.resume.unit && cache.resume.index < cache.resume.unit->insns;
  for (const auto& u : cache.units()) {
    if (u->valid && u->generation != *u->generation_counter) {
      ++cover->stale;
      break;
    }
  }
  for (const auto& u : cache.units()) {
    const auto has_traps = [](const sim::bt::TransInsn& t) {
      return t.traps > 0 && t.traps < sim::bt::kBtAdaptiveThreshold;
    };
    if (u->valid && std::any_of(u->code.begin(), u->code.end(), has_traps)) {
      ++cover->traps;
      break;
    }
  }
  const MachineSnapshot snap = take_snapshot(*back.m);
  BtRun past{std::move(back.m)};  // on to the end: the cache translates, links, frees past `at`
  run_through(past, {}, trace::RunEndReason::kStopped);
  back.m = std::move(past.m);
  restore_snapshot(*back.m, snap);
  run_through(back, {}, trace::RunEndReason::kStopped);

  check_same_run(straight, back, true, false);
}

}  // namespace

TEST_CASE("bt: a run restored from a snapshot translates, chains and counts as one never past it",
          "[bt][sim]") {
  const auto guest_machine = [](const char* name, bool record,
                                sim::VmmPaging paging = sim::VmmPaging::kNative) {
    return [=] {
      const auto g = guests::find(name);
      REQUIRE(g);
      return bt_machine(*g, record, paging);
    };
  };
  const auto points = [](uint64_t total) {  // spread over the run, mostly inside units
    std::vector<uint64_t> at;
    for (const uint64_t k : {1, 2, 3, 5, 7, 9}) at.push_back(std::max<uint64_t>(1, total * k / 10 + k));
    return at;
  };
  const auto total_of = [](const std::function<std::unique_ptr<sim::SimMachine>()>& make) {
    BtRun r{make()};
    run_through(r, {}, trace::RunEndReason::kStopped);
    return r.m->instructions();
  };
  SnapshotCover cover;
  for (const char* name : {"kernelops", "smc", "paging", "rings"}) {
    INFO(name);
    const auto make = guest_machine(name, std::string_view(name) == "rings");
    for (const uint64_t at : points(total_of(make))) check_restored_run(make, at, &cover);
  }
  {
    INFO("ptes under shadow paging");
    const auto make = guest_machine("ptes", false, sim::VmmPaging::kShadow);
    for (const uint64_t at : points(total_of(make))) check_restored_run(make, at, &cover);
  }
  {
    // The PTE store traps under shadow paging until it is retranslated as a callout: snapshots
    // between its traps keep their counts.
    INFO("nano-ptemod under shadow paging");
    const auto make = guest_machine("nano-ptemod", false, sim::VmmPaging::kShadow);
    for (uint64_t at = 20; at < 400; at += 13) check_restored_run(make, at, &cover);
  }
  {
    // The churn of "invalidated units are freed …" above, shorter (1,000 passes): snapshots
    // hold retired units not freed yet, live units chained to them and units whose page was
    // just written.
    const uint8_t loop[] = {0x31, 0xDB, 0xB9, 0xE8, 0x03, 0x89, 0x0E, 0x02, 0x90, 0xF6, 0xC1,
                            0x07, 0x74, 0x03, 0xE9, 0xEF, 0x0F, 0xE9, 0xEC, 0x0F, 0xE2, 0xEF, 0xF4};
    const uint8_t patch[] = {0x81, 0xC3, 0x00, 0x00, 0xE9, 0x0D, 0xF0};
    std::vector<uint8_t> code(0x1000 + sizeof patch, 0x90);
    std::copy(std::begin(loop), std::end(loop), code.begin());
    std::copy(std::begin(patch), std::end(patch), code.begin() + 0x1000);
    const auto make = [&] {
      sim::SimConfig cfg;
      cfg.technique = sim::virt::Technique::kBt;
      auto m = std::make_unique<sim::SimMachine>(cfg);
      m->load(code);
      return m;
    };
    INFO("code rewritten 1,000 times");
    for (uint64_t at = 2003; at < 6000; at += 311) check_restored_run(make, at, &cover);
  }
  CHECK(cover.retired > 0);
  CHECK(cover.stale > 0);
  CHECK(cover.resume_inside > 0);
  CHECK(cover.traps > 0);
}

TEST_CASE("bt: a unit stopped in is not resumed once its code or the machine changed",
          "[bt][sim]") {
  // Real mode at 0:8000: 11 nops and hlt, one unit. Stop before the 4th nop (a breakpoint),
  // then change what comes next.
  std::vector<uint8_t> code(11, 0x90);
  code.push_back(0xF4);
  auto m = backend::make_backend(backend::Kind::kSim, bt_config());
  m->load(code);
  backend::StopCondition bp{5.0, 0, 0};
  bp.has_breakpoint = true;
  bp.breakpoint = 0x8003;
  REQUIRE(m->run(bp, nullptr).reason == trace::RunEndReason::kBreakpoint);
  REQUIRE(m->bt_stats()->translations == 1);

  SECTION("the debugger writes the unit's page: the new code runs (a new unit)") {
    const uint8_t inc_ax[] = {0x40};
    REQUIRE(m->write_memory(0x8004, inc_ax));
    CHECK(m->run({5.0, 0, 0}, nullptr).reason == trace::RunEndReason::kHalted);
    CHECK(m->registers().gpr[x86::kRax] == 1);
    CHECK(m->bt_stats()->translations == 2);
  }
  SECTION("the debugger moves RIP: the unit at the new RIP runs") {
    x86::CpuState s = m->registers();
    s.rip = 0x8008;
    m->set_registers(s);
    CHECK(m->run({5.0, 0, 0}, nullptr).reason == trace::RunEndReason::kHalted);
    CHECK(m->bt_stats()->translations == 2);
    CHECK(m->bt_stats()->cache_insns == 3 + 4);
  }
  SECTION("nothing changed: the same unit goes on") {
    CHECK(m->run({5.0, 0, 0}, nullptr).reason == trace::RunEndReason::kHalted);
    CHECK(m->bt_stats()->translations == 1);
    CHECK(m->bt_stats()->unit_executions == 1);
    CHECK(m->bt_stats()->cache_insns == 12);
  }
}

TEST_CASE("bt: 16-bit code that runs past IP 0xFFFF goes on at CS:0, as under the interpreter",
          "[bt][sim]") {
  // Real mode, loaded at 0:8000 (image offset = linear address - 0x8000):
  //   0:8000      jmp 0x0880:0xFFF0             ; CS base 0x8800
  //   0880:FFF0   16 x inc ax                   ; linear 0x187F0..0x187FF; IP wraps to 0
  //   0880:0000   hlt                           ; linear 0x8800: the interpreter's next
  //   linear 0x18800: mov ax, 0xDEAD ; hlt      ; the next byte of the page: wrong
  std::vector<uint8_t> code(0x10804, 0x90);
  const uint8_t jmp[] = {0xEA, 0xF0, 0xFF, 0x80, 0x08};
  std::copy(std::begin(jmp), std::end(jmp), code.begin());
  code[0x800] = 0xF4;
  std::fill(code.begin() + 0x107F0, code.begin() + 0x10800, 0x40);
  const uint8_t wrong[] = {0xB8, 0xAD, 0xDE, 0xF4};
  std::copy(std::begin(wrong), std::end(wrong), code.begin() + 0x10800);

  const auto check_wrapped = [](sim::SimMachine& m) {
    const x86::CpuState& s = m.cpu().s;
    CHECK((s.gpr[x86::kRax] & 0xFFFF) == 16);
    CHECK(s.seg[x86::kCs].selector == 0x0880);
    CHECK(s.rip == 1);  // after the hlt at CS:0
    REQUIRE(m.bt_cache() != nullptr);
    const auto& units = m.bt_cache()->units();
    // jmp far (a callout), IP FFF0..FFFB (12), FFFC..FFFF (4: the unit ends where IP wraps), hlt.
    REQUIRE(units.size() == 4);
    CHECK(units[1]->rip == 0xFFF0);
    CHECK(units[1]->insns == 12);
    CHECK(units[2]->rip == 0xFFFC);
    CHECK(units[2]->insns == 4);
    CHECK(units[2]->next_rip[0] == 0);
    CHECK(units[3]->rip == 0);
    CHECK(units[3]->pa == 0x8800);
    CHECK(m.bt_cache()->stats().direct_insns == 0);
  };

  SECTION("CS limit 0xFFFF") {
    auto m = run_until_halt(code, sim::virt::Technique::kBt);
    check_wrapped(*m);
    backend::Config bcfg = bt_config();
    const auto eq = backend::compare_with_native(code, bcfg, {5.0, 0, 0});
    INFO(eq.report);
    CHECK(eq.equal);
  }

  SECTION("CS limit above 0xFFFF (16-bit code, IP still wraps)") {
    // Starts at 0880:FFF0 with a 1 MiB CS limit, under bt and under the interpreter.
    std::unique_ptr<sim::SimMachine> ms[2];
    for (int k = 0; k < 2; ++k) {
      sim::SimConfig cfg;
      cfg.technique = k == 0 ? sim::virt::Technique::kBt : sim::virt::Technique::kEmulation;
      ms[k] = std::make_unique<sim::SimMachine>(cfg);
      ms[k]->load(code);
      x86::Segment& cs = ms[k]->cpu().s.seg[x86::kCs];
      cs.selector = 0x0880;
      cs.base = 0x8800;
      cs.limit = 0xFFFFF;
      ms[k]->cpu().s.rip = 0xFFF0;
      sim::SimLimits limits;
      limits.timeout_s = 5;
      CHECK(ms[k]->run(limits, nullptr).reason == trace::RunEndReason::kHalted);
    }
    CHECK((ms[0]->cpu().s.gpr[x86::kRax] & 0xFFFF) == 16);
    CHECK(ms[0]->cpu().s.gpr[x86::kRax] == ms[1]->cpu().s.gpr[x86::kRax]);
    CHECK(ms[0]->cpu().s.rip == 1);
    CHECK(ms[0]->cpu().s.rip == ms[1]->cpu().s.rip);
    CHECK(ms[0]->instructions() == ms[1]->instructions());
  }
}

TEST_CASE("bt: a trace re-executed in the visualizer has the recording's registers and memory",
          "[bt][sim][gui]") {
  // visualizer/core/trace_reexec.hpp stops after every event and checks each against the
  // recording; the recording ran straight through (stopping only at the run loop's clock
  // checks, every 4096 instructions, inside units).
  for (const char* name : {"kernelops", "smc", "paging"}) {
    const auto g = guests::find(name);
    REQUIRE(g);
    INFO(name);
    const backend::Config cfg = bt_config(std::string(g->mode));
    struct Store final : trace::EventSink {
      void on_event(const trace::EventHeader& e) override { REQUIRE(events.append(e)); }
      viz::EventStore events;
    } recording;
    auto recorder = backend::make_backend(backend::Kind::kSim, cfg);
    recorder->load(g->image);
    REQUIRE(recorder->run({30.0, 0, 0}, &recording).reason == trace::RunEndReason::kGuestExit);
    const size_t n = recording.events.size();
    REQUIRE(n > 20);

    viz::TraceReexecution reexec(std::vector<uint8_t>(g->image.begin(), g->image.end()), cfg);
    for (const size_t at : {size_t{3}, n / 4, n / 2, 3 * n / 4, n - 2, n - 1}) {
      INFO("event #" << at << " of " << n << ": " << trace::to_string(recording.events.type(at)));
      std::string why;
      const bool ok = reexec.seek(at, recording.events, &why);
      INFO(why);
      REQUIRE(ok);
      // The machine stopped only after the steps that recorded that event's type (the run
      // splits units elsewhere than the re-execution does), then after event `at`.
      auto ref = backend::make_backend(backend::Kind::kSim, cfg);
      ref->load(g->image);
      backend::StopCondition stop{30.0, 0, 0};
      const trace::EventType type = recording.events.type(at);
      if (type != trace::EventType::kRunEnd) stop.stop_on = 1u << static_cast<unsigned>(type);
      trace::Recorder seen;
      while (seen.size() <= at) {
        const auto r = ref->run(stop, &seen);
        if (r.reason != trace::RunEndReason::kEventMatched) break;
      }
      REQUIRE(seen.size() > at);
      const x86::CpuState a = reexec.machine().registers();
      const x86::CpuState b = ref->registers();
      CHECK(a.rip == b.rip);
      CHECK(a.rflags == b.rflags);
      CHECK(a.tsc == b.tsc);
      for (int i = 0; i < 16; ++i) CHECK(a.gpr[i] == b.gpr[i]);
      for (int i = 0; i < x86::kSegCount; ++i) CHECK(a.seg[i] == b.seg[i]);
      CHECK(a.cr0 == b.cr0);
      CHECK(a.cr3 == b.cr3);
      const auto ma = reexec.machine().memory();
      const auto mb = ref->memory();
      CHECK(std::equal(ma.begin(), ma.end(), mb.begin(), mb.end()));
    }
  }
}

TEST_CASE("bt: a chained successor whose page was written since is translated again",
          "[bt][sim]") {
  // Real mode at 0:8000. X jumps to B on another page; C patches B's immediate with CL, so
  // every pass adds a different number. From the second pass on, X runs its micro-ops and
  // its end goes on to the chained B only if B's page was not written since the link
  // (chain_op checks the page generation): a stale B would add the previous pass's CL.
  //   8000 mov cx, 5
  //   8003 xor bx, bx
  //   8005 X: inc ax
  //   8006 jmp 9000
  //   9000 B: add bx, 1            ; the immediate at 9002 is patched
  //   9003 jmp 8100
  //   8100 C: mov [0x9002], cl     ; a write to a page holding translated code
  //   8104 dec cx                  ; C goes on after the write (Resuming a unit), then X
  //   8105 jnz 8005
  //   8109 hlt
  std::vector<uint8_t> code(0x1006, 0x90);
  const uint8_t x[] = {0xB9, 0x05, 0x00, 0x31, 0xDB, 0x40, 0xE9, 0xF7, 0x0F};
  const uint8_t c[] = {0x88, 0x0E, 0x02, 0x90, 0x49, 0x0F, 0x85, 0xFC, 0xFE, 0xF4};
  const uint8_t b[] = {0x83, 0xC3, 0x01, 0xE9, 0xFA, 0xF0};
  std::copy(std::begin(x), std::end(x), code.begin());
  std::copy(std::begin(c), std::end(c), code.begin() + 0x100);
  std::copy(std::begin(b), std::end(b), code.begin() + 0x1000);
  auto mp = run_until_halt(code, sim::virt::Technique::kBt);
  sim::SimMachine& m = *mp;
  CHECK((m.cpu().s.gpr[x86::kRbx] & 0xFFFF) == 1 + 5 + 4 + 3 + 2);  // stale: 1 + 5 + 5 + 4 + 3
  CHECK((m.cpu().s.gpr[x86::kRax] & 0xFFFF) == 5);
  REQUIRE(m.bt_cache() != nullptr);
  const sim::bt::BtStats& st = m.bt_cache()->stats();
  CHECK(st.invalidations >= 4);  // B, once per pass after the first
  CHECK(st.chained >= 2);        // through links made in earlier passes
  auto im = run_until_halt(code, sim::virt::Technique::kEmulation);
  CHECK(m.instructions() == im->instructions());
  CHECK(m.cpu().s.tsc == im->cpu().s.tsc);
  const auto eq = backend::compare_with_native(code, bt_config(), {5.0, 0, 0});
  INFO(eq.report);
  CHECK(eq.equal);
}

TEST_CASE("bt: a chained successor is not used once its linear page maps elsewhere",
          "[bt][sim]") {
  // Long mode (the VMM's identity map in 2 MiB pages; PD at 0x3000). X jumps to B at linear
  // 0x200000; in the second pass C remaps that 2 MiB page to physical 0x400000, which holds B2,
  // and reads it (so the TLB maps it and the execute check passes). From then on X's end must
  // not run the chained B (chain_op compares the physical address the TLB gives).
  //   8000 mov rsi, b ; mov edi, 0x200000 ; movsq       ; B at physical 0x200000
  //   8011 mov rsi, b2 ; mov edi, 0x400000 ; movsq      ; B2 at physical 0x400000
  //   8022 mov ecx, 4 ; xor ebx, ebx ; xor eax, eax
  //   802b X: inc eax ; jmp 0x200000
  //   8032 C: cmp ecx, 3 ; jne 8052
  //   8037 mov qword [0x3008], 0x400083               ; PDE 1: 0x200000 -> 0x400000
  //   8043 invlpg [0x200000] ; mov edx, [0x200000]
  //   8052 dec ecx ; jnz 802b ; hlt
  //   8057 b: add ebx, 1 ; jmp 8032 (from 0x200003)   805f b2: add ebx, 100 ; jmp 8032
  const std::vector<uint8_t> code = {
      0x48, 0xbe, 0x57, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xbf, 0x00, 0x00, 0x20,
      0x00, 0x48, 0xa5, 0x48, 0xbe, 0x5f, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xbf,
      0x00, 0x00, 0x40, 0x00, 0x48, 0xa5, 0xb9, 0x04, 0x00, 0x00, 0x00, 0x31, 0xdb, 0x31,
      0xc0, 0xff, 0xc0, 0xe9, 0xce, 0x7f, 0x1f, 0x00, 0x83, 0xf9, 0x03, 0x75, 0x1b, 0x48,
      0xc7, 0x04, 0x25, 0x08, 0x30, 0x00, 0x00, 0x83, 0x00, 0x40, 0x00, 0x0f, 0x01, 0x3c,
      0x25, 0x00, 0x00, 0x20, 0x00, 0x8b, 0x14, 0x25, 0x00, 0x00, 0x20, 0x00, 0xff, 0xc9,
      0x75, 0xd5, 0xf4, 0x83, 0xc3, 0x01, 0xe9, 0x2a, 0x80, 0xe0, 0xff, 0x83, 0xc3, 0x64,
      0xe9, 0x2a, 0x80, 0xe0, 0xff};
  auto mp = run_until_halt(code, sim::virt::Technique::kBt, platform::BootMode::kLong);
  sim::SimMachine& m = *mp;
  CHECK(m.cpu().s.gpr[x86::kRbx] == 1 + 1 + 100 + 100);  // a stale B: 1 + 1 + 1 + 100
  CHECK(m.cpu().s.gpr[x86::kRax] == 4);
  REQUIRE(m.bt_cache() != nullptr);
  CHECK(m.bt_cache()->stats().chained >= 3);
  auto im = run_until_halt(code, sim::virt::Technique::kEmulation, platform::BootMode::kLong);
  CHECK(m.instructions() == im->instructions());
  CHECK(m.cpu().s.tsc == im->cpu().s.tsc);
  const auto eq = backend::compare_with_native(code, bt_config("long"), {5.0, 0, 0});
  INFO(eq.report);
  CHECK(eq.equal);
}

TEST_CASE("bt: the host ALU gives the interpreter's flags", "[bt][sim]") {
  // Long mode: for every pair (a, b) of edge values, every size (1, 2, 4, 8 bytes) and
  // add/or/and/sub/xor/cmp/test reg,reg and mem,reg, the imm8 forms, inc and dec (with CF set
  // and clear before), the flags (pushfq) and the result go to memory; bt (whose micro-ops run
  // these on the host's ALU, microops.cpp) must end with the interpreter's memory.
  const uint64_t values[] = {0,          1,           0x0F,        0x10,
                             0x7F,       0x80,        0xFF,        0x7FFF,
                             0x8000,     0xFFFF,      0x7FFFFFFF,  0x80000000,
                             0xFFFFFFFF, 0x7FFFFFFFFFFFFFFFull, 0x8000000000000000ull,
                             ~0ull,      0x123456789ABCDEF0ull};
  std::vector<uint8_t> code;
  const auto put32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) code.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  const auto bytes = [&](std::initializer_list<uint8_t> b) { code.insert(code.end(), b); };
  const auto prefix = [&](unsigned size) {
    if (size == 2) bytes({0x66});
    if (size == 8) bytes({0x48});
  };
  bytes({0xBF}); put32(0x100000);  // mov edi, 0x100000: the results
  bytes({0xBE}); const size_t table_a = code.size(); put32(0);  // mov esi, table
  const size_t outer = code.size();
  bytes({0x4C, 0x8B, 0x06});        // mov r8, [rsi]
  bytes({0xBA}); const size_t table_b = code.size(); put32(0);  // mov edx, table
  const size_t inner = code.size();
  bytes({0x4C, 0x8B, 0x0A});        // mov r9, [rdx]
  bool carry = false;
  const auto block = [&](auto op) {
    bytes({0x4C, 0x89, 0xC0, 0x4C, 0x89, 0xCB});  // mov rax, r8 ; mov rbx, r9
    bytes({0x48, 0x89, 0x47, 0x08});              // mov [rdi+8], rax
    bytes({static_cast<uint8_t>(carry ? 0xF9 : 0xF8)});  // stc / clc
    carry = !carry;
    op();
    bytes({0x9C, 0x8F, 0x07});                    // pushfq ; pop qword [rdi]
    bytes({0x48, 0x89, 0x47, 0x10});              // mov [rdi+16], rax
    bytes({0x48, 0x83, 0xC7, 0x18});              // add rdi, 24
  };
  const uint8_t alu[] = {0x00, 0x08, 0x20, 0x28, 0x30, 0x38, 0x84};  // add or and sub xor cmp test
  const uint8_t group[] = {0, 1, 4, 5, 6, 7};                       // their /n in 80/83
  for (unsigned size : {1u, 2u, 4u, 8u}) {
    const uint8_t w = size == 1 ? 0 : 1;
    for (uint8_t o : alu) {
      block([&] { prefix(size); bytes({static_cast<uint8_t>(o + w), 0xD8}); });  // op rax, rbx
      block([&] {  // op [rdi+8], rbx
        prefix(size);
        bytes({static_cast<uint8_t>(o + w), 0x5F, 0x08});
      });
    }
    for (uint8_t n : group) {
      for (uint8_t imm : {0x01, 0x7F, 0x80, 0xFF}) {  // op rax, imm8 (sign-extended)
        block([&] {
          prefix(size);
          bytes({static_cast<uint8_t>(size == 1 ? 0x80 : 0x83),
                 static_cast<uint8_t>(0xC0 | (n << 3)), imm});
        });
      }
    }
    for (uint8_t n : {0, 1}) {  // inc rax, dec rax
      block([&] {
        prefix(size);
        bytes({static_cast<uint8_t>(size == 1 ? 0xFE : 0xFF), static_cast<uint8_t>(0xC0 | (n << 3))});
      });
    }
  }
  bytes({0x48, 0x83, 0xC2, 0x08});  // add rdx, 8
  bytes({0x48, 0x81, 0xFA}); const size_t end_b = code.size(); put32(0);  // cmp rdx, end
  bytes({0x0F, 0x85}); put32(static_cast<uint32_t>(inner - (code.size() + 4)));  // jne inner
  bytes({0x48, 0x83, 0xC6, 0x08});  // add rsi, 8
  bytes({0x48, 0x81, 0xFE}); const size_t end_a = code.size(); put32(0);  // cmp rsi, end
  bytes({0x0F, 0x85}); put32(static_cast<uint32_t>(outer - (code.size() + 4)));  // jne outer
  bytes({0xF4});                    // hlt
  const uint32_t table = 0x8000 + static_cast<uint32_t>(code.size());
  const uint32_t end = table + static_cast<uint32_t>(sizeof values);
  for (uint64_t v : values) {
    for (int i = 0; i < 8; ++i) code.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  std::memcpy(&code[table_a], &table, 4);
  std::memcpy(&code[table_b], &table, 4);
  std::memcpy(&code[end_a], &end, 4);
  std::memcpy(&code[end_b], &end, 4);
  const auto eq = backend::compare_with_native(code, bt_config("long"), {30.0, 0, 0});
  INFO(eq.report);
  CHECK(eq.equal);
  // The runs did go through the micro-ops with live flags.
  auto m = run_until_halt(code, sim::virt::Technique::kBt, platform::BootMode::kLong);
  REQUIRE(m->bt_cache() != nullptr);
  CHECK(m->bt_cache()->stats().cache_insns > 100000);
}

TEST_CASE("bt: the micro-ops' accumulator always holds the register's current value",
          "[bt][sim]") {
  // Real mode, 32-bit operands. Micro-ops read a register the previous one wrote from the
  // accumulator (microops.cpp): after a mov, an ALU op, a 16- or 8-bit write that merges with
  // the old value, a shift, inc, imul, a load that crosses a page (the generic path, which
  // must pass the loaded value on), and not after a register-only instruction run by the
  // interpreter's handler (neg) or a pop. bt must end with the interpreter's registers and
  // memory.
  //   8000 mov cx, 3 ; mov dword [0x9ffe], 0x01020304   ; crosses into page 0xa000
  //   800c again: push cx ; mov eax, 0x12345678 ; add ax, 0x1111 ; mov ebx, eax ; rol ebx, 7
  //   801d imul ecx, ebx, 0x1234567 ; mov [0x9100], ecx ; inc ecx ; mov dx, cx ; xor dl, 0x5a
  //   8030 mov eax, [0x9ffe] ; add eax, edx ; neg eax ; add eax, 5 ; cmp eax, ebx ; sub ebx, eax
  //   8044 mov [0x9104], ebx ; add [0x9ffe], ebx ; mov esi, ebx ; shr esi, 3 ; add esi, esi
  //   8058 imul esi, esi ; mov [0x9108], esi ; pop cx ; loop again ; hlt
  const std::vector<uint8_t> code = {
      0xb9, 0x03, 0x00, 0x66, 0xc7, 0x06, 0xfe, 0x9f, 0x04, 0x03, 0x02, 0x01, 0x51, 0x66,
      0xb8, 0x78, 0x56, 0x34, 0x12, 0x05, 0x11, 0x11, 0x66, 0x89, 0xc3, 0x66, 0xc1, 0xc3,
      0x07, 0x66, 0x69, 0xcb, 0x67, 0x45, 0x23, 0x01, 0x66, 0x89, 0x0e, 0x00, 0x91, 0x66,
      0x41, 0x89, 0xca, 0x80, 0xf2, 0x5a, 0x66, 0xa1, 0xfe, 0x9f, 0x66, 0x01, 0xd0, 0x66,
      0xf7, 0xd8, 0x66, 0x83, 0xc0, 0x05, 0x66, 0x39, 0xd8, 0x66, 0x29, 0xc3, 0x66, 0x89,
      0x1e, 0x04, 0x91, 0x66, 0x01, 0x1e, 0xfe, 0x9f, 0x66, 0x89, 0xde, 0x66, 0xc1, 0xee,
      0x03, 0x66, 0x01, 0xf6, 0x66, 0x0f, 0xaf, 0xf6, 0x66, 0x89, 0x36, 0x08, 0x91, 0x59,
      0xe2, 0xa8, 0xf4};
  auto m = run_until_halt(code, sim::virt::Technique::kBt);
  REQUIRE(m->bt_cache() != nullptr);
  const auto& units = m->bt_cache()->units();
  size_t from_acc = 0;  // micro-ops run after one that leaves a register in the accumulator
  for (const auto& u : units) {
    for (size_t i = 1; i < u->micro.size(); ++i) {
      if (u->micro[i - 1].acc_out != x86::kNoReg) ++from_acc;
    }
  }
  CHECK(from_acc >= 10);
  auto im = run_until_halt(code, sim::virt::Technique::kEmulation);
  for (unsigned r = 0; r < 16; ++r) {
    INFO("register " << r);
    CHECK(m->cpu().s.gpr[r] == im->cpu().s.gpr[r]);
  }
  const auto eq = backend::compare_with_native(code, bt_config(), {5.0, 0, 0});
  INFO(eq.report);
  CHECK(eq.equal);
}
