// The ATA PIO controller (platform/ata.hpp) driven through the port bus as a guest driver does,
// against in-memory disks: the register protocol, IDENTIFY DEVICE's words, multi-sector reads
// and writes with DRQ per sector, errors, SRST, drive selection, and the events it raises.
#include <catch2/catch.hpp>

#include <memory>

#include "platform/devices.hpp"
#include "platform/handle_exit.hpp"

using namespace trapscope;
using platform::MemoryBlock;
namespace ata = platform::ata;

namespace {

struct Rig {
  platform::Devices d;
  std::shared_ptr<MemoryBlock> disk;
  explicit Rig(uint64_t sectors = 1024, bool read_only = false, int disks = 1) {
    disk = std::make_shared<MemoryBlock>(sectors, read_only);
    for (size_t i = 0; i < disk->bytes().size(); ++i) {
      disk->bytes()[i] = static_cast<uint8_t>(i * 7 + i / 512);
    }
    d.disks.push_back(disk);
    if (disks == 2) d.disks.push_back(std::make_shared<MemoryBlock>(64));
    d.attach_disks();
  }
  uint8_t in8(uint16_t port) {
    uint8_t v = 0;
    d.pio.read(port, {&v, 1});
    return v;
  }
  uint16_t in16(uint16_t port = 0x1F0) {
    uint8_t b[2];
    d.pio.read(port, b);
    return static_cast<uint16_t>(b[0] | b[1] << 8);
  }
  uint32_t in32(uint16_t port = 0x1F0) {
    uint8_t b[4];
    d.pio.read(port, b);
    return static_cast<uint32_t>(b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24);
  }
  void out8(uint16_t port, uint8_t v) { d.pio.write(port, {&v, 1}); }
  void out16(uint16_t w) {
    const uint8_t b[2] = {static_cast<uint8_t>(w), static_cast<uint8_t>(w >> 8)};
    d.pio.write(0x1F0, b);
  }
  void command(uint8_t cmd, uint32_t lba, uint8_t count, unsigned drive = 0) {
    out8(0x1F6, static_cast<uint8_t>(0xE0 | drive << 4 | (lba >> 24 & 0x0F)));
    out8(0x1F2, count);
    out8(0x1F3, static_cast<uint8_t>(lba));
    out8(0x1F4, static_cast<uint8_t>(lba >> 8));
    out8(0x1F5, static_cast<uint8_t>(lba >> 16));
    out8(0x1F7, cmd);
  }
  // A rep insw of one sector, as the bus sees it: 256 2-byte reads.
  std::vector<uint8_t> read_sector() {
    std::vector<uint8_t> s(512);
    for (size_t i = 0; i < 256; ++i) {
      const uint16_t w = in16();
      s[2 * i] = static_cast<uint8_t>(w);
      s[2 * i + 1] = static_cast<uint8_t>(w >> 8);
    }
    return s;
  }
  std::vector<uint8_t> on_disk(uint64_t lba) {
    return {disk->bytes().begin() + static_cast<long>(lba * 512),
            disk->bytes().begin() + static_cast<long>(lba * 512 + 512)};
  }
};

}  // namespace

TEST_CASE("ata: no disk leaves the ports floating - a disk answers DRDY", "[ata]") {
  platform::Devices none;
  none.attach_disks();
  uint8_t v = 0;
  none.pio.read(0x1F7, {&v, 1});
  CHECK(v == 0xFF);
  Rig r;
  CHECK(r.in8(0x1F7) == (ata::kDrdy | ata::kDsc));
  // The power-on signature of an ATA device.
  CHECK(r.in8(0x1F2) == 1);
  CHECK(r.in8(0x1F3) == 1);
  CHECK(r.in8(0x1F4) == 0);
  CHECK(r.in8(0x1F5) == 0);
}

TEST_CASE("ata: IDENTIFY DEVICE words a driver checks", "[ata]") {
  Rig r(0x12345);
  r.command(ata::kIdentify, 0, 0);
  CHECK(r.in8(0x1F7) == (ata::kDrdy | ata::kDsc | ata::kDrq));
  std::array<uint16_t, 256> w{};
  for (auto& x : w) x = r.in16();
  CHECK(r.in8(0x1F7) == (ata::kDrdy | ata::kDsc));
  CHECK((w[0] & 0x8000) == 0);
  CHECK((w[49] & 0x0200) != 0);
  CHECK((uint32_t{w[61]} << 16 | w[60]) == 0x12345);
  CHECK(w[27] == ('t' << 8 | 'r'));  // "trapscope ATA disk", byte-swapped
  CHECK(w[28] == ('a' << 8 | 'p'));
  CHECK(w[46] == (' ' << 8 | ' '));
  CHECK(w[10] == ('T' << 8 | 'S'));
  CHECK(w[23] == ('1' << 8 | '.'));
  CHECK((w[80] & 0x0100) != 0);  // ATA8-ACS
  CHECK((w[83] & 0xC000) == 0x4000);
  CHECK((w[83] & 0x1000) != 0);  // FLUSH CACHE
  CHECK((w[83] & 0x0400) == 0);  // no LBA48
  uint8_t sum = 0;
  for (uint16_t x : w) sum = static_cast<uint8_t>(sum + (x & 0xFF) + (x >> 8));
  CHECK(sum == 0);
  CHECK((w[255] & 0xFF) == 0xA5);
}

TEST_CASE("ata: READ SECTORS moves count sectors with DRQ per sector, in any access width",
          "[ata]") {
  Rig r;
  r.d.device_events.clear();
  r.command(ata::kReadSectors, 5, 3);
  CHECK(r.read_sector() == r.on_disk(5));
  CHECK(r.in8(0x1F7) == (ata::kDrdy | ata::kDsc | ata::kDrq));
  std::vector<uint8_t> s(512);  // sector 6 by doublewords
  for (size_t i = 0; i < 128; ++i) {
    const uint32_t v = r.in32();
    std::memcpy(&s[4 * i], &v, 4);
  }
  CHECK(s == r.on_disk(6));
  CHECK(r.read_sector() == r.on_disk(7));
  CHECK(r.in8(0x1F7) == (ata::kDrdy | ata::kDsc));
  CHECK(r.in16() == 0);  // no DRQ: the data port gives nothing
  // Events: command, three data events (one per sector, not per word), complete.
  int commands = 0, data = 0, completes = 0;
  for (const auto& e : r.d.device_events) {
    CHECK(e.device == trace::DeviceKind::kAta);
    if (e.action == trace::DeviceAction::kCommand) {
      ++commands;
      CHECK(e.address == 5);
      CHECK(e.count == 3);
    }
    if (e.action == trace::DeviceAction::kData) {
      CHECK(e.bytes == 512);
      CHECK(e.address == 5 + static_cast<uint64_t>(data));
      CHECK(e.count == (data == 1 ? 128u : 256u));
      ++data;
    }
    if (e.action == trace::DeviceAction::kComplete) {
      ++completes;
      CHECK(e.count == 3);
    }
  }
  CHECK(commands == 1);
  CHECK(data == 3);
  CHECK(completes == 1);
}

TEST_CASE("ata: sector count 0 means 256 sectors", "[ata]") {
  Rig r(300);
  r.command(ata::kReadSectors, 10, 0);
  for (int i = 0; i < 256; ++i) {
    REQUIRE(r.in8(0x1F7) == (ata::kDrdy | ata::kDsc | ata::kDrq));
    CHECK(r.read_sector() == r.on_disk(10 + static_cast<uint64_t>(i)));
  }
  CHECK(r.in8(0x1F7) == (ata::kDrdy | ata::kDsc));
}

TEST_CASE("ata: WRITE SECTORS reaches the disk a sector at a time - FLUSH CACHE flushes", "[ata]") {
  Rig r;
  r.command(ata::kWriteSectors, 100, 2);
  CHECK(r.in8(0x1F7) == (ata::kDrdy | ata::kDsc | ata::kDrq));
  for (int i = 0; i < 256; ++i) r.out16(static_cast<uint16_t>(0xA000 + i));
  CHECK(r.disk->writes == 1);
  CHECK(r.on_disk(100)[0] == 0x00);
  CHECK(r.on_disk(100)[1] == 0xA0);
  CHECK(r.on_disk(100)[511] == 0xA0);
  CHECK(r.on_disk(100)[510] == 0xFF);
  // The second sector as doublewords (`out dx, eax`).
  for (int i = 0; i < 128; ++i) {
    const uint32_t v = 0x11223344;
    r.d.pio.write(0x1F0, {reinterpret_cast<const uint8_t*>(&v), 4});
  }
  CHECK(r.in8(0x1F7) == (ata::kDrdy | ata::kDsc));
  CHECK(r.on_disk(101)[0] == 0x44);
  CHECK(r.on_disk(101)[3] == 0x11);
  r.command(ata::kFlushCache, 0, 0);
  CHECK(r.in8(0x1F7) == (ata::kDrdy | ata::kDsc));
  CHECK(r.disk->flushes == 1);
}

TEST_CASE("ata: errors: unknown command, read-only write, out of range, CHS", "[ata]") {
  Rig r(1024);
  r.command(0x42, 0, 1);  // not a command this device has
  CHECK(r.in8(0x1F7) == (ata::kDrdy | ata::kDsc | ata::kErr));
  CHECK(r.in8(0x1F1) == ata::kAbrt);
  r.command(ata::kReadSectors, 1020, 8);  // past the end: IDNF, nothing moved
  CHECK(r.in8(0x1F7) == (ata::kDrdy | ata::kDsc | ata::kErr));
  CHECK(r.in8(0x1F1) == ata::kIdnf);
  CHECK(r.in16() == 0);
  r.command(ata::kReadSectors, 1016, 8);  // the last 8: fine, and a new command clears ERR
  CHECK(r.in8(0x1F7) == (ata::kDrdy | ata::kDsc | ata::kDrq));
  CHECK(r.in8(0x1F1) == 0);
  r.command(ata::kWriteSectors, 0x0FFFFFFF, 1);  // LBA28's largest
  CHECK(r.in8(0x1F1) == ata::kIdnf);
  r.out8(0x1F6, 0xA0);  // CHS addressing: not supported
  r.out8(0x1F7, ata::kReadSectors);
  CHECK(r.in8(0x1F1) == ata::kAbrt);
  r.command(ata::kIdentifyPacket, 0, 0);  // not a packet device
  CHECK(r.in8(0x1F1) == ata::kAbrt);
  CHECK(r.in8(0x1F4) == 0);
  CHECK(r.in8(0x1F5) == 0);

  Rig ro(64, true);
  const auto before = ro.disk->bytes();
  ro.d.device_events.clear();
  ro.command(ata::kWriteSectors, 0, 1);
  CHECK(ro.in8(0x1F7) == (ata::kDrdy | ata::kDsc | ata::kErr));
  CHECK(ro.in8(0x1F1) == ata::kAbrt);
  for (int i = 0; i < 256; ++i) ro.out16(0xFFFF);  // ignored: no DRQ
  CHECK(ro.disk->bytes() == before);
  bool error_event = false;
  for (const auto& e : ro.d.device_events) {
    if (e.action == trace::DeviceAction::kError) {
      error_event = true;
      CHECK(e.value == ata::kAbrt);
      CHECK(e.command == ata::kWriteSectors);
    }
  }
  CHECK(error_event);
}

TEST_CASE("ata: drive 1 absent reads 0 - present with a second disk", "[ata]") {
  Rig one;
  one.out8(0x1F6, 0xF0);  // select drive 1
  CHECK(one.in8(0x1F7) == 0);
  CHECK(one.in8(0x3F6) == 0);
  one.out8(0x1F7, ata::kIdentify);  // ignored
  CHECK(one.in8(0x1F7) == 0);
  one.out8(0x1F6, 0xE0);
  CHECK(one.in8(0x1F7) == (ata::kDrdy | ata::kDsc));  // drive 0 did not run it either

  Rig two(1024, false, 2);
  two.command(ata::kIdentify, 0, 0, 1);
  std::array<uint16_t, 256> w{};
  for (auto& x : w) x = two.in16();
  CHECK(w[60] == 64);
  CHECK(w[13] == ('-' << 8 | '1'));  // serial "TS-ATA-1"
}

TEST_CASE("ata: SRST holds BSY, then resets to the signature and drive 0", "[ata]") {
  Rig r;
  r.command(ata::kReadSectors, 3, 2);
  r.out8(0x3F6, 0x04 | 0x02);  // SRST (and nIEN, ignored)
  CHECK(r.in8(0x1F7) == ata::kBsy);
  CHECK(r.in8(0x3F6) == ata::kBsy);
  CHECK(r.in8(0x1F2) == ata::kBsy);  // while BSY, registers read as Status
  r.out8(0x3F6, 0x02);
  CHECK(r.in8(0x1F7) == (ata::kDrdy | ata::kDsc));
  CHECK(r.in8(0x1F1) == 0x01);
  CHECK(r.in8(0x1F2) == 1);
  CHECK(r.in8(0x1F3) == 1);
  CHECK(r.in16() == 0);  // the transfer was abandoned
  CHECK(r.d.ata->selected() == 0);
}

TEST_CASE("ata: a status polling loop raises one status event, not one per poll", "[ata]") {
  Rig r;
  r.d.device_events.clear();
  for (int i = 0; i < 50; ++i) r.in8(0x1F7);
  int reads = 0;
  for (const auto& e : r.d.device_events) reads += e.action == trace::DeviceAction::kRegisterRead;
  CHECK(reads == 1);
}

TEST_CASE("ata: a rep insw / rep outsw exit (count 256) moves one sector, one data event",
          "[ata]") {
  Rig r;
  r.command(ata::kWriteSectors, 9, 1);
  std::vector<uint8_t> out(512);
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(i ^ 0x3C);
  r.d.device_events.clear();
  platform::handle_exit(r.d, platform::ExitIoOut{0x1F0, 2, 256, out});
  CHECK(r.on_disk(9) == out);
  CHECK(r.in8(0x1F7) == (ata::kDrdy | ata::kDsc));
  r.command(ata::kReadSectors, 9, 1);
  std::vector<uint8_t> in(512);
  r.d.device_events.clear();
  platform::handle_exit(r.d, platform::ExitIoIn{0x1F0, 2, 256, in});
  CHECK(in == out);
  int data = 0;
  for (const auto& e : r.d.device_events) {
    if (e.action == trace::DeviceAction::kData) {
      ++data;
      CHECK(e.count == 256);
    }
  }
  CHECK(data == 1);
}
