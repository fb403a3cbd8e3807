// The passthrough device, the simulator's IOMMU model and the `passthrough` guest
// (platform/passthrough.hpp, docs/passthrough.md).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "backend/backend.hpp"
#include "compare/passthrough_rows.hpp"
#include "guests/guest_catalog.hpp"
#include "platform/devices.hpp"
#include "platform/passthrough.hpp"
#include "tests/support.hpp"
#include "trace/recorder.hpp"

namespace {

using namespace trapscope;
using platform::PassthroughDevice;
using platform::PassthroughMode;

// The device on its own: a memory disk, RAM as a span, registers reached through its MMIO face
// (the same bytes the mapped window holds).
struct Rig {
  std::vector<uint8_t> ram_bytes = std::vector<uint8_t>(1 << 20);
  platform::SpanRam ram{ram_bytes};
  std::shared_ptr<platform::MemoryBlock> disk = std::make_shared<platform::MemoryBlock>(64);
  PassthroughDevice dev;
  uint32_t bell = 0;

  explicit Rig(std::unique_ptr<platform::Iommu> iommu = nullptr,
               PassthroughMode mode = PassthroughMode::kEmulated)
      : dev(mode, disk, &ram, std::move(iommu)) {
    for (size_t i = 0; i < disk->bytes().size(); ++i) disk->bytes()[i] = static_cast<uint8_t>(i / 512);
  }
  void put32(uint32_t off, uint32_t v) {
    uint8_t b[4];
    std::memcpy(b, &v, 4);
    dev.mmio().write(off, b);
  }
  void put64(uint32_t off, uint64_t v) {
    uint8_t b[8];
    std::memcpy(b, &v, 8);
    dev.mmio().write(off, b);
  }
  uint32_t get32(uint32_t off) {
    uint8_t b[4];
    dev.mmio().read(off, b);
    uint32_t v;
    std::memcpy(&v, b, 4);
    return v;
  }
  // Runs one command (emulated: the doorbell write runs it); returns ERROR.
  uint32_t command(uint32_t cmd, uint64_t sector, uint32_t length, uint64_t dma) {
    put32(platform::kPtRegCommand, cmd);
    put32(platform::kPtRegLength, length);
    put64(platform::kPtRegSector, sector);
    put64(platform::kPtRegDmaAddr, dma);
    put32(platform::kPtRegDoorbell, ++bell);
    REQUIRE(get32(platform::kPtRegCompleted) == bell);
    return get32(platform::kPtRegError);
  }
};

bool has_event(const std::vector<trace::DeviceEvent>& events, trace::DeviceAction action) {
  for (const auto& e : events) {
    if (e.action == action) return true;
  }
  return false;
}

TEST_CASE("iommu: translates mapped pages, blocks the rest", "[passthrough][iommu]") {
  platform::Iommu t;
  t.map(0, 0x10000, 0x2000, true);
  t.map(0x2000, 0x40000, 0x1000, false);
  auto s = t.translate(0x1800, 0x1000, false);  // crosses into the read-only mapping
  REQUIRE(s);
  REQUIRE(s->size() == 2);
  CHECK((*s)[0].gpa == 0x11800);
  CHECK((*s)[0].bytes == 0x800);
  CHECK((*s)[1].gpa == 0x40000);
  CHECK(!t.translate(0x1800, 0x1000, true));   // a write to the read-only page: blocked whole
  CHECK(!t.translate(0x2800, 0x1000, false));  // runs past every mapping
  CHECK(!t.translate(UINT64_MAX - 10, 100, false));
  t.unmap(0x1000, 0x1000);
  CHECK(t.translate(0x0, 0x1000, true));
  CHECK(!t.translate(0x1000, 1, false));
  CHECK_THROWS_AS(t.map(0x0, 0, 0x1000, true), std::invalid_argument);  // overlaps
  CHECK_THROWS_AS(t.map(0x5001, 0, 0x1000, true), std::invalid_argument);
}

TEST_CASE("passthrough: DMA read and write through the registers", "[passthrough]") {
  Rig r;
  CHECK(r.get32(platform::kPtRegId) == platform::kPtMagic);
  CHECK(r.get32(platform::kPtRegCapacity) == 64);
  REQUIRE(r.command(platform::kPtCmdRead, 3, 1024, 0x1000) == platform::kPtErrNone);
  CHECK(r.ram_bytes[0x1000] == 3);
  CHECK(r.ram_bytes[0x1000 + 1023] == 4);
  std::memset(r.ram_bytes.data() + 0x3000, 0xAB, 512);
  REQUIRE(r.command(platform::kPtCmdWrite, 10, 512, 0x3000) == platform::kPtErrNone);
  CHECK(r.disk->bytes()[10 * 512] == 0xAB);
  REQUIRE(r.command(platform::kPtCmdReadBuf, 7, 512, 0) == platform::kPtErrNone);
  CHECK(r.get32(platform::kPtBuffer) == 0x07070707);
  CHECK(r.get32(platform::kPtRegDone) == 3);
  const auto events = r.dev.take_events();
  CHECK(has_event(events, trace::DeviceAction::kDma));
  CHECK(has_event(events, trace::DeviceAction::kCommand));
  CHECK(r.dev.dma_bytes() == 1536);
}

TEST_CASE("passthrough: hostile register values are refused, never followed",
          "[passthrough][hostile]") {
  Rig r;
  using namespace platform;
  CHECK(r.command(0, 0, 512, 0) == kPtErrCommand);
  CHECK(r.command(0xFFFFFFFF, 0, 512, 0) == kPtErrCommand);
  CHECK(r.command(kPtCmdRead, 0, 0, 0) == kPtErrLength);
  CHECK(r.command(kPtCmdRead, 0, 511, 0) == kPtErrLength);
  CHECK(r.command(kPtCmdRead, 0, 0xFFFFFE00, 0) == kPtErrLength);  // > kPtMaxDma
  CHECK(r.command(kPtCmdReadBuf, 0, 8192, 0) == kPtErrLength);     // > the buffer
  CHECK(r.command(kPtCmdRead, 64, 512, 0) == kPtErrRange);
  CHECK(r.command(kPtCmdRead, UINT64_MAX, 512, 0) == kPtErrRange);
  CHECK(r.command(kPtCmdRead, 63, 1024, 0) == kPtErrRange);
  CHECK(r.command(kPtCmdRead, 0, 512, (1 << 20) - 511) == kPtErrDma);  // ends past RAM
  CHECK(r.command(kPtCmdRead, 0, 512, UINT64_MAX - 100) == kPtErrDma);
  CHECK(r.command(kPtCmdWrite, 0, 512, UINT64_MAX) == kPtErrDma);
  CHECK(r.disk->writes == 0);
  // Accesses outside the window through MMIO: all ones / dropped.
  uint8_t b[8];
  r.dev.mmio().read(platform::kPassthroughBytes - 4, b);
  CHECK(b[7] == 0xFF);
  r.dev.mmio().write(UINT64_MAX - 2, b);
  // The device still works.
  CHECK(r.command(kPtCmdRead, 1, 512, 0) == kPtErrNone);
  CHECK(r.dev.errors() == 12);
}

TEST_CASE("passthrough: the guest cannot write the device's own registers through MMIO",
          "[passthrough]") {
  Rig r;
  r.put32(platform::kPtRegId, 0);
  r.put32(platform::kPtRegCompleted, 77);
  CHECK(r.get32(platform::kPtRegId) == platform::kPtMagic);
  CHECK(r.get32(platform::kPtRegCompleted) == 0);
}

TEST_CASE("iommu: a DMA outside the VM's assignment is blocked with an iommu_fault event and "
          "the device goes on", "[passthrough][iommu]") {
  auto table = std::make_unique<platform::Iommu>();
  table->map(0, 0, 0x8000, true);  // the VMM assigned the first 32 KiB only
  Rig r(std::move(table));
  std::memset(r.ram_bytes.data() + 0x9000, 0x5C, 512);
  CHECK(r.command(platform::kPtCmdRead, 1, 512, 0x9000) == platform::kPtErrDma);
  CHECK(r.ram_bytes[0x9000] == 0x5C);  // nothing reached RAM
  CHECK(r.command(platform::kPtCmdRead, 1, 1024, 0x7E00) == platform::kPtErrDma);  // straddles
  CHECK(r.ram_bytes[0x7E00] == 0);
  CHECK(r.dev.iommu()->faults == 2);
  auto events = r.dev.take_events();
  REQUIRE(has_event(events, trace::DeviceAction::kIommuFault));
  for (const auto& e : events) {
    if (e.action == trace::DeviceAction::kIommuFault) {
      CHECK(e.device == trace::DeviceKind::kIommu);
      CHECK((e.address == 0x9000 || e.address == 0x7E00));
    }
  }
  CHECK(r.command(platform::kPtCmdRead, 1, 512, 0x1000) == platform::kPtErrNone);
  CHECK(r.ram_bytes[0x1000] == 1);
}

TEST_CASE("passthrough: the mapped device's thread reacts to the shared page and joins",
          "[passthrough][thread]") {
  Rig r(nullptr, PassthroughMode::kMapped);
  uint8_t* w = r.dev.window().data();
  auto word = [&](uint32_t off) { return std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(w + off)); };
  r.dev.start_thread();
  REQUIRE(r.dev.thread_running());
  word(platform::kPtRegCommand).store(platform::kPtCmdRead, std::memory_order_relaxed);
  word(platform::kPtRegLength).store(512, std::memory_order_relaxed);
  word(platform::kPtRegSector).store(9, std::memory_order_relaxed);
  word(platform::kPtRegDmaAddr).store(0x2000, std::memory_order_relaxed);
  word(platform::kPtRegDoorbell).store(1, std::memory_order_release);
  // Bounded wait (not a timing assertion: a generous cap so a broken device fails, not hangs).
  bool done = false;
  for (int i = 0; i < 200000 && !done; ++i) {
    done = word(platform::kPtRegCompleted).load(std::memory_order_acquire) == 1;
    if (!done) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  REQUIRE(done);
  CHECK(r.ram_bytes[0x2000] == 9);
  r.dev.stop_thread();
  CHECK(!r.dev.thread_running());
  r.dev.start_thread();  // restartable; the destructor joins it
}

TEST_CASE("passthrough: a VM with the device refuses snapshots with the reason",
          "[passthrough]") {
  platform::Devices plain;
  CHECK(!plain.snapshot_blocker());
  backend::Config cfg;
  cfg.passthrough = PassthroughMode::kMapped;
  auto b = backend::make_backend(backend::Kind::kSim, cfg);
  const auto why = b->devices().snapshot_blocker();
  REQUIRE(why);
  CHECK(why->find("passthrough") != std::string::npos);
  CHECK(why->find("migrated") != std::string::npos);
}

struct GuestRun {
  backend::RunOutcome outcome;
  std::string console;
  uint64_t window_exits = 0;  // MMIO exits at the passthrough window
  uint64_t dma_events = 0, iommu_faults = 0;
  size_t unbacked_writes = 0;  // Devices::mmio_writes: writes no device claimed
};

GuestRun run_guest(backend::Kind kind, PassthroughMode mode) {
  auto guest = guests::find("passthrough");
  REQUIRE(guest);
  backend::Config cfg;
  cfg.mode = *platform::parse_boot_mode(guest->mode);
  cfg.passthrough = mode;
  auto b = backend::make_backend(kind, cfg);
  b->load(guest->image);
  trace::Recorder rec;
  GuestRun g;
  g.outcome = b->run({60.0, 0, 0}, &rec);
  g.console = b->devices().console.text();
  g.unbacked_writes = b->devices().mmio_writes.size();
  for (size_t i = 0; i < rec.size(); ++i) {
    if (const auto* e = rec.get<trace::VmExitEvent>(i, trace::EventType::kVmExit)) {
      if (e->reason == 6 && e->payload.mmio.gpa >= platform::kPassthroughBase &&
          e->payload.mmio.gpa < platform::kPassthroughBase + platform::kPassthroughBytes) {
        ++g.window_exits;
      }
    } else if (const auto* d = rec.get<trace::DeviceEvent>(i, trace::EventType::kDevice)) {
      if (d->action == trace::DeviceAction::kDma) ++g.dma_events;
      if (d->action == trace::DeviceAction::kIommuFault) ++g.iommu_faults;
    }
  }
  return g;
}

// The sum of the 64 sectors' bytes the guest reads: byte i of sector s = (s * 31 + i) & 0xFF.
std::string expected_console() {
  uint32_t sum = 0;
  for (uint64_t s = 0; s < 64; ++s) {
    for (uint32_t i = 0; i < 512; ++i) sum += platform::pattern_byte(s, i);
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "passthrough: checksum=%08x\n", sum);
  return buf;
}

void check_pair(backend::Kind kind) {
  const GuestRun mapped = run_guest(kind, PassthroughMode::kMapped);
  const GuestRun emulated = run_guest(kind, PassthroughMode::kEmulated);
  INFO("mapped: " << mapped.outcome.detail << " console: " << mapped.console);
  INFO("emulated: " << emulated.outcome.detail << " console: " << emulated.console);
  for (const GuestRun* g : {&mapped, &emulated}) {
    CHECK(g->outcome.reason == trace::RunEndReason::kGuestExit);
    CHECK(g->outcome.exit_code == 0);
    CHECK(g->console == expected_console());
    CHECK(g->unbacked_writes == 0);  // the emulated registers claim their MMIO writes
    CHECK(g->dma_events == 4);  // the 4 DMA commands that succeed (a refused one moves nothing)
  }
  CHECK(mapped.window_exits == 0);    // the guest's accesses are memory accesses
  CHECK(emulated.window_exits > 100);  // every register and buffer access an MMIO exit
  CHECK(mapped.outcome.exits < emulated.outcome.exits);
}

TEST_CASE("passthrough guest on the simulator: mapped has no device exits, emulated has them, "
          "same result", "[passthrough][guest]") {
  check_pair(backend::Kind::kSim);
  // Step 7's DMA to 0xF0000000 is outside the VM's assignment: the IOMMU blocked it.
  CHECK(run_guest(backend::Kind::kSim, PassthroughMode::kMapped).iommu_faults == 1);
}

TEST_CASE("passthrough guest on KVM: mapped has no device exits, emulated has them, same result",
          "[passthrough][guest][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  check_pair(backend::Kind::kKvm);
}

TEST_CASE("passthrough guest without the device fails cleanly", "[passthrough][guest]") {
  const GuestRun g = run_guest(backend::Kind::kSim, PassthroughMode::kNone);
  CHECK(g.outcome.reason == trace::RunEndReason::kGuestExit);
  CHECK(g.outcome.exit_code == 1);  // step 1: no device answers at the window
}

TEST_CASE("run --passthrough: the summary says what the VMM could not see", "[passthrough][cli]") {
  auto r = test::run_trapscope({"run", "passthrough", "--backend", "sim", "--passthrough",
                                "mapped", "--quiet"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("could not trace them") != std::string::npos);
  r = test::run_trapscope({"run", "passthrough", "--backend", "sim", "--passthrough", "sideways"});
  CHECK(r.exit_code == 2);
}

TEST_CASE("compare rows: the passthrough guest mapped and emulated side by side",
          "[passthrough][compare]") {
  const auto rows = compare::passthrough_rows(/*no_kvm=*/true);
  REQUIRE(rows.size() == 4);
  CHECK(rows[0].technique == "passthrough-mapped");
  CHECK(rows[1].technique == "passthrough-emulated");
  CHECK(rows[0].ok);
  CHECK(rows[1].ok);
  CHECK(rows[0].causes[compare::kMmio] == 0);
  CHECK(rows[1].causes[compare::kMmio] > 100);
  CHECK(rows[0].exits < rows[1].exits);
  CHECK(rows[2].skipped == "--no-kvm");
}

}  // namespace
