// Co-simulation: every teaching guest behaves identically on KVM and on the simulator
// (console, exits in order, run end, final registers, guest memory).
#include <catch2/catch.hpp>

#include "backend/cosim.hpp"
#include "guests/guest_catalog.hpp"
#include "tests/support.hpp"

namespace {

void check_guest(const char* name) {
  REQUIRE_KVM_OR_SKIP();
  auto g = trapscope::guests::find(name);
  REQUIRE(g);
  trapscope::backend::Config cfg;
  cfg.mode = *trapscope::platform::parse_boot_mode(g->mode);
  const auto r = trapscope::backend::cosimulate(g->image, cfg, {30.0, 100000, 50'000'000});
  INFO(r.report);
  CHECK(r.equal);
}

}  // namespace

TEST_CASE("co-simulation: hello", "[cosim][kvm][sim]") { check_guest("hello"); }
TEST_CASE("co-simulation: long-hello", "[cosim][kvm][sim]") { check_guest("long-hello"); }
TEST_CASE("co-simulation: boot", "[cosim][kvm][sim]") { check_guest("boot"); }
TEST_CASE("co-simulation: rings", "[cosim][kvm][sim]") { check_guest("rings"); }

TEST_CASE("co-simulation reports the first divergence", "[cosim][kvm][sim]") {
  REQUIRE_KVM_OR_SKIP();
  // rdtsc differs between a real CPU and the simulator (which counts instructions):
  // out the low byte of the TSC to the debug console.
  const uint8_t code[] = {0x0F, 0x31, 0xE6, 0xE9, 0xF4};  // rdtsc; out 0xE9, al; hlt
  const auto r = trapscope::backend::cosimulate(code, {}, {5.0, 100, 1000});
  INFO(r.report);
  CHECK_FALSE(r.equal);
  CHECK_THAT(r.report, Catch::Contains("VM exit #0"));
}
TEST_CASE("co-simulation: popek", "[cosim][kvm][sim]") { check_guest("popek"); }
