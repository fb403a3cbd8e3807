// Popek–Goldberg (issue 6): the classifier (sim/virt/classify.hpp) and `trapscope classify`.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "sim/virt/classify.hpp"
#include "tests/support.hpp"

using trapscope::test::run_trapscope;
using trapscope::trace::CpuMode;
using trapscope::virt::classify_bytes;
using trapscope::virt::PgClass;

namespace {

trapscope::virt::ClassifiedInstruction cls(std::vector<uint8_t> bytes,
                                           CpuMode mode = CpuMode::kProtected32) {
  return classify_bytes(bytes, mode, 0);
}

}  // namespace

TEST_CASE("classifier: innocuous instructions", "[pg]") {
  for (const auto& b : std::vector<std::vector<uint8_t>>{
           {0x01, 0xD8},        // add eax, ebx
           {0x8B, 0x03},        // mov eax, [ebx]
           {0xEB, 0xFE},        // jmp $
           {0xC3},              // ret
           {0xF3, 0xA4},        // rep movsb
           {0x90},              // nop
           {0x0F, 0xA2},        // cpuid
           {0x0F, 0x0B}}) {     // ud2
    const auto c = cls(b);
    INFO(c.text << ": " << c.c.reason);
    REQUIRE(c.ok);
    CHECK(c.c.cls == PgClass::kInnocuous);
    CHECK_FALSE(c.c.privileged);
    CHECK_FALSE(c.c.control_sensitive);
    CHECK_FALSE(c.c.behaviour_sensitive);
  }
  CHECK(cls({0x0F, 0xA2}).c.reason.find("VM exit") != std::string_view::npos);
}

TEST_CASE("classifier: privileged instructions and their reasons", "[pg]") {
  struct Case {
    std::vector<uint8_t> bytes;
    const char* reason_has;
  };
  for (const Case& k : std::vector<Case>{
           {{0xF4}, "hlt"},
           {{0x0F, 0x01, 0x10}, "descriptor-table register"},  // lgdt [eax]
           {{0x0F, 0x01, 0x18}, "descriptor-table register"},  // lidt [eax]
           {{0x0F, 0x00, 0xD8}, "descriptor-table register"},  // ltr ax
           {{0x0F, 0x22, 0xD8}, "control register"},            // mov cr3, eax
           {{0x0F, 0x20, 0xC0}, "control register"},            // mov eax, cr0
           {{0x0F, 0x23, 0xF8}, "debug register"},              // mov dr7, eax
           {{0x0F, 0x06}, "CR0"},                                // clts
           {{0x0F, 0x01, 0x38}, "invlpg"},                      // invlpg [eax]
           {{0x0F, 0x30}, "wrmsr"},
           {{0x0F, 0x32}, "rdmsr"},
           {{0x0F, 0x09}, "wbinvd"},
           {{0xFA}, "IOPL"},                                     // cli
           {{0xFB}, "IOPL"},                                     // sti
           {{0xE6, 0xE9}, "IOPL"},                               // out 0xe9, al
           {{0xEC}, "I/O bitmap"},                               // in al, dx
           {{0x0F, 0x31}, "CR4.TSD"},                            // rdtsc
           {{0x0F, 0x33}, "CR4.PCE"},                            // rdpmc (outside the subset)
           {{0x0F, 0x35}, "sysexit"}}) {
    const auto c = cls(k.bytes);
    INFO(c.text << ": " << c.c.reason);
    REQUIRE(c.ok);
    CHECK(c.c.cls == PgClass::kPrivileged);
    CHECK(c.c.privileged);
    CHECK(c.c.reason.find(k.reason_has) != std::string_view::npos);
  }
  // 64-bit only
  CHECK(cls({0x0F, 0x01, 0xF8}, CpuMode::kLong64).c.cls == PgClass::kPrivileged);  // swapgs
  CHECK(cls({0x48, 0x0F, 0x07}, CpuMode::kLong64).c.cls == PgClass::kPrivileged);   // sysretq
  // a nop that the simulator maps to the same Op as wbinvd stays innocuous
  CHECK(cls({0x0F, 0x1F, 0x00}).c.cls == PgClass::kInnocuous);
}

TEST_CASE("classifier: the classic sensitive-but-unprivileged x86 instructions", "[pg]") {
  // Robin & Irvine (USENIX Security 2000): none of these traps at CPL > 0.
  struct Case {
    std::vector<uint8_t> bytes;
    const char* reason_has;
    bool user_sensitive;
  };
  for (const Case& k : std::vector<Case>{
           {{0x0F, 0x01, 0x00}, "GDTR", true},           // sgdt [eax]
           {{0x0F, 0x01, 0x08}, "IDTR", true},           // sidt [eax]
           {{0x0F, 0x00, 0xC0}, "LDTR", true},           // sldt eax
           {{0x0F, 0x00, 0xC8}, "UMIP", true},           // str eax
           {{0x0F, 0x01, 0xE0}, "MSW", true},            // smsw eax
           {{0x9C}, "real IF", true},                     // pushf
           {{0x9D}, "silently ignored", false},           // popf
           {{0x0F, 0x02, 0xC3}, "DPL", true},            // lar eax, ebx
           {{0x0F, 0x03, 0xC3}, "DPL", true},            // lsl eax, ebx
           {{0x0F, 0x00, 0xE0}, "DPL", true},            // verr ax
           {{0x0F, 0x00, 0xE8}, "DPL", true},            // verw ax
           {{0x0E}, "RPL", false},                        // push cs
           {{0x1F}, "DPL", false},                        // pop ds
           {{0x8C, 0xC8}, "RPL", false},                  // mov eax, cs
           {{0x8E, 0xD8}, "DPL", false},                  // mov ds, eax
           {{0x9A, 0, 0, 0, 0, 0x08, 0}, "far", false},   // call far 0x08:0
           {{0xEA, 0, 0, 0, 0, 0x08, 0}, "far", false},   // jmp far 0x08:0
           {{0xCB}, "far", false},                        // retf
           {{0xCD, 0x80}, "IDT", false},                  // int 0x80
           {{0xCF}, "IF", false},                         // iret
           {{0x0F, 0x34}, "sysenter", false}}) {
    const auto c = cls(k.bytes);
    INFO(c.text << ": " << c.c.reason);
    REQUIRE(c.ok);
    CHECK(c.c.cls == PgClass::kSensitive);
    CHECK_FALSE(c.c.privileged);
    CHECK((c.c.control_sensitive || c.c.behaviour_sensitive));
    CHECK(c.c.user_sensitive == k.user_sensitive);
    CHECK(c.c.reason.find(k.reason_has) != std::string_view::npos);
  }
  // control- vs behaviour-sensitive
  CHECK(cls({0x9D}).c.control_sensitive);
  CHECK(cls({0x0F, 0x01, 0x00}).c.behaviour_sensitive);
  CHECK_FALSE(cls({0x0F, 0x01, 0x00}).c.control_sensitive);
}

TEST_CASE("classifier: every Op the simulator executes has a class and a reason", "[pg]") {
  // Every handler in sim/ops.def is reached by some encoding in the tests above or falls into
  // the general innocuous class; the reason is never empty.
  for (uint16_t i = 1; i < static_cast<uint16_t>(trapscope::sim::Op::kCount); ++i) {
    trapscope::sim::Instruction insn;
    insn.op = static_cast<trapscope::sim::Op>(i);
    const uint8_t nop = 0x90;
    const auto c = trapscope::virt::classify(insn, {&nop, 1});
    INFO(trapscope::sim::op_name(insn.op));
    CHECK_FALSE(c.reason.empty());
    CHECK(c.privileged == (c.cls == PgClass::kPrivileged));
    if (c.cls != PgClass::kInnocuous) CHECK((c.control_sensitive || c.behaviour_sensitive));
  }
}

TEST_CASE("classify --bytes prints the table and the theorems", "[pg][cli]") {
  auto r = run_trapscope({"classify", "--bytes", "9c 9d 0f0100 f4"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("pushfd") != std::string::npos);
  CHECK(r.out.find("sgdt") != std::string::npos);
  CHECK(r.out.find("privileged") != std::string::npos);
  CHECK(r.out.find("4 instructions: 1 privileged, 3 sensitive but unprivileged, 0 innocuous") !=
        std::string::npos);
  CHECK(r.out.find("Theorem 1 (sensitive ⊆ privileged): FAILS — 3 sensitive instructions do not "
                   "trap (pushfd; popfd; sgdt [eax])") != std::string::npos);
  CHECK(r.out.find("Theorem 3 (user-sensitive ⊆ privileged) for this code taken as user code: "
                   "FAILS — 2") != std::string::npos);

  r = run_trapscope({"classify", "--bytes", "01d8f4", "--mode", "long"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("Theorem 1 (sensitive ⊆ privileged): holds") != std::string::npos);
  CHECK(r.out.find("for this code taken as user code: holds") != std::string::npos);
}

TEST_CASE("classify GUEST classifies what the guest executes, kernel and user", "[pg][cli]") {
  auto r = run_trapscope({"classify", "rings"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("iretq") != std::string::npos);
  CHECK(r.out.find("Theorem 1 (sensitive ⊆ privileged): FAILS") != std::string::npos);
  // rings' user code is cli, hlt, mov cr3, in, out (all privileged) and a few innocuous ones
  CHECK(r.out.find("for its user-mode (CPL 3) code: holds") != std::string::npos);

  r = run_trapscope({"classify", "hello"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("Theorem 1 (sensitive ⊆ privileged): holds") != std::string::npos);
  CHECK(r.out.find("holds (no code ran at CPL 3)") != std::string::npos);
}

TEST_CASE("classify rejects bad input with exit status 2", "[pg][cli][bad-input]") {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"classify", "--bytes", "zz"},
           {"classify", "--bytes", ""},
           {"classify", "--bytes", "0f"},        // truncated instruction
           {"classify", "--bytes", "abc"},       // odd digit count
           {"classify"},                          // neither
           {"classify", "hello", "--bytes", "90"},  // both
           {"classify", "/nonexistent/guest"},
           {"classify", "--bytes", "90", "--mode", "weird"}}) {
    auto r = run_trapscope(args);
    INFO(args.back() << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK_FALSE(r.err.empty());
  }
}

TEST_CASE("popek guest prints what a CPL 0 kernel sees, on the simulator", "[pg][sim]") {
  auto r = run_trapscope({"run", "popek", "--backend", "sim", "-q"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("after cli:        IF=0 IOPL=0\n") != std::string::npos);
  CHECK(r.out.find("after popf(IF=1): IF=1 IOPL=3\n") != std::string::npos);
  CHECK(r.out.find("push cs:   0008 (CPL 0)\n") != std::string::npos);
  CHECK(r.out.find("mov ax,ss: 0010 (CPL 0)\n") != std::string::npos);
  CHECK(r.out.find("str:  0018\n") != std::string::npos);
  CHECK(r.out.find("smsw: 0011\n") != std::string::npos);
  CHECK(r.out.find("popek: done") != std::string::npos);
}
