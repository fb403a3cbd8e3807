// tests/test_kvm_fd.cpp — the RAII KVM fd wrappers (vmm/kvm.hpp): every ioctl's error path on a
// bad fd (no KVM needed), then the real /dev/kvm and a few tiny guests through vmm::KvmMachine.
#include <fcntl.h>
#include <linux/kvm.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "tests/support.hpp"
#include "trace/event.hpp"
#include "trace/recorder.hpp"
#include "vmm/kvm.hpp"
#include "vmm/kvm_machine.hpp"

using namespace trapscope;
using trace::RunEndReason;

namespace {

bool fd_is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1 || errno != EBADF; }

// An fd number that is not open in this process. The tests are single-threaded and never hold
// ~1000 fds, so nothing opened while a test runs can get this number (fds are allocated lowest
// first); closing it again (the wrappers own their fd) is then a harmless EBADF.
int unused_fd() {
  for (int fd = 1000; fd < 2000; ++fd) {
    if (!fd_is_open(fd)) return fd;
  }
  FAIL("no unused fd number in 1000..1999");
  return -1;
}

// Runs `f`, which must throw KvmError(op, err) with what() == "op: strerror(err)".
void require_kvm_error(const std::string& op, int err, const std::function<void()>& f) {
  INFO("operation " << op);
  bool thrown = false;
  try {
    f();
  } catch (const vmm::KvmError& e) {
    thrown = true;
    CHECK(e.op() == op);
    CHECK(e.error() == err);
    CHECK(std::string(e.what()) == op + ": " + std::strerror(err));
  }
  CHECK(thrown);
}

// Runs `code` as a KVM guest with a Recorder attached.
struct GuestRun {
  vmm::RunResult result;
  trace::Recorder events;
  std::string console;
  std::vector<platform::MmioWrite> mmio_writes;
};

GuestRun run_guest(const std::vector<uint8_t>& code, platform::BootMode mode, vmm::RunLimits limits) {
  vmm::MachineConfig cfg;
  cfg.mode = mode;
  vmm::KvmMachine m(cfg);
  m.load(code);
  GuestRun out;
  out.result = m.run(limits, &out.events);
  out.console = m.devices().console.text();
  out.mmio_writes = m.devices().mmio_writes;
  return out;
}

const trace::VmExitEvent& exit_at(const trace::Recorder& r, size_t i) {
  const auto* e = r.get<trace::VmExitEvent>(i, trace::EventType::kVmExit);
  REQUIRE(e != nullptr);
  return *e;
}

const trace::RunEndEvent& end_at(const trace::Recorder& r, size_t i) {
  const auto* e = r.get<trace::RunEndEvent>(i, trace::EventType::kRunEnd);
  REQUIRE(e != nullptr);
  return *e;
}

}  // namespace

// [SECTION] Fd ownership

TEST_CASE("Fd closes its descriptor, release() and move hand ownership over", "[unit][kvm-fd]") {
  int a = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int b = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(a >= 0);
  REQUIRE(b >= 0);
  {
    vmm::Fd fa(a);
    REQUIRE(fa.get() == a);
  }
  CHECK_FALSE(fd_is_open(a));

  int released;
  {
    vmm::Fd fb(b);
    released = fb.release();
    CHECK(fb.get() == -1);
  }
  CHECK(released == b);
  CHECK(fd_is_open(b));

  int c = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(c >= 0);
  {
    vmm::Fd fb(b), fc(c);
    fb = std::move(fc);  // closes b, takes c
    CHECK(fb.get() == c);
    CHECK(fc.get() == -1);
    CHECK_FALSE(fd_is_open(b));
    CHECK(fd_is_open(c));
    vmm::Fd moved(std::move(fb));
    CHECK(moved.get() == c);
    CHECK(fb.get() == -1);
  }
  CHECK_FALSE(fd_is_open(c));
}

// [SECTION] Error paths on a bad fd

TEST_CASE("Vcpu on a bad fd: every ioctl throws KvmError EBADF naming the ioctl",
          "[unit][kvm-fd]") {
  const int bad = unused_fd();
  vmm::Vcpu v = vmm::Vcpu::from_raw_fd_unmapped(bad);
  REQUIRE(v.fd() == bad);

  require_kvm_error("KVM_GET_REGS", EBADF, [&] { (void)v.get_regs(); });
  require_kvm_error("KVM_SET_REGS", EBADF, [&] { v.set_regs(kvm_regs{}); });
  require_kvm_error("KVM_GET_SREGS", EBADF, [&] { (void)v.get_sregs(); });
  require_kvm_error("KVM_SET_SREGS", EBADF, [&] { v.set_sregs(kvm_sregs{}); });
  require_kvm_error("KVM_GET_FPU", EBADF, [&] { (void)v.get_fpu(); });
  require_kvm_error("KVM_GET_VCPU_EVENTS", EBADF, [&] { (void)v.get_vcpu_events(); });
  require_kvm_error("KVM_SET_CPUID2", EBADF, [&] { v.set_cpuid({kvm_cpuid_entry2{}}); });
  require_kvm_error("KVM_SET_GUEST_DEBUG", EBADF, [&] { v.set_guest_debug(kvm_guest_debug{}); });
  require_kvm_error("KVM_TRANSLATE", EBADF, [&] { (void)v.translate(0x1000); });
  CHECK(v.stats().empty());  // no stats fd on a bad fd: nothing, not an exception
  require_kvm_error("KVM_RUN", EBADF, [&] { (void)v.run(); });
  v.set_sync_regs(true);
  require_kvm_error("KVM_RUN", EBADF, [&] { (void)v.run(); });

  // kick/clear_kick without a kvm_run mapping do nothing (and do not crash).
  v.kick();
  v.clear_kick();

  // A moved-from Vcpu keeps working on the moved-to side.
  vmm::Vcpu w(std::move(v));
  REQUIRE(w.fd() == bad);
  REQUIRE(v.fd() == -1);
  require_kvm_error("KVM_GET_REGS", EBADF, [&] { (void)w.get_regs(); });
}

// Vcpu::set_cpuid with no entries once called memcpy with a null source (UB); it must reach
// the ioctl and report its error cleanly (this runs in the sanitizer build too).
TEST_CASE("Vcpu::set_cpuid with no entries reports the ioctl's error (no UB)",
          "[unit][kvm-fd]") {
  const int bad = unused_fd();
  vmm::Vcpu v = vmm::Vcpu::from_raw_fd_unmapped(bad);
  require_kvm_error("KVM_SET_CPUID2", EBADF, [&] { v.set_cpuid({}); });
}

TEST_CASE("Vcpu on a file that is not a vCPU: ENOTTY, and the fd is closed with the Vcpu",
          "[unit][kvm-fd]") {
  const int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  {
    vmm::Vcpu v = vmm::Vcpu::from_raw_fd_unmapped(fd);
    require_kvm_error("KVM_GET_REGS", ENOTTY, [&] { (void)v.get_regs(); });
    require_kvm_error("KVM_RUN", ENOTTY, [&] { (void)v.run(); });
  }
  CHECK_FALSE(fd_is_open(fd));
}

TEST_CASE("Kvm on a bad fd: every ioctl throws KvmError EBADF naming the ioctl",
          "[unit][kvm-fd]") {
  const int bad = unused_fd();
  const vmm::Kvm kvm{vmm::Fd(bad)};
  REQUIRE(kvm.fd() == bad);
  require_kvm_error("KVM_GET_API_VERSION", EBADF, [&] { (void)kvm.api_version(); });
  require_kvm_error("KVM_CHECK_EXTENSION", EBADF,
                    [&] { (void)kvm.check_extension(KVM_CAP_USER_MEMORY); });
  require_kvm_error("KVM_GET_VCPU_MMAP_SIZE", EBADF, [&] { (void)kvm.vcpu_mmap_size(); });
  require_kvm_error("KVM_GET_SUPPORTED_CPUID", EBADF, [&] { (void)kvm.supported_cpuid(); });
  require_kvm_error("KVM_CREATE_VM", EBADF, [&] { (void)kvm.create_vm(); });
}

TEST_CASE("Vm on a bad fd: every ioctl throws KvmError EBADF naming the ioctl",
          "[unit][kvm-fd]") {
  const int bad = unused_fd();
  vmm::Vm vm(vmm::Fd(bad), 4096);
  REQUIRE(vm.fd() == bad);
  require_kvm_error("KVM_CHECK_EXTENSION", EBADF,
                    [&] { (void)vm.check_extension(KVM_CAP_USER_MEMORY); });
  std::vector<uint8_t> mem(4096);
  require_kvm_error("KVM_SET_USER_MEMORY_REGION", EBADF,
                    [&] { vm.set_user_memory_region(0, 0, mem.size(), mem.data()); });
  require_kvm_error("KVM_SET_TSS_ADDR", EBADF, [&] { vm.set_tss_addr(0xFFFBD000); });
  require_kvm_error("KVM_CREATE_VCPU", EBADF, [&] { (void)vm.create_vcpu(0); });
}

TEST_CASE("Kvm::open: a missing device, and a file that is not KVM", "[unit][kvm-fd]") {
  require_kvm_error("open /nonexistent", ENOENT, [] { (void)vmm::Kvm::open("/nonexistent"); });
  require_kvm_error("KVM_GET_API_VERSION", ENOTTY, [] { (void)vmm::Kvm::open("/dev/null"); });
}

TEST_CASE("KvmError carries op, errno and strerror text", "[unit][kvm-fd]") {
  const vmm::KvmError e("KVM_CREATE_VM", EINVAL);
  CHECK(e.op() == "KVM_CREATE_VM");
  CHECK(e.error() == EINVAL);
  CHECK(std::string(e.what()) == "KVM_CREATE_VM: Invalid argument");
  const std::runtime_error& base = e;  // catchable as a runtime_error
  CHECK_THAT(base.what(), Catch::StartsWith("KVM_CREATE_VM"));
}

// [SECTION] Real KVM

TEST_CASE("Real KVM: system, VM and vCPU fds", "[unit][kvm-fd][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  vmm::Kvm kvm = vmm::Kvm::open();
  CHECK(kvm.api_version() == 12);
  CHECK(kvm.check_extension(KVM_CAP_USER_MEMORY) > 0);
  CHECK(kvm.check_extension(KVM_CAP_IMMEDIATE_EXIT) > 0);  // the run loop's time limit needs it
  CHECK(kvm.check_extension(KVM_CAP_SYNC_REGS) > 0);       // tracing relies on it
  CHECK(kvm.check_extension(-1) == 0);                     // unknown capability: "no", not an error
  const int mmap_size = kvm.vcpu_mmap_size();
  CHECK(mmap_size >= static_cast<int>(sizeof(kvm_run)));
  CHECK(mmap_size % 4096 == 0);

  const std::vector<kvm_cpuid_entry2> cpuid = kvm.supported_cpuid();
  REQUIRE_FALSE(cpuid.empty());
  bool has_leaf0 = false;
  for (const auto& e : cpuid) has_leaf0 = has_leaf0 || (e.function == 0 && e.eax >= 1);
  CHECK(has_leaf0);

  vmm::Vm vm = kvm.create_vm();
  CHECK(vm.fd() >= 0);
  CHECK(vm.check_extension(KVM_CAP_USER_MEMORY) > 0);
  vmm::Vcpu vcpu = vm.create_vcpu(0);
  CHECK(vcpu.fd() >= 0);
  require_kvm_error("KVM_CREATE_VCPU", EEXIST, [&] { (void)vm.create_vcpu(0); });

  // A fresh vCPU is in the architectural reset state (SDM Vol. 3A 9.1.1): CS:IP = F000:FFF0.
  const kvm_regs r = vcpu.get_regs();
  CHECK(r.rip == 0xFFF0u);
  CHECK(r.rflags == 0x2u);
  const kvm_sregs s = vcpu.get_sregs();
  CHECK(s.cs.selector == 0xF000);
  CHECK(s.cs.base == 0xFFFF0000u);
  CHECK((s.cr0 & 1) == 0);  // real mode
  CHECK(vcpu.get_fpu().fcw == 0x37F);

  // Registers round trip; KVM_TRANSLATE in real mode is the identity.
  kvm_regs w = r;
  w.rax = 0x1122334455667788ull;
  w.rip = 0x8000;
  vcpu.set_regs(w);
  const kvm_regs back = vcpu.get_regs();
  CHECK(back.rax == 0x1122334455667788ull);
  CHECK(back.rip == 0x8000u);
  const kvm_translation t = vcpu.translate(0x1234);
  CHECK(t.valid == 1);
  CHECK(t.physical_address == 0x1234u);
  vcpu.set_cpuid(cpuid);
  (void)vcpu.get_vcpu_events();
}

TEST_CASE("KVM guest (real mode): out to 0xE9 then hlt", "[unit][kvm-fd][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  const std::vector<uint8_t> code = {
      0xB0, 0x41,  // 0x8000  mov al, 0x41
      0xE6, 0xE9,  // 0x8002  out 0xE9, al
      0xF4,        // 0x8004  hlt
  };
  const GuestRun g = run_guest(code, platform::BootMode::kReal, {5.0, 0});
  CHECK(g.result.reason == RunEndReason::kHalted);
  CHECK(g.result.exits == 2);
  CHECK(g.result.last_exit_reason == 5u);
  CHECK(g.result.regs.rip == 0x8005u);
  CHECK((g.result.regs.rax & 0xFF) == 0x41u);
  CHECK(g.console == "A");

  REQUIRE(g.events.size() == 3);
  const trace::VmExitEvent& io = exit_at(g.events, 0);
  CHECK(io.header.seq == 0);
  CHECK(io.reason == 2u);
  CHECK(io.payload.io.port == 0xE9);
  CHECK(io.payload.io.direction == 1);
  CHECK(io.payload.io.size == 1);
  CHECK(io.payload.io.count == 1u);
  CHECK(io.payload.io.value == 0x41u);
  CHECK(io.header.rip == 0x8002u);  // the out, whichever way the host reports RIP
  CHECK(io.insn_addr == 0x8002u);
  CHECK(io.insn[0] == 0xE6);
  CHECK(io.header.cpu_mode == trace::CpuMode::kReal16);
  CHECK(io.header.cpl == 0);

  const trace::VmExitEvent& hlt = exit_at(g.events, 1);
  CHECK(hlt.header.seq == 1);
  CHECK(hlt.reason == 5u);
  CHECK(hlt.header.rip == 0x8004u);
  CHECK(hlt.insn[0] == 0xF4);
  CHECK((hlt.header.flags & trace::kExitFlagRipAdvanced) != 0);  // every KVM moves RIP past hlt

  const trace::RunEndEvent& end = end_at(g.events, 2);
  CHECK(end.header.seq == 2);
  CHECK(end.reason == RunEndReason::kHalted);
  CHECK(end.exits == 2u);
  CHECK(end.exit_code == 0u);
  CHECK(end.header.rip == 0x8005u);
}

TEST_CASE("KVM guest: jmp $ is stopped by the time limit", "[unit][kvm-fd][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  const std::vector<uint8_t> code = {0xEB, 0xFE};  // 0x8000  jmp $
  const uint64_t t0 = vmm::monotonic_ns();
  const GuestRun g = run_guest(code, platform::BootMode::kReal, {0.3, 0});
  const double elapsed = static_cast<double>(vmm::monotonic_ns() - t0) / 1e9;
  CHECK(g.result.reason == RunEndReason::kTimeLimit);
  CHECK(g.result.duration_ns >= 300'000'000u);
  CHECK(elapsed < 3.0);
  CHECK(g.result.regs.rip == 0x8000u);
  CHECK(g.result.exits == 0u);
  REQUIRE(g.events.size() == 1);
  CHECK(end_at(g.events, 0).reason == RunEndReason::kTimeLimit);
}

TEST_CASE("KVM guest: out to the control port ends the run with the exit code",
          "[unit][kvm-fd][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  const std::vector<uint8_t> code = {
      0xB0, 0x07,  // mov al, 7
      0xE6, 0xF4,  // out 0xF4, al
      0xF4,        // hlt (not reached)
  };
  const GuestRun g = run_guest(code, platform::BootMode::kReal, {5.0, 0});
  CHECK(g.result.reason == RunEndReason::kGuestExit);
  CHECK(g.result.exit_code == 7u);
  CHECK(g.result.exits == 1u);
  CHECK(g.result.last_exit_reason == 2u);
  REQUIRE(g.events.size() == 2);
  CHECK(exit_at(g.events, 0).payload.io.port == 0xF4);
  const trace::RunEndEvent& end = end_at(g.events, 1);
  CHECK(end.reason == RunEndReason::kGuestExit);
  CHECK(end.exit_code == 7u);
}

TEST_CASE("KVM guest: max_exits stops a loop of outs after exactly that many exits",
          "[unit][kvm-fd][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  const std::vector<uint8_t> code = {
      0xB0, 0x41,  // 0x8000  mov al, 'A'
      0xE6, 0xE9,  // 0x8002  out 0xE9, al
      0xEB, 0xFC,  // 0x8004  jmp 0x8002
  };
  const GuestRun g = run_guest(code, platform::BootMode::kReal, {5.0, 5});
  CHECK(g.result.reason == RunEndReason::kExitLimit);
  CHECK(g.result.exits == 5u);
  CHECK(g.console == "AAAAA");
  REQUIRE(g.events.size() == 6);
  for (size_t i = 0; i < 5; ++i) {
    const trace::VmExitEvent& e = exit_at(g.events, i);
    CHECK(e.header.seq == i);
    CHECK(e.reason == 2u);
    CHECK(e.header.rip == 0x8002u);
    CHECK(e.payload.io.value == 'A');
  }
  const trace::RunEndEvent& end = end_at(g.events, 5);
  CHECK(end.reason == RunEndReason::kExitLimit);
  CHECK(end.exits == 5u);
  CHECK(end.header.seq == 5u);
}

TEST_CASE("KVM guest (long mode): MMIO above guest memory", "[unit][kvm-fd][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  SECTION("a read returns all ones") {
    const std::vector<uint8_t> code = {
        0x48, 0x8B, 0x04, 0x25, 0x00, 0x00, 0x00, 0x40,  // mov rax, [0x40000000]
        0xF4,                                            // hlt
    };
    const GuestRun g = run_guest(code, platform::BootMode::kLong, {5.0, 0});
    CHECK(g.result.reason == RunEndReason::kHalted);
    CHECK(g.result.regs.rax == 0xFFFFFFFFFFFFFFFFull);
    CHECK(g.mmio_writes.empty());
    REQUIRE(g.events.size() == 3);
    const trace::VmExitEvent& m = exit_at(g.events, 0);
    CHECK(m.reason == 6u);
    CHECK(m.payload.mmio.gpa == 0x40000000u);
    CHECK(m.payload.mmio.len == 8);
    CHECK(m.payload.mmio.is_write == 0);
    CHECK(m.payload.mmio.data == 0xFFFFFFFFFFFFFFFFull);
    CHECK(m.header.cpu_mode == trace::CpuMode::kLong64);
    CHECK(m.header.cpl == 0);
    CHECK(m.header.rip == 0x8000u);  // the mov (trace/event.hpp: the exiting instruction)
    CHECK(m.insn_len >= 8);
    CHECK(m.insn[1] == 0x8B);
    CHECK(exit_at(g.events, 1).reason == 5u);
    CHECK(end_at(g.events, 2).reason == RunEndReason::kHalted);
  }
  SECTION("a write is recorded") {
    const std::vector<uint8_t> code = {
        0xB8, 0xBE, 0xBA, 0xFE, 0xCA,                    // mov eax, 0xCAFEBABE
        0x89, 0x04, 0x25, 0x10, 0x00, 0x00, 0x40,        // mov [0x40000010], eax
        0xF4,                                            // hlt
    };
    const GuestRun g = run_guest(code, platform::BootMode::kLong, {5.0, 0});
    CHECK(g.result.reason == RunEndReason::kHalted);
    REQUIRE(g.mmio_writes.size() == 1);
    CHECK(g.mmio_writes[0].gpa == 0x40000010u);
    CHECK(g.mmio_writes[0].len == 4);
    CHECK(g.mmio_writes[0].data == 0xCAFEBABEu);
    REQUIRE(g.events.size() == 3);
    const trace::VmExitEvent& m = exit_at(g.events, 0);
    CHECK(m.reason == 6u);
    CHECK(m.payload.mmio.is_write == 1);
    CHECK(m.payload.mmio.gpa == 0x40000010u);
    CHECK(m.payload.mmio.len == 4);
    CHECK(m.payload.mmio.data == 0xCAFEBABEu);
  }
}

TEST_CASE("KVM guest (real mode): a read beyond a 64 KiB guest memory is MMIO",
          "[unit][kvm-fd][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  const std::vector<uint8_t> code = {
      0xB8, 0x00, 0x10,  // 0x8000  mov ax, 0x1000
      0x8E, 0xD8,        // 0x8003  mov ds, ax
      0xA1, 0xF0, 0xFF,  // 0x8005  mov ax, [0xFFF0]     ; GPA 0x1FFF0, past the end of RAM
      0xF4,              // 0x8008  hlt
  };
  vmm::MachineConfig cfg;
  cfg.memory_bytes = 64 * 1024;
  vmm::KvmMachine m(cfg);
  m.load(code);
  trace::Recorder events;
  const vmm::RunResult res = m.run({5.0, 0}, &events);
  CHECK(res.reason == RunEndReason::kHalted);
  CHECK((res.regs.rax & 0xFFFF) == 0xFFFFu);
  REQUIRE(events.size() == 3);
  const trace::VmExitEvent& e = exit_at(events, 0);
  CHECK(e.reason == 6u);
  CHECK(e.payload.mmio.gpa == 0x1FFF0u);
  CHECK(e.payload.mmio.len == 2);
  CHECK(e.payload.mmio.is_write == 0);
  CHECK(e.payload.mmio.data == 0xFFFFu);
  CHECK(e.header.rip == 0x8005u);
  CHECK(e.header.cpu_mode == trace::CpuMode::kReal16);
}

TEST_CASE("KVM guest: a run stopped right after an in can be continued, and the in completes",
          "[unit][kvm-fd][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  const std::vector<uint8_t> code = {
      0xB0, 0x00,  // 0x8000  mov al, 0
      0xE4, 0xE9,  // 0x8002  in al, 0xE9
      0xF4,        // 0x8004  hlt
  };
  vmm::MachineConfig cfg;
  vmm::KvmMachine m(cfg);
  m.load(code);
  trace::Recorder events;
  const vmm::RunResult first = m.run({5.0, 1}, &events);
  CHECK(first.reason == RunEndReason::kExitLimit);
  CHECK(first.exits == 1u);
  REQUIRE(events.size() == 2);
  const trace::VmExitEvent& in = exit_at(events, 0);
  CHECK(in.reason == 2u);
  CHECK(in.payload.io.direction == 0);
  CHECK(in.payload.io.value == 0xE9u);  // the value the VMM returned
  CHECK(in.header.rip == 0x8002u);
  // KVM completes an `in` only on the next KVM_RUN (KVM API, struct kvm_run), so the state read
  // at the end of this run is either "in not done" or "in done" — never a mix of the two.
  const bool not_done = first.regs.rip == 0x8002 && (first.regs.rax & 0xFF) == 0;
  const bool done = first.regs.rip == 0x8004 && (first.regs.rax & 0xFF) == 0xE9;
  CHECK((not_done || done));

  const vmm::RunResult second = m.run({5.0, 0}, nullptr);
  CHECK(second.reason == RunEndReason::kHalted);
  CHECK(second.exits == 1u);
  CHECK(second.regs.rip == 0x8005u);
  CHECK((second.regs.rax & 0xFF) == 0xE9u);
}

// [SECTION] Known bugs (see the report): the exiting instruction's address is guessed from the
// bytes at RIP, which is wrong when the next instruction is of the same kind.

TEST_CASE("KVM guest: hlt followed by hlt is recorded at the first hlt",
          "[unit][kvm-fd][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  const std::vector<uint8_t> code = {
      0xF4,  // 0x8000  hlt       <- exits here; every KVM leaves RIP at 0x8001
      0xF4,  // 0x8001  hlt
  };
  const GuestRun g = run_guest(code, platform::BootMode::kReal, {5.0, 0});
  CHECK(g.result.reason == RunEndReason::kHalted);
  CHECK(g.result.regs.rip == 0x8001u);
  REQUIRE(g.events.size() == 2);
  const trace::VmExitEvent& hlt = exit_at(g.events, 0);
  CHECK(hlt.reason == 5u);
  CHECK(hlt.header.rip == 0x8000u);
  CHECK(hlt.insn_addr == 0x8000u);
  CHECK((hlt.header.flags & trace::kExitFlagRipAdvanced) != 0);
}

TEST_CASE("KVM guest: two adjacent outs are recorded at their own addresses",
          "[unit][kvm-fd][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  const std::vector<uint8_t> code = {
      0xB0, 0x41,  // 0x8000  mov al, 'A'
      0xE6, 0xE9,  // 0x8002  out 0xE9, al
      0xE6, 0xE9,  // 0x8004  out 0xE9, al
      0xF4,        // 0x8006  hlt
  };
  const GuestRun g = run_guest(code, platform::BootMode::kReal, {5.0, 0});
  CHECK(g.result.reason == RunEndReason::kHalted);
  CHECK(g.console == "AA");
  REQUIRE(g.events.size() == 4);
  CHECK(exit_at(g.events, 0).header.rip == 0x8002u);
  CHECK(exit_at(g.events, 0).insn_addr == 0x8002u);
  CHECK(exit_at(g.events, 1).header.rip == 0x8004u);
  CHECK(exit_at(g.events, 2).header.rip == 0x8006u);
}

// KVM_GET_STATS_FD: a fresh vCPU reports its exit counters (Linux 5.14 and later), all zero
// before it has run; a run that does one `out` and `hlt` counts both exits.
TEST_CASE("Vcpu::stats reads KVM's binary statistics", "[kvm][kvm-fd]") {
  REQUIRE_KVM_OR_SKIP();
  vmm::MachineConfig cfg;
  vmm::KvmMachine m(cfg);
  const auto before = m.vcpu().stats();
  if (before.empty()) {
    WARN("SKIPPED: this kernel has no KVM_GET_STATS_FD");
    return;
  }
  auto get = [](const auto& v, const char* name) -> int64_t {
    for (const auto& [n, x] : v) {
      if (n == name) return static_cast<int64_t>(x);
    }
    return -1;
  };
  CHECK(get(before, "exits") == 0);
  CHECK(get(before, "halt_exits") == 0);
  const std::vector<uint8_t> guest = {0xB0, 0x41, 0xE6, 0xE9, 0xF4};  // mov al,'A'; out 0xE9,al; hlt
  m.load(guest);
  m.run({5.0, 0}, nullptr);
  const auto after = m.vcpu().stats();
  CHECK(get(after, "exits") >= 2);
  CHECK(get(after, "halt_exits") == 1);
}
