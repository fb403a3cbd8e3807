#include "compare/report.hpp"

#include <iterator>
#include <sstream>

namespace trapscope::compare {
namespace {

nlohmann::json opt(const std::optional<uint64_t>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

nlohmann::json per_iteration_json(const PerIteration& p) {
  nlohmann::json j = {{"iterations", p.iterations}, {"exits", p.exits},
                      {"traps", p.traps},           {"vt_exits", p.vt_exits},
                      {"hypercalls", p.hypercalls}, {"callouts", p.callouts},
                      {"modelled_cycles", p.modelled_cycles}};
  j["instructions"] = p.instructions ? nlohmann::json(*p.instructions) : nlohmann::json(nullptr);
  if (p.kvm_exits) j["kvm_exits"] = *p.kvm_exits;
  j["paper_cycles"] = p.paper_cycles ? nlohmann::json(*p.paper_cycles) : nlohmann::json(nullptr);
  return j;
}

nlohmann::json row_json(const Row& r) {
  nlohmann::json j = {{"technique", r.technique}, {"guest", r.guest},
                      {"backend", r.simulator ? "sim" : "kvm"},
                      {"exits", r.exits},         {"traps", r.traps},
                      {"vt_exits", r.vt_exits},   {"hypercalls", r.hypercalls},
                      {"callouts", r.callouts},   {"translations", r.translations},
                      {"page_walks", opt(r.walks)}, {"page_walk_refs", opt(r.walk_refs)},
                      {"tlb_misses", opt(r.tlb_misses)}, {"wall_ms", r.wall_ms},
                      {"modelled_cycles", r.cycles()}, {"end", r.end}};
  j["instructions"] = r.simulator ? nlohmann::json(r.instructions) : nlohmann::json(nullptr);
  for (size_t i = 0; i < kCauseCount; ++i) {
    j["exits_by_cause"][std::string(kCauseNames[i])] = r.causes[i];
  }
  for (size_t i = 0; i < kPartCount; ++i) {
    j["modelled_cycles_by_part"][std::string(kPartNames[i])] = r.parts[i];
  }
  if (r.per_iteration) j["per_iteration"] = per_iteration_json(*r.per_iteration);
  if (r.kvm_stats) j["kvm_stats"] = nlohmann::json(*r.kvm_stats);
  return j;
}

nlohmann::json model_json() {
  nlohmann::json m = nlohmann::json::object();
  for (const auto& p : kParameters) {
    m[std::string(p.name)] = {{"cycles", p.cycles}, {"source", std::string(p.source)}};
  }
  return m;
}

nlohmann::json nano_json(const PaperNano& p) {
  return {{"name", std::string(p.paper_name)},
          {"guest", std::string(p.guest)},
          {"paper",
           {{"native", p.native}, {"software_vmm", p.software_vmm},
            {"hardware_vmm", p.hardware_vmm}}},
          {"source", std::string(kPaperSource)}};
}

// The scalar CSV columns, in the JSON's key names, then cause_* and cycles_* columns.
const char* const kColumns[] = {"technique", "guest", "backend", "instructions", "exits", "traps",
                                "vt_exits", "hypercalls", "callouts", "translations",
                                "page_walks", "page_walk_refs", "tlb_misses", "wall_ms",
                                "modelled_cycles", "end"};

}  // namespace

nlohmann::json to_json(const Comparison& c) {
  nlohmann::json all = {{"workload", c.options.workload}, {"paging", c.options.paging},
                        {"cycle_model", std::string(kCycleModel)}, {"model", model_json()},
                        {"rows", nlohmann::json::array()}};
  nlohmann::json nano;
  for (const WorkloadRows& w : c.workloads) {
    for (const Row& r : w.rows) {
      if (r.skipped.empty()) {
        all["rows"].push_back(row_json(r));
      } else {
        all["skipped"].push_back(
            {{"technique", r.technique}, {"guest", r.guest}, {"why", r.skipped}});
      }
    }
    if (w.paper) {
      if (c.workloads.size() == 1) {
        nano = nano_json(*w.paper);
      } else {
        nano.push_back(nano_json(*w.paper));
      }
    }
  }
  if (!nano.is_null()) all[nano.is_array() ? "nanobenchmarks" : "nanobenchmark"] = nano;
  return all;
}

std::string to_csv(const nlohmann::json& document) {
  nlohmann::json doc = document;  // operator[] on a missing key gives null here (const: UB)
  std::ostringstream f;
  auto cell = [](const nlohmann::json& v) {
    return v.is_null() ? std::string() : v.is_string() ? v.get<std::string>() : v.dump();
  };
  for (size_t i = 0; i < std::size(kColumns); ++i) f << (i ? "," : "") << kColumns[i];
  for (auto n : kCauseNames) f << ",cause_" << n;
  for (auto n : kPartNames) f << ",cycles_" << n;
  f << "\n";
  for (auto& j : doc["rows"]) {
    for (size_t i = 0; i < std::size(kColumns); ++i) f << (i ? "," : "") << cell(j[kColumns[i]]);
    for (auto n : kCauseNames) f << "," << cell(j["exits_by_cause"][std::string(n)]);
    for (auto n : kPartNames) f << "," << cell(j["modelled_cycles_by_part"][std::string(n)]);
    f << "\n";
  }
  return f.str();
}

}  // namespace trapscope::compare
