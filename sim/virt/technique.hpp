// sim/virt/technique.hpp — the virtualization techniques the simulator runs a guest under (the
// choice a user makes with --technique; what backend/backend.hpp needs without the simulated
// CPU). Their models: sim/virt/monitor.hpp (trap-and-emulate, the VT-x model, paravirtualization)
// and sim/bt/translator.hpp (binary translation).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace trapscope::sim::virt {

// kEmulation: the interpreter alone (no VMM). kBt: binary translation; no Monitor: SimMachine
// runs a bt::Cache. kPv: paravirtualization (sim/virt/monitor.hpp [SECTION] Paravirtualization).
enum class Technique : uint8_t { kEmulation, kTrapEmulate, kVt, kBt, kPv };
std::string_view to_string(Technique t);  // "emulation", "trap-emulate", "vt", "bt", "pv"
std::optional<Technique> parse_technique(std::string_view name);

}  // namespace trapscope::sim::virt
