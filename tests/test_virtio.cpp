// tests/test_virtio.cpp — the virtio-mmio transport, the split virtqueue and virtio-blk
// (platform/virtio_mmio.hpp, virtqueue.hpp, virtio_blk.hpp) driven through Devices::mmio over
// test RAM: registers, feature negotiation, every request type in one batch, read-only disks,
// and each hostile ring (the device reports it, the test's "run" goes on).
#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <vector>

#include "platform/devices.hpp"
#include "platform/virtio_blk.hpp"
#include "platform/virtqueue.hpp"
#include "tests/virtio_driver.hpp"

using namespace trapscope;
using platform::VirtqError;
using test::VirtioTestDriver;

namespace {

struct Rig {
  explicit Rig(uint64_t sectors = 128, bool read_only = false, size_t ram_bytes = 1 << 20)
      : mem(ram_bytes, 0), ram(mem) {
    d.ram = &ram;
    disk = std::make_shared<platform::MemoryBlock>(sectors, read_only);
    for (uint64_t i = 0; i < disk->bytes().size(); ++i) {
      disk->bytes()[i] = static_cast<uint8_t>((i >> 9) * 0x1D + i);
    }
    d.disks.push_back(disk);
    d.attach_disks();
  }
  platform::VirtioBlk& dev() { return *d.virtio_blk.at(0); }
  size_t count(trace::DeviceAction a) const {
    size_t n = 0;
    for (const auto& e : d.device_events) n += e.action == a;
    return n;
  }
  std::vector<uint8_t> mem;
  platform::SpanRam ram;
  platform::Devices d;
  std::shared_ptr<platform::MemoryBlock> disk;
};

constexpr uint8_t kAllOk = platform::kVirtioStatusAcknowledge | platform::kVirtioStatusDriver |
                           platform::kVirtioStatusFeaturesOk | platform::kVirtioStatusDriverOk;

// The device entered DEVICE_NEEDS_RESET for `why`, said so in an event, and a reset and a fresh
// initialization make it work again (the run goes on).
void check_needs_reset(Rig& r, VirtioTestDriver& drv, VirtqError why) {
  CHECK((drv.rd(platform::kVmStatus) & platform::kVirtioStatusNeedsReset) != 0);
  CHECK(r.dev().counters().last_error == why);
  bool seen = false;
  for (const auto& e : r.d.device_events) {
    if (e.action == trace::DeviceAction::kNeedsReset && e.value == static_cast<uint64_t>(why)) {
      seen = true;
    }
  }
  CHECK(seen);
  CHECK(drv.init() == kAllOk);
  drv.request(0, platform::kVirtioBlkTIn, 1, VirtioTestDriver::kData, 512);
  drv.notify();
  CHECK(drv.status_of(0) == platform::kVirtioBlkSOk);
  CHECK(drv.used_idx() == 1);
}

}  // namespace

TEST_CASE("virtio-mmio: identification registers and configuration space", "[virtio]") {
  Rig r(300);
  VirtioTestDriver drv(r.d, r.mem);
  CHECK(drv.rd(platform::kVmMagic) == 0x74726976);
  CHECK(drv.rd(platform::kVmVersion) == 2);
  CHECK(drv.rd(platform::kVmDeviceId) == 2);
  drv.wr(platform::kVmDeviceFeaturesSel, 0);
  CHECK(drv.rd(platform::kVmDeviceFeatures) == (1u << 9));  // FLUSH, not RO
  drv.wr(platform::kVmDeviceFeaturesSel, 1);
  CHECK(drv.rd(platform::kVmDeviceFeatures) == 1u);  // VERSION_1
  CHECK(drv.rd(platform::kVmQueueNumMax) == platform::VirtioMmio::kQueueNumMax);
  drv.wr(platform::kVmQueueSel, 1);  // no second queue
  CHECK(drv.rd(platform::kVmQueueNumMax) == 0);
  CHECK(drv.rd(platform::kVmConfig) == 300);  // capacity, low half
  CHECK(drv.rd(platform::kVmConfig + 4) == 0);
  uint8_t b = 0;  // a byte access to a register is ignored and counted
  r.d.mmio.read(platform::kVirtioMmioBase, {&b, 1});
  CHECK(b == 0);
  CHECK(r.dev().counters().bad_accesses == 1);
  CHECK(r.count(trace::DeviceAction::kRegisterRead) == 10);
}

TEST_CASE("virtio-mmio: FEATURES_OK needs VERSION_1 and a subset, status 0 resets", "[virtio]") {
  Rig r;
  VirtioTestDriver drv(r.d, r.mem);
  CHECK((drv.init(16, platform::kVirtioBlkFFlush) & platform::kVirtioStatusFeaturesOk) == 0);
  CHECK((drv.init(16, platform::kVirtioFVersion1 | (1ull << 2)) &
         platform::kVirtioStatusFeaturesOk) == 0);  // a feature not offered
  CHECK(drv.init() == kAllOk);
  CHECK(r.dev().queue_ready(0));
  drv.wr(platform::kVmStatus, 0);
  CHECK(drv.rd(platform::kVmStatus) == 0);
  CHECK_FALSE(r.dev().queue_ready(0));
  CHECK(r.dev().driver_features() == 0);
}

TEST_CASE("virtio-mmio: RAM reaching the device's range is refused", "[virtio]") {
  std::vector<uint8_t> small(4096);
  platform::SpanRam ram(small);
  struct BigRam final : platform::GuestRam {
    uint64_t size() const override { return platform::kVirtioMmioBase + 1; }
    bool read(uint64_t, std::span<uint8_t>) const override { return false; }
    bool write(uint64_t, std::span<const uint8_t>) override { return false; }
  } big;
  platform::Devices d;
  d.ram = &big;
  d.disks.push_back(std::make_shared<platform::MemoryBlock>(8));
  CHECK_THROWS_AS(d.attach_disks(), std::invalid_argument);
  platform::Devices ok;
  ok.ram = &ram;
  ok.disks.push_back(std::make_shared<platform::MemoryBlock>(8));
  ok.disks.push_back(std::make_shared<platform::MemoryBlock>(8));
  ok.attach_disks();
  CHECK(ok.virtio_blk.size() == 2);
  uint32_t v = 0;
  ok.mmio.read(platform::kVirtioMmioBase + platform::kVirtioMmioStride + platform::kVmConfig,
               {reinterpret_cast<uint8_t*>(&v), 4});
  CHECK(v == 8);
}

TEST_CASE("virtio-blk: a batch of IN, OUT, FLUSH, GET_ID and an unknown type is one notify",
          "[virtio]") {
  Rig r;
  VirtioTestDriver drv(r.d, r.mem);
  REQUIRE(drv.init() == kAllOk);
  for (int i = 0; i < 1024; ++i) r.mem[VirtioTestDriver::kData + 0x4000 + i] = static_cast<uint8_t>(i * 3);
  r.d.device_events.clear();
  drv.request(0, platform::kVirtioBlkTIn, 2, VirtioTestDriver::kData, 1024);
  drv.request(3, platform::kVirtioBlkTOut, 100, VirtioTestDriver::kData + 0x4000, 1024);
  drv.request(6, platform::kVirtioBlkTFlush, 0, 0, 0);
  drv.request(8, platform::kVirtioBlkTGetId, 0, VirtioTestDriver::kData + 0x8000, 20);
  drv.request(11, 77, 0, 0, 0);
  drv.notify();
  CHECK(r.dev().counters().notifies == 1);
  CHECK(drv.used_idx() == 5);
  CHECK(drv.used(0) == std::pair<uint32_t, uint32_t>{0, 1025});
  CHECK(drv.used(1) == std::pair<uint32_t, uint32_t>{3, 1});
  CHECK(drv.used(2) == std::pair<uint32_t, uint32_t>{6, 1});
  CHECK(drv.used(3) == std::pair<uint32_t, uint32_t>{8, 21});
  CHECK(drv.used(4) == std::pair<uint32_t, uint32_t>{11, 1});
  CHECK(drv.status_of(0) == platform::kVirtioBlkSOk);
  CHECK(drv.status_of(3) == platform::kVirtioBlkSOk);
  CHECK(drv.status_of(6) == platform::kVirtioBlkSOk);
  CHECK(drv.status_of(8) == platform::kVirtioBlkSOk);
  CHECK(drv.status_of(11) == platform::kVirtioBlkSUnsupp);
  CHECK(std::equal(r.mem.begin() + VirtioTestDriver::kData,
                   r.mem.begin() + VirtioTestDriver::kData + 1024, r.disk->bytes().begin() + 1024));
  CHECK(std::equal(r.mem.begin() + VirtioTestDriver::kData + 0x4000,
                   r.mem.begin() + VirtioTestDriver::kData + 0x4000 + 1024,
                   r.disk->bytes().begin() + 100 * 512));
  CHECK(r.disk->flushes == 1);
  CHECK(std::string(reinterpret_cast<const char*>(r.mem.data() + VirtioTestDriver::kData + 0x8000)) ==
        "trapscope-vblk0");
  CHECK(r.count(trace::DeviceAction::kNotify) == 1);
  CHECK(r.count(trace::DeviceAction::kChain) == 5);
  CHECK(r.count(trace::DeviceAction::kUsed) == 1);
  CHECK(r.count(trace::DeviceAction::kFlush) == 1);
  CHECK((drv.rd(platform::kVmInterruptStatus) & 1) == 1);  // used buffer notification
  drv.wr(platform::kVmInterruptAck, 1);
  CHECK(drv.rd(platform::kVmInterruptStatus) == 0);
  for (const auto& e : r.d.device_events) {
    if (e.action == trace::DeviceAction::kChain && e.value == 0) {
      CHECK(e.command == platform::kVirtioBlkTIn);
      CHECK(e.address == 2);
      CHECK(e.count == 3);
      CHECK(e.bytes == 1024);
    }
  }
}

TEST_CASE("virtio-blk: a read-only disk offers VIRTIO_BLK_F_RO and refuses OUT with IOERR",
          "[virtio]") {
  Rig r(64, true);
  VirtioTestDriver drv(r.d, r.mem);
  drv.wr(platform::kVmDeviceFeaturesSel, 0);
  CHECK((drv.rd(platform::kVmDeviceFeatures) & (1u << 5)) != 0);
  REQUIRE(drv.init(16, platform::kVirtioFVersion1 | platform::kVirtioBlkFRo) == kAllOk);
  const auto before = r.disk->bytes();
  drv.request(0, platform::kVirtioBlkTOut, 0, VirtioTestDriver::kData, 512);
  drv.notify();
  CHECK(drv.status_of(0) == platform::kVirtioBlkSIoErr);
  CHECK(r.disk->bytes() == before);
  CHECK(r.dev().blk_counters().ioerr == 1);
  CHECK(r.count(trace::DeviceAction::kError) == 1);
}

TEST_CASE("virtio-blk: requests the disk cannot serve are IOERR, the queue goes on", "[virtio]") {
  Rig r(16);
  VirtioTestDriver drv(r.d, r.mem);
  REQUIRE(drv.init() == kAllOk);
  drv.request(0, platform::kVirtioBlkTIn, 15, VirtioTestDriver::kData, 1024);  // past the end
  drv.request(3, platform::kVirtioBlkTIn, 0, VirtioTestDriver::kData, 100);   // not 512-multiple
  drv.request(6, platform::kVirtioBlkTIn, 0, r.mem.size() - 256, 512);        // leaves RAM
  drv.request(9, platform::kVirtioBlkTGetId, 0, VirtioTestDriver::kData, 8);  // too short
  drv.request(12, platform::kVirtioBlkTIn, 3, VirtioTestDriver::kData, 512);  // fine
  drv.notify();
  CHECK(drv.used_idx() == 5);
  for (uint16_t s : {0, 3, 6, 9}) CHECK(drv.status_of(s) == platform::kVirtioBlkSIoErr);
  CHECK(drv.status_of(12) == platform::kVirtioBlkSOk);
  CHECK(r.dev().blk_counters().ioerr == 4);
  CHECK((drv.rd(platform::kVmStatus) & platform::kVirtioStatusNeedsReset) == 0);
}

TEST_CASE("virtio: hostile rings set DEVICE_NEEDS_RESET with a reason, never stop the VMM",
          "[virtio][hostile]") {
  using platform::kVirtqDescFNext;
  using platform::kVirtqDescFWrite;
  Rig r;
  VirtioTestDriver drv(r.d, r.mem);
  SECTION("queue size not a power of two") {
    drv.init(12);
    check_needs_reset(r, drv, VirtqError::kBadQueueSize);
  }
  SECTION("queue size above QueueNumMax") {
    drv.init(512);
    check_needs_reset(r, drv, VirtqError::kBadQueueSize);
  }
  SECTION("ring outside guest RAM") {
    drv.init();
    drv.wr(platform::kVmQueueReady, 0);
    drv.queue(16, VirtioTestDriver::kDesc, r.mem.size() - 8, VirtioTestDriver::kUsed);
    check_needs_reset(r, drv, VirtqError::kRingOutsideRam);
  }
  SECTION("ring address far beyond RAM (high half)") {
    drv.init();
    drv.wr(platform::kVmQueueReady, 0);
    drv.queue(16, 0xFFFF'FFFF'FFFF'FFF0ull, VirtioTestDriver::kAvail, VirtioTestDriver::kUsed);
    check_needs_reset(r, drv, VirtqError::kRingOutsideRam);
  }
  SECTION("descriptor loop") {
    drv.init();
    drv.put_desc(0, VirtioTestDriver::kHeaders, 16, kVirtqDescFNext, 1);
    drv.put_desc(1, VirtioTestDriver::kData, 512, kVirtqDescFNext | kVirtqDescFWrite, 0);
    drv.make_available(0);
    drv.notify();
    check_needs_reset(r, drv, VirtqError::kDescriptorLoop);
  }
  SECTION("next out of range") {
    drv.init();
    drv.put_desc(0, VirtioTestDriver::kHeaders, 16, kVirtqDescFNext, 16);
    drv.make_available(0);
    drv.notify();
    check_needs_reset(r, drv, VirtqError::kNextOutOfRange);
  }
  SECTION("available head out of range") {
    drv.init();
    drv.make_available(40);
    drv.notify();
    check_needs_reset(r, drv, VirtqError::kHeadOutOfRange);
  }
  SECTION("avail idx jumps by more than the queue size") {
    drv.init();
    drv.set_avail_idx(17);
    drv.notify();
    check_needs_reset(r, drv, VirtqError::kAvailIdxJump);
  }
  SECTION("indirect descriptor") {
    drv.init();
    drv.put_desc(0, VirtioTestDriver::kHeaders, 16, platform::kVirtqDescFIndirect, 0);
    drv.make_available(0);
    drv.notify();
    check_needs_reset(r, drv, VirtqError::kIndirect);
  }
  SECTION("no writable status byte") {
    drv.init();
    drv.put_desc(0, VirtioTestDriver::kHeaders, 16, 0, 0);
    drv.make_available(0);
    drv.notify();
    check_needs_reset(r, drv, VirtqError::kNoStatusByte);
  }
  SECTION("readable after writable") {
    drv.init();
    drv.put_desc(0, VirtioTestDriver::kStatus, 1, kVirtqDescFNext | kVirtqDescFWrite, 1);
    drv.put_desc(1, VirtioTestDriver::kHeaders, 16, 0, 0);
    drv.make_available(0);
    drv.notify();
    check_needs_reset(r, drv, VirtqError::kWriteBeforeRead);
  }
  SECTION("notify before DRIVER_OK") {
    drv.notify();
    check_needs_reset(r, drv, VirtqError::kQueueNotReady);
  }
  CHECK(r.dev().counters().needs_reset >= 1);
}

TEST_CASE("virtqueue: walk_chain stops at its limits", "[virtio]") {
  std::vector<uint8_t> mem(1 << 16, 0);
  platform::SpanRam ram(mem);
  const platform::VirtqLayout q{8, 0x1000, 0x2000, 0x3000};
  REQUIRE(platform::check_layout(ram, q, 256) == VirtqError::kNone);
  CHECK(platform::check_layout(ram, {8, 0x1008, 0x2000, 0x3000}, 256) == VirtqError::kRingMisaligned);
  CHECK(platform::check_layout(ram, {0, 0x1000, 0x2000, 0x3000}, 256) == VirtqError::kBadQueueSize);
  auto put = [&](uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
    uint8_t* p = mem.data() + 0x1000 + 16 * i;
    std::memcpy(p, &addr, 8);
    std::memcpy(p + 8, &len, 4);
    std::memcpy(p + 12, &flags, 2);
    std::memcpy(p + 14, &next, 2);
  };
  for (uint16_t i = 0; i < 8; ++i) put(i, 0x4000, 4, platform::kVirtqDescFNext, (i + 1) % 8);
  platform::VirtqChain c;
  CHECK(platform::walk_chain(ram, q, 0, 8, &c) == VirtqError::kDescriptorLoop);
  CHECK(c.buffers.size() == 8);
  CHECK(platform::walk_chain(ram, q, 0, 3, &c) == VirtqError::kChainTooLong);
  CHECK(c.buffers.size() == 3);
  put(2, 0x4000, 4, 0, 0);
  CHECK(platform::walk_chain(ram, q, 0, 8, &c) == VirtqError::kNone);
  CHECK(c.buffers.size() == 3);
  CHECK(c.readable_bytes == 12);
  put(1, mem.size() - 2, 4, platform::kVirtqDescFNext, 2);
  CHECK(platform::walk_chain(ram, q, 0, 8, &c) == VirtqError::kBufferOutsideRam);
  CHECK(c.buffers.size() == 3);
  CHECK_FALSE(c.buffers[1].in_ram);
}
