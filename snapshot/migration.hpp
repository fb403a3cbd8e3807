// snapshot/migration.hpp — live migration of a running machine to another trapscope process over
// TCP: pre-copy as Clark et al. describe it ("Live Migration of Virtual Machines", NSDI 2005).
//
// [SECTION] Rounds
//   Round 0 sends every page that is not zero while the guest runs; each later round sends the
//   pages dirtied during the one before (KVM: its dirty log, KVM_GET_DIRTY_LOG, where the host's
//   log works — vmm/dirty_log.hpp; otherwise, and on the simulator, the pages whose bytes differ
//   from the copy last sent). The rounds stop when the rest would be sent within
//   max_downtime_ms at the link's rate (converged) or after max_rounds (not converged: the guest
//   is then paused for a longer stop-and-copy). Stop-and-copy: the guest stops, the last dirty
//   pages and the vCPU and device state (a snapshot file without memory, snapshot/format.hpp)
//   go, and the source stops only after the destination confirms. Downtime = from the pause to
//   that confirmation.
// [SECTION] The link
//   `bandwidth_mb_s` > 0 models a link of that rate: each batch of pages (256, 1 MiB) takes its
//   time on the link, during which the guest runs; 0 = as fast as the socket goes (the guest
//   runs 2 ms between batches). The guest runs between batches, on this thread.
// [SECTION] Faults
//   A connection that cannot be made, is refused (another format version, another memory size)
//   or drops mid-migration leaves the source's machine as it was: the guest runs on here as if
//   nothing had happened (the result says why it was not migrated). The destination refuses a
//   stream of another version or memory size and changes nothing until a whole, checked state
//   has arrived.
// [SECTION] Stream (all little-endian)
//   source → destination: hello = "TRAPMIG1", version major u16, minor u16, memory bytes u64,
//     metadata JSON (u64 length + bytes: guest, engine);
//   destination → source: status u8 (0 accepted, 1 refused), reason (u64 length + bytes);
//   then messages: type u32 — 1 pages: round u32, count u64, per page: index u64, kind u8
//     (0 zero, 1 raw), 4096 bytes if raw; 2 state: length u64 + a snapshot file (snapshot/
//     format.hpp, its MEM section without pages); 3 abort. After the state the destination
//     answers status u8 + reason as for the hello.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "snapshot/format.hpp"

namespace trapscope::snapshot {

inline constexpr uint16_t kMigrationVersionMajor = 1, kMigrationVersionMinor = 0;

struct MigrationOptions {
  double max_downtime_ms = 300;  // QEMU's default downtime limit (migrate_set_parameter)
  unsigned max_rounds = 30;
  double bandwidth_mb_s = 0;     // 0: no limit (MB = 10^6 bytes)
  double connect_timeout_s = 10;
};

struct RoundReport {
  unsigned round = 0;
  uint64_t pages_sent = 0;
  uint64_t pages_dirtied = 0;  // dirtied while this round was sent (what the next one sends)
  uint64_t bytes = 0;          // on the wire
  double duration_ms = 0;
};

struct MigrationResult {
  bool migrated = false;
  std::string why_not;          // when not migrated: what happened (the guest ran on here)
  std::string tracking;         // "KVM dirty log" or "page comparison (…)"
  std::vector<RoundReport> rounds;
  bool converged = false;       // false: stopped at max_rounds
  uint64_t stop_copy_pages = 0;
  double total_ms = 0, downtime_ms = 0;
  // The table of `run --migrate-to`: a line per round, then the totals.
  std::string text() const;
};

// Source: runs `machine` (already loaded) under `stop` while migrating it to `address`
// ("127.0.0.1:PORT"); events of the run go to `sink`. Returns how the local run ended: after a
// migration, reason kStopped with detail "migrated to …"; otherwise the run went on here to
// its end (the result says why it was not migrated). `meta` as for capture().
backend::RunOutcome run_migrating(backend::Backend& machine, const backend::StopCondition& stop,
                                  trace::EventSink* sink, const std::string& address,
                                  const MigrationOptions& options, Metadata meta,
                                  MigrationResult* result);

// Destination: listens on `address`, accepts one source and receives its machine into
// `machine` (same memory size; made, not loaded). Returns the received metadata. Throws
// RestoreError (refused stream, dropped connection, bad state) — `machine` then holds no
// complete state and must not run — or std::system_error (cannot listen).
Metadata receive_migration(backend::Backend& machine, const std::string& address,
                           double timeout_s);

}  // namespace trapscope::snapshot
