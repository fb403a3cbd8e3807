// tests/support.hpp — helpers shared by the tests.
#pragma once

#include <string>
#include <vector>

namespace trapscope::test {

// True when /dev/kvm can be opened and a VM created. Otherwise `why` says why (for SKIP).
bool kvm_usable(std::string* why);

struct CommandResult {
  int exit_code = -1;   // the process's exit status; -1 if it was killed by a signal
  std::string out;      // stdout
  std::string err;      // stderr
};
// Runs the trapscope executable with `args` (no shell), waits at most `timeout_s` seconds
// (then kills it and reports exit_code -1).
CommandResult run_trapscope(const std::vector<std::string>& args, double timeout_s = 60);

std::string temp_path(const std::string& name);  // a fresh path under $TMPDIR
void write_file(const std::string& path, const std::vector<unsigned char>& bytes);
std::vector<unsigned char> read_file(const std::string& path);

}  // namespace trapscope::test

// Skips the current test when KVM is not usable, with the reason.
#define REQUIRE_KVM_OR_SKIP()                                           \
  do {                                                                  \
    std::string why_;                                                   \
    if (!trapscope::test::kvm_usable(&why_)) {                          \
      WARN("SKIPPED: KVM is not usable here: " << why_);                \
      return;                                                           \
    }                                                                   \
  } while (0)
