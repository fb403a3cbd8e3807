// vmm/dirty_log.hpp — whether this host's KVM reports the pages a guest writes in its dirty log
// (KVM API 4.8 KVM_GET_DIRTY_LOG, with KVM_MEM_LOG_DIRTY_PAGES on the slot). Hardware-assisted
// KVM logs every write; a software KVM such as kvm_pvm emulates much of the guest and might not,
// so live migration trusts the log only where this probe, on memory mapped as the machine's
// (vmm/guest_memory.hpp), saw both written pages logged (measured on this project's kvm_pvm
// host: it does).
#pragma once

#include <string>

namespace trapscope::vmm {

struct DirtyLogProbe {
  bool works = false;
  std::string detail;  // what was seen, e.g. "2 of 2 written pages logged"
};

// Probed once per process with a 12-byte real-mode guest that writes two pages; a host without
// usable KVM gives works = false with the reason.
const DirtyLogProbe& host_dirty_log();

}  // namespace trapscope::vmm
