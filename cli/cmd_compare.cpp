// cli/cmd_compare.cpp — `trapscope compare WORKLOAD`: the same guest under every technique of
// the simulator and on KVM, one table (also as CSV and JSON), with exits by cause and modelled
// cycles (cli/compare_model.hpp). Nanobenchmark guests (nano-*) are run twice, with N and with 0
// iterations, and the difference per iteration is shown beside Adams & Agesen's figures;
// `compare nano` runs all seven.
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/backend.hpp"
#include "cli/commands.hpp"
#include "cli/compare_model.hpp"
#include "cli/exit_codes.hpp"
#include "guests/catalog.hpp"
#include "sim/bt/translator.hpp"
#include "x86/disasm.hpp"
#include "trace/event.hpp"
#include "vmm/doctor.hpp"
#include "platform/hypercall.hpp"

namespace trapscope::cli {
namespace {

using compare::Cause;
using compare::kCauseCount;
using compare::kPartCount;

// The cause of an entry into the VMM made by this instruction (a trap or a callout).
Cause cause_of_instruction(std::string_view text) {
  const std::string_view m = text.substr(0, text.find(' '));
  auto any = [&](std::initializer_list<std::string_view> names) {
    for (auto n : names) {
      if (m == n) return true;
    }
    return false;
  };
  if (any({"in", "out", "insb", "insw", "insd", "outsb", "outsw", "outsd"})) return compare::kIo;
  if (m == "hlt") return compare::kHlt;
  if ((m == "mov" && text.find("cr") != std::string_view::npos) || any({"lmsw", "clts", "smsw"})) {
    return compare::kCrAccess;
  }
  if (m == "invlpg") return compare::kInvlpg;
  if (any({"cli", "sti", "pushf", "pushfd", "pushfq", "popf", "popfd", "popfq"})) {
    return compare::kInterruptFlag;
  }
  if (any({"lgdt", "lidt", "lldt", "ltr", "sgdt", "sidt", "sldt", "str"})) {
    return compare::kDescriptorTable;
  }
  if (any({"rdmsr", "wrmsr"})) return compare::kMsr;
  if (m == "cpuid") return compare::kCpuid;
  return compare::kOther;
}

// Which events are the row's entries into the VMM (compare_model.hpp, [SECTION] Causes).
enum class Source : uint8_t { kVmExits, kTraps, kVtExits, kCallouts };

// Counts what the table shows, from the events of one run.
struct Counts final : trace::EventSink {
  explicit Counts(Source s) : source(s) {}
  void on_event(const trace::EventHeader& h) override {
    using T = trace::EventType;
    switch (h.type) {
      case T::kVmmTrap: {
        ++traps;
        const auto& e = reinterpret_cast<const trace::VirtEvent&>(h);
        if (source == Source::kTraps) ++causes[instruction_cause(h, e.insn, e.insn_len)];
        break;
      }
      case T::kVmTransition: {
        const auto& e = reinterpret_cast<const trace::VirtEvent&>(h);
        vt_cycles += e.cost_cycles;
        if (h.flags & trace::kVirtFlagEntry) break;
        ++vt_exits;
        if (source == Source::kVtExits) ++causes[vt_cause(e)];
        break;
      }
      case T::kVmExit: {
        const auto& e = reinterpret_cast<const trace::VmExitEvent&>(h);
        if (h.flags & trace::kExitFlagHypercallRecord) {
          ++hypercalls;
        } else if (source == Source::kVmExits) {
          ++causes[kvm_cause(e)];
        }
        break;
      }
      case T::kBtTranslate: ++translations; break;
      case T::kException:
        ++exceptions;
        // Raised by the emulation in the last callout (an instruction that faulted often and was
        // retranslated into a callout): the VMM took no hardware fault for it.
        if (h.rip == last_callout_rip) ++callout_exceptions;
        break;
      case T::kBtCallout: {
        ++callouts;
        last_callout_rip = h.rip;
        const auto& e = reinterpret_cast<const trace::BtCalloutEvent&>(h);
        if (source == Source::kCallouts) ++causes[instruction_cause(h, e.insn, e.insn_len)];
        break;
      }
      case T::kRingTransition: {
        // Into the kernel from CPL 3 other than by an exception (those are priced as such).
        const auto& e = reinterpret_cast<const trace::RingTransitionEvent&>(h);
        if (e.from_cpl == 3 && e.to_cpl < 3 && e.cause != trace::RingCause::kException) {
          ++kernel_entries;
        }
        break;
      }
      case T::kShadowPaging: {
        // A page-table write made by the instruction the last callout ran (its header.rip is
        // the writing instruction, as the callout's): the callout's own work, not a trap.
        const auto& e = reinterpret_cast<const trace::ShadowPagingEvent&>(h);
        if (e.action == trace::ShadowAction::kPtWrite && last_callout_rip == h.rip) {
          ++callout_pt_writes;
          last_callout_rip = kNoRip;
        }
        break;
      }
      default: break;
    }
  }
  static Cause kvm_cause(const trace::VmExitEvent& e) {
    switch (static_cast<trace::ExitReason>(e.reason)) {
      case trace::ExitReason::kIo:
        return e.payload.io.port == platform::kHypercallPort ? compare::kHypercall : compare::kIo;
      case trace::ExitReason::kHlt: return compare::kHlt;
      case trace::ExitReason::kMmio: return compare::kMmio;
      default: return compare::kOther;
    }
  }
  static Cause vt_cause(const trace::VirtEvent& e) {
    using R = trace::VmxExitReason;
    switch (static_cast<R>(e.exit_reason)) {
      case R::kIoInstruction:  // qualification bits 31:16 = port (SDM Vol. 3C 28.2.1)
        return ((e.qualification >> 16) & 0xFFFF) == platform::kHypercallPort ? compare::kHypercall
                                                                          : compare::kIo;
      case R::kHlt: return compare::kHlt;
      case R::kCrAccess: return compare::kCrAccess;
      case R::kInvlpg: return compare::kInvlpg;
      case R::kCpuid: return compare::kCpuid;
      case R::kRdmsr: case R::kWrmsr: return compare::kMsr;
      case R::kExceptionOrNmi:
        return (e.interruption_info & 0xFF) == 14 ? compare::kPageFault : compare::kException;
      default: return compare::kOther;
    }
  }
  Cause instruction_cause(const trace::EventHeader& h, const uint8_t* insn, uint8_t len) {
    const auto it = cause_by_rip.find(h.rip);
    if (it != cause_by_rip.end()) return it->second;
    const auto d = x86::disassemble({insn, len}, h.cpu_mode, h.rip);
    return cause_by_rip[h.rip] = d.ok ? cause_of_instruction(d.text) : compare::kOther;
  }

  static constexpr uint64_t kNoRip = ~0ull;
  Source source;
  uint64_t traps = 0, vt_exits = 0, vt_cycles = 0, hypercalls = 0, translations = 0,
           callouts = 0, exceptions = 0;
  uint64_t kernel_entries = 0;     // CPL 3 → kernel by syscall, sysenter, int n, far call
  uint64_t callout_pt_writes = 0;  // shadow page-table writes made inside a callout
  uint64_t callout_exceptions = 0; // exceptions raised inside a callout
  uint64_t last_callout_rip = kNoRip;
  std::array<uint64_t, kCauseCount> causes{};
  std::unordered_map<uint64_t, Cause> cause_by_rip;
};

struct Options {
  std::string workload;
  std::string paging = "native";
  std::string csv, json;
  uint32_t iterations = 1000;
  bool no_kvm = false;
};

struct Row {
  std::string technique, guest, end;
  std::string skipped;  // non-empty: not run here, and why (the row is left out of the files)
  bool simulator = true, ok = true;
  uint64_t instructions = 0, exits = 0, traps = 0, vt_exits = 0, hypercalls = 0, callouts = 0,
           translations = 0, exceptions = 0;
  std::optional<uint64_t> walks, walk_refs, tlb_misses;
  double wall_ms = 0;
  std::array<uint64_t, kCauseCount> causes{};
  std::array<uint64_t, kPartCount> parts{};
  uint64_t cycles() const {
    uint64_t s = 0;
    for (uint64_t p : parts) s += p;
    return s;
  }
  nlohmann::json per_iteration;  // nanobenchmarks only
  nlohmann::json kvm_stats;      // KVM rows: kKvmStats over the run (KVM_GET_STATS_FD)
};

// The vCPU statistics a KVM row shows (vmm::Vcpu::stats(); Linux's
// Documentation/virt/kvm/api.rst 4.133 and arch/x86 kvm_vcpu_stat): all VM exits, those that
// reached user space by kind, page faults KVM took and fixed or reflected to the guest, TLB
// flushes, INVLPGs, instructions its emulator ran.
constexpr const char* kKvmStats[] = {"exits",     "io_exits",     "mmio_exits",  "halt_exits",
                                     "irq_exits", "signal_exits", "pf_taken",    "pf_fixed",
                                     "pf_guest",  "pf_emulate",   "tlb_flush",   "invlpg",
                                     "insn_emulation",            "hypercalls"};
nlohmann::json kvm_stats_delta(const std::vector<std::pair<std::string, uint64_t>>& before,
                               const std::vector<std::pair<std::string, uint64_t>>& after) {
  auto find = [](const auto& v, std::string_view name) -> std::optional<uint64_t> {
    for (const auto& [n, x] : v) {
      if (n == name) return x;
    }
    return std::nullopt;
  };
  nlohmann::json j = nlohmann::json::object();
  for (const char* name : kKvmStats) {
    const auto a = find(after, name);
    if (a) j[name] = *a - find(before, name).value_or(0);
  }
  return j;
}

// What KVM cannot count, taken from the simulator's run of the same image (it is deterministic).
struct SimWork {
  uint64_t instructions = 0, exceptions = 0;
};

// One run of `image` under (kind, technique), counted and priced. `sim`: for KVM, the
// simulator's counts of the same image (the model charges them).
Row run_row(const std::string& technique_name, std::string_view guest,
            std::span<const uint8_t> image, platform::BootMode mode, backend::Kind kind,
            virt::Technique t, const Options& o, const SimWork& sim) {
  Row row;
  row.technique = technique_name;
  row.guest = std::string(guest);
  row.simulator = kind == backend::Kind::kSim;
  backend::Config cfg;
  cfg.mode = mode;
  cfg.technique = t;
  if (row.simulator) cfg.paging = *sim::parse_vmm_paging(o.paging);
  std::unique_ptr<backend::Backend> m;
  try {
    m = backend::make_backend(kind, cfg);
  } catch (const std::exception& e) {
    row.skipped = std::string("not usable: ") + e.what();
    return row;
  }
  m->load(image);
  const Source source = !row.simulator                     ? Source::kVmExits
                        : t == virt::Technique::kTrapEmulate ? Source::kTraps
                        : t == virt::Technique::kBt          ? Source::kCallouts
                        : t == virt::Technique::kEmulation   ? Source::kVmExits
                                                             : Source::kVtExits;
  Counts c(source);
  const auto stats_before = m->kvm_stats();
  const backend::RunOutcome r = m->run({}, &c);
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
  using namespace compare;
  const uint64_t exit_entry = kVmExit.cycles + kVmEntry.cycles;
  if (const auto pc = m->paging_counters()) {
    row.walks = pc->stats.walks;
    row.walk_refs = pc->stats.walk_refs();
    row.tlb_misses = pc->tlb_misses;
    const sim::PagingStats& s = pc->stats;
    uint64_t paging = s.hidden_faults + s.true_faults + s.pt_write_traps + s.ept_violations;
    row.causes[kPageFault] += s.hidden_faults + s.true_faults + s.pt_write_traps;
    row.causes[kEptViolation] += s.ept_violations;
    if (t == virt::Technique::kEmulation) {
      row.causes[kInvlpg] += s.invlpg_exits;
      row.causes[kCrAccess] += s.cr3_exits;
      paging += s.invlpg_exits + s.cr3_exits;
    }
    if (row.simulator && t == virt::Technique::kBt) {
      // No VM exits under BT (bar EPT's): faults into the software VMM, and the shadow updates
      // its callouts make (compare_model.hpp: shadow_faults, shadow_updates).
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
    const uint64_t all_exits =
        row.kvm_stats.contains("exits") ? row.kvm_stats["exits"].get<uint64_t>() : r.exits;
    row.parts[kPartVmTransitions] = all_exits * exit_entry;
    return row;
  }
  switch (t) {
    case virt::Technique::kEmulation:
      row.parts[kPartInstructions] = r.instructions * kInterpretedInstruction.cycles;
      break;
    case virt::Technique::kTrapEmulate:
      row.parts[kPartInstructions] = (r.instructions - c.traps) * kDirectInstruction.cycles;
      row.parts[kPartTraps] = c.traps * (kExceptionDelivery.cycles + kInterpretedInstruction.cycles);
      break;
    case virt::Technique::kVt:
    case virt::Technique::kPv:
      row.parts[kPartInstructions] = r.instructions * kDirectInstruction.cycles;
      row.parts[kPartVmTransitions] = c.vt_cycles;
      break;
    case virt::Technique::kBt: {
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

std::string causes_text(const Row& r) {
  std::string s;
  for (size_t i = 0; i < kCauseCount; ++i) {
    if (!r.causes[i]) continue;
    s += (s.empty() ? "" : " ") + std::string(compare::kCauseNames[i]) + ":" +
         std::to_string(r.causes[i]);
  }
  if (r.kvm_stats.contains("exits")) {
    // What KVM handled in the kernel (its vCPU statistics), after the user-space exits.
    s += std::string(s.empty() ? "" : " ") + "| kernel:";
    for (const char* k : {"exits", "invlpg", "pf_guest", "tlb_flush", "insn_emulation"}) {
      if (r.kvm_stats.contains(k) && r.kvm_stats[k].get<uint64_t>()) {
        s += std::string(" ") + k + ":" + std::to_string(r.kvm_stats[k].get<uint64_t>());
      }
    }
  }
  return s.empty() ? "-" : s;
}

nlohmann::json opt(const std::optional<uint64_t>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

nlohmann::json to_json(const Row& r) {
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
    j["exits_by_cause"][std::string(compare::kCauseNames[i])] = r.causes[i];
  }
  for (size_t i = 0; i < kPartCount; ++i) {
    j["modelled_cycles_by_part"][std::string(compare::kPartNames[i])] = r.parts[i];
  }
  if (!r.per_iteration.is_null()) j["per_iteration"] = r.per_iteration;
  if (!r.kvm_stats.is_null()) j["kvm_stats"] = r.kvm_stats;
  return j;
}

// The scalar CSV columns, in the JSON's key names, then cause_* and cycles_* columns.
const char* const kColumns[] = {"technique", "guest", "backend", "instructions", "exits", "traps",
                                "vt_exits", "hypercalls", "callouts", "translations",
                                "page_walks", "page_walk_refs", "tlb_misses", "wall_ms",
                                "modelled_cycles", "end"};

nlohmann::json model_json() {
  nlohmann::json m = nlohmann::json::object();
  for (const auto& p : compare::kParameters) {
    m[std::string(p.name)] = {{"cycles", p.cycles}, {"source", std::string(p.source)}};
  }
  return m;
}

constexpr const char* kCycleModel =
    "modelled cycles, a MODEL (cli/compare_model.hpp): instructions x 1 (direct) or x 38 "
    "(interpreted), VM exit 1186 + entry 937 (Adams & Agesen 2006, Core 2), exception 889, callout "
    "216, translation 2300 per instruction; bt also: exception reflected by the VMM +2118, entry "
    "from CPL 3 1850, hidden fault 2822 (our estimate), true-fault walk 704, PTE store in a "
    "callout +174 (from Adams & Agesen 2006's software-VMM nanobenchmarks, Pentium 4)";

// Writes the rows as CSV and JSON (docs/compare.md, "compare's JSON and CSV"). False if a
// file cannot be written.
bool write_files(const Options& o, const std::vector<Row>& rows, const nlohmann::json& nano) {
  nlohmann::json all = {{"workload", o.workload}, {"paging", o.paging},
                        {"cycle_model", kCycleModel}, {"model", model_json()},
                        {"rows", nlohmann::json::array()}};
  for (const Row& r : rows) {
    if (r.skipped.empty()) {
      all["rows"].push_back(to_json(r));
    } else {
      all["skipped"].push_back({{"technique", r.technique}, {"guest", r.guest}, {"why", r.skipped}});
    }
  }
  if (!nano.is_null()) all[nano.is_array() ? "nanobenchmarks" : "nanobenchmark"] = nano;
  if (!o.json.empty()) {
    std::ofstream f(o.json);
    f << all.dump(2) << "\n";
    if (!f) return false;
  }
  if (!o.csv.empty()) {
    std::ofstream f(o.csv);
    auto cell = [](const nlohmann::json& v) {
      return v.is_null() ? std::string() : v.is_string() ? v.get<std::string>() : v.dump();
    };
    for (size_t i = 0; i < std::size(kColumns); ++i) f << (i ? "," : "") << kColumns[i];
    for (auto n : compare::kCauseNames) f << ",cause_" << n;
    for (auto n : compare::kPartNames) f << ",cycles_" << n;
    f << "\n";
    for (const auto& j : all["rows"]) {
      for (size_t i = 0; i < std::size(kColumns); ++i) f << (i ? "," : "") << cell(j[kColumns[i]]);
      for (auto n : compare::kCauseNames) f << "," << cell(j["exits_by_cause"][std::string(n)]);
      for (auto n : compare::kPartNames) {
        f << "," << cell(j["modelled_cycles_by_part"][std::string(n)]);
      }
      f << "\n";
    }
    if (!f) return false;
  }
  return true;
}

// A progress bar on stderr, only when stderr is a terminal: runs done of all, and the run now
// going (a run is not interrupted to redraw it).
class Progress {
 public:
  explicit Progress(size_t total) : total_(total), tty_(isatty(STDERR_FILENO) == 1) {}
  ~Progress() {
    if (tty_) std::fprintf(stderr, "\r%*s\r", 78, "");
  }
  void next(const std::string& what) {
    if (!tty_) return;
    constexpr int kWidth = 30;
    const int filled = total_ ? static_cast<int>(kWidth * done_ / total_) : kWidth;
    std::fprintf(stderr, "\r[%.*s%*s] %zu/%zu %-30.30s", filled,
                 "##############################", kWidth - filled, "", done_, total_,
                 what.c_str());
    std::fflush(stderr);
    ++done_;
  }

 private:
  size_t total_, done_ = 0;
  bool tty_;
};

struct Technique {
  const char* name;
  backend::Kind kind;
  virt::Technique t;
  bool pv_twin;  // runs the guest's pv- twin (if it has one)
};
constexpr Technique kTechniques[] = {
    {"emulation", backend::Kind::kSim, virt::Technique::kEmulation, false},
    {"trap-emulate", backend::Kind::kSim, virt::Technique::kTrapEmulate, false},
    {"vt", backend::Kind::kSim, virt::Technique::kVt, false},
    {"bt", backend::Kind::kSim, virt::Technique::kBt, false},
    {"pv", backend::Kind::kSim, virt::Technique::kPv, true},
    {"kvm", backend::Kind::kKvm, virt::Technique::kEmulation, false},
    {"kvm pv", backend::Kind::kKvm, virt::Technique::kEmulation, true},
};

// Guests that need `syscall`/`sysret`, which this project's kvm_pvm hosts do not run
// (docs/kvm-hosts.md; `trapscope doctor` lists it): their KVM rows are skipped there.
bool needs_syscall(std::string_view guest) { return guest == "nano-syscall"; }

const compare::PaperNano* paper_for(std::string_view guest) {
  for (const auto& p : compare::kPaperNanos) {
    if (guest == p.guest || (guest.starts_with("pv-") && guest.substr(3) == p.guest)) return &p;
  }
  return nullptr;
}

// The paper's column for a row's technique: BT = the software VMM, VT-x model and KVM = the
// hardware VMM; none for the others.
std::optional<uint32_t> paper_cycles(const compare::PaperNano& p, const std::string& technique) {
  if (technique == "bt") return p.software_vmm;
  if (technique == "vt" || technique == "kvm") return p.hardware_vmm;
  return std::nullopt;
}

// A nanobenchmark image with its iteration count set (nano_body.inc: "NANO" at offset 2, the
// count at offset 6); empty if the image has no such header.
std::vector<uint8_t> with_iterations(std::span<const uint8_t> image, uint32_t n) {
  if (image.size() < 10 || std::memcmp(image.data() + 2, "NANO", 4) != 0) return {};
  std::vector<uint8_t> v(image.begin(), image.end());
  std::memcpy(v.data() + 6, &n, 4);
  return v;
}

platform::BootMode boot_mode(const guests::Guest& g) {
  return g.mode == "long" ? platform::BootMode::kLong
         : g.mode == "protected" ? platform::BootMode::kProtected
                                 : platform::BootMode::kReal;
}

void print_header() {
  std::printf("%-13s %-13s %9s %7s %6s %8s %6s %7s %6s %7s %8s %8s %9s %13s  %s\n", "technique",
              "guest", "insns", "exits", "traps", "VT-exits", "hcalls", "callout", "transl",
              "walks", "walk-refs", "TLB-miss", "wall-ms", "model-cycles", "entries by cause");
}

void print_row(const Row& r) {
  if (!r.skipped.empty()) {
    std::printf("%-13s %-13s (skipped: %s)\n", r.technique.c_str(), r.guest.c_str(),
                r.skipped.c_str());
    return;
  }
  auto o = [](const std::optional<uint64_t>& v) { return v ? std::to_string(*v) : "-"; };
  std::printf("%-13s %-13s %9s %7llu %6llu %8llu %6llu %7llu %6llu %7s %8s %8s %9.3f %13llu  %s%s\n",
              r.technique.c_str(), r.guest.c_str(),
              r.simulator ? std::to_string(r.instructions).c_str() : "-",
              static_cast<unsigned long long>(r.exits), static_cast<unsigned long long>(r.traps),
              static_cast<unsigned long long>(r.vt_exits),
              static_cast<unsigned long long>(r.hypercalls),
              static_cast<unsigned long long>(r.callouts),
              static_cast<unsigned long long>(r.translations), o(r.walks).c_str(),
              o(r.walk_refs).c_str(), o(r.tlb_misses).c_str(), r.wall_ms,
              static_cast<unsigned long long>(r.cycles()), causes_text(r).c_str(),
              r.ok ? "" : ("  [run ended: " + r.end + "]").c_str());
}

// Runs every technique on `g` (and its pv- twin). For a nanobenchmark, also with 0 iterations,
// and fills each row's per_iteration. Appends to `rows`; false if a run failed.
bool run_workload(const guests::Guest& g, const Options& o, Progress& progress,
                  std::vector<Row>& rows) {
  const auto pv = guests::find("pv-" + std::string(g.name));
  const bool nano = !with_iterations(g.image, 0).empty();
  bool ok = true;
  std::map<std::pair<std::string, uint32_t>, SimWork> sim_work;  // (guest, N) → counts
  for (const Technique& tech : kTechniques) {
    if (o.no_kvm && tech.kind == backend::Kind::kKvm) continue;
    if (tech.kind == backend::Kind::kKvm && tech.pv_twin && !pv) continue;
    const guests::Guest& guest = tech.pv_twin && pv ? *pv : g;
    const std::string gname(guest.name);
    if (tech.kind == backend::Kind::kKvm && needs_syscall(gname) &&
        vmm::host_kvm_module() == "kvm_pvm") {
      Row r;
      r.technique = tech.name;
      r.guest = gname;
      r.skipped = "this host's kvm_pvm cannot run syscall/sysret (`trapscope doctor`)";
      rows.push_back(std::move(r));
      continue;
    }
    auto one = [&](std::span<const uint8_t> image, uint32_t n) {
      progress.next(std::string(tech.name) + " " + gname);
      const auto known = sim_work.find({gname, n});
      Row r = run_row(tech.name, guest.name, image, boot_mode(guest), tech.kind, tech.t, o,
                      known != sim_work.end() ? known->second : SimWork{});
      if (r.simulator && !sim_work.count({gname, n})) {
        sim_work[{gname, n}] = {r.instructions, r.exceptions};
      }
      return r;
    };
    if (!nano) {
      rows.push_back(one(guest.image, 0));
    } else {
      const auto full = with_iterations(guest.image, o.iterations);
      const auto none = with_iterations(guest.image, 0);
      Row r = one(full, o.iterations);
      const Row base = one(none, 0);
      const double n = o.iterations;
      auto d = [&](uint64_t a, uint64_t b) { return (static_cast<double>(a) - b) / n; };
      r.per_iteration = {{"iterations", o.iterations},
                         {"exits", d(r.exits, base.exits)},
                         {"traps", d(r.traps, base.traps)},
                         {"vt_exits", d(r.vt_exits, base.vt_exits)},
                         {"hypercalls", d(r.hypercalls, base.hypercalls)},
                         {"callouts", d(r.callouts, base.callouts)},
                         {"modelled_cycles", d(r.cycles(), base.cycles())}};
      r.per_iteration["instructions"] =
          r.simulator ? nlohmann::json(d(r.instructions, base.instructions)) : nullptr;
      if (r.kvm_stats.contains("exits") && base.kvm_stats.contains("exits")) {
        r.per_iteration["kvm_exits"] =
            d(r.kvm_stats["exits"].get<uint64_t>(), base.kvm_stats["exits"].get<uint64_t>());
      }
      const auto* p = paper_for(g.name);
      const auto pc = p ? paper_cycles(*p, tech.name) : std::nullopt;
      r.per_iteration["paper_cycles"] = pc ? nlohmann::json(*pc) : nlohmann::json(nullptr);
      if (!base.ok) r.ok = false;
      rows.push_back(std::move(r));
    }
    if (!rows.back().ok && rows.back().skipped.empty()) ok = false;
  }
  return ok;
}

double per_iter_cycles(const Row& r) {
  return r.per_iteration.is_null() ? 0 : r.per_iteration["modelled_cycles"].get<double>();
}

// The per-iteration table of one nanobenchmark (after its full table).
void print_nano(const guests::Guest& g, const std::vector<Row>& rows, uint32_t iterations) {
  const auto* p = paper_for(g.name);
  std::printf("\nper iteration of %.*s ((run with %u iterations - run with 0) / %u):\n",
              static_cast<int>(g.name.size()), g.name.data(), iterations, iterations);
  std::printf("%-13s %-16s %8s %7s %9s %7s %8s %8s %16s  %s\n", "technique", "guest", "insns",
              "exits", "kvm-exits", "traps", "VT-exits", "callouts", "model-cycles",
              "paper cycles");
  for (const Row& r : rows) {
    if (r.per_iteration.is_null() || !r.ok) continue;
    const auto& j = r.per_iteration;
    const std::string paper =
        j["paper_cycles"].is_null() ? "-" : std::to_string(j["paper_cycles"].get<uint32_t>()) +
                                                (r.technique == "bt" ? " (software VMM)"
                                                                     : " (hardware VMM)");
    char insns[32] = "-";
    if (!j["instructions"].is_null()) {
      std::snprintf(insns, sizeof insns, "%.2f", j["instructions"].get<double>());
    }
    char kvm_exits[32] = "-";
    if (j.contains("kvm_exits")) {
      std::snprintf(kvm_exits, sizeof kvm_exits, "%.2f", j["kvm_exits"].get<double>());
    }
    std::printf("%-13s %-16s %8s %7.2f %9s %7.2f %8.2f %8.2f %16.1f  %s\n", r.technique.c_str(),
                r.guest.c_str(), insns, j["exits"].get<double>(), kvm_exits,
                j["traps"].get<double>(), j["vt_exits"].get<double>(),
                j["callouts"].get<double>(), j["modelled_cycles"].get<double>(), paper.c_str());
  }
  if (p) {
    std::printf("paper (%.*s, \"%.*s\"): native %u, software VMM %u, hardware VMM %u cycles\n",
                static_cast<int>(compare::kPaperSource.size()), compare::kPaperSource.data(),
                static_cast<int>(p->paper_name.size()), p->paper_name.data(), p->native,
                p->software_vmm, p->hardware_vmm);
  }
}

nlohmann::json nano_json(const compare::PaperNano& p) {
  return {{"name", std::string(p.paper_name)},
          {"guest", std::string(p.guest)},
          {"paper",
           {{"native", p.native}, {"software_vmm", p.software_vmm},
            {"hardware_vmm", p.hardware_vmm}}},
          {"source", std::string(compare::kPaperSource)}};
}

int run_compare(const Options& o) {
  std::vector<guests::Guest> workloads;
  if (o.workload == "nano") {
    for (const auto& p : compare::kPaperNanos) workloads.push_back(*guests::find(p.guest));
  } else if (const auto g = guests::find(o.workload)) {
    workloads.push_back(*g);
  } else {
    std::fprintf(stderr, "trapscope compare: no built-in guest '%s' (see `trapscope guests`)\n",
                 o.workload.c_str());
    return kBadInput;
  }
  size_t runs = 0;
  for (const auto& g : workloads) {
    const bool pv = guests::find("pv-" + std::string(g.name)).has_value();
    const size_t per = (o.no_kvm ? 5 : pv ? 7 : 6) * (with_iterations(g.image, 0).empty() ? 1 : 2);
    runs += per;
  }
  std::vector<Row> table;
  nlohmann::json nano;
  bool ok = true;
  {
    Progress progress(runs);
    for (const auto& g : workloads) {
      const size_t first = table.size();
      ok = run_workload(g, o, progress, table) && ok;
      if (workloads.size() == 1) {
        print_header();
        for (size_t i = first; i < table.size(); ++i) print_row(table[i]);
        if (!table[first].per_iteration.is_null()) {
          print_nano(g, {table.begin() + first, table.end()}, o.iterations);
        }
      }
      if (const auto* p = paper_for(g.name)) {
        if (workloads.size() == 1) {
          nano = nano_json(*p);
        } else {
          nano.push_back(nano_json(*p));
        }
      }
    }
  }
  if (workloads.size() > 1) {
    // The summary: one line per nanobenchmark, the paper's cycles beside our model's.
    std::printf("nanobenchmarks: cycles per iteration. paper = %.*s; ours = modelled cycles, a "
                "MODEL (cli/compare_model.hpp), (run with %u iterations - run with 0) / %u\n",
                static_cast<int>(compare::kPaperSource.size()), compare::kPaperSource.data(),
                o.iterations, o.iterations);
    std::printf("%-13s %-9s | %7s %7s %7s | %9s %9s %9s %9s %9s %9s %9s\n", "guest", "paper",
                "native", "SW VMM", "HW VMM", "emulation", "trap-emul", "vt", "bt", "pv", "kvm",
                "kvm pv");
    for (const auto& p : compare::kPaperNanos) {
      std::printf("%-13.*s %-9.*s | %7u %7u %7u |", static_cast<int>(p.guest.size()),
                  p.guest.data(), static_cast<int>(p.paper_name.size()), p.paper_name.data(),
                  p.native, p.software_vmm, p.hardware_vmm);
      for (const Technique& tech : kTechniques) {
        const Row* found = nullptr;
        for (const Row& r : table) {
          if (r.technique == tech.name && paper_for(r.guest) == &p) found = &r;
        }
        if (!found) {
          std::printf(" %9s", "-");
        } else if (!found->skipped.empty()) {
          std::printf(" %9s", "skipped");
        } else if (!found->ok) {
          std::printf(" %9s", "failed");
        } else {
          std::printf(" %9.0f", per_iter_cycles(*found));
        }
      }
      std::printf("\n");
    }
    for (const Row& r : table) {
      if (!r.skipped.empty()) {
        std::printf("skipped: %s %s: %s\n", r.technique.c_str(), r.guest.c_str(),
                    r.skipped.c_str());
      } else if (!r.ok) {
        std::printf("failed: %s %s: %s\n", r.technique.c_str(), r.guest.c_str(), r.end.c_str());
      }
    }
  }
  std::printf("model-cycles: %s\n", kCycleModel);
  if (!write_files(o, table, nano)) {
    std::fprintf(stderr, "trapscope compare: cannot write %s%s%s\n", o.csv.c_str(),
                 o.csv.empty() || o.json.empty() ? "" : " or ", o.json.c_str());
    return kBadInput;
  }
  return ok ? kOk : kGuestFault;
}

}  // namespace

void add_compare_command(CLI::App& app, int* status) {
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "compare", "Run one guest under emulation, trap-and-emulate, the VT-x model, BT, PV "
                 "(its pv- twin where there is one) and KVM, and print one table; `compare nano` "
                 "runs the seven nanobenchmarks beside Adams & Agesen's cycles");
  cmd->add_option("WORKLOAD", o->workload,
                  "A built-in guest (see `trapscope guests`), or `nano` for every nanobenchmark")
      ->required();
  cmd->add_option("--paging", o->paging, "Simulator memory virtualization: native, shadow, ept")
      ->check(CLI::IsMember({"native", "shadow", "ept"}))
      ->capture_default_str();
  cmd->add_option("--csv", o->csv, "Also write the table as CSV to this file");
  cmd->add_option("--json", o->json, "Also write the table as JSON to this file");
  cmd->add_option("--iterations", o->iterations,
                  "Nanobenchmarks: iterations of the measured loop (the run is repeated with 0)")
      ->check(CLI::Range(1u, 1000000u))
      ->capture_default_str();
  cmd->add_flag("--no-kvm", o->no_kvm, "Only the simulator's rows");
  cmd->callback([o, status] { *status = run_compare(*o); });
}

}  // namespace trapscope::cli
