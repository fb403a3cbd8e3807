// Where a VM exit is shown: at the instruction that caused it, on both engines (trace/event.hpp,
// VmExitEvent), and every event of a run has its own sequence number.
//
// KVM's emulator completes an MMIO write before it exits to user space, so RIP is already past
// the store (KVM API 5. KVM_EXIT_MMIO); the VMM finds the store just before RIP by decoding it
// and checking that its memory operand is the written address (vmm/kvm_machine.cpp,
// locate_exiting_instruction). The guests (tests/exits/*.asm) put other instructions after
// each store, so a VMM that shows the exit at RIP shows the wrong instruction.
#include <catch2/catch.hpp>

#include <algorithm>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "backend/cosim.hpp"
#include "support.hpp"
#include "trace/recorder.hpp"
#include "x86/decoder.hpp"

using namespace trapscope;

namespace {

struct MmioWrite {
  uint64_t rip, gpa;
  std::vector<uint8_t> insn;
};

std::vector<MmioWrite> mmio_writes(backend::Kind kind, const backend::Config& config,
                                   const std::vector<uint8_t>& image) {
  auto b = backend::make_backend(kind, config);
  b->load(image);
  trace::Recorder rec;
  const auto out = b->run({}, &rec);
  CHECK(out.reason == trace::RunEndReason::kGuestExit);
  std::vector<MmioWrite> writes;
  for (size_t i = 0; i < rec.size(); ++i) {
    const auto* e = rec.get<trace::VmExitEvent>(i, trace::EventType::kVmExit);
    if (!e || e->reason != static_cast<uint32_t>(trace::ExitReason::kMmio)) continue;
    if (!e->payload.mmio.is_write) continue;
    writes.push_back({e->header.rip, e->payload.mmio.gpa, {e->insn, e->insn + e->insn_len}});
  }
  return writes;
}

std::vector<uint8_t> exit_guest(const std::string& name) {
  const auto bytes = test::read_file(std::string(TRAPSCOPE_EXITS_DIR) + "/" + name + ".bin");
  return {bytes.begin(), bytes.end()};
}

}  // namespace

TEST_CASE("an MMIO write's exit is shown at the storing instruction on KVM, as on the simulator",
          "[kvm][exits]") {
  REQUIRE_KVM_OR_SKIP();
  struct Case {
    const char* guest;
    platform::BootMode mode;
    x86::CpuMode cpu_mode;
    size_t stores;
  };
  for (const Case& c : {Case{"mmio-store32", platform::BootMode::kProtected,
                             x86::CpuMode::kProtected32, 4},
                        Case{"mmio-store64", platform::BootMode::kLong, x86::CpuMode::kLong64, 3}}) {
    INFO(c.guest);
    backend::Config config;
    config.mode = c.mode;
    const auto image = exit_guest(c.guest);
    const auto kvm = mmio_writes(backend::Kind::kKvm, config, image);
    const auto sim = mmio_writes(backend::Kind::kSim, config, image);
    REQUIRE(sim.size() == c.stores);
    REQUIRE(kvm.size() == sim.size());
    for (size_t i = 0; i < kvm.size(); ++i) {
      INFO("store " << i);
      CHECK(kvm[i].gpa == sim[i].gpa);
      CHECK(kvm[i].rip == sim[i].rip);
      // The bytes shown are a store to memory (not the nop, inc or pause after it).
      x86::Instruction insn;
      REQUIRE(x86::decode(kvm[i].insn, c.cpu_mode, &insn) == x86::DecodeStatus::kOk);
      CHECK(insn.op == x86::Op::kMov);
      CHECK(insn.ops[0].kind == x86::OperandKind::kMem);
    }
    // And co-simulation finds the two engines equal.
    const auto r = backend::cosimulate(image, config, {});
    INFO(r.report);
    CHECK(r.equal);
  }
}

TEST_CASE("every event of a KVM run has its own increasing sequence number, the run end included",
          "[kvm][exits]") {
  REQUIRE_KVM_OR_SKIP();
  // pv-hello's console_write hypercalls add a hypercall record after their doorbell exits.
  auto b = test::guest_backend("pv-hello", false, backend::Kind::kKvm);
  trace::Recorder rec;
  b->run({}, &rec);
  REQUIRE(rec.size() > 2);
  size_t records = 0;
  for (size_t i = 0; i < rec.size(); ++i) {
    INFO("event " << i);
    CHECK(rec.at(i).seq == i);
    if (const auto* e = rec.get<trace::VmExitEvent>(i, trace::EventType::kVmExit);
        e && (e->header.flags & trace::kExitFlagHypercallRecord)) {
      ++records;
    }
  }
  CHECK(records > 0);
  CHECK(rec.at(rec.size() - 1).type == trace::EventType::kRunEnd);
}

namespace {

// An MMIO device that raises a device event for every write it sees.
class EventingDevice final : public platform::MmioDevice {
 public:
  explicit EventingDevice(platform::Devices& devices) : devices_(devices) {}
  std::string_view name() const override { return "eventing"; }
  void read(uint64_t, std::span<uint8_t> data) override { std::fill(data.begin(), data.end(), 0); }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    trace::DeviceEvent e{};
    e.device = trace::DeviceKind::kPassthrough;
    e.action = trace::DeviceAction::kRegisterWrite;
    e.command = static_cast<uint32_t>(offset);
    e.count = static_cast<uint32_t>(data.size());
    devices_.emit(e);
  }

 private:
  platform::Devices& devices_;
};

void check_device_events_follow_their_exit(backend::Kind kind) {
  backend::Config config;
  config.mode = platform::BootMode::kProtected;
  auto b = backend::make_backend(kind, config);
  EventingDevice device(b->devices());
  b->devices().mmio.insert(0xF0000000, 0x1000, &device);
  b->load(exit_guest("mmio-store32"));
  trace::Recorder rec;
  REQUIRE(b->run({}, &rec).reason == trace::RunEndReason::kGuestExit);
  std::vector<uint64_t> offsets;
  for (size_t i = 0; i < rec.size(); ++i) {
    const trace::EventHeader& h = rec.at(i);
    CHECK(h.seq == i);  // dense and in order, device events included
    const auto* d = rec.get<trace::DeviceEvent>(i, trace::EventType::kDevice);
    if (!d) continue;
    // Right after the MMIO write's VM exit, at the same instruction.
    REQUIRE(i > 0);
    const auto* exit = rec.get<trace::VmExitEvent>(i - 1, trace::EventType::kVmExit);
    REQUIRE(exit != nullptr);
    CHECK(exit->reason == static_cast<uint32_t>(trace::ExitReason::kMmio));
    CHECK(d->header.rip == exit->header.rip);
    offsets.push_back(d->command);
  }
  CHECK(offsets == std::vector<uint64_t>{0x0, 0x10, 0x20, 0x30});
  CHECK(b->devices().device_events.empty());
}

}  // namespace

TEST_CASE("a device's events follow the VM exit that caused them, on the simulator",
          "[exits][devices]") {
  check_device_events_follow_their_exit(backend::Kind::kSim);
}

TEST_CASE("a device's events follow the VM exit that caused them, on KVM", "[kvm][exits][devices]") {
  REQUIRE_KVM_OR_SKIP();
  check_device_events_follow_their_exit(backend::Kind::kKvm);
}
