// tests/test_handle_exit.cpp — platform::handle_exit fed made-up exits (no KVM needed), and
// platform::kvm_exit_reason for every VcpuExit alternative.
#include <linux/kvm.h>

#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

#include "trace/event.hpp"
#include "platform/devices.hpp"
#include "platform/exit.hpp"
#include "platform/handle_exit.hpp"

using namespace trapscope;
using trace::RunEndReason;
using platform::ExitAction;

namespace {

void require_resume(const ExitAction& a) {
  REQUIRE_FALSE(a.stop);
  REQUIRE(a.exit_code == 0u);
}

void require_end(const ExitAction& a, RunEndReason reason, uint32_t code = 0) {
  REQUIRE(a.stop);
  REQUIRE(a.reason == reason);
  REQUIRE(a.exit_code == code);
}

}  // namespace

// [SECTION] IO out

TEST_CASE("handle_exit: out to the debug console appends a byte and resumes",
          "[unit][handle-exit]") {
  platform::Devices d;
  const uint8_t byte[1] = {'H'};
  require_resume(platform::handle_exit(d, platform::ExitIoOut{0xE9, 1, 1, byte}));
  const uint8_t byte2[1] = {'i'};
  require_resume(platform::handle_exit(d, platform::ExitIoOut{0xE9, 1, 1, byte2}));
  REQUIRE(d.console.text() == "Hi");
  REQUIRE_FALSE(d.control.exit_code().has_value());
  REQUIRE(d.mmio_writes.empty());
}

TEST_CASE("handle_exit: out to the control port ends the run with the guest's exit code",
          "[unit][handle-exit]") {
  SECTION("1-byte value 3") {
    platform::Devices d;
    const uint8_t v[1] = {3};
    require_end(platform::handle_exit(d, platform::ExitIoOut{0xF4, 1, 1, v}), RunEndReason::kGuestExit, 3);
    REQUIRE(d.control.exit_code() == 3u);
  }
  SECTION("exit code 0 (test passed) still ends the run") {
    platform::Devices d;
    const uint8_t v[1] = {0};
    require_end(platform::handle_exit(d, platform::ExitIoOut{0xF4, 1, 1, v}), RunEndReason::kGuestExit, 0);
  }
  SECTION("2-byte value") {
    platform::Devices d;
    const uint8_t v[2] = {0x34, 0x12};
    require_end(platform::handle_exit(d, platform::ExitIoOut{0xF4, 2, 1, v}), RunEndReason::kGuestExit,
                0x1234);
  }
  SECTION("4-byte value") {
    platform::Devices d;
    const uint8_t v[4] = {0x78, 0x56, 0x34, 0x12};
    require_end(platform::handle_exit(d, platform::ExitIoOut{0xF4, 4, 1, v}), RunEndReason::kGuestExit,
                0x12345678);
  }
  SECTION("an out to another port after the code was set does not end the run") {
    platform::Devices d;
    const uint8_t v[1] = {9};
    require_end(platform::handle_exit(d, platform::ExitIoOut{0xF4, 1, 1, v}), RunEndReason::kGuestExit, 9);
    const uint8_t c[1] = {'x'};
    require_resume(platform::handle_exit(d, platform::ExitIoOut{0xE9, 1, 1, c}));
    REQUIRE(d.console.text() == "x");
  }
}

TEST_CASE("handle_exit: rep outsb (count 4) writes every element", "[unit][handle-exit]") {
  platform::Devices d;
  const uint8_t bytes[4] = {'a', 'b', 'c', 'd'};
  require_resume(platform::handle_exit(d, platform::ExitIoOut{0xE9, 1, 4, bytes}));
  REQUIRE(d.console.text() == "abcd");
}

TEST_CASE("handle_exit: rep outsw to COM1 THR writes the low byte of each element",
          "[unit][handle-exit]") {
  platform::Devices d;
  const uint8_t words[6] = {'x', 0x11, 'y', 0x22, 'z', 0x33};
  require_resume(platform::handle_exit(d, platform::ExitIoOut{0x3F8, 2, 3, words}));
  REQUIRE(d.console.text() == "xyz");
}

TEST_CASE("handle_exit: out to an unclaimed port is ignored", "[unit][handle-exit]") {
  platform::Devices d;
  const uint8_t v[4] = {1, 2, 3, 4};
  require_resume(platform::handle_exit(d, platform::ExitIoOut{0x80, 4, 1, v}));
  REQUIRE(d.console.text().empty());
  REQUIRE_FALSE(d.control.exit_code().has_value());
}

// [SECTION] IO in

TEST_CASE("handle_exit: in from an unclaimed port reads all ones", "[unit][handle-exit]") {
  platform::Devices d;
  std::array<uint8_t, 4> buf{0, 0, 0, 0};
  require_resume(platform::handle_exit(d, platform::ExitIoIn{0x80, 4, 1, buf}));
  REQUIRE(buf == std::array<uint8_t, 4>{0xFF, 0xFF, 0xFF, 0xFF});
}

// An exit whose count * size exceeds its data (made up, or corrupt) fills only its data: the
// bytes after the 4-byte span stay as they were.
TEST_CASE("handle_exit: string IO never goes past the exit's data", "[unit][handle-exit][hostile]") {
  platform::Devices d;
  std::array<uint8_t, 16> buf{};
  buf.fill(0xAA);
  require_resume(platform::handle_exit(d, platform::ExitIoIn{0x80, 4, 3, {buf.data(), 4}}));
  CHECK(buf[3] == 0xFF);
  for (size_t i = 4; i < buf.size(); ++i) CHECK(buf[i] == 0xAA);
  require_resume(platform::handle_exit(d, platform::ExitIoOut{0xE9, 1, 1000, {buf.data(), 2}}));
  CHECK(d.console.text() == "\xFF\xFF");
  require_resume(platform::handle_exit(d, platform::ExitIoIn{0x80, 0, 5, {buf.data(), 4}}));
}

TEST_CASE("handle_exit: in from port 0xE9 returns 0xE9", "[unit][handle-exit]") {
  platform::Devices d;
  SECTION("byte") {
    std::array<uint8_t, 1> buf{0};
    require_resume(platform::handle_exit(d, platform::ExitIoIn{0xE9, 1, 1, buf}));
    REQUIRE(buf[0] == 0xE9);
  }
  SECTION("word: zero-extended") {
    std::array<uint8_t, 2> buf{0x55, 0x55};
    require_resume(platform::handle_exit(d, platform::ExitIoIn{0xE9, 2, 1, buf}));
    REQUIRE(buf == std::array<uint8_t, 2>{0xE9, 0x00});
  }
  REQUIRE(d.console.text().empty());
}

TEST_CASE("handle_exit: in from COM1 LSR returns 0x60 (transmitter empty)",
          "[unit][handle-exit]") {
  platform::Devices d;
  SECTION("single in") {
    std::array<uint8_t, 1> buf{0};
    require_resume(platform::handle_exit(d, platform::ExitIoIn{0x3FD, 1, 1, buf}));
    REQUIRE(buf[0] == 0x60);
  }
  SECTION("rep insb, count 3") {
    std::array<uint8_t, 3> buf{0, 0, 0};
    require_resume(platform::handle_exit(d, platform::ExitIoIn{0x3FD, 1, 3, buf}));
    REQUIRE(buf == std::array<uint8_t, 3>{0x60, 0x60, 0x60});
  }
}

TEST_CASE("handle_exit: in from the control port returns 0 and does not end the run",
          "[unit][handle-exit]") {
  platform::Devices d;
  std::array<uint8_t, 4> buf{0xAA, 0xAA, 0xAA, 0xAA};
  require_resume(platform::handle_exit(d, platform::ExitIoIn{0xF4, 4, 1, buf}));
  REQUIRE(buf == std::array<uint8_t, 4>{0, 0, 0, 0});
  REQUIRE_FALSE(d.control.exit_code().has_value());
}

// [SECTION] MMIO

TEST_CASE("handle_exit: an MMIO read returns all ones", "[unit][handle-exit]") {
  platform::Devices d;
  SECTION("8 bytes") {
    std::array<uint8_t, 8> buf{};
    require_resume(platform::handle_exit(d, platform::ExitMmioRead{0x40000000, buf}));
    for (uint8_t b : buf) REQUIRE(b == 0xFF);
  }
  SECTION("2 bytes: only the access's bytes are written") {
    std::array<uint8_t, 4> buf{0, 0, 0, 0};
    require_resume(
        platform::handle_exit(d, platform::ExitMmioRead{0xFEE00000, std::span<uint8_t>(buf.data(), 2)}));
    REQUIRE(buf == std::array<uint8_t, 4>{0xFF, 0xFF, 0, 0});
  }
  REQUIRE(d.mmio_writes.empty());
}

TEST_CASE("handle_exit: an MMIO write is recorded with gpa, len and data",
          "[unit][handle-exit]") {
  platform::Devices d;
  const uint8_t w4[4] = {0x11, 0x22, 0x33, 0x44};
  require_resume(platform::handle_exit(d, platform::ExitMmioWrite{0x40000010, w4}));
  const uint8_t w8[8] = {1, 2, 3, 4, 5, 6, 7, 0x80};
  require_resume(platform::handle_exit(d, platform::ExitMmioWrite{0xFEC00000, w8}));
  const uint8_t w1[1] = {0xAB};
  require_resume(platform::handle_exit(d, platform::ExitMmioWrite{0x1, w1}));

  REQUIRE(d.mmio_writes.size() == 3);
  CHECK(d.mmio_writes[0].gpa == 0x40000010u);
  CHECK(d.mmio_writes[0].len == 4);
  CHECK(d.mmio_writes[0].data == 0x44332211u);
  CHECK(d.mmio_writes[1].gpa == 0xFEC00000u);
  CHECK(d.mmio_writes[1].len == 8);
  CHECK(d.mmio_writes[1].data == 0x8007060504030201ull);
  CHECK(d.mmio_writes[2].gpa == 0x1u);
  CHECK(d.mmio_writes[2].len == 1);
  CHECK(d.mmio_writes[2].data == 0xABu);
  REQUIRE(d.console.text().empty());
}

// [SECTION] Exits that end the run

TEST_CASE("handle_exit: exits that end the run map to their RunEndReason",
          "[unit][handle-exit]") {
  platform::Devices d;
  require_end(platform::handle_exit(d, platform::ExitHlt{}), RunEndReason::kHalted);
  require_end(platform::handle_exit(d, platform::ExitShutdown{}), RunEndReason::kTripleFault);

  platform::ExitInternalError emu{};
  emu.suberror = 1;  // KVM_INTERNAL_ERROR_EMULATION
  require_end(platform::handle_exit(d, emu), RunEndReason::kEmulationFailure);
  platform::ExitInternalError other{};
  other.suberror = 3;  // KVM_INTERNAL_ERROR_DELIVERY_EV
  require_end(platform::handle_exit(d, other), RunEndReason::kInternalError);
  other.suberror = 0;
  require_end(platform::handle_exit(d, other), RunEndReason::kInternalError);

  require_end(platform::handle_exit(d, platform::ExitFailEntry{0x80000021, 0}), RunEndReason::kFailEntry);
  require_end(platform::handle_exit(d, platform::ExitDebug{1, 0x8000, 0x4000, 0x400}),
              RunEndReason::kDebug);
  require_end(platform::handle_exit(d, platform::ExitSystemEvent{KVM_SYSTEM_EVENT_RESET}),
              RunEndReason::kUnhandledExit);
  require_end(platform::handle_exit(d, platform::ExitOther{99}), RunEndReason::kUnhandledExit);
  require_resume(platform::handle_exit(d, platform::ExitInterrupted{}));

  // None of them touched the devices.
  REQUIRE(d.console.text().empty());
  REQUIRE(d.mmio_writes.empty());
  REQUIRE_FALSE(d.control.exit_code().has_value());
}

// [SECTION] kvm_exit_reason

TEST_CASE("kvm_exit_reason gives KVM's number for every exit alternative",
          "[unit][handle-exit]") {
  uint8_t buf[4] = {};
  const uint8_t cbuf[4] = {};
  CHECK(platform::kvm_exit_reason(platform::ExitIoIn{0x60, 1, 1, buf}) == 2u);
  CHECK(platform::kvm_exit_reason(platform::ExitIoOut{0x60, 1, 1, cbuf}) == 2u);
  CHECK(platform::kvm_exit_reason(platform::ExitMmioRead{0, buf}) == 6u);
  CHECK(platform::kvm_exit_reason(platform::ExitMmioWrite{0, cbuf}) == 6u);
  CHECK(platform::kvm_exit_reason(platform::ExitHlt{}) == 5u);
  CHECK(platform::kvm_exit_reason(platform::ExitShutdown{}) == 8u);
  CHECK(platform::kvm_exit_reason(platform::ExitInternalError{}) == 17u);
  CHECK(platform::kvm_exit_reason(platform::ExitFailEntry{}) == 9u);
  CHECK(platform::kvm_exit_reason(platform::ExitDebug{}) == 4u);
  CHECK(platform::kvm_exit_reason(platform::ExitSystemEvent{}) == 24u);
  CHECK(platform::kvm_exit_reason(platform::ExitInterrupted{}) == 10u);
  CHECK(platform::kvm_exit_reason(platform::ExitOther{99}) == 99u);
  CHECK(platform::kvm_exit_reason(platform::ExitOther{KVM_EXIT_X86_RDMSR}) == 29u);

  // The numbers are <linux/kvm.h>'s and trace::ExitReason's.
  STATIC_REQUIRE(KVM_EXIT_IO == 2);
  STATIC_REQUIRE(KVM_EXIT_MMIO == 6);
  STATIC_REQUIRE(KVM_EXIT_HLT == 5);
  STATIC_REQUIRE(KVM_EXIT_SHUTDOWN == 8);
  STATIC_REQUIRE(KVM_EXIT_INTERNAL_ERROR == 17);
  STATIC_REQUIRE(KVM_EXIT_FAIL_ENTRY == 9);
  STATIC_REQUIRE(KVM_EXIT_DEBUG == 4);
  STATIC_REQUIRE(KVM_EXIT_SYSTEM_EVENT == 24);
  STATIC_REQUIRE(KVM_EXIT_INTR == 10);
  STATIC_REQUIRE(static_cast<uint32_t>(trace::ExitReason::kInternalError) == 17u);
  STATIC_REQUIRE(static_cast<uint32_t>(trace::ExitReason::kSystemEvent) == 24u);
  CHECK(trace::exit_reason_name(2) == "IO");
  CHECK(trace::exit_reason_name(17) == "INTERNAL_ERROR");
  CHECK(trace::exit_reason_name(37) == "NOTIFY");
  CHECK(trace::exit_reason_name(99) == "?");
}
