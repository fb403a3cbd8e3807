#include "sim/bt/counts.hpp"

namespace trapscope::sim::bt {

size_t report_unit_counts(const Cache& cache, Cpu& cpu, std::vector<uint64_t>& reported,
                          trace::EventSink& sink) {
  size_t n = 0;
  for (const auto& u : cache.units()) {
    if (u->id >= reported.size()) reported.resize(u->id + 1, 0);
    if (u->executions == reported[u->id]) continue;
    reported[u->id] = u->executions;
    trace::BtCountsEvent e{};
    e.header = trace::make_header<trace::BtCountsEvent>(trace::EventType::kBtCounts);
    e.header.seq = cpu.next_seq();
    e.header.time_ns = Cpu::event_time();
    e.header.rip = u->rip;
    e.header.cpl = cpu.cpl();
    e.header.cpu_mode = u->mode;
    e.unit = u->id;
    e.executions = u->executions;
    e.instructions = u->instructions;
    sink.on_event(e.header);
    ++n;
  }
  return n;
}

}  // namespace trapscope::sim::bt
