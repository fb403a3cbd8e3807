// cli/cmd_compare.cpp — `trapscope compare WORKLOAD`: the same guest under every technique of
// the simulator and on KVM, one table (also as CSV and JSON). A first cut of issue 8's compare
// command: no nanobenchmark guests yet, no progress bar.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/backend.hpp"
#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "guests/catalog.hpp"
#include "trace/event.hpp"

namespace trapscope::cli {
namespace {

// Counts what the table shows, from the events of one run.
struct Counts final : trace::EventSink {
  void on_event(const trace::EventHeader& h) override {
    using T = trace::EventType;
    if (h.type == T::kVmmTrap) ++traps;
    if (h.type == T::kVmTransition && h.size == sizeof(trace::VirtEvent)) {
      const auto& e = reinterpret_cast<const trace::VirtEvent&>(h);
      modelled_cycles += e.cost_cycles;
      if (!(h.flags & trace::kVirtFlagEntry)) ++vt_exits;
    }
    if (h.type == T::kVmExit && (h.flags & trace::kExitFlagHypercallRecord)) ++hypercalls;
    if (h.type == T::kBtTranslate) ++translations;
    if (h.type == T::kBtCallout) ++callouts;
    if (h.type == T::kPageWalk || h.type == T::kNestedWalk) ++walks;
  }
  uint64_t traps = 0, vt_exits = 0, modelled_cycles = 0, hypercalls = 0, translations = 0,
           callouts = 0, walks = 0;
};

struct Options {
  std::string workload;
  std::string paging = "native";
  std::string csv, json;
};

struct Row {
  std::string technique, guest, end;
  bool simulator = true;
  uint64_t instructions = 0, exits = 0;
  Counts c;
  std::optional<uint64_t> tlb_misses;
  double wall_ms = 0;
};

const char* const kColumns[] = {"technique", "guest", "instructions", "exits", "traps",
                                "vt_exits", "hypercalls", "callouts", "translations",
                                "page_walks", "tlb_misses", "wall_ms", "modelled_cycles", "end"};

nlohmann::json to_json(const Row& r) {
  nlohmann::json j = {{"technique", r.technique}, {"guest", r.guest},
                      {"exits", r.exits},         {"traps", r.c.traps},
                      {"vt_exits", r.c.vt_exits}, {"hypercalls", r.c.hypercalls},
                      {"callouts", r.c.callouts}, {"translations", r.c.translations},
                      {"page_walks", r.c.walks},  {"wall_ms", r.wall_ms},
                      {"modelled_cycles", r.c.modelled_cycles}, {"end", r.end}};
  j["instructions"] = r.simulator ? nlohmann::json(r.instructions) : nlohmann::json(nullptr);
  j["tlb_misses"] = r.tlb_misses ? nlohmann::json(*r.tlb_misses) : nlohmann::json(nullptr);
  return j;
}

// Writes the rows as CSV (header kColumns; an empty cell where KVM cannot observe a count) and
// JSON ({"workload", "paging", "cycle_model", "rows": [...]}). False if a file cannot be written.
bool write_files(const Options& o, const std::vector<Row>& rows) {
  nlohmann::json all = {{"workload", o.workload}, {"paging", o.paging},
                        {"cycle_model", "VM exit 1186 + VM entry 937 cycles per VT-model exit "
                                        "(Adams & Agesen, ASPLOS 2006, Core 2): a model"},
                        {"rows", nlohmann::json::array()}};
  for (const Row& r : rows) all["rows"].push_back(to_json(r));
  if (!o.json.empty()) {
    std::ofstream f(o.json);
    f << all.dump(2) << "\n";
    if (!f) return false;
  }
  if (!o.csv.empty()) {
    std::ofstream f(o.csv);
    for (size_t i = 0; i < std::size(kColumns); ++i) f << (i ? "," : "") << kColumns[i];
    f << "\n";
    for (const auto& j : all["rows"]) {
      for (size_t i = 0; i < std::size(kColumns); ++i) {
        const auto& v = j[kColumns[i]];
        f << (i ? "," : "") << (v.is_null() ? "" : v.is_string() ? v.get<std::string>() : v.dump());
      }
      f << "\n";
    }
    if (!f) return false;
  }
  return true;
}

int run_compare(const Options& o) {
  const auto g = guests::find(o.workload);
  if (!g) {
    std::fprintf(stderr, "trapscope compare: no built-in guest '%s' (see `trapscope guests`)\n",
                 o.workload.c_str());
    return kBadInput;
  }
  const auto pv = guests::find("pv-" + o.workload);
  const auto mode = g->mode == "long"        ? vmm::BootMode::kLong
                    : g->mode == "protected" ? vmm::BootMode::kProtected
                                             : vmm::BootMode::kReal;
  std::printf("%-13s %-9s %10s %8s %7s %8s %6s %7s %9s %9s %10s %12s  %s\n", "technique",
              "guest", "insns", "exits", "traps", "VT-exits", "hcalls", "callout", "transl",
              "walks", "TLB-miss", "wall-ms", "model-cycles (a model: exit 1186 + entry 937, "
              "Adams & Agesen 2006, Core 2)");
  const std::pair<const char*, virt::Technique> rows[] = {
      {"emulation", virt::Technique::kEmulation}, {"trap-emulate", virt::Technique::kTrapEmulate},
      {"vt", virt::Technique::kVt},               {"bt", virt::Technique::kBt},
      {"pv", virt::Technique::kPv}};
  int status = kOk;
  std::vector<Row> table;
  auto print = [&](const char* name, const guests::Guest& guest, backend::Kind kind,
                   virt::Technique t) {
    backend::Config cfg;
    cfg.mode = mode;
    cfg.technique = t;
    if (kind == backend::Kind::kSim) cfg.paging = *sim::parse_vmm_paging(o.paging);
    std::unique_ptr<backend::Backend> m;
    try {
      m = backend::make_backend(kind, cfg);
    } catch (const std::exception& e) {
      std::printf("%-13s (not usable: %s)\n", name, e.what());
      return;
    }
    m->load(guest.image);
    Counts c;
    std::fprintf(stderr, "compare: %s …\r", name);
    const backend::RunOutcome r = m->run({}, &c);
    const auto pc = m->paging_counters();
    const std::string insns = kind == backend::Kind::kKvm ? "-" : std::to_string(r.instructions);
    std::printf("%-13s %-9.*s %10s %8llu %7llu %8llu %6llu %7llu %9llu %9llu %10s %12.3f  %llu\n",
                name, static_cast<int>(guest.name.size()), guest.name.data(),
                insns.c_str(),
                static_cast<unsigned long long>(r.exits), static_cast<unsigned long long>(c.traps),
                static_cast<unsigned long long>(c.vt_exits),
                static_cast<unsigned long long>(c.hypercalls),
                static_cast<unsigned long long>(c.callouts),
                static_cast<unsigned long long>(c.translations),
                static_cast<unsigned long long>(c.walks),
                pc ? std::to_string(pc->tlb_misses).c_str() : "-", r.duration_ns / 1e6,
                static_cast<unsigned long long>(c.modelled_cycles));
    table.push_back({name, std::string(guest.name), std::string(trace::to_string(r.reason)),
                     kind == backend::Kind::kSim, r.instructions, r.exits, c,
                     pc ? std::optional<uint64_t>(pc->tlb_misses) : std::nullopt,
                     r.duration_ns / 1e6});
    if (r.reason != trace::RunEndReason::kHalted && r.reason != trace::RunEndReason::kGuestExit) {
      status = kGuestFault;
    }
  };
  for (const auto& [name, t] : rows) {
    print(name, t == virt::Technique::kPv && pv ? *pv : *g, backend::Kind::kSim, t);
  }
  print("kvm", *g, backend::Kind::kKvm, virt::Technique::kEmulation);
  if (pv) print("kvm pv", *pv, backend::Kind::kKvm, virt::Technique::kEmulation);
  std::fprintf(stderr, "%40s\r", "");
  if (!write_files(o, table)) {
    std::fprintf(stderr, "trapscope compare: cannot write %s%s%s\n", o.csv.c_str(),
                 o.csv.empty() || o.json.empty() ? "" : " or ", o.json.c_str());
    return kBadInput;
  }
  return status;
}

}  // namespace

void add_compare_command(CLI::App& app, int* status) {
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "compare", "Run one guest under emulation, trap-and-emulate, the VT-x model, BT, PV "
                 "(its pv- twin where there is one) and KVM, and print one table");
  cmd->add_option("WORKLOAD", o->workload, "A built-in guest (see `trapscope guests`)")
      ->required();
  cmd->add_option("--paging", o->paging, "Simulator memory virtualization: native, shadow, ept")
      ->check(CLI::IsMember({"native", "shadow", "ept"}))
      ->capture_default_str();
  cmd->add_option("--csv", o->csv, "Also write the table as CSV to this file");
  cmd->add_option("--json", o->json, "Also write the table as JSON to this file");
  cmd->callback([o, status] { *status = run_compare(*o); });
}

}  // namespace trapscope::cli
