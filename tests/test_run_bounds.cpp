// Long rep string instructions stop between iterations on the simulator, so that --timeout,
// Ctrl-C and the limits hold inside one instruction (issue 15 item 5).
#include <catch2/catch.hpp>

#include "backend/backend.hpp"
#include "sim/cpu.hpp"
#include "tests/support.hpp"

using namespace trapscope;
using trapscope::test::run_trapscope;
using trapscope::test::temp_path;
using trapscope::test::write_file;

namespace {

using Bytes = std::vector<uint8_t>;
constexpr uint64_t kLoad = vmm::kDefaultLoadAddress;  // 0x8000

// Protected mode (flat 32-bit segments, CPL 0), loaded at 0x8000; each ends with `hlt`.
// mov esi, 0x1000 / mov ecx, 0xffffffff / rep lodsb            (rep at 0x800a)
const Bytes kRepLods = {0xBE, 0x00, 0x10, 0x00, 0x00, 0xB9, 0xFF, 0xFF,
                        0xFF, 0xFF, 0xF3, 0xAC, 0xF4};
// mov edi, 0x100000 / mov ecx, 0xffffffff / rep stosb          (rep at 0x800a)
const Bytes kRepStos = {0xBF, 0x00, 0x00, 0x10, 0x00, 0xB9, 0xFF, 0xFF,
                        0xFF, 0xFF, 0xF3, 0xAA, 0xF4};
// mov esi, 0x1000 / mov edx, 0x80 / mov ecx, 0xffffffff / rep outsb   (rep at 0x800f)
const Bytes kRepOuts = {0xBE, 0x00, 0x10, 0x00, 0x00, 0xBA, 0x80, 0x00, 0x00, 0x00,
                        0xB9, 0xFF, 0xFF, 0xFF, 0xFF, 0xF3, 0x6E, 0xF4};
// mov esi, 0x1000 / mov edi, 0x200000 / mov ecx, 0xffffffff / rep movsb (rep at 0x800f)
const Bytes kRepMovs = {0xBE, 0x00, 0x10, 0x00, 0x00, 0xBF, 0x00, 0x00, 0x20, 0x00,
                        0xB9, 0xFF, 0xFF, 0xFF, 0xFF, 0xF3, 0xA4, 0xF4};
backend::Config protected_config(virt::Technique t) {
  backend::Config c;
  c.mode = vmm::BootMode::kProtected;
  c.technique = t;
  return c;
}

constexpr virt::Technique kTechniques[] = {virt::Technique::kEmulation,
                                           virt::Technique::kTrapEmulate, virt::Technique::kVt,
                                           virt::Technique::kBt, virt::Technique::kPv};

std::string write_guest(const char* name, const Bytes& code) {
  const std::string path = temp_path(name);
  write_file(path, {code.begin(), code.end()});
  return path;
}

}  // namespace

TEST_CASE("a rep string instruction stops between iterations and resumes where it stopped",
          "[sim][rep]") {
  // rep outsb of 10000 bytes: each step moves at most kRepIterationsPerStep of them and records
  // one I/O exit with their count, so max_exits = 1 stops the run inside the instruction.
  Bytes code = kRepOuts;
  code[11] = 0x10;  // ecx = 10000 (0x2710)
  code[12] = 0x27;
  code[13] = code[14] = 0x00;
  const auto t = GENERATE(from_range(std::begin(kTechniques), std::end(kTechniques)));
  INFO("technique " << virt::to_string(t));
  const auto cfg = protected_config(t);

  auto whole = backend::make_backend(backend::Kind::kSim, cfg);
  whole->load(code);
  trace::Recorder whole_events;
  const auto w = whole->run({10.0, 0, 0}, &whole_events);
  REQUIRE(w.reason == trace::RunEndReason::kHalted);
  CHECK(w.instructions == 5);  // a suspended rep is not a retired instruction
  std::vector<uint32_t> counts;  // of the I/O exits; then the HLT exit
  for (size_t i = 0; i < whole_events.size(); ++i) {
    const auto* e = whole_events.get<trace::VmExitEvent>(i, trace::EventType::kVmExit);
    if (e && e->reason == static_cast<uint32_t>(trace::ExitReason::kIo)) {
      counts.push_back(e->payload.io.count);
    }
  }
  CHECK(counts == std::vector<uint32_t>{4096, 4096, 1808});
  CHECK(w.exits == 4);

  auto parts = backend::make_backend(backend::Kind::kSim, cfg);
  parts->load(code);
  const auto p1 = parts->run({10.0, 1, 0}, nullptr);
  CHECK(p1.reason == trace::RunEndReason::kExitLimit);
  CHECK(p1.instructions == 3);
  const sim::CpuState mid = parts->registers();
  CHECK(mid.rip == kLoad + 0xF);  // still at the rep outsb
  CHECK(mid.gpr[sim::kRcx] == 10000 - sim::kRepIterationsPerStep);
  CHECK(mid.gpr[sim::kRsi] == 0x1000 + sim::kRepIterationsPerStep);
  const auto p2 = parts->run({10.0, 0, 0}, nullptr);
  CHECK(p2.reason == trace::RunEndReason::kHalted);
  CHECK(p1.instructions + p2.instructions == w.instructions);
  CHECK(p1.exits + p2.exits == w.exits);
  const sim::CpuState a = whole->registers(), b = parts->registers();
  for (int i = 0; i < 16; ++i) CHECK(a.gpr[i] == b.gpr[i]);
  CHECK(a.rip == b.rip);
  CHECK(a.rflags == b.rflags);
  CHECK(a.tsc == b.tsc);
  CHECK(std::equal(whole->memory().begin(), whole->memory().end(), parts->memory().begin()));
}

TEST_CASE("--timeout stops a rep string instruction of 2^32 - 1 iterations", "[sim][rep]") {
  struct Case {
    const char* name;
    const Bytes* code;
    uint64_t rep_at;
    bool uses_rsi;
    uint64_t rdi0;  // 0: rDI not used
  };
  const Case cases[] = {{"rep lodsb", &kRepLods, 0xA, true, 0},
                        {"rep stosb", &kRepStos, 0xA, false, 0x100000},
                        {"rep outsb", &kRepOuts, 0xF, true, 0},
                        {"rep movsb", &kRepMovs, 0xF, true, 0x200000}};
  const auto t = GENERATE(from_range(std::begin(kTechniques), std::end(kTechniques)));
  for (const Case& c : cases) {
    INFO(c.name << " under " << virt::to_string(t));
    auto m = backend::make_backend(backend::Kind::kSim, protected_config(t));
    m->load(*c.code);
    const auto r = m->run({0.2, 0, 0}, nullptr);
    CHECK(r.reason == trace::RunEndReason::kTimeLimit);
    const sim::CpuState s = m->registers();
    CHECK(s.rip == kLoad + c.rep_at);
    const uint64_t done = 0xFFFFFFFFull - s.gpr[sim::kRcx];
    CHECK(done > 0);
    if (c.uses_rsi) CHECK(s.gpr[sim::kRsi] == 0x1000 + done);
    if (c.rdi0) CHECK(s.gpr[sim::kRdi] == c.rdi0 + done);
  }
}

TEST_CASE("--timeout ends a rep string run on the command line, also to MMIO under bt and EPT",
          "[cli][sim][rep]") {
  const std::string lods = write_guest("rep-lods.bin", kRepLods);
  auto r = run_trapscope({"run", lods, "--mode", "protected", "--backend", "sim", "--timeout",
                          "0.5", "-q"});
  CHECK(r.exit_code == 4);
  CHECK_THAT(r.out, Catch::Contains("run ended: time limit"));
  // rep stosb from 1 MiB up: every byte past the guest's 1 MiB of RAM is an MMIO write.
  const std::string stos = write_guest("rep-stos.bin", kRepStos);
  r = run_trapscope({"run", stos, "--mode", "protected", "--technique", "bt", "--paging", "ept",
                     "--mem", "1", "--timeout", "0.5", "-q"});
  CHECK(r.exit_code == 4);
  CHECK_THAT(r.out, Catch::Contains("run ended: time limit"));
}
