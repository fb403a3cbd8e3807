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

// The privilege the machine really runs a guest at, where it differs from what the guest
// believes (its virtual CPL, IF and IOPL, which the simulator's CPU state holds):
//   trap-and-emulate (ring compression, sim/virt/monitor.hpp): protected/long-mode code at
//     virtual CPL 0 runs at real CPL `deprivilege` (1 or 3), CPL 3 at 3; the real IF is 1 and
//     the real IOPL 0 (the VMM keeps interrupts for itself and traps I/O);
//   binary translation (sim/bt/translator.hpp): translated kernel code (CPL 0..2) runs at real
//     CPL 1, as VMware's translator ran it (Bugnion et al., TOCS 2012, section 6.2), user code
//     directly at 3; real IF 1, IOPL 0.
// nullopt when virtual and real are the same (emulation, the VT-x model, pv: non-root operation
// runs the guest at its own CPL) or there is no real CPL (real-mode code, which both
// techniques interpret or translate).
struct RealPrivilege {
  uint8_t cpl;
  bool interrupts;  // RFLAGS.IF
  uint8_t iopl;
};
std::optional<RealPrivilege> real_privilege(Technique t, uint8_t deprivilege, uint8_t virtual_cpl,
                                            bool protected_mode);

}  // namespace trapscope::sim::virt
