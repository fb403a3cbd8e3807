// tests/test_virtio_guest.cpp — the disk-virtio guest (guests/disk-virtio.asm, a driver written
// from the virtio 1.1 specification) against virtio-blk on KVM and on the simulator under every
// technique: its exit code, the disk's bytes after the run, the device events, read-only and
// missing disks, and co-simulation KVM vs simulator.
#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "backend/cosim.hpp"
#include "guests/guest_catalog.hpp"
#include "platform/virtio_blk.hpp"
#include "tests/support.hpp"
#include "trace/recorder.hpp"

using namespace trapscope;

namespace {

constexpr uint64_t kSectors = 128;

uint8_t pattern(uint64_t sector, uint64_t i) { return static_cast<uint8_t>(sector * 0x1D + i); }

// The disk the guest expects: byte i of sector s = (s * 0x1D + i) mod 256.
std::shared_ptr<platform::MemoryBlock> pattern_disk(bool read_only = false) {
  auto d = std::make_shared<platform::MemoryBlock>(kSectors, read_only);
  for (uint64_t s = 0; s < kSectors; ++s) {
    for (uint64_t i = 0; i < 512; ++i) d->bytes()[s * 512 + i] = pattern(s, i);
  }
  return d;
}

struct GuestRun {
  backend::RunOutcome out;
  std::string console;
  std::vector<std::shared_ptr<platform::MemoryBlock>> disks;
  platform::VirtioBlk::Counters counters;
  platform::VirtioBlk::BlkCounters blk;
  size_t chain_events = 0, notify_events = 0;
  size_t unbacked_writes = 0;  // Devices::mmio_writes: writes no device claimed
};

GuestRun run_guest(backend::Kind kind, sim::virt::Technique t, bool with_disk = true,
                   bool read_only = false) {
  const auto g = guests::find("disk-virtio");
  REQUIRE(g);
  GuestRun r;
  backend::Config cfg;
  cfg.mode = platform::BootMode::kProtected;
  cfg.technique = t;
  if (with_disk) {
    cfg.add_disks = [&r, read_only](platform::Devices& d) {
      r.disks.push_back(pattern_disk(read_only));
      d.disks.push_back(r.disks.back());
    };
  }
  auto b = backend::make_backend(kind, cfg);
  b->load(g->image);
  trace::Recorder rec;
  r.out = b->run({30.0}, &rec);
  r.console = b->devices().console.text();
  r.unbacked_writes = b->devices().mmio_writes.size();
  if (!b->devices().virtio_blk.empty()) {
    r.counters = b->devices().virtio_blk[0]->counters();
    r.blk = b->devices().virtio_blk[0]->blk_counters();
  }
  for (size_t i = 0; i < rec.size(); ++i) {
    if (const auto* e = rec.get<trace::DeviceEvent>(i, trace::EventType::kDevice)) {
      r.chain_events += e->action == trace::DeviceAction::kChain;
      r.notify_events += e->action == trace::DeviceAction::kNotify;
    }
  }
  return r;
}

void check_success(const GuestRun& r) {
  INFO(r.console << r.out.detail);
  REQUIRE(r.out.reason == trace::RunEndReason::kGuestExit);
  CHECK(r.out.exit_code == 0);
  CHECK_THAT(r.console, Catch::Contains("read back: ok"));
  REQUIRE(r.disks.size() == 1);
  const auto& bytes = r.disks[0]->bytes();
  bool as_expected = true;
  for (uint64_t s = 0; s < kSectors; ++s) {
    for (uint64_t i = 0; i < 512; ++i) {
      const uint8_t want = s >= 64 && s < 80 ? pattern(s, i) ^ 0xA5 : pattern(s, i);
      as_expected &= bytes[s * 512 + i] == want;
    }
  }
  CHECK(as_expected);
  CHECK(r.disks[0]->flushes == 2);  // the guest's VIRTIO_BLK_T_FLUSH and the VMM's at the run end
  // 5 batches (GET_ID; 8 reads; 2 writes; flush; 1 read back), one notify each.
  CHECK(r.counters.notifies == 5);
  CHECK(r.notify_events == 5);
  CHECK(r.chain_events == 13);
  CHECK(r.blk.sectors_read == 80);
  CHECK(r.blk.sectors_written == 16);
  CHECK(r.counters.needs_reset == 0);
  CHECK(r.unbacked_writes == 0);  // register writes reach the device: not "unbacked"
}

}  // namespace

TEST_CASE("disk-virtio on the simulator, every technique", "[virtio][guest][sim]") {
  for (auto t : {sim::virt::Technique::kEmulation, sim::virt::Technique::kTrapEmulate,
                 sim::virt::Technique::kVt, sim::virt::Technique::kBt,
                 sim::virt::Technique::kPv}) {
    INFO("technique " << sim::virt::to_string(t));
    check_success(run_guest(backend::Kind::kSim, t));
  }
}

TEST_CASE("disk-virtio on KVM", "[virtio][guest][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  check_success(run_guest(backend::Kind::kKvm, sim::virt::Technique::kEmulation));
}

TEST_CASE("disk-virtio without a disk finds no device (exit code 1)", "[virtio][guest][sim]") {
  const GuestRun r = run_guest(backend::Kind::kSim, sim::virt::Technique::kEmulation, false);
  CHECK(r.out.reason == trace::RunEndReason::kGuestExit);
  CHECK(r.out.exit_code == 1);
}

TEST_CASE("disk-virtio on a read-only disk: the write is refused with IOERR (exit code 9)",
          "[virtio][guest][sim]") {
  const GuestRun r = run_guest(backend::Kind::kSim, sim::virt::Technique::kEmulation, true, true);
  CHECK(r.out.reason == trace::RunEndReason::kGuestExit);
  CHECK(r.out.exit_code == 9);
  CHECK(r.blk.ioerr == 2);  // both OUT requests of the batch
  REQUIRE(r.disks.size() == 1);
  CHECK(r.disks[0]->bytes() == pattern_disk()->bytes());
}

TEST_CASE("co-simulation: disk-virtio, KVM vs simulator", "[virtio][cosim][kvm][sim]") {
  REQUIRE_KVM_OR_SKIP();
  const auto g = guests::find("disk-virtio");
  REQUIRE(g);
  backend::Config cfg;
  cfg.mode = platform::BootMode::kProtected;
  std::vector<std::shared_ptr<platform::MemoryBlock>> disks;
  cfg.add_disks = [&disks](platform::Devices& d) {
    disks.push_back(pattern_disk());
    d.disks.push_back(disks.back());
  };
  const auto r = backend::cosimulate(g->image, cfg, {60.0, 100000, 50'000'000});
  INFO(r.report);
  CHECK(r.equal);
  REQUIRE(disks.size() == 2);
  CHECK(disks[0]->bytes() == disks[1]->bytes());
}
