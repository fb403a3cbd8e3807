// sim/interp/protection.hpp — protection-related operations shared by the step loop and by the
// handlers of far transfers, segment loads and software interrupts.
//
// Sources: Intel SDM Vol. 3A 5.5–5.8 (privilege checks, segment loads, call gates), 6.12
// (protected-mode exception and interrupt handling), 6.14 (64-bit mode: 16-byte gates, IST,
// stack switch to TSS.RSPn), 6.15 (#DF conditions: table 6-5), 7.2 (TSS layout), 20.1.4
// (real-mode interrupts through the IVT).
#pragma once

#include <cstdint>
#include <stdexcept>

#include "sim/cpu.hpp"

namespace trapscope::sim {

enum class EventSource : uint8_t {
  kException,  // a fault or trap raised by the processor
  kSoftware,   // int n, int3, into (checks gate DPL >= CPL)
  kExternal,   // an external interrupt (not used yet: no interrupt controller)
};

// The guest took an exception while delivering a double fault: the machine shuts down.
struct TripleFault : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Delivers `vector` through the IDT (or the real-mode IVT): pushes the frame (SS:RSP on a
// privilege change, with the stack from the TSS or an IST), RFLAGS, CS, RIP = return_rip, the
// error code if any; clears IF for interrupt gates, TF, NT, RF (and VM); loads CS:RIP from the
// gate. A fault during delivery becomes #DF per SDM table 6-5; a fault while delivering #DF
// throws TripleFault. Emits trace::ExceptionEvent and, if the CPL changes,
// trace::RingTransitionEvent.
void deliver(Cpu& cpu, uint8_t vector, EventSource source, bool has_error_code,
             uint32_t error_code, uint64_t return_rip);

// Loads a data or stack segment register (mov/pop Sreg, lds…, and the data segments of far
// returns), with the SDM 5.8 checks in protected mode (null selector rules, type, DPL/RPL/CPL,
// present → #GP/#SS/#NP with the selector as error code) and base = selector << 4 in real mode.
void load_segment(Cpu& cpu, SegReg seg, uint16_t selector);

}  // namespace trapscope::sim
