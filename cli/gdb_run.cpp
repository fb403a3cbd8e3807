#include "cli/gdb_run.hpp"

#include "gdbstub/server.hpp"
#include "gdbstub/session.hpp"

namespace trapscope::cli {

std::string check_gdb_address(const std::string& text) {
  uint32_t host = 0;
  uint16_t port = 0;
  std::string why;
  return gdbstub::parse_address(text, &host, &port, &why) ? std::string() : why;
}

GdbRun run_under_gdb(backend::Backend& machine,
                                                 const std::string& address,
                                                 trace::EventSink* sink,
                                                 const std::atomic<bool>& quit, std::FILE* log) {
  gdbstub::Listener listener(address);
  std::fprintf(log, "gdb: listening on %s:%u (in gdb: target remote %s:%u)\n",
               listener.host().c_str(), listener.port(), listener.host().c_str(),
               listener.port());
  std::fflush(log);
  gdbstub::Session session(machine, sink, &quit);
  for (;;) {
    const int fd = listener.accept();
    if (fd < 0) {  // a signal
      if (quit.load()) {
        GdbRun r{false, session.outcome()};
        r.outcome.reason = trace::RunEndReason::kStopped;
        return r;
      }
      continue;
    }
    gdbstub::SocketChannel channel(fd);
    std::fprintf(log, "gdb: connected\n");
    std::fflush(log);
    switch (session.serve(channel)) {
      case gdbstub::SessionEnd::kDetached:
        std::fprintf(log, "gdb: detached; the guest runs on\n");
        return {true, session.outcome()};
      case gdbstub::SessionEnd::kKilled:
        std::fprintf(log, "gdb: killed the guest\n");
        return {false, session.outcome()};
      case gdbstub::SessionEnd::kRunEnded:
        return {false, session.outcome()};
      case gdbstub::SessionEnd::kDisconnected:
        std::fprintf(log, "gdb: connection closed; the guest stays stopped, waiting for gdb on "
                          "%s:%u\n", listener.host().c_str(), listener.port());
        std::fflush(log);
        break;
    }
  }
}

}  // namespace trapscope::cli
