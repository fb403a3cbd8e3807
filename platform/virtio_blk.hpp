// platform/virtio_blk.hpp — the virtio block device of OASIS virtio 1.1 §5.2 over the virtio-mmio
// transport (platform/virtio_mmio.hpp), serving one disk (platform/block.hpp).
//
// Device ID 2 (§5.1). One request queue (queue 0). Features offered (§5.2.3): VIRTIO_BLK_F_FLUSH
// (bit 9), VIRTIO_BLK_F_RO (bit 5) when the disk is read-only, VIRTIO_F_VERSION_1 (bit 32).
// Configuration space (§5.2.4): le64 capacity in 512-byte sectors at offset 0; the other fields
// belong to features not offered and read 0.
//
// A request (§5.2.6) is one descriptor chain: device-readable { le32 type; le32 reserved;
// le64 sector; } then data (OUT), then device-writable data (IN, GET_ID) and one status byte
// last. Types: VIRTIO_BLK_T_IN 0, _OUT 1, _FLUSH 4, _GET_ID 8 (20 bytes of id string, no NUL
// when 20 long); any other → VIRTIO_BLK_S_UNSUPP (2). Status: VIRTIO_BLK_S_OK 0, _IOERR 1.
// IOERR for: a header shorter than 16 bytes, more than kVirtioBlkMaxRequestBytes of data, a data length not a multiple of 512, sectors past
// the capacity, a write to a read-only disk, a buffer outside guest RAM, a host I/O error, a
// GET_ID buffer shorter than 20 bytes. A chain with no writable status byte cannot be answered
// and sets DEVICE_NEEDS_RESET, as do bad rings (platform/virtqueue.hpp).
//
// One QueueNotify processes every available request (a batch costs one VM exit). Each
// completion is put in the used ring with len = the bytes written into the chain (data + status
// byte); the driver polls the used ring (no interrupts: docs/virtio.md).
//
// Events (device virtio-blk, unit N): one `chain` per request (command = type, address = sector,
// count = descriptors, bytes = data bytes, value = head), `complete` (command = type, status
// field = the VIRTIO_BLK_S_* byte, count = sectors), `error` for IOERR/UNSUPP (value =
// VirtqError or 0), `flush`, one `used` per notify with the used index after.
#pragma once

#include <cstdint>
#include <memory>

#include "platform/block.hpp"
#include "platform/virtio_mmio.hpp"

namespace trapscope::platform {

inline constexpr uint32_t kVirtioIdBlock = 2;
inline constexpr uint64_t kVirtioBlkFRo = uint64_t{1} << 5;
inline constexpr uint64_t kVirtioBlkFFlush = uint64_t{1} << 9;
inline constexpr uint32_t kVirtioBlkTIn = 0, kVirtioBlkTOut = 1, kVirtioBlkTFlush = 4,
                          kVirtioBlkTGetId = 8;
inline constexpr uint8_t kVirtioBlkSOk = 0, kVirtioBlkSIoErr = 1, kVirtioBlkSUnsupp = 2;
inline constexpr uint32_t kVirtioBlkIdBytes = 20;
// The most data one request may move (IOERR beyond): the used ring's len is 32 bits.
inline constexpr uint64_t kVirtioBlkMaxRequestBytes = 4u << 20;

class VirtioBlk final : public VirtioMmio {
 public:
  VirtioBlk(Devices& devices, uint8_t unit, std::shared_ptr<BlockBackend> disk);
  std::string_view name() const override { return name_; }
  const BlockBackend& disk() const { return *disk_; }
  // The GET_ID string: "trapscope-vblkN" (N = unit), zero-padded to 20 bytes.
  std::string id() const;

  struct BlkCounters {
    uint64_t requests = 0, sectors_read = 0, sectors_written = 0, flushes = 0;
    uint64_t ioerr = 0, unsupp = 0;
  };
  const BlkCounters& blk_counters() const { return blk_; }

 protected:
  uint32_t device_id() const override { return kVirtioIdBlock; }
  uint64_t device_features() const override;
  void read_config(uint64_t offset, std::span<uint8_t> data) override;
  void process_queue(uint32_t q) override;

 private:
  // Serves one request; returns false if the device must stop (DEVICE_NEEDS_RESET set).
  bool serve(Virtqueue& vq, uint16_t head);
  uint8_t do_request(const VirtqChain& c, uint32_t type, uint64_t sector, uint64_t data_bytes,
                     uint32_t* written);

  std::shared_ptr<BlockBackend> disk_;
  std::string name_;
  uint8_t unit_;
  BlkCounters blk_;
};

}  // namespace trapscope::platform
