// tests/test_devices.cpp — the port-I/O bus and the guest-visible devices (no KVM needed).
#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "platform/devices.hpp"
#include "platform/handle_exit.hpp"

using namespace trapscope;

namespace {

// Records every access it sees (on the port-I/O bus, or with Addr = uint64_t the MMIO bus).
template <typename Addr>
class BusProbe final : public platform::BusDevice<Addr> {
 public:
  explicit BusProbe(std::string name, uint8_t fill = 0x5A) : name_(std::move(name)), fill_(fill) {}
  std::string_view name() const override { return name_; }
  void read(Addr offset, std::span<uint8_t> data) override {
    reads.push_back({offset, data.size()});
    for (auto& b : data) b = fill_;
  }
  void write(Addr offset, std::span<const uint8_t> data) override {
    writes.push_back({offset, data.size()});
  }
  struct Access {
    Addr offset;
    size_t size;
  };
  std::vector<Access> reads, writes;

 private:
  std::string name_;
  uint8_t fill_;
};
using ProbeDevice = BusProbe<uint16_t>;

uint8_t read8(platform::PioDevice& dev, uint16_t offset) {
  uint8_t b = 0xCC;
  dev.read(offset, {&b, 1});
  return b;
}

void write8(platform::PioDevice& dev, uint16_t offset, uint8_t v) { dev.write(offset, {&v, 1}); }

}  // namespace

// [SECTION] PioBus

TEST_CASE("PioBus rejects overlapping ranges and accepts adjacent ones", "[unit][devices]") {
  platform::PioBus bus;
  ProbeDevice a("dev-a"), b("dev-b");
  bus.insert(0x100, 4, &a);  // [0x100, 0x104)

  // Overlaps: the last port, the first port, inside, around.
  REQUIRE_THROWS_AS(bus.insert(0x103, 2, &b), std::invalid_argument);
  REQUIRE_THROWS_AS(bus.insert(0x0FF, 2, &b), std::invalid_argument);
  REQUIRE_THROWS_AS(bus.insert(0x101, 1, &b), std::invalid_argument);
  REQUIRE_THROWS_AS(bus.insert(0x0F0, 0x20, &b), std::invalid_argument);
  REQUIRE_THROWS_AS(bus.insert(0x100, 4, &b), std::invalid_argument);
  REQUIRE_THROWS_WITH(bus.insert(0x102, 1, &b),
                      Catch::Contains("dev-b") && Catch::Contains("dev-a") &&
                          Catch::Contains("overlap"));

  // Adjacent on both sides.
  REQUIRE_NOTHROW(bus.insert(0x0FC, 4, &b));  // [0xFC, 0x100)
  ProbeDevice c("dev-c");
  REQUIRE_NOTHROW(bus.insert(0x104, 1, &c));  // [0x104, 0x105)

  // Each port goes to its own device with the right offset.
  uint16_t off = 0xFFFF;
  REQUIRE(bus.find(0x0FF, &off) == &b);
  REQUIRE(off == 3);
  REQUIRE(bus.find(0x100, &off) == &a);
  REQUIRE(off == 0);
  REQUIRE(bus.find(0x103, &off) == &a);
  REQUIRE(off == 3);
  REQUIRE(bus.find(0x104, &off) == &c);
  REQUIRE(off == 0);
  REQUIRE(bus.find(0x105, &off) == nullptr);
  REQUIRE(bus.find(0x0FB, &off) == nullptr);
}

TEST_CASE("MmioBus: overlap checks over 64-bit addresses, the top of the space, and routing",
          "[unit][devices]") {
  platform::MmioBus bus;
  BusProbe<uint64_t> a("mmio-a", 0x11), b("mmio-b");
  bus.insert(0xFEC0'0000, 0x1000, &a);
  REQUIRE_THROWS_WITH(bus.insert(0xFEC0'0FFF, 2, &b),
                      Catch::Contains("MmioBus") && Catch::Contains("mmio-b") &&
                          Catch::Contains("mmio-a"));
  REQUIRE_THROWS_AS(bus.insert(0xFEBF'FFFF, 2, &b), std::invalid_argument);
  REQUIRE_THROWS_AS(bus.insert(~0ull, 2, &b), std::invalid_argument);  // wraps past 2^64
  REQUIRE_THROWS_AS(bus.insert(0x1000, 0, &b), std::invalid_argument);
  REQUIRE_NOTHROW(bus.insert(~0ull - 0xFFF, 0x1000, &b));  // the last page of the space
  uint64_t off = 0;
  REQUIRE(bus.find(~0ull, &off) == &b);
  REQUIRE(off == 0xFFF);

  // Through the exit handler: a read of a claimed address gets the device's bytes, an
  // unclaimed one all ones; a claimed write reaches the device, an unclaimed one is logged.
  platform::Devices d;
  BusProbe<uint64_t> dev("test-mmio", 0x22);
  d.mmio.insert(0xD000'0000, 0x100, &dev);
  uint8_t buf[4] = {};
  platform::handle_exit(d, platform::ExitMmioRead{0xD000'0010, {buf, 4}});
  CHECK(buf[0] == 0x22);
  CHECK(buf[3] == 0x22);
  REQUIRE(dev.reads.size() == 1);
  CHECK(dev.reads[0].offset == 0x10);
  platform::handle_exit(d, platform::ExitMmioRead{0xD000'0100, {buf, 4}});
  CHECK(buf[0] == 0xFF);
  const uint8_t w[2] = {1, 2};
  platform::handle_exit(d, platform::ExitMmioWrite{0xD000'0020, {w, 2}});
  platform::handle_exit(d, platform::ExitMmioWrite{0xE000'0000, {w, 2}});
  REQUIRE(dev.writes.size() == 1);
  CHECK(dev.writes[0].offset == 0x20);
  REQUIRE(d.mmio_writes.size() == 1);
  CHECK(d.mmio_writes[0].gpa == 0xE000'0000);
}

TEST_CASE("PioBus rejects empty ranges and ranges past port 0xFFFF", "[unit][devices]") {
  platform::PioBus bus;
  ProbeDevice a("a");
  REQUIRE_THROWS_AS(bus.insert(0x10, 0, &a), std::invalid_argument);
  REQUIRE_THROWS_AS(bus.insert(0xFFFF, 2, &a), std::invalid_argument);
  REQUIRE_NOTHROW(bus.insert(0xFFFF, 1, &a));
  uint16_t off = 7;
  REQUIRE(bus.find(0xFFFF, &off) == &a);
  REQUIRE(off == 0);
}

TEST_CASE("PioBus routes accesses with offsets, unclaimed ports read as all ones",
          "[unit][devices]") {
  platform::PioBus bus;
  ProbeDevice a("a", 0x42);
  bus.insert(0x60, 8, &a);

  std::array<uint8_t, 2> buf{0, 0};
  REQUIRE(bus.read(0x65, buf));
  REQUIRE(buf == std::array<uint8_t, 2>{0x42, 0x42});
  REQUIRE(a.reads.size() == 1);
  REQUIRE(a.reads[0].offset == 5);
  REQUIRE(a.reads[0].size == 2);

  const std::array<uint8_t, 4> w{1, 2, 3, 4};
  REQUIRE(bus.write(0x67, w));
  REQUIRE(a.writes.size() == 1);
  REQUIRE(a.writes[0].offset == 7);
  REQUIRE(a.writes[0].size == 4);

  std::array<uint8_t, 4> un{0, 0, 0, 0};
  REQUIRE_FALSE(bus.read(0x68, un));
  REQUIRE(un == std::array<uint8_t, 4>{0xFF, 0xFF, 0xFF, 0xFF});
  REQUIRE_FALSE(bus.write(0x5F, w));
  REQUIRE(a.reads.size() == 1);
  REQUIRE(a.writes.size() == 1);
}

TEST_CASE("Devices wires the standard ports and refuses a device on top of them",
          "[unit][devices]") {
  platform::Devices d;
  uint16_t off = 0;
  REQUIRE(d.pio.find(0xE9, &off) == &d.debug_console);
  REQUIRE(d.pio.find(0x3F8, &off) == &d.uart);
  REQUIRE(off == 0);
  REQUIRE(d.pio.find(0x3FF, &off) == &d.uart);
  REQUIRE(off == 7);
  REQUIRE(d.pio.find(0x400, &off) == nullptr);
  REQUIRE(d.pio.find(0x3F7, &off) == nullptr);
  REQUIRE(d.pio.find(0xF4, &off) == &d.control);
  REQUIRE(d.pio.find(0xF5, &off) == nullptr);
  REQUIRE(d.pio.find(0xE8, &off) == nullptr);

  ProbeDevice extra("extra");
  REQUIRE_THROWS_WITH(d.pio.insert(0x3FC, 8, &extra), Catch::Contains("uart16550"));
  REQUIRE_THROWS_WITH(d.pio.insert(0xF0, 8, &extra), Catch::Contains("control"));
  REQUIRE_NOTHROW(d.pio.insert(0x3F0, 8, &extra));  // [0x3F0, 0x3F8): adjacent to COM1
}

// [SECTION] Debug console

TEST_CASE("Debug console: one byte of output per write, in returns 0xE9", "[unit][devices]") {
  platform::ConsoleOutput out;
  platform::DebugConsole con(out);
  REQUIRE(con.name() == "debug-console");
  const uint8_t word[2] = {'O', 'K'};
  con.write(0, word);  // a 16-bit out writes only its low byte
  write8(con, 0, '\n');
  REQUIRE(out.text() == "O\n");
  std::array<uint8_t, 4> buf{1, 2, 3, 4};
  con.read(0, buf);
  REQUIRE(buf == std::array<uint8_t, 4>{0xE9, 0, 0, 0});
}

TEST_CASE("ConsoleOutput echoes to its stream as well as keeping the text", "[unit][devices]") {
  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  platform::ConsoleOutput out;
  out.set_echo(f);
  for (char c : std::string("hi\n")) out.put(static_cast<uint8_t>(c));
  out.set_echo(nullptr);
  out.put('!');
  REQUIRE(out.text() == "hi\n!");
  std::fflush(f);
  std::rewind(f);
  char buf[16] = {};
  const size_t n = std::fread(buf, 1, sizeof buf, f);
  std::fclose(f);
  REQUIRE(std::string(buf, n) == "hi\n");
}

// [SECTION] UART 16550

TEST_CASE("UART 16550: THR output, fixed status registers", "[unit][devices]") {
  platform::ConsoleOutput out;
  platform::Uart16550 uart(out);
  REQUIRE(uart.name() == "uart16550");
  write8(uart, 0, 'A');
  write8(uart, 0, 'B');
  REQUIRE(out.text() == "AB");
  CHECK(read8(uart, 0) == 0x00);  // RBR: no receive data
  CHECK(read8(uart, 2) == 0x01);  // IIR: no interrupt pending
  CHECK(read8(uart, 5) == 0x60);  // LSR: THRE | TEMT
  CHECK(read8(uart, 6) == 0xB0);  // MSR: DCD, DSR, CTS

  // Writes to IIR/FCR, LSR and MSR change nothing.
  write8(uart, 2, 0xC7);
  write8(uart, 5, 0x00);
  write8(uart, 6, 0x00);
  CHECK(read8(uart, 2) == 0x01);
  CHECK(read8(uart, 5) == 0x60);
  CHECK(read8(uart, 6) == 0xB0);
  REQUIRE(out.text() == "AB");

  // A 2-byte read of LSR is zero-extended.
  std::array<uint8_t, 2> buf{0xAA, 0xAA};
  uart.read(5, buf);
  REQUIRE(buf == std::array<uint8_t, 2>{0x60, 0x00});
}

TEST_CASE("UART 16550: DLAB makes offsets 0/1 the divisor latch", "[unit][devices]") {
  platform::ConsoleOutput out;
  platform::Uart16550 uart(out);

  write8(uart, 1, 0xFF);           // IER: only the low 4 bits exist
  CHECK(read8(uart, 1) == 0x0F);

  write8(uart, 3, 0x83);           // LCR: DLAB | 8N1
  CHECK(read8(uart, 3) == 0x83);
  write8(uart, 0, 0x01);           // DLL (115200 baud) — no output
  write8(uart, 1, 0x02);           // DLM — not IER
  REQUIRE(out.text().empty());
  CHECK(read8(uart, 0) == 0x01);
  CHECK(read8(uart, 1) == 0x02);

  write8(uart, 3, 0x03);           // DLAB off
  CHECK(read8(uart, 3) == 0x03);
  CHECK(read8(uart, 0) == 0x00);   // RBR again
  CHECK(read8(uart, 1) == 0x0F);   // IER unchanged by the DLM write
  write8(uart, 0, 'Z');
  REQUIRE(out.text() == "Z");

  write8(uart, 3, 0x80);           // DLAB back on: the latch kept its value
  CHECK(read8(uart, 0) == 0x01);
  CHECK(read8(uart, 1) == 0x02);
}

TEST_CASE("UART 16550: scratch and modem control registers", "[unit][devices]") {
  platform::ConsoleOutput out;
  platform::Uart16550 uart(out);
  CHECK(read8(uart, 7) == 0x00);
  write8(uart, 7, 0xA5);
  CHECK(read8(uart, 7) == 0xA5);
  write8(uart, 7, 0x5A);
  CHECK(read8(uart, 7) == 0x5A);
  write8(uart, 4, 0xFF);  // MCR: 5 bits
  CHECK(read8(uart, 4) == 0x1F);
  REQUIRE(out.text().empty());
}

TEST_CASE("UART 16550 through the Devices bus at COM1", "[unit][devices]") {
  platform::Devices d;
  auto out8 = [&](uint16_t port, uint8_t v) { d.pio.write(port, std::span<const uint8_t>(&v, 1)); };
  auto in8 = [&](uint16_t port) {
    uint8_t v = 0;
    d.pio.read(port, {&v, 1});
    return v;
  };
  out8(0x3FB, 0x80);
  out8(0x3F8, 0x0C);  // divisor 12 (9600 baud)
  out8(0x3FB, 0x03);
  out8(0x3F8, 'k');
  out8(0x3FF, 0x77);
  CHECK(in8(0x3FD) == 0x60);
  CHECK(in8(0x3FA) == 0x01);
  CHECK(in8(0x3FF) == 0x77);
  REQUIRE(d.console.text() == "k");
}

// [SECTION] Control port

TEST_CASE("ControlPort: 1-, 2- and 4-byte writes set the exit code", "[unit][devices]") {
  platform::ControlPort ctl;
  REQUIRE(ctl.name() == "control");
  REQUIRE_FALSE(ctl.exit_code().has_value());

  const uint8_t b1[1] = {0x07};
  ctl.write(0, b1);
  REQUIRE(ctl.exit_code() == 7u);

  const uint8_t b2[2] = {0x34, 0x12};
  ctl.write(0, b2);
  REQUIRE(ctl.exit_code() == 0x1234u);

  const uint8_t b4[4] = {0x78, 0x56, 0x34, 0x12};
  ctl.write(0, b4);
  REQUIRE(ctl.exit_code() == 0x12345678u);

  const uint8_t zero[1] = {0};
  ctl.write(0, zero);
  REQUIRE(ctl.exit_code().has_value());
  REQUIRE(*ctl.exit_code() == 0u);

  std::array<uint8_t, 4> buf{9, 9, 9, 9};
  ctl.read(0, buf);
  REQUIRE(buf == std::array<uint8_t, 4>{0, 0, 0, 0});
}
