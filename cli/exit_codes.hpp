// cli/exit_codes.hpp — the exit status of every trapscope command (documented in docs/running.md).
#pragma once

#include "trace/event.hpp"

namespace trapscope::cli {

enum ExitCode : int {
  kOk = 0,            // guest halted or reported exit code 0; command succeeded
  kGuestFailed = 1,   // the guest reported a non-zero exit code on the control port
  kBadInput = 2,      // usage error, unreadable/empty/too large guest, malformed trace file
  kGuestFault = 3,    // triple fault, emulation failure, entry failure, unhandled exit
  kLimit = 4,         // a limit reached: time, exit count, console or recorded events
  kNoKvm = 5,         // KVM is missing or unusable (see `trapscope doctor`)
  kHostError = 6,     // the host failed: a trace write, out of memory, a KVM ioctl in a run
  kInterrupted = 130, // stopped by Ctrl-C (SIGINT), SIGTERM or SIGHUP
};

inline int exit_code_for(trace::RunEndReason reason, uint32_t guest_exit_code) {
  using R = trace::RunEndReason;
  switch (reason) {
    case R::kHalted: return kOk;
    case R::kGuestExit: return guest_exit_code == 0 ? kOk : kGuestFailed;
    case R::kTimeLimit:
    case R::kExitLimit:
    case R::kInstructionLimit:
    case R::kConsoleLimit:  // trace/limits.hpp
    case R::kEventLimit: return kLimit;
    case R::kStopped: return kInterrupted;
    case R::kBreakpoint:
    case R::kStep:
    case R::kEventMatched: return kOk;
    default: return kGuestFault;
  }
}

}  // namespace trapscope::cli
