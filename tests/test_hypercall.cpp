// Hypercall interface (platform/hypercall.hpp): every bad-argument class is refused with its error
// code in the guest's eax, recorded as a kHypercall event, and leaves guest memory untouched —
// on the simulator and on KVM (the same validation code); PV guests equal their twins.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include "backend/backend.hpp"
#include "guests/guest_catalog.hpp"
#include "x86/disasm.hpp"
#include "support.hpp"
#include "platform/hypercall.hpp"

#include <nlohmann/json.hpp>

using namespace trapscope;

namespace {

// Collects the hypercall records.
struct HypercallSink final : trace::EventSink {
  void on_event(const trace::EventHeader& h) override {
    if (h.type == trace::EventType::kVmExit && (h.flags & trace::kExitFlagHypercallRecord)) {
      records.push_back(reinterpret_cast<const trace::VmExitEvent&>(h).payload.hypercall);
    }
  }
  std::vector<trace::ExitHypercallData> records;
};

// Real-mode code: mov eax, nr; mov ebx, a1; mov ecx, a2; mov dx, 0x510; in eax, dx; hlt.
std::vector<uint8_t> doorbell(uint32_t nr, uint32_t a1, uint32_t a2) {
  std::vector<uint8_t> c;
  auto mov32 = [&](uint8_t op, uint32_t v) {
    c.push_back(0x66);
    c.push_back(op);
    for (int i = 0; i < 4; ++i) c.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  mov32(0xB8, nr);
  mov32(0xBB, a1);
  mov32(0xB9, a2);
  c.insert(c.end(), {0xBA, 0x10, 0x05, 0x66, 0xED, 0xF4});
  return c;
}

struct Case {
  const char* what;
  uint32_t nr, a1, a2;
  int32_t want;
  std::vector<std::pair<uint64_t, uint64_t>> pairs;  // mmu_update pairs, placed at 0x20000
};

constexpr uint64_t kMem = 16ull << 20;

std::vector<Case> bad_cases() {
  using platform::Hypercall;
  auto n = [](Hypercall h) { return static_cast<uint32_t>(h); };
  return {
      {"unknown call number", 99, 0, 0, platform::kHcEnosys, {}},
      {"console buffer outside memory", n(Hypercall::kConsoleWrite), kMem - 4, 16,
       platform::kHcEfault, {}},
      {"console length over the bound", n(Hypercall::kConsoleWrite), 0x9000, 4097,
       platform::kHcE2big, {}},
      {"mmu_update count over the bound", n(Hypercall::kMmuUpdate), 0x20000, 2049,
       platform::kHcE2big, {}},
      {"mmu_update pair list outside memory", n(Hypercall::kMmuUpdate), kMem - 16, 2,
       platform::kHcEfault, {}},
      {"mmu_update PTE not 8-byte aligned", n(Hypercall::kMmuUpdate), 0x20000, 2,
       platform::kHcEinval, {{0x30000, 0x1003}, {0x30004, 0x2003}}},
      {"mmu_update PTE outside memory", n(Hypercall::kMmuUpdate), 0x20000, 1,
       platform::kHcEfault, {{kMem, 0x1003}}},
      {"mmu_update maps a frame outside memory", n(Hypercall::kMmuUpdate), 0x20000, 1,
       platform::kHcEfault, {{0x30000, kMem | 3}}},
      {"set_cr3 not page aligned", n(Hypercall::kSetCr3), 0x20008, 0, platform::kHcEinval, {}},
      {"set_cr3 outside memory", n(Hypercall::kSetCr3), kMem, 0, platform::kHcEfault, {}},
      {"shared info not page aligned", n(Hypercall::kSetSharedInfo), 0x30010, 0,
       platform::kHcEinval, {}},
      {"shared info outside memory", n(Hypercall::kSetSharedInfo), 0xFFFFF000u, 0,
       platform::kHcEfault, {}},
  };
}

void check_bad_calls(backend::Kind kind) {
  for (const Case& c : bad_cases()) {
    SECTION(c.what) {
      backend::Config cfg;
      cfg.memory_bytes = kMem;
      auto m = backend::make_backend(kind, cfg);
      const auto code = doorbell(c.nr, c.a1, c.a2);
      m->load(code);
      for (size_t i = 0; i < c.pairs.size(); ++i) {
        uint64_t pair[2] = {c.pairs[i].first, c.pairs[i].second};
        REQUIRE(m->write_memory(0x20000 + i * 16, {reinterpret_cast<uint8_t*>(pair), 16}));
      }
      const std::vector<uint8_t> before(m->memory().begin(), m->memory().end());
      HypercallSink sink;
      const auto r = m->run({}, &sink);
      CHECK(r.reason == trace::RunEndReason::kHalted);
      CHECK(static_cast<int32_t>(m->registers().gpr[0]) == c.want);
      REQUIRE(sink.records.size() == 1);
      CHECK(sink.records[0].nr == c.nr);
      CHECK(sink.records[0].result == c.want);
      CHECK(m->devices().hypercall.errors() == 1);
      CHECK(m->devices().console.text().empty());
      const std::vector<uint8_t> after(m->memory().begin(), m->memory().end());
      CHECK(before == after);
    }
  }
}

struct Ran {
  backend::RunOutcome outcome;
  std::string console;
};

Ran run_guest(const char* name, backend::Kind kind, sim::virt::Technique t) {
  const auto g = guests::find(name);
  REQUIRE(g);
  backend::Config cfg;
  cfg.mode = g->mode == "long" ? platform::BootMode::kLong : platform::BootMode::kReal;
  if (kind == backend::Kind::kSim) cfg.technique = t;
  auto m = backend::make_backend(kind, cfg);
  m->load(g->image);
  const auto r = m->run({}, nullptr);
  return {r, m->devices().console.text()};
}

}  // namespace

TEST_CASE("hypercall: every bad argument is refused on the simulator", "[hypercall]") {
  check_bad_calls(backend::Kind::kSim);
}

TEST_CASE("hypercall: every bad argument is refused on KVM", "[hypercall][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  check_bad_calls(backend::Kind::kKvm);
}

// The checks that a 32-bit real-mode guest cannot reach: 64-bit address overflow.
TEST_CASE("hypercall: address + length overflow is refused", "[hypercall]") {
  struct Host final : platform::HypercallHost {
    platform::HypercallArgs a;
    std::vector<uint8_t> mem = std::vector<uint8_t>(1 << 16);
    platform::HypercallArgs args() override { return a; }
    std::span<uint8_t> guest_memory() override { return mem; }
    void pte_written(uint64_t) override { FAIL("no PTE may be written"); }
    void flush_tlb() override {}
    void set_cr3(uint64_t) override { FAIL("no CR3 load"); }
  } host;
  platform::ConsoleOutput console;
  uint64_t shared = 0;
  host.a = {1, ~0ull - 3, 8, 0};
  CHECK(platform::execute_hypercall(host, console, &shared).result == platform::kHcEfault);
  host.a = {2, ~0ull - 15, 1, 0};
  CHECK(platform::execute_hypercall(host, console, &shared).result == platform::kHcEfault);
  host.a = {2, 16, 1ull << 60, 0};  // count * 16 would wrap
  CHECK(platform::execute_hypercall(host, console, &shared).result == platform::kHcE2big);
  host.a = {4, ~0ull & ~0xFFFull, 0, 0};
  CHECK(platform::execute_hypercall(host, console, &shared).result == platform::kHcEfault);
  CHECK(shared == 0);
  CHECK(console.text().empty());
}

// pair 0's PTE is pair 1's PTE-address field, so applying pair 0 rewrites pair 1
// after validation. The call must apply what it validated: pair 1 goes to 0x3000, and nothing
// is written past guest memory (the 64 canary bytes after the span it is given).
TEST_CASE("hypercall: mmu_update applies the pair list it validated (no second read)",
          "[hypercall][hostile]") {
  constexpr uint64_t kSize = 1 << 16;
  struct Host final : platform::HypercallHost {
    std::vector<uint8_t> backing = std::vector<uint8_t>(kSize + 64, 0xCC);
    std::vector<uint64_t> written;
    platform::HypercallArgs args() override { return {2, 0x1000, 2, 0}; }
    std::span<uint8_t> guest_memory() override { return {backing.data(), kSize}; }
    void pte_written(uint64_t gpa) override { written.push_back(gpa); }
    void flush_tlb() override {}
    void set_cr3(uint64_t) override {}
  } host;
  const uint64_t pairs[4] = {0x1010, kSize, 0x3000, 0x4141414141414140};
  std::memcpy(host.backing.data() + 0x1000, pairs, sizeof pairs);
  platform::ConsoleOutput console;
  uint64_t shared = 0;
  const auto r = platform::execute_hypercall(host, console, &shared);
  CHECK(r.result == platform::kHcOk);
  CHECK(host.written == std::vector<uint64_t>{0x1010, 0x3000});
  uint64_t v = 0;
  std::memcpy(&v, host.backing.data() + 0x3000, 8);
  CHECK(v == 0x4141414141414140);
  std::memcpy(&v, host.backing.data() + 0x1010, 8);
  CHECK(v == kSize);
  CHECK(std::all_of(host.backing.begin() + kSize, host.backing.end(),
                    [](uint8_t b) { return b == 0xCC; }));
}

TEST_CASE("hypercall: mmu_update applies a valid batch all-or-nothing", "[hypercall]") {
  backend::Config cfg;
  auto m = backend::make_backend(backend::Kind::kSim, cfg);
  m->load(doorbell(2, 0x20000, 2));
  uint64_t pairs[4] = {0x30000, 0x1003, 0x30008, 0x2003};
  REQUIRE(m->write_memory(0x20000, {reinterpret_cast<uint8_t*>(pairs), 32}));
  m->run({}, nullptr);
  CHECK(m->registers().gpr[0] == 0);
  uint64_t pte[2];
  std::memcpy(pte, m->memory().data() + 0x30000, 16);
  CHECK(pte[0] == 0x1003);
  CHECK(pte[1] == 0x2003);
}

TEST_CASE("PV guests equal their twins, with fewer exits", "[hypercall][pv]") {
  using sim::virt::Technique;
  const Ran hello = run_guest("hello", backend::Kind::kSim, Technique::kVt);
  const Ran pv_hello = run_guest("pv-hello", backend::Kind::kSim, Technique::kPv);
  CHECK(pv_hello.console == hello.console);
  CHECK(pv_hello.outcome.reason == hello.outcome.reason);
  CHECK(hello.outcome.exits == hello.console.size() + 1);  // one per byte + hlt
  CHECK(pv_hello.outcome.exits == 2);                      // one per buffer + halt

  // ptes; paging, whose #PF handler maps pages with mmu_update in pv-paging.
  for (auto [plain, pv] : {std::pair{"ptes", "pv-ptes"}, std::pair{"paging", "pv-paging"}}) {
    INFO(pv);
    const Ran ptes = run_guest(plain, backend::Kind::kSim, Technique::kVt);
    const Ran pv_ptes = run_guest(pv, backend::Kind::kSim, Technique::kPv);
    CHECK(ptes.outcome.reason == trace::RunEndReason::kGuestExit);
    CHECK(ptes.outcome.exit_code == 0);
    CHECK(pv_ptes.outcome.reason == ptes.outcome.reason);
    CHECK(pv_ptes.outcome.exit_code == ptes.outcome.exit_code);
    CHECK(pv_ptes.console == ptes.console);
    CHECK(pv_ptes.outcome.exits < ptes.outcome.exits);
  }
  // The nanobenchmark twins do the same work (the same console and end), not fewer exits.
  for (auto [plain, pv] : {std::pair{"nano-cli", "pv-nano-cli"},
                           std::pair{"nano-ptemod", "pv-nano-ptemod"}}) {
    INFO(pv);
    const Ran a = run_guest(plain, backend::Kind::kSim, Technique::kVt);
    const Ran b = run_guest(pv, backend::Kind::kSim, Technique::kPv);
    CHECK(a.outcome.reason == trace::RunEndReason::kGuestExit);
    CHECK(b.outcome.reason == a.outcome.reason);
    CHECK(b.outcome.exit_code == 0);
    CHECK(b.console == a.console);
  }
}

namespace {
struct ShadowRun {
  backend::RunOutcome outcome;
  sim::PagingStats stats;
  x86::CpuState registers;
  std::vector<uint8_t> memory;
};
// A guest on the simulator under --technique pv with `paging`; `iterations` patches a
// nanobenchmark's count (its header, guests/include/nano_body.inc: offset 6).
ShadowRun run_pv(const char* name, sim::VmmPaging paging, std::optional<uint32_t> iterations = {}) {
  const auto g = guests::find(name);
  REQUIRE(g);
  std::vector<uint8_t> image(g->image.begin(), g->image.end());
  if (iterations) std::memcpy(image.data() + 6, &*iterations, 4);
  backend::Config cfg;
  cfg.mode = g->mode == "long" ? platform::BootMode::kLong : platform::BootMode::kReal;
  cfg.technique = sim::virt::Technique::kPv;
  cfg.paging = paging;
  auto m = backend::make_backend(backend::Kind::kSim, cfg);
  m->load(image);
  ShadowRun r{m->run({30.0, 0, 0}, nullptr), {}, m->registers(), {}};
  REQUIRE(m->paging_counters());
  r.stats = m->paging_counters()->stats;
  r.memory.assign(m->memory().begin(), m->memory().end());
  return r;
}
}  // namespace

// A VMM that shadows a PV guest's tables updates (here: invalidates) the shadow entries of the
// PTEs an mmu_update writes, as INVLPG does for one page, instead of dropping every shadow with
// the call's TLB flush: that made every page the guest touched next a hidden page fault (4 per
// iteration of pv-nano-ptemod: its code, stack, update list and the re-pointed page).
TEST_CASE("hypercall: mmu_update under shadow paging resynchronizes only the written table",
          "[hypercall][pv][paging][shadow]") {
  // Per iteration = (run with 2n − run with n) / n: the set-up and the pages first touched in the
  // loop (its update list) cancel out.
  const uint32_t n = 100;
  const ShadowRun with = run_pv("pv-nano-ptemod", sim::VmmPaging::kShadow, 2 * n);
  const ShadowRun without = run_pv("pv-nano-ptemod", sim::VmmPaging::kShadow, n);
  REQUIRE(with.outcome.reason == trace::RunEndReason::kGuestExit);
  REQUIRE(with.outcome.exit_code == 0);
  // Exactly one hidden fault per iteration: the read of the re-pointed page refills the one
  // shadow entry the update dropped.
  CHECK(with.stats.hidden_faults - without.stats.hidden_faults == n);
  CHECK(with.stats.shadow_dropped - without.stats.shadow_dropped == n);
  // Every update but the first (made before the read shadows the table) wrote a shadowed table;
  // no write trapped.
  CHECK(with.stats.vmm_table_writes == 2 * n - 1);
  CHECK(with.stats.pt_write_traps == 0);
  // The guest sees what it sees without a VMM: registers and memory equal the native run.
  for (const char* g : {"pv-nano-ptemod", "pv-ptes", "pv-paging"}) {
    INFO(g);
    const ShadowRun shadow = run_pv(g, sim::VmmPaging::kShadow);
    const ShadowRun native = run_pv(g, sim::VmmPaging::kNative);
    CHECK(shadow.outcome.reason == native.outcome.reason);
    CHECK(shadow.outcome.exit_code == native.outcome.exit_code);
    CHECK(shadow.outcome.instructions == native.outcome.instructions);
    CHECK(std::memcmp(shadow.registers.gpr, native.registers.gpr, sizeof native.registers.gpr) == 0);
    CHECK(shadow.registers.rip == native.registers.rip);
    const bool same_memory = shadow.memory == native.memory;  // (not printed: 16 MiB)
    CHECK(same_memory);
    CHECK(shadow.stats.vmm_table_writes > 0);
  }
}

TEST_CASE("PV guests equal their twins on KVM", "[hypercall][pv][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  using sim::virt::Technique;
  for (auto [plain, pv] : {std::pair{"hello", "pv-hello"}, std::pair{"ptes", "pv-ptes"},
                           std::pair{"paging", "pv-paging"}}) {
    INFO(pv);
    const Ran a = run_guest(plain, backend::Kind::kKvm, Technique::kEmulation);
    const Ran b = run_guest(pv, backend::Kind::kKvm, Technique::kEmulation);
    CHECK(b.console == a.console);
    CHECK(b.outcome.reason == a.outcome.reason);
    CHECK(b.outcome.exit_code == a.outcome.exit_code);
    CHECK(b.outcome.exits < a.outcome.exits);
  }
}

// A hypercall record carries the doorbell's instruction (the I/O exit's RIP and bytes) on both
// backends; on KVM it used to print "(instruction bytes not readable)".
TEST_CASE("hypercall records carry the doorbell instruction on both backends", "[hypercall][kvm]") {
  struct Exits final : trace::EventSink {
    void on_event(const trace::EventHeader& h) override {
      if (h.type == trace::EventType::kVmExit) {
        events.push_back(reinterpret_cast<const trace::VmExitEvent&>(h));
      }
    }
    std::vector<trace::VmExitEvent> events;
  };
  std::vector<backend::Kind> kinds = {backend::Kind::kSim};
  std::string why;
  if (test::kvm_usable(&why)) kinds.push_back(backend::Kind::kKvm);
  const auto g = guests::find("pv-hello");
  REQUIRE(g);
  for (const auto kind : kinds) {
    INFO(backend::to_string(kind));
    backend::Config cfg;
    cfg.technique = sim::virt::Technique::kPv;
    auto m = backend::make_backend(kind, cfg);
    m->load(g->image);
    Exits sink;
    m->run({}, &sink);
    size_t records = 0;
    for (size_t i = 1; i < sink.events.size(); ++i) {
      const auto& e = sink.events[i];
      if (!(e.header.flags & trace::kExitFlagHypercallRecord)) continue;
      ++records;
      const auto& io = sink.events[i - 1];
      CHECK(x86::disassemble({e.insn, e.insn_len}, e.header.cpu_mode, e.header.rip).text ==
            "in eax, dx");
      CHECK(e.insn_len == io.insn_len);
      CHECK(std::memcmp(e.insn, io.insn, e.insn_len) == 0);
      CHECK(e.header.rip == io.header.rip);
    }
    CHECK(records == 2);
  }
}
