// cli/snapshot_run.hpp — `trapscope run --save-at exit:N|insn:N --save FILE`: the run goes to the
// point, the machine's state is written to FILE (snapshot/format.hpp), and the run goes on to
// its end, so that the output is the uninterrupted run's (cmd_snapshot.cpp).
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "snapshot/format.hpp"

namespace trapscope::cli {

struct SaveRequest {
  bool at_instruction = false;  // insn:N (simulator only); else exit:N
  uint64_t n = 0;
  std::string file;
};

// nullopt and no error when neither option is given; an error for a malformed point, one
// option without the other, or insn:N on KVM.
std::optional<SaveRequest> parse_save_request(const std::string& at, const std::string& file,
                                              backend::Kind kind, std::string* error);

// Metadata of a snapshot of this run (guest name and image hash, technique, paging).
snapshot::Metadata run_metadata(const std::string& guest, const std::vector<uint8_t>& image,
                                const backend::Config& config);

// Runs as Backend::run does, saving the snapshot at the point on the way. The outcome is the
// whole run's (exits, instructions and time of both parts). *saved: false when the run ended
// before the point (then a message on stderr says so). Throws std::runtime_error when the
// snapshot cannot be taken or written.
backend::RunOutcome run_saving(backend::Backend& machine, const backend::StopCondition& stop,
                               trace::EventSink* sink, const SaveRequest& save,
                               snapshot::Metadata meta, bool* saved);

// `--guest-arg N[,M]`: RDI = N and RSI = M before the guest's first instruction (the `dirty`
// guest's working set and passes). False with *error for a malformed value.
bool set_guest_arg(backend::Backend& machine, const std::string& arg, std::string* error);

// `run --migrate-to ADDR` and `run --migrate-listen ADDR` (snapshot/migration.hpp).
struct MigrateRequest {
  std::string to, listen;
  double max_downtime_ms = 300;
  unsigned max_rounds = 30;
  double bandwidth_mb_s = 0;
};

// Destination: waits for the machine and says what arrived on `info`; false (after a message on
// stderr) when no complete machine arrived.
bool receive_incoming(backend::Backend& machine, const std::string& address, double timeout_s,
                      std::FILE* info);

// Source: runs while migrating and prints the per-round report on `info`. *migrated: the
// guest now runs at the destination (the local run ended with kStopped).
backend::RunOutcome run_migrating(backend::Backend& machine, const backend::StopCondition& stop,
                                  trace::EventSink* sink, const MigrateRequest& request,
                                  snapshot::Metadata meta, std::FILE* info, bool* migrated);

}  // namespace trapscope::cli
