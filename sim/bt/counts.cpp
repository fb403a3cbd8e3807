#include "sim/bt/counts.hpp"

namespace trapscope::sim::bt {

bool report_counts(Unit& u, Cpu& cpu, trace::EventSink& sink) {
  if (u.executions == u.reported_executions && u.instructions == u.reported_instructions &&
      u.traps == u.reported_traps) {
    return false;
  }
  u.reported_executions = u.executions;
  u.reported_instructions = u.instructions;
  u.reported_traps = u.traps;
  trace::BtCountsEvent e{};
  e.header = trace::make_header<trace::BtCountsEvent>(trace::EventType::kBtCounts);
  e.header.seq = cpu.next_seq();
  e.header.time_ns = Cpu::event_time();
  e.header.rip = u.rip;
  e.header.cpl = cpu.cpl();
  e.header.cpu_mode = u.mode;
  e.unit = u.id;
  e.executions = u.executions;
  e.instructions = u.instructions;
  e.traps = u.traps;
  sink.on_event(e.header);
  return true;
}

size_t report_unit_counts(Cache& cache, Cpu& cpu, trace::EventSink& sink) {
  size_t n = 0;
  for (const auto& u : cache.units()) n += report_counts(*u, cpu, sink);
  return n;
}

}  // namespace trapscope::sim::bt
