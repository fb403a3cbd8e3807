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

class ExitStats final : public EventSink {
 public:
  void on_event(const EventHeader& event) override;
  const std::map<uint32_t, ExitReasonStats>& by_reason() const { return by_reason_; }
  uint64_t total() const { return total_; }
  std::string table() const;  // a printable table, one line per reason, most frequent first

 private:
  std::map<uint32_t, ExitReasonStats> by_reason_;
  uint64_t total_ = 0;
};

}  // namespace trapscope::trace
