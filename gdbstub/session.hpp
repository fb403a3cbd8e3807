// gdbstub/session.hpp — the command layer of the gdb stub: gdb's packets applied to a stopped
// backend::Backend (either engine), and the stop replies that say why it stopped.
//
// Sources: the GDB manual, Appendix E "Remote Protocol": E.2 Standard Replies (empty = not
// supported, `E NN`, `OK`), E.3 Packets (`?`, `c`, `s`, `D`, `g`, `G`, `k`, `m`, `M`, `p`, `P`,
// `vCont`, `z`/`Z`, `bc`, `bs`), E.4 Stop Reply Packets (`T05swbreak:;`, `hwbreak:;`,
// `watch:ADDR;`, `replaylog:begin;`, `W`, `X`, `O`), E.5 General Query Packets (qSupported,
// qXfer:features:read, qAttached, qC, qfThreadInfo, qRcmd, QStartNoAckMode).
//
// [SECTION] What each engine does
//   Simulator: breakpoints (any number, Z0 or Z1) are RIP checks before each instruction;
//   single-step is Backend::step; watchpoints (Z2 write, Z3 read, Z4 access) are checked after
//   each instruction: a write watchpoint fires when the watched bytes change (any instruction,
//   explicit operand or not), a read or access watchpoint also when the instruction's explicit
//   memory operand overlaps them (implicit reads — the stack, string sources — are not seen).
//   Reverse execution (`bs`, `bc`) restores the snapshot taken when the session began and runs
//   the deterministic simulator forward again to the instruction before (Backend::snapshot).
//   KVM: breakpoints (Z0 and Z1) and watchpoints (Z2 write, Z4 access; KVM cannot watch reads
//   only) share the four debug registers (KVM_SET_GUEST_DEBUG, USE_HW_BP); a fifth is refused
//   with an error reply. Z0 is served by a debug register as well: KVM's own software
//   breakpoints are not reported to user space for natively run code (docs/gdb.md). Single-step
//   is KVM_GUESTDBG_SINGLESTEP. Whether KVM reports them depends on the host
//   (`trapscope doctor`: on kvm_pvm only for emulated code, CPL 0 and real mode). No reverse
//   execution.
//
// [SECTION] Ends of a session
//   `D` (detach): the guest runs on without gdb (serve returns kDetached); `k`/`vKill`: the run
//   ends (kKilled); the guest's run ending while gdb waits: `W`/`X` is sent (kRunEnded); the
//   connection closing without either: the guest stays stopped (kDisconnected), so that gdb can
//   connect again — which is how gdb re-reads the target description after a mode switch.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.hpp"
#include "gdbstub/packet.hpp"
#include "gdbstub/register_layout.hpp"

namespace trapscope::gdbstub {

// A byte stream to gdb (a TCP connection: gdbstub/server.hpp; a string in tests).
class Channel {
 public:
  virtual ~Channel() = default;
  enum class Read : uint8_t { kData, kTimeout, kClosed };
  // Appends what arrives to *out, waiting at most timeout_ms (-1: until something arrives).
  virtual Read read(std::string* out, int timeout_ms) = 0;
  virtual bool write(std::string_view bytes) = 0;  // false: the peer is gone
};

enum class SessionEnd : uint8_t { kDetached, kKilled, kDisconnected, kRunEnded };

struct Watch {
  uint64_t addr = 0;
  uint64_t len = 1;
  char kind = '2';  // the Z type: '2' write, '3' read, '4' access
};

class Session {
 public:
  // `sink` (may be null) gets the run's events as without gdb, except the ends of the short runs
  // the stub makes (a step, a chunk of a continue): one RunEndEvent at the end of the guest's run.
  // `quit` (may be null; set from a signal handler): ends a wait or a continue, and the session
  // (kKilled), e.g. on Ctrl-C in the terminal that runs the stub.
  Session(backend::Backend& machine, trace::EventSink* sink,
          const std::atomic<bool>* quit = nullptr);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Serves one connection until it ends (see [SECTION] Ends of a session).
  SessionEnd serve(Channel& channel);
  // After kRunEnded: how the guest's run ended; after kKilled: reason kStopped. Exits and
  // instructions count the whole session (all its runs, forward), not only the last run.
  backend::RunOutcome outcome() const;
  // Instructions retired under the session (simulator).
  uint64_t instructions() const { return icount_; }

  // One packet's reply (no framing); `*end` is set when the packet ends the session. Public for
  // tests; serve() is this plus framing, acks and running.
  std::string handle(std::string_view packet, Channel& channel, std::optional<SessionEnd>* end);

 private:
  class Sink;
  struct Stop {
    enum Kind : uint8_t { kSignal, kSwBreak, kHwBreak, kWatch, kReplayBegin, kEnded } kind = kSignal;
    int signal = 5;  // SIGTRAP
    uint64_t addr = 0;
    char watch = '2';
  };
  std::string stop_reply(const Stop& s) const;
  Stop resume(bool step, Channel& channel);
  Stop resume_sim(bool step, Channel& channel);
  Stop resume_kvm(bool step, Channel& channel);
  Stop reverse(bool step);
  // Ends the run bookkeeping for an outcome that ended the guest's run.
  Stop ended(const backend::RunOutcome& r);
  bool interrupted(Channel& channel);  // a 0x03 arrived while running
  std::optional<Stop> check_watches(const std::vector<std::vector<uint8_t>>& before,
                                    const x86::CpuState& regs_before);
  std::vector<std::vector<uint8_t>> watched_bytes();
  std::string read_memory(uint64_t addr, uint64_t len);
  bool write_memory(uint64_t addr, std::span<const uint8_t> bytes);
  std::optional<uint64_t> physical(uint64_t linear);
  std::string monitor(std::string_view command);
  std::string insert(std::string_view args, bool remove);
  void send(Channel& channel, std::string_view data);
  // After a stop in another mode than the last: tells the user on gdb's console (an `O` packet)
  // which gdb commands keep the view sane (docs/gdb.md, Mode switches).
  void announce_mode(Channel& channel);

  bool quitting() const { return quit_ && quit_->load(); }

  backend::Backend& machine_;
  const std::atomic<bool>* quit_;
  std::unique_ptr<Sink> sink_;
  PacketParser parser_;
  std::vector<Input> inputs_;
  bool no_ack_ = false;
  std::string last_reply_;
  Layout layout_ = Layout::kI8086;  // what gdb was told (the target description it read)
  Layout shown_ = Layout::kI8086;   // the mode of the last stop (announce_mode)
  std::vector<uint64_t> breakpoints_;   // Z0 and Z1 addresses
  std::vector<uint64_t> sw_breakpoints_;  // the Z0 ones (stop reason swbreak)
  std::vector<Watch> watches_;
  Stop last_stop_;
  backend::RunOutcome outcome_;
  bool run_ended_ = false;
  uint64_t icount_ = 0;
  std::optional<backend::Snapshot> start_;  // simulator: the session's first state (reverse)
  bool enter_no_ack_ = false;  // QStartNoAckMode answered: no acks after this reply
  bool no_reply_ = false;      // `k`: nothing is sent back
};

}  // namespace trapscope::gdbstub
