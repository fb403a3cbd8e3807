// compare/passthrough_rows.hpp — the `passthrough` guest with its device mapped and emulated,
// on the simulator and on KVM, as rows of the compare table (docs/passthrough.md), for
// `trapscope compare disk` to show side by side. Each row is one run of a fresh machine; its
// technique is "passthrough-mapped" or "passthrough-emulated", causes[kMmio] holds the MMIO
// exits (all of them at the device's window: the guest has no other MMIO). A KVM row is skipped
// (with the reason) when KVM is not usable or `no_kvm`.
#pragma once

#include <vector>

#include "compare/comparison.hpp"

namespace trapscope::compare {

std::vector<Row> passthrough_rows(bool no_kvm);

}  // namespace trapscope::compare
