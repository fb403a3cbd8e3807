// Fuzz target: the flat-binary loader (platform/loader.hpp, through Backend::load) and a bounded
// simulator run of random bytes, in every CPU mode, technique and memory virtualization.
//
// Input: byte 0 the boot mode (real, protected, long), byte 1 the technique (emulation,
// trap-emulate, vt, bt, pv), byte 2 the paging (native, shadow, ept), byte 3 the deprivilege
// (trap-emulate: CPL 1 or 3) and the TLB size (1 … 4096 entries), byte 4 the load address
// (0x8000, 0x7000, 0x10000, 0x0 or 1 MiB − 16: the last two are refused by the loader in some
// modes), byte 5 the memory (1 or 2 MiB); the rest is the guest image.
//
// The run is bounded: at most kMaxInstructions instructions, kMaxExits VM exits and
// kTimeoutS seconds of wall time. A bad image must be refused with platform::LoadError; a run must
// end with a RunEndReason, and every event must have its type's size (trace/event.hpp).
// Anything else thrown (std::bad_alloc from unbounded captures included) is a crash.
#include <cstdint>

#include "backend/backend.hpp"
#include "tests/fuzz/fuzz_input.hpp"

using namespace trapscope;

namespace {

constexpr const char* kTarget = "fuzz_sim";
constexpr uint64_t kMaxInstructions = 4096;
constexpr uint64_t kMaxExits = 256;
constexpr double kTimeoutS = 2.0;

struct CheckingSink final : trace::EventSink {
  void on_event(const trace::EventHeader& e) override {
    if (e.size != trace::event_size(e.type) || e.size == 0) {
      fuzz::invariant_failed(kTarget, "an event whose size is not its type's");
    }
    ++events;
  }
  uint64_t events = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  backend::Config cfg;
  static constexpr platform::BootMode kModes[] = {platform::BootMode::kReal, platform::BootMode::kProtected,
                                             platform::BootMode::kLong};
  cfg.mode = kModes[in.pick(3)];
  cfg.technique = static_cast<sim::virt::Technique>(in.pick(5));
  cfg.paging = static_cast<sim::VmmPaging>(in.pick(3));
  const uint8_t b3 = in.u8();
  cfg.deprivilege = (b3 & 1) ? 3 : 1;
  cfg.tlb_entries = 1u << ((b3 >> 1) % 13);  // 1 … 4096
  static constexpr uint64_t kLoads[] = {0x8000, 0x7000, 0x10000, 0x0, (1u << 20) - 16};
  cfg.load_address = kLoads[in.pick(5)];
  cfg.memory_bytes = (1 + in.pick(2)) << 20;
  const auto image = in.rest();

  auto machine = backend::make_backend(backend::Kind::kSim, cfg);
  try {
    machine->load(image);
  } catch (const platform::LoadError&) {
    return 0;  // refused with the rule it breaks
  }
  CheckingSink sink;
  backend::StopCondition stop;
  stop.timeout_s = kTimeoutS;
  stop.max_exits = kMaxExits;
  stop.max_instructions = kMaxInstructions;
  const backend::RunOutcome r = machine->run(stop, &sink);
  if (r.reason == trace::RunEndReason{} || r.reason >= trace::RunEndReason::kMax) {
    fuzz::invariant_failed(kTarget, "a run that ended without a known reason");
  }
  return 0;
}
