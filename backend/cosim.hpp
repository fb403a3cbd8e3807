// backend/cosim.hpp — co-simulation: run the same guest on KVM and on the simulator and
// compare what a guest can observe (Popek & Goldberg's equivalence property, tested): the VM
// exits in order (reason, RIP, CPL, mode, port/address, direction, size, data), console output,
// how the run ended, the final registers and guest memory. The report names the first
// difference.
#pragma once

#include <span>
#include <string>

#include "backend/backend.hpp"

namespace trapscope::backend {

struct CosimResult {
  bool equal = false;
  std::string report;  // "equal: N exits, …" or the first divergence with both sides
  uint64_t exits = 0;  // exits compared (equal ones, before a divergence at a VM exit)
};

CosimResult cosimulate(std::span<const uint8_t> image, const Config& config,
                       const StopCondition& stop);

// The equivalence check of a virtualization technique (Popek & Goldberg's equivalence
// property): runs the guest on the simulator natively (technique emulation) and under
// config.technique, compares the same things as cosimulate; sides are named "native" and the
// technique ("trap-emulate", "vt").
CosimResult compare_with_native(std::span<const uint8_t> image, const Config& config,
                                const StopCondition& stop);

}  // namespace trapscope::backend
