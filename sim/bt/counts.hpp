// sim/bt/counts.hpp — the translation cache's per-unit execution counters as events
// (trace::BtCountsEvent), for the visualizer's translation-cache panel (like QEMU's hotblocks
// plugin: translation count, execution count, instructions executed per block).
//
// A unit entered through a chain records no event: the executor only bumps Unit::executions and
// Unit::instructions (sim/bt/execute.cpp). SimMachine::run() calls report_unit_counts() just
// before its kRunEnd event, so a trace holds each unit's counters as of the end of each run.
#pragma once

#include <cstdint>
#include <vector>

#include "sim/bt/translator.hpp"
#include "trace/recorder.hpp"

namespace trapscope::sim::bt {

// Emits one kBtCounts event for each unit of `cache` whose counters changed since the last
// call; `reported` (indexed by unit id, grown as needed) holds the executions last reported.
// Returns the events emitted.
size_t report_unit_counts(const Cache& cache, Cpu& cpu, std::vector<uint64_t>& reported,
                          trace::EventSink& sink);

}  // namespace trapscope::sim::bt
