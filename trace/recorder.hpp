// trace/recorder.hpp — where events go: the EventSink interface and the in-memory Recorder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "trace/event.hpp"

namespace trapscope::trace {

// Receives events. `event` is the start of a record of event.size bytes (one of the structs in
// trace/event.hpp). Sinks copy what they keep; the record is only valid during the call.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void on_event(const EventHeader& event) = 0;
};

// Keeps every event in memory: records packed back to back in 8 MiB chunks (never copied as
// the recording grows; the host is asked for huge pages), plus a 4-byte location of each.
// Memory: the record sizes (88 bytes per VM exit, 48 per instruction) + 4 bytes per event.
// Limit: 4096 chunks (32 GiB of records); a record past that throws std::length_error.
//
// Fresh memory costs more than writing the records: the kernel zeroes each page on its first
// touch (on this project's hosts ~0.4 ms per MiB, about 20 ns per 48-byte record, more than
// the interpreter takes to execute the instruction; bench/interp_mips). rewind() forgets the
// events but keeps the chunks, so a recording that is repeated (the visualizer re-running a
// guest, a benchmark's rounds) writes over memory that is already mapped.
class Recorder final : public EventSink {
 public:
  Recorder() = default;
  Recorder(Recorder&& other) noexcept { *this = std::move(other); }
  Recorder& operator=(Recorder&& other) noexcept;  // `other` is left empty

  void on_event(const EventHeader& event) override;

  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  void clear();   // forgets every event and frees the memory
  void rewind();  // forgets every event and keeps the memory for the next ones

  // The i-th event's header (i < size(); std::out_of_range otherwise).
  const EventHeader& at(size_t i) const;

  // The i-th event as T; nullptr if it is of another type.
  template <typename T>
  const T* get(size_t i, EventType type) const {
    const EventHeader& h = at(i);
    return h.type == type && h.size == sizeof(T) ? reinterpret_cast<const T*>(&h) : nullptr;
  }

  // Bytes of memory held (chunks and index, in use or kept by rewind()).
  size_t memory_bytes() const;

 private:
  static constexpr size_t kChunkShift = 23;  // 8 MiB chunks
  static constexpr size_t kChunkBytes = size_t{1} << kChunkShift;
  static constexpr size_t kMaxChunks = size_t{1} << (32 - (kChunkShift - 3));  // 4096
  static constexpr size_t kIndexShift = 20;  // index blocks of 1 Mi entries
  static constexpr size_t kIndexPerBlock = size_t{1} << kIndexShift;
  struct FreeDeleter {
    void operator()(void* p) const;
  };
  void next_chunk();
  void next_index_block();
  // Chunks and index blocks in use are [0, chunk_] and [0, block_]; later ones are kept
  // (rewind()) for reuse.
  std::vector<std::unique_ptr<std::byte[], FreeDeleter>> chunks_;
  std::vector<std::unique_ptr<uint32_t[], FreeDeleter>> index_;  // chunk << 20 | offset / 8
  std::byte* cur_ = nullptr;       // the chunk being filled (nullptr before the first record)
  size_t chunk_ = 0;               // its number
  size_t used_ = kChunkBytes;      // bytes used in it
  uint32_t* block_ptr_ = nullptr;  // the index block being filled
  size_t count_ = 0;
};

// Forwards each event to several sinks (e.g. a Recorder and a trace file).
class TeeSink final : public EventSink {
 public:
  void add(EventSink* sink) { sinks_.push_back(sink); }
  void on_event(const EventHeader& event) override {
    for (EventSink* s : sinks_) s->on_event(event);
  }

 private:
  std::vector<EventSink*> sinks_;
};

}  // namespace trapscope::trace
