#include "snapshot/migration.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <system_error>
#include <thread>

#include "snapshot/bytes.hpp"
#include "snapshot/machine.hpp"
#include "vmm/dirty_log.hpp"

namespace trapscope::snapshot {
namespace {

using Clock = std::chrono::steady_clock;
constexpr char kHello[8] = {'T', 'R', 'A', 'P', 'M', 'I', 'G', '1'};
constexpr uint32_t kMsgPages = 1, kMsgState = 2, kMsgAbort = 3;
constexpr uint64_t kBatchPages = 256;
constexpr double kIoTimeoutS = 30;  // a peer silent this long is gone

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// A link failure: the connection dropped, timed out or was refused.
struct LinkError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Socket {
 public:
  explicit Socket(int fd = -1) : fd_(fd) {}
  Socket(Socket&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Socket& operator=(Socket&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const { return fd_; }

  void send_all(const std::vector<uint8_t>& b) const {
    size_t done = 0;
    while (done < b.size()) {
      wait(POLLOUT);
      const ssize_t n = ::send(fd_, b.data() + done, b.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw LinkError(std::string("connection lost: ") + std::strerror(errno));
      done += static_cast<size_t>(n);
    }
  }
  std::vector<uint8_t> recv_exact(uint64_t n) const {
    std::vector<uint8_t> b(n);
    size_t done = 0;
    while (done < n) {
      wait(POLLIN);
      const ssize_t r = ::recv(fd_, b.data() + done, n - done, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r == 0) throw LinkError("connection closed by the peer");
      if (r < 0) throw LinkError(std::string("connection lost: ") + std::strerror(errno));
      done += static_cast<size_t>(r);
    }
    return b;
  }
  uint64_t recv_u(int bytes) const {
    const auto b = recv_exact(bytes);
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t{b[i]} << (8 * i);
    return v;
  }

 private:
  void wait(short events) const {
    pollfd p{fd_, events, 0};
    for (;;) {
      const int r = ::poll(&p, 1, static_cast<int>(kIoTimeoutS * 1000));
      if (r < 0 && errno == EINTR) continue;
      if (r == 0) throw LinkError("the peer was silent for 30 s");
      if (r < 0) throw LinkError(std::string("poll: ") + std::strerror(errno));
      return;
    }
  }
  int fd_;
};

sockaddr_in parse_address(const std::string& address) {
  const auto colon = address.rfind(':');
  sockaddr_in a{};
  a.sin_family = AF_INET;
  unsigned long port = 0;
  char* end = nullptr;
  if (colon != std::string::npos) port = std::strtoul(address.c_str() + colon + 1, &end, 10);
  if (colon == std::string::npos || end == nullptr || *end != '\0' || port == 0 || port > 65535 ||
      ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &a.sin_addr) != 1) {
    throw RestoreError("'" + address + "' is not an IPv4 address and port (e.g. 127.0.0.1:7000)");
  }
  a.sin_port = htons(static_cast<uint16_t>(port));
  return a;
}

Socket connect_to(const std::string& address, double timeout_s) {
  const sockaddr_in a = parse_address(address);
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  for (;;) {
    Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (s.fd() < 0) throw LinkError(std::string("socket: ") + std::strerror(errno));
    if (::connect(s.fd(), reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0) {
      const int one = 1;
      ::setsockopt(s.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return s;
    }
    const int err = errno;
    if (Clock::now() >= deadline || (err != ECONNREFUSED && err != EINTR)) {
      throw LinkError("cannot connect to " + address + ": " + std::strerror(err));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the destination starts
  }
}

void put_text(Writer& w, const std::string& s) { w.text(s); }

std::vector<uint8_t> status_message(bool ok, const std::string& reason) {
  std::vector<uint8_t> b;
  Writer w(b);
  w.u8(ok ? 0 : 1);
  put_text(w, reason);
  return b;
}

// status u8 + reason; throws LinkError with the reason when refused.
void expect_accepted(const Socket& s, const char* what) {
  const uint64_t status = s.recv_u(1);
  const uint64_t len = s.recv_u(8);
  if (len > 4096) throw LinkError("a malformed answer from the destination");
  const auto reason = s.recv_exact(len);
  if (status != 0) {
    throw LinkError(std::string("the destination refused the ") + what + ": " +
                    std::string(reason.begin(), reason.end()));
  }
}

bool page_equal(const uint8_t* a, const uint8_t* b) { return std::memcmp(a, b, kPageBytes) == 0; }

}  // namespace

std::string MigrationResult::text() const {
  std::string t = "live migration (pre-copy; dirty pages: " + tracking + ")\n";
  char buf[200];
  std::snprintf(buf, sizeof buf, "  %5s %12s %14s %14s %12s\n", "round", "pages sent",
                "dirtied during", "bytes", "ms");
  t += buf;
  for (const RoundReport& r : rounds) {
    std::snprintf(buf, sizeof buf, "  %5u %12llu %14llu %14llu %12.3f\n", r.round,
                  static_cast<unsigned long long>(r.pages_sent),
                  static_cast<unsigned long long>(r.pages_dirtied),
                  static_cast<unsigned long long>(r.bytes), r.duration_ms);
    t += buf;
  }
  if (!migrated) return t + "  not migrated: " + why_not + "; the guest ran on here\n";
  std::snprintf(buf, sizeof buf,
                "  %s after %zu rounds; stop-and-copy of %llu pages; total %.3f ms, downtime "
                "%.3f ms\n",
                converged ? "converged" : "did not converge (--max-rounds): paused for the rest",
                rounds.size(), static_cast<unsigned long long>(stop_copy_pages), total_ms,
                downtime_ms);
  return t + buf;
}

backend::RunOutcome run_migrating(backend::Backend& m, const backend::StopCondition& stop,
                                  trace::EventSink* sink, const std::string& address,
                                  const MigrationOptions& o, Metadata meta,
                                  MigrationResult* result) {
  using R = trace::RunEndReason;
  MigrationResult& res = *result;
  res = {};
  const auto started = Clock::now();
  backend::RunOutcome total;  // of the local run so far
  const auto left_s = [&] {
    return stop.timeout_s - std::chrono::duration<double>(Clock::now() - started).count();
  };
  // The run goes on in parts (between batches of pages); their run ends are held back but for
  // the last one, so that the events read as one run.
  HoldRunEnd hold(sink);
  uint64_t hold_exits = 0, hold_ns = 0;
  // Runs the guest for at most `seconds` within the user's limits.
  const auto run_part = [&](double seconds) {
    backend::StopCondition s = stop;
    s.timeout_s = std::max(0.0005, std::min(seconds, left_s()));
    if (stop.max_exits) s.max_exits = stop.max_exits - total.exits;
    if (stop.max_instructions) s.max_instructions = stop.max_instructions - total.instructions;
    const backend::RunOutcome r = m.run(s, sink ? &hold : nullptr);
    hold_exits = r.exits;  // of the part whose run end is held
    hold_ns = r.duration_ns;
    total.exits += r.exits;
    total.instructions += r.instructions;
    total.duration_ns += r.duration_ns;
    total.reason = r.reason;
    total.exit_code = r.exit_code;
    total.detail = r.detail;
  };
  // True when the guest's run has ended (not just this part of it).
  const auto ended = [&] { return total.reason != R::kTimeLimit || left_s() <= 0; };
  const auto run_for = [&](double seconds) {
    run_part(seconds);
    return ended();
  };
  // The run goes on here to its end (the migration failed or was refused).
  const auto run_here = [&](const std::string& why) {
    res.migrated = false;
    res.why_not = why;
    if (!ended()) run_part(left_s());
    if (sink) hold.release(total.exits - hold_exits, total.duration_ns - hold_ns);
    return total;
  };
  total.reason = R::kTimeLimit;

  if (const auto why = m.devices().snapshot_blocker()) return run_here(*why);
  Socket s;
  try {
    s = connect_to(address, o.connect_timeout_s);
    std::vector<uint8_t> hello(kHello, kHello + sizeof kHello);
    Writer w(hello);
    w.u16(kMigrationVersionMajor);
    w.u16(kMigrationVersionMinor);
    w.u64(m.memory().size());
    put_text(w, nlohmann::json{{"guest", meta.guest}, {"engine", backend::to_string(m.kind())}}
                    .dump());
    s.send_all(hello);
    expect_accepted(s, "connection");
  } catch (const std::exception& e) {
    return run_here(e.what());
  }

  // Dirty-page tracking.
  const bool use_log = m.kind() == backend::Kind::kKvm && vmm::host_dirty_log().works &&
                       m.set_dirty_logging(true);
  res.tracking = use_log ? "KVM dirty log (KVM_GET_DIRTY_LOG)"
                 : m.kind() == backend::Kind::kKvm
                     ? "page comparison (this host's KVM dirty log does not work: " +
                           vmm::host_dirty_log().detail + ")"
                     : "page comparison with the copy sent (simulator)";
  const uint64_t pages = m.memory().size() / kPageBytes;
  std::vector<uint8_t> sent(m.memory().size(), 0);  // what the destination holds
  double link_ms = 0;  // time spent sending (the measured rate when no bandwidth is given)
  uint64_t link_bytes = 0;

  // The pages that differ from what the destination holds (`candidates`: a dirty log, or all).
  const auto dirty_pages = [&](const std::vector<uint64_t>* log) {
    std::vector<uint64_t> out;
    const auto mem = m.memory();
    for (uint64_t p = 0; p < pages; ++p) {
      if (log && !((*log)[p / 64] >> (p % 64) & 1)) continue;
      if (!page_equal(mem.data() + p * kPageBytes, sent.data() + p * kPageBytes)) out.push_back(p);
    }
    return out;
  };
  // Sends `list` in batches; `live`: the guest runs between batches. True when the guest's run
  // ended meanwhile.
  const auto send_pages = [&](unsigned round, const std::vector<uint64_t>& list, bool live,
                              RoundReport* rep) {
    for (size_t i = 0; i < list.size(); i += kBatchPages) {
      const size_t n = std::min<size_t>(kBatchPages, list.size() - i);
      std::vector<uint8_t> msg;
      Writer w(msg);
      w.u32(kMsgPages);
      w.u32(round);
      w.u64(n);
      const auto mem = m.memory();
      for (size_t k = 0; k < n; ++k) {
        const uint64_t p = list[i + k];
        const uint8_t* src = mem.data() + p * kPageBytes;
        std::memcpy(sent.data() + p * kPageBytes, src, kPageBytes);
        static const uint8_t kZero[kPageBytes] = {};
        const bool zero = page_equal(src, kZero);
        w.u64(p);
        w.u8(zero ? 0 : 1);
        if (!zero) w.bytes({src, kPageBytes});
      }
      const auto t = Clock::now();
      s.send_all(msg);
      link_ms += ms_since(t);
      link_bytes += msg.size();
      rep->pages_sent += n;
      rep->bytes += msg.size();
      if (!live) continue;
      const double on_link_s = o.bandwidth_mb_s > 0 ? msg.size() / (o.bandwidth_mb_s * 1e6) : 0.002;
      if (run_for(on_link_s)) return true;
    }
    return false;
  };

  try {
    std::vector<uint64_t> list = dirty_pages(nullptr);  // round 0: every page not zero
    if (use_log) m.take_dirty_log();                     // the log starts now
    for (unsigned round = 0;; ++round) {
      RoundReport rep;
      rep.round = round;
      const auto t = Clock::now();
      if (send_pages(round, list, true, &rep)) {
        s.send_all({kMsgAbort, 0, 0, 0});
        rep.duration_ms = ms_since(t);
        res.rounds.push_back(rep);
        return run_here("the guest's run ended during round " + std::to_string(round) + " (" +
                        std::string(trace::to_string(total.reason)) + ")");
      }
      if (round == 0 && list.empty() && run_for(0.002)) {
        return run_here("the guest's run ended during round 0");
      }
      rep.duration_ms = ms_since(t);
      std::vector<uint64_t> log;
      if (use_log) log = m.take_dirty_log();
      list = dirty_pages(use_log ? &log : nullptr);
      rep.pages_dirtied = list.size();
      res.rounds.push_back(rep);
      // The rest's time on the link: at the given bandwidth, else at the rate measured so far.
      const double rate = o.bandwidth_mb_s > 0 ? o.bandwidth_mb_s * 1e3  // bytes per ms
                          : link_ms > 0        ? link_bytes / link_ms
                                               : 1e9;
      const double rest_ms = list.size() * (kPageBytes + 9) / rate;
      if (rest_ms <= o.max_downtime_ms) {
        res.converged = true;
        break;
      }
      if (round + 1 >= o.max_rounds) break;
    }
    // Stop-and-copy: the guest runs no more here.
    const auto paused = Clock::now();
    std::vector<uint64_t> log;
    if (use_log) log = m.take_dirty_log();
    // The last round's dirty pages (not sent yet) and those dirtied since (the log was read
    // and cleared when the last round ended, so both are needed).
    std::vector<uint64_t> more = dirty_pages(use_log ? &log : nullptr);
    more.insert(more.end(), list.begin(), list.end());
    std::sort(more.begin(), more.end());
    more.erase(std::unique(more.begin(), more.end()), more.end());
    list = std::move(more);
    RoundReport last;
    send_pages(static_cast<unsigned>(res.rounds.size()), list, false, &last);
    res.stop_copy_pages = list.size();
    meta.point = "migration";
    meta.exits = total.exits;
    meta.instructions = total.instructions;
    const File f = capture(m, meta, /*with_memory=*/false);
    const std::vector<uint8_t> state = encode(f);
    std::vector<uint8_t> msg;
    Writer w(msg);
    w.u32(kMsgState);
    w.u64(state.size());
    w.bytes(state);
    s.send_all(msg);
    expect_accepted(s, "state");
    res.downtime_ms = ms_since(paused);
    res.total_ms = ms_since(started);
    res.migrated = true;
    if (use_log) m.set_dirty_logging(false);
    total.reason = R::kStopped;
    total.detail = "migrated to " + address + "\n";
    if (sink) hold.release(total.exits - hold_exits, total.duration_ns - hold_ns);
    return total;
  } catch (const LinkError& e) {
    if (use_log) m.set_dirty_logging(false);
    return run_here(e.what());
  }
}

Metadata receive_migration(backend::Backend& m, const std::string& address, double timeout_s) {
  const sockaddr_in a = parse_address(address);
  Socket listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (listener.fd() < 0) throw std::system_error(errno, std::generic_category(), "socket");
  const int one = 1;
  ::setsockopt(listener.fd(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listener.fd(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listener.fd(), 1) != 0) {
    throw std::system_error(errno, std::generic_category(), "listen on " + address);
  }
  pollfd p{listener.fd(), POLLIN, 0};
  int ready;
  do {
    ready = ::poll(&p, 1, static_cast<int>(timeout_s * 1000));
  } while (ready < 0 && errno == EINTR);
  if (ready <= 0) throw RestoreError("no source connected to " + address + " within --timeout");
  Socket s(::accept4(listener.fd(), nullptr, nullptr, SOCK_CLOEXEC));
  if (s.fd() < 0) throw std::system_error(errno, std::generic_category(), "accept");

  Metadata meta;
  try {
    const auto hello = s.recv_exact(sizeof kHello + 12);
    Reader r(hello, 0, "hello.");
    const bool magic = std::memcmp(hello.data(), kHello, sizeof kHello) == 0;
    r.bytes("magic", sizeof kHello);
    const uint16_t major = r.u16("version_major");
    const uint16_t minor = r.u16("version_minor");
    const uint64_t mem = r.u64("memory_bytes");
    std::string refuse;
    if (!magic) {
      refuse = "not a trapscope migration stream";
    } else if (major != kMigrationVersionMajor) {
      refuse = "stream version " + std::to_string(major) + "." + std::to_string(minor) +
               ", this build takes " + std::to_string(kMigrationVersionMajor) + ".x";
    } else if (mem != m.memory().size()) {
      refuse = "the source has " + std::to_string(mem >> 20) + " MiB of guest memory, this " +
               "machine " + std::to_string(m.memory().size() >> 20) + " MiB (--mem)";
    }
    if (!refuse.empty()) {
      s.send_all(status_message(false, refuse));
      throw RestoreError("refused the incoming machine: " + refuse);
    }
    const uint64_t meta_len = s.recv_u(8);
    if (meta_len > 65536) throw RestoreError("refused: metadata of " + std::to_string(meta_len) + " bytes");
    const auto mj = s.recv_exact(meta_len);
    const auto j = nlohmann::json::parse(mj.begin(), mj.end(), nullptr, false);
    if (j.is_object()) {
      meta.guest = j.value("guest", "");
      meta.engine = j.value("engine", "");
    }
    s.send_all(status_message(true, ""));

    // Start from zeros: round 0 sends only the pages that are not.
    static const uint8_t kZero[kPageBytes] = {};
    const auto zero_all = [&] {
      const auto cur = m.memory();
      for (uint64_t off = 0; off < cur.size(); off += kPageBytes) {
        if (!page_equal(cur.data() + off, kZero)) m.write_memory(off, {kZero, kPageBytes});
      }
    };
    zero_all();
    const uint64_t pages = m.memory().size() / kPageBytes;
    for (;;) {
      const uint64_t type = s.recv_u(4);
      if (type == kMsgPages) {
        s.recv_u(4);  // round
        const uint64_t n = s.recv_u(8);
        if (n > pages) throw RestoreError("a malformed stream: " + std::to_string(n) + " pages");
        for (uint64_t i = 0; i < n; ++i) {
          const uint64_t index = s.recv_u(8);
          const uint64_t kind = s.recv_u(1);
          if (index >= pages || kind > 1) {
            throw RestoreError("a malformed stream: page " + std::to_string(index));
          }
          if (kind == 0) {
            m.write_memory(index * kPageBytes, {kZero, kPageBytes});
          } else {
            const auto b = s.recv_exact(kPageBytes);
            m.write_memory(index * kPageBytes, b);
          }
        }
      } else if (type == kMsgState) {
        const uint64_t len = s.recv_u(8);
        if (len > (64ull << 20) + (1ull << 20) + m.memory().size() / 8) {
          throw RestoreError("a malformed stream: state of " + std::to_string(len) + " bytes");
        }
        const auto bytes = s.recv_exact(len);
        try {
          File f = decode(bytes);
          if (f.memory.bytes != m.memory().size()) throw RestoreError("state of another memory size");
          apply(f, m, /*with_memory=*/false);
          meta = f.meta;
        } catch (const std::exception& e) {
          s.send_all(status_message(false, e.what()));
          throw RestoreError(std::string("the received state was refused: ") + e.what());
        }
        s.send_all(status_message(true, ""));
        return meta;
      } else if (type == kMsgAbort) {
        throw RestoreError("the source aborted the migration (its guest's run ended)");
      } else {
        throw RestoreError("a malformed stream: message type " + std::to_string(type));
      }
    }
  } catch (const LinkError& e) {
    throw RestoreError(std::string("the migration did not complete: ") + e.what());
  } catch (const FormatError& e) {
    throw RestoreError(std::string("a malformed stream: ") + e.what());
  }
}

}  // namespace trapscope::snapshot
