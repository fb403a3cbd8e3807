// backend/cosim.hpp — co-simulation: run the same guest on KVM and on the simulator and
// compare what a guest can observe (Popek & Goldberg's equivalence property, tested): the VM
// exits in order (reason, RIP, CPL, mode, port/address, direction, size, data), console output,
// how the run ended, the final registers and guest memory. The report names the first
// difference.
//
// [SECTION] Bounds
//   The two runs go in lockstep, in slices (at most kCheckSliceExits VM exits and
//   kCheckSliceSeconds each, the side that is behind first), and the exits of each slice are
//   compared and dropped at once: memory stays bounded whatever the guest does (no recording of
//   whole runs). stop.timeout_s is the budget of the WHOLE check, both runs together; the
//   user's max_exits and max_instructions bound each side's whole run. When the budget runs
//   out, or `cancel` becomes true (Ctrl-C), before both runs have ended, the check ends within
//   one slice with checked = false: "equivalence not checked: …" after the exits found equal
//   so far (a run stopped by the wall clock stops at a different point on each side, so its
//   end cannot be compared). Guest memory is compared a page at a time with memcmp.
#pragma once

#include <atomic>
#include <memory>
#include <span>
#include <string>

#include "backend/backend.hpp"

namespace trapscope::backend {

inline constexpr uint64_t kCheckSliceExits = 4096;
inline constexpr double kCheckSliceSeconds = 0.05;

struct CosimResult {
  bool equal = false;
  // False: a limit ended the check before both runs had ended and no difference was found in
  // the exits compared; neither equal nor diverged (report: "equivalence not checked: …").
  bool checked = true;
  std::string report;  // "equal: N exits, …" or the first divergence with both sides
  uint64_t exits = 0;  // exits compared (equal ones, before a divergence at a VM exit)
  size_t max_held = 0;  // the most exits held at once, waiting for the other side's
};

// Throws platform::LoadError for an image that does not fit (and what make_backend throws).
CosimResult cosimulate(std::span<const uint8_t> image, const Config& config,
                       const StopCondition& stop, const std::atomic<bool>* cancel = nullptr);

// The equivalence check of a virtualization technique (Popek & Goldberg's equivalence
// property): runs the guest on the simulator natively (technique emulation) and under
// config.technique, compares the same things as cosimulate; sides are named "native" and the
// technique ("trap-emulate", "vt"). A divergence at a VM exit also names the last sensitive
// instruction that ran without trapping before it.
CosimResult compare_with_native(std::span<const uint8_t> image, const Config& config,
                                const StopCondition& stop,
                                const std::atomic<bool>* cancel = nullptr);

// The same check on two machines already set up and standing at the same point of a run (e.g.
// one restored from a snapshot, the other run there from the start: snapshot/, tests): from
// here on, their exits, run end, console, registers and memory. `stop` bounds each side's
// rest of the run (max_exits and max_instructions from here).
CosimResult compare_machines(std::unique_ptr<Backend> a, std::string a_name,
                             std::unique_ptr<Backend> b, std::string b_name,
                             const StopCondition& stop, const std::atomic<bool>* cancel = nullptr);

}  // namespace trapscope::backend
