#include "visualizer/core/event_store.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>

namespace trapscope::viz {
namespace {

using trace::EventHeader;
using trace::EventType;

constexpr size_t kHeader = sizeof(EventHeader);

// Each type's variable part (trace/events.def TRAPSCOPE_TAIL): the record is stored as the
// bytes before `array`, `count` elements of it, and the bytes after it.
struct Tail {
  uint16_t array = 0;  // offset of the array in the record; 0: no variable part
  uint16_t bytes = 0;  // its size
  uint16_t elem = 0;   // one element's size
  uint16_t count = 0;  // offset of the count field (1 or 2 bytes, before the array)
  uint8_t count_size = 0;
};

constexpr auto kTails = [] {
  std::array<Tail, static_cast<size_t>(EventType::kMax)> t{};
#define TRAPSCOPE_TAIL(Id, Array, Count)                                                   \
  {                                                                                        \
    using S = trace::EventStruct<EventType::Id>;                                           \
    static_assert(offsetof(S, Count) < offsetof(S, Array) && sizeof(S::Count) <= 2);       \
    t[static_cast<size_t>(EventType::Id)] = {offsetof(S, Array), sizeof(S::Array),         \
                                             sizeof(S::Array[0]), offsetof(S, Count),      \
                                             sizeof(S::Count)};                            \
  }
#include "trace/events.def"
  return t;
}();

// The number of meaningful elements: the count field, clamped to the array.
size_t tail_count(const Tail& t, const uint8_t* record) {
  uint16_t n = record[t.count];
  if (t.count_size == 2) n |= static_cast<uint16_t>(record[t.count + 1] << 8);  // little-endian
  return std::min<size_t>(n, t.bytes / t.elem);
}

// Packs a record of type T into buf, its variable part trimmed; returns the bytes. The sizes are
// constants per type, so each copy compiles as a hand-written one would.
template <EventType T>
size_t pack(const uint8_t* rec, uint8_t* buf) {
  constexpr Tail t = kTails[static_cast<size_t>(T)];
  constexpr size_t size = sizeof(trace::EventStruct<T>);
  if constexpr (t.elem == 0) {
    std::memcpy(buf, rec + kHeader, size - kHeader);
    return size - kHeader;
  } else {
    constexpr size_t before = t.array - kHeader, after = size - t.array - t.bytes;
    const size_t count = tail_count(t, rec), kept = count * t.elem;
    std::memcpy(buf, rec + kHeader, before);
    buf[t.count - kHeader] = static_cast<uint8_t>(count);  // clamped: load() needs no check
    if constexpr (t.count_size == 2) buf[t.count - kHeader + 1] = static_cast<uint8_t>(count >> 8);
    std::memcpy(buf + before, rec + t.array, kept);
    std::memcpy(buf + before + kept, rec + t.array + t.bytes, after);
    return before + kept + after;
  }
}

// The reverse: rebuilds the record after its header from the packed bytes p.
template <EventType T>
void unpack(const uint8_t* p, uint8_t* rec) {
  constexpr Tail t = kTails[static_cast<size_t>(T)];
  constexpr size_t size = sizeof(trace::EventStruct<T>);
  if constexpr (t.elem == 0) {
    std::memcpy(rec + kHeader, p, size - kHeader);
  } else {
    constexpr size_t before = t.array - kHeader, after = size - t.array - t.bytes;
    std::memcpy(rec + kHeader, p, before);
    const size_t kept = tail_count(t, rec) * t.elem;
    std::memcpy(rec + t.array, p + before, kept);
    std::memcpy(rec + t.array + t.bytes, p + before + kept, after);
  }
}

}  // namespace

bool EventStore::append(const EventHeader& e) {
  if (e.size != trace::event_size(e.type) || e.size == 0) return false;
  const auto* bytes = reinterpret_cast<const uint8_t*>(&e);
  uint8_t buf[sizeof(EventRecord)];
  size_t n = 0;
  switch (e.type) {
#define TRAPSCOPE_EVENT(Id, number, Struct, name, label) \
  case EventType::Id: n = pack<EventType::Id>(bytes, buf); break;
#include "trace/events.def"
    default: return false;
  }
  // A payload never straddles two arena chunks: start the next chunk when it does not fit.
  constexpr uint64_t kArenaChunk = uint64_t{1} << kArenaShift;
  uint64_t offset = arena_end_;
  if ((offset & (kArenaChunk - 1)) + n > kArenaChunk) offset = (offset | (kArenaChunk - 1)) + 1;
  if (offset + n > UINT32_MAX || size_ >= UINT32_MAX) return false;
  while ((offset + n + kArenaChunk - 1) >> kArenaShift > arena_chunks_.size()) {
    arena_chunks_.push_back(std::make_unique_for_overwrite<uint8_t[]>(kArenaChunk));
  }
  if ((size_ >> kRowShift) >= row_chunks_.size()) {
    row_chunks_.push_back(std::make_unique_for_overwrite<Row[]>(size_t{1} << kRowShift));
  }
  row_chunks_[size_ >> kRowShift][size_ & ((size_t{1} << kRowShift) - 1)] =
      Row{e.rip, e.time_ns, static_cast<uint32_t>(offset), e.type, e.cpl, e.cpu_mode, e.flags};
  std::memcpy(arena_chunks_[offset >> kArenaShift].get() + (offset & (kArenaChunk - 1)), buf, n);
  arena_end_ = offset + n;
  ++size_;
  return true;
}

void EventStore::truncate(size_t n) {
  if (n >= size_) return;
  arena_end_ = row(n).offset;
  size_ = n;
  // Give back the chunks past the new end.
  row_chunks_.resize((size_ + (size_t{1} << kRowShift) - 1) >> kRowShift);
  arena_chunks_.resize((arena_end_ + (uint64_t{1} << kArenaShift) - 1) >> kArenaShift);
}

void EventStore::clear() {
  row_chunks_.clear();
  arena_chunks_.clear();
  size_ = 0;
  arena_end_ = 0;
}

uint32_t EventStore::exit_reason(size_t i) const {
  const Row& r = row(i);
  if (r.type != EventType::kVmExit) return 0;
  uint32_t reason;
  std::memcpy(&reason, payload(r.offset), sizeof reason);
  return reason;
}

EventHeader EventStore::header(size_t i) const {
  const Row& r = row(i);
  EventHeader h{};
  h.type = r.type;
  h.cpl = r.cpl;
  h.cpu_mode = r.mode;
  h.flags = r.flags;
  h.size = trace::event_size(r.type);
  h.seq = i;
  h.time_ns = r.time_ns;
  h.rip = r.rip;
  return h;
}

void EventStore::load(size_t i, EventRecord* out) const {
  const Row& r = row(i);
  std::memset(out, 0, sizeof *out);
  out->header = header(i);
  const uint8_t* p = payload(r.offset);
  switch (r.type) {
#define TRAPSCOPE_EVENT(Id, number, Struct, name, label) \
  case EventType::Id: unpack<EventType::Id>(p, out->raw); break;
#include "trace/events.def"
    default: break;
  }
}

size_t EventStore::memory_bytes() const {
  return row_chunks_.size() * (sizeof(Row) << kRowShift) +
         arena_chunks_.size() * (size_t{1} << kArenaShift) +
         row_chunks_.capacity() * sizeof(row_chunks_[0]) +
         arena_chunks_.capacity() * sizeof(arena_chunks_[0]);
}

void EventStore::reserve(size_t events, size_t payload_bytes) {
  row_chunks_.reserve((events >> kRowShift) + 1);
  arena_chunks_.reserve((payload_bytes >> kArenaShift) + 1);
}

}  // namespace trapscope::viz
