// trace/recorder.hpp — where events go: the EventSink interface and the in-memory Recorder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
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

// Keeps every event in memory: records packed back to back in one byte array, plus the offset
// of each. Memory: the record sizes (88 bytes per VM exit) + 8 bytes per event.
class Recorder final : public EventSink {
 public:
  void on_event(const EventHeader& event) override;

  size_t size() const { return offsets_.size(); }
  bool empty() const { return offsets_.empty(); }
  void clear();

  // The i-th event's header (i < size()).
  const EventHeader& at(size_t i) const;

  // The i-th event as T; nullptr if it is of another type.
  template <typename T>
  const T* get(size_t i, EventType type) const {
    const EventHeader& h = at(i);
    return h.type == type && h.size == sizeof(T) ? reinterpret_cast<const T*>(&h) : nullptr;
  }

 private:
  std::vector<std::max_align_t> storage_;  // aligned bytes; records are 8-byte multiples
  size_t used_ = 0;                        // bytes used in storage_
  std::vector<uint64_t> offsets_;
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
