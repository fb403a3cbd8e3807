// snapshot_bench: snapshot save and restore time and file size for a 16 MiB and a 1 GiB guest
// (mostly zero pages: the teaching guest `hello` at its 5th VM exit), on the simulator and on KVM
// where usable; then live-migration downtime against the working-set size of the `dirty` guest
// (simulator → simulator over 127.0.0.1, the link modelled at --bandwidth MB/s). Beside them,
// the published figures it is read against: Firecracker's snapshot restore in single-digit
// milliseconds and QEMU's default 300 ms downtime limit (docs/references.md). Wall times on this
// host: read them as orders of magnitude and ratios, not as a property of the design.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <future>

#include "bench/command_line.hpp"
#include "guests/guest_catalog.hpp"
#include "snapshot/machine.hpp"
#include "snapshot/migration.hpp"
#include "vmm/doctor.hpp"

using namespace trapscope;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

std::unique_ptr<backend::Backend> machine(backend::Kind kind, const char* guest, uint64_t mem,
                                          bool load = true) {
  const auto g = guests::find(guest);
  backend::Config c;
  c.memory_bytes = mem;
  c.mode = *platform::parse_boot_mode(g->mode);
  auto m = backend::make_backend(kind, c);
  if (load) m->load(g->image);
  return m;
}

void save_restore(backend::Kind kind, uint64_t mem) {
  auto m = machine(kind, "hello", mem);
  m->run({10.0, 5, 0}, nullptr);
  auto t = Clock::now();
  const std::vector<uint8_t> bytes = snapshot::encode(snapshot::capture(*m, {}));
  const double save_ms = ms_since(t);
  auto fresh = machine(kind, "hello", mem, false);
  t = Clock::now();
  snapshot::apply(snapshot::decode(bytes), *fresh);
  const double restore_ms = ms_since(t);
  std::printf("  %-4s %6llu MiB   save %9.2f ms   restore %9.2f ms   file %9zu bytes\n",
              std::string(backend::to_string(kind)).c_str(),
              static_cast<unsigned long long>(mem >> 20), save_ms, restore_ms, bytes.size());
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

void migrate(uint64_t pages, double bandwidth) {
  const std::string address = "127.0.0.1:" + std::to_string(free_port());
  auto dest = machine(backend::Kind::kSim, "dirty", 16ull << 20, false);
  auto received = std::async(std::launch::async, [&] {
    try {
      snapshot::receive_migration(*dest, address, 30);
      return dest->run({120.0, 0, 0}, nullptr).exit_code == 0 &&
             dest->devices().console.text().find("dirty: ok") != std::string::npos;
    } catch (const std::exception&) {
      return false;
    }
  });
  auto src = machine(backend::Kind::kSim, "dirty", 16ull << 20);
  x86::CpuState s = src->registers();
  s.gpr[x86::kRdi] = pages;
  s.gpr[x86::kRsi] = std::max<uint64_t>(400, 16'000'000 / pages);  // about 16M writes in all
  src->set_registers(s);
  src->run({60.0, 2, 0}, nullptr);  // 200 passes: the working set is written
  snapshot::MigrationOptions o;
  o.bandwidth_mb_s = bandwidth;
  o.max_rounds = 10;
  snapshot::MigrationResult res;
  snapshot::run_migrating(*src, {120.0, 0, 0}, nullptr, address, o, {}, &res);
  const bool ok = received.get();
  uint64_t sent = res.stop_copy_pages;
  for (const auto& r : res.rounds) sent += r.pages_sent;
  std::printf("  %6llu pages  %2zu rounds  %-9s  pages sent %7llu  stop-and-copy %5llu pages  "
              "downtime %8.2f ms  total %8.2f ms  %s\n",
              static_cast<unsigned long long>(pages), res.rounds.size(),
              res.converged ? "converged" : "max-rounds", static_cast<unsigned long long>(sent),
              static_cast<unsigned long long>(res.stop_copy_pages), res.downtime_ms, res.total_ms,
              !res.migrated ? ("NOT MIGRATED: " + res.why_not).c_str()
                            : ok ? "destination ok" : "DESTINATION FAILED");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"snapshot save/restore time and size; live-migration downtime vs working set"};
  double bandwidth = 25;
  bool no_big = false;
  app.add_option("--bandwidth", bandwidth, "modelled link for the migrations, MB/s")
      ->capture_default_str();
  app.add_flag("--no-1g", no_big, "leave out the 1 GiB guest");
  if (auto rc = bench::parse_command_line(app, argc, argv)) return *rc;

  std::string why;
  const bool kvm = backend::kvm_usable(&why);
  std::printf("snapshot save/restore (hello at its 5th VM exit; KVM: %s)\n",
              kvm ? vmm::host_kvm_module().c_str() : ("not usable: " + why).c_str());
  for (const uint64_t mem : {16ull << 20, 1ull << 30}) {
    if (mem > (16ull << 20) && no_big) continue;
    save_restore(backend::Kind::kSim, mem);
    if (kvm) save_restore(backend::Kind::kKvm, mem);
  }
  std::printf("  published: Firecracker restores a snapshot in single-digit ms (guest memory "
              "mapped MAP_PRIVATE, faulted in on demand; trapscope reads and writes it whole)\n");
  std::printf("live migration of dirty, simulator -> simulator on 127.0.0.1, link %.0f MB/s, "
              "--max-downtime 300 ms (QEMU's default), --max-rounds 10\n", bandwidth);
  for (const uint64_t pages : {16, 256, 1024, 3072}) migrate(pages, bandwidth);
  return 0;
}
