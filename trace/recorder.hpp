// trace/recorder.hpp — where events go: the EventSink interface and the in-memory Recorder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
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
// the recording grows; the host is asked for huge pages), plus the location of each.
// Memory: the record sizes (88 bytes per VM exit, 48 per instruction) + 8 bytes per event.
class Recorder final : public EventSink {
 public:
  void on_event(const EventHeader& event) override;

  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  void clear();

  // The i-th event's header (i < size(); std::out_of_range otherwise).
  const EventHeader& at(size_t i) const;

  // The i-th event as T; nullptr if it is of another type.
  template <typename T>
  const T* get(size_t i, EventType type) const {
    const EventHeader& h = at(i);
    return h.type == type && h.size == sizeof(T) ? reinterpret_cast<const T*>(&h) : nullptr;
  }

 private:
  static constexpr size_t kChunkBytes = 8u << 20;
  static constexpr size_t kIndexPerChunk = 1u << 20;
  struct FreeDeleter {
    void operator()(void* p) const;
  };
  std::byte* new_chunk();
  std::vector<std::unique_ptr<std::byte[], FreeDeleter>> chunks_;       // records
  size_t used_ = kChunkBytes;                                          // bytes used in the last
  std::vector<std::unique_ptr<uint64_t[], FreeDeleter>> index_;        // chunk << 32 | offset
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
