// cli/gdb_run.hpp — `trapscope run GUEST --gdb HOST:PORT`: the guest waits, stopped before its
// first instruction, for gdb to connect to the stub (gdbstub/, docs/gdb.md).
#pragma once

#include <atomic>
#include <cstdio>
#include <string>

#include "backend/backend.hpp"

namespace trapscope::cli {

// CLI11 check of --gdb's value: "" if it is HOST:PORT, else why not.
std::string check_gdb_address(const std::string& text);

struct GdbRun {
  bool detached = false;       // gdb detached: the caller runs the guest on
  backend::RunOutcome outcome;  // how the run ended under gdb (killed or `quit`: kStopped), or
                                // the exits and instructions so far (detached)
};

// Listens on `address` (prints "gdb: listening on HOST:PORT" to `log`), serves gdb connections
// one after another until gdb detaches, kills the guest or the guest's run ends. Throws
// gdbstub::ServerError when it cannot listen.
GdbRun run_under_gdb(backend::Backend& machine,
                                                 const std::string& address,
                                                 trace::EventSink* sink,
                                                 const std::atomic<bool>& quit, std::FILE* log);

}  // namespace trapscope::cli
