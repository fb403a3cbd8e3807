#include <cstdio>
#include <cstdlib>

#include "tests/fuzz/fuzz_input.hpp"

namespace trapscope::fuzz {

void invariant_failed(const char* target, const char* what) {
  std::fprintf(stderr, "%s: invariant broken: %s\n", target, what);
  std::abort();
}

}  // namespace trapscope::fuzz
