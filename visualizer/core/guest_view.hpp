// visualizer/core/guest_view.hpp — the code and memory windows a stop publishes, read from a
// machine's guest-physical memory and registers. Shared by the live controller and by trace
// re-execution (trace_reexec.hpp).
#pragma once

#include <cstdint>
#include <span>

#include "x86/state.hpp"
#include "visualizer/core/model.hpp"

namespace trapscope::viz {

// 64 bytes before and 192 from CS:RIP, translated linear → guest-physical page by page through
// the guest's own page tables (platform/guest_paging.hpp); unmapped bytes are marked unreadable.
CodeWindow code_window(std::span<const uint8_t> memory, const x86::CpuState& registers);

// Guest-physical bytes [address, address + length), clipped to the memory's size.
MemoryWindow memory_window(std::span<const uint8_t> memory, uint64_t address, uint64_t length);

}  // namespace trapscope::viz
