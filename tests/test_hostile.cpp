// The hostile-guest suite: guests written to attack a device or a hypercall
// (tests/hostile/*.asm, assembled at build time: tests/CMakeLists.txt [hostile]) run on KVM and
// on the simulator under every technique and memory virtualization. Every run must
//   - end with the reason in the table (a named run end: no exception, no crash);
//   - give the guest the documented answers (the guest checks them itself and writes the number
//     of the first check that failed as its exit code; all passed: exit code 0 and "NAME: ok");
//   - change no guest RAM outside what the guest may write (hostile.inc: its scratch area, its
//     stack and the last page of RAM), and nothing outside guest RAM: on KVM guest RAM lies
//     between guard pages (vmm/guest_memory.hpp), so a stray host write faults and kills this test;
//     on the simulator the ASan build (CI's second ctest) reports it.
//
// To add a hostile guest: write tests/hostile/NAME.asm (%include "hostile.inc") and add a row
// to kHostileGuests below. A .asm without a row fails "every hostile guest has a row".
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "support.hpp"
#include "vmm/guest_memory.hpp"

using namespace trapscope;

namespace {

using trace::RunEndReason;

struct HostileGuest {
  const char* name;          // tests/hostile/NAME.asm
  RunEndReason end;          // how every run of it must end
  uint32_t exit_code;        // for kGuestExit (0: every check passed)
  const char* console;       // the whole console output
};

// Every guest is entered in long mode with kRamBytes of RAM (hostile.inc: RAM_END).
const HostileGuest kHostileGuests[] = {
    {"hc-mmu-toctou", RunEndReason::kGuestExit, 0, "hc-mmu-toctou: ok\n"},
    {"hc-mmu-bounds", RunEndReason::kGuestExit, 0, "hc-mmu-bounds: ok\n"},
    {"hc-console", RunEndReason::kGuestExit, 0,
     "console_write\nend\nonsole_write\nhc-console: ok\n"},
    {"hc-pages", RunEndReason::kHalted, 0, "hc-pages: ok\n"},
    {"io-ports", RunEndReason::kGuestExit, 0, "io-ports: ok\n"},
    {"mem-past-ram", RunEndReason::kTripleFault, 0, "mem-past-ram: ok\n"},
};

constexpr uint64_t kRamBytes = 16ull << 20;
// What a hostile guest may write (hostile.inc): the VMM's page tables (accessed and dirty bits)
// and its stack below the load address, its scratch area, the last page of RAM.
struct Range {
  uint64_t begin, end;
};
constexpr Range kWritable[] = {
    {platform::kPml4Address, platform::kDefaultLoadAddress},
    {0x20000, 0x40000},
    {kRamBytes - 4096, kRamBytes},
};

std::vector<uint8_t> hostile_image(const std::string& name) {
  return test::read_file(std::string(TRAPSCOPE_HOSTILE_DIR) + "/" + name + ".bin");
}

// The first byte outside kWritable (sorted, disjoint) that differs, or -1.
int64_t first_change(std::span<const uint8_t> before, std::span<const uint8_t> after) {
  REQUIRE(before.size() == after.size());
  uint64_t from = 0;
  auto compare = [&](uint64_t to) -> int64_t {
    if (std::memcmp(before.data() + from, after.data() + from, to - from) != 0) {
      for (uint64_t i = from; i < to; ++i) {
        if (before[i] != after[i]) return static_cast<int64_t>(i);
      }
    }
    return -1;
  };
  for (const Range& r : kWritable) {
    if (const int64_t at = compare(r.begin); at >= 0) return at;
    from = r.end;
  }
  return compare(before.size());
}

struct Engine {
  backend::Kind kind;
  sim::virt::Technique technique = sim::virt::Technique::kEmulation;
  sim::VmmPaging paging = sim::VmmPaging::kNative;
  std::string name() const {
    if (kind == backend::Kind::kKvm) return "kvm";
    return "sim " + std::string(sim::virt::to_string(technique)) + " " +
           std::string(sim::to_string(paging));
  }
};

void run_hostile(const HostileGuest& g, const Engine& e) {
  INFO("guest " << g.name << " on " << e.name());
  const std::vector<uint8_t> image = hostile_image(g.name);
  REQUIRE(!image.empty());
  backend::Config cfg;
  cfg.memory_bytes = kRamBytes;
  cfg.mode = platform::BootMode::kLong;
  cfg.technique = e.technique;
  cfg.paging = e.paging;
  auto m = backend::make_backend(e.kind, cfg);
  m->load(image);
  const std::vector<uint8_t> before(m->memory().begin(), m->memory().end());
  backend::RunOutcome r;
  try {
    r = m->run({30.0, 0, 0}, nullptr);
  } catch (const std::exception& ex) {
    FAIL("the run threw: " << ex.what());
  }
  INFO("ended: " << trace::to_string(r.reason) << " " << r.detail);
  CHECK(r.reason == g.end);
  if (g.end == RunEndReason::kGuestExit) CHECK(r.exit_code == g.exit_code);
  CHECK(m->devices().console.text() == g.console);
  CHECK(first_change(before, m->memory()) == -1);
  // Stores past RAM are MMIO: recorded, never applied to RAM.
  for (const platform::MmioWrite& w : m->devices().mmio_writes) CHECK(w.gpa >= kRamBytes);
}

void run_all(const Engine& e) {
  for (const HostileGuest& g : kHostileGuests) run_hostile(g, e);
}

std::vector<Engine> sim_engines(sim::virt::Technique t) {
  std::vector<Engine> v;
  for (auto p : {sim::VmmPaging::kNative, sim::VmmPaging::kShadow, sim::VmmPaging::kEpt}) {
    v.push_back({backend::Kind::kSim, t, p});
  }
  return v;
}

}  // namespace

TEST_CASE("hostile: every hostile guest has a row and a binary", "[hostile]") {
  std::set<std::string> sources, rows;
  for (const auto& f :
       std::filesystem::directory_iterator(std::string(TRAPSCOPE_SOURCE_DIR) + "/tests/hostile")) {
    if (f.path().extension() == ".asm") sources.insert(f.path().stem().string());
  }
  for (const HostileGuest& g : kHostileGuests) {
    rows.insert(g.name);
    INFO(g.name);
    CHECK(std::filesystem::exists(std::string(TRAPSCOPE_HOSTILE_DIR) + "/" + g.name + ".bin"));
  }
  CHECK(sources == rows);
}

TEST_CASE("hostile: guests on KVM", "[hostile][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  run_all({backend::Kind::kKvm});
}

TEST_CASE("hostile: guests on the simulator under emulation", "[hostile][sim]") {
  for (const Engine& e : sim_engines(sim::virt::Technique::kEmulation)) run_all(e);
}

TEST_CASE("hostile: guests on the simulator under trap-and-emulate", "[hostile][sim]") {
  for (const Engine& e : sim_engines(sim::virt::Technique::kTrapEmulate)) run_all(e);
}

TEST_CASE("hostile: guests on the simulator under vt", "[hostile][sim]") {
  for (const Engine& e : sim_engines(sim::virt::Technique::kVt)) run_all(e);
}

TEST_CASE("hostile: guests on the simulator under bt", "[hostile][sim][bt]") {
  for (const Engine& e : sim_engines(sim::virt::Technique::kBt)) run_all(e);
}

TEST_CASE("hostile: guests on the simulator under pv", "[hostile][sim][pv]") {
  for (const Engine& e : sim_engines(sim::virt::Technique::kPv)) run_all(e);
}

namespace {

// The /proc/self/maps line (start, end, permissions) of the mapping that holds `address`.
struct MapsLine {
  uintptr_t start = 0, end = 0;
  std::string perms;
};
std::optional<MapsLine> mapping_of(const void* address) {
  const auto a = reinterpret_cast<uintptr_t>(address);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream in(line);
    MapsLine m;
    char dash;
    in >> std::hex >> m.start >> dash >> m.end >> m.perms;
    if (a >= m.start && a < m.end) return m;
  }
  return std::nullopt;
}

// True if a child process that writes one byte at `address` is killed by SIGSEGV for it (with
// the default action: no sanitizer report, no core file); false if the write went through.
bool write_faults(uint8_t* address) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    std::signal(SIGSEGV, SIG_DFL);
    *static_cast<volatile uint8_t*>(address) = 0x5A;
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return false;
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGSEGV);
  return true;
}

}  // namespace

// guest RAM on KVM lies between PROT_NONE guard mappings, so a VMM write
// just before or past it faults instead of changing the VMM's memory.
TEST_CASE("hostile: KVM guest RAM has PROT_NONE guard pages on both sides", "[hostile][guard]") {
  constexpr uint64_t kBytes = 1 << 20;
  vmm::GuestMemory mem(kBytes);
  uint8_t* base = mem.host_address();
  const auto ram = mapping_of(base);
  REQUIRE(ram);
  CHECK(ram->perms.substr(0, 2) == "rw");
  const auto below = mapping_of(base - 1);
  const auto above = mapping_of(base + kBytes);
  REQUIRE(below);
  REQUIRE(above);
  CHECK(below->perms.substr(0, 3) == "---");
  CHECK(above->perms.substr(0, 3) == "---");
  CHECK(below->end == reinterpret_cast<uintptr_t>(base));
  CHECK(below->start <= reinterpret_cast<uintptr_t>(base) - vmm::GuestMemory::kGuardBytes);
  CHECK(above->start == reinterpret_cast<uintptr_t>(base + kBytes));
  CHECK(above->end >= reinterpret_cast<uintptr_t>(base + kBytes) + vmm::GuestMemory::kGuardBytes);
  // A stray write just past the end or just before the start faults; RAM itself is writable.
  CHECK(write_faults(base + kBytes));
  CHECK(write_faults(base - 1));
  CHECK_FALSE(write_faults(base + kBytes - 1));
}
