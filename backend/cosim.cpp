#include "backend/cosim.hpp"

#include <cinttypes>
#include <vector>

#include "sim/decode/disasm.hpp"
#include "trace/printer.hpp"

namespace trapscope::backend {
namespace {

// The guest-observable content of a VM exit (no sequence numbers, times or handling costs).
std::string exit_key(const trace::VmExitEvent& e) {
  char buf[200];
  const trace::ExitPayload& p = e.payload;
  int n = std::snprintf(buf, sizeof buf, "%s rip=%" PRIx64 " cpl=%u mode=%s",
                        std::string(trace::exit_reason_name(e.reason)).c_str(), e.header.rip,
                        e.header.cpl, std::string(trace::to_string(e.header.cpu_mode)).c_str());
  if (e.reason == static_cast<uint32_t>(trace::ExitReason::kIo)) {
    std::snprintf(buf + n, sizeof buf - n, " port=%x %s size=%u count=%u value=%" PRIx64,
                  p.io.port, p.io.direction ? "out" : "in", p.io.size, p.io.count, p.io.value);
  } else if (e.reason == static_cast<uint32_t>(trace::ExitReason::kMmio)) {
    std::snprintf(buf + n, sizeof buf - n, " gpa=%" PRIx64 " %s len=%u data=%" PRIx64,
                  p.mmio.gpa, p.mmio.is_write ? "write" : "read", p.mmio.len, p.mmio.data);
  }
  return buf;
}

// The VM exits of a recording: each exit's event number and that of the hypercall record that
// follows it (SIZE_MAX: none). Numbers, not texts: a capped Recorder (trace/limits.hpp) holds
// millions of exits, and their texts are only needed up to the first difference.
using ExitRef = std::pair<size_t, size_t>;
std::vector<ExitRef> exits_of(const trace::Recorder& rec) {
  std::vector<ExitRef> out;
  for (size_t i = 0; i < rec.size(); ++i) {
    if (const auto* e = rec.get<trace::VmExitEvent>(i, trace::EventType::kVmExit)) {
      if ((e->header.flags & trace::kExitFlagHypercallRecord) && !out.empty()) {
        // the hypercall behind the I/O exit just recorded: part of that exit, not another one
        out.back().second = i;
        continue;
      }
      out.emplace_back(i, SIZE_MAX);
    }
  }
  return out;
}

std::string exit_text(const trace::Recorder& rec, ExitRef x) {
  std::string s = exit_key(*rec.get<trace::VmExitEvent>(x.first, trace::EventType::kVmExit));
  if (x.second != SIZE_MAX) {
    const auto& h = rec.get<trace::VmExitEvent>(x.second, trace::EventType::kVmExit)
                        ->payload.hypercall;
    s += " hypercall " + std::to_string(h.nr) + " -> " + std::to_string(h.result);
  }
  return s;
}

std::string registers_text(const sim::CpuState& s) {
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

}  // namespace

namespace {

struct Side {
  std::string name;
  Backend* machine;
  const RunOutcome* outcome;
  const trace::Recorder* events;
};

// Compares two finished runs: VM exits in order, how the run ended, console, final registers,
// guest memory; the report names the first difference.
CosimResult compare(const Side& a, const Side& b) {
  CosimResult res;
  const auto ae = exits_of(*a.events);
  const auto be = exits_of(*b.events);
  const std::string pa = "\n  " + a.name + ": ", pb = "\n  " + b.name + ": ";
  for (size_t i = 0; i < ae.size() || i < be.size(); ++i) {
    const auto ended = [](const Side& s) {  // e.g. at a cap of trace/limits.hpp
      return "<none: the run had ended: " + std::string(trace::to_string(s.outcome->reason)) + ">";
    };
    const std::string x = i < ae.size() ? exit_text(*a.events, ae[i]) : ended(a);
    const std::string y = i < be.size() ? exit_text(*b.events, be[i]) : ended(b);
    if (x != y) {
      res.report = "first divergence at VM exit #" + std::to_string(i) + ":" + pa + x + pb + y;
      res.exits = i;  // equal exits before the divergence
      if (!b.outcome->detail.empty()) res.report += "\n  " + b.name + " stopped with: " + b.outcome->detail;
      return res;
    }
  }
  res.exits = ae.size();
  const RunOutcome& ar = *a.outcome;
  const RunOutcome& br = *b.outcome;
  if (ar.reason != br.reason || ar.exit_code != br.exit_code) {
    res.report = "runs ended differently after " + std::to_string(ae.size()) + " equal exits:" +
                 pa + std::string(trace::to_string(ar.reason)) + " " +
                 std::to_string(ar.exit_code) + pb + std::string(trace::to_string(br.reason)) +
                 " " + std::to_string(br.exit_code) +
                 (br.detail.empty() ? "" : "\n  " + b.name + ": " + br.detail);
    return res;
  }
  if (a.machine->devices().console.text() != b.machine->devices().console.text()) {
    res.report = "console output differs:" + pa + a.machine->devices().console.text() + pb +
                 b.machine->devices().console.text();
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
  for (size_t i = 0; i < am.size() && i < bm.size(); ++i) {
    if (am[i] != bm[i]) {
      char buf[200];
      std::snprintf(buf, sizeof buf, "guest memory differs first at GPA 0x%zx: %s %02x, %s %02x",
                    i, a.name.c_str(), am[i], b.name.c_str(), bm[i]);
      res.report = buf;
      return res;
    }
  }
  res.equal = true;
  res.report = "equal: " + std::to_string(ae.size()) + " VM exits, console, run end (" +
               std::string(trace::to_string(ar.reason)) + "), registers and " +
               std::to_string(am.size() >> 20) + " MiB of memory";
  return res;
}

}  // namespace

CosimResult cosimulate(std::span<const uint8_t> image, const Config& config,
                       const StopCondition& stop) {
  auto kvm = make_backend(Kind::kKvm, config);
  auto sim = make_backend(Kind::kSim, config);
  kvm->load(image);
  sim->load(image);
  trace::Recorder kvm_events, sim_events;
  StopCondition kvm_stop = stop;
  kvm_stop.max_instructions = 0;  // not observable on KVM; the simulator still honours it
  const RunOutcome kr = kvm->run(kvm_stop, &kvm_events);
  const RunOutcome sr = sim->run(stop, &sim_events);
  return compare({"kvm", kvm.get(), &kr, &kvm_events}, {"sim", sim.get(), &sr, &sim_events});
}

CosimResult compare_with_native(std::span<const uint8_t> image, const Config& config,
                                const StopCondition& stop) {
  Config native_cfg = config;
  native_cfg.technique = virt::Technique::kEmulation;
  native_cfg.record_instructions = false;
  Config virt_cfg = config;
  virt_cfg.record_instructions = false;
  auto native = make_backend(Kind::kSim, native_cfg);
  auto virtualized = make_backend(Kind::kSim, virt_cfg);
  native->load(image);
  virtualized->load(image);
  trace::Recorder native_events, virt_events;
  const RunOutcome nr = native->run(stop, &native_events);
  const RunOutcome vr = virtualized->run(stop, &virt_events);
  CosimResult res = compare({"native", native.get(), &nr, &native_events},
                            {std::string(virt::to_string(config.technique)), virtualized.get(),
                             &vr, &virt_events});
  if (res.equal || res.report.rfind("first divergence at VM exit", 0) != 0) return res;
  // Name the likely cause: the last sensitive instruction that ran without trapping before the
  // diverging exit.
  size_t seen = 0, at = virt_events.size();
  for (size_t i = 0; i < virt_events.size(); ++i) {
    if (virt_events.at(i).type == trace::EventType::kVmExit && seen++ == res.exits) {
      at = i;
      break;
    }
  }
  for (size_t i = at; i-- > 0;) {
    const auto* e = virt_events.get<trace::VirtEvent>(i, trace::EventType::kSensitiveNoTrap);
    if (!e) continue;
    char buf[64];
    std::snprintf(buf, sizeof buf, " at rip=0x%" PRIx64, e->header.rip);
    res.report += "\n  last sensitive instruction that did not trap before it: " +
                  decode::disassemble({e->insn, e->insn_len}, e->header.cpu_mode, e->header.rip)
                      .text +
                  buf;
    break;
  }
  return res;
}

}  // namespace trapscope::backend
