// The VT-x model's VMCS and exits: exit qualifications decoded per the SDM's tables
// (x86/vmx.hpp), the --vmcs controls (sim/virt/vmcs.hpp) honoured by the model, the `vt-exit`
// condition kind, VT-x exits in the visualizer's model (step to VM exit, exit statistics,
// breakpoints) and a VMCS change that changes the next exit, live.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "guests/guest_catalog.hpp"
#include "sim/sim_machine.hpp"
#include "tests/gui_harness.hpp"
#include "tests/support.hpp"
#include "trace/condition.hpp"
#include "trace/exit_stats.hpp"
#include "trace/recorder.hpp"
#include "visualizer/core/describe.hpp"
#include "visualizer/core/live_controller.hpp"
#include "x86/vmx.hpp"

using namespace trapscope;
using trace::EventType;

namespace {

std::vector<trace::VirtEvent> vt_exits(const trace::Recorder& ev) {
  std::vector<trace::VirtEvent> out;
  for (size_t i = 0; i < ev.size(); ++i) {
    if (trace::is_vt_exit(ev.at(i))) out.push_back(reinterpret_cast<const trace::VirtEvent&>(ev.at(i)));
  }
  return out;
}

// 32-bit protected-mode code at CPL 0 under the VT-x model with the controls of `spec`.
std::vector<trace::VirtEvent> run_vt(std::vector<uint8_t> code, const std::string& spec) {
  sim::SimConfig cfg;
  cfg.mode = platform::BootMode::kProtected;
  cfg.technique = sim::virt::Technique::kVt;
  std::string error;
  REQUIRE(sim::virt::apply_vmcs_spec(cfg.vmcs, spec, &error));
  sim::SimMachine m(cfg);
  m.load(code);
  sim::SimLimits lim;
  lim.max_instructions = 100;
  trace::Recorder ev;
  m.run(lim, &ev);
  return vt_exits(ev);
}

std::vector<uint32_t> reasons(const std::vector<trace::VirtEvent>& exits) {
  std::vector<uint32_t> r;
  for (const auto& e : exits) r.push_back(e.exit_reason);
  return r;
}

}  // namespace

TEST_CASE("exit qualifications are decoded per the SDM's tables", "[vmcs]") {
  // Table 28-3: CR3 (3:0 = 3), MOV to CR (5:4 = 0), RBX (11:8 = 3).
  CHECK(x86::exit_qualification_text(28, 0x303) == "MOV to CR3 from RBX");
  CHECK(x86::exit_qualification_text(28, 0x013) == "MOV from CR3 to RAX");
  CHECK(x86::exit_qualification_text(28, 0x020) == "CLTS");
  CHECK(x86::exit_qualification_text(28, 0x00010030) == "LMSW 0x1");
  const auto cr = x86::decode_exit_qualification(28, 0x303);
  REQUIRE(cr.size() == 5);
  CHECK(cr[0].value == "3 (CR3)");
  CHECK(cr[1].value == "0 = MOV to CR");
  CHECK(cr[3].value == "3 (RBX)");
  // Table 28-5: size 1 (2:0 = 0), OUT (3 = 0), immediate (6 = 1), port 0xe9 (31:16).
  CHECK(x86::exit_qualification_text(30, (0xE9u << 16) | 0x40) == "OUT 1 byte to port 0xe9 (immediate)");
  CHECK(x86::exit_qualification_text(30, (0x3F8u << 16) | 0x39) ==
        "REP INS 2 bytes from port 0x3f8 (DX)");
  // Table 28-2: TSS selector 0x28, source 3 = task gate in IDT.
  CHECK(x86::exit_qualification_text(9, 0xC0000028u) == "task switch to TSS 0x28 by task gate in IDT");
  // Table 28-4: MOV from DR7 to RCX.
  CHECK(x86::exit_qualification_text(29, 0x117) == "MOV from DR7 to RCX");
  // Table 28-7: one text for the EPT violation event and the VT-x exit.
  CHECK(x86::exit_qualification_text(48, 0x182) ==
        "data write, EPT entry not present, guest-linear address valid, access to the "
        "translated address");
  CHECK(x86::exit_qualification_text(14, 0x7000) == "INVLPG linear address 0x7000");
  // Tables 28-10, 28-11: the instruction identity in bits 29:28 of the instruction information.
  CHECK(x86::exit_qualification_text(46, 0x10, x86::descriptor_table_info(2)) ==
        "LGDT, displacement 0x10");
  CHECK(x86::descriptor_table_instruction(47, x86::descriptor_table_info(1)) == "STR");
  CHECK(x86::decode_exit_qualification(10, 0).empty());  // CPUID: no qualification
  CHECK(x86::vmx_exit_reason_name(46) == "GDTR_IDTR");
  CHECK(x86::vmx_exit_reason_name(35) == "?");
  CHECK(x86::vmx_exit_reason_title(28) == "Control-register accesses");
}

TEST_CASE("vmcs lists (--vmcs): parsed by SDM name, refused whole with the reason", "[vmcs]") {
  sim::virt::VmcsControls c;
  std::string error;
  REQUIRE(sim::virt::apply_vmcs_spec(c, "+descriptor-table-exiting,-hlt-exiting", &error));
  CHECK(c.descriptor_table_exiting);
  CHECK_FALSE(c.hlt_exiting);
  REQUIRE(sim::virt::apply_vmcs_spec(c, "+exception:#UD,-io:0xe9,exception-bitmap=0x4040", &error));
  CHECK(c.exception_bitmap == 0x4040);
  CHECK_FALSE(c.io_bitmap[0xE9]);
  CHECK(sim::virt::vmcs_spec_of(c) ==
        "-hlt-exiting,+descriptor-table-exiting,exception-bitmap=0x4040,-io:0xe9");
  sim::virt::VmcsControls again;
  REQUIRE(sim::virt::apply_vmcs_spec(again, sim::virt::vmcs_spec_of(c), &error));
  CHECK(sim::virt::vmcs_spec_of(again) == sim::virt::vmcs_spec_of(c));
  // The word of a field (SDM bit numbers): HLT exiting is bit 7 of the primary controls.
  CHECK((sim::virt::field_word(c, sim::virt::VmcsField::kPrimary) & (1u << 7)) == 0);
  CHECK(sim::virt::field_word(c, sim::virt::VmcsField::kSecondary) & (1u << 2));

  const sim::virt::VmcsControls before = c;
  CHECK_FALSE(sim::virt::apply_vmcs_spec(c, "+rdtsc-exiting,-hlt", &error));
  CHECK(error.rfind("'-hlt': not a VMCS control (", 0) == 0);
  CHECK_FALSE(c.rdtsc_exiting);  // nothing of a refused list is applied
  CHECK_FALSE(sim::virt::apply_vmcs_spec(c, "+nmi-exiting", &error));
  CHECK(error.find("does not model NMI exiting") != std::string::npos);
  CHECK_FALSE(sim::virt::apply_vmcs_spec(c, "+io:0x10000", &error));
  CHECK_FALSE(sim::virt::apply_vmcs_spec(c, "hlt-exiting", &error));
  CHECK_FALSE(sim::virt::apply_vmcs_spec(c, "+hlt-exiting,,", &error));
  CHECK(error == "'': an empty item");
  CHECK(sim::virt::vmcs_spec_of(c) == sim::virt::vmcs_spec_of(before));
}

TEST_CASE("VT-x model: the controls decide which instructions exit", "[vmcs][sim]") {
  // sgdt [0x9000]; sidt [0x9010]; lgdt [0x9000]; str ax; rdtsc; hlt
  const std::vector<uint8_t> code = {0x0F, 0x01, 0x05, 0x00, 0x90, 0x00, 0x00,
                                     0x0F, 0x01, 0x0D, 0x10, 0x90, 0x00, 0x00,
                                     0x0F, 0x01, 0x15, 0x00, 0x90, 0x00, 0x00,
                                     0x0F, 0x00, 0xC8, 0x0F, 0x31, 0xF4};
  // The defaults (as KVM): only HLT exits here.
  CHECK(reasons(run_vt(code, "")) == std::vector<uint32_t>{12});
  // Descriptor-table exiting: 46 for SGDT, SIDT, LGDT, 47 for STR (SDM Vol. 3C 26.1.3).
  const auto dt = run_vt(code, "+descriptor-table-exiting");
  REQUIRE(reasons(dt) == std::vector<uint32_t>{46, 46, 46, 47, 12});
  CHECK(x86::descriptor_table_instruction(46, dt[0].interruption_info) == "SGDT");
  CHECK(dt[0].qualification == 0x9000);  // the displacement
  CHECK(x86::descriptor_table_instruction(46, dt[1].interruption_info) == "SIDT");
  CHECK(x86::descriptor_table_instruction(46, dt[2].interruption_info) == "LGDT");
  CHECK(x86::descriptor_table_instruction(47, dt[3].interruption_info) == "STR");
  // RDTSC exiting on, HLT exiting off.
  CHECK(reasons(run_vt(code, "+rdtsc-exiting,-hlt-exiting")) == std::vector<uint32_t>{16});
  // I/O: the bitmap, or (without bitmaps) unconditional I/O exiting.
  const std::vector<uint8_t> io = {0xE6, 0xE9, 0xF4};  // out 0xe9, al; hlt
  CHECK(reasons(run_vt(io, "")) == std::vector<uint32_t>{30, 12});
  CHECK(reasons(run_vt(io, "-io:0xe9")) == std::vector<uint32_t>{12});
  CHECK(reasons(run_vt(io, "-use-io-bitmaps")) == std::vector<uint32_t>{12});
  CHECK(reasons(run_vt(io, "-use-io-bitmaps,+unconditional-io-exiting")) ==
        std::vector<uint32_t>{30, 12});
}

TEST_CASE("the vt-exit kind: VT-x exits, never their entries", "[vmcs][conditions]") {
  trace::VirtEvent x{};
  x.header = trace::make_header<trace::VirtEvent>(EventType::kVmTransition);
  x.exit_reason = 28;
  trace::VirtEvent entry = x;
  entry.header.flags = trace::kVirtFlagEntry;
  std::string error;
  const auto c = trace::Condition::parse("vt-exit reason=28", &error);
  REQUIRE(c);
  CHECK(c->matches(x.header));
  CHECK_FALSE(c->matches(entry.header));
  const auto byname = trace::Condition::parse("vt-exit reason=CR_ACCESS", &error);
  REQUIRE(byname);
  CHECK(byname->matches(x.header));
  const auto bp = viz::parse_event_breakpoint("vt-exit reason=28", &error);
  REQUIRE(bp);
  viz::EventRecord rx{}, re{};
  std::memcpy(&rx, &x, sizeof x);
  std::memcpy(&re, &entry, sizeof entry);
  CHECK(viz::matches(*bp, rx));
  CHECK_FALSE(viz::matches(*bp, re));
  CHECK(viz::to_string(*bp) == "vt-exit reason=28");
  // `exit` stops at the model's exits too (step to VM exit under --technique vt).
  const auto exit_bp = viz::parse_event_breakpoint("exit reason=CR_ACCESS", &error);
  REQUIRE(exit_bp);
  CHECK(viz::matches(*exit_bp, rx));
  CHECK_FALSE(viz::matches(*exit_bp, re));
  CHECK(viz::stops_at(viz::StepKind::kVmExit, x.header));
  CHECK_FALSE(viz::stops_at(viz::StepKind::kVmExit, entry.header));
  CHECK_FALSE(viz::parse_event_breakpoint("vt-exit port=0xe9", &error));
}

TEST_CASE("the visualizer's model: VT-x exits in the lane, the statistics and the details",
          "[vmcs][gui]") {
  trace::VirtEvent x{};
  x.header = trace::make_header<trace::VirtEvent>(EventType::kVmTransition);
  x.header.cpl = 0;
  x.exit_reason = 28;
  x.qualification = 0x303;
  trace::VirtEvent entry = x;
  entry.header.flags = trace::kVirtFlagEntry;
  viz::Model m;
  m.append(x.header);
  m.append(entry.header);
  m.append(x.header);
  CHECK(m.lane(EventType::kVmTransition) == std::vector<uint32_t>{0, 2});
  CHECK(m.exit_stats().vmx_total() == 2);
  CHECK(m.exit_stats().by_vmx_reason().at(28) == 2);
  CHECK(m.exit_stats().total() == 0);  // KVM-numbered exits apart
  CHECK(m.find_next(viz::StepKind::kVmExit, 0) == 2u);
  viz::EventRecord r{};
  std::memcpy(&r, &x, sizeof x);
  const std::string en = viz::explain(r, viz::Lang::kEn);
  CHECK(en.find("CR_ACCESS (28)") != std::string::npos);
  CHECK(en.find("MOV to CR3 from RBX") != std::string::npos);
  CHECK(viz::explain(r, viz::Lang::kEs).find("Salida VM del modelo VT-x") != std::string::npos);
  bool decoded = false;
  for (const viz::Field& f : viz::event_fields(r)) {
    decoded = decoded || (f.name == "  5:4 access type" && f.value == "0 = MOV to CR");
  }
  CHECK(decoded);
}

namespace {

viz::LiveSource vt_source(const std::string& guest, const std::string& spec = "") {
  const auto g = guests::find(guest);
  REQUIRE(g);
  viz::LiveSource s;
  s.config.mode = *platform::parse_boot_mode(g->mode);
  s.config.technique = sim::virt::Technique::kVt;
  std::string error;
  REQUIRE(sim::virt::apply_vmcs_spec(s.config.vmcs, spec, &error));
  s.image.assign(g->image.begin(), g->image.end());
  s.name = guest;
  return s;
}

void settle(viz::Driver& d, viz::Model& m) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    d.poll(m);
    if (!d.busy()) {
      d.poll(m);
      return;
    }
    REQUIRE(std::chrono::steady_clock::now() < end);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void send(viz::Driver& d, viz::Model& m, viz::Command c) {
  d.send(std::move(c));
  settle(d, m);
}

viz::Command step_to(viz::StepKind k) {
  viz::Command c;
  c.op = viz::Command::Op::kStepTo;
  c.kind = k;
  return c;
}

uint32_t selected_vt_reason(const viz::Model& m) {
  REQUIRE(m.selected() >= 0);
  viz::EventRecord r;
  m.events().load(static_cast<size_t>(m.selected()), &r);
  REQUIRE(trace::is_vt_exit(r.header));
  return r.virt.exit_reason;
}

}  // namespace

TEST_CASE("live VT-x: step to VM exit, break-event vt-exit, a VMCS change takes the next exit",
          "[vmcs][gui]") {
  viz::Model m;
  viz::LiveController c(vt_source("rings"));
  settle(c, m);
  REQUIRE(m.vmcs());
  CHECK(m.vmcs()->hlt_exiting);

  SECTION("step to VM exit stops at the model's exits") {
    send(c, m, step_to(viz::StepKind::kVmExit));
    const uint32_t first = selected_vt_reason(m);
    CHECK(first != 0);
    send(c, m, step_to(viz::StepKind::kVtExit));
    selected_vt_reason(m);
  }
  SECTION("break-event vt-exit reason=28 stops at a CR access") {
    std::string error;
    auto bp = viz::parse_event_breakpoint("vt-exit reason=28", &error);
    REQUIRE(bp);
    bp->id = 1;
    viz::Command set;
    set.op = viz::Command::Op::kSetBreakpoints;
    set.breakpoints = {*bp};
    c.send(set);
    viz::Command run;
    run.op = viz::Command::Op::kRun;
    send(c, m, run);
    CHECK(m.status().state == viz::RunState::kIdle);
    CHECK(selected_vt_reason(m) == 28);
    CHECK(m.status().message.find("breakpoint 1 (vt-exit reason=28) hit") != std::string::npos);
  }
  SECTION("descriptor-table exiting on, port 0xe9 passed through: the next exit is LGDT's") {
    send(c, m, step_to(viz::StepKind::kVtExit));
    CHECK(selected_vt_reason(m) == 30);  // by default the console's `out` exits first
    viz::Command v;
    v.op = viz::Command::Op::kSetVmcs;
    v.text = "+descriptor-table-exiting,-io:0xe9";
    send(c, m, v);
    REQUIRE(m.vmcs());
    CHECK(m.vmcs()->descriptor_table_exiting);
    CHECK_FALSE(m.status().message_is_error);
    send(c, m, step_to(viz::StepKind::kVtExit));
    CHECK(selected_vt_reason(m) == 46);  // rings loads its GDT after its first words
    v.text = "+no-such-control";
    send(c, m, v);
    CHECK(m.status().message_is_error);
    CHECK(m.status().message.find("'+no-such-control': not a VMCS control") != std::string::npos);
  }
}

TEST_CASE("run --vmcs: a control changes the exits the run reports", "[vmcs][cli]") {
  const auto base = test::run_trapscope({"run", "rings", "--technique", "vt", "-q", "--stats"});
  REQUIRE(base.exit_code == 0);
  CHECK(base.out.find("GDTR_IDTR(46)") == std::string::npos);
  CHECK(base.out.find("CR_ACCESS(28)") != std::string::npos);
  const auto dt = test::run_trapscope(
      {"run", "rings", "--technique", "vt", "-q", "--stats", "--vmcs", "+descriptor-table-exiting"});
  REQUIRE(dt.exit_code == 0);
  CHECK(dt.out.find("GDTR_IDTR(46)") != std::string::npos);
  const auto text = test::run_trapscope(
      {"run", "rings", "--technique", "vt", "--no-timing", "--vmcs", "+descriptor-table-exiting"});
  CHECK(text.out.find("VM exit  46 GDTR_IDTR") != std::string::npos);
  CHECK(text.out.find("(LGDT, displacement") != std::string::npos);
  CHECK(text.out.find("(MOV to CR") != std::string::npos);
  const auto bad = test::run_trapscope({"run", "rings", "--technique", "vt", "--vmcs", "+hlt"});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("--vmcs '+hlt': not a VMCS control") != std::string::npos);
  const auto no_vt = test::run_trapscope({"run", "rings", "--vmcs", "+hlt-exiting"});
  CHECK(no_vt.exit_code == 2);
  CHECK(no_vt.err.find("needs --technique vt or pv") != std::string::npos);
}

TEST_CASE("gui under Xvfb: a VMCS control toggled changes the next VM exit, the panel shows it",
          "[vmcs][gui][xvfb]") {
  REQUIRE_XVFB_OR_SKIP();
  const auto g = test::run_gui({"rings", "--technique", "vt", "--size", "1600x900"},
                               "step-to exit\n"
                               "dump @before\n"
                               "reset\n"
                               "vmcs +descriptor-table-exiting,-io:0xe9\n"
                               "step-to vt-exit\n"
                               "assert-selected vt-exit reason=GDTR_IDTR\n"
                               "show vmcs\n"
                               "screenshot @after\n"
                               "dump @after\n");
  const nlohmann::json before = g.dump("before");
  REQUIRE(before["selected"].is_object());
  CHECK(before["selected"]["reason"] == "IO_INSTRUCTION");
  CHECK(before["vmcs"]["spec"] == "");
  const nlohmann::json after = g.dump("after");
  CHECK(after["selected"]["reason"] == "GDTR_IDTR");
  CHECK(after["selected"]["explain"].get<std::string>().find("LGDT") != std::string::npos);
  CHECK(after["vmcs"]["spec"] == "+descriptor-table-exiting,-io:0xe9");
  CHECK(after["gui"]["windows"]["vmcs"] == true);
  REQUIRE(!after["vmx_exit_stats"].empty());
  CHECK(after["vmx_exit_stats"][0]["reason"] == "GDTR_IDTR");
  const test::Screenshot p = g.screenshot("after");
  CHECK(p.stddev() > 20.0);
  CHECK(p.distinct_rows() > 300);
}

TEST_CASE("trap-and-emulate: the GUI's state has the real privilege beside the virtual",
          "[vmcs][gui]") {
  viz::Model m;
  viz::LiveSource s = vt_source("popek");
  s.config.technique = sim::virt::Technique::kTrapEmulate;
  s.config.deprivilege = 1;
  viz::LiveController c(std::move(s));
  settle(c, m);
  // To the first trap: the guest kernel at virtual CPL 0, really at CPL 1 with IF 1, IOPL 0.
  viz::Command to;
  to.op = viz::Command::Op::kStepTo;
  to.mask = 1u << static_cast<unsigned>(EventType::kVmmTrap);
  send(c, m, to);
  REQUIRE(m.has_registers());
  CHECK(m.registers().cpl() == 0);
  REQUIRE(m.status().real);
  CHECK(m.status().real->cpl == 1);
  CHECK(m.status().real->interrupts);
  CHECK(m.status().real->iopl == 0);
  CHECK_FALSE(m.vmcs());  // no VT-x model under trap-and-emulate: no VMCS panel
  // Under the VT-x model virtual and real are the same: nothing more to show.
  CHECK_FALSE(sim::virt::real_privilege(sim::virt::Technique::kVt, 1, 0, true));
  CHECK(sim::virt::real_privilege(sim::virt::Technique::kBt, 1, 0, true)->cpl == 1);
  CHECK_FALSE(sim::virt::real_privilege(sim::virt::Technique::kTrapEmulate, 1, 0, false));
}

TEST_CASE("KVM: `run` says once what it cannot see, the GUI's CPL lane is only at exits",
          "[vmcs][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  const auto r = test::run_trapscope({"run", "rings", "--backend", "kvm", "--no-timing"});
  REQUIRE(r.exit_code == 0);
  const std::string note = "KVM reports only VM exits";
  const size_t first = r.err.find(note);
  REQUIRE(first != std::string::npos);
  CHECK(r.err.find(note, first + 1) == std::string::npos);
  CHECK(r.err.find("--backend sim") != std::string::npos);

  const auto g = guests::find("rings");
  REQUIRE(g);
  viz::LiveSource s;
  s.kind = backend::Kind::kKvm;
  s.config.mode = *platform::parse_boot_mode(g->mode);
  s.image.assign(g->image.begin(), g->image.end());
  s.name = "rings";
  viz::Model m;
  viz::LiveController c(std::move(s));
  settle(c, m);
  CHECK(m.status().cpl_only_at_exits);
  CHECK_FALSE(m.status().real);
}
