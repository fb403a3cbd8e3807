// tests/support.hpp — helpers shared by the tests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend/backend.hpp"

namespace trapscope::test {

// True when /dev/kvm can be opened and a VM created. Otherwise `why` says why (for SKIP).
using backend::kvm_usable;

struct CommandResult {
  int exit_code = -1;   // the process's exit status; -1 if it was killed by a signal
  std::string out;      // stdout
  std::string err;      // stderr
  long max_rss_kib = 0; // the child's peak resident set (wait4's ru_maxrss), KiB
};
// Runs argv[0] (searched in PATH; no shell) with stdin from /dev/null, collecting stdout and
// stderr, and waits at most `timeout_s` seconds (then kills it and reports exit_code -1).
// `env_changes` are added to this process's environment ("NAME=VALUE" replaces NAME, "NAME="
// removes it). With `own_process_group` the child leads a new process group and a timeout
// kills the whole group (for xvfb-run, whose X server and trapscope are its children).
CommandResult run_command(const std::vector<std::string>& argv,
                          const std::vector<std::string>& env_changes = {}, double timeout_s = 60,
                          bool own_process_group = false);
// run_command on the trapscope executable with `args`.
CommandResult run_trapscope(const std::vector<std::string>& args, double timeout_s = 60);

std::string temp_path(const std::string& name);  // a fresh path under $TMPDIR
void write_file(const std::string& path, const std::vector<unsigned char>& bytes);
std::string write_temp(const std::string& name, const std::string& text);  // at temp_path(name)
std::vector<unsigned char> read_file(const std::string& path);

// A simulator backend with `guest` (guests/guest_catalog.hpp) loaded in the guest's boot mode, as the
// GUI's live source builds it: the reference the GUI tests compare what the GUI shows with.
// `kind` kKvm gives the same guest on KVM (record_instructions is then ignored).
std::unique_ptr<backend::Backend> guest_backend(const std::string& guest,
                                                bool record_instructions = true,
                                                backend::Kind kind = backend::Kind::kSim);
// Runs `b` to its end, writing every event to a trace file at `path` (metadata: backend "sim",
// guest `guest`).
void write_sim_trace(backend::Backend& b, const std::string& path, const std::string& guest);

}  // namespace trapscope::test

// Ends the current test as skipped, with the reason (a missing device or program, a host
// limitation found by a probe). ctest counts a test whose output has "SKIPPED: " as skipped, not
// passed (SKIP_REGULAR_EXPRESSION, tests/CMakeLists.txt): skip before any check fails.
#define SKIP_TEST(reason)          \
  do {                             \
    WARN("SKIPPED: " << reason);   \
    return;                        \
  } while (0)

// Skips the current test when KVM is not usable, with the reason.
#define REQUIRE_KVM_OR_SKIP()                                           \
  do {                                                                  \
    std::string why_;                                                   \
    if (!trapscope::test::kvm_usable(&why_)) {                          \
      SKIP_TEST("KVM is not usable here: " << why_);                    \
    }                                                                   \
  } while (0)
