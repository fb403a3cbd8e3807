// Popek–Goldberg: the classifier (x86/classify.hpp) and `trapscope classify`.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "x86/classify.hpp"
#include "tests/support.hpp"

using trapscope::test::run_trapscope;
using trapscope::trace::CpuMode;
using trapscope::x86::classify_bytes;
using trapscope::x86::PgClass;

namespace {

trapscope::x86::ClassifiedInstruction cls(std::vector<uint8_t> bytes,
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
  // Every handler in x86/ops.def is reached by some encoding in the tests above or falls into
  // the general innocuous class; the reason is never empty.
  for (uint16_t i = 1; i < static_cast<uint16_t>(trapscope::x86::Op::kCount); ++i) {
    trapscope::x86::Instruction insn;
    insn.op = static_cast<trapscope::x86::Op>(i);
    const uint8_t nop = 0x90;
    const auto c = trapscope::x86::classify(insn, {&nop, 1});
    INFO(trapscope::x86::op_name(insn.op));
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

// --- trap-and-emulate and the VT-x model (sim/virt/monitor.hpp) -------------------------------

#include "backend/cosim.hpp"
#include "guests/guest_catalog.hpp"
#include "sim/sim_machine.hpp"
#include "trace/recorder.hpp"

namespace {

using trapscope::sim::virt::Technique;

struct Ran {
  trapscope::x86::CpuState regs;
  std::vector<uint8_t> memory;
  std::vector<const trapscope::trace::VirtEvent*> virt;  // valid while `events` lives
  trapscope::trace::RunEndReason reason{};
};

// Runs 32-bit protected-mode code at CPL 0 (entered by the VMM) under a technique.
Ran run_code(std::vector<uint8_t> code, Technique t, uint8_t deprivilege,
             trapscope::trace::Recorder& events,
             void (*configure)(trapscope::sim::virt::VmcsControls&) = nullptr) {
  trapscope::sim::SimConfig cfg;
  cfg.mode = trapscope::platform::BootMode::kProtected;
  cfg.technique = t;
  cfg.deprivilege = deprivilege;
  trapscope::sim::SimMachine m(cfg);
  m.load(code);
  if (configure && m.monitor()) configure(m.monitor()->controls());
  trapscope::sim::SimLimits lim;
  lim.max_instructions = 1000;
  Ran r;
  r.reason = m.run(lim, &events).reason;
  r.regs = m.cpu().s;
  r.memory.assign(m.memory().span().begin(), m.memory().span().end());
  for (size_t i = 0; i < events.size(); ++i) {
    const auto& h = events.at(i);
    if (h.type == trapscope::trace::EventType::kVmmTrap ||
        h.type == trapscope::trace::EventType::kSensitiveNoTrap ||
        h.type == trapscope::trace::EventType::kVmTransition) {
      r.virt.push_back(reinterpret_cast<const trapscope::trace::VirtEvent*>(&h));
    }
  }
  return r;
}

size_t count(const Ran& r, trapscope::trace::EventType t) {
  size_t n = 0;
  for (const auto* e : r.virt) n += e->header.type == t;
  return n;
}

}  // namespace

TEST_CASE("trap-and-emulate: sensitive instructions run against the real state", "[pg][sim]") {
  using trapscope::trace::EventType;
  trapscope::trace::Recorder en, et, e3;
  // cli; pushfd; pop eax; push cs; pop ebx; smsw ecx; sgdt [0x9000]; str dx; hlt
  const std::vector<uint8_t> code = {0xFA, 0x9C, 0x58, 0x0E, 0x5B, 0x0F, 0x01, 0xE1,
                                     0x0F, 0x01, 0x05, 0x00, 0x90, 0x00, 0x00,
                                     0x66, 0x0F, 0x00, 0xCA, 0xF4};
  const Ran native = run_code(code, Technique::kEmulation, 1, en);
  const Ran te = run_code(code, Technique::kTrapEmulate, 1, et);
  const Ran te3 = run_code(code, Technique::kTrapEmulate, 3, e3);
  REQUIRE(native.reason == trapscope::trace::RunEndReason::kHalted);
  REQUIRE(te.reason == trapscope::trace::RunEndReason::kHalted);
  // pushf: natively IF = 0 after cli; deprivileged it shows the real IF = 1
  CHECK((native.regs.gpr[0] & 0x200) == 0);
  CHECK((te.regs.gpr[0] & 0x200) == 0x200);
  // push cs: the RPL is the real CPL
  CHECK((native.regs.gpr[3] & 3) == 0);
  CHECK((te.regs.gpr[3] & 3) == 1);
  CHECK((te3.regs.gpr[3] & 3) == 3);
  // smsw: the host's CR0 bits 15:0
  CHECK((native.regs.gpr[1] & 0xFFFF) == (native.regs.cr0 & 0xFFFF));
  CHECK((te.regs.gpr[1] & 0xFFFF) == (trapscope::sim::virt::kHostState.cr0 & 0xFFFF));
  // sgdt: the VMM's GDT base; str: the VMM's TR
  uint32_t native_base, te_base;
  std::memcpy(&native_base, &native.memory[0x9002], 4);
  std::memcpy(&te_base, &te.memory[0x9002], 4);
  CHECK(native_base == native.regs.gdtr.base);
  CHECK(te_base == trapscope::sim::virt::kHostState.gdt_base);
  CHECK((te.regs.gpr[2] & 0xFFFF) == trapscope::sim::virt::kHostState.tr);
  // the virtual state itself is untouched: the guest's IF stays 0 (the VMM emulated cli), its
  // CS selector and GDTR are its own
  CHECK((te.regs.rflags & 0x200) == 0);
  CHECK(te.regs.seg[1].selector == native.regs.seg[1].selector);
  CHECK(te.regs.gdtr.base == native.regs.gdtr.base);
  // events: cli and hlt trapped; pushfd, push cs, smsw, sgdt, str did not
  CHECK(count(te, EventType::kVmmTrap) == 2);
  CHECK(count(te, EventType::kSensitiveNoTrap) == 5);
  CHECK(count(native, EventType::kVmmTrap) == 0);
  CHECK(te.virt.front()->real_cpl == 1);
}

TEST_CASE("trap-and-emulate: popf silently keeps IF and IOPL, lar sees the real CPL", "[pg][sim]") {
  trapscope::trace::Recorder en, et;
  // mov eax, 0x3202; push eax; popfd; mov ecx, 0x10; lar edx, ecx; setz bl; hlt
  const std::vector<uint8_t> code = {0xB8, 0x02, 0x32, 0x00, 0x00, 0x50, 0x9D, 0xB9, 0x10,
                                     0x00, 0x00, 0x00, 0x0F, 0x02, 0xD1, 0x0F, 0x94, 0xC3, 0xF4};
  const Ran native = run_code(code, Technique::kEmulation, 1, en);
  const Ran te = run_code(code, Technique::kTrapEmulate, 1, et);
  CHECK((native.regs.rflags & 0x3200) == 0x3200);  // IF = 1, IOPL = 3
  CHECK((te.regs.rflags & 0x3200) == 0);           // neither changed, and no trap
  CHECK((native.regs.gpr[3] & 0xFF) == 1);         // lar of the DPL 0 data segment: ZF = 1
  CHECK((te.regs.gpr[3] & 0xFF) == 0);             // at real CPL 1: not visible, ZF = 0
}

TEST_CASE("trap-and-emulate: privileged instructions trap and give the native result", "[pg][sim]") {
  trapscope::trace::Recorder en, et;
  // mov eax, cr0; or eax, 0x8 (TS); mov cr0, eax; clts; mov ebx, cr0; out 0xe9, al; hlt
  const std::vector<uint8_t> code = {0x0F, 0x20, 0xC0, 0x83, 0xC8, 0x08, 0x0F, 0x22, 0xC0,
                                     0x0F, 0x06, 0x0F, 0x20, 0xC3, 0xE6, 0xE9, 0xF4};
  const Ran native = run_code(code, Technique::kEmulation, 1, en);
  const Ran te = run_code(code, Technique::kTrapEmulate, 3, et);
  CHECK(te.regs.gpr[3] == native.regs.gpr[3]);
  CHECK(te.regs.cr0 == native.regs.cr0);
  CHECK(count(te, trapscope::trace::EventType::kVmmTrap) == 6);
  CHECK(count(te, trapscope::trace::EventType::kSensitiveNoTrap) == 0);
}

TEST_CASE("VT-x model: exit reasons and exit qualifications", "[pg][sim]") {
  using trapscope::trace::EventType;
  trapscope::trace::Recorder ev;
  // cpuid; mov cr3, ebx; mov eax, cr3; out 0xe9, al; mov dx, 0x3f8; in al, dx; ud2
  const std::vector<uint8_t> code = {0x0F, 0xA2, 0x0F, 0x22, 0xDB, 0x0F, 0x20, 0xD8, 0xE6, 0xE9,
                                     0x66, 0xBA, 0xF8, 0x03, 0xEC, 0x0F, 0x0B};
  const Ran r = run_code(code, Technique::kVt, 1, ev, [](trapscope::sim::virt::VmcsControls& c) {
    c.exception_bitmap = 1u << 6;  // #UD exits
  });
  std::vector<const trapscope::trace::VirtEvent*> exits;
  for (const auto* e : r.virt) {
    if (!(e->header.flags & trapscope::trace::kVirtFlagEntry)) exits.push_back(e);
  }
  REQUIRE(exits.size() >= 6);
  CHECK(count(r, EventType::kVmTransition) >= 12);  // each exit has its entry
  CHECK(exits[0]->exit_reason == 10);               // CPUID
  CHECK(exits[1]->exit_reason == 28);               // mov to CR3
  CHECK(exits[1]->qualification == (3 | (0 << 4) | (3 << 8)));  // CR3, mov to CR, EBX
  CHECK(exits[2]->exit_reason == 28);
  CHECK(exits[2]->qualification == (3 | (1 << 4) | (0 << 8)));  // CR3, mov from CR, EAX
  CHECK(exits[3]->exit_reason == 30);               // out 0xe9, al
  CHECK(exits[3]->qualification == ((0xE9u << 16) | (1 << 6)));  // size 1, out, immediate
  CHECK(exits[4]->exit_reason == 30);               // in al, dx
  CHECK(exits[4]->qualification == ((0x3F8u << 16) | (1 << 3)));  // size 1, in, DX
  CHECK(exits[5]->exit_reason == 0);                // #UD through the exception bitmap
  CHECK(exits[5]->interruption_info == 0x80000306u);
  CHECK(exits[0]->cost_cycles == 1186);
}

TEST_CASE("VT-x model: the I/O bitmap, HLT exiting and the interrupt window", "[pg][sim]") {
  trapscope::trace::Recorder ev;
  // out 0xe9, al; sti; nop; hlt
  const std::vector<uint8_t> code = {0xE6, 0xE9, 0xFB, 0x90, 0xF4};
  const Ran r = run_code(code, Technique::kVt, 1, ev, [](trapscope::sim::virt::VmcsControls& c) {
    c.io_bitmap.reset(0xE9);  // port 0xE9 passes through
    c.hlt_exiting = false;
    c.interrupt_window_exiting = true;
  });
  std::vector<uint32_t> reasons;
  for (const auto* e : r.virt) {
    if (!(e->header.flags & trapscope::trace::kVirtFlagEntry)) reasons.push_back(e->exit_reason);
  }
  CHECK(reasons == std::vector<uint32_t>{7});  // only the interrupt window, once
}

TEST_CASE("VT-x model: every teaching guest is equivalent to the native run", "[pg][sim]") {
  for (const char* name : {"hello", "boot", "rings", "long-hello", "popek"}) {
    auto g = trapscope::guests::find(name);
    REQUIRE(g);
    trapscope::backend::Config cfg;
    cfg.mode = *trapscope::platform::parse_boot_mode(g->mode);
    cfg.technique = Technique::kVt;
    const auto r = trapscope::backend::compare_with_native(g->image, cfg, {30.0, 0, 5'000'000});
    INFO(name << ": " << r.report);
    CHECK(r.equal);
  }
}

TEST_CASE("trap-and-emulate: popek diverges at the first sensitive read", "[pg][sim][cli]") {
  auto r = run_trapscope({"run", "popek", "--technique", "trap-emulate", "-q",
                          "--check-equivalence"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("after cli:        IF=1 IOPL=0\n") != std::string::npos);
  CHECK(r.out.find("push cs:   0009 (CPL 1)") != std::string::npos);
  CHECK(r.out.find("sgdt: base=ffc00000") != std::string::npos);
  CHECK(r.out.find("sensitive instructions did NOT trap") != std::string::npos);
  CHECK(r.out.find("equivalence with the native simulator run: first divergence at VM exit #") !=
        std::string::npos);
  r = run_trapscope({"run", "popek", "--technique", "trap-emulate", "--deprivilege", "3", "-q"});
  CHECK(r.out.find("push cs:   000b (CPL 3)") != std::string::npos);
  r = run_trapscope({"run", "popek", "--technique", "vt", "--no-timing", "--check-equivalence"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("VM exit  30 IO_INSTRUCTION") != std::string::npos);
  CHECK(r.out.find("cost=1186 cycles (model)") != std::string::npos);
  CHECK(r.out.find("equivalence with the native simulator run: equal") != std::string::npos);
  CHECK(run_trapscope({"run", "popek", "--technique", "vt", "--backend", "kvm"}).exit_code == 2);
  CHECK(run_trapscope({"run", "popek", "--technique", "trap-emulate", "--deprivilege", "2"})
            .exit_code == 2);
}

TEST_CASE("demo popek shows the three runs side by side and the divergences", "[pg][cli]") {
  auto r = run_trapscope({"demo", "popek", "--sim"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("native (simulator)") != std::string::npos);
  CHECK(r.out.find("| trap-and-emulate (kernel at CPL 1)") != std::string::npos);
  CHECK(r.out.find("| VT-x model (non-root, CPL 0)") != std::string::npos);
  // a row: native | *trap-and-emulate | VT-x (same as native)
  CHECK(r.out.find("  push cs:   0008 (CPL 0)              |*push cs:   0009 (CPL 1)              "
                   "| push cs:   0008 (CPL 0)\n") != std::string::npos);
  CHECK(r.out.find("|*sgdt: base=ffc00000 limit=00ff") != std::string::npos);
  CHECK(r.out.find("|*after cli:        IF=1 IOPL=0") != std::string::npos);
  CHECK(r.out.find("  popek: done                          | popek: done") != std::string::npos);
  CHECK(r.out.find("sensitive w/o trap") != std::string::npos);
  CHECK(r.out.find("cycles (model)") != std::string::npos);
  CHECK(r.out.find("trap-emulate vs native: first divergence at VM exit #") != std::string::npos);
  CHECK(r.out.find("last sensitive instruction that did not trap before it: pushfd at rip=0x") !=
        std::string::npos);
  CHECK(r.out.find("vt vs native: equal") != std::string::npos);

  r = run_trapscope({"demo", "popek", "--sim", "--deprivilege", "3"});
  CHECK(r.out.find("|*push cs:   000b (CPL 3)") != std::string::npos);
  CHECK(run_trapscope({"demo", "/nonexistent/guest"}).exit_code == 2);
  CHECK(run_trapscope({"demo", "popek", "--deprivilege", "0"}).exit_code == 2);
}

TEST_CASE("virtualization events survive a trace file and show", "[pg][cli][trace]") {
  const std::string path = trapscope::test::temp_path("vt.trace");
  auto r = run_trapscope({"run", "popek", "--technique", "vt", "--trace", path, "-q"});
  REQUIRE(r.exit_code == 0);
  r = run_trapscope({"show", path, "--no-timing"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("VM exit  30 IO_INSTRUCTION") != std::string::npos);
  CHECK(r.out.find("VM entry 12 HLT") != std::string::npos);
  r = run_trapscope({"run", "popek", "--technique", "trap-emulate", "--trace", path, "-q"});
  r = run_trapscope({"show", path, "--format", "jsonl"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("\"type\":\"sensitive_no_trap\"") != std::string::npos);
  CHECK(r.out.find("\"type\":\"vmm_trap\"") != std::string::npos);
}

TEST_CASE("demo popek: KVM is the ground truth for the native column", "[pg][cli][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  auto r = run_trapscope({"demo", "popek"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("native (KVM)") != std::string::npos);
  CHECK(r.out.find("kvm vs native simulator: equal") != std::string::npos);
}

#include "visualizer/core/describe.hpp"
#include "visualizer/core/event_store.hpp"

TEST_CASE("the visualizer stores and describes the virtualization events", "[pg][gui]") {
  trapscope::trace::Recorder ev;
  const std::vector<uint8_t> code = {0x9C, 0xFA, 0xF4};  // pushfd; cli; hlt
  run_code(code, Technique::kTrapEmulate, 1, ev);
  trapscope::trace::Recorder vt;
  run_code({0x0F, 0xA2, 0xF4}, Technique::kVt, 1, vt);  // cpuid; hlt
  trapscope::viz::EventStore store;
  for (size_t i = 0; i < ev.size(); ++i) REQUIRE(store.append(ev.at(i)));
  for (size_t i = 0; i < vt.size(); ++i) REQUIRE(store.append(vt.at(i)));
  std::vector<std::string> briefs, labels;
  for (size_t i = 0; i < store.size(); ++i) {
    trapscope::viz::EventRecord rec;
    store.load(i, &rec);
    briefs.push_back(trapscope::viz::event_brief(rec));
    labels.push_back(std::string(trapscope::viz::type_label(rec.header.type)));
  }
  auto has = [](const std::vector<std::string>& v, const std::string& what) {
    for (const auto& s : v) {
      if (s.find(what) != std::string::npos) return true;
    }
    return false;
  };
  CHECK(has(labels, "no trap"));
  CHECK(has(labels, "VMM trap"));
  CHECK(has(labels, "VT-x"));
  CHECK(has(briefs, "pushfd: sensitive instruction did not trap"));
  CHECK(has(briefs, "cli: privileged at real CPL 1"));
  CHECK(has(briefs, "VM exit  10 CPUID"));
  CHECK(has(briefs, "VM entry 10 CPUID"));
}
