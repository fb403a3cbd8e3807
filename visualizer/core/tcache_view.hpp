// visualizer/core/tcache_view.hpp — the view model of binary translation's translation cache:
// what the translation-cache panel (visualizer/panels/tcache.cpp) shows, built from the events
// alone, so that it works the same live and from a trace file. It shows what the translator
// recorded (sim/bt/translator.hpp [SECTION] What the translator records) and decides nothing
// itself: each instruction's kind, the adaptive threshold, the traps and the counts come from
// the events. No GUI: unit-tested in tests/test_gui_tcache.cpp.
//
// [SECTION] Sources (trace/event.hpp, events 13–18; sim/bt/translator.hpp; Adams & Agesen,
// ASPLOS 2006, section 3)
//   kBtTranslate   a unit: guest RIP range, guest-physical address, its guest bytes, each
//                  instruction's length and kind (IDENT / non-IDENT and which), the adaptive
//                  threshold the translator used.
//   kBtChain       an edge: a unit's exit (taken or fall-through) patched to its successor.
//   kBtCallout     a callout of a unit (counted per unit; adaptive ones too).
//   kBtInvalidate  a page written since translated: its valid units are dropped.
//   kBtCounts      the cache's own counters of a unit (executions, instructions executed,
//                  traps),
//                  reported at the end of each run, when the live visualizer stops, and before a
//                  unit is freed (sim/bt/counts.hpp):
//                  entries through a chain record no event, so execution counts are not
//                  derivable from the other events.
//   kBtLookup      (only with --bt-lookup-events) counted per unit as lookups.
//
// [SECTION] Shape
//   A UNIT is one translation (one unit id). A BLOCK is a guest address — (RIP, guest-physical
//   address, CPU mode) — and everything translated there: QEMU's hotblocks plugin shows one row
//   per block with its translation count (tcount), execution count and instructions executed.
//   A retranslation (after an invalidation, an adaptive retranslation, a flush) is a new unit
//   of the same block; the block's counts add up its units'. An unit is "live" until an
//   invalidation drops it or a newer translation of its block replaces it.
//
// [SECTION] Incremental
//   on_event() costs O(1) (hash lookups) per BT event and nothing for other types, so the model
//   keeps up with a live run; truncation (step back, reset) replays the BT events still held.
//   revision() changes whenever anything shown changes (the panel re-sorts only then).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "visualizer/core/event_store.hpp"

namespace trapscope::viz {

struct TcUnit {
  uint32_t id = 0;           // the unit id of the events
  uint32_t block = 0;        // index into TranslationCacheView::blocks()
  uint32_t event = 0;        // its kBtTranslate event
  uint8_t count = 0;         // guest instructions
  uint8_t ident = 0;         // of which IDENT
  uint8_t generation = 0;    // BtTranslateEvent::generation (0: first translation of the address)
  uint8_t adaptive_threshold = 0;  // BtTranslateEvent::adaptive_threshold (0: not recorded)
  bool live = true;          // false: invalidated or replaced by a newer translation
  int64_t dropped_by = -1;   // the kBtInvalidate event that dropped it, if one did
  uint64_t executions = 0;   // last kBtCounts report
  uint64_t instructions = 0;
  uint64_t traps = 0;        // last kBtCounts report: faults and code-page writes it made
  uint64_t callouts = 0;
  uint64_t lookups = 0;      // kBtLookup hits (only recorded on request)
};

struct TcBlock {
  uint64_t rip = 0;          // guest RIP (CS offset) of the first instruction
  uint64_t pa = 0;           // guest-physical address of its first byte
  trace::CpuMode mode = trace::CpuMode::kUnknown;
  uint16_t guest_bytes = 0;  // of the newest translation
  uint8_t count = 0;         // guest instructions of the newest translation
  uint32_t translations = 0; // units translated at this address
  uint32_t newest = 0;       // index into units() of the newest translation
  bool live = false;         // the newest translation is in the cache
  uint64_t executions = 0;   // summed over its units (from kBtCounts)
  uint64_t instructions = 0;
  uint64_t callouts = 0;
};

struct TcEdge {
  uint32_t from = 0, to = 0;  // indexes into units()
  bool taken = false;         // the taken branch (else the fall-through)
  uint32_t event = 0;         // its kBtChain event
};

struct TcInvalidation {
  uint32_t event = 0;
  uint64_t rip = 0;           // the instruction whose write (or the lookup that found it) ...
  uint64_t page_pa = 0;
  uint32_t units = 0;         // units dropped (as the event says)
};

struct TcTotals {
  uint64_t translations = 0, translated_insns = 0, ident = 0, non_ident = 0;
  uint64_t chains = 0, callouts = 0, adaptive_callouts = 0, invalidated_units = 0;
  uint64_t executions = 0, instructions = 0, traps = 0;  // from kBtCounts
  uint64_t count_reports = 0;                 // kBtCounts events seen (0: counts unknown)
  uint64_t lookups = 0, lookup_hits = 0;      // kBtLookup (only on request)
};

// One instruction of a unit, guest code beside its translation (the panel's side-by-side).
struct TcLine {
  uint64_t rip = 0;
  uint8_t length = 0;
  std::string bytes;        // "0f 20 c0"
  std::string guest;        // Zydis disassembly at its RIP
  trace::BtKind kind = trace::BtKind::kIdent;
  std::string kind_name;    // "IDENT", "pc-relative", …
  std::string translated;   // what the translated code does in its place
  std::string why;          // why it is not IDENT: the translator's sentence for its kind
                            //   (sim/bt/kind_reason.hpp; with the recorded adaptive threshold),
                            //   the classifier's sentence for in-cache and callout ones
};

class TranslationCacheView {
 public:
  // Event `index` of the store (any type; non-BT types are ignored).
  void on_event(size_t index, const trace::EventHeader& event);
  void clear();
  // Forgets everything and replays the BT events among the first `n` of `store`.
  void rebuild(const EventStore& store, size_t n);

  const std::vector<TcUnit>& units() const { return units_; }
  const std::vector<TcBlock>& blocks() const { return blocks_; }
  const std::vector<TcEdge>& edges() const { return edges_; }
  const std::vector<TcInvalidation>& invalidations() const { return invalidations_; }
  const TcTotals& totals() const { return totals_; }
  bool empty() const { return units_.empty(); }
  uint64_t revision() const { return revision_; }

  std::optional<uint32_t> unit_by_id(uint32_t id) const;      // index into units()
  std::optional<uint32_t> block_at(uint64_t rip) const;       // the block at a guest RIP
                                                              //   (the newest one if several)
  // The blocks the selected block's units chain to (successors) or from (predecessors), each
  // once, with whether the edge is a taken branch.
  struct Neighbour {
    uint32_t block;
    bool taken;
  };
  std::vector<Neighbour> successors(uint32_t block) const;
  std::vector<Neighbour> predecessors(uint32_t block) const;
  // The units of a block, oldest first (indexes into units()).
  std::vector<uint32_t> units_of(uint32_t block) const;

  // The side-by-side lines of a unit, from its kBtTranslate event in `store` (the kinds as
  // recorded; the disassembly and a sensitive instruction's sentence looked up for its bytes).
  std::vector<TcLine> lines(uint32_t unit, const EventStore& store) const;

  // The block the panel shows (selection shared by the panel, scripts and the state dump).
  std::optional<uint32_t> selected() const { return selected_; }
  void select(std::optional<uint32_t> block);

 private:
  struct Key {
    uint64_t rip, pa;
    trace::CpuMode mode;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return std::hash<uint64_t>()(k.rip * 0x9E3779B97F4A7C15ull ^ k.pa ^
                                   static_cast<uint64_t>(k.mode));
    }
  };
  void drop(uint32_t unit, int64_t by);

  std::vector<TcUnit> units_;
  std::vector<TcBlock> blocks_;
  std::vector<TcEdge> edges_;
  std::vector<TcInvalidation> invalidations_;
  TcTotals totals_;
  std::unordered_map<uint32_t, uint32_t> by_id_;
  std::unordered_map<Key, uint32_t, KeyHash> by_key_;
  std::unordered_map<uint64_t, uint32_t> by_rip_;               // newest block at a RIP
  std::unordered_map<uint64_t, std::vector<uint32_t>> by_page_; // live units of a page
  std::optional<uint32_t> selected_;
  uint64_t revision_ = 0;
};

// The block table's columns (the panel's, in this order) and its sorted rows: indexes into
// blocks(), ties broken by guest RIP so that the order is stable.
enum class TcColumn : uint8_t {
  kRip, kPa, kInsns, kTranslations, kExecutions, kInstructions, kCallouts, kCount,
};
std::string_view to_string(TcColumn column);  // "guest RIP", "GPA", …
std::vector<uint32_t> sorted_blocks(const TranslationCacheView& cache, TcColumn by,
                                    bool descending);

// "IDENT", or for a non-IDENT kind what the translated code does in its place.
std::string_view bt_kind_effect(trace::BtKind kind);

}  // namespace trapscope::viz
