// tests/virtio_driver.hpp — a minimal virtio-mmio / virtio-blk driver written from OASIS virtio
// 1.1 (§3.1.1 initialization, §2.6.13 supplying buffers, §5.2.6 requests), driving a device on
// Devices::mmio over test RAM, so tests can build good and hostile rings by hand.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "platform/devices.hpp"
#include "platform/virtio_blk.hpp"

namespace trapscope::test {

class VirtioTestDriver {
 public:
  // Ring areas (guest-physical) and a data area the tests use.
  static constexpr uint64_t kDesc = 0x1000, kAvail = 0x2000, kUsed = 0x3000, kHeaders = 0x4000;
  static constexpr uint64_t kStatus = 0x5000, kData = 0x10000;

  VirtioTestDriver(platform::Devices& d, std::vector<uint8_t>& mem, unsigned unit = 0)
      : d_(d), mem_(mem), base_(platform::kVirtioMmioBase + platform::kVirtioMmioStride * unit) {}

  uint32_t rd(uint32_t off) {
    uint32_t v = 0;
    d_.mmio.read(base_ + off, {reinterpret_cast<uint8_t*>(&v), 4});
    return v;
  }
  void wr(uint32_t off, uint32_t v) { d_.mmio.write(base_ + off, {reinterpret_cast<uint8_t*>(&v), 4}); }

  // §3.1.1 up to DRIVER_OK with queue 0 of `size` entries at the fixed areas.
  // Returns the status read back.
  uint32_t init(uint32_t size = 16, uint64_t features = platform::kVirtioFVersion1 |
                                                        platform::kVirtioBlkFFlush) {
    using namespace platform;
    wr(kVmStatus, 0);
    wr(kVmStatus, kVirtioStatusAcknowledge);
    wr(kVmStatus, kVirtioStatusAcknowledge | kVirtioStatusDriver);
    wr(kVmDriverFeaturesSel, 0);
    wr(kVmDriverFeatures, static_cast<uint32_t>(features));
    wr(kVmDriverFeaturesSel, 1);
    wr(kVmDriverFeatures, static_cast<uint32_t>(features >> 32));
    wr(kVmStatus, kVirtioStatusAcknowledge | kVirtioStatusDriver | kVirtioStatusFeaturesOk);
    if (!(rd(kVmStatus) & kVirtioStatusFeaturesOk)) return rd(kVmStatus);
    std::memset(mem_.data() + kDesc, 0, 0x4000);
    size_ = size;
    queue(size, kDesc, kAvail, kUsed);
    wr(kVmStatus, rd(kVmStatus) | kVirtioStatusDriverOk);
    return rd(kVmStatus);
  }
  void queue(uint32_t size, uint64_t desc, uint64_t avail, uint64_t used) {
    using namespace platform;
    wr(kVmQueueSel, 0);
    wr(kVmQueueNum, size);
    wr(kVmQueueDescLow, static_cast<uint32_t>(desc));
    wr(kVmQueueDescHigh, static_cast<uint32_t>(desc >> 32));
    wr(kVmQueueDriverLow, static_cast<uint32_t>(avail));
    wr(kVmQueueDriverHigh, static_cast<uint32_t>(avail >> 32));
    wr(kVmQueueDeviceLow, static_cast<uint32_t>(used));
    wr(kVmQueueDeviceHigh, static_cast<uint32_t>(used >> 32));
    wr(kVmQueueReady, 1);
  }

  void put_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
    uint8_t* p = mem_.data() + kDesc + 16 * i;
    std::memcpy(p, &addr, 8);
    std::memcpy(p + 8, &len, 4);
    std::memcpy(p + 12, &flags, 2);
    std::memcpy(p + 14, &next, 2);
  }
  // Makes `head` available (does not notify).
  void make_available(uint16_t head) {
    uint16_t idx;
    std::memcpy(&idx, mem_.data() + kAvail + 2, 2);
    std::memcpy(mem_.data() + kAvail + 4 + 2 * (idx % size_), &head, 2);
    ++idx;
    std::memcpy(mem_.data() + kAvail + 2, &idx, 2);
  }
  void set_avail_idx(uint16_t idx) { std::memcpy(mem_.data() + kAvail + 2, &idx, 2); }
  void notify() { wr(platform::kVmQueueNotify, 0); }

  // A request chain of three descriptors at slot `first` (header, data, status): type, sector,
  // `bytes` of data at `data` (device-writable for IN and GET_ID). Returns the head.
  uint16_t request(uint16_t first, uint32_t type, uint64_t sector, uint64_t data, uint32_t bytes) {
    const uint64_t hdr = kHeaders + 16 * first;
    std::memcpy(mem_.data() + hdr, &type, 4);
    std::memset(mem_.data() + hdr + 4, 0, 4);
    std::memcpy(mem_.data() + hdr + 8, &sector, 8);
    mem_[kStatus + first] = 0xEE;
    const bool dev_writes = type == platform::kVirtioBlkTIn || type == platform::kVirtioBlkTGetId;
    if (bytes == 0) {
      put_desc(first, hdr, 16, platform::kVirtqDescFNext, first + 1);
      put_desc(first + 1, kStatus + first, 1, platform::kVirtqDescFWrite, 0);
    } else {
      put_desc(first, hdr, 16, platform::kVirtqDescFNext, first + 1);
      put_desc(first + 1, data, bytes,
               platform::kVirtqDescFNext | (dev_writes ? platform::kVirtqDescFWrite : 0),
               first + 2);
      put_desc(first + 2, kStatus + first, 1, platform::kVirtqDescFWrite, 0);
    }
    make_available(first);
    return first;
  }
  uint8_t status_of(uint16_t first) const { return mem_[kStatus + first]; }
  uint16_t used_idx() const {
    uint16_t v;
    std::memcpy(&v, mem_.data() + kUsed + 2, 2);
    return v;
  }
  // Used element i: {id, len}.
  std::pair<uint32_t, uint32_t> used(uint16_t i) const {
    uint32_t id, len;
    std::memcpy(&id, mem_.data() + kUsed + 4 + 8 * (i % size_), 4);
    std::memcpy(&len, mem_.data() + kUsed + 8 + 8 * (i % size_), 4);
    return {id, len};
  }

 private:
  platform::Devices& d_;
  std::vector<uint8_t>& mem_;
  uint64_t base_;
  uint32_t size_ = 16;
};

}  // namespace trapscope::test
