// compare/comparison.hpp — one comparison: a workload run under every technique of the
// simulator (emulation, trap-and-emulate, the VT-x model, BT, PV on the guest's pv- twin) and on
// KVM, each run counted (compare/event_counts.hpp) and priced (compare/cost_model.hpp). What
// `trapscope compare` prints (cli/cmd_compare.cpp) and the visualizer's compare panel draws
// (visualizer/core/compare_run.hpp), both calling run_comparison() in their own process.
//
// [SECTION] Runs
//   A workload is one built-in guest or "nano" (the seven nanobenchmarks, in turn). Each row is
//   one run of a fresh machine (backend::make_backend) with the default stop condition (10 s of
//   host time). A nanobenchmark row is two runs, with `iterations` and with 0 iterations, and
//   carries the difference per iteration. A KVM row is skipped (not run, and why) when KVM is
//   not usable or the guest needs syscall/sysret on a kvm_pvm host; KVM rows are priced with the
//   simulator's instruction and exception counts of the same image (the guests are
//   deterministic), so the simulator rows run first.
// [SECTION] Progress and cancelling
//   `progress` (if set) is called on the calling thread before each run, with the runs done so
//   far, the runs in all and the run about to start, and once at the end with done == total. A
//   stop requested on `stop` (from any thread, or from the callback) ends the run under way
//   (Backend::request_stop: KVM leaves KVM_RUN at once, the simulator stops at its next check,
//   every 4096 instructions; a stop that comes before the machine's run begins is passed on at
//   the run's first event) and no other starts: the status is then kCancelled, and the rows are
//   those made before it, the last being the run it ended (end "stopped", not ok) if one was.
// [SECTION] Errors
//   A WORKLOAD that names no built-in guest, or options out of range, give kBadInput and an
//   error (nothing ran). A run that ends other than by the guest's halt or exit code makes its
//   row !ok (its `end` says how) and the status kRunFailed; the other rows still run.
//   Exceptions from a backend (vmm::KvmError, std::system_error) propagate.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "compare/cost_model.hpp"

namespace trapscope::compare {

struct Options {
  std::string workload;           // a built-in guest, or "nano" for the seven nanobenchmarks
  std::string paging = "native";  // the simulator's memory virtualization: native, shadow, ept
  uint32_t iterations = 1000;     // nanobenchmarks: iterations of the measured loop, 1–1,000,000
  bool no_kvm = false;            // only the simulator's rows
};
inline constexpr uint32_t kMaxIterations = 1000000;

// A nanobenchmark row: (run with N iterations − run with 0) / N of each count.
struct PerIteration {
  uint32_t iterations = 0;
  std::optional<double> instructions;  // nullopt on KVM (not observable)
  double exits = 0, traps = 0, vt_exits = 0, hypercalls = 0, callouts = 0;
  double modelled_cycles = 0;
  std::optional<double> kvm_exits;      // KVM rows whose kernel has statistics
  std::optional<uint32_t> paper_cycles; // the paper's figure for this technique (paper_cycles())
};

// One row of the table: one technique's run of one guest (docs/compare.md has the columns).
struct Row {
  std::string technique, guest;
  std::string end;      // how the run ended (trace::to_string(RunEndReason))
  std::string skipped;  // non-empty: not run here, and why (the row is left out of the files)
  bool simulator = true;
  bool ok = true;       // the run ended by the guest's halt or exit code
  uint64_t instructions = 0, exits = 0, traps = 0, vt_exits = 0, hypercalls = 0, callouts = 0,
           translations = 0, exceptions = 0;
  std::optional<uint64_t> walks, walk_refs, tlb_misses;  // nullopt on KVM
  double wall_ms = 0;  // host wall time of the run (noisy)
  std::array<uint64_t, kCauseCount> causes{};  // entries into the VMM by Cause
  std::array<uint64_t, kPartCount> parts{};    // modelled cycles by Part
  uint64_t cycles() const;                     // Σ parts
  std::optional<PerIteration> per_iteration;   // nanobenchmarks only
  // KVM rows: KVM's vCPU statistics over the run (kKvmStats; empty before Linux 5.14).
  std::optional<std::map<std::string, uint64_t>> kvm_stats;
};

// The vCPU statistics a KVM row keeps (vmm::Vcpu::stats(); Linux's
// Documentation/virt/kvm/api.rst 4.133 and arch/x86 kvm_vcpu_stat): all VM exits, those that
// reached user space by kind, page faults KVM took and fixed or reflected to the guest, TLB
// flushes, INVLPGs, instructions its emulator ran.
inline constexpr std::array<const char*, 14> kKvmStats = {
    "exits",    "io_exits", "mmio_exits", "halt_exits", "irq_exits",      "signal_exits",
    "pf_taken", "pf_fixed", "pf_guest",   "pf_emulate", "tlb_flush",      "invlpg",
    "insn_emulation",       "hypercalls"};

// The rows of one guest of the workload, in kTechniques' order.
struct WorkloadRows {
  std::string guest;                  // the workload's guest (pv rows ran its pv- twin)
  const PaperNano* paper = nullptr;   // a nanobenchmark's figures in the paper, else null
  std::vector<Row> rows;
};

enum class Status : uint8_t {
  kOk,         // every run ended cleanly (skipped rows aside)
  kRunFailed,  // a run ended otherwise: its row says how
  kCancelled,  // stopped by the caller: the rows finished before it
  kBadInput,   // nothing ran: `error` says why
};

struct Comparison {
  Options options;
  Status status = Status::kOk;
  std::string error;  // kBadInput: why ("no built-in guest 'x' (see `trapscope guests`)")
  std::vector<WorkloadRows> workloads;
};

struct Progress {
  size_t done = 0, total = 0;   // runs finished, runs in all (a nanobenchmark row is two)
  std::string technique, guest;  // the run about to start; empty at the end
};
using ProgressFn = std::function<void(const Progress&)>;

// Runs the comparison ([SECTION] Runs) on the calling thread.
Comparison run_comparison(const Options& options, const ProgressFn& progress = {},
                          std::stop_token stop = {});

}  // namespace trapscope::compare
