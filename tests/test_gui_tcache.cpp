// The translation-cache panel's view model (visualizer/core/tcache_view.hpp), fed with the events
// of real
// binary-translation runs: smc (self-modifying code: invalidations, retranslations, an adaptive
// callout) and kernelops (callouts, in-cache emulation, chains, a hot loop). What the model
// derives from the events is checked against the translation cache's own counters
// (Backend::bt_stats()), and what it shows per unit against the translator's own record
// (sim::bt::Cache::units()).
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "backend/backend.hpp"
#include "guests/guest_catalog.hpp"
#include "sim/bt/translator.hpp"
#include "sim/sim_machine.hpp"
#include "trace/recorder.hpp"
#include "visualizer/core/model.hpp"
#include "visualizer/core/state_dump.hpp"

using namespace trapscope;
using namespace trapscope::viz;
using trace::EventType;

namespace {

struct BtRun {
  trace::Recorder events;
  sim::bt::BtStats stats;
};

// Runs a teaching guest to its end on the simulator under `technique`.
BtRun run_guest(const std::string& name, sim::virt::Technique technique) {
  const auto g = guests::find(name);
  REQUIRE(g);
  backend::Config cfg;
  cfg.mode = *platform::parse_boot_mode(std::string(g->mode));
  cfg.technique = technique;
  auto m = backend::make_backend(backend::Kind::kSim, cfg);
  m->load(g->image);
  BtRun r;
  const auto out = m->run({30.0, 0, 0}, &r.events);
  CHECK((out.reason == trace::RunEndReason::kGuestExit ||
         out.reason == trace::RunEndReason::kHalted));
  CHECK(out.exit_code == 0);
  if (m->bt_stats()) r.stats = *m->bt_stats();
  return r;
}

BtRun run_bt(const std::string& name) {
  BtRun r = run_guest(name, sim::virt::Technique::kBt);
  CHECK(r.stats.translations > 0);
  return r;
}

void feed(Model& m, const trace::Recorder& events, size_t n = SIZE_MAX) {
  for (size_t i = 0; i < std::min(n, events.size()); ++i) m.append(events.at(i));
}

size_t count(const trace::Recorder& r, EventType t) {
  size_t n = 0;
  for (size_t i = 0; i < r.size(); ++i) n += r.at(i).type == t;
  return n;
}

// What the model derived from the events equals the translation cache's own counters.
void check_counts(const TranslationCacheView& tc, const sim::bt::BtStats& stats) {
  const TcTotals& t = tc.totals();
  CHECK(t.translations == stats.translations);
  CHECK(t.translated_insns == stats.translated_insns);
  CHECK(t.callouts == stats.callouts);
  // Executions come from the bt_counts events at the run's end: every unit entry, chained or
  // looked up, and every instruction executed from the cache.
  CHECK(t.count_reports > 0);
  CHECK(t.executions == stats.unit_executions);
  CHECK(t.instructions == stats.cache_insns);
}

// Every edge shows up as a successor of its source block and a predecessor of its target.
void check_edges(const TranslationCacheView& tc) {
  for (const TcEdge& e : tc.edges()) {
    const uint32_t from = tc.units()[e.from].block, to = tc.units()[e.to].block;
    const auto succ = tc.successors(from);
    const auto pred = tc.predecessors(to);
    CHECK(std::any_of(succ.begin(), succ.end(),
                      [&](const auto& n) { return n.block == to && n.taken == e.taken; }));
    CHECK(std::any_of(pred.begin(), pred.end(),
                      [&](const auto& n) { return n.block == from && n.taken == e.taken; }));
  }
}

}  // namespace

TEST_CASE("tcache model: kernelops under bt, counts match the translation cache's own",
          "[gui][tcache][bt]") {
  const BtRun run = run_bt("kernelops");
  Model m;
  feed(m, run.events);
  const TranslationCacheView& tc = m.tcache();
  const TcTotals& t = tc.totals();

  check_counts(tc, run.stats);
  CHECK(t.ident == run.stats.ident);
  CHECK(t.non_ident == run.stats.non_ident);
  CHECK(t.chains == run.stats.chains);
  CHECK(tc.edges().size() == run.stats.chains);
  CHECK(t.executions == run.stats.chained + run.stats.lookups);
  CHECK(tc.blocks().size() == run.stats.units);  // no retranslation in kernelops
  check_edges(tc);

  // The hottest block by executions leads the sorted table; sorting is a total order.
  const auto rows = sorted_blocks(tc, TcColumn::kExecutions, true);
  REQUIRE(rows.size() == tc.blocks().size());
  for (size_t i = 1; i < rows.size(); ++i) {
    CHECK(tc.blocks()[rows[i - 1]].executions >= tc.blocks()[rows[i]].executions);
  }
  CHECK(tc.blocks()[rows[0]].executions >= 10000);  // kernelops loops 20,000 times
  const auto by_rip = sorted_blocks(tc, TcColumn::kRip, false);
  CHECK(tc.blocks()[by_rip[0]].rip == 0x8000);

  // The entry block, side by side: mov/xor/mov IDENT, cli pushfd sti popfd and a selector read
  // emulated in the cache, mov eax, cr0 a callout (kernelops.asm).
  const auto entry = tc.block_at(0x8000);
  REQUIRE(entry);
  const auto lines = tc.lines(tc.blocks()[*entry].newest, m.events());
  REQUIRE(lines.size() == 9);
  CHECK(lines[0].kind_name == "IDENT");
  CHECK(lines[0].guest == "mov esp, 0xA000");
  CHECK(lines[0].bytes == "bc 00 a0 00 00");
  CHECK(lines[0].why.empty());
  CHECK(lines[3].guest == "cli");
  CHECK(lines[3].kind == trace::BtKind::kInCache);
  CHECK(lines[3].why.find("IOPL") != std::string::npos);
  CHECK(lines[8].kind == trace::BtKind::kCallout);
  CHECK(lines[8].guest.find("cr0") != std::string::npos);
  CHECK_FALSE(lines[8].why.empty());
  uint64_t rip = 0x8000;
  for (const TcLine& l : lines) {  // contiguous guest code
    CHECK(l.rip == rip);
    rip += l.length;
  }
  CHECK(rip == 0x8000u + tc.blocks()[*entry].guest_bytes);
  // Its fall-through successor is the mov cr0, eax unit, chained at the first pass.
  const auto succ = tc.successors(*entry);
  REQUIRE(succ.size() == 1);
  CHECK(tc.blocks()[succ[0].block].rip == 0x8017);
  CHECK_FALSE(succ[0].taken);

  // The state dump says the same.
  m.tcache().select(entry);
  const auto j = dump_tcache(m);
  CHECK(j["executions"] == run.stats.unit_executions);
  CHECK(j["selected"]["rip"] == 0x8000);
  CHECK(j["selected"]["lines"].size() == 9);
  CHECK(j["selected"]["successors"][0]["rip"] == 0x8017);
  CHECK(j["hot"][0]["executions"] == tc.blocks()[rows[0]].executions);
}

TEST_CASE("tcache model: smc under bt, invalidations drop units and retranslate them",
          "[gui][tcache][bt]") {
  const BtRun run = run_bt("smc");
  Model m;
  feed(m, run.events);
  const TranslationCacheView& tc = m.tcache();
  const TcTotals& t = tc.totals();
  check_counts(tc, run.stats);
  CHECK(tc.invalidations().size() == count(run.events, EventType::kBtInvalidate));
  CHECK(tc.invalidations().size() >= 99);
  CHECK(t.invalidated_units == run.stats.invalidations);
  CHECK(t.adaptive_callouts >= 90);
  check_edges(tc);

  // The patched instruction's block was translated again after each invalidation.
  uint32_t most = 0;
  size_t dropped = 0;
  for (const TcBlock& b : tc.blocks()) most = std::max(most, b.translations);
  for (const TcUnit& u : tc.units()) dropped += u.dropped_by >= 0;
  CHECK(most >= 99);
  CHECK(dropped > 0);
  // Blocks add up their translations' counts.
  uint64_t sum = 0;
  for (const TcBlock& b : tc.blocks()) {
    uint64_t units = 0;
    for (uint32_t u : tc.units_of(static_cast<uint32_t>(&b - tc.blocks().data()))) {
      units += tc.units()[u].executions;
    }
    CHECK(units == b.executions);
    sum += b.executions;
  }
  CHECK(sum == t.executions);
  // The adaptive retranslation shows as such, with why.
  bool adaptive_line = false;
  for (uint32_t u = 0; u < tc.units().size() && !adaptive_line; ++u) {
    for (const TcLine& l : tc.lines(u, m.events())) {
      if (l.kind == trace::BtKind::kAdaptive) {
        adaptive_line = true;
        CHECK(l.kind_name == "adaptive-callout");
        CHECK(l.why.find("trapped") != std::string::npos);
        CHECK(l.guest.find("mov") == 0);  // mov [patch + 2], cx
      }
    }
  }
  CHECK(adaptive_line);
}

TEST_CASE("tcache model: truncation rebuilds exactly what the remaining events say",
          "[gui][tcache][bt]") {
  const BtRun run = run_bt("smc");
  const size_t half = run.events.size() / 2;
  Model whole, part;
  feed(whole, run.events);
  feed(part, run.events, half);
  whole.tcache().select(whole.tcache().block_at(0x8000));
  whole.truncate(half);
  const TranslationCacheView &a = whole.tcache(), &b = part.tcache();
  CHECK(a.units().size() == b.units().size());
  CHECK(a.blocks().size() == b.blocks().size());
  CHECK(a.edges().size() == b.edges().size());
  CHECK(a.invalidations().size() == b.invalidations().size());
  CHECK(a.totals().translations == b.totals().translations);
  CHECK(a.totals().callouts == b.totals().callouts);
  CHECK(a.totals().executions == b.totals().executions);
  REQUIRE(a.selected());
  CHECK(a.blocks()[*a.selected()].rip == 0x8000);  // the selection survives
  whole.truncate(0);
  CHECK(whole.tcache().empty());
  CHECK_FALSE(whole.tcache().selected());
}

TEST_CASE("tcache model: a run without binary translation has no translation cache",
          "[gui][tcache]") {
  const BtRun run = run_guest("hello", sim::virt::Technique::kEmulation);
  REQUIRE(run.events.size() > 0);
  Model m;
  feed(m, run.events);
  CHECK(m.tcache().empty());
  CHECK(count(run.events, EventType::kBtCounts) == 0);
  CHECK(dump_tcache(m)["selected"].is_null());
}

// The view shows the translator's record, not a decision of its own: for every unit the
// translator holds at the end of smc, the view's lines have the RIPs, kinds and reasons the
// translator recorded, and the unit its traps and adaptive threshold. The threshold is the
// translator's setting (sim::SimConfig::bt_adaptive_threshold): with 2 or 7 the view says 2 or
// 7 (it said "4 times" whatever the translator used).
TEST_CASE("tcache view: shows what the translator recorded, whatever its adaptive threshold",
          "[gui][tcache][bt]") {
  const auto g = guests::find("smc");
  REQUIRE(g);
  for (const uint32_t setting : {0u, 2u, 7u}) {
    const uint32_t threshold = setting ? setting : sim::bt::kBtAdaptiveThreshold;
    INFO("adaptive threshold " << threshold);
    sim::SimConfig cfg;
    cfg.mode = *platform::parse_boot_mode(std::string(g->mode));
    cfg.technique = sim::virt::Technique::kBt;
    cfg.bt_adaptive_threshold = setting;
    sim::SimMachine machine(cfg);
    machine.load(g->image);
    trace::Recorder events;
    sim::SimLimits limits;
    limits.timeout_s = 30.0;
    CHECK(machine.run(limits, &events).reason == trace::RunEndReason::kGuestExit);
    const sim::bt::Cache& cache = *machine.bt_cache();
    REQUIRE(cache.adaptive_threshold == threshold);
    CHECK(cache.stats().adaptive > 0);

    Model m;
    feed(m, events);
    const TranslationCacheView& tc = m.tcache();
    size_t compared = 0;
    for (const auto& u : cache.units()) {
      const auto vi = tc.unit_by_id(u->id);
      REQUIRE(vi);
      const TcUnit& v = tc.units()[*vi];
      CHECK(v.adaptive_threshold == threshold);
      CHECK(v.traps == u->traps);
      const auto lines = tc.lines(*vi, m.events());
      REQUIRE(lines.size() == u->code.size());
      for (size_t k = 0; k < lines.size(); ++k) {
        const sim::bt::TransInsn& t = u->code[k];
        CHECK(lines[k].rip == t.rip);
        CHECK(lines[k].kind == t.kind);
        CHECK_THAT(lines[k].why, Catch::Contains(std::string(t.reason)));
        ++compared;
      }
    }
    CHECK(compared > 0);
    // Every adaptive callout the view shows names the translator's threshold; some unit trapped.
    size_t adaptive = 0;
    for (uint32_t u = 0; u < tc.units().size(); ++u) {
      for (const TcLine& l : tc.lines(u, m.events())) {
        if (l.kind != trace::BtKind::kAdaptive) continue;
        ++adaptive;
        CHECK_THAT(l.why, Catch::Contains("threshold: " + std::to_string(threshold) + " traps"));
      }
    }
    CHECK(adaptive > 0);
    CHECK(tc.totals().traps >= threshold);
  }
}
