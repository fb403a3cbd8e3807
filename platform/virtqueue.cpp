#include "platform/virtqueue.hpp"

#include <algorithm>
#include <iterator>

namespace trapscope::platform {

namespace {

bool read_le16(const GuestRam& ram, uint64_t gpa, uint16_t* v) {
  uint8_t b[2];
  if (!ram.read(gpa, b)) return false;
  *v = static_cast<uint16_t>(b[0] | b[1] << 8);
  return true;
}

uint64_t le(const uint8_t* p, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = n; i-- > 0;) v = v << 8 | p[i];
  return v;
}

void put_le(uint8_t* p, uint64_t v, unsigned n) {
  for (unsigned i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

bool read_desc(const GuestRam& ram, const VirtqLayout& q, uint16_t i, VirtqDesc* d) {
  uint8_t b[16];
  if (!ram.read(q.desc + uint64_t{16} * i, b)) return false;
  d->addr = le(b, 8);
  d->len = static_cast<uint32_t>(le(b + 8, 4));
  d->flags = static_cast<uint16_t>(le(b + 12, 2));
  d->next = static_cast<uint16_t>(le(b + 14, 2));
  return true;
}

// Calls f(gpa, piece_offset, piece_len) for the part of [offset, offset + size) of the stream
// (the readable or writable buffers of `c`) that lies in each buffer. False if the range is not
// wholly inside the stream or a buffer it touches is outside RAM.
template <typename F>
bool for_range(const VirtqChain& c, bool writable, uint64_t offset, uint64_t size, F&& f) {
  uint64_t pos = 0;  // stream offset of the current buffer
  uint64_t done = 0;
  for (const VirtqBuffer& b : c.buffers) {
    if (b.write != writable) continue;
    if (done == size) break;
    const uint64_t start = offset + done;
    if (start < pos + b.len) {
      if (!b.in_ram) return false;
      const uint64_t in = start - pos;
      const uint64_t n = std::min<uint64_t>(b.len - in, size - done);
      if (!f(b.gpa + in, done, n)) return false;
      done += n;
    }
    pos += b.len;
  }
  return done == size;
}

}  // namespace

std::string_view to_string(VirtqError e) {
  static constexpr std::string_view kNames[] = {
      "none",
      "queue size not a power of two or above QueueNumMax",
      "ring outside guest RAM",
      "ring misaligned",
      "avail idx jumped by more than the queue size",
      "available head out of range",
      "descriptor next out of range",
      "descriptor loop",
      "chain too long",
      "indirect descriptor (not negotiated)",
      "buffer outside guest RAM",
      "device-readable descriptor after a device-writable one",
      "notify for a queue that is not ready",
      "request without a writable status byte",
  };
  static_assert(std::size(kNames) == static_cast<size_t>(VirtqError::kMax));
  const auto i = static_cast<size_t>(e);
  return i < std::size(kNames) ? kNames[i] : "?";
}

VirtqError check_layout(const GuestRam& ram, const VirtqLayout& q, uint32_t max_size) {
  if (q.size == 0 || (q.size & (q.size - 1)) != 0 || q.size > max_size ||
      q.size > kVirtqMaxSize) {
    return VirtqError::kBadQueueSize;
  }
  if (q.desc % 16 != 0 || q.avail % 2 != 0 || q.used % 4 != 0) {
    return VirtqError::kRingMisaligned;
  }
  if (!ram.contains(q.desc, virtq_desc_bytes(q.size)) ||
      !ram.contains(q.avail, virtq_avail_bytes(q.size)) ||
      !ram.contains(q.used, virtq_used_bytes(q.size))) {
    return VirtqError::kRingOutsideRam;
  }
  return VirtqError::kNone;
}

VirtqError walk_chain(const GuestRam& ram, const VirtqLayout& q, uint16_t head,
                      uint32_t max_descriptors, VirtqChain* out) {
  out->head = head;
  out->buffers.clear();
  out->readable_bytes = out->writable_bytes = 0;
  if (head >= q.size) return VirtqError::kHeadOutOfRange;
  max_descriptors = std::min(max_descriptors, q.size);
  std::vector<bool> seen(q.size, false);
  VirtqError soft = VirtqError::kNone;
  bool any_write = false;
  uint16_t i = head;
  for (;;) {
    if (seen[i]) return VirtqError::kDescriptorLoop;
    if (out->buffers.size() >= max_descriptors) return VirtqError::kChainTooLong;
    seen[i] = true;
    VirtqDesc d;
    if (!read_desc(ram, q, i, &d)) return VirtqError::kRingOutsideRam;
    if (d.flags & kVirtqDescFIndirect) return VirtqError::kIndirect;
    const bool write = d.flags & kVirtqDescFWrite;
    if (!write && any_write) return VirtqError::kWriteBeforeRead;
    any_write |= write;
    const bool in_ram = ram.contains(d.addr, d.len);
    if (!in_ram) soft = VirtqError::kBufferOutsideRam;
    out->buffers.push_back({d.addr, d.len, write, in_ram});
    (write ? out->writable_bytes : out->readable_bytes) += d.len;
    if (!(d.flags & kVirtqDescFNext)) break;
    if (d.next >= q.size) return VirtqError::kNextOutOfRange;
    i = d.next;
  }
  return soft;
}

bool Virtqueue::avail_idx(const GuestRam& ram, uint16_t* idx) const {
  return read_le16(ram, layout.avail + 2, idx);
}

VirtqError Virtqueue::pending(const GuestRam& ram, uint16_t* count) const {
  uint16_t idx;
  if (!avail_idx(ram, &idx)) return VirtqError::kRingOutsideRam;
  const uint16_t n = static_cast<uint16_t>(idx - last_avail);
  if (n > layout.size) return VirtqError::kAvailIdxJump;
  *count = n;
  return VirtqError::kNone;
}

VirtqError Virtqueue::pop(const GuestRam& ram, uint16_t* head) {
  const uint64_t slot = layout.avail + 4 + uint64_t{2} * (last_avail % layout.size);
  if (!read_le16(ram, slot, head)) return VirtqError::kRingOutsideRam;
  ++last_avail;
  return *head < layout.size ? VirtqError::kNone : VirtqError::kHeadOutOfRange;
}

bool Virtqueue::push_used(GuestRam& ram, uint16_t head, uint32_t len) {
  uint8_t elem[8];
  put_le(elem, head, 4);
  put_le(elem + 4, len, 4);
  if (!ram.write(layout.used + 4 + uint64_t{8} * (used_idx % layout.size), elem)) return false;
  uint8_t idx[2];
  put_le(idx, static_cast<uint16_t>(used_idx + 1), 2);
  if (!ram.write(layout.used + 2, idx)) return false;
  ++used_idx;
  return true;
}

bool chain_read(const GuestRam& ram, const VirtqChain& c, uint64_t offset,
                std::span<uint8_t> out) {
  return for_range(c, false, offset, out.size(), [&](uint64_t gpa, uint64_t at, uint64_t n) {
    return ram.read(gpa, out.subspan(at, n));
  });
}

bool chain_write(GuestRam& ram, const VirtqChain& c, uint64_t offset,
                 std::span<const uint8_t> in) {
  return for_range(c, true, offset, in.size(), [&](uint64_t gpa, uint64_t at, uint64_t n) {
    return ram.write(gpa, in.subspan(at, n));
  });
}

}  // namespace trapscope::platform
