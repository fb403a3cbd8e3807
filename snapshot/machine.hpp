// snapshot/machine.hpp — between a running machine (backend::Backend, either engine) and a
// snapshot file (snapshot/format.hpp): taking one and restoring one, on the same engine or the
// other (docs/snapshots.md "Cross-engine restore").
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "snapshot/format.hpp"

namespace trapscope::snapshot {

// A machine that cannot be snapshotted or a file that cannot be restored on it: why.
class RestoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The state an engine cannot give, for Metadata::not_captured (also docs/snapshots.md).
std::vector<std::string> not_captured(backend::Kind engine);

// The machine's state now (Backend::snapshot: on KVM after the last exit's access completed).
// `meta` holds what the caller knows (guest, technique, paging, point, exits, instructions);
// engine, memory size, host, time, tool version and not_captured are filled in here.
// Throws RestoreError when the devices refuse (platform::Devices::snapshot_blocker).
// `with_memory` false: the file's MEM section holds no pages (live migration sends them).
File capture(backend::Backend& machine, Metadata meta, bool with_memory = true);

// Puts the file's memory, registers and devices into `machine` (of either engine, made with
// the file's memory size). Throws RestoreError: another memory size, an event pending delivery
// restored on the simulator, KVM refusing the state (its message). `with_memory` false: guest
// memory is left as it is (live migration sends it page by page, snapshot/migration.hpp).
void apply(const File& file, backend::Backend& machine, bool with_memory = true);

// Forwards every event to `next` but holds back each run end, so that a run made of several
// Backend::run calls (a snapshot taken on the way, a migration's slices) has one: release()
// forwards the last one held.
class HoldRunEnd final : public trace::EventSink {
 public:
  explicit HoldRunEnd(trace::EventSink* next) : next_(next) {}
  void on_event(const trace::EventHeader& e) override;
  bool full() const override { return next_ && next_->full(); }
  // Forwards the last run end held, its exit count and duration increased by those of the
  // parts before it (their run ends were held back).
  void release(uint64_t earlier_exits = 0, uint64_t earlier_ns = 0);

 private:
  trace::EventSink* next_;
  trace::RunEndEvent held_{};
  bool holding_ = false;
};

// Now in ISO 8601 UTC, e.g. "2026-12-06T22:10:00Z".
std::string utc_now();

}  // namespace trapscope::snapshot
