#include "compare/workloads.hpp"

#include <cstring>
#include <string>

namespace trapscope::compare {

std::vector<guests::Guest> workload_guests(std::string_view workload) {
  std::vector<guests::Guest> out;
  if (workload == "nano") {
    for (const auto& p : kPaperNanos) out.push_back(*guests::find(p.guest));
  } else if (const auto g = guests::find(workload)) {
    out.push_back(*g);
  }
  return out;
}

std::optional<guests::Guest> pv_twin(const guests::Guest& g) {
  return guests::find("pv-" + std::string(g.name));
}

bool needs_syscall(std::string_view guest) { return guest == "nano-syscall"; }

const PaperNano* paper_for(std::string_view guest) {
  for (const auto& p : kPaperNanos) {
    if (guest == p.guest || (guest.starts_with("pv-") && guest.substr(3) == p.guest)) return &p;
  }
  return nullptr;
}

std::optional<uint32_t> paper_cycles(const PaperNano& p, std::string_view technique) {
  if (technique == "bt") return p.software_vmm;
  if (technique == "vt" || technique == "kvm") return p.hardware_vmm;
  return std::nullopt;
}

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

}  // namespace trapscope::compare
