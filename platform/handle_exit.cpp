#include "platform/handle_exit.hpp"

#include <algorithm>
#include <cstring>

namespace trapscope::platform {
namespace {

using trace::RunEndReason;

// [SECTION] IO — each element of a (rep) ins/outs is one access to the bus.
// The elements that lie inside the exit's data: KVM gives size * count bytes, but an exit made
// by hand (tests, fuzzing) or a corrupt one is never trusted to (platform/hypercall.hpp [SECTION]
// Guest memory, rule 2).
uint32_t io_elements(uint8_t size, uint32_t count, size_t bytes) {
  return size == 0 ? 0 : static_cast<uint32_t>(std::min<uint64_t>(count, bytes / size));
}

ExitAction on_io_out(Devices& d, const ExitIoOut& e) {
  for (uint32_t i = 0; i < io_elements(e.size, e.count, e.data.size()); ++i) {
    d.pio.write(e.port, e.data.subspan(size_t{i} * e.size, e.size));
  }
  if (e.port == kControlPort && d.control.exit_code()) {
    return ExitAction::end(RunEndReason::kGuestExit, *d.control.exit_code());
  }
  return ExitAction::resume();
}

ExitAction on_io_in(Devices& d, const ExitIoIn& e) {
  for (uint32_t i = 0; i < io_elements(e.size, e.count, e.data.size()); ++i) {
    d.pio.read(e.port, e.data.subspan(size_t{i} * e.size, e.size));
  }
  if (e.port == kHypercallPort && d.hypercall.take_halt()) {
    return ExitAction::end(RunEndReason::kHalted);
  }
  return ExitAction::resume();
}

// [SECTION] MMIO — to the MMIO bus; unclaimed reads return all ones, and every write no device
// claims is logged (Devices::mmio_writes).
ExitAction on_mmio_read(Devices& d, const ExitMmioRead& e) {
  d.mmio.read(e.gpa, e.data);
  return ExitAction::resume();
}

ExitAction on_mmio_write(Devices& d, const ExitMmioWrite& e) {
  uint64_t v = 0;
  std::memcpy(&v, e.data.data(), e.data.size() < 8 ? e.data.size() : 8);
  if (!d.mmio.write(e.gpa, e.data)) d.record_mmio_write({e.gpa, static_cast<uint8_t>(e.data.size()), v});
  return ExitAction::resume();
}

// [SECTION] Exits that end the run.
ExitAction on_internal_error(const ExitInternalError& e) {
  return ExitAction::end(e.suberror == 1 ? RunEndReason::kEmulationFailure
                                         : RunEndReason::kInternalError);
}

struct Dispatch {
  Devices& d;
  ExitAction operator()(const ExitIoOut& e) const { return on_io_out(d, e); }
  ExitAction operator()(const ExitIoIn& e) const { return on_io_in(d, e); }
  ExitAction operator()(const ExitMmioRead& e) const { return on_mmio_read(d, e); }
  ExitAction operator()(const ExitMmioWrite& e) const { return on_mmio_write(d, e); }
  ExitAction operator()(const ExitHlt&) const { return ExitAction::end(RunEndReason::kHalted); }
  ExitAction operator()(const ExitShutdown&) const {
    return ExitAction::end(RunEndReason::kTripleFault);
  }
  ExitAction operator()(const ExitInternalError& e) const { return on_internal_error(e); }
  ExitAction operator()(const ExitFailEntry&) const {
    return ExitAction::end(RunEndReason::kFailEntry);
  }
  ExitAction operator()(const ExitDebug&) const { return ExitAction::end(RunEndReason::kDebug); }
  ExitAction operator()(const ExitSystemEvent&) const {
    return ExitAction::end(RunEndReason::kUnhandledExit);
  }
  ExitAction operator()(const ExitInterrupted&) const { return ExitAction::resume(); }
  ExitAction operator()(const ExitOther&) const {
    return ExitAction::end(RunEndReason::kUnhandledExit);
  }
};

}  // namespace

ExitAction handle_exit(Devices& devices, const VcpuExit& exit) {
  const ExitAction a = std::visit(Dispatch{devices}, exit);
  if (a.stop) return a;
  // A device that reached its cap (trace/limits.hpp: the console) ends the run.
  if (const auto limit = devices.limit_reached()) return ExitAction::end(*limit);
  return a;
}

}  // namespace trapscope::platform
