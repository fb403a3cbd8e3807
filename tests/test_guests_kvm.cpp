// Real-KVM tests: each teaching guest runs under KVM and its exit sequence (reason, RIP, CPL,
// mode, instruction, port, data), console output and final registers must match the golden
// trace in tests/golden/NAME.golden. Regenerate after an intended change with
//   cmake --build build --target rebase-goldens
// (or TRAPSCOPE_REBASE=1 build/tests/trapscope_tests "[golden]") and review the diff.
#include <catch2/catch.hpp>

#include <cinttypes>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "guests/guest_catalog.hpp"
#include "tests/support.hpp"
#include "trace/printer.hpp"
#include "vmm/kvm_machine.hpp"

namespace {

using namespace trapscope;

std::string escaped(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') out += "\\n";
    else if (c == '\\') out += "\\\\";
    else if (c >= 0x20 && c < 0x7f) out += c;
    else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", static_cast<unsigned char>(c));
      out += b;
    }
  }
  return out;
}

// Runs a built-in guest under KVM and renders what the golden file holds.
std::string golden_text(const std::string& name, vmm::RunResult* result = nullptr) {
  auto guest = guests::find(name);
  REQUIRE(guest);
  vmm::MachineConfig cfg;
  cfg.mode = *platform::parse_boot_mode(guest->mode);
  vmm::KvmMachine machine(cfg);
  machine.load(guest->image);
  trace::Recorder rec;
  vmm::RunResult r = machine.run({30.0, 100000}, &rec);
  if (result) *result = r;

  std::ostringstream out;
  out << "# golden trace of `trapscope run " << name
      << "` (regenerate: cmake --build build --target rebase-goldens)\n";
  trace::EventFormatter fmt({trace::Format::kText, /*timing=*/false});
  for (size_t i = 0; i < rec.size(); ++i) out << fmt.format(rec.at(i)) << "\n";
  out << "console: \"" << escaped(machine.devices().console.text()) << "\"\n";
  char regs[512];
  const kvm_regs& g = r.regs;
  const kvm_sregs& s = r.sregs;
  std::snprintf(regs, sizeof regs,
                "final: rip=%llx rsp=%llx rflags=%llx rax=%llx rbx=%llx rcx=%llx rdx=%llx "
                "rsi=%llx rdi=%llx\nfinal: cr0=%llx cr3=%llx cr4=%llx efer=%llx cs=%x ss=%x "
                "cpl=%u\n",
                (unsigned long long)g.rip, (unsigned long long)g.rsp,
                (unsigned long long)g.rflags, (unsigned long long)g.rax,
                (unsigned long long)g.rbx, (unsigned long long)g.rcx,
                (unsigned long long)g.rdx, (unsigned long long)g.rsi,
                (unsigned long long)g.rdi, (unsigned long long)s.cr0,
                (unsigned long long)s.cr3, (unsigned long long)s.cr4,
                (unsigned long long)s.efer, s.cs.selector, s.ss.selector,
                (s.cr0 & 1) ? s.cs.selector & 3u : 0u);
  out << regs;
  return out.str();
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The first line that differs, for a readable failure.
std::string first_difference(const std::string& want, const std::string& got) {
  std::istringstream a(want), b(got);
  std::string la, lb;
  for (int line = 1;; ++line) {
    const bool ea = !std::getline(a, la), eb = !std::getline(b, lb);
    if (ea && eb) return "";
    if (ea || eb || la != lb) {
      return "line " + std::to_string(line) + ":\n  golden: " + (ea ? "<end>" : la) +
             "\n  actual: " + (eb ? "<end>" : lb);
    }
  }
}

void check_golden(const std::string& name) {
  REQUIRE_KVM_OR_SKIP();
  const std::string path = std::string(TRAPSCOPE_GOLDEN_DIR) + "/" + name + ".golden";
  const std::string got = golden_text(name);
  if (std::getenv("TRAPSCOPE_REBASE")) {
    std::ofstream(path) << got;
    WARN("rebased " << path);
    return;
  }
  const std::string want = read_text(path);
  INFO("golden file " << path << " (rebase: cmake --build build --target rebase-goldens)");
  INFO(first_difference(want, got));
  REQUIRE(!want.empty());
  REQUIRE(got == want);
}

}  // namespace

TEST_CASE("hello: port writes then halt, as in the golden trace", "[kvm][golden]") {
  check_golden("hello");
}
TEST_CASE("long-hello: UART polling and writes in long mode, as in the golden trace",
          "[kvm][golden]") {
  check_golden("long-hello");
}
TEST_CASE("boot: real -> protected -> long mode, as in the golden trace", "[kvm][golden]") {
  check_golden("boot");
}
TEST_CASE("rings: traps from CPL 3 handled at CPL 0, as in the golden trace", "[kvm][golden]") {
  check_golden("rings");
}

TEST_CASE("paging: demand paging, PTE changes and CR3 switches, as in the golden trace",
          "[kvm][golden]") {
  check_golden("paging");
}

TEST_CASE("teaching guests end the way they should", "[kvm][guests]") {
  REQUIRE_KVM_OR_SKIP();
  vmm::RunResult r;
  SECTION("hello halts after writing its message") {
    golden_text("hello", &r);
    CHECK(r.reason == trace::RunEndReason::kHalted);
  }
  SECTION("boot ends in 64-bit long mode") {
    golden_text("boot", &r);
    CHECK(r.reason == trace::RunEndReason::kHalted);
    CHECK((r.sregs.efer & 0x400) != 0);  // EFER.LMA
    CHECK(r.sregs.cs.l == 1);
  }
  SECTION("paging reports success through the control port") {
    golden_text("paging", &r);
    CHECK(r.reason == trace::RunEndReason::kGuestExit);
    CHECK(r.exit_code == 0);
  }
  SECTION("rings reports success through the control port") {
    const std::string text = golden_text("rings", &r);
    CHECK(r.reason == trace::RunEndReason::kGuestExit);
    CHECK(r.exit_code == 0);
    CHECK(text.find("trap: vector=14 (#PF) error=0x4 from CPL 3") != std::string::npos);
  }
}
