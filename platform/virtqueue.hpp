// platform/virtqueue.hpp — the split virtqueue of OASIS virtio 1.1 §2.6 as a device reads it
// from guest RAM: a descriptor table (§2.6.5), an available ring the driver fills (§2.6.6) and a
// used ring the device fills (§2.6.8). Everything goes through platform::GuestRam, so a
// guest-chosen address or length that leaves RAM is refused, never followed.
//
// Layout in guest memory (little-endian; §2.6 "Queue Part Alignment": 16, 2 and 4 bytes):
//   descriptor table  size × { le64 addr; le32 len; le16 flags; le16 next; }   (16 bytes each)
//   available ring    le16 flags; le16 idx; le16 ring[size]; le16 used_event
//   used ring         le16 flags; le16 idx; { le32 id; le32 len; } ring[size]; le16 avail_event
// flags: VIRTQ_DESC_F_NEXT (1) chains to `next`, VIRTQ_DESC_F_WRITE (2) device-writable.
// VIRTQ_DESC_F_INDIRECT (4) is not offered (VIRTIO_F_INDIRECT_DESC is never negotiated), so a
// descriptor that sets it is a bad ring.
//
// Bad rings are the guest's problem, never the VMM's: every walk has hard limits (a descriptor
// index must be < size, a chain may not visit a descriptor twice nor exceed `max_descriptors`)
// and reports what was wrong as a VirtqError; the device then sets DEVICE_NEEDS_RESET (§2.1.2) or
// fails the request with its own status. The numbers of VirtqError are the `value` of a
// needs_reset / error device event (trace/device_event.hpp) and are stable.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "platform/guest_ram.hpp"

namespace trapscope::platform {

inline constexpr uint16_t kVirtqDescFNext = 1;
inline constexpr uint16_t kVirtqDescFWrite = 2;
inline constexpr uint16_t kVirtqDescFIndirect = 4;
inline constexpr uint32_t kVirtqMaxSize = 32768;  // §2.6: Queue Size ≤ 32768

enum class VirtqError : uint8_t {
  kNone = 0,
  kBadQueueSize = 1,       // 0, not a power of two, or above QueueNumMax
  kRingOutsideRam = 2,     // a ring area does not lie wholly in guest RAM
  kRingMisaligned = 3,     // an area not aligned as §2.6 requires
  kAvailIdxJump = 4,       // avail idx moved by more than the queue size since last seen
  kHeadOutOfRange = 5,     // an available-ring entry ≥ queue size
  kNextOutOfRange = 6,     // a descriptor's `next` ≥ queue size
  kDescriptorLoop = 7,     // a chain visits one descriptor twice
  kChainTooLong = 8,       // more than max_descriptors descriptors
  kIndirect = 9,           // VIRTQ_DESC_F_INDIRECT, not negotiated
  kBufferOutsideRam = 10,  // a buffer [addr, addr + len) leaves guest RAM (the chain is intact)
  kWriteBeforeRead = 11,   // a device-readable descriptor after a device-writable one (§2.6.4.2)
  kQueueNotReady = 12,     // a notify for a queue that is not ready (or not DRIVER_OK)
  kNoStatusByte = 13,      // virtio-blk: a request with no device-writable status byte in RAM
  kMax,
};
std::string_view to_string(VirtqError e);  // "descriptor loop", … ; "?" if unknown

struct VirtqDesc {
  uint64_t addr = 0;
  uint32_t len = 0;
  uint16_t flags = 0;
  uint16_t next = 0;
};

// One buffer of a chain: guest-physical [gpa, gpa + len), written by the device if `write`.
struct VirtqBuffer {
  uint64_t gpa = 0;
  uint32_t len = 0;
  bool write = false;
  bool in_ram = true;  // false: the buffer leaves guest RAM (the walk says kBufferOutsideRam)
};

struct VirtqChain {
  uint16_t head = 0;
  std::vector<VirtqBuffer> buffers;  // in chain order: readable ones, then writable ones
  uint64_t readable_bytes = 0, writable_bytes = 0;
};

// Where the driver put a queue (QueueDesc / QueueDriver / QueueDevice) and its size (QueueNum).
struct VirtqLayout {
  uint32_t size = 0;
  uint64_t desc = 0, avail = 0, used = 0;
};

inline constexpr uint64_t virtq_desc_bytes(uint32_t size) { return uint64_t{16} * size; }
inline constexpr uint64_t virtq_avail_bytes(uint32_t size) { return 6 + uint64_t{2} * size; }
inline constexpr uint64_t virtq_used_bytes(uint32_t size) { return 6 + uint64_t{8} * size; }

// kNone if `size` is a power of two in 1..max_size and the three areas are aligned and lie in RAM.
VirtqError check_layout(const GuestRam& ram, const VirtqLayout& q, uint32_t max_size);

// Walks the chain that starts at descriptor `head` (layout already checked). On kNone or
// kBufferOutsideRam, `out` holds the whole chain; on any other error `out` is partial. Never
// reads more than max_descriptors (≤ q.size) descriptors.
VirtqError walk_chain(const GuestRam& ram, const VirtqLayout& q, uint16_t head,
                      uint32_t max_descriptors, VirtqChain* out);

// The device side of one queue: what it has consumed of the available ring and where it is in
// the used ring (§2.6.7, §2.6.8).
class Virtqueue {
 public:
  void reset() { *this = Virtqueue{}; }
  VirtqLayout layout;
  uint16_t last_avail = 0;  // the next available-ring entry the device will take
  uint16_t used_idx = 0;    // the used ring's idx as the device last wrote it

  // The driver's avail idx; false if it cannot be read (layout unchecked).
  bool avail_idx(const GuestRam& ram, uint16_t* idx) const;
  // How many entries are pending, or kAvailIdxJump if idx − last_avail > size.
  VirtqError pending(const GuestRam& ram, uint16_t* count) const;
  // The head of the next available chain; advances last_avail. Checks head < size.
  VirtqError pop(const GuestRam& ram, uint16_t* head);
  // Writes used element { head, len } and then publishes used idx + 1 (§2.6.8.2: the element
  // before the index). False if the ring cannot be written (layout unchecked).
  bool push_used(GuestRam& ram, uint16_t head, uint32_t len);
};

// Reads/writes a chain's data as two byte streams, the device-readable buffers and the
// device-writable buffers, so a request's framing does not depend on how the driver split it
// into descriptors (§2.6.4 "Message Framing"). False if [offset, offset + size) is not wholly
// in the stream or a buffer leaves RAM.
bool chain_read(const GuestRam& ram, const VirtqChain& c, uint64_t offset, std::span<uint8_t> out);
bool chain_write(GuestRam& ram, const VirtqChain& c, uint64_t offset, std::span<const uint8_t> in);

}  // namespace trapscope::platform
