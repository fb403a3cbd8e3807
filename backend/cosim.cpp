#include "backend/cosim.hpp"

#include <algorithm>
#include <tuple>
#include <chrono>
#include <cinttypes>
#include <cstring>
#include <deque>
#include <memory>

#include "x86/disasm.hpp"
#include "trace/printer.hpp"

namespace trapscope::backend {
namespace {

// The last sensitive instruction that ran without trapping (trap-and-emulate), for the report.
struct NoTrap {
  bool seen = false;
  trace::CpuMode mode{};
  uint8_t len = 0;
  uint8_t insn[15] = {};
  uint64_t rip = 0;
};

// The guest-observable content of a VM exit (no sequence numbers, times or handling costs),
// with the hypercall behind it (a kExitFlagHypercallRecord event just after it is part of that
// exit, not another one), and the last NoTrap before it (not compared).
struct ExitKey {
  uint32_t reason = 0;
  uint8_t cpl = 0;
  trace::CpuMode mode{};
  uint64_t rip = 0;
  trace::ExitIoData io{};      // kIo only
  trace::ExitMmioData mmio{};  // kMmio only
  bool hypercall = false;
  uint32_t hc_nr = 0;
  int32_t hc_result = 0;
  NoTrap before;
};

bool same(const ExitKey& a, const ExitKey& b) {
  if (a.reason != b.reason || a.rip != b.rip || a.cpl != b.cpl || a.mode != b.mode ||
      a.hypercall != b.hypercall || a.hc_nr != b.hc_nr || a.hc_result != b.hc_result) {
    return false;
  }
  if (a.reason == static_cast<uint32_t>(trace::ExitReason::kIo)) {
    return a.io.port == b.io.port && a.io.direction == b.io.direction &&
           a.io.size == b.io.size && a.io.count == b.io.count && a.io.value == b.io.value;
  }
  if (a.reason == static_cast<uint32_t>(trace::ExitReason::kMmio)) {
    return a.mmio.gpa == b.mmio.gpa && a.mmio.is_write == b.mmio.is_write &&
           a.mmio.len == b.mmio.len && a.mmio.data == b.mmio.data;
  }
  return true;
}

std::string text(const ExitKey& k) {
  char buf[200];
  int n = std::snprintf(buf, sizeof buf, "%s rip=%" PRIx64 " cpl=%u mode=%s",
                        std::string(trace::exit_reason_name(k.reason)).c_str(), k.rip, k.cpl,
                        std::string(trace::to_string(k.mode)).c_str());
  if (k.reason == static_cast<uint32_t>(trace::ExitReason::kIo)) {
    std::snprintf(buf + n, sizeof buf - n, " port=%x %s size=%u count=%u value=%" PRIx64,
                  k.io.port, k.io.direction ? "out" : "in", k.io.size, k.io.count, k.io.value);
  } else if (k.reason == static_cast<uint32_t>(trace::ExitReason::kMmio)) {
    std::snprintf(buf + n, sizeof buf - n, " gpa=%" PRIx64 " %s len=%u data=%" PRIx64,
                  k.mmio.gpa, k.mmio.is_write ? "write" : "read", k.mmio.len, k.mmio.data);
  }
  std::string out = buf;
  if (k.hypercall) {
    out += " hypercall " + std::to_string(k.hc_nr) + " -> " + std::to_string(k.hc_result);
  }
  return out;
}

// The VM exits of one side not yet compared (see [SECTION] Bounds in the header).
class ExitQueue final : public trace::EventSink {
 public:
  void on_event(const trace::EventHeader& h) override {
    if (h.type == trace::EventType::kSensitiveNoTrap && h.size == sizeof(trace::VirtEvent)) {
      const auto& v = reinterpret_cast<const trace::VirtEvent&>(h);
      last_.seen = true;
      last_.mode = h.cpu_mode;
      last_.rip = h.rip;
      last_.len = std::min<uint8_t>(v.insn_len, sizeof v.insn);
      std::memcpy(last_.insn, v.insn, sizeof v.insn);
      return;
    }
    if (h.type != trace::EventType::kVmExit || h.size != sizeof(trace::VmExitEvent)) return;
    const auto& e = reinterpret_cast<const trace::VmExitEvent&>(h);
    if ((h.flags & trace::kExitFlagHypercallRecord) && !pending.empty()) {
      pending.back().hypercall = true;
      pending.back().hc_nr = e.payload.hypercall.nr;
      pending.back().hc_result = e.payload.hypercall.result;
      return;
    }
    ExitKey k;
    k.reason = e.reason;
    k.cpl = h.cpl;
    k.mode = h.cpu_mode;
    k.rip = h.rip;
    if (e.reason == static_cast<uint32_t>(trace::ExitReason::kIo)) k.io = e.payload.io;
    if (e.reason == static_cast<uint32_t>(trace::ExitReason::kMmio)) k.mmio = e.payload.mmio;
    k.before = last_;
    pending.push_back(k);
  }
  const NoTrap& last() const { return last_; }
  std::deque<ExitKey> pending;

 private:
  NoTrap last_;
};

struct Side {
  std::string name;
  std::unique_ptr<Backend> machine;
  StopCondition stop;  // the whole run's limits (max_exits, max_instructions; 0 = none)
  ExitQueue exits;
  uint64_t exits_run = 0, instructions_run = 0;
  bool ended = false;
  RunOutcome end;  // how the run ended (valid once ended)
};

using Clock = std::chrono::steady_clock;

// Runs one slice of s ([SECTION] Bounds). False when the check must stop (the budget is used
// or it was cancelled) before s ended.
bool run_slice(Side& s, Clock::time_point deadline) {
  const double left = std::chrono::duration<double>(deadline - Clock::now()).count();
  if (left <= 0) return false;
  using R = trace::RunEndReason;
  if (s.stop.max_instructions && s.instructions_run >= s.stop.max_instructions) {
    s.ended = true;  // not reached: a run that hits the limit reports it (sim/sim_machine.cpp)
    s.end = {R::kInstructionLimit, 0, s.exits_run, s.instructions_run, 0, {}};
    return true;
  }
  StopCondition slice = s.stop;
  slice.timeout_s = std::min(left, kCheckSliceSeconds);
  slice.max_exits = kCheckSliceExits;
  if (s.stop.max_exits) slice.max_exits = std::min(kCheckSliceExits, s.stop.max_exits - s.exits_run);
  if (s.stop.max_instructions) slice.max_instructions = s.stop.max_instructions - s.instructions_run;
  const RunOutcome r = s.machine->run(slice, &s.exits);
  s.exits_run += r.exits;
  s.instructions_run += r.instructions;
  if (r.reason == R::kTimeLimit) return true;  // the slice's end (or the budget's: next call)
  if (r.reason == R::kExitLimit && (!s.stop.max_exits || s.exits_run < s.stop.max_exits)) {
    return true;  // the slice's exits
  }
  s.ended = true;
  s.end = r;
  s.end.exits = s.exits_run;
  s.end.instructions = s.instructions_run;
  return true;
}

// The first offset at which a and b differ (their common length if none), a page at a time.
size_t first_difference(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  const size_t n = std::min(a.size(), b.size());
  for (size_t page = 0; page < n; page += 4096) {
    const size_t len = std::min<size_t>(4096, n - page);
    if (std::memcmp(a.data() + page, b.data() + page, len) == 0) continue;
    for (size_t i = page;; ++i) {
      if (a[i] != b[i]) return i;
    }
  }
  return n;
}

std::string registers_text(const x86::CpuState& s) {
  static constexpr const char* kNames[16] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp",
                                             "rsi", "rdi", "r8",  "r9",  "r10", "r11",
                                             "r12", "r13", "r14", "r15"};
  std::string out;
  char buf[64];
  for (int i = 0; i < 16; ++i) {
    std::snprintf(buf, sizeof buf, "%s=%" PRIx64 " ", kNames[i], s.gpr[i]);
    out += buf;
  }
  std::snprintf(buf, sizeof buf, "rip=%" PRIx64 " rflags=%" PRIx64 " ", s.rip, s.rflags);
  out += buf;
  static constexpr const char* kSeg[6] = {"es", "cs", "ss", "ds", "fs", "gs"};
  for (int i = 0; i < 6; ++i) {
    std::snprintf(buf, sizeof buf, "%s=%x ", kSeg[i], s.seg[i].selector);
    out += buf;
  }
  std::snprintf(buf, sizeof buf, "cr0=%" PRIx64 " cr3=%" PRIx64 " cr4=%" PRIx64 " efer=%" PRIx64,
                s.cr0, s.cr3, s.cr4, s.efer);
  out += buf;
  return out;
}

// How both runs ended, once they have: run end, console, final registers, guest memory.
CosimResult compare_ends(Side& a, Side& b, uint64_t equal_exits) {
  CosimResult res;
  res.exits = equal_exits;
  const std::string pa = "\n  " + a.name + ": ", pb = "\n  " + b.name + ": ";
  const RunOutcome& ar = a.end;
  const RunOutcome& br = b.end;
  if (ar.reason != br.reason || ar.exit_code != br.exit_code) {
    res.report = "runs ended differently after " + std::to_string(equal_exits) +
                 " equal exits:" + pa + std::string(trace::to_string(ar.reason)) + " " +
                 std::to_string(ar.exit_code) + pb + std::string(trace::to_string(br.reason)) +
                 " " + std::to_string(br.exit_code) +
                 (br.detail.empty() ? "" : "\n  " + b.name + ": " + br.detail);
    return res;
  }
  const std::string& ac = a.machine->devices().console.text();
  const std::string& bc = b.machine->devices().console.text();
  if (ac != bc) {
    res.report = "console output differs:" + pa + ac + pb + bc;
    return res;
  }
  const std::string aregs = registers_text(a.machine->registers());
  const std::string bregs = registers_text(b.machine->registers());
  if (aregs != bregs) {
    res.report = "final registers differ:" + pa + aregs + pb + bregs;
    return res;
  }
  const auto am = a.machine->memory();
  const auto bm = b.machine->memory();
  const size_t at = first_difference(am, bm);
  if (at < std::min(am.size(), bm.size())) {
    char buf[200];
    std::snprintf(buf, sizeof buf, "guest memory differs first at GPA 0x%zx: %s %02x, %s %02x",
                  at, a.name.c_str(), am[at], b.name.c_str(), bm[at]);
    res.report = buf;
    return res;
  }
  res.equal = true;
  res.report = "equal: " + std::to_string(equal_exits) + " VM exits, console, run end (" +
               std::string(trace::to_string(ar.reason)) + "), registers and " +
               std::to_string(am.size() >> 20) + " MiB of memory";
  return res;
}

// The lockstep check of [SECTION] Bounds; *held: the most exits held at once.
CosimResult check_lockstep(Side& a, Side& b, Clock::time_point deadline,
                           const std::atomic<bool>* cancel, size_t* held) {
  uint64_t equal = 0;
  const auto diverged = [&](const ExitKey* x, const ExitKey* y) {
    const std::string none = "<none: the run had ended>";
    CosimResult res;
    res.exits = equal;
    res.report = "first divergence at VM exit #" + std::to_string(equal) + ":\n  " + a.name +
                 ": " + (x ? text(*x) : none) + "\n  " + b.name + ": " + (y ? text(*y) : none);
    if (b.ended && !b.end.detail.empty()) {
      res.report += "\n  " + b.name + " stopped with: " + b.end.detail;
    }
    return res;
  };
  for (;;) {
    *held = std::max(*held, a.exits.pending.size() + b.exits.pending.size());
    auto& ap = a.exits.pending;
    auto& bp = b.exits.pending;
    for (; !ap.empty() && !bp.empty(); ++equal) {
      if (!same(ap.front(), bp.front())) return diverged(&ap.front(), &bp.front());
      ap.pop_front();
      bp.pop_front();
    }
    if (a.ended && ap.empty() && !bp.empty()) return diverged(nullptr, &bp.front());
    if (b.ended && bp.empty() && !ap.empty()) return diverged(&ap.front(), nullptr);
    if (a.ended && b.ended) return compare_ends(a, b, equal);
    // The side that is behind runs next.
    Side& s = b.ended || (!a.ended && a.exits.pending.size() <= b.exits.pending.size()) ? a : b;
    const bool cancelled = cancel && cancel->load(std::memory_order_relaxed);
    if (cancelled || !run_slice(s, deadline)) {
      CosimResult res;
      res.checked = false;
      res.exits = equal;
      res.report = std::string("equivalence not checked: ") +
                   (cancelled ? "interrupted" : "time limit reached (--timeout bounds the run "
                                                "and the check together)") +
                   " after " + std::to_string(equal) + " equal VM exits";
      return res;
    }
  }
}

// The lockstep check of [SECTION] Bounds.
CosimResult check(Side& a, Side& b, double budget_s, const std::atomic<bool>* cancel) {
  const Clock::time_point deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(std::max(0.0, budget_s)));
  size_t held = 0;
  CosimResult res = check_lockstep(a, b, deadline, cancel, &held);
  res.max_held = held;
  return res;
}

void set_up(Side& s, std::string name, Kind kind, const Config& config,
            std::span<const uint8_t> image, const StopCondition& stop) {
  s.name = std::move(name);
  s.machine = make_backend(kind, config);
  s.machine->load(image);
  s.stop = stop;
  s.stop.has_breakpoint = false;
  s.stop.stop_on = 0;
}

}  // namespace

CosimResult cosimulate(std::span<const uint8_t> image, const Config& config,
                       const StopCondition& stop, const std::atomic<bool>* cancel) {
  StopCondition kvm_stop = stop;
  kvm_stop.max_instructions = 0;  // not observable on KVM; the simulator still honours it
  Side kvm, sim;
  set_up(kvm, "kvm", Kind::kKvm, config, image, kvm_stop);
  set_up(sim, "sim", Kind::kSim, config, image, stop);
  return check(kvm, sim, stop.timeout_s, cancel);
}

CosimResult compare_machines(std::unique_ptr<Backend> a, std::string a_name,
                             std::unique_ptr<Backend> b, std::string b_name,
                             const StopCondition& stop, const std::atomic<bool>* cancel) {
  Side x, y;
  for (auto [s, m, n] : {std::tuple{&x, &a, &a_name}, std::tuple{&y, &b, &b_name}}) {
    s->name = std::move(*n);
    s->machine = std::move(*m);
    s->stop = stop;
    s->stop.has_breakpoint = false;
    s->stop.stop_on = 0;
    if (s->machine->kind() == Kind::kKvm) s->stop.max_instructions = 0;
  }
  return check(x, y, stop.timeout_s, cancel);
}

CosimResult compare_with_native(std::span<const uint8_t> image, const Config& config,
                                const StopCondition& stop, const std::atomic<bool>* cancel) {
  Config native_cfg = config;
  native_cfg.technique = sim::virt::Technique::kEmulation;
  native_cfg.record_instructions = false;
  Config virt_cfg = config;
  virt_cfg.record_instructions = false;
  virt_cfg.bt_lookup_events = false;
  Side native, virtualized;
  set_up(native, "native", Kind::kSim, native_cfg, image, stop);
  set_up(virtualized, std::string(sim::virt::to_string(config.technique)), Kind::kSim, virt_cfg,
         image, stop);
  CosimResult res = check(native, virtualized, stop.timeout_s, cancel);
  if (res.equal || res.report.rfind("first divergence at VM exit", 0) != 0) return res;
  // Name the likely cause: the last sensitive instruction that ran without trapping before the
  // diverging exit (or before the run's end, if it had no such exit).
  const auto& q = virtualized.exits;
  const NoTrap& t = q.pending.empty() ? q.last() : q.pending.front().before;
  if (t.seen) {
    char buf[64];
    std::snprintf(buf, sizeof buf, " at rip=0x%" PRIx64, t.rip);
    res.report += "\n  last sensitive instruction that did not trap before it: " +
                  x86::disassemble({t.insn, t.len}, t.mode, t.rip).text + buf;
  }
  return res;
}

}  // namespace trapscope::backend
