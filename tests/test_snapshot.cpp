// Snapshot files (snapshot/format.hpp) and restoring them on either engine (snapshot/machine.hpp):
// the file round trip, bad input, and save → file → restore on the same engine, on each
// simulator technique and across engines, each checked against the run that was not
// interrupted by the co-simulation check (backend/cosim.hpp compare_machines: exits from the
// point on, run end, console, registers, memory).
#include <catch2/catch.hpp>

#include <cstring>

#include "backend/cosim.hpp"
#include "guests/guest_catalog.hpp"
#include "snapshot/machine.hpp"
#include "support.hpp"

using namespace trapscope;

namespace {

using backend::Kind;
using sim::virt::Technique;

std::unique_ptr<backend::Backend> machine(Kind kind, const std::string& guest,
                                          Technique t = Technique::kEmulation,
                                          bool load = true) {
  const auto g = guests::find(guest);
  REQUIRE(g);
  backend::Config c;
  c.mode = *platform::parse_boot_mode(g->mode);
  c.technique = t;
  auto m = backend::make_backend(kind, c);
  if (load) m->load(g->image);
  return m;
}

// Where a test takes its snapshot: after `exits` VM exits, or `insns` instructions (simulator).
struct Point {
  uint64_t exits = 0, insns = 0;
};

backend::RunOutcome run_to(backend::Backend& m, Point p) {
  backend::StopCondition s;
  s.max_exits = p.exits;
  s.max_instructions = p.insns;
  const auto r = m.run(s, nullptr);
  REQUIRE(r.reason == (p.insns ? trace::RunEndReason::kInstructionLimit
                               : trace::RunEndReason::kExitLimit));
  return r;
}

// Takes the snapshot on `from` at `p`, through the file's bytes.
snapshot::File take(Kind from, const std::string& guest, Point p, Technique t = Technique::kEmulation) {
  auto m = machine(from, guest, t);
  run_to(*m, p);
  snapshot::Metadata meta;
  meta.guest = guest;
  meta.technique = std::string(sim::virt::to_string(t));
  meta.paging = "native";
  const auto bytes = snapshot::encode(snapshot::capture(*m, meta));
  return snapshot::decode(bytes);
}

// Restores `f` on `to` under `t` and checks that the run goes on as the run on `to` under `t`
// that was not interrupted (a technique may differ from native: rings under trap-emulate sees
// its real CPL — so the reference is the restoring engine's and technique's own run).
void check_restore(const snapshot::File& f, const std::string& guest, Point p, Kind to,
                   Technique t = Technique::kEmulation) {
  auto reference = machine(to, guest, t);
  run_to(*reference, p);
  auto restored = machine(to, guest, t, /*load=*/false);
  snapshot::apply(f, *restored);
  const auto res = backend::compare_machines(std::move(reference), "uninterrupted",
                                             std::move(restored), "restored", {60.0, 0, 0});
  INFO(guest << " at exit " << p.exits << " insn " << p.insns << " → "
             << backend::to_string(to) << "/" << sim::virt::to_string(t) << ": " << res.report);
  CHECK(res.equal);
}

// The first VM exit after the first exception the guest takes: inside its handler (which
// prints, so that exit is a port write from the handler).
uint64_t first_exit_in_handler(const std::string& guest) {
  auto m = machine(Kind::kSim, guest);
  trace::Recorder rec;
  m->run({}, &rec);
  bool in_handler = false;
  uint64_t exits = 0;
  for (size_t i = 0; i < rec.size(); ++i) {
    const auto& h = rec.at(i);
    if (h.type == trace::EventType::kException) in_handler = true;
    if (h.type == trace::EventType::kVmExit) {
      ++exits;
      if (in_handler) return exits;
    }
  }
  FAIL("no VM exit after an exception in " << guest);
  return 0;
}

// The points of the tests: mid-loop (hello prints in a loop; compute is one loop), in real mode
// before the switch (boot's first report), inside an exception handler (rings, paging).
struct Case {
  const char* guest;
  Point point;
};
std::vector<Case> cases() {
  return {{"hello", {5, 0}},
          {"boot", {2, 0}},
          {"rings", {first_exit_in_handler("rings"), 0}},
          {"paging", {first_exit_in_handler("paging"), 0}},
          {"long-hello", {7, 0}},
          {"pv-hello", {1, 0}}};
}

}  // namespace

TEST_CASE("snapshot file: round trip keeps registers, devices and memory", "[snapshot]") {
  auto m = machine(Kind::kSim, "hello");
  run_to(*m, {5, 0});
  const backend::Snapshot direct = m->snapshot();
  snapshot::Metadata meta;
  meta.guest = "hello";
  meta.point = "exit:5";
  const auto bytes = snapshot::encode(snapshot::capture(*m, meta));
  const snapshot::File f = snapshot::decode(bytes);
  CHECK(f.state.registers == direct.registers);
  CHECK(f.state.devices.console == direct.devices.console);
  CHECK(f.state.devices.console == "Hello");  // hello.asm writes its message byte by byte
  CHECK(f.meta.engine == "sim");
  CHECK(f.meta.point == "exit:5");
  CHECK(f.meta.memory_bytes == direct.memory.size());
  std::vector<uint8_t> mem(f.memory.bytes);
  f.memory.copy_to(mem);
  CHECK(mem == direct.memory);
  // Zero pages are left out: a 16 MiB machine with a small guest is a small file.
  CHECK(f.memory.pages.size() < 16);
  CHECK(bytes.size() < 64 * 1024);
  CHECK_FALSE(f.state.fpu);
  CHECK_FALSE(f.state.events);
}

TEST_CASE("snapshot file: bad input is refused with the offset and the field", "[snapshot]") {
  auto m = machine(Kind::kSim, "hello");
  run_to(*m, {3, 0});
  const auto good = snapshot::encode(snapshot::capture(*m, {}));
  const auto refused = [](std::vector<uint8_t> b, const std::string& field) {
    try {
      snapshot::decode(b, {64ull << 20});
      FAIL("accepted");
    } catch (const snapshot::FormatError& e) {
      INFO(e.what());
      if (!field.empty()) CHECK(e.field() == field);
      CHECK(std::string(e.what()).rfind("byte " + std::to_string(e.offset()), 0) == 0);
    }
  };
  SECTION("every truncation") {
    for (size_t n = 0; n < good.size(); n += std::max<size_t>(1, good.size() / 97)) {
      refused({good.begin(), good.begin() + n},
              n < 8 ? "header.magic" : n < 32 ? "" : "header.file_bytes");
    }
  }
  SECTION("a changed byte anywhere is caught by the CRC") {
    for (size_t at = 32; at < good.size(); at += 61) {
      auto b = good;
      b[at] ^= 0x40;
      refused(b, "END .crc32");
    }
  }
  SECTION("a foreign file") { refused({'\x7f', 'E', 'L', 'F', 2, 1, 1, 0, 0}, "header.magic"); }
  SECTION("another major version") {
    auto b = good;
    b[8] = 2;
    refused(b, "header.version_major");
  }
  SECTION("a memory size beyond the reader's limit") {
    snapshot::File f;
    f.meta.engine = "sim";
    f.meta.memory_bytes = f.memory.bytes = 128ull << 20;
    refused(snapshot::encode(f), "MEM .memory_bytes");
  }
}

TEST_CASE("snapshot: a machine of another memory size refuses the file", "[snapshot]") {
  const auto f = take(Kind::kSim, "hello", {3, 0});
  backend::Config c;
  c.memory_bytes = 32ull << 20;
  auto m = backend::make_backend(Kind::kSim, c);
  CHECK_THROWS_AS(snapshot::apply(f, *m), snapshot::RestoreError);
}

TEST_CASE("snapshot: save and restore on the simulator, every technique", "[snapshot][sim]") {
  for (const Case& c : cases()) {
    const auto f = take(Kind::kSim, c.guest, c.point);
    for (const Technique t : {Technique::kEmulation, Technique::kTrapEmulate, Technique::kVt,
                              Technique::kBt, Technique::kPv}) {
      check_restore(f, c.guest, c.point, Kind::kSim, t);
    }
  }
  // Mid-loop by instruction count (compute is one integer loop) and in real mode.
  const Point p{0, 12345};
  check_restore(take(Kind::kSim, "compute", p), "compute", p, Kind::kSim);
  check_restore(take(Kind::kSim, "compute", p, Technique::kBt), "compute", p, Kind::kSim,
                Technique::kBt);
}

TEST_CASE("snapshot: save and restore on KVM", "[snapshot][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  for (const Case& c : cases()) {
    check_restore(take(Kind::kKvm, c.guest, c.point), c.guest, c.point, Kind::kKvm);
  }
}

TEST_CASE("snapshot: KVM → simulator under every technique, simulator → KVM",
          "[snapshot][kvm][sim]") {
  REQUIRE_KVM_OR_SKIP();
  for (const Case& c : cases()) {
    const auto from_kvm = take(Kind::kKvm, c.guest, c.point);
    CHECK(from_kvm.state.fpu);
    CHECK(from_kvm.state.events);
    for (const Technique t : {Technique::kEmulation, Technique::kTrapEmulate, Technique::kVt,
                              Technique::kBt, Technique::kPv}) {
      check_restore(from_kvm, c.guest, c.point, Kind::kSim, t);
    }
    check_restore(take(Kind::kSim, c.guest, c.point), c.guest, c.point, Kind::kKvm);
  }
}

TEST_CASE("snapshot: the simulator refuses a pending event it cannot deliver", "[snapshot]") {
  auto f = take(Kind::kSim, "hello", {2, 0});
  f.state.events = x86::PendingEvents{};
  f.state.events->exception_injected = true;
  f.state.events->exception_vector = 13;
  auto m = machine(Kind::kSim, "hello", Technique::kEmulation, false);
  CHECK_THROWS_AS(snapshot::apply(f, *m), snapshot::RestoreError);
}

TEST_CASE("snapshot file: every device's state makes the round trip", "[snapshot]") {
  auto f = take(Kind::kSim, "hello", {2, 0});
  auto& d = f.state.devices;
  d.console = "He";
  d.console_dropped = 7;
  d.uart = {1, 2, 3, 4, 5, 6};
  d.exit_code = 42;
  d.mmio_writes = {{0x1234567, 4, 0xDEADBEEF}, {0xFEE00000, 1, 0x5}};
  d.mmio_writes_dropped = 3;
  d.hypercall_shared_info = 0x9000;
  const snapshot::File g = snapshot::decode(snapshot::encode(f));
  const auto& e = g.state.devices;
  CHECK(e.console == d.console);
  CHECK(e.console_dropped == 7);
  CHECK(e.uart.ier == 1);
  CHECK(e.uart.dlm == 6);
  CHECK(e.exit_code == std::optional<uint32_t>(42));
  REQUIRE(e.mmio_writes.size() == 2);
  CHECK(e.mmio_writes[0].gpa == 0x1234567);
  CHECK(e.mmio_writes[0].data == 0xDEADBEEF);
  CHECK(e.mmio_writes[1].len == 1);
  CHECK(e.mmio_writes_dropped == 3);
  CHECK(e.hypercall_shared_info == 0x9000);
  // ... and into a machine's devices.
  auto m = machine(Kind::kSim, "hello", Technique::kEmulation, false);
  snapshot::apply(g, *m);
  CHECK(m->devices().hypercall.shared_info_gpa() == 0x9000);
  CHECK(m->devices().control.exit_code() == std::optional<uint32_t>(42));
}

TEST_CASE("snapshot commands: save, info, restore, and bad input exits 2 naming the place",
          "[snapshot][cli]") {
  const std::string file = test::temp_path("hello.snap");
  auto r = test::run_trapscope({"run", "hello", "--backend", "sim", "--save-at", "exit:3",
                                "--save", file, "--no-timing"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("run end: guest halted at rip=0x800f after 31 VM exits") != std::string::npos);
  r = test::run_trapscope({"snapshot", "info", file});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("point:        exit:3") != std::string::npos);
  CHECK(r.out.find("not captured: FPU/SSE") != std::string::npos);
  r = test::run_trapscope({"restore", file, "-q"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("lo from a real-mode guest!") != std::string::npos);

  const auto good = test::read_file(file);
  const auto refused = [&](std::vector<unsigned char> bytes, const std::string& says) {
    const std::string bad = test::temp_path("bad.snap");
    test::write_file(bad, bytes);
    for (const char* cmd : {"restore", "info"}) {
      const auto x = std::string(cmd) == "info" ? test::run_trapscope({"snapshot", "info", bad})
                                                : test::run_trapscope({"restore", bad});
      INFO(cmd << ": " << x.err);
      CHECK(x.exit_code == 2);
      CHECK(x.err.find("byte ") != std::string::npos);
      CHECK(x.err.find(says) != std::string::npos);
    }
  };
  refused({good.begin(), good.begin() + 100}, "(header.file_bytes): the header says");
  auto corrupt = good;
  corrupt[40] ^= 1;
  refused(corrupt, "(END .crc32)");
  refused(test::read_file(TRAPSCOPE_GUEST_DIR "/hello.bin"), "not a trapscope snapshot");
  auto version = good;
  version[8] = 7;
  refused(version, "(header.version_major): format version 7.0");

  r = test::run_trapscope({"restore", file, "--mem", "32"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("does not fit --mem 32") != std::string::npos);
  r = test::run_trapscope({"run", "hello", "--backend", "kvm", "--save-at", "insn:5", "--save", file});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("insn:N needs --backend sim") != std::string::npos);
  r = test::run_trapscope({"run", "hello", "--backend", "sim", "--save-at", "exit:1000", "--save",
                           test::temp_path("never.snap"), "-q"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("nothing saved") != std::string::npos);
  r = test::run_trapscope({"run", "hello", "--backend", "sim", "--save-at", "exit:x", "--save", file});
  CHECK(r.exit_code == 2);
}
