// Live migration (snapshot/migration.hpp) over TCP on 127.0.0.1: the `dirty` guest moved
// between machines (simulator, KVM, both directions) by pre-copy, a migration that does not
// converge, a refused stream (another memory size, another version), a connection that drops
// mid-migration (the source runs on), and the two-process path through `trapscope run`.
// The link's rate is modelled (--bandwidth) so that what converges does not depend on the host.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <thread>

#include "guests/guest_catalog.hpp"
#include "snapshot/machine.hpp"
#include "snapshot/migration.hpp"
#include "support.hpp"
#include "vmm/dirty_log.hpp"

using namespace trapscope;

namespace {

using backend::Kind;

// A free TCP port on 127.0.0.1 (bound, read, closed: the destination binds it next).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::unique_ptr<backend::Backend> dirty_machine(Kind kind, uint64_t pages, uint64_t passes,
                                                uint64_t mem_mib = 16) {
  const auto g = guests::find("dirty");
  REQUIRE(g);
  backend::Config c;
  c.memory_bytes = mem_mib << 20;
  c.mode = platform::BootMode::kProtected;
  auto m = backend::make_backend(kind, c);
  m->load(g->image);
  x86::CpuState s = m->registers();
  s.gpr[x86::kRdi] = pages;
  s.gpr[x86::kRsi] = passes;
  m->set_registers(s);
  return m;
}

struct Ended {
  bool received = false;
  std::string error;
  backend::RunOutcome run;
  std::string console;
};

// The destination: receives into a fresh machine and runs it to its end.
std::future<Ended> destination(Kind kind, const std::string& address, uint64_t mem_mib = 16) {
  auto m = std::make_shared<std::unique_ptr<backend::Backend>>(dirty_machine(kind, 0, 0, mem_mib));
  return std::async(std::launch::async, [m, address] {
    Ended e;
    try {
      snapshot::receive_migration(**m, address, 30);
      e.received = true;
      e.run = (*m)->run({120.0, 0, 0}, nullptr);
      e.console = (*m)->devices().console.text();
    } catch (const std::exception& x) {
      e.error = x.what();
    }
    return e;
  });
}

std::string expected_console(uint64_t passes) {
  return std::string(passes / 100, '.') + "\ndirty: ok\n";
}

void migrate(Kind from, Kind to, uint64_t pages, uint64_t passes) {
  const std::string address = "127.0.0.1:" + std::to_string(free_port());
  auto dest = destination(to, address);
  auto src = dirty_machine(from, pages, passes);
  // 500 passes first (a '.' each 100 passes is a VM exit): the working set is written when
  // round 0 starts.
  REQUIRE(src->run({60.0, 5, 0}, nullptr).reason == trace::RunEndReason::kExitLimit);
  snapshot::MigrationOptions o;
  o.bandwidth_mb_s = 100;
  snapshot::MigrationResult res;
  const auto r = snapshot::run_migrating(*src, {120.0, 0, 0}, nullptr, address, o, {}, &res);
  INFO(res.text());
  REQUIRE(res.migrated);
  CHECK(r.reason == trace::RunEndReason::kStopped);
  CHECK(res.converged);
  CHECK(res.rounds.size() >= 1);
  CHECK(res.rounds[0].pages_sent >= pages + 2);  // the working set, the code and the GDT
  const Ended e = dest.get();
  INFO(e.error);
  REQUIRE(e.received);
  CHECK(e.run.reason == trace::RunEndReason::kGuestExit);
  CHECK(e.run.exit_code == 0);
  CHECK(e.console == expected_console(passes));
}

}  // namespace

TEST_CASE("migration: dirty, simulator to simulator, converges", "[migration][sim]") {
  migrate(Kind::kSim, Kind::kSim, 64, 20000);
}

TEST_CASE("migration: a working set the link cannot keep up with stops at --max-rounds",
          "[migration][sim]") {
  const std::string address = "127.0.0.1:" + std::to_string(free_port());
  auto dest = destination(Kind::kSim, address);
  auto src = dirty_machine(Kind::kSim, 512, 20000);
  snapshot::MigrationOptions o;
  o.bandwidth_mb_s = 50;  // a 1 MiB batch takes 20 ms on the link: the guest dirties all 512 pages
  o.max_downtime_ms = 1;  // 512 pages take 42 ms at 50 MB/s: never within 1 ms
  o.max_rounds = 3;
  snapshot::MigrationResult res;
  snapshot::run_migrating(*src, {120.0, 0, 0}, nullptr, address, o, {}, &res);
  INFO(res.text());
  REQUIRE(res.migrated);
  CHECK_FALSE(res.converged);
  CHECK(res.rounds.size() == 3);
  CHECK(res.stop_copy_pages >= 512);
  CHECK(res.text().find("did not converge") != std::string::npos);
  const Ended e = dest.get();
  REQUIRE(e.received);
  CHECK(e.run.exit_code == 0);
  CHECK(e.console == expected_console(20000));
}

TEST_CASE("migration: a destination of another memory size refuses, the source runs on",
          "[migration][sim]") {
  const std::string address = "127.0.0.1:" + std::to_string(free_port());
  auto dest = destination(Kind::kSim, address, 32);
  auto src = dirty_machine(Kind::kSim, 16, 1000);
  snapshot::MigrationResult res;
  const auto r = snapshot::run_migrating(*src, {120.0, 0, 0}, nullptr, address, {}, {}, &res);
  CHECK_FALSE(res.migrated);
  CHECK(res.why_not.find("32 MiB") != std::string::npos);
  CHECK(r.reason == trace::RunEndReason::kGuestExit);
  CHECK(src->devices().console.text() == expected_console(1000));
  const Ended e = dest.get();
  CHECK_FALSE(e.received);
  CHECK(e.error.find("refused") != std::string::npos);
}

TEST_CASE("migration: a stream of another version is refused", "[migration]") {
  const int port = free_port();
  auto dest = destination(Kind::kSim, "127.0.0.1:" + std::to_string(port));
  int fd = -1;
  for (int i = 0; i < 100; ++i) {  // until the destination listens
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) break;
    ::close(fd);
    fd = -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(fd >= 0);
  uint8_t hello[20] = {'T', 'R', 'A', 'P', 'M', 'I', 'G', '1', 2, 0, 0, 0};
  const uint64_t mem = 16ull << 20;
  std::memcpy(hello + 12, &mem, 8);
  REQUIRE(::send(fd, hello, sizeof hello, MSG_NOSIGNAL) == sizeof hello);
  uint8_t status = 0xFF;
  CHECK(::recv(fd, &status, 1, MSG_WAITALL) == 1);
  CHECK(status == 1);
  ::close(fd);
  const Ended e = dest.get();
  CHECK_FALSE(e.received);
  CHECK(e.error.find("stream version 2.0") != std::string::npos);
}

TEST_CASE("migration: the connection drops mid-migration, the source runs on as before",
          "[migration][sim]") {
  // A destination that accepts the hello, reads 100 KiB of pages and hangs up.
  const int port = free_port();
  std::thread fake([port] {
    const int l = ::socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    ::setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(l, 1);
    const int s = ::accept(l, nullptr, nullptr);
    std::vector<uint8_t> buf(100 << 10);
    ::recv(s, buf.data(), 20, MSG_WAITALL);   // hello without the metadata
    const uint8_t ok[9] = {0};                // accepted, empty reason
    ::send(s, ok, sizeof ok, MSG_NOSIGNAL);
    ::recv(s, buf.data(), buf.size(), MSG_WAITALL);
    ::close(s);
    ::close(l);
  });
  auto src = dirty_machine(Kind::kSim, 256, 4000);
  snapshot::MigrationOptions o;
  o.bandwidth_mb_s = 100;
  snapshot::MigrationResult res;
  const auto r = snapshot::run_migrating(*src, {120.0, 0, 0}, nullptr,
                                         "127.0.0.1:" + std::to_string(port), o, {}, &res);
  fake.join();
  INFO(res.text());
  CHECK_FALSE(res.migrated);
  CHECK(res.why_not.find("connection") != std::string::npos);
  // As if nothing had happened: the uninterrupted run's end and console.
  CHECK(r.reason == trace::RunEndReason::kGuestExit);
  CHECK(r.exit_code == 0);
  CHECK(src->devices().console.text() == expected_console(4000));
}

TEST_CASE("migration: KVM to the simulator, the simulator to KVM, KVM to KVM",
          "[migration][kvm][sim]") {
  REQUIRE_KVM_OR_SKIP();
  migrate(Kind::kKvm, Kind::kSim, 32, 3000);
  migrate(Kind::kSim, Kind::kKvm, 32, 3000);
  migrate(Kind::kKvm, Kind::kKvm, 32, 3000);
}

TEST_CASE("migration: the KVM dirty log reports written pages where the host has one",
          "[migration][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  const vmm::DirtyLogProbe& p = vmm::host_dirty_log();
  if (!p.works) SKIP_TEST("this host's KVM dirty log does not report emulated writes: " << p.detail);
  auto m = dirty_machine(Kind::kKvm, 8, 100);
  REQUIRE(m->set_dirty_logging(true));
  m->take_dirty_log();
  m->run({30.0, 0, 0}, nullptr);
  const auto log = m->take_dirty_log();
  for (uint64_t page = 0x100; page < 0x108; ++page) CHECK((log[page / 64] >> (page % 64) & 1));
}

TEST_CASE("migration: two trapscope processes on 127.0.0.1", "[migration][sim][cli]") {
  const std::string address = "127.0.0.1:" + std::to_string(free_port());
  auto dest = std::async(std::launch::async, [address] {
    return test::run_trapscope({"run", "dirty", "--backend", "sim", "-q", "--migrate-listen",
                                address, "--timeout", "60"});
  });
  const auto src = test::run_trapscope({"run", "dirty", "--backend", "sim", "-q", "--guest-arg",
                                        "64,20000", "--bandwidth", "100", "--migrate-to", address,
                                        "--timeout", "60"});
  const auto d = dest.get();
  INFO(src.out << src.err << d.out << d.err);
  CHECK(src.exit_code == 0);
  CHECK(src.out.find("downtime") != std::string::npos);
  CHECK(d.exit_code == 0);
  CHECK(d.out.find("dirty: ok") != std::string::npos);
}
