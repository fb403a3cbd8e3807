// platform/handle_exit.hpp — what the VMM does with each VM exit, separate from the run loop (after
// Firecracker's vstate/vcpu.rs), so tests can feed it made-up exits.
//
// One handler per exit reason (handle_exit.cpp, [SECTION] per reason):
//   IO             to the port bus (platform/devices.hpp); an `in` gets the device's bytes; an out to
//                  the control port ends the run with the guest's exit code
//   MMIO           to the MMIO bus (platform/bus.hpp: virtio-blk devices, platform/virtio_mmio.hpp;
//                  --passthrough emulated puts its registers there): an unclaimed read returns
//                  all ones; an unclaimed write is logged in Devices::mmio_writes
//   HLT            ends the run (no interrupt can wake the guest: there is no interrupt source)
//   SHUTDOWN       triple fault: ends the run
//   INTERNAL_ERROR ends the run (suberror 1: the kernel's emulator failed on an instruction)
//   FAIL_ENTRY     ends the run (the CPU refused the guest state)
//   DEBUG          ends the run (breakpoint or single step; the debugger interface comes later)
//   interrupted    not a guest exit: continue (the run loop checks limits first)
//   anything else  ends the run as unhandled, reported by name and number
#pragma once

#include <cstdint>

#include "trace/event.hpp"
#include "platform/devices.hpp"
#include "platform/exit.hpp"

namespace trapscope::platform {

struct ExitAction {
  bool stop = false;
  trace::RunEndReason reason = trace::RunEndReason::kMax;  // when stop
  uint32_t exit_code = 0;                                  // when reason == kGuestExit

  static ExitAction resume() { return {}; }
  static ExitAction end(trace::RunEndReason r, uint32_t code = 0) { return {true, r, code}; }
};

ExitAction handle_exit(Devices& devices, const VcpuExit& exit);

}  // namespace trapscope::platform
