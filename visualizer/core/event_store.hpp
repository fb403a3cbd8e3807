// visualizer/core/event_store.hpp — the visualizer's compact, append-only store of events (the
// "consumer" side of producer → consumer → view, after Tracy's server/TracyWorker).
//
// [SECTION] Shape
//   One 24-byte row per event (type, CPL, CPU mode, flags, RIP, time, payload offset) plus the
//   type-specific payload packed into a byte arena with its variable parts trimmed (the
//   TRAPSCOPE_TAIL rows of trace/events.def): an instruction keeps only its `len` bytes, a VM
//   exit only its `insn_len` instruction bytes, a page walk only its `levels` table entries, a
//   translation only its `guest_bytes` of code; a count past its array is stored clamped.
//   load() rebuilds the full trace/event.hpp record.
//   Memory (measured by memory_bytes()): 24 + ~5 bytes per instruction event, 24 + ~45 per VM
//   exit, 24 + 24 + 16 per walk level per page walk; plus the model's lane index (4 bytes).
//
// [SECTION] Indexes
//   Events are numbered 0..size()-1 in arrival order; the visualizer uses this number as its
//   "event #" everywhere (the timeline's x axis, the event list, selection). header.seq of a
//   loaded record is set to this number, not to the producer's per-run sequence number.
//
// [SECTION] Limits
//   The arena is addressed with 32-bit offsets: at most 4 GiB of payload (tens of millions of
//   events). append() returns false (and stores nothing) when an event would not fit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "trace/event.hpp"

namespace trapscope::viz {

// Any event record (trace/event.hpp).
using EventRecord = trace::AnyEvent;

class EventStore {
 public:
  // Copies a record (event.size bytes, one of the structs of trace/event.hpp). False if the
  // record's size does not match its type or the store is full.
  bool append(const trace::EventHeader& event);
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void truncate(size_t n);  // keep events [0, n)
  void clear();

  trace::EventType type(size_t i) const { return row(i).type; }
  uint8_t cpl(size_t i) const { return row(i).cpl; }
  uint64_t rip(size_t i) const { return row(i).rip; }
  uint64_t time_ns(size_t i) const { return row(i).time_ns; }
  // The exit reason of a VM exit event (KVM's number); 0 for other types.
  uint32_t exit_reason(size_t i) const;

  // The header of event i (header.seq = i), from its row alone.
  trace::EventHeader header(size_t i) const;
  // Rebuilds the full record of event i into *out (header.seq = i).
  void load(size_t i, EventRecord* out) const;

  // Bytes held (row and arena chunks allocated).
  size_t memory_bytes() const;
  void reserve(size_t events, size_t payload_bytes);

 private:
  struct Row {
    uint64_t rip;
    uint64_t time_ns;
    uint32_t offset;  // payload start in the arena (chunk << kArenaShift | offset in chunk)
    trace::EventType type;
    uint8_t cpl;
    trace::CpuMode mode;
    uint8_t flags;
  };
  static_assert(sizeof(Row) == 24);
  // Rows and payloads live in fixed-size chunks, never moved once written: appending to a
  // store of millions of events costs the same at every size (a growing std::vector would
  // copy all of them at each doubling — a frame of tens of milliseconds during a live run).
  static constexpr unsigned kRowShift = 16;    // 65,536 rows (1.5 MiB) a chunk
  static constexpr unsigned kArenaShift = 20;  // 1 MiB of payload a chunk
  const Row& row(size_t i) const {
    return row_chunks_[i >> kRowShift][i & ((size_t{1} << kRowShift) - 1)];
  }
  const uint8_t* payload(uint32_t offset) const {
    return arena_chunks_[offset >> kArenaShift].get() + (offset & ((1u << kArenaShift) - 1));
  }
  std::vector<std::unique_ptr<Row[]>> row_chunks_;
  std::vector<std::unique_ptr<uint8_t[]>> arena_chunks_;
  size_t size_ = 0;
  uint64_t arena_end_ = 0;  // next free payload offset
};

}  // namespace trapscope::viz
