// platform/exit_event.hpp — the one builder of VM-exit events, for both engines.
//
// An engine knows where the vCPU was when it exited (ExitSite: the causing instruction, its
// bytes, CPL and mode) and what the exit was (a typed VcpuExit, platform/exit.hpp); this turns
// the two into the trace::VmExitEvent that printers, views and co-simulation read. The KVM
// engine fills the site from kvm_run (vmm/kvm_machine.cpp, which finds the causing instruction when
// KVM has already moved RIP past it); the simulator from its CPU (sim/cpu.cpp). The payload
// follows KVM's `struct kvm_run` (KVM API 5.): IO port, size, direction, count and the first
// element's value; MMIO address, length, direction and data; the data words of internal errors,
// failed entries, debug exits and system events.
#pragma once

#include <cstdint>
#include <span>

#include "platform/devices.hpp"
#include "platform/exit.hpp"
#include "trace/recorder.hpp"
#include "trace/event.hpp"
#include "x86/mode.hpp"

namespace trapscope::platform {

struct ExitSite {
  uint64_t seq = 0;                 // the event's sequence number
  uint64_t time_ns = 0;             // host CLOCK_MONOTONIC at the exit, ns
  uint32_t handle_ns = 0;           // time the VMM spent handling it, ns
  uint64_t rip = 0;                 // RIP of the instruction that caused the exit
  uint8_t cpl = trace::kCplUnknown;
  x86::CpuMode mode = x86::CpuMode::kUnknown;
  bool rip_advanced = false;        // the engine found RIP already past that instruction
  uint64_t insn_addr = 0;           // guest-linear address of `insn`
  std::span<const uint8_t> insn;    // its bytes (at most 15 are kept; empty if unreadable)
};

trace::VmExitEvent exit_event(const VcpuExit& exit, const ExitSite& site);

// Emits the device events raised while an exit was handled (Devices::device_events) to `sink`,
// right after that exit's event `exit`: each gets the exit's time, RIP, CPL and mode and the
// next sequence number from next_seq(). Clears them; with a null sink only clears them.
template <typename NextSeq>
void emit_device_events(Devices& devices, trace::EventSink* sink, const trace::EventHeader& exit,
                        NextSeq&& next_seq) {
  if (sink != nullptr) {
    for (trace::DeviceEvent e : devices.device_events) {
      e.header = trace::make_header<trace::DeviceEvent>(trace::EventType::kDevice);
      e.header.seq = next_seq();
      e.header.time_ns = exit.time_ns;
      e.header.rip = exit.rip;
      e.header.cpl = exit.cpl;
      e.header.cpu_mode = exit.cpu_mode;
      sink->on_event(e.header);
    }
  }
  devices.device_events.clear();
}

}  // namespace trapscope::platform
