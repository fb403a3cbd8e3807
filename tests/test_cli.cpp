// The `trapscope` command as a user runs it: exit codes, messages, bad input, trace files.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "tests/support.hpp"

using trapscope::test::read_file;
using trapscope::test::run_trapscope;
using trapscope::test::temp_path;
using trapscope::test::write_file;

TEST_CASE("every command has --help", "[cli]") {
  for (const char* cmd : {"run", "show", "doctor", "guests", "classify", "demo"}) {
    auto r = run_trapscope({cmd, "--help"});
    INFO(cmd << ": " << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("Usage") != std::string::npos);
  }
  auto r = run_trapscope({"--help"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("Exit status") != std::string::npos);
}

TEST_CASE("usage errors exit with 2", "[cli]") {
  CHECK(run_trapscope({}).exit_code == 2);
  CHECK(run_trapscope({"frobnicate"}).exit_code == 2);
  CHECK(run_trapscope({"run"}).exit_code == 2);
  CHECK(run_trapscope({"run", "hello", "--mode", "weird"}).exit_code == 2);
  CHECK(run_trapscope({"run", "hello", "--mem", "0"}).exit_code == 2);
  CHECK(run_trapscope({"run", "hello", "--format", "xml"}).exit_code == 2);
}

TEST_CASE("guests lists the teaching guests", "[cli]") {
  auto r = run_trapscope({"guests"});
  CHECK(r.exit_code == 0);
  for (const char* g : {"hello", "long-hello", "boot", "rings"}) {
    CHECK(r.out.find(g) != std::string::npos);
  }
}

TEST_CASE("bad guest files get a clear error and exit 2", "[cli][bad-input]") {
  SECTION("missing file") {
    auto r = run_trapscope({"run", "/nonexistent/guest.bin"});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("No such file"));
  }
  SECTION("unknown built-in name") {
    auto r = run_trapscope({"run", "no-such-guest"});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("built-in guests: hello"));
  }
  SECTION("empty file") {
    const auto path = temp_path("empty.bin");
    write_file(path, {});
    auto r = run_trapscope({"run", path});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("empty"));
  }
  SECTION("a directory") {
    auto r = run_trapscope({"run", "/tmp/"});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("not a regular file"));
  }
  SECTION("file larger than guest memory") {
    const auto path = temp_path("big.bin");
    write_file(path, std::vector<unsigned char>((1 << 20) + 1, 0x90));
    auto r = run_trapscope({"run", path, "--mem", "1"});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("larger than guest memory"));
  }
  SECTION("image that does not fit above the load address") {
    const auto path = temp_path("fits-not.bin");
    write_file(path, std::vector<unsigned char>((1 << 20) - 0x100, 0x90));
    auto r = run_trapscope({"run", path, "--mem", "1"});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("does not fit"));
  }
  SECTION("load address over the VMM's page tables in long mode") {
    auto r = run_trapscope({"run", "long-hello", "--load", "0x1000"});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("overlaps the VMM's GDT and page tables"));
  }
}

TEST_CASE("run ends with a reason and the documented exit code", "[cli][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  SECTION("halt: 0") {
    auto r = run_trapscope({"run", "hello"});
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("Hello from a real-mode guest!"));
    CHECK_THAT(r.out, Catch::Contains("run ended: guest halted after 31 VM exits"));
  }
  SECTION("guest exit code 0: 0, non-zero: 1") {
    const auto ok = temp_path("exit0.bin");
    write_file(ok, {0xB0, 0x00, 0xE6, 0xF4, 0xF4});  // mov al, 0; out 0xF4, al; hlt
    auto r = run_trapscope({"run", ok, "-q"});
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("run ended: guest exit code 0"));
    const auto bad = temp_path("exit9.bin");
    write_file(bad, {0xB0, 0x09, 0xE6, 0xF4, 0xF4});  // mov al, 9; out 0xF4, al; hlt
    r = run_trapscope({"run", bad, "-q"});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.out, Catch::Contains("run ended: guest exit code 9"));
  }
  SECTION("a guest that never exits is stopped by the time limit: 4") {
    const auto loop = temp_path("loop.bin");
    write_file(loop, {0xEB, 0xFE});  // jmp $
    auto r = run_trapscope({"run", loop, "--timeout", "0.5"}, 20);
    CHECK(r.exit_code == 4);
    CHECK_THAT(r.out, Catch::Contains("run ended: time limit"));
  }
  SECTION("a guest that never stops exiting is stopped by --max-exits: 4") {
    const auto loop = temp_path("outloop.bin");
    write_file(loop, {0xE6, 0x80, 0xEB, 0xFC});  // l: out 0x80, al; jmp l
    auto r = run_trapscope({"run", loop, "--max-exits", "25"}, 20);
    CHECK(r.exit_code == 4);
    CHECK_THAT(r.out, Catch::Contains("run ended: exit-count limit after 25 VM exits"));
  }
  SECTION("triple fault: 3, with the vCPU state") {
    const auto tf = temp_path("triple.bin");
    // long mode, no IDT: ud2 -> #UD cannot be delivered -> #DF -> triple fault
    write_file(tf, {0x0F, 0x0B});
    auto r = run_trapscope({"run", tf, "--mode", "long"});
    CHECK(r.exit_code == 3);
    CHECK_THAT(r.out, Catch::Contains("triple fault"));
    CHECK_THAT(r.out, Catch::Contains("vCPU: rip="));
  }
  SECTION("stats table in perf kvm stat's columns") {
    auto r = run_trapscope({"run", "long-hello", "-q", "--stats"});
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("VM-EXIT"));
    CHECK_THAT(r.out, Catch::Contains("Samples%"));
    CHECK_THAT(r.out, Catch::Contains("IO(2)"));
    CHECK_THAT(r.out, Catch::Contains("HLT(5)"));
  }
}

TEST_CASE("jsonl output is one JSON object per event", "[cli][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  auto r = run_trapscope({"run", "hello", "--format", "jsonl"});
  REQUIRE(r.exit_code == 0);
  std::istringstream lines(r.out);
  std::string line;
  int n = 0;
  nlohmann::json last;
  while (std::getline(lines, line)) {
    last = nlohmann::json::parse(line);  // throws (fails the test) on a non-JSON line
    if (n == 0) {
      CHECK(last["reason"] == "IO");
      CHECK(last["io"]["port"] == 0xE9);
      CHECK(last["io"]["value"] == 'H');
      CHECK(last["disasm"] == "out dx, al");
      CHECK(last["cpl"] == 0);
    }
    ++n;
  }
  CHECK(n == 32);  // 30 characters, hlt, run end
  CHECK(last["type"] == "run_end");
  CHECK(last["reason"] == "guest halted");
  CHECK_THAT(r.err, Catch::Contains("Hello from a real-mode guest!"));
}

TEST_CASE("run --trace then show prints the same events", "[cli][kvm][trace]") {
  REQUIRE_KVM_OR_SKIP();
  const auto path = temp_path("hello.trace");
  auto run = run_trapscope({"run", "hello", "--no-timing", "--trace", path});
  REQUIRE(run.exit_code == 0);
  auto show = run_trapscope({"show", path, "--no-timing"});
  REQUIRE(show.exit_code == 0);
  // The event lines of `run` are exactly the lines of `show` after its header line.
  const std::string events = run.out.substr(0, run.out.find("--- guest console"));
  const std::string shown = show.out.substr(show.out.find('\n') + 1);
  CHECK(shown == events);
  CHECK_THAT(show.out, Catch::Contains("# trace of hello (real mode"));

  SECTION("a truncated trace is rejected with a clear error") {
    auto bytes = read_file(path);
    bytes.resize(bytes.size() - 30);
    const auto cut = temp_path("cut.trace");
    write_file(cut, bytes);
    auto r = run_trapscope({"show", cut});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("truncated"));
  }
  SECTION("a corrupted trace is rejected with a clear error") {
    auto bytes = read_file(path);
    bytes[bytes.size() / 2] ^= 0x5A;
    const auto bad = temp_path("bad.trace");
    write_file(bad, bytes);
    auto r = run_trapscope({"show", bad});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("corrupt"));
  }
  SECTION("a file that is not a trace") {
    const auto other = temp_path("other.trace");
    write_file(other, {'h', 'e', 'l', 'l', 'o'});
    auto r = run_trapscope({"show", other});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("not a trapscope trace file"));
  }
}

TEST_CASE("random bytes as a guest end with a reason, never a crash or hang", "[cli][kvm][bad-input]") {
  REQUIRE_KVM_OR_SKIP();
  std::mt19937 rng(20261122);
  const char* modes[] = {"real", "protected", "long"};
  for (int i = 0; i < 18; ++i) {
    std::vector<unsigned char> bytes(256 + rng() % 4096);
    for (auto& b : bytes) b = static_cast<unsigned char>(rng());
    const auto path = temp_path("random.bin");
    write_file(path, bytes);
    const char* mode = modes[i % 3];
    auto r = run_trapscope({"run", path, "--mode", mode, "-q", "--timeout", "1"}, 30);
    INFO("seed index " << i << " mode " << mode << "\n" << r.out << r.err);
    CHECK((r.exit_code == 0 || r.exit_code == 1 || r.exit_code == 3 || r.exit_code == 4));
    CHECK_THAT(r.out, Catch::Contains("run ended: "));
  }
}

TEST_CASE("random bytes on the simulator end with a reason, never a crash or hang",
          "[cli][sim][bad-input]") {
  std::mt19937 rng(20261123);
  const char* modes[] = {"real", "protected", "long"};
  for (int i = 0; i < 30; ++i) {
    std::vector<unsigned char> bytes(64 + rng() % 4096);
    for (auto& b : bytes) b = static_cast<unsigned char>(rng());
    const auto path = temp_path("random-sim.bin");
    write_file(path, bytes);
    const char* mode = modes[i % 3];
    auto r = run_trapscope({"run", path, "--backend", "sim", "--mode", mode, "-q", "--timeout",
                            "2", "--max-instructions", "200000"},
                           30);
    INFO("seed index " << i << " mode " << mode << "\n" << r.out << r.err);
    CHECK((r.exit_code == 0 || r.exit_code == 1 || r.exit_code == 3 || r.exit_code == 4));
    CHECK_THAT(r.out, Catch::Contains("run ended: "));
  }
}

TEST_CASE("an instruction outside the simulator's subset stops the run with its disassembly",
          "[cli][sim]") {
  const auto path = temp_path("sse.bin");
  write_file(path, {0x66, 0x0F, 0xEF, 0xC0, 0xF4});  // pxor xmm0, xmm0; hlt
  auto r = run_trapscope({"run", path, "--backend", "sim", "-q"});
  CHECK(r.exit_code == 3);
  CHECK_THAT(r.out, Catch::Contains("unsupported: pxor xmm0, xmm0 at 0x8000"));
}
