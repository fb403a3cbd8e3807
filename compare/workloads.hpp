// compare/workloads.hpp — what a comparison runs: the techniques (one row each), the built-in
// guests a WORKLOAD names, their pv- twins, and the nanobenchmark guests' iteration header.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "backend/backend.hpp"
#include "compare/cost_model.hpp"
#include "guests/guest_catalog.hpp"

namespace trapscope::compare {

// One row of the table: a technique of the simulator (sim/virt/monitor.hpp) or KVM.
struct Technique {
  std::string_view name;  // the table's and the JSON's "technique"
  backend::Kind kind;
  sim::virt::Technique technique;  // the simulator's; unused on KVM
  bool pv_twin;               // runs the guest's pv- twin (if it has one)
};
inline constexpr std::array<Technique, 7> kTechniques = {{
    {"emulation", backend::Kind::kSim, sim::virt::Technique::kEmulation, false},
    {"trap-emulate", backend::Kind::kSim, sim::virt::Technique::kTrapEmulate, false},
    {"vt", backend::Kind::kSim, sim::virt::Technique::kVt, false},
    {"bt", backend::Kind::kSim, sim::virt::Technique::kBt, false},
    {"pv", backend::Kind::kSim, sim::virt::Technique::kPv, true},
    {"kvm", backend::Kind::kKvm, sim::virt::Technique::kEmulation, false},
    {"kvm pv", backend::Kind::kKvm, sim::virt::Technique::kEmulation, true},
}};

// The guests a WORKLOAD argument names: one built-in guest, or the seven nanobenchmarks for
// "nano" (kPaperNanos' order). Empty if it names none.
std::vector<guests::Guest> workload_guests(std::string_view workload);

// The guest's paravirtual twin ("pv-" + name), if the catalog has one.
std::optional<guests::Guest> pv_twin(const guests::Guest& g);

// Guests that need `syscall`/`sysret`, which this project's kvm_pvm hosts do not run
// (docs/kvm-hosts.md; `trapscope doctor` lists it): their KVM rows are skipped there.
bool needs_syscall(std::string_view guest);

// The paper's figures for a nanobenchmark guest or its pv- twin; nullptr for another guest.
const PaperNano* paper_for(std::string_view guest);
// The paper's column for a row's technique: BT = the software VMM, the VT-x model and KVM = the
// hardware VMM; none for the others.
std::optional<uint32_t> paper_cycles(const PaperNano& p, std::string_view technique);

// A nanobenchmark image with its iteration count set (guests/include/nano_body.inc: "NANO" at
// offset 2, the count, 32-bit little-endian, at offset 6); empty if the image has no such header.
std::vector<uint8_t> with_iterations(std::span<const uint8_t> image, uint32_t n);
inline bool is_nanobenchmark(const guests::Guest& g) {
  return !with_iterations(g.image, 0).empty();
}

// The CPU mode the guest starts in (its catalog entry's "real", "protected" or "long").
platform::BootMode boot_mode(const guests::Guest& g);

}  // namespace trapscope::compare
