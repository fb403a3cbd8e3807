#include "compare/passthrough_rows.hpp"

#include <string>

#include "backend/backend.hpp"
#include "compare/event_counts.hpp"
#include "guests/guest_catalog.hpp"
#include "platform/passthrough.hpp"

namespace trapscope::compare {
namespace {

Row run_passthrough(backend::Kind kind, platform::PassthroughMode mode, const guests::Guest& g) {
  Row row;
  row.technique = "passthrough-" + std::string(platform::to_string(mode));
  row.guest = std::string(g.name);
  row.simulator = kind == backend::Kind::kSim;
  backend::Config cfg;
  cfg.mode = *platform::parse_boot_mode(g.mode);
  cfg.passthrough = mode;
  std::string why;
  if (!row.simulator && !backend::kvm_usable(&why)) {
    row.skipped = "KVM is not usable here: " + why;
    return row;
  }
  auto m = backend::make_backend(kind, cfg);
  m->load(g.image);
  Counts c(Source::kVmExits);
  const backend::RunOutcome r = m->run({}, &c);
  row.end = std::string(trace::to_string(r.reason));
  row.ok = r.reason == trace::RunEndReason::kGuestExit && r.exit_code == 0;
  row.instructions = r.instructions;
  row.exits = r.exits;
  row.exceptions = c.exceptions;
  row.wall_ms = static_cast<double>(r.duration_ns) / 1e6;
  row.causes = c.causes;
  return row;
}

}  // namespace

std::vector<Row> passthrough_rows(bool no_kvm) {
  const auto g = guests::find("passthrough");
  std::vector<Row> rows;
  if (!g) return rows;
  for (const backend::Kind kind : {backend::Kind::kSim, backend::Kind::kKvm}) {
    for (const auto mode : {platform::PassthroughMode::kMapped, platform::PassthroughMode::kEmulated}) {
      if (kind == backend::Kind::kKvm && no_kvm) {
        Row row;
        row.technique = "passthrough-" + std::string(platform::to_string(mode));
        row.guest = std::string(g->name);
        row.simulator = false;
        row.skipped = "--no-kvm";
        rows.push_back(row);
        continue;
      }
      rows.push_back(run_passthrough(kind, mode, *g));
    }
  }
  return rows;
}

}  // namespace trapscope::compare
