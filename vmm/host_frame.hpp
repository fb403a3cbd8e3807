// vmm/host_frame.hpp — where a page of this process lives in host-physical memory (the HPA column
// of `trapscope walk` on the KVM engine).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace trapscope::vmm {

// Where a page of this process's memory lives in host-physical memory, from /proc/self/pagemap
// (Linux Documentation/admin-guide/mm/pagemap.rst: bit 63 present, 62 swapped, 54:0 the page
// frame number). Since Linux 4.2 the PFN reads as 0 without CAP_SYS_ADMIN: pfn_visible is false
// then. For the KVM backend, guest memory is one memory slot (KVM_SET_USER_MEMORY_REGION, slot
// 0 at GPA 0), so GPA g lives at host-virtual slot base + g. nullopt (and *why) if pagemap
// cannot be read.
struct HostFrame {
  uint64_t host_virtual = 0;
  bool present = false;      // the host page is resident
  bool swapped = false;
  bool pfn_visible = false;  // the PFN was shown (root, page present)
  uint64_t pfn = 0;          // host-physical frame number (HPA = pfn * 4096 + offset)
};
std::optional<HostFrame> host_frame(const void* host_address, std::string* why);

}  // namespace trapscope::vmm
