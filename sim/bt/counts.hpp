// sim/bt/counts.hpp — the translation cache's per-unit execution counters as events
// (trace::BtCountsEvent), for the visualizer's translation-cache panel (like QEMU's hotblocks
// plugin: translation count, execution count, instructions executed per block).
//
// A unit entered through a chain records no event: the executor only bumps Unit::executions and
// Unit::instructions (sim/bt/execute.cpp). So the counters go out as events:
//   - SimMachine::run() calls report_unit_counts() when a run ends, just before its kRunEnd
//     event; not when it pauses (a breakpoint, a watched event), so that stopping a run does
//     not change its event stream (translator.hpp [SECTION] Resuming a unit);
//   - SimMachine::report_bt_counts() (Backend::report_bt_counts) does it between runs: the
//     visualizer's live controller calls it when it stops for the user (a step-to, a
//     breakpoint), so what a stopped visualizer shows is current;
//   - Cache::free_retired() and a capacity flush call report_counts() for each unit just before
//     it is freed (translator.hpp [SECTION] Freeing invalidated units), so a freed unit's last
//     counts are in the stream too.
// Each event carries the unit's cumulative counters (executions, instructions, traps), once per
// unit whose counters changed since its last event (Unit::reported_executions, …).
#pragma once

#include <cstddef>

#include "sim/bt/translator.hpp"
#include "trace/recorder.hpp"

namespace trapscope::sim::bt {

// Emits a kBtCounts event for u if its counters changed since its last one; true if it did.
bool report_counts(Unit& u, Cpu& cpu, trace::EventSink& sink);

// report_counts() for each unit `cache` holds, in translation order. Returns the events emitted.
size_t report_unit_counts(Cache& cache, Cpu& cpu, trace::EventSink& sink);

}  // namespace trapscope::sim::bt
