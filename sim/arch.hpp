// sim/arch.hpp — the simulator models an x86 processor: its code names the architectural types
// and constants of x86/ (state, instruction form, mode, paging formats) unqualified.
#pragma once

#include "x86/address.hpp"
#include "x86/insn.hpp"
#include "x86/mode.hpp"
#include "x86/paging.hpp"
#include "x86/state.hpp"

namespace trapscope::sim {
using namespace trapscope::x86;  // NOLINT(google-build-using-namespace): sim is an x86 model
}  // namespace trapscope::sim
