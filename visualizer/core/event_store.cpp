#include "visualizer/core/event_store.hpp"

#include <algorithm>
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
    default:
      n = e.size - kHeader;
      std::memcpy(buf, body, n);
      break;
  }
  if (arena_.size() + n > UINT32_MAX || rows_.size() >= UINT32_MAX) return false;
  rows_.push_back({e.rip, e.time_ns, static_cast<uint32_t>(arena_.size()), e.type, e.cpl,
                   e.cpu_mode, e.flags});
  arena_.insert(arena_.end(), buf, buf + n);
  return true;
}

void EventStore::truncate(size_t n) {
  if (n >= rows_.size()) return;
  arena_.resize(rows_[n].offset);
  rows_.resize(n);
}

void EventStore::clear() {
  rows_.clear();
  arena_.clear();
}

uint32_t EventStore::exit_reason(size_t i) const {
  const Row& r = rows_[i];
  if (r.type != EventType::kVmExit) return 0;
  uint32_t reason;
  std::memcpy(&reason, arena_.data() + r.offset, sizeof reason);
  return reason;
}

void EventStore::load(size_t i, EventRecord* out) const {
  const Row& r = rows_[i];
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
  const uint8_t* p = arena_.data() + r.offset;
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
    default:
      std::memcpy(body, p, h.size - kHeader);
      break;
  }
}

size_t EventStore::memory_bytes() const {
  return rows_.capacity() * sizeof(Row) + arena_.capacity();
}

void EventStore::reserve(size_t events, size_t payload_bytes) {
  rows_.reserve(events);
  arena_.reserve(payload_bytes);
}

}  // namespace trapscope::viz
