#include "visualizer/core/event_store.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>

namespace trapscope::viz {
namespace {

using trace::EventHeader;
using trace::EventType;

constexpr size_t kHeader = sizeof(EventHeader);
// VmExitEvent after the header: reason, handle_ns, insn_addr, insn_len = 17 bytes, then insn[15],
// then the 24-byte payload.
constexpr size_t kExitFixed = 4 + 4 + 8 + 1;
// PageWalkEvent after the header: linear, physical, levels, access, user, faulted, error_code.
constexpr size_t kWalkFixed = 8 + 8 + 4 + 4;
// BtTranslateEvent after the header: everything before code[]; then guest_bytes of code.
constexpr size_t kTranslateFixed = offsetof(trace::BtTranslateEvent, code) - kHeader;

}  // namespace

bool EventStore::append(const EventHeader& e) {
  if (e.size != trace::event_size(e.type) || e.size == 0) return false;
  const auto* bytes = reinterpret_cast<const uint8_t*>(&e);
  const uint8_t* body = bytes + kHeader;
  uint8_t buf[sizeof(EventRecord)];
  size_t n = 0;
  switch (e.type) {
    case EventType::kInstruction: {
      const auto& r = reinterpret_cast<const trace::InstructionEvent&>(e);
      const uint8_t len = std::min<uint8_t>(r.len, 15);
      buf[0] = len;
      std::memcpy(buf + 1, r.bytes, len);
      n = 1 + len;
      break;
    }
    case EventType::kVmExit: {
      const auto& r = reinterpret_cast<const trace::VmExitEvent&>(e);
      const uint8_t len = std::min<uint8_t>(r.insn_len, 15);
      std::memcpy(buf, body, kExitFixed);
      buf[kExitFixed - 1] = len;
      std::memcpy(buf + kExitFixed, r.insn, len);
      std::memcpy(buf + kExitFixed + len, &r.payload, sizeof r.payload);
      n = kExitFixed + len + sizeof r.payload;
      break;
    }
    case EventType::kPageWalk: {
      const auto& r = reinterpret_cast<const trace::PageWalkEvent&>(e);
      const uint8_t levels = std::min<uint8_t>(r.levels, 4);
      std::memcpy(buf, body, kWalkFixed);
      std::memcpy(buf + kWalkFixed, r.level, levels * sizeof(trace::PageWalkLevel));
      n = kWalkFixed + levels * sizeof(trace::PageWalkLevel);
      buf[16] = levels;
      break;
    }
    case EventType::kBtTranslate: {
      const auto& r = reinterpret_cast<const trace::BtTranslateEvent&>(e);
      const size_t len = std::min<size_t>(r.guest_bytes, trace::kBtMaxUnitBytes);
      std::memcpy(buf, body, kTranslateFixed);
      std::memcpy(buf + kTranslateFixed, r.code, len);
      n = kTranslateFixed + len;
      break;
    }
    default:
      n = e.size - kHeader;
      std::memcpy(buf, body, n);
      break;
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

void EventStore::load(size_t i, EventRecord* out) const {
  const Row& r = row(i);
  std::memset(out, 0, sizeof *out);
  EventHeader& h = out->header;
  h.type = r.type;
  h.cpl = r.cpl;
  h.cpu_mode = r.mode;
  h.flags = r.flags;
  h.size = trace::event_size(r.type);
  h.seq = i;
  h.time_ns = r.time_ns;
  h.rip = r.rip;
  uint8_t* body = out->raw + kHeader;
  const uint8_t* p = payload(r.offset);
  switch (r.type) {
    case EventType::kInstruction:
      out->insn.len = p[0];
      std::memcpy(out->insn.bytes, p + 1, p[0]);
      break;
    case EventType::kVmExit: {
      const uint8_t len = p[kExitFixed - 1];
      std::memcpy(body, p, kExitFixed);
      std::memcpy(out->exit.insn, p + kExitFixed, len);
      std::memcpy(&out->exit.payload, p + kExitFixed + len, sizeof out->exit.payload);
      break;
    }
    case EventType::kPageWalk: {
      const uint8_t levels = p[16];
      std::memcpy(body, p, kWalkFixed);
      std::memcpy(out->walk.level, p + kWalkFixed, levels * sizeof(trace::PageWalkLevel));
      break;
    }
    case EventType::kBtTranslate:
      std::memcpy(body, p, kTranslateFixed);
      std::memcpy(out->bt_translate.code, p + kTranslateFixed,
                  std::min<size_t>(out->bt_translate.guest_bytes, trace::kBtMaxUnitBytes));
      break;
    default:
      std::memcpy(body, p, h.size - kHeader);
      break;
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
