// tests/test_guest_ram.cpp — the interfaces device models are written against: guest RAM for DMA
// (platform/guest_ram.hpp) and a disk of sectors (platform/block.hpp), and that both engines
// give their devices the guest's RAM.
#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

#include "backend/backend.hpp"
#include "platform/block.hpp"
#include "platform/guest_ram.hpp"
#include "tests/support.hpp"

using namespace trapscope;

TEST_CASE("SpanRam refuses an access that leaves RAM, as a whole", "[devices][dma]") {
  std::vector<uint8_t> bytes(8192, 0);
  uint64_t hooked_gpa = 0, hooked_len = 0;
  struct Seen {
    uint64_t* gpa;
    uint64_t* len;
  } seen{&hooked_gpa, &hooked_len};
  platform::SpanRam ram(bytes, [](void* c, uint64_t gpa, uint64_t len) {
    *static_cast<Seen*>(c)->gpa = gpa;
    *static_cast<Seen*>(c)->len = len;
  }, &seen);
  const std::vector<uint8_t> four = {1, 2, 3, 4};
  CHECK(ram.write(8188, four));
  CHECK(hooked_gpa == 8188);
  CHECK(hooked_len == 4);
  CHECK_FALSE(ram.write(8189, four));  // one byte past the end: nothing written
  CHECK(bytes[8189] == 2);
  CHECK_FALSE(ram.write(UINT64_MAX - 1, four));  // wraps around
  std::vector<uint8_t> out(4);
  CHECK_FALSE(ram.read(8190, out));
  CHECK(ram.read(8188, out));
  CHECK(out == four);
  CHECK(ram.read(8192, std::span<uint8_t>()));  // an empty access at the end is inside
}

TEST_CASE("MemoryBlock checks ranges and read-only", "[devices][block]") {
  platform::MemoryBlock disk(4);
  std::vector<uint8_t> sector(platform::kSectorBytes, 0xAB);
  CHECK(disk.write(3, sector) == platform::BlockStatus::kOk);
  CHECK(disk.write(4, sector) == platform::BlockStatus::kOutOfRange);
  std::vector<uint8_t> two(2 * platform::kSectorBytes);
  CHECK(disk.read(3, two) == platform::BlockStatus::kOutOfRange);
  CHECK(disk.read(2, two) == platform::BlockStatus::kOk);
  CHECK(two[platform::kSectorBytes] == 0xAB);
  platform::MemoryBlock ro(4, /*read_only=*/true);
  CHECK(ro.write(0, sector) == platform::BlockStatus::kReadOnly);
}

namespace {

void check_engine_ram(backend::Kind kind) {
  backend::Config config;
  config.memory_bytes = 1 << 20;
  auto machine = backend::make_backend(kind, config);
  platform::GuestRam* ram = machine->devices().ram;
  REQUIRE(ram != nullptr);
  CHECK(ram->size() == config.memory_bytes);
  const std::vector<uint8_t> bytes = {0xDE, 0xAD};
  REQUIRE(ram->write(0x1000, bytes));
  CHECK(machine->memory()[0x1000] == 0xDE);
  CHECK(machine->memory()[0x1001] == 0xAD);
  CHECK_FALSE(ram->write(config.memory_bytes - 1, bytes));
}

}  // namespace

TEST_CASE("The simulator gives its devices the guest's RAM", "[devices][dma]") {
  check_engine_ram(backend::Kind::kSim);
}

TEST_CASE("The KVM backend gives its devices the guest's RAM", "[devices][dma][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  check_engine_ram(backend::Kind::kKvm);
}
