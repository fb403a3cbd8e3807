// Disk images (platform/disk_image.hpp): raw images and copy-on-write overlays, the errors for
// bad image files, `trapscope disk create|info|commit`, `--disk` on `run`, the disk-ata guest on
// every engine with the image's bytes checked afterwards, and data safety at every run end.
#include <catch2/catch.hpp>

#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "backend/cosim.hpp"
#include "guests/guest_catalog.hpp"
#include "platform/disk_image.hpp"
#include "support.hpp"

extern char** environ;

using namespace trapscope;
using platform::DiskError;
using platform::DiskSpec;
using test::read_file;
using test::run_trapscope;
using test::temp_path;
using test::write_file;

namespace {

constexpr uint64_t kImageSectors = 8192;  // 4 MiB

// The content disk-ata expects in sectors 0..63 (guests/disk-ata.asm).
uint8_t read_pattern(uint64_t s, uint64_t k) {
  return static_cast<uint8_t>(((k + 13 * s) & 0xFF) ^ (k >> 8));
}
// What disk-ata writes to sector 100 + t.
uint8_t write_pattern(uint64_t t, uint64_t k) {
  return static_cast<uint8_t>((((k ^ 0xA5) + 29 * t) & 0xFF) ^ (k >> 8));
}

std::string make_guest_image(const std::string& name) {
  std::vector<unsigned char> img(kImageSectors * 512, 0);
  for (uint64_t s = 0; s < 64; ++s) {
    for (uint64_t k = 0; k < 512; ++k) img[s * 512 + k] = read_pattern(s, k);
  }
  const std::string path = temp_path(name);
  write_file(path, img);
  return path;
}

bool written_by_guest(const std::vector<unsigned char>& img) {
  for (uint64_t t = 0; t < 16; ++t) {
    for (uint64_t k = 0; k < 512; ++k) {
      if (img[(100 + t) * 512 + k] != write_pattern(t, k)) return false;
    }
  }
  return true;
}

uint32_t byte_sum_of_read_sectors() {
  uint32_t sum = 0;
  for (uint64_t s = 0; s < 64; ++s) {
    for (uint64_t k = 0; k < 512; ++k) sum += read_pattern(s, k);
  }
  return sum;
}

std::vector<uint8_t> sector(platform::BlockBackend& d, uint64_t lba) {
  std::vector<uint8_t> s(512);
  REQUIRE(d.read(lba, s) == platform::BlockStatus::kOk);
  return s;
}

std::string bad_input_reason(const std::string& disk) {
  const auto r = run_trapscope({"run", "hello", "--backend", "sim", "-q", "--disk", disk});
  CHECK(r.exit_code == 2);
  return r.err;
}

}  // namespace

TEST_CASE("disk: a raw image reads and writes sectors of its file, and nothing outside",
          "[disk]") {
  const std::string path = temp_path("raw.img");
  platform::create_raw_image(path, 64 * 512);
  auto d = platform::open_disk({path, false, ""});
  CHECK(d->sectors() == 64);
  std::vector<uint8_t> s(1024, 0x5A);
  CHECK(d->write(62, s) == platform::BlockStatus::kOk);
  CHECK(d->write(63, s) == platform::BlockStatus::kOutOfRange);  // one sector too many
  CHECK(d->write(~uint64_t{0}, std::span<const uint8_t>(s).first(512)) ==
        platform::BlockStatus::kOutOfRange);
  CHECK(d->read(64, std::span<uint8_t>(s).first(512)) == platform::BlockStatus::kOutOfRange);
  CHECK(d->flush() == platform::BlockStatus::kOk);
  const auto bytes = read_file(path);
  REQUIRE(bytes.size() == 64 * 512);  // never grown
  CHECK(bytes[62 * 512] == 0x5A);
  CHECK(bytes[62 * 512 - 1] == 0);
  CHECK(d->identity().format == "raw");

  auto ro = platform::open_disk({path, true, ""});
  CHECK(ro->write(0, std::span<const uint8_t>(s).first(512)) == platform::BlockStatus::kReadOnly);
  CHECK(sector(*ro, 63)[0] == 0x5A);
}

TEST_CASE("disk: bad image files are refused with the reason (exit 2)", "[disk]") {
  CHECK_THAT(bad_input_reason(temp_path("missing.img")), Catch::Contains("No such file"));
  const std::string empty = temp_path("empty.img");
  write_file(empty, {});
  CHECK_THAT(bad_input_reason(empty), Catch::Contains("is empty"));
  const std::string odd = temp_path("odd.img");
  write_file(odd, std::vector<unsigned char>(1000, 0));
  CHECK_THAT(bad_input_reason(odd), Catch::Contains("not a multiple of the 512-byte"));
  const std::string dir = temp_path("dir.img");
  REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
  CHECK_THAT(bad_input_reason(dir), Catch::Contains("is a directory"));
  const std::string ro = temp_path("ro.img");
  write_file(ro, std::vector<unsigned char>(4096, 0));
  REQUIRE(::chmod(ro.c_str(), 0444) == 0);
  CHECK_THAT(bad_input_reason(ro), Catch::Contains("not writable"));
  // Read-only use of the same file is fine.
  CHECK(run_trapscope({"run", "hello", "--backend", "sim", "-q", "--disk", ro + ",readonly"})
            .exit_code == 0);
  CHECK_THAT(bad_input_reason(ro + ",bogus"), Catch::Contains("not an option"));
  const auto three = run_trapscope({"run", "hello", "--backend", "sim", "-q", "--disk",
                                    ro + ",readonly", "--disk", ro + ",readonly", "--disk",
                                    ro + ",readonly"});
  CHECK(three.exit_code == 2);
  CHECK_THAT(three.err, Catch::Contains("at most 2"));
}

TEST_CASE("disk: an overlay never writes its base - reads fall through - commit merges",
          "[disk]") {
  const std::string base = temp_path("base.img");
  std::vector<unsigned char> content(32 * 512);
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<unsigned char>(i / 512);
  write_file(base, content);
  const std::string ov = temp_path("over.cow");
  {
    auto d = platform::open_disk({base, false, ov});  // made on first use
    CHECK(d->identity().format == "overlay");
    CHECK(sector(*d, 7)[0] == 7);
    std::vector<uint8_t> s(512, 0xEE);
    CHECK(d->write(7, s) == platform::BlockStatus::kOk);
    CHECK(sector(*d, 7)[0] == 0xEE);
    CHECK(sector(*d, 8)[0] == 8);
    CHECK(d->write(32, s) == platform::BlockStatus::kOutOfRange);
    CHECK(d->flush() == platform::BlockStatus::kOk);
    CHECK(d->identity().allocated == 1);
  }
  CHECK(read_file(base) == content);  // the base is never written
  {
    auto d = platform::open_disk({ov, false, ""});  // the overlay alone names its base
    CHECK(sector(*d, 7)[0] == 0xEE);
  }
  auto info = run_trapscope({"disk", "info", ov});
  CHECK(info.exit_code == 0);
  CHECK_THAT(info.out, Catch::Contains("overlay") && Catch::Contains("the base matches") &&
                           Catch::Contains("allocated: 1 sectors"));
  auto commit = run_trapscope({"disk", "commit", ov});
  CHECK(commit.exit_code == 0);
  CHECK_THAT(commit.out, Catch::Contains("committed 1 sectors"));
  auto merged = content;
  std::fill(merged.begin() + 7 * 512, merged.begin() + 8 * 512, 0xEE);
  CHECK(read_file(base) == merged);
  CHECK(platform::inspect_disk(ov).allocated == 0);
  auto d = platform::open_disk({ov, false, ""});  // the new base CRC was recorded
  CHECK(sector(*d, 7)[0] == 0xEE);
}

TEST_CASE("disk: an overlay whose base changed is refused", "[disk]") {
  const std::string base = temp_path("base2.img");
  write_file(base, std::vector<unsigned char>(8 * 512, 1));
  const std::string ov = temp_path("over2.cow");
  platform::create_overlay(ov, base);
  write_file(base, std::vector<unsigned char>(8 * 512, 2));  // same size, other bytes
  CHECK_THROWS_WITH(platform::open_disk({ov, false, ""}), Catch::Contains("has changed"));
  CHECK_THAT(bad_input_reason(ov), Catch::Contains("has changed"));
  CHECK(run_trapscope({"disk", "commit", ov}).exit_code == 2);
  const auto info = run_trapscope({"disk", "info", ov});
  CHECK(info.exit_code == 0);
  CHECK_THAT(info.out, Catch::Contains("THE BASE HAS CHANGED"));
  const std::string other = temp_path("other.img");
  write_file(other, std::vector<unsigned char>(8 * 512, 2));
  CHECK_THROWS_WITH(platform::open_disk({other, false, ov}), Catch::Contains("is an overlay of"));
}

TEST_CASE("disk: an overlay left without a flush (a killed VMM) or with a damaged bitmap still "
          "opens and reads",
          "[disk]") {
  const std::string base = temp_path("base3.img");
  write_file(base, std::vector<unsigned char>(16 * 512, 0x11));
  const std::string ov = temp_path("over3.cow");
  {
    auto d = platform::open_disk({base, false, ov});
    std::vector<uint8_t> s(512, 0x22);
    REQUIRE(d->write(3, s) == platform::BlockStatus::kOk);
    // No flush: the object goes as a killed process's would (its data is in the file, its
    // bitmap bit is not).
  }
  {
    auto d = platform::open_disk({ov, false, ""});
    CHECK(sector(*d, 3)[0] == 0x11);  // the old data: the write was never flushed
  }
  // A torn bitmap write: any mix of bits set. Every set bit names data that is there (zeros in
  // the sparse file here), so the overlay reads.
  auto bytes = read_file(ov);
  bytes[platform::kOverlayHeaderBytes] = 0xFF;
  write_file(ov, bytes);
  auto d = platform::open_disk({ov, false, ""});
  CHECK(sector(*d, 0)[0] == 0);
  CHECK(sector(*d, 9)[0] == 0x11);
  // A damaged header is detected, not trusted.
  bytes[20] ^= 1;
  write_file(ov, bytes);
  CHECK_THROWS_WITH(platform::open_disk({ov, false, ""}), Catch::Contains("checksum"));
}

TEST_CASE("disk: trapscope disk create and info", "[disk]") {
  const std::string path = temp_path("made.img");
  auto r = run_trapscope({"disk", "create", path, "--size", "4M"});
  CHECK(r.exit_code == 0);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK(st.st_size == 4 << 20);
  CHECK(run_trapscope({"disk", "create", path, "--size", "4M"}).exit_code == 2);  // exists
  CHECK(run_trapscope({"disk", "create", temp_path("x.img"), "--size", "1000"}).exit_code == 2);
  CHECK(run_trapscope({"disk", "create", temp_path("y.img"), "--size", "-4M"}).exit_code == 2);
  CHECK(run_trapscope({"disk", "create", temp_path("z.img")}).exit_code == 2);
  const auto info = run_trapscope({"disk", "info", path});
  CHECK_THAT(info.out, Catch::Contains("raw") && Catch::Contains("8192 sectors"));
  const std::string ov = temp_path("made.cow");
  CHECK(run_trapscope({"disk", "create", ov, "--overlay-of", path}).exit_code == 0);
  CHECK(platform::is_overlay_file(ov));
  CHECK(run_trapscope({"disk", "create", temp_path("o2.cow"), "--overlay-of", ov}).exit_code == 2);
  CHECK(run_trapscope({"disk", "commit", path}).exit_code == 2);  // not an overlay
}

namespace {
void check_disk_ata_run(const std::vector<std::string>& engine) {
  const std::string img = make_guest_image("ata.img");
  auto args = std::vector<std::string>{"run", "disk-ata", "-q", "--disk", img};
  args.insert(args.end(), engine.begin(), engine.end());
  const auto r = run_trapscope(args, 120);
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  char sum[16];
  std::snprintf(sum, sizeof sum, "%08x", byte_sum_of_read_sectors());
  CHECK_THAT(r.out, Catch::Contains(std::string("byte sum 0x") + sum));
  const auto bytes = read_file(img);
  CHECK(bytes.size() == kImageSectors * 512);
  CHECK(written_by_guest(bytes));
  for (uint64_t k = 0; k < 64 * 512; ++k) {
    if (bytes[k] != read_pattern(k / 512, k % 512)) FAIL("sector " << k / 512 << " changed");
  }
}
}  // namespace

TEST_CASE("disk-ata guest: the simulator, every technique - the image's bytes after", "[disk]") {
  for (const char* t : {"emulation", "trap-emulate", "vt", "bt"}) {
    SECTION(t) { check_disk_ata_run({"--backend", "sim", "--technique", t}); }
  }
}

TEST_CASE("disk-ata guest: KVM - the image's bytes after", "[disk][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  check_disk_ata_run({"--backend", "kvm"});
}

TEST_CASE("disk-ata guest: a read-only disk refuses the write with ABRT - the file is unchanged",
          "[disk]") {
  const std::string img = make_guest_image("ro-ata.img");
  const auto before = read_file(img);
  const auto r = run_trapscope({"run", "disk-ata", "-q", "--backend", "sim", "--disk",
                                img + ",readonly"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.out, Catch::Contains("FAILED at step 0x00000007"));  // 7: WRITE aborted
  CHECK(read_file(img) == before);
}

TEST_CASE("disk-ata guest: through an overlay the base keeps its bytes - commit merges",
          "[disk]") {
  const std::string img = make_guest_image("base-ata.img");
  const auto before = read_file(img);
  const std::string ov = temp_path("ata.cow");
  const auto r = run_trapscope({"run", "disk-ata", "-q", "--backend", "sim", "--disk",
                                img + ",overlay=" + ov});
  CHECK(r.exit_code == 0);
  CHECK(read_file(img) == before);
  CHECK(platform::inspect_disk(ov).allocated == 16);
  CHECK(run_trapscope({"disk", "commit", ov}).exit_code == 0);
  const auto after = read_file(img);
  CHECK(written_by_guest(after));
  CHECK(std::equal(after.begin(), after.begin() + 64 * 512, before.begin()));
}

TEST_CASE("disk-ata guest: no disk: the controller's ports float and the guest says so",
          "[disk]") {
  const auto r = run_trapscope({"run", "disk-ata", "-q", "--backend", "sim"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.out, Catch::Contains("FAILED at step 0x00000001"));
}

TEST_CASE("disk-ata guest: co-simulation KVM vs simulator is equal", "[disk][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  const std::string img = make_guest_image("cosim-ata.img");
  const auto g = guests::find("disk-ata");
  REQUIRE(g);
  backend::Config cfg;
  cfg.disks.push_back({img, false, ""});
  // Both runs use the same file: disk-ata reads sectors 0..63 and writes the same bytes to
  // 100..115, so the order the two sides reach the file in does not matter.
  const auto eq = backend::cosimulate(g->image, cfg, {300.0, 0, 0});
  INFO(eq.report);
  if (!eq.equal && eq.report.find("port=1f0 out size=2 count=1 ") != std::string::npos &&
      eq.report.find("port=1f0 out size=2 count=256 ") != std::string::npos) {
    // KVM's in-kernel emulator on this host (kvm_pvm, docs/kvm-hosts.md) hands `rep outsw` to
    // user space one word per VM exit; the simulator, like KVM with a batched string exit, makes
    // one exit of 256. Both write the same sector (the file is checked below and by the KVM
    // and simulator runs above); the exits cannot be compared one to one.
    CHECK(written_by_guest(read_file(img)));
    SKIP_TEST("NOT COMPARED: KVM here splits rep outsw into one exit per word, the simulator "
              "makes one exit per sector: " << eq.report.substr(0, 200));
  }
  CHECK(eq.equal);
  CHECK(written_by_guest(read_file(img)));
}

namespace {
// A real-mode guest that writes 0xBEEF words to sector 5 and then spins forever
// (assembled by hand: mov dx, port / mov al, v / out dx, al ...; rep of `out dx, ax`; jmp $).
std::vector<unsigned char> write_then_spin_guest() {
  return {0xBA, 0xF6, 0x01, 0xB0, 0xE0, 0xEE,   // device: LBA, drive 0
          0xBA, 0xF2, 0x01, 0xB0, 0x01, 0xEE,   // count 1
          0xBA, 0xF3, 0x01, 0xB0, 0x05, 0xEE,   // LBA low 5 (mid, high 0 since reset)
          0xBA, 0xF7, 0x01, 0xB0, 0x30, 0xEE,   // WRITE SECTORS
          0xBA, 0xF0, 0x01, 0xB8, 0xEF, 0xBE,   // dx = data, ax = 0xBEEF
          0xB9, 0x00, 0x01,                     // cx = 256
          0xEF, 0xE2, 0xFD,                     // out dx, ax; loop
          0xEB, 0xFE};                          // jmp $
}

bool overlay_has_beef(const std::string& ov) {
  auto d = platform::open_disk({ov, true, ""});
  const auto s = sector(*d, 5);
  return s[0] == 0xEF && s[1] == 0xBE && s[511] == 0xBE;
}
}  // namespace

TEST_CASE("disk: writes reach the overlay when a run ends by its time limit", "[disk]") {
  const std::string guest = temp_path("spin.bin");
  write_file(guest, write_then_spin_guest());
  const std::string base = temp_path("spin-base.img");
  write_file(base, std::vector<unsigned char>(64 * 512, 0));
  const std::string ov = temp_path("spin.cow");
  const auto r = run_trapscope(
      {"run", guest, "-q", "--backend", "sim", "--timeout", "1", "--disk", base + ",overlay=" + ov});
  CHECK(r.exit_code == 4);
  CHECK(overlay_has_beef(ov));  // the bitmap reached the file at the run end
}

TEST_CASE("disk: writes reach the overlay when a run is interrupted (SIGINT)", "[disk]") {
  const std::string guest = temp_path("spin2.bin");
  write_file(guest, write_then_spin_guest());
  const std::string base = temp_path("spin2-base.img");
  write_file(base, std::vector<unsigned char>(64 * 512, 0));
  const std::string ov = temp_path("spin2.cow");
  const std::string disk = base + ",overlay=" + ov;
  std::vector<std::string> args{TRAPSCOPE_EXE, "run", guest, "-q", "--backend", "sim",
                                "--timeout", "60", "--disk", disk};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, TRAPSCOPE_EXE, nullptr, nullptr, argv.data(), environ) == 0);
  // Wait until the run is under way (the overlay exists and the guest has had time to write),
  // then interrupt it. Not a timing assertion: a slow start only delays the signal.
  for (int i = 0; i < 100 && ::access(ov.c_str(), F_OK) != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ::kill(pid, SIGINT);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);
  CHECK(overlay_has_beef(ov));
}

// One `--disk` is both ATA drive 0 and virtio-blk device 0 (platform/devices.hpp attach_disks):
// each guest finds the disk through its own driver, and writes reach the same file.
TEST_CASE("disk: one --disk file serves the ATA guest and the virtio-blk guest", "[disk][virtio]") {
  std::vector<unsigned char> img(kImageSectors * 512, 0);
  for (uint64_t s = 0; s < 80; ++s) {  // disk-virtio's pattern (docs/virtio.md)
    for (uint64_t i = 0; i < 512; ++i) img[s * 512 + i] = static_cast<uint8_t>(s * 0x1D + i);
  }
  const std::string path = temp_path("both-drivers.img");
  write_file(path, img);
  const auto virtio = run_trapscope({"run", "disk-virtio", "--backend", "sim", "-q", "--disk", path});
  INFO(virtio.out << virtio.err);
  CHECK(virtio.exit_code == 0);
  const auto after = read_file(path);
  REQUIRE(after.size() == img.size());
  for (uint64_t i = 0; i < 512; ++i) {  // sector 64: the pattern XOR 0xA5, written through virtio
    CHECK(static_cast<uint8_t>(after[64 * 512 + i]) == static_cast<uint8_t>((64 * 0x1D + i) ^ 0xA5));
  }
  // The same file through the ATA controller: its first sectors are not disk-ata's pattern, so
  // the ATA guest identifies the drive, then reports a data mismatch.
  const auto ata = run_trapscope({"run", "disk-ata", "--backend", "sim", "-q", "--disk", path});
  CHECK(ata.exit_code != 0);
  CHECK_THAT(ata.out, Catch::Contains("disk-ata: IDENTIFY ok"));
}
