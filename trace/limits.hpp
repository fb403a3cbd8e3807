// trace/limits.hpp — the caps on everything that grows with what a guest does (a hostile
// guest's one `rep outsb` with ECX = 0xFFFFFFFF made a 931 MB console capture; aimed at
// unbacked MMIO it ended in std::bad_alloc at 1.5 GB). A guest is untrusted: whatever it makes
// the host keep in memory has a limit here, with its unit and why that size. docs/limits.md
// lists them.
//
// What happens at each cap (so a student sees why the run stopped or what is missing):
//   console      the first kConsoleLimitBytes are kept, a marker line follows them, and the run
//                ends with RunEndReason::kConsoleLimit (exit status 4, as other limits)
//   MMIO log     the first kMmioLogLimitEntries writes are kept, the rest counted; the run
//                goes on (the writes are ignored anyway: only the log is capped)
//   Recorder     events past kRecorderLimitBytes are dropped and counted; an engine whose sink
//                is full ends the run with RunEndReason::kEventLimit
//   GUI model    events past kModelLimitBytes are dropped and counted; the event list says how
//                many; a live run stops and says so
#pragma once

#include <cstddef>
#include <cstdint>

namespace trapscope::trace {

// Guest console output kept in memory (platform::ConsoleOutput), bytes. The teaching guests write a
// few KiB; 64 MiB is about a million 64-column lines, far more than anyone reads, and small
// next to a host's RAM. Both engines stop the run at this cap.
inline constexpr size_t kConsoleLimitBytes = size_t{64} << 20;

// Writes to unbacked guest-physical memory kept in platform::Devices::mmio_writes, entries (24 bytes
// each: 24 MiB). Tests and the run summary look at the first few; the rest are counted.
inline constexpr size_t kMmioLogLimitEntries = size_t{1} << 20;

// Memory a trace::Recorder holds (Recorder::memory_bytes()), bytes. The lessons, co-simulation
// and the equivalence check (two Recorders) record runs of a few thousand to a few million
// events; 256 MiB holds ~64 M instruction events or ~2.8 M VM exits (recorder.hpp [SECTION]
// Memory). The speed benchmark, which records 100 M instructions on purpose, asks for more.
inline constexpr size_t kRecorderLimitBytes = size_t{256} << 20;

// Event records a visualizer model holds (viz::EventStore::memory_bytes()) and, for a live
// run, the raw records its worker may send it, bytes. 512 MiB is ~7 M VM exits or ~18 M
// instruction events in the store (visualizer/core/event_store.hpp [SECTION] Shape): more than
// a timeline shows, and what a laptop can spare beside the GUI.
inline constexpr size_t kModelLimitBytes = size_t{512} << 20;

}  // namespace trapscope::trace
