// The backend interface (backend/backend.hpp) on KVM and on the simulator: stepping, stop
// conditions, registers, memory and snapshots behave the same way on both.
#include <catch2/catch.hpp>

#include <stdexcept>

#include "backend/backend.hpp"
#include "guests/guest_catalog.hpp"
#include "tests/support.hpp"

using namespace trapscope;
using backend::Kind;
using trace::RunEndReason;

namespace {

std::unique_ptr<backend::Backend> hello_on(Kind kind) {
  auto g = guests::find("hello");
  REQUIRE(g);
  auto b = backend::make_backend(kind, {});
  b->load(g->image);
  return b;
}

// hello.asm: 0x8000 mov si, message (3 bytes); 0x8003 mov dx, 0xE9 (3); 0x8006 lodsb; …
void check_backend(Kind kind) {
  SECTION("step executes one instruction") {
    auto b = hello_on(kind);
    auto r = b->step(nullptr);
    CHECK(r.reason == RunEndReason::kStep);
    CHECK(b->registers().rip == 0x8003);
    CHECK(b->registers().gpr[x86::kRsi] == 0x800F);  // the message
    r = b->step(nullptr);
    CHECK(r.reason == RunEndReason::kStep);
    CHECK(b->registers().rip == 0x8006);
    CHECK((b->registers().gpr[x86::kRdx] & 0xFFFF) == 0xE9);
  }
  SECTION("a breakpoint stops before the instruction; the run then continues") {
    auto b = hello_on(kind);
    backend::StopCondition stop;
    stop.has_breakpoint = true;
    stop.breakpoint = 0x800E;  // hlt
    auto r = b->run(stop, nullptr);
    CHECK(r.reason == RunEndReason::kBreakpoint);
    CHECK(b->registers().rip == 0x800E);
    CHECK(b->devices().console.text() == "Hello from a real-mode guest!\n");
    r = b->run({}, nullptr);
    CHECK(r.reason == RunEndReason::kHalted);
  }
  SECTION("stop after the next VM exit") {
    auto b = hello_on(kind);
    backend::StopCondition stop;
    stop.stop_on = 1u << static_cast<unsigned>(trace::EventType::kVmExit);
    trace::Recorder rec;
    auto r = b->run(stop, &rec);
    CHECK(r.reason == RunEndReason::kEventMatched);
    CHECK(b->devices().console.text() == "H");
    r = b->run(stop, &rec);
    CHECK(r.reason == RunEndReason::kEventMatched);
    CHECK(b->devices().console.text() == "He");
  }
  SECTION("snapshot and restore return to the same point") {
    auto b = hello_on(kind);
    backend::StopCondition stop;
    stop.stop_on = 1u << static_cast<unsigned>(trace::EventType::kVmExit);
    b->run(stop, nullptr);
    const backend::Snapshot snap = b->snapshot();
    const uint64_t rip = b->registers().rip;
    auto r = b->run({}, nullptr);
    REQUIRE(r.reason == RunEndReason::kHalted);
    const uint8_t scribble[4] = {1, 2, 3, 4};
    REQUIRE(b->write_memory(0x800F, scribble));  // overwrite the message
    b->restore(snap);
    CHECK(b->registers().rip == rip);
    CHECK(b->devices().console.text() == "H");
    r = b->run({}, nullptr);
    CHECK(r.reason == RunEndReason::kHalted);
    CHECK(b->devices().console.text() == "Hello from a real-mode guest!\n");
  }
  SECTION("memory writes outside guest memory are refused") {
    auto b = hello_on(kind);
    const uint8_t byte = 0;
    CHECK_FALSE(b->write_memory(16ull << 20, {&byte, 1}));
    CHECK(b->write_memory((16ull << 20) - 1, {&byte, 1}));
  }
}

}  // namespace

TEST_CASE("backend interface on KVM", "[backend][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  check_backend(Kind::kKvm);
  SECTION("KVM refuses stop conditions it cannot observe") {
    auto b = hello_on(Kind::kKvm);
    backend::StopCondition stop;
    stop.stop_on = 1u << static_cast<unsigned>(trace::EventType::kPageWalk);
    CHECK_THROWS_AS(b->run(stop, nullptr), std::invalid_argument);
    stop = {};
    stop.max_instructions = 10;
    CHECK_THROWS_AS(b->run(stop, nullptr), std::invalid_argument);
  }
}

TEST_CASE("backend interface on the simulator", "[backend][sim]") { check_backend(Kind::kSim); }
