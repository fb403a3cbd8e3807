// sim/interp/protection.hpp — the names the step loop and the handlers used before the processor
// services moved to sim/processor/processor.hpp (exception delivery, segment loads): kept so
// that existing includes and calls (sim::deliver, sim::load_segment, sim::EventSource,
// sim::TripleFault) go on working. New code includes sim/processor/processor.hpp.
#pragma once

#include "sim/processor/processor.hpp"

namespace trapscope::sim {

using processor::deliver;
using processor::EventSource;
using processor::load_segment;
using processor::TripleFault;

}  // namespace trapscope::sim
