#include "backend/cosim.hpp"

#include <cinttypes>
#include <vector>

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

std::vector<std::string> exits_of(const trace::Recorder& rec) {
  std::vector<std::string> out;
  for (size_t i = 0; i < rec.size(); ++i) {
    if (const auto* e = rec.get<trace::VmExitEvent>(i, trace::EventType::kVmExit)) {
      out.push_back(exit_key(*e));
    }
  }
  return out;
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

CosimResult cosimulate(std::span<const uint8_t> image, const Config& config,
                       const StopCondition& stop) {
  CosimResult res;
  auto kvm = make_backend(Kind::kKvm, config);
  auto sim = make_backend(Kind::kSim, config);
  kvm->load(image);
  sim->load(image);
  trace::Recorder kvm_events, sim_events;
  StopCondition kvm_stop = stop;
  kvm_stop.max_instructions = 0;  // not observable on KVM; the simulator still honours it
  const RunOutcome kr = kvm->run(kvm_stop, &kvm_events);
  const RunOutcome sr = sim->run(stop, &sim_events);

  const auto ke = exits_of(kvm_events);
  const auto se = exits_of(sim_events);
  for (size_t i = 0; i < ke.size() || i < se.size(); ++i) {
    const std::string a = i < ke.size() ? ke[i] : "<none: the run had ended>";
    const std::string b = i < se.size() ? se[i] : "<none: the run had ended>";
    if (a != b) {
      res.report = "first divergence at VM exit #" + std::to_string(i) + ":\n  kvm: " + a +
                   "\n  sim: " + b;
      if (!sr.detail.empty()) res.report += "\n  simulator stopped with: " + sr.detail;
      return res;
    }
  }
  res.exits = ke.size();
  if (kr.reason != sr.reason || kr.exit_code != sr.exit_code) {
    res.report = "runs ended differently after " + std::to_string(ke.size()) +
                 " equal exits:\n  kvm: " + std::string(trace::to_string(kr.reason)) + " " +
                 std::to_string(kr.exit_code) + "\n  sim: " +
                 std::string(trace::to_string(sr.reason)) + " " + std::to_string(sr.exit_code) +
                 (sr.detail.empty() ? "" : "\n  simulator: " + sr.detail);
    return res;
  }
  if (kvm->devices().console.text() != sim->devices().console.text()) {
    res.report = "console output differs:\n  kvm: " + kvm->devices().console.text() +
                 "\n  sim: " + sim->devices().console.text();
    return res;
  }
  const std::string kregs = registers_text(kvm->registers());
  const std::string sregs = registers_text(sim->registers());
  if (kregs != sregs) {
    res.report = "final registers differ:\n  kvm: " + kregs + "\n  sim: " + sregs;
    return res;
  }
  const auto km = kvm->memory();
  const auto sm = sim->memory();
  for (size_t i = 0; i < km.size() && i < sm.size(); ++i) {
    if (km[i] != sm[i]) {
      char buf[160];
      std::snprintf(buf, sizeof buf,
                    "guest memory differs first at GPA 0x%zx: kvm %02x, sim %02x", i, km[i],
                    sm[i]);
      res.report = buf;
      return res;
    }
  }
  res.equal = true;
  res.report = "equal: " + std::to_string(ke.size()) + " VM exits, console, run end (" +
               std::string(trace::to_string(kr.reason)) + "), registers and " +
               std::to_string(km.size() >> 20) + " MiB of memory";
  return res;
}

}  // namespace trapscope::backend
