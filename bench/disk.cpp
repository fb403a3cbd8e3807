// bench/disk.cpp — what a disk read costs in VM exits and wall time on KVM, per way of reaching
// the disk: the same 1 MiB (2048 sectors) read by each driver, measured in the same run.
//
//   ata     the emulated ATA PIO controller (platform/ata.hpp): READ SECTORS of 256 sectors, 8
//           times; per sector one Status poll (`in al, dx`) and one `rep insw` of 256 words —
//           at least two VM exits per sector, plus six register writes per command
//   (virtio-blk, the paravirtual device, is added as one more Driver in kDrivers: its guest and
//   what it needs of the image; the table and the ratio then follow)
//
// Each driver's guest runs R times (default 3) on a fresh machine with the image attached
// (--disk); the table shows VM exits, exits per sector, bytes per exit and the median wall time
// per run; with two drivers, the ratio of each to the first. Absolute times are facts about
// this host (kvm_pvm: about 10 µs per port-I/O exit, docs/kvm-hosts.md), not trapscope's.
//
// This is a program, not a test: it never fails on time. Exit status: 0 after a measurement,
// 1 for a usage error or a guest that did not read its megabyte, 2 if KVM is not usable.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "bench/command_line.hpp"
#include "vmm/doctor.hpp"

namespace {

using namespace trapscope;

constexpr uint64_t kSectors = 2048;  // 1 MiB

// The ATA reader, real mode at 0x8000: for LBA in 0, 256, …, 1792: Device 0xE0, Sector Count 0
// (= 256), LBA, READ SECTORS; per sector: poll Status until !BSY && DRQ (ERR → exit code 1),
// `rep insw` 256 words to 0x9000; then exit code 0. Assembled with nasm -f bin from:
//     xor ax,ax / mov es,ax / cld / xor bx,bx
//   cmd: out 0x1F6,0xE0 / out 0x1F2,0 / out 0x1F3,bl / out 0x1F4,bh / out 0x1F5,0 /
//        out 0x1F7,0x20 / mov si,256
//   sector: mov dx,0x1F7 / poll: in al,dx / test al,0x80 / jnz poll / test al,1 / jnz fail /
//        test al,8 / jz poll / mov dx,0x1F0 / mov di,0x9000 / mov cx,256 / rep insw /
//        dec si / jnz sector / add bx,256 / cmp bx,2048 / jb cmd / out 0xF4,0 / hlt
//   fail: out 0xF4,1 / hlt                     (each `out port,v` via mov dx / mov al / out dx,al)
const std::vector<uint8_t> kAtaReader = {
    0x31, 0xc0, 0x8e, 0xc0, 0xfc, 0x31, 0xdb, 0xba, 0xf6, 0x01, 0xb0, 0xe0, 0xee, 0xba, 0xf2,
    0x01, 0x30, 0xc0, 0xee, 0xba, 0xf3, 0x01, 0x88, 0xd8, 0xee, 0xba, 0xf4, 0x01, 0x88, 0xf8,
    0xee, 0xba, 0xf5, 0x01, 0x30, 0xc0, 0xee, 0xba, 0xf7, 0x01, 0xb0, 0x20, 0xee, 0xbe, 0x00,
    0x01, 0xba, 0xf7, 0x01, 0xec, 0xa8, 0x80, 0x75, 0xfb, 0xa8, 0x01, 0x75, 0x23, 0xa8, 0x08,
    0x74, 0xf3, 0xba, 0xf0, 0x01, 0xbf, 0x00, 0x90, 0xb9, 0x00, 0x01, 0xf3, 0x6d, 0x4e, 0x75,
    0xe2, 0x81, 0xc3, 0x00, 0x01, 0x81, 0xfb, 0x00, 0x08, 0x72, 0xb1, 0xba, 0xf4, 0x00, 0x30,
    0xc0, 0xee, 0xf4, 0xba, 0xf4, 0x00, 0xb0, 0x01, 0xee, 0xf4};

// One way of reaching the disk: its guest, which reads sectors [0, kSectors) and ends with exit
// code 0.
struct Driver {
  const char* name;
  const std::vector<uint8_t>* guest;
};
const Driver kDrivers[] = {
    {"ata", &kAtaReader},
};

struct Result {
  uint64_t exits = 0;
  double median_s = 0;
  bool ok = true;
};

Result measure(const Driver& d, const std::string& image, int rounds) {
  Result r;
  std::vector<double> times;
  for (int i = 0; i < rounds; ++i) {
    backend::Config cfg;
    cfg.memory_bytes = 1ull << 20;
    cfg.disks.push_back({image, true, ""});
    auto m = backend::make_backend(backend::Kind::kKvm, cfg);
    m->load(*d.guest);
    const auto t0 = std::chrono::steady_clock::now();
    const backend::RunOutcome out = m->run({120.0, 0, 0}, nullptr);
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    r.exits = out.exits;
    if (out.reason != trace::RunEndReason::kGuestExit || out.exit_code != 0) {
      std::fprintf(stderr, "disk: the %s guest did not read its megabyte: %s (exit code %u)\n",
                   d.name, std::string(trace::to_string(out.reason)).c_str(), out.exit_code);
      r.ok = false;
    }
  }
  std::sort(times.begin(), times.end());
  r.median_s = times[times.size() / 2];
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 3;
  CLI::App app{"disk: VM exits and wall time of a 1 MiB disk read on KVM, per driver"};
  app.add_option("--rounds", rounds, "Runs per driver (the median time is shown)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  if (const auto status = bench::parse_command_line(app, argc, argv)) return *status;
  std::string why;
  if (!backend::kvm_usable(&why)) {
    std::fprintf(stderr, "disk: KVM is not usable here: %s\n", why.c_str());
    return 2;
  }
  char image[] = "/tmp/trapscope-bench-disk-XXXXXX";
  const int fd = ::mkstemp(image);
  if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(kSectors * 512)) != 0) {
    std::perror("disk: temporary image");
    return 1;
  }
  ::close(fd);
  std::printf("disk: a 1 MiB read (%llu sectors) on KVM (%s), %d runs per driver\n",
              static_cast<unsigned long long>(kSectors), vmm::host_kvm_module().c_str(), rounds);
  std::printf("%-10s %10s %14s %14s %12s %8s\n", "driver", "VM exits", "exits/sector",
              "bytes/exit", "time (ms)", "ratio");
  bool ok = true;
  double first = 0;
  for (const Driver& d : kDrivers) {
    const Result r = measure(d, image, rounds);
    ok = ok && r.ok;
    if (first == 0) first = r.median_s;
    std::printf("%-10s %10llu %14.2f %14.1f %12.2f %8.2f\n", d.name,
                static_cast<unsigned long long>(r.exits),
                static_cast<double>(r.exits) / kSectors,
                static_cast<double>(kSectors * 512) / static_cast<double>(r.exits),
                r.median_s * 1e3, r.median_s / first);
  }
  ::unlink(image);
  return ok ? 0 : 1;
}
