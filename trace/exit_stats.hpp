// trace/exit_stats.hpp — VM exit statistics per exit reason, in the columns `perf kvm stat`
// users know: samples, share of samples, total/min/max/mean handling time (ns).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "trace/recorder.hpp"

namespace trapscope::trace {

struct ExitReasonStats {
  uint64_t count = 0;
  uint64_t total_ns = 0;
  uint64_t min_ns = UINT64_MAX;
  uint64_t max_ns = 0;
};

// VM exits as the engine's VMM sees them (kVmExit, KVM's exit-reason numbers, both engines),
// and apart from them the simulator's VT-x model's exits (kVmTransition exits, trace::is_vt_exit)
// by Intel basic exit reason (SDM Vol. 3C Appendix C, x86/vmx.hpp). The two are not added up: an
// `out` under --technique vt is one of each (the model's IO_INSTRUCTION exit, then the platform's
// IO exit that the device emulation sees).
class ExitStats final : public EventSink {
 public:
  void on_event(const EventHeader& event) override;
  const std::map<uint32_t, ExitReasonStats>& by_reason() const { return by_reason_; }
  uint64_t total() const { return total_; }
  // VT-x model exits: basic exit reason → count (no handling time: the model does not time).
  const std::map<uint32_t, uint64_t>& by_vmx_reason() const { return by_vmx_reason_; }
  uint64_t vmx_total() const { return vmx_total_; }
  std::string table() const;  // a printable table, one line per reason, most frequent first

 private:
  std::map<uint32_t, ExitReasonStats> by_reason_;
  uint64_t total_ = 0;
  std::map<uint32_t, uint64_t> by_vmx_reason_;
  uint64_t vmx_total_ = 0;
};

}  // namespace trapscope::trace
