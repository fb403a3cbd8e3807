// sim/bt/kind_reason.hpp — why the translator translated an instruction as it did: its sentence
// per trace::BtKind (sim/bt/translator.hpp [SECTION] IDENT and non-IDENT). A light header (no
// simulated CPU), so that the translation-cache view (visualizer/core/tcache_view.hpp) shows
// the translator's own words rather than its own.
#pragma once

#include <string_view>

#include "trace/event.hpp"

namespace trapscope::sim::bt {

// The translator's sentence for a kind it decides itself: pc-relative, direct-branch,
// indirect-branch, adaptive-callout. "" for IDENT, and for in-cache and callout, whose reason is
// the Popek–Goldberg classifier's sentence for the instruction (x86/classify.hpp).
std::string_view kind_reason(trace::BtKind kind);

}  // namespace trapscope::sim::bt
