// The random-program differential tester (tests/difftest/): the fast set, plus checks of the
// generator and of the KVM reference itself. `difftest` (target difftest-100k) runs 100,000.
#include <catch2/catch.hpp>

#include <map>

#include "x86/decoder.hpp"
#include "x86/disasm.hpp"
#include "tests/difftest/harness.hpp"
#include "tests/support.hpp"

namespace {

using namespace trapscope::difftest;
using trapscope::trace::RunEndReason;

uint64_t result_reg(const SideResult& r, int i) { return r.gpr[i]; }

}  // namespace

TEST_CASE("difftest: every generated instruction decodes to itself, in the simulator's subset",
          "[difftest]") {
  const GenOptions opt;
  std::map<std::string, int> mnemonics;
  for (uint64_t i = 0; i < 1500; ++i) {
    const Program p = generate(7, i, opt);
    REQUIRE(p.code.size() <= kCodeCapacity);
    REQUIRE(p.hlt_address == kCodeAddress + p.code.size() - 1);
    for (const Entry& e : p.entries) {
      if (e.kind == Entry::kSkipped) continue;
      const uint64_t at = kCodeAddress + e.offset;
      const auto d = trapscope::x86::disassemble(e.bytes, trapscope::trace::CpuMode::kLong64, at);
      trapscope::x86::Instruction insn;
      const auto st = trapscope::x86::decode(e.bytes, trapscope::trace::CpuMode::kLong64, &insn);
      if (!d.ok || d.length != e.bytes.size() || st != trapscope::x86::DecodeStatus::kOk ||
          insn.op == trapscope::x86::Op::kUnsupported) {
        INFO(describe(p));
        INFO("at " << std::hex << at << ": " << d.text);
        FAIL("an instruction that does not decode to itself or is outside the simulator's subset");
      }
      ++mnemonics[d.text.substr(0, d.text.find(' '))];
    }
  }
  // The subset is exercised: a few of the families must all show up.
  for (const char* m : {"add", "adc", "sbb", "imul", "idiv", "rcl", "shld", "btc", "bsr", "cmovnle",
                        "setb", "xadd", "cmpxchg", "movsxd", "lea", "bswap", "cqo", "popfq",
                        "lahf", "sahf", "cmc", "std", "xchg", "jnz", "jmp", "call", "ret", "rep",
                        "repne", "lock", "stosb", "push", "pop"}) {
    INFO(m);
    CHECK(mnemonics[m] > 0);
  }
}

TEST_CASE("difftest: programs are a function of (seed, index)", "[difftest]") {
  const GenOptions opt;
  const Program a = generate(42, 17, opt), b = generate(42, 17, opt), c = generate(42, 18, opt);
  CHECK(a.code == b.code);
  CHECK(a.scratch == b.scratch);
  CHECK(a.rflags == b.rflags);
  CHECK(a.code != c.code);
  CHECK(a.gpr[5] == kScratchBase);
}

TEST_CASE("difftest: KVM runs a known-answer program at CPL 3", "[difftest][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  Runner kvm(trapscope::backend::Kind::kKvm);
  // add rax, rbx; push rcx; pop rdx
  const Program p = make_program(3, 0, {{0x48, 0x01, 0xD8}, {0x51}, {0x5A}}, GenOptions{});
  const SideResult r = kvm.run(p);
  INFO(r.detail);
  // At CPL 0 `hlt` would be a KVM_EXIT_HLT; at CPL 3 it is #GP → #DF → shutdown.
  REQUIRE(r.reason == RunEndReason::kTripleFault);
  REQUIRE(r.completed);
  CHECK(result_reg(r, 0) == p.gpr[0] + p.gpr[3]);
  CHECK(result_reg(r, 2) == p.gpr[1]);
  CHECK(result_reg(r, 4) == p.gpr[4]);
  CHECK(result_reg(r, 5) == kScratchBase);
  CHECK((r.rflags & 0x2) != 0);  // reserved bit 1 reads as 1
  CHECK((r.rflags & (3 << 12)) == 0);  // IOPL 0
  CHECK((r.rflags & (1 << 9)) == (p.rflags & (1 << 9)));  // IF as started
  CHECK(r.scratch == p.scratch);
}

TEST_CASE("difftest: popfq at CPL 3 cannot change IF or IOPL on KVM (Popek-Goldberg)",
          "[difftest][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  Runner kvm(trapscope::backend::Kind::kKvm);
  const HostProbe host = probe_kvm(kvm);
  for (bool start_if : {false, true}) {
    if (!start_if && host.pushf_leaks_if) continue;  // IF = 0 is not observable here
    GenOptions opt;
    opt.start_if = start_if;
    // pushfq; pop rax; xor rax, 0x3201 (IF, IOPL = 3, CF); push rax; popfq
    const Program p = make_program(5, 0, {{0x9C}, {0x58}, {0x48, 0x35, 0x01, 0x32, 0, 0}, {0x50}, {0x9D}}, opt);
    const SideResult r = kvm.run(p);
    REQUIRE(r.completed);
    CHECK((r.rflags & kFlagIF) == (p.rflags & kFlagIF));
    CHECK((r.rflags & (3 << 12)) == 0);
    CHECK(((r.rflags ^ p.rflags) & 1) == 1);  // CF did change
  }
}

TEST_CASE("difftest: this host's KVM and the sensitive but unprivileged instructions", "[difftest][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  Runner kvm(trapscope::backend::Kind::kKvm);
  const HostProbe host = probe_kvm(kvm);
  // Not a failure either way: facts about the host. kvm_pvm: the real IF = 1 leaks through
  // pushfq, mov r, cs/ss and lar see the host's segments, RFLAGS.AC checks alignment although
  // the guest's CR0.AM = 0; hardware-assisted KVM: the guest's view. The generator starts with
  // IF = 1, leaves the segment reads out and never sets AC, so both backends agree.
  WARN("this host's KVM: " << host.note);
  if (host.pushf_leaks_if || host.segment_reads_leak || host.ac_checks_alignment) {
    WARN("this host runs CPL 3 guest code natively without hardware virtualization: these "
         "instructions reveal the host (Popek & Goldberg's sensitive, unprivileged instructions)");
  }
  const Program p = make_program(1, 1, {}, GenOptions{});
  const SideResult r = kvm.run(p);
  REQUIRE(r.completed);
  CHECK((r.rflags & kFlagIF) != 0);
}

TEST_CASE("difftest: a fault in the sequence ends in a triple fault without the epilogue",
          "[difftest][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  Runner kvm(trapscope::backend::Kind::kKvm);
  const Program p = make_program(1, 0, {{0x31, 0xC9}, {0xF7, 0xF1}}, GenOptions{});
  const SideResult r = kvm.run(p);
  CHECK(r.reason == RunEndReason::kTripleFault);
  CHECK_FALSE(r.completed);
}

TEST_CASE("difftest: fast set, KVM against the simulator", "[difftest][kvm][sim]") {
  REQUIRE_KVM_OR_SKIP();
  Harness h;
  GenOptions opt;
  opt.undefined_results = trapscope::test::compare_undefined();
  if (const std::string note = trapscope::test::undefined_flags_note_once(); !note.empty()) WARN(note);
  constexpr uint64_t kSeed = 2024, kCount = 1000;
  uint64_t counts[5] = {};
  std::map<std::string, int> unsupported;
  std::string first_bad;
  for (uint64_t i = 0; i < kCount; ++i) {
    const Program p = generate(kSeed, i, opt);
    const Comparison c = h.check(p);
    ++counts[static_cast<int>(c.verdict)];
    if (c.verdict == Verdict::kUnsupported) ++unsupported[c.unsupported];
    if ((c.verdict == Verdict::kDiverged || c.verdict == Verdict::kKvmProblem) && first_bad.empty()) {
      first_bad = report(p, c);
    }
  }
  std::string summary = "difftest fast set (seed " + std::to_string(kSeed) + "): equal " +
                        std::to_string(counts[0]) + ", undefined-flags-only " + std::to_string(counts[1]) +
                        ", diverged " + std::to_string(counts[2]) + ", unsupported " +
                        std::to_string(counts[3]) + ", kvm problems " + std::to_string(counts[4]);
  if (!unsupported.empty()) {
    summary += "; the simulator stopped at:";
    for (const auto& [k, v] : unsupported) summary += " " + k + "×" + std::to_string(v);
  }
  if (counts[3] != 0) WARN(summary);
  INFO(summary);
  INFO(first_bad);
  CHECK(counts[static_cast<int>(Verdict::kKvmProblem)] == 0);
  CHECK(counts[static_cast<int>(Verdict::kDiverged)] == 0);
  CHECK(h.memory_differences() == "");  // no stray write anywhere in guest memory
}

TEST_CASE("difftest: the comparison finds what differs", "[difftest]") {
  const Program p = generate(11, 3, GenOptions{});
  SideResult k;
  k.reason = RunEndReason::kTripleFault;
  k.completed = true;
  k.regs.rip = p.hlt_address;
  for (int i = 0; i < 16; ++i) k.gpr[i] = p.gpr[i];
  k.rflags = 0x202;
  k.scratch = p.scratch;
  k.stack = p.stack;
  k.results.assign(kResultsSize, 0);
  auto verdict = [&](const SideResult& s) { return compare(p, k, s, true).verdict; };
  CHECK(verdict(k) == Verdict::kEqual);
  SideResult s = k;
  s.gpr[9] ^= 1;
  CHECK(verdict(s) == Verdict::kDiverged);
  s = k;
  s.scratch[100] ^= 0x80;
  CHECK(verdict(s) == Verdict::kDiverged);
  s = k;
  s.stack[0] ^= 1;
  CHECK(verdict(s) == Verdict::kDiverged);
  s = k;
  s.rflags ^= kFlagDF;
  CHECK(verdict(s) == Verdict::kDiverged);
  s = k;
  s.rflags ^= kFlagCF;
  // An undefined flag: masked on a host that is not the model CPU, compared on it.
  CHECK(compare(p, k, s, true, false).verdict ==
        ((p.undefined_flags & kFlagCF) ? Verdict::kUndefinedFlagsOnly : Verdict::kDiverged));
  CHECK(compare(p, k, s, true, true).verdict == Verdict::kDiverged);
  s = k;
  s.completed = false;
  CHECK(verdict(s) == Verdict::kDiverged);
  s = k;
  s.reason = RunEndReason::kUnsupported;
  s.completed = false;
  s.regs.rip = kCodeAddress;
  s.detail = "unsupported: popcnt eax, ecx at 0x200000";
  const Comparison c = compare(p, k, s, true);
  CHECK(c.verdict == Verdict::kUnsupported);
  CHECK(c.unsupported == "popcnt");
  s = k;
  s.reason = RunEndReason::kUnsupported;  // stopped at the final hlt: compared as complete
  CHECK(verdict(s) == Verdict::kEqual);
  SideResult kvm_timeout = k;
  kvm_timeout.reason = RunEndReason::kTimeLimit;
  CHECK(compare(p, kvm_timeout, k, true).verdict == Verdict::kKvmProblem);
}
