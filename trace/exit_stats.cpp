#include "trace/exit_stats.hpp"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace trapscope::trace {

void ExitStats::on_event(const EventHeader& h) {
  if (is_vt_exit(h) && h.size == sizeof(VirtEvent)) {
    ++by_vmx_reason_[reinterpret_cast<const VirtEvent&>(h).exit_reason];
    ++vmx_total_;
    return;
  }
  if (!is_vm_exit(h) || h.size != sizeof(VmExitEvent)) return;  // a hypercall record is not one
  const auto& e = reinterpret_cast<const VmExitEvent&>(h);
  ExitReasonStats& s = by_reason_[e.reason];
  ++s.count;
  s.total_ns += e.handle_ns;
  s.min_ns = std::min<uint64_t>(s.min_ns, e.handle_ns);
  s.max_ns = std::max<uint64_t>(s.max_ns, e.handle_ns);
  ++total_;
}

std::string ExitStats::table() const {
  std::vector<std::pair<uint32_t, ExitReasonStats>> rows(by_reason_.begin(), by_reason_.end());
  std::stable_sort(rows.begin(), rows.end(),
                   [](const auto& a, const auto& b) { return a.second.count > b.second.count; });
  std::string out;
  char line[160];
  std::snprintf(line, sizeof line, "%-18s %10s %8s %12s %10s %10s %10s\n", "VM-EXIT", "Samples",
                "Samples%", "Handle total", "Min", "Max", "Avg");
  out += line;
  for (const auto& [reason, s] : rows) {
    const std::string name =
        std::string(exit_reason_name(reason)) + "(" + std::to_string(reason) + ")";
    std::snprintf(line, sizeof line, "%-18s %10llu %7.2f%% %10.1fus %8.2fus %8.2fus %8.2fus\n",
                  name.c_str(), static_cast<unsigned long long>(s.count),
                  100.0 * static_cast<double>(s.count) / static_cast<double>(total_),
                  static_cast<double>(s.total_ns) / 1e3, static_cast<double>(s.min_ns) / 1e3,
                  static_cast<double>(s.max_ns) / 1e3,
                  static_cast<double>(s.total_ns) / 1e3 / static_cast<double>(s.count));
    out += line;
  }
  if (vmx_total_) {
    std::vector<std::pair<uint32_t, uint64_t>> vmx(by_vmx_reason_.begin(), by_vmx_reason_.end());
    std::stable_sort(vmx.begin(), vmx.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    out += "VT-x model exits by basic exit reason (SDM Vol. 3C Appendix C):\n";
    for (const auto& [reason, n] : vmx) {
      const std::string name =
          std::string(vmx_exit_reason_name(reason)) + "(" + std::to_string(reason) + ")";
      std::snprintf(line, sizeof line, "%-22s %10llu %7.2f%%\n", name.c_str(),
                    static_cast<unsigned long long>(n),
                    100.0 * static_cast<double>(n) / static_cast<double>(vmx_total_));
      out += line;
    }
  }
  return out;
}

}  // namespace trapscope::trace
