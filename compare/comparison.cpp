#include "compare/comparison.hpp"

#include <algorithm>
#include <memory>
#include <utility>

#include "backend/backend.hpp"
#include "compare/event_counts.hpp"
#include "compare/workloads.hpp"
#include "sim/bt/translator.hpp"
#include "trace/event.hpp"
#include "vmm/doctor.hpp"

namespace trapscope::compare {

uint64_t Row::cycles() const {
  uint64_t s = 0;
  for (uint64_t p : parts) s += p;
  return s;
}

namespace {

std::map<std::string, uint64_t> kvm_stats_delta(
    const std::vector<std::pair<std::string, uint64_t>>& before,
    const std::vector<std::pair<std::string, uint64_t>>& after) {
  auto find = [](const auto& v, std::string_view name) -> std::optional<uint64_t> {
    for (const auto& [n, x] : v) {
      if (n == name) return x;
    }
    return std::nullopt;
  };
  std::map<std::string, uint64_t> out;
  for (const char* name : kKvmStats) {
    const auto a = find(after, name);
    if (a) out[name] = *a - find(before, name).value_or(0);
  }
  return out;
}

// What KVM cannot count, taken from the simulator's run of the same image (it is deterministic).
struct SimWork {
  uint64_t instructions = 0, exceptions = 0;
};

// Passes every event to the counts, and a stop requested before the backend's run began (which
// clears its stop flag) to the backend at the next event.
class StoppableSink final : public trace::EventSink {
 public:
  StoppableSink(trace::EventSink& next, backend::Backend& m, std::stop_token stop)
      : next_(next), m_(m), stop_(std::move(stop)) {}
  void on_event(const trace::EventHeader& h) override {
    next_.on_event(h);
    if (stop_.stop_requested()) m_.request_stop();
  }

 private:
  trace::EventSink& next_;
  backend::Backend& m_;
  std::stop_token stop_;
};

Source source_of(const Technique& tech) {
  if (tech.kind == backend::Kind::kKvm) return Source::kVmExits;
  switch (tech.technique) {
    case sim::virt::Technique::kTrapEmulate: return Source::kTraps;
    case sim::virt::Technique::kBt: return Source::kCallouts;
    case sim::virt::Technique::kEmulation: return Source::kVmExits;
    default: return Source::kVtExits;
  }
}

// One run of `image` under `tech`, counted and priced. `sim`: for KVM, the simulator's counts of
// the same image (the model charges them).
Row run_row(const Technique& tech, const guests::Guest& guest, std::span<const uint8_t> image,
            const Options& o, const SimWork& sim, const std::stop_token& stop) {
  Row row;
  row.technique = std::string(tech.name);
  row.guest = std::string(guest.name);
  row.simulator = tech.kind == backend::Kind::kSim;
  const sim::virt::Technique t = tech.technique;
  backend::Config cfg;
  cfg.mode = boot_mode(guest);
  cfg.technique = t;
  if (row.simulator) cfg.paging = *sim::parse_vmm_paging(o.paging);
  std::unique_ptr<backend::Backend> m;
  try {
    m = backend::make_backend(tech.kind, cfg);
  } catch (const std::exception& e) {
    row.skipped = std::string("not usable: ") + e.what();
    return row;
  }
  m->load(image);
  Counts c(source_of(tech));
  StoppableSink sink(c, *m, stop);
  const auto stats_before = m->kvm_stats();
  backend::RunOutcome r;
  {
    std::stop_callback on_stop(stop, [&m] { m->request_stop(); });
    r = m->run({}, &sink);
  }
  if (!row.simulator) row.kvm_stats = kvm_stats_delta(stats_before, m->kvm_stats());
  row.end = std::string(trace::to_string(r.reason));
  row.ok = r.reason == trace::RunEndReason::kHalted || r.reason == trace::RunEndReason::kGuestExit;
  row.instructions = r.instructions;
  row.exits = r.exits;
  row.traps = c.traps;
  row.vt_exits = c.vt_exits;
  row.hypercalls = c.hypercalls;
  row.callouts = c.callouts;
  row.translations = c.translations;
  row.exceptions = row.simulator ? c.exceptions : sim.exceptions;
  row.wall_ms = r.duration_ns / 1e6;
  row.causes = c.causes;
  const uint64_t exit_entry = kVmExit.cycles + kVmEntry.cycles;
  if (const auto pc = m->paging_counters()) {
    row.walks = pc->stats.walks;
    row.walk_refs = pc->stats.walk_refs();
    row.tlb_misses = pc->tlb_misses;
    const sim::PagingStats& s = pc->stats;
    uint64_t paging = s.hidden_faults + s.true_faults + s.pt_write_traps + s.ept_violations;
    row.causes[kPageFault] += s.hidden_faults + s.true_faults + s.pt_write_traps;
    row.causes[kEptViolation] += s.ept_violations;
    if (t == sim::virt::Technique::kEmulation) {
      row.causes[kInvlpg] += s.invlpg_exits;
      row.causes[kCrAccess] += s.cr3_exits;
      paging += s.invlpg_exits + s.cr3_exits;
    }
    if (row.simulator && t == sim::virt::Technique::kBt) {
      // No VM exits under BT (bar EPT's): faults into the software VMM, and the shadow updates
      // its callouts make (cost_model.hpp: shadow_faults, shadow_updates).
      const uint64_t trapped = s.pt_write_traps - std::min(s.pt_write_traps, c.callout_pt_writes);
      paging = s.ept_violations;
      row.parts[kPartShadowFaults] = (s.hidden_faults + trapped) * kBtHiddenFault.cycles +
                                     s.true_faults * kBtTrueFaultWalk.cycles;
      row.parts[kPartShadowUpdates] = (s.pt_write_traps - trapped) * kBtPteUpdate.cycles;
    }
    row.parts[kPartPagingExits] = paging * exit_entry;
  }
  row.parts[kPartGuestExceptions] = row.exceptions * kExceptionDelivery.cycles;
  if (!row.simulator) {
    row.parts[kPartInstructions] = sim.instructions * kDirectInstruction.cycles;
    // Every VM exit KVM counted (in-kernel ones too) where it has statistics; else the exits
    // that reached user space (a lower bound).
    const auto all = row.kvm_stats->find("exits");
    const uint64_t all_exits = all != row.kvm_stats->end() ? all->second : r.exits;
    row.parts[kPartVmTransitions] = all_exits * exit_entry;
    return row;
  }
  switch (t) {
    case sim::virt::Technique::kEmulation:
      row.parts[kPartInstructions] = r.instructions * kInterpretedInstruction.cycles;
      break;
    case sim::virt::Technique::kTrapEmulate:
      row.parts[kPartInstructions] = (r.instructions - c.traps) * kDirectInstruction.cycles;
      row.parts[kPartTraps] =
          c.traps * (kExceptionDelivery.cycles + kInterpretedInstruction.cycles);
      break;
    case sim::virt::Technique::kVt:
    case sim::virt::Technique::kPv:
      row.parts[kPartInstructions] = r.instructions * kDirectInstruction.cycles;
      row.parts[kPartVmTransitions] = c.vt_cycles;
      break;
    case sim::virt::Technique::kBt: {
      row.parts[kPartInstructions] = r.instructions * kDirectInstruction.cycles;
      row.parts[kPartCallouts] = c.callouts * kCallout.cycles;
      // An exception a callout raised costs the VMM bt_exception in all, its callout included.
      row.parts[kPartVmmExceptions] = c.exceptions * kBtException.cycles -
                                      c.callout_exceptions * kCallout.cycles;
      row.parts[kPartKernelEntries] = c.kernel_entries * kBtKernelEntry.cycles;
      const sim::bt::BtStats* bt = m->bt_stats();
      row.parts[kPartTranslations] = (bt ? bt->translated_insns : 0) * kTranslation.cycles;
      break;
    }
  }
  return row;
}

// (run with N − run with 0) / N of each count of `full` and `base`.
PerIteration per_iteration(const Row& full, const Row& base, uint32_t iterations,
                           const PaperNano* paper) {
  const double n = iterations;
  auto d = [&](uint64_t a, uint64_t b) { return (static_cast<double>(a) - b) / n; };
  PerIteration p;
  p.iterations = iterations;
  if (full.simulator) p.instructions = d(full.instructions, base.instructions);
  p.exits = d(full.exits, base.exits);
  p.traps = d(full.traps, base.traps);
  p.vt_exits = d(full.vt_exits, base.vt_exits);
  p.hypercalls = d(full.hypercalls, base.hypercalls);
  p.callouts = d(full.callouts, base.callouts);
  p.modelled_cycles = d(full.cycles(), base.cycles());
  if (full.kvm_stats && base.kvm_stats && full.kvm_stats->count("exits") &&
      base.kvm_stats->count("exits")) {
    p.kvm_exits = d(full.kvm_stats->at("exits"), base.kvm_stats->at("exits"));
  }
  if (paper) p.paper_cycles = paper_cycles(*paper, full.technique);
  return p;
}

// One row to make: a technique on a guest, or why it is skipped here.
struct Job {
  const Technique* tech;
  guests::Guest guest;
  std::string skipped;
};

std::vector<Job> plan(const guests::Guest& g, const Options& o) {
  const auto pv = pv_twin(g);
  std::vector<Job> jobs;
  for (const Technique& tech : kTechniques) {
    const bool kvm = tech.kind == backend::Kind::kKvm;
    if (o.no_kvm && kvm) continue;
    if (kvm && tech.pv_twin && !pv) continue;
    Job job{&tech, tech.pv_twin && pv ? *pv : g, ""};
    if (kvm && needs_syscall(job.guest.name) && vmm::host_kvm_module() == "kvm_pvm") {
      job.skipped = "this host's kvm_pvm cannot run syscall/sysret (`trapscope doctor`)";
    }
    jobs.push_back(std::move(job));
  }
  return jobs;
}

}  // namespace

Comparison run_comparison(const Options& o, const ProgressFn& progress, std::stop_token stop) {
  Comparison out;
  out.options = o;
  const std::vector<guests::Guest> guests = workload_guests(o.workload);
  if (guests.empty()) {
    out.status = Status::kBadInput;
    out.error = "no built-in guest '" + o.workload + "' (see `trapscope guests`)";
    return out;
  }
  if (!sim::parse_vmm_paging(o.paging)) {
    out.status = Status::kBadInput;
    out.error = "no paging '" + o.paging + "' (native, shadow or ept)";
    return out;
  }
  if (o.iterations < 1 || o.iterations > kMaxIterations) {
    out.status = Status::kBadInput;
    out.error = "iterations " + std::to_string(o.iterations) + " not in 1-1000000";
    return out;
  }
  std::vector<std::vector<Job>> jobs;
  Progress at;
  for (const auto& g : guests) {
    jobs.push_back(plan(g, o));
    const size_t runs = is_nanobenchmark(g) ? 2 : 1;
    for (const Job& j : jobs.back()) at.total += j.skipped.empty() ? runs : 0;
  }
  // Before each run: the stop request, then the progress.
  auto starting = [&](const Job& job) {
    if (stop.stop_requested()) return false;
    at.technique = std::string(job.tech->name);
    at.guest = std::string(job.guest.name);
    if (progress) progress(at);
    return true;
  };
  for (size_t w = 0; w < guests.size(); ++w) {
    const guests::Guest& g = guests[w];
    WorkloadRows& rows = out.workloads.emplace_back();
    rows.guest = std::string(g.name);
    rows.paper = paper_for(g.name);
    const bool nano = is_nanobenchmark(g);
    std::map<std::pair<std::string, uint32_t>, SimWork> sim_work;  // (guest, N) → counts
    for (const Job& job : jobs[w]) {
      if (!job.skipped.empty()) {
        Row r;
        r.technique = std::string(job.tech->name);
        r.guest = std::string(job.guest.name);
        r.skipped = job.skipped;
        rows.rows.push_back(std::move(r));
        continue;
      }
      const std::string gname(job.guest.name);
      auto one = [&](std::span<const uint8_t> image, uint32_t n) {
        const auto known = sim_work.find({gname, n});
        Row r = run_row(*job.tech, job.guest, image, o,
                        known != sim_work.end() ? known->second : SimWork{}, stop);
        ++at.done;
        if (r.simulator && r.skipped.empty() && known == sim_work.end()) {
          sim_work[{gname, n}] = {r.instructions, r.exceptions};
        }
        return r;
      };
      if (!starting(job)) {
        out.status = Status::kCancelled;
        return out;
      }
      Row r;
      if (!nano) {
        r = one(job.guest.image, 0);
      } else {
        r = one(with_iterations(job.guest.image, o.iterations), o.iterations);
        if (!r.skipped.empty()) {
          ++at.done;  // its run with 0 iterations is not made either
        } else if (starting(job)) {
          const Row base = one(with_iterations(job.guest.image, 0), 0);
          r.per_iteration = per_iteration(r, base, o.iterations, rows.paper);
          if (!base.ok) r.ok = false;
        }
      }
      if (!r.ok && r.skipped.empty()) out.status = Status::kRunFailed;
      rows.rows.push_back(std::move(r));
      if (stop.stop_requested()) {
        // The last row is the run the stop ended ("stopped"), or the last before it.
        out.status = Status::kCancelled;
        return out;
      }
    }
  }
  at.technique.clear();
  at.guest.clear();
  if (progress) progress(at);
  return out;
}

}  // namespace trapscope::compare
