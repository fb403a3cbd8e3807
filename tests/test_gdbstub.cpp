// The gdb stub (gdbstub/, docs/gdb.md): the RSP packet layer, the register layouts, the command
// layer over a simulator in-process, and the real `gdb` (batch mode) against `trapscope run
// --gdb` on both engines. Ports: the stub binds port 0 and prints the port the kernel chose, so
// tests that run at the same time never clash.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "gdbstub/packet.hpp"
#include "gdbstub/register_layout.hpp"
#include "gdbstub/session.hpp"
#include "guests/guest_catalog.hpp"
#include "tests/support.hpp"
#include "vmm/doctor.hpp"

extern char** environ;

using namespace trapscope;
using gdbstub::Input;

namespace {

std::vector<Input> parse_all(std::string_view bytes) {
  gdbstub::PacketParser p;
  std::vector<Input> out;
  p.feed(bytes, out);
  return out;
}

// A connection scripted by the test: what gdb "sends" is given up front.
struct StringChannel final : gdbstub::Channel {
  std::string incoming;
  std::string written;
  // Empty: a poll (timeout 0) finds nothing, a wait finds the connection closed.
  Read read(std::string* out, int timeout_ms) override {
    if (incoming.empty()) return timeout_ms == 0 ? Read::kTimeout : Read::kClosed;
    *out += incoming;
    incoming.clear();
    return Read::kData;
  }
  bool write(std::string_view bytes) override {
    written += bytes;
    return true;
  }
};

// One packet through Session::handle.
std::string ask(gdbstub::Session& s, std::string_view packet,
                std::optional<gdbstub::SessionEnd>* end = nullptr) {
  StringChannel c;
  std::optional<gdbstub::SessionEnd> e;
  const std::string r = s.handle(packet, c, &e);
  if (end) *end = e;
  return r;
}

uint64_t hex_le(const std::string& hex) {
  std::vector<uint8_t> b;
  REQUIRE(gdbstub::from_hex(hex, &b));
  uint64_t v = 0;
  for (size_t i = 0; i < b.size() && i < 8; ++i) v |= uint64_t{b[i]} << (8 * i);
  return v;
}

std::string hex_addr(uint64_t a) {
  std::ostringstream o;
  o << std::hex << a;
  return o.str();
}

// Addresses in the boot guest (guests/boot.asm), found from its bytes: the real-mode `mov cr0,
// eax` (0F 22 C0) with the far jump after it, and the second one (paging on) with the jump into
// 64-bit code after it.
struct BootSites {
  uint64_t mov_cr0_pe = 0, mov_cr0_pg = 0;
};
BootSites boot_sites() {
  const auto g = guests::find("boot");
  REQUIRE(g);
  BootSites s;
  const auto& img = g->image;
  std::vector<uint64_t> at;
  for (size_t i = 0; i + 2 < img.size(); ++i) {
    if (img[i] == 0x0F && img[i + 1] == 0x22 && img[i + 2] == 0xC0) at.push_back(0x8000 + i);
  }
  REQUIRE(at.size() >= 2);
  s.mov_cr0_pe = at[0];
  s.mov_cr0_pg = at[1];
  return s;
}

}  // namespace

TEST_CASE("RSP framing: checksums, escapes, acks, interrupts", "[gdbstub]") {
  const std::string f = gdbstub::frame("OK");
  CHECK(f == "$OK#9a");
  auto in = parse_all("+$g#67-\x03$g#00");
  REQUIRE(in.size() == 5);
  CHECK(in[0].kind == Input::Kind::kAck);
  CHECK(in[1].kind == Input::Kind::kPacket);
  CHECK(in[1].data == "g");
  CHECK(in[2].kind == Input::Kind::kNack);
  CHECK(in[3].kind == Input::Kind::kInterrupt);
  CHECK(in[4].kind == Input::Kind::kBadChecksum);
  // Escapes: frame() escapes #, $, } and *, and the parser undoes it; a split anywhere works.
  const std::string data = std::string("a#b$c}d*e\x03", 10);
  const std::string framed = gdbstub::frame(data);
  CHECK(framed.find('*') == std::string::npos);
  gdbstub::PacketParser p;
  std::vector<Input> got;
  for (char c : framed) p.feed(std::string_view(&c, 1), got);
  REQUIRE(got.size() == 1);
  CHECK(got[0].data == data);
  // A `$` inside a packet starts a new one; noise between packets is ignored.
  in = parse_all("xyz$ab$g#67");
  REQUIRE(in.size() == 1);
  CHECK(in[0].data == "g");
  // A non-hex checksum is a bad checksum.
  in = parse_all("$g#zz");
  REQUIRE(in.size() == 1);
  CHECK(in[0].kind == Input::Kind::kBadChecksum);
}

TEST_CASE("RSP parser: an over-long packet is consumed and refused, never stored", "[gdbstub]") {
  std::string big = "$" + std::string(gdbstub::kMaxPacketBytes + 100, 'A');
  uint8_t sum = 0;
  for (size_t i = 1; i < big.size(); ++i) sum = static_cast<uint8_t>(sum + 'A');
  char cs[3];
  std::snprintf(cs, sizeof cs, "%02x", sum);
  big += std::string("#") + cs + "$g#67";
  const auto in = parse_all(big);
  REQUIRE(in.size() == 2);
  CHECK(in[0].kind == Input::Kind::kOverflow);
  CHECK(in[0].data.empty());
  CHECK(in[1].data == "g");
}

TEST_CASE("register layouts follow the mode and round-trip", "[gdbstub]") {
  x86::CpuState s;
  CHECK(gdbstub::layout_for(s) == gdbstub::Layout::kI8086);
  s.cr0 |= x86::kCr0Pe;
  CHECK(gdbstub::layout_for(s) == gdbstub::Layout::kI386);
  s.efer |= x86::kEferLma;
  s.seg[x86::kCs].l = 1;
  CHECK(gdbstub::layout_for(s) == gdbstub::Layout::kX86_64);
  using gdbstub::Layout;
  // i386: 16 core registers of 4 bytes, 8 x 10-byte st, 8 x87 control, 8 xmm + mxcsr, 5 system.
  CHECK(gdbstub::read_all(Layout::kI386, s).size() == 16 * 4 + 8 * 10 + 8 * 4 + 8 * 16 + 4 + 5 * 8);
  CHECK(gdbstub::read_all(Layout::kX86_64, s).size() ==
        17 * 8 + 7 * 4 + 8 * 10 + 8 * 4 + 16 * 16 + 4 + 5 * 8);
  CHECK(gdbstub::register_name(Layout::kI386, 8) == "eip");
  CHECK(gdbstub::register_name(Layout::kX86_64, 16) == "rip");
  CHECK(gdbstub::target_xml(Layout::kI8086).find("<architecture>i8086</architecture>") != std::string::npos);
  CHECK(gdbstub::target_xml(Layout::kX86_64).find("name=\"r15\"") != std::string::npos);
  s.gpr[x86::kRax] = 0x1122334455667788;
  s.rip = 0x8000;
  for (Layout l : {Layout::kI8086, Layout::kI386, Layout::kX86_64}) {
    x86::CpuState t = s;
    REQUIRE(gdbstub::write_all(l, &t, gdbstub::read_all(l, s)));
    CHECK(t == s);  // a G that echoes g changes nothing
  }
  // A 32-bit write keeps the upper half; a real-mode segment write sets the base.
  x86::CpuState r;
  const uint8_t eax[4] = {0x78, 0x56, 0x34, 0x12};
  r.gpr[x86::kRax] = 0xAAAABBBB00000000;
  REQUIRE(gdbstub::write_one(Layout::kI8086, &r, 0, eax));
  CHECK(r.gpr[x86::kRax] == 0xAAAABBBB12345678);
  const uint8_t ds[4] = {0x00, 0x10, 0, 0};
  REQUIRE(gdbstub::write_one(Layout::kI8086, &r, 12, ds));
  CHECK(r.seg[x86::kDs].base == 0x10000);
  CHECK_FALSE(gdbstub::write_one(Layout::kI8086, &r, 0, std::span(eax, 3)));
}

TEST_CASE("the command layer on the simulator: registers, memory, breakpoints, steps",
          "[gdbstub]") {
  auto m = test::guest_backend("boot", false);
  gdbstub::Session s(*m, nullptr);
  CHECK(ask(s, "qSupported:swbreak+").find("qXfer:features:read+") != std::string::npos);
  CHECK(ask(s, "qSupported").find("ReverseStep+") != std::string::npos);
  const std::string xml = ask(s, "qXfer:features:read:target.xml:0,3fff");
  CHECK(xml.substr(0, 1) == "l");
  CHECK(xml.find("i8086") != std::string::npos);
  CHECK(ask(s, "?") == "T05thread:1;");
  CHECK(ask(s, "qAttached") == "1");
  CHECK(ask(s, "qfThreadInfo") == "m1");
  CHECK(ask(s, "vCont?") == "vCont;c;C;s;S");
  CHECK(ask(s, "qNonsense") == "");
  CHECK(ask(s, "Xdeadbeef") == "");
  CHECK(hex_le(ask(s, "p8")) == 0x8000);  // eip
  CHECK(ask(s, "p999") == "E16");
  // Register and memory writes reach the machine.
  CHECK(ask(s, "P0=efbeadde") == "OK");
  CHECK(m->registers().gpr[x86::kRax] == 0xdeadbeef);
  CHECK(ask(s, "M90000,2:5aa5") == "OK");
  CHECK(m->memory()[0x90000] == 0x5a);
  CHECK(ask(s, "m90000,2") == "5aa5");
  CHECK(ask(s, "m7fffffff0,4") == "E14");  // outside guest memory
  CHECK(ask(s, "M90000,2:5a") == "E16");   // length and data disagree
  // Break at the real-mode mov cr0, step through it and the far jump.
  const BootSites b = boot_sites();
  CHECK(ask(s, "Z0," + hex_addr(b.mov_cr0_pe) + ",1") == "OK");
  CHECK(ask(s, "c") == "T05thread:1;swbreak:;");
  CHECK(m->registers().rip == b.mov_cr0_pe);
  CHECK(ask(s, "z0," + hex_addr(b.mov_cr0_pe) + ",1") == "OK");
  CHECK(ask(s, "s") == "T05thread:1;");
  CHECK((m->registers().cr0 & x86::kCr0Pe));
  CHECK(ask(s, "vCont;s:1") == "T05thread:1;");
  CHECK(m->registers().seg[x86::kCs].selector == 0x08);
  // The layout gdb read stays what `g` sends until gdb reads the description again.
  CHECK(ask(s, "g").size() == 2 * gdbstub::read_all(gdbstub::Layout::kI386, {}).size());
  // Reverse: one step back is the far jump again, in real mode.
  CHECK(ask(s, "bs") == "T05thread:1;");
  CHECK(m->registers().seg[x86::kCs].selector == 0);
  CHECK(m->registers().rip == b.mov_cr0_pe + 3);
  // A hardware breakpoint on the 64-bit jump's mov cr0, then run to the end.
  CHECK(ask(s, "Z1," + hex_addr(b.mov_cr0_pg) + ",1") == "OK");
  CHECK(ask(s, "c") == "T05thread:1;hwbreak:;");
  CHECK(m->registers().rip == b.mov_cr0_pg);
  // Reverse-continue from here goes back to the start: no breakpoint is hit before.
  CHECK(ask(s, "bc") == "T05thread:1;replaylog:begin;");
  CHECK(m->registers().rip == 0x8000);
  CHECK(ask(s, "c") == "T05thread:1;hwbreak:;");
  CHECK(ask(s, "z1," + hex_addr(b.mov_cr0_pg) + ",1") == "OK");
  std::optional<gdbstub::SessionEnd> end;
  CHECK(ask(s, "c", &end) == "W00");  // boot halts
  CHECK(end == gdbstub::SessionEnd::kRunEnded);
  CHECK(s.outcome().reason == trace::RunEndReason::kHalted);
}

TEST_CASE("the command layer: a write watchpoint on the simulator", "[gdbstub]") {
  auto m = test::guest_backend("boot", false);
  gdbstub::Session s(*m, nullptr);
  // boot writes PDPT | P | RW into PML4[0] at 0x20000 (guests/boot.asm).
  CHECK(ask(s, "Z2,20000,4") == "OK");
  CHECK(ask(s, "c") == "T05thread:1;watch:20000;");
  CHECK(m->memory()[0x20000] == 0x03);
  CHECK(ask(s, "z2,20000,4") == "OK");
  CHECK(ask(s, "Z2,20000,0") == "E16");
  CHECK(ask(s, "qRcmd," + gdbstub::to_hex(std::string_view("events 3"))) == "OK");
  CHECK(ask(s, "k") == "");
}

TEST_CASE("a run under gdb has one run end: the guest's, not one per step", "[gdbstub]") {
  struct Count final : trace::EventSink {
    void on_event(const trace::EventHeader& e) override {
      run_ends += e.type == trace::EventType::kRunEnd;
      exits += e.type == trace::EventType::kVmExit;
    }
    int run_ends = 0, exits = 0;
  } count;
  auto m = test::guest_backend("boot", false);
  gdbstub::Session s(*m, &count);
  for (int i = 0; i < 5; ++i) CHECK(ask(s, "s") == "T05thread:1;");
  CHECK(ask(s, "Z0," + hex_addr(boot_sites().mov_cr0_pg) + ",1") == "OK");
  CHECK(ask(s, "c") == "T05thread:1;swbreak:;");
  CHECK(count.run_ends == 0);
  CHECK(ask(s, "z0," + hex_addr(boot_sites().mov_cr0_pg) + ",1") == "OK");
  CHECK(ask(s, "c") == "W00");
  CHECK(count.run_ends == 1);
  // The same VM exits as a run without gdb: one per console byte and the final hlt.
  auto plain = test::guest_backend("boot", false);
  Count direct;
  plain->run({}, &direct);
  CHECK(count.exits == direct.exits);
  CHECK(direct.run_ends == 1);
}

namespace {
// A peer that has sent Ctrl-C (0x03) by the time the stub polls.
struct InterruptingChannel final : gdbstub::Channel {
  Read read(std::string* out, int) override {
    out->push_back('\x03');
    return Read::kData;
  }
  bool write(std::string_view) override { return true; }
};

void interrupt_endless_loop(backend::Kind kind) {
  backend::Config cfg;
  cfg.memory_bytes = 1 << 20;
  auto m = backend::make_backend(kind, cfg);
  const uint8_t loop[] = {0xEB, 0xFE};  // jmp $
  m->load(loop);
  gdbstub::Session s(*m, nullptr);
  InterruptingChannel c;
  std::optional<gdbstub::SessionEnd> end;
  CHECK(s.handle("c", c, &end) == "T02thread:1;");  // SIGINT
  CHECK_FALSE(end);
  CHECK(m->registers().rip == 0x8000);
}
}  // namespace

TEST_CASE("Ctrl-C from gdb stops an endless guest on the simulator", "[gdbstub]") {
  interrupt_endless_loop(backend::Kind::kSim);
}

TEST_CASE("Ctrl-C from gdb stops an endless guest on KVM", "[gdbstub][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  interrupt_endless_loop(backend::Kind::kKvm);
}

TEST_CASE("a hostile packet stream never ends the session wrongly", "[gdbstub]") {
  auto m = test::guest_backend("boot", false);
  gdbstub::Session s(*m, nullptr);
  StringChannel c;
  c.incoming = "$g#00" + std::string("$") + std::string(100000, 'A') + "#00" + "garbage\x03" +
               gdbstub::frame("Zq") + gdbstub::frame("m0,ffffffffffffffff") +
               gdbstub::frame("qXfer:features:read:target.xml:ffffffffffffffff,ffffffff") +
               gdbstub::frame("vCont;x") + "$unterminated";
  CHECK(s.serve(c) == gdbstub::SessionEnd::kDisconnected);
  CHECK(c.written.substr(0, 1) == "-");  // the bad checksum was refused
  CHECK(c.written.find("$E01#a6") != std::string::npos);
  CHECK(m->registers().rip == 0x8000);  // nothing ran
}

// ---- the real gdb against `trapscope run --gdb` ---------------------------------------------

namespace {

struct Stub {
  pid_t pid = -1;
  unsigned port = 0;
  std::string err_path, out_path;
};

// Starts `trapscope run GUEST --gdb 127.0.0.1:0 …` and waits for the port it prints.
Stub start_stub(const std::vector<std::string>& args) {
  Stub s;
  s.err_path = test::temp_path("gdbstub-err.txt");
  s.out_path = test::temp_path("gdbstub-out.txt");
  std::vector<std::string> argv = {TRAPSCOPE_EXE, "run"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--gdb", "127.0.0.1:0"});
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, s.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, s.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(posix_spawn(&s.pid, cargv[0], &fa, nullptr, cargv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&fa);
  static const std::regex kPort("listening on 127\\.0\\.0\\.1:([0-9]+)");
  for (int i = 0; i < 300 && s.port == 0; ++i) {
    std::ifstream in(s.err_path);
    std::stringstream text;
    text << in.rdbuf();
    std::smatch m;
    const std::string t = text.str();
    if (std::regex_search(t, m, kPort)) s.port = static_cast<unsigned>(std::stoul(m[1].str()));
    if (s.port == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (s.port == 0) kill(s.pid, SIGKILL);
  REQUIRE(s.port != 0);
  return s;
}

// Waits (at most 60 s) for the stub's process; its exit status, or -1 if it had to be killed.
int wait_stub(const Stub& s) {
  for (int i = 0; i < 600; ++i) {
    int status = 0;
    if (waitpid(s.pid, &status, WNOHANG) == s.pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  kill(s.pid, SIGKILL);
  waitpid(s.pid, nullptr, 0);
  return -1;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream t;
  t << in.rdbuf();
  return t.str();
}

bool have_gdb(std::string* why) {
  const auto r = test::run_command({"gdb", "--version"}, {}, 30);
  if (r.exit_code != 0) *why = "no gdb here (Debian package gdb; scripts/setup.sh installs it)";
  return r.exit_code == 0;
}

test::CommandResult run_gdb(unsigned port, const std::vector<std::string>& commands) {
  std::vector<std::string> argv = {"gdb", "-nx", "-batch", "-ex", "set confirm off",
                                   "-ex", "target remote 127.0.0.1:" + std::to_string(port)};
  for (const auto& c : commands) {
    argv.push_back("-ex");
    argv.push_back(c);
  }
  return test::run_command(argv, {}, 120);
}

// The boot guest under gdb: registers, memory, a breakpoint, stepi through both mode switches,
// a watchpoint, reconnecting for the x86-64 layout, detach.
void boot_under_gdb(const std::string& backend) {
  const BootSites b = boot_sites();
  Stub stub = start_stub({"boot", "--backend", backend, "-q"});
  const auto r = run_gdb(stub.port, {
      "p/x $eip", "p/x $cs",
      "set $ebx = 0x1234", "p/x $ebx",
      "set {int}0x90000 = 0x11223344", "x/wx 0x90000",
      "break *0x" + hex_addr(b.mov_cr0_pe), "continue",
      "x/i $pc", "stepi", "p/x $cr0", "stepi", "p/x $cs",
      "set architecture i386", "x/i $pc",
      "delete", "watch *(int*)0x21000", "continue", "delete",
      "hbreak *0x" + hex_addr(b.mov_cr0_pg), "continue", "stepi", "stepi", "p/x $cs", "p/x $efer",
      "delete", "disconnect", "set architecture auto",
      "target remote 127.0.0.1:" + std::to_string(stub.port),
      "p/x $rip", "x/i $pc", "detach"});
  const int status = wait_stub(stub);
  INFO("gdb stdout:\n" << r.out << "\ngdb stderr:\n" << r.err << "\nstub stderr:\n"
                       << slurp(stub.err_path) << "\nstub stdout:\n" << slurp(stub.out_path));
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("$1 = 0x8000") != std::string::npos);
  CHECK(r.out.find("$2 = 0x0") != std::string::npos);
  CHECK(r.out.find("$3 = 0x1234") != std::string::npos);
  CHECK(r.out.find("0x90000:\t0x11223344") != std::string::npos);
  CHECK(r.out.find("mov    %eax,%cr0") != std::string::npos);
  CHECK(r.out.find("$4 = 0x60000011") != std::string::npos);  // CR0.PE
  CHECK(r.out.find("$5 = 0x8") != std::string::npos);         // CS: the 32-bit code segment
  CHECK(r.out.find("mov    $0x10,%ax") != std::string::npos); // 32-bit code disassembled
  // Data watchpoints on KVM only where the host reports them (kvm_pvm does not: refused).
  if (backend == "sim" || vmm::probe_debug(vmm::DebugProbe::kWriteWatch) == "reported") {
    CHECK(r.out.find("New value = 139267") != std::string::npos);  // PDPT[0] = PD | P | RW
  } else {
    CHECK(r.err.find("Could not insert hardware watchpoint 2") != std::string::npos);
  }
  CHECK(r.out.find("$6 = 0x18") != std::string::npos);        // CS: the 64-bit code segment
  CHECK(r.out.find("$7 = 0x500") != std::string::npos);       // EFER.LME | LMA
  CHECK(std::regex_search(r.out, std::regex("\\$8 = 0x[0-9a-f]+")));
  CHECK(r.err.find("too long") == std::string::npos);
  CHECK(slurp(stub.out_path).find("long mode") != std::string::npos);  // ran on after detach
  CHECK(status == 0);
  if (backend == "sim") {
    // The summary counts the whole run, under gdb and after it, as a run without gdb does.
    const auto plain = test::run_trapscope({"run", "boot", "--backend", "sim", "-q"});
    static const std::regex kExits("after [0-9]+ VM exits and [0-9]+ instructions");
    std::smatch a, b;
    const std::string with_gdb = slurp(stub.out_path);
    REQUIRE(std::regex_search(plain.out, a, kExits));
    REQUIRE(std::regex_search(with_gdb, b, kExits));
    CHECK(a.str() == b.str());
  }
}

}  // namespace

TEST_CASE("gdb drives the boot guest through its mode switches on the simulator", "[gdbstub][gdb]") {
  std::string why;
  if (!have_gdb(&why)) SKIP_TEST(why);
  boot_under_gdb("sim");
}

TEST_CASE("gdb drives the boot guest through its mode switches on KVM", "[gdbstub][gdb][kvm]") {
  std::string why;
  if (!have_gdb(&why)) SKIP_TEST(why);
  REQUIRE_KVM_OR_SKIP();
  for (const auto what : {vmm::DebugProbe::kHwBreakpoint, vmm::DebugProbe::kSingleStep}) {
    const std::string p = vmm::probe_debug(what);
    if (p != "reported") SKIP_TEST("this host's KVM: a debug exit in real-mode code is " << p);
  }
  boot_under_gdb("kvm");
}

TEST_CASE("gdb reverse-stepi and reverse-continue on the simulator", "[gdbstub][gdb]") {
  std::string why;
  if (!have_gdb(&why)) SKIP_TEST(why);
  const BootSites b = boot_sites();
  Stub stub = start_stub({"boot", "--backend", "sim", "-q"});
  const auto r = run_gdb(stub.port, {
      "break *0x" + hex_addr(b.mov_cr0_pe), "continue", "stepi", "stepi", "p/x $cs",
      "reverse-stepi", "p/x $cs", "reverse-stepi", "p/x $pc", "stepi", "stepi", "reverse-continue",
      "p/x $pc", "kill"});
  const int status = wait_stub(stub);
  INFO("gdb stdout:\n" << r.out << "\ngdb stderr:\n" << r.err << "\nstub stderr:\n"
                       << slurp(stub.err_path));
  CHECK(r.out.find("$1 = 0x8") != std::string::npos);
  CHECK(r.out.find("$2 = 0x0") != std::string::npos);
  CHECK(r.out.find("$3 = 0x" + hex_addr(b.mov_cr0_pe)) != std::string::npos);
  CHECK(r.out.find("$4 = 0x" + hex_addr(b.mov_cr0_pe)) != std::string::npos);
  CHECK(status == 130);  // killed by gdb: the run was stopped (cli/exit_codes.hpp)
}

TEST_CASE("a hostile client and a dropped connection do not end the stub", "[gdbstub][gdb]") {
  std::string why;
  if (!have_gdb(&why)) SKIP_TEST(why);
  Stub stub = start_stub({"boot", "--backend", "sim", "-q"});
  // A raw client: bad checksums, a huge packet, unknown packets, then the connection drops.
  {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(stub.port));
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    std::string junk = "$g#00$" + std::string(1 << 20, 'x') + "#00" + gdbstub::frame("qBogus") +
                       gdbstub::frame("vFoo;bar") + "\x03\x03}}}$$$#";
    CHECK(send(fd, junk.data(), junk.size(), MSG_NOSIGNAL) > 0);
    close(fd);
  }
  const auto r = run_gdb(stub.port, {"p/x $eip", "detach"});
  const int status = wait_stub(stub);
  INFO("gdb stdout:\n" << r.out << "\ngdb stderr:\n" << r.err << "\nstub stderr:\n"
                       << slurp(stub.err_path));
  CHECK(r.out.find("$1 = 0x8000") != std::string::npos);
  CHECK(slurp(stub.err_path).find("connection closed") != std::string::npos);
  CHECK(status == 0);
}
