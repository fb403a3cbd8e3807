#include "platform/exit_event.hpp"

#include <algorithm>
#include <cstring>

namespace trapscope::platform {
namespace {

uint64_t first_value(std::span<const uint8_t> data, size_t size) {
  uint64_t v = 0;
  std::memcpy(&v, data.data(), std::min({size, data.size(), sizeof v}));
  return v;
}

struct Payload {
  trace::ExitPayload& p;
  void operator()(const ExitIoOut& io) const {
    p.io = {io.port, io.size, 1, io.count, first_value(io.data, io.size), {}};
  }
  void operator()(const ExitIoIn& io) const {
    p.io = {io.port, io.size, 0, io.count, first_value(io.data, io.size), {}};
  }
  void operator()(const ExitMmioRead& m) const {
    p.mmio.gpa = m.gpa;
    p.mmio.len = static_cast<uint8_t>(std::min<size_t>(m.data.size(), 8));
    p.mmio.data = first_value(m.data, 8);
  }
  void operator()(const ExitMmioWrite& m) const {
    p.mmio.gpa = m.gpa;
    p.mmio.len = static_cast<uint8_t>(std::min<size_t>(m.data.size(), 8));
    p.mmio.is_write = 1;
    p.mmio.data = first_value(m.data, 8);
  }
  void operator()(const ExitInternalError& ie) const {
    p.internal = {ie.suberror, ie.ndata, {ie.data[0], ie.data[1]}};
  }
  void operator()(const ExitFailEntry& fe) const {
    p.fail_entry.hardware_entry_failure_reason = fe.hardware_entry_failure_reason;
    p.fail_entry.cpu = fe.cpu;
  }
  void operator()(const ExitDebug& d) const { p.debug = {d.exception, 0, d.dr6, d.dr7}; }
  void operator()(const ExitSystemEvent& se) const { p.system_event.type = se.type; }
  void operator()(const auto&) const {}  // HLT, SHUTDOWN, interrupted, other: no payload
};

}  // namespace

trace::VmExitEvent exit_event(const VcpuExit& exit, const ExitSite& site) {
  trace::VmExitEvent e{};
  e.header = trace::make_header<trace::VmExitEvent>(trace::EventType::kVmExit);
  e.header.seq = site.seq;
  e.header.time_ns = site.time_ns;
  e.header.rip = site.rip;
  e.header.cpl = site.cpl;
  e.header.cpu_mode = site.mode;
  if (site.rip_advanced) e.header.flags |= trace::kExitFlagRipAdvanced;
  e.reason = kvm_exit_reason(exit);
  e.handle_ns = site.handle_ns;
  e.insn_addr = site.insn_addr;
  e.insn_len = static_cast<uint8_t>(std::min<size_t>(site.insn.size(), sizeof e.insn));
  if (e.insn_len) std::memcpy(e.insn, site.insn.data(), e.insn_len);
  std::visit(Payload{e.payload}, exit);
  return e;
}

}  // namespace trapscope::platform
