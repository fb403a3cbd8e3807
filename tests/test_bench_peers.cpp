// tests/test_bench_peers.cpp — the benches' shared peer library (bench/peers.hpp) and
// bench/bt_speed's peer report. Nothing here asserts on time.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "backend/backend.hpp"
#include "bench/peers.hpp"
#include "support.hpp"

using namespace trapscope;

namespace {

// The console of a compute image with `n` iterations, run to its end by the simulator.
std::string sim_console(uint32_t n, sim::virt::Technique technique, uint64_t* instructions,
                        const bench::Workload& w = bench::kCompute) {
  const bench::ComputeImage image(w);
  backend::Config cfg;
  cfg.mode = platform::BootMode::kReal;
  cfg.load_address = bench::kLoad;
  cfg.technique = technique;
  auto m = backend::make_backend(backend::Kind::kSim, cfg);
  m->load(image.with(n));
  const backend::RunOutcome out = m->run({60.0, 0, 0}, nullptr);
  REQUIRE(out.reason == trace::RunEndReason::kGuestExit);
  *instructions = out.instructions;
  return m->devices().console.text();
}

}  // namespace

TEST_CASE("bench peers: the checksum model is what the guest prints, under both techniques",
          "[bench][peers][sim]") {
  REQUIRE(bench::model_checksum(3) != bench::model_checksum(4));
  uint64_t i3 = 0, i4 = 0, b3 = 0;
  const std::string c3 = sim_console(3, sim::virt::Technique::kEmulation, &i3);
  const std::string c4 = sim_console(4, sim::virt::Technique::kEmulation, &i4);
  CHECK(bench::console_line(c3) == bench::expected_line(3));
  CHECK(bench::console_line(c4) == bench::expected_line(4));
  CHECK(i4 - i3 == bench::kInsnsPerIterationFromSource);  // what the benches' MIPS rest on
  CHECK(bench::console_line(sim_console(3, sim::virt::Technique::kBt, &b3)) == bench::expected_line(3));
  CHECK(b3 == i3);
  // The catalog's image carries its own count, which bt_speed checks bt's console against.
  CHECK(bench::ComputeImage().iterations() > 0);
}

TEST_CASE("bench peers: compute64 (long mode, paging, add [base + index*8]) prints its model's "
          "checksum under both techniques", "[bench][peers][sim]") {
  REQUIRE(bench::model_checksum64(3) != bench::model_checksum64(4));
  const bench::Workload& w = bench::kCompute64;
  uint64_t i3 = 0, i4 = 0, b4 = 0;
  const std::string c3 = sim_console(3, sim::virt::Technique::kEmulation, &i3, w);
  const std::string c4 = sim_console(4, sim::virt::Technique::kEmulation, &i4, w);
  CHECK(bench::console_line(c3, w) == bench::expected_line(3, w));
  CHECK(bench::console_line(c4, w) == bench::expected_line(4, w));
  CHECK(bench::console_line(c4) == "");  // its own prefix, not compute's
  CHECK(i4 - i3 == bench::kInsnsPerIteration64FromSource);
  CHECK(bench::console_line(sim_console(4, sim::virt::Technique::kBt, &b4, w), w) ==
        bench::expected_line(4, w));
  CHECK(b4 == i4);
  CHECK(bench::ComputeImage(w).iterations() > 0);
}

TEST_CASE("bench peers: console_line and check_line", "[bench][peers]") {
  CHECK(bench::console_line("SeaBIOS\r\ncompute: n=1 checksum=2\r\ncompute: x\n") ==
        "compute: n=1 checksum=2");
  CHECK(bench::console_line("no such line\n").empty());
  bench::RunResult r;
  r.ok = true;
  r.line = bench::expected_line(5);
  bench::check_line(&r, 5);
  CHECK(r.ok);
  bench::check_line(&r, 6);  // the line of N = 5 for a run of N = 6
  CHECK_FALSE(r.ok);
  CHECK(r.wrong_checksum);
  bench::RunResult silent;
  silent.ok = true;
  bench::check_line(&silent, 5);
  CHECK_FALSE(silent.ok);
  CHECK_FALSE(silent.wrong_checksum);
  CHECK(silent.error.find("no \"compute:\" line") != std::string::npos);
}

TEST_CASE("bench peers: a peer that is not installed is reported, not run", "[bench][peers]") {
  const bench::TempDir dir("test_bench_peers");
  const bench::ComputeImage image;
  for (const auto& m : {bench::make_bochs(image, dir.path, "/nonexistent/bochs"),
                        bench::make_qemu(image, dir.path, "no-such-qemu-system")}) {
    REQUIRE(m != nullptr);
    CHECK_FALSE(m->available);
    CHECK_FALSE(m->installed);
    CHECK(m->unavailable_reason.find("not found (Debian: apt-get install") != std::string::npos);
  }
}

TEST_CASE("bench peers: QEMU-TCG runs the compute images and prints the models' checksums",
          "[bench][peers][qemu]") {
  const bench::TempDir dir("test_bench_peers");
  for (const bench::Workload* w : {&bench::kCompute, &bench::kCompute64}) {
    const bench::ComputeImage image(*w);
    const auto qemu = bench::make_qemu(image, dir.path, "qemu-system-x86_64");
    if (!qemu->installed) {
      SKIP_TEST("qemu-system-x86_64 is not installed: " << qemu->unavailable_reason);
    }
    const bench::RunResult r = qemu->run(2);
    INFO(w->guest << ": " << r.error);
    CHECK(r.ok);
    CHECK(r.line == bench::expected_line(2, *w));
  }
}

TEST_CASE("bt_speed: missing peers print 'not installed' and the bench still succeeds",
          "[bench][peers]") {
  const test::CommandResult r =
      test::run_command({TRAPSCOPE_BT_SPEED_EXE, "--rounds", "1", "--guest", "compute", "--bochs",
                         "/nonexistent/bochs", "--qemu", "/nonexistent/qemu"},
                        {}, 120);
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("compute    bt/emulation") != std::string::npos);
  CHECK(r.out.find("Bochs     not installed: '/nonexistent/bochs' not found") !=
        std::string::npos);
  CHECK(r.out.find("QEMU-TCG  not installed: '/nonexistent/qemu' not found") !=
        std::string::npos);
  CHECK(r.out.find("bt/Bochs n/a") != std::string::npos);
  CHECK(r.out.find("bt/QEMU-TCG n/a") != std::string::npos);
  CHECK(r.out.find("DIFFER") == std::string::npos);
  CHECK(r.out.find("the model says") == std::string::npos);
  CHECK(test::run_command({TRAPSCOPE_BT_SPEED_EXE, "--peer-rounds", "0"}).exit_code == 1);
}
