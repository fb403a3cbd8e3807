#include "visualizer/core/tcache_view.hpp"

#include <algorithm>
#include <cstdio>

#include "sim/bt/kind_reason.hpp"
#include "x86/disasm.hpp"
#include "x86/classify.hpp"
#include "visualizer/core/describe.hpp"

namespace trapscope::viz {

using trace::BtKind;
using trace::EventType;

namespace {

template <typename T>
const T* as(const trace::EventHeader& e, EventType type) {
  return e.type == type && e.size == sizeof(T) ? reinterpret_cast<const T*>(&e) : nullptr;
}

BtKind kind_of(uint8_t k) {
  return k < static_cast<uint8_t>(BtKind::kMax) ? static_cast<BtKind>(k) : BtKind::kMax;
}

}  // namespace

std::string_view bt_kind_effect(BtKind kind) {
  switch (kind) {
    case BtKind::kIdent: return "copied unchanged";
    case BtKind::kPcRelative: return "the same operation on an absolute address";
    case BtKind::kDirectBranch: return "exits to the translated successors (chained)";
    case BtKind::kIndirectBranch: return "exit looks the target up in the translation cache";
    case BtKind::kInCache: return "emulated inside the unit on the virtual CPU";
    case BtKind::kCallout: return "callout: the unit ends and the VMM emulates it";
    case BtKind::kAdaptive: return "callout (adaptive: retranslated after trapping often)";
    case BtKind::kMax: break;
  }
  return "?";
}

// [SECTION] Events

void TranslationCacheView::on_event(size_t index, const trace::EventHeader& e) {
  const auto i = static_cast<uint32_t>(index);
  if (const auto* t = as<trace::BtTranslateEvent>(e, EventType::kBtTranslate)) {
    const Key key{e.rip, t->guest_pa, e.cpu_mode};
    auto [it, fresh] = by_key_.try_emplace(key, static_cast<uint32_t>(blocks_.size()));
    if (fresh) {
      TcBlock b;
      b.rip = e.rip;
      b.pa = t->guest_pa;
      b.mode = e.cpu_mode;
      blocks_.push_back(b);
    }
    const uint32_t bi = it->second;
    TcBlock& b = blocks_[bi];
    if (b.translations > 0 && units_[b.newest].live) drop(b.newest, -1);  // replaced
    TcUnit u;
    u.id = t->unit;
    u.block = bi;
    u.event = i;
    u.count = std::min<uint8_t>(t->count, trace::kBtMaxUnitInsns);
    u.generation = t->generation;
    u.adaptive_threshold = t->adaptive_threshold;
    for (unsigned k = 0; k < u.count; ++k) u.ident += t->kind[k] == 0;
    const auto ui = static_cast<uint32_t>(units_.size());
    units_.push_back(u);
    by_id_[u.id] = ui;
    by_rip_[e.rip] = bi;
    by_page_[t->guest_pa >> 12].push_back(ui);
    b.guest_bytes = t->guest_bytes;
    b.count = u.count;
    b.newest = ui;
    b.live = true;
    ++b.translations;
    ++totals_.translations;
    totals_.translated_insns += u.count;
    totals_.ident += u.ident;
    totals_.non_ident += u.count - u.ident;
  } else if (const auto* c = as<trace::BtChainEvent>(e, EventType::kBtChain)) {
    const auto from = unit_by_id(c->from_unit), to = unit_by_id(c->to_unit);
    if (!from || !to) return;
    edges_.push_back({*from, *to, (e.flags & trace::kBtFlagTaken) != 0, i});
    ++totals_.chains;
  } else if (const auto* o = as<trace::BtCalloutEvent>(e, EventType::kBtCallout)) {
    ++totals_.callouts;
    if (e.flags & trace::kBtFlagAdaptive) ++totals_.adaptive_callouts;
    if (const auto u = unit_by_id(o->unit)) {
      ++units_[*u].callouts;
      ++blocks_[units_[*u].block].callouts;
    }
  } else if (const auto* v = as<trace::BtInvalidateEvent>(e, EventType::kBtInvalidate)) {
    invalidations_.push_back({i, e.rip, v->page_pa, v->units});
    totals_.invalidated_units += v->units;
    auto it = by_page_.find(v->page_pa >> 12);
    if (it != by_page_.end()) {
      for (uint32_t u : it->second) {
        if (units_[u].live) drop(u, i);
      }
      by_page_.erase(it);
    }
  } else if (const auto* n = as<trace::BtCountsEvent>(e, EventType::kBtCounts)) {
    ++totals_.count_reports;
    const auto u = unit_by_id(n->unit);
    if (!u) return;
    TcUnit& x = units_[*u];
    TcBlock& b = blocks_[x.block];
    // Cumulative counters: add what changed since the unit's last report.
    b.executions += n->executions - x.executions;
    b.instructions += n->instructions - x.instructions;
    totals_.executions += n->executions - x.executions;
    totals_.instructions += n->instructions - x.instructions;
    totals_.traps += n->traps - x.traps;
    x.executions = n->executions;
    x.instructions = n->instructions;
    x.traps = n->traps;
  } else if (const auto* l = as<trace::BtLookupEvent>(e, EventType::kBtLookup)) {
    ++totals_.lookups;
    if (e.flags & trace::kBtFlagHit) {
      ++totals_.lookup_hits;
      if (const auto u = unit_by_id(l->unit)) ++units_[*u].lookups;
    }
  } else {
    return;
  }
  ++revision_;
}

void TranslationCacheView::drop(uint32_t unit, int64_t by) {
  TcUnit& u = units_[unit];
  u.live = false;
  u.dropped_by = by;
  TcBlock& b = blocks_[u.block];
  if (b.newest == unit) b.live = false;
}

void TranslationCacheView::clear() {
  const uint64_t revision = revision_ + 1;
  *this = TranslationCacheView();
  revision_ = revision;
}

void TranslationCacheView::rebuild(const EventStore& store, size_t n) {
  const std::optional<uint32_t> keep = selected_;
  std::optional<std::pair<uint64_t, uint64_t>> keep_key;  // the selected block's rip and pa
  if (keep && *keep < blocks_.size()) keep_key = {{blocks_[*keep].rip, blocks_[*keep].pa}};
  clear();
  EventRecord r;
  n = std::min(n, store.size());
  for (size_t i = 0; i < n; ++i) {
    const EventType t = store.type(i);
    if (t < EventType::kBtTranslate || t > EventType::kBtCounts) continue;
    store.load(i, &r);
    on_event(i, r.header);
  }
  if (keep_key) {
    for (uint32_t b = 0; b < blocks_.size(); ++b) {
      if (blocks_[b].rip == keep_key->first && blocks_[b].pa == keep_key->second) selected_ = b;
    }
  }
}

// [SECTION] Queries

std::optional<uint32_t> TranslationCacheView::unit_by_id(uint32_t id) const {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::nullopt;
  return it->second;
}

std::optional<uint32_t> TranslationCacheView::block_at(uint64_t rip) const {
  auto it = by_rip_.find(rip);
  if (it == by_rip_.end()) return std::nullopt;
  return it->second;
}

std::vector<uint32_t> TranslationCacheView::units_of(uint32_t block) const {
  std::vector<uint32_t> out;
  for (uint32_t u = 0; u < units_.size(); ++u) {
    if (units_[u].block == block) out.push_back(u);
  }
  return out;
}

namespace {

std::vector<TranslationCacheView::Neighbour> neighbours(const std::vector<TcEdge>& edges,
                                                    const std::vector<TcUnit>& units,
                                                    uint32_t block, bool forward) {
  std::vector<TranslationCacheView::Neighbour> out;
  for (const TcEdge& e : edges) {
    const uint32_t here = units[forward ? e.from : e.to].block;
    const uint32_t there = units[forward ? e.to : e.from].block;
    if (here != block) continue;
    const bool seen = std::any_of(out.begin(), out.end(), [&](const auto& n) {
      return n.block == there && n.taken == e.taken;
    });
    if (!seen) out.push_back({there, e.taken});
  }
  return out;
}

}  // namespace

std::vector<TranslationCacheView::Neighbour> TranslationCacheView::successors(
    uint32_t block) const {
  return neighbours(edges_, units_, block, true);
}

std::vector<TranslationCacheView::Neighbour> TranslationCacheView::predecessors(
    uint32_t block) const {
  return neighbours(edges_, units_, block, false);
}

void TranslationCacheView::select(std::optional<uint32_t> block) {
  if (block && *block >= blocks_.size()) block.reset();
  if (block == selected_) return;
  selected_ = block;
  ++revision_;
}

std::string_view to_string(TcColumn c) {
  switch (c) {
    case TcColumn::kRip: return "guest RIP";
    case TcColumn::kPa: return "GPA";
    case TcColumn::kInsns: return "insns";
    case TcColumn::kTranslations: return "translations";
    case TcColumn::kExecutions: return "executions";
    case TcColumn::kInstructions: return "instructions";
    case TcColumn::kCallouts: return "callouts";
    case TcColumn::kCount: break;
  }
  return "?";
}

std::vector<uint32_t> sorted_blocks(const TranslationCacheView& cache, TcColumn by,
                                    bool descending) {
  const auto& blocks = cache.blocks();
  std::vector<uint32_t> rows(blocks.size());
  for (uint32_t i = 0; i < rows.size(); ++i) rows[i] = i;
  auto key = [&](const TcBlock& b) -> uint64_t {
    switch (by) {
      case TcColumn::kRip: return b.rip;
      case TcColumn::kPa: return b.pa;
      case TcColumn::kInsns: return b.count;
      case TcColumn::kTranslations: return b.translations;
      case TcColumn::kExecutions: return b.executions;
      case TcColumn::kInstructions: return b.instructions;
      case TcColumn::kCallouts: return b.callouts;
      case TcColumn::kCount: break;
    }
    return 0;
  };
  std::sort(rows.begin(), rows.end(), [&](uint32_t x, uint32_t y) {
    const uint64_t a = key(blocks[x]), b = key(blocks[y]);
    if (a != b) return descending ? a > b : a < b;
    if (blocks[x].rip != blocks[y].rip) return blocks[x].rip < blocks[y].rip;
    return x < y;
  });
  return rows;
}

// [SECTION] Side by side

std::vector<TcLine> TranslationCacheView::lines(uint32_t unit, const EventStore& store) const {
  std::vector<TcLine> out;
  if (unit >= units_.size() || units_[unit].event >= store.size()) return out;
  EventRecord r;
  store.load(units_[unit].event, &r);
  const trace::BtTranslateEvent& t = r.bt_translate;
  const trace::CpuMode mode = t.header.cpu_mode;
  uint64_t rip = t.header.rip;
  unsigned at = 0;
  for (unsigned k = 0; k < std::min<unsigned>(t.count, trace::kBtMaxUnitInsns); ++k) {
    const uint8_t len = t.len[k];
    if (len == 0 || at + len > trace::kBtMaxUnitBytes) break;
    const std::span<const uint8_t> bytes(t.code + at, len);
    TcLine l;
    l.rip = rip;
    l.length = len;
    for (unsigned b = 0; b < len; ++b) {
      char buf[4];
      std::snprintf(buf, sizeof buf, b ? " %02x" : "%02x", bytes[b]);
      l.bytes += buf;
    }
    l.guest = x86::disassemble(bytes, mode, rip).text;
    l.kind = kind_of(t.kind[k]);
    l.kind_name = std::string(trace::to_string(l.kind));
    l.translated = std::string(bt_kind_effect(l.kind));
    const uint64_t next = rip + len;
    // The translator's reason for the kind it recorded (sim/bt/kind_reason.hpp); for a
    // sensitive instruction, the classifier's sentence for its bytes (the event holds no text).
    switch (l.kind) {
      case BtKind::kInCache:
      case BtKind::kCallout: {
        const auto ci = x86::classify_bytes(bytes, mode, rip);
        l.why = std::string(l.kind == BtKind::kInCache ? "sensitive, short to emulate: "
                                                       : "privileged or sensitive: ") +
                std::string(ci.ok ? ci.c.reason : std::string_view("(does not decode)"));
        break;
      }
      case BtKind::kAdaptive: {
        const unsigned threshold = units_[unit].adaptive_threshold;
        l.why = std::string(sim::bt::kind_reason(l.kind)) +
                (threshold ? " (the translator's threshold: " + std::to_string(threshold) +
                                 " traps)"
                           : std::string(" (the threshold is not recorded in this trace)"));
        break;
      }
      default:
        l.why = std::string(sim::bt::kind_reason(l.kind));
        break;
    }
    out.push_back(std::move(l));
    at += len;
    rip = next;
  }
  return out;
}

}  // namespace trapscope::viz
