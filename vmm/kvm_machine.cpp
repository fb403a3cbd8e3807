#include "vmm/kvm_machine.hpp"

#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cinttypes>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include <fmt/format.h>

#include "x86/address.hpp"
#include "x86/decoder.hpp"
#include "x86/disasm.hpp"
#include "x86/io_insn.hpp"
#include "platform/exit_event.hpp"
#include "platform/guest_paging.hpp"
#include "platform/handle_exit.hpp"
#include "vmm/kvm_state.hpp"

namespace trapscope::vmm {
namespace {

using trace::RunEndReason;

// [SECTION] Time limit: a per-run POSIX timer that kicks the vCPU out of KVM_RUN.

void on_timer_signal(int, siginfo_t* info, void*) {
  if (const auto* vcpu = static_cast<const Vcpu*>(info->si_value.sival_ptr)) vcpu->kick();
}

int timer_signal() { return SIGRTMIN; }

void install_timer_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_timer_signal;
    sa.sa_flags = SA_SIGINFO;  // no SA_RESTART: KVM_RUN must return EINTR
    sigemptyset(&sa.sa_mask);
    sigaction(timer_signal(), &sa, nullptr);
  });
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, timer_signal());
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

class RunTimer {
 public:
  RunTimer(const Vcpu& vcpu, double seconds) {
    install_timer_handler();
    sigevent sev{};
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev._sigev_un._tid = static_cast<pid_t>(::gettid());
    sev.sigev_signo = timer_signal();
    sev.sigev_value.sival_ptr = const_cast<Vcpu*>(&vcpu);
    if (timer_create(CLOCK_MONOTONIC, &sev, &id_) != 0) throw KvmError("timer_create", errno);
    itimerspec spec{};
    const auto ns = static_cast<int64_t>(seconds * 1e9);
    spec.it_value.tv_sec = ns / 1'000'000'000;
    spec.it_value.tv_nsec = ns % 1'000'000'000;
    if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
    // Re-fire every 50 ms after the deadline in case a kick is consumed by a racing exit.
    spec.it_interval.tv_nsec = 50'000'000;
    if (timer_settime(id_, 0, &spec, nullptr) != 0) {
      int err = errno;
      timer_delete(id_);
      throw KvmError("timer_settime", err);
    }
  }
  ~RunTimer() { timer_delete(id_); }
  RunTimer(const RunTimer&) = delete;
  RunTimer& operator=(const RunTimer&) = delete;

 private:
  timer_t id_{};
};

// [SECTION] Set-up helpers.

Vcpu create_vcpu(const Kvm& kvm, Vm& vm, GuestMemory& memory) {
  vm.set_user_memory_region(0, 0, memory.size(), memory.host_address());
  if (vm.check_extension(KVM_CAP_SET_TSS_ADDR) > 0) {
    vm.set_tss_addr(0xFFFBD000);  // 3 pages below 4 GiB, outside guest RAM (as QEMU does)
  }
  Vcpu vcpu = vm.create_vcpu(0);
  vcpu.set_cpuid(kvm.supported_cpuid());
  return vcpu;
}

// Reads up to 15 instruction bytes at a guest-linear address through the guest's page tables.
uint8_t read_insn(const GuestMemory& mem, const kvm_sregs& s, uint64_t linear, uint8_t* out) {
  const platform::PagingRegs pr{s.cr0, s.cr3, s.cr4, s.efer};
  uint8_t n = 0;
  while (n < 15) {
    const uint64_t la = linear + n;
    auto gpa = platform::guest_linear_to_physical(mem.bytes(), pr, la);
    if (!gpa) break;
    const uint64_t in_page = 0x1000 - (la & 0xFFF);
    const uint64_t want = std::min<uint64_t>(15 - n, in_page);
    if (*gpa >= mem.size()) break;
    const uint64_t avail = std::min<uint64_t>(want, mem.size() - *gpa);
    std::memcpy(out + n, mem.host_address() + *gpa, avail);
    n = static_cast<uint8_t>(n + avail);
    if (avail < want) break;
  }
  return n;
}

uint64_t linear_rip(const kvm_sregs& s, uint64_t rip, trace::CpuMode mode) {
  if (mode == trace::CpuMode::kLong64) return rip;
  return (s.cs.base + rip) & 0xFFFFFFFFull;
}

}  // namespace

uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

const HostRipBehaviour& host_rip_advances() {
  static HostRipBehaviour behaviour;
  static std::once_flag once;
  std::call_once(once, [] {
    // Real mode: out 0x80, al; in al, 0x80; hlt. At each IO exit, is RIP still on the
    // instruction (hardware-assisted KVM's fast path) or past it (an emulating KVM)?
    try {
      MachineConfig cfg;
      cfg.memory_bytes = 1 << 20;
      KvmMachine m(cfg);
      const uint8_t code[] = {0xE6, 0x80, 0xE4, 0x80, 0xF4};
      m.load(code);
      const uint64_t entry = cfg.load_address;
      for (int i = 0; i < 3; ++i) {
        platform::VcpuExit exit = m.vcpu().run();
        const uint64_t rip = m.vcpu().get_regs().rip;
        if (const auto* o = std::get_if<platform::ExitIoOut>(&exit)) {
          behaviour.after_out = rip == entry + 2;
          (void)o;
        } else if (const auto* in = std::get_if<platform::ExitIoIn>(&exit)) {
          behaviour.after_in = rip == entry + 4;
          in->data[0] = 0;
        } else {
          break;
        }
      }
      behaviour.probed = true;
    } catch (const std::exception&) {
      // No KVM: nothing will be traced on it anyway.
    }
  });
  return behaviour;
}

// The hypercall interface on KVM (platform/hypercall.hpp): the doorbell's `in` is a KVM_EXIT_IO; the
// registers come from KVM_GET_REGS. CR3 loads and TLB flushes go in with KVM_SET_SREGS, but
// only after the `in` has completed (KVM_SET_SREGS while KVM still has the `in` pending makes
// an emulating KVM run the `in` again): run() calls apply() after complete_pending_io().
class KvmHypercallHost final : public platform::HypercallHost {
 public:
  KvmHypercallHost(Vcpu& vcpu, GuestMemory& memory) : vcpu_(vcpu), memory_(memory) {}
  platform::HypercallArgs args() override {
    const kvm_regs r = vcpu_.get_regs();
    return {static_cast<uint32_t>(r.rax), r.rbx, r.rcx, r.rsi};
  }
  std::span<uint8_t> guest_memory() override { return memory_.bytes(); }
  void pte_written(uint64_t) override {}
  // User space has no TLB-flush ioctl: toggling CR4.PGE, which flushes every TLB entry (SDM
  // Vol. 3A 4.10.4.1), through KVM_SET_SREGS makes KVM reset the vCPU's MMU context too.
  void flush_tlb() override { flush_ = true; }
  void set_cr3(uint64_t value) override { cr3_ = value; }
  bool pending() const { return flush_ || cr3_.has_value(); }
  void apply() {
    kvm_sregs s = vcpu_.get_sregs();
    if (cr3_) s.cr3 = *cr3_;
    if (flush_) {
      const uint64_t cr4 = s.cr4;
      s.cr4 = cr4 ^ (1u << 7);
      vcpu_.set_sregs(s);
      s.cr4 = cr4;
    }
    vcpu_.set_sregs(s);
    cr3_.reset();
    flush_ = false;
  }

 private:
  Vcpu& vcpu_;
  GuestMemory& memory_;
  std::optional<uint64_t> cr3_;
  bool flush_ = false;
};

// The hypercall record describes the I/O exit just recorded: it takes that exit's RIP, mode,
// CPL and instruction bytes (the doorbell's `in`), so both print the same instruction.
void KvmMachine::record_hypercall(trace::EventSink& sink, const platform::HypercallRecord& hc,
                                  const trace::VmExitEvent& io_exit, uint64_t seq) {
  const trace::VmExitEvent e = platform::hypercall_event(hc, io_exit, seq);
  sink.on_event(e.header);
}

// --passthrough mapped (platform/passthrough.hpp): the device's window becomes memory slot 1 at
// kPassthroughBase the first time (KVM_SET_USER_MEMORY_REGION: the guest's accesses to it are
// ordinary memory accesses, no exit), and the device's polling thread runs for as long as the
// guest does: started here, joined when the run ends, however it ends.
class KvmMachine::PassthroughThread {
 public:
  explicit PassthroughThread(KvmMachine& m) : device_(m.devices_.passthrough.get()) {
    if (device_ == nullptr || !device_->mapped()) {
      device_ = nullptr;
      return;
    }
    if (!m.passthrough_slot_) {
      m.vm_.set_user_memory_region(1, platform::kPassthroughBase, platform::kPassthroughBytes,
                                   device_->window().data());
      m.passthrough_slot_ = true;
    }
    device_->start_thread();
  }
  ~PassthroughThread() {
    if (device_ != nullptr) device_->stop_thread();
  }
  PassthroughThread(const PassthroughThread&) = delete;
  PassthroughThread& operator=(const PassthroughThread&) = delete;

 private:
  platform::PassthroughDevice* device_;
};

KvmMachine::KvmMachine(const MachineConfig& config)
    : config_(config),
      kvm_(Kvm::open()),
      vm_(kvm_.create_vm()),
      memory_(config.memory_bytes),
      vcpu_(create_vcpu(kvm_, vm_, memory_)) {
  hypercall_host_ = std::make_unique<KvmHypercallHost>(vcpu_, memory_);
  devices_.hypercall.bind(hypercall_host_.get());
  devices_.ram = &dma_ram_;
}

KvmMachine::~KvmMachine() = default;

void KvmMachine::load(std::span<const uint8_t> image) {
  platform::load_image(memory_.bytes(), image, config_.load_address, config_.mode);
  const platform::BootState b = platform::prepare_boot(memory_.bytes(), config_.mode, config_.load_address);

  kvm_sregs s = vcpu_.get_sregs();
  s.cs = to_kvm(b.cs);
  s.ds = to_kvm(b.ds);
  s.es = to_kvm(b.es);
  s.fs = to_kvm(b.fs);
  s.gs = to_kvm(b.gs);
  s.ss = to_kvm(b.ss);
  s.gdt.base = b.gdt_base;
  s.gdt.limit = b.gdt_limit;
  s.idt.base = 0;
  s.idt.limit = config_.mode == platform::BootMode::kReal ? 0x3FF : 0;
  s.cr0 = b.cr0;
  s.cr3 = b.cr3;
  s.cr4 = b.cr4;
  s.efer = b.efer;
  vcpu_.set_sregs(s);

  kvm_regs r{};
  r.rip = b.rip;
  r.rsp = b.rsp;
  r.rflags = b.rflags;
  vcpu_.set_regs(r);
}

void KvmMachine::set_debug(bool single_step, bool breakpoint, uint64_t linear) {
  if (!single_step && !breakpoint && !debug_on_) return;
  kvm_guest_debug dbg{};
  if (single_step || breakpoint) {
    dbg.control = KVM_GUESTDBG_ENABLE;
    if (single_step) dbg.control |= KVM_GUESTDBG_SINGLESTEP;
    if (breakpoint) {
      dbg.control |= KVM_GUESTDBG_USE_HW_BP;
      dbg.arch.debugreg[0] = linear;
      dbg.arch.debugreg[7] = 0x1;  // L0: local enable, execute breakpoint, length 1
    }
  }
  vcpu_.set_guest_debug(dbg);
  debug_on_ = single_step || breakpoint;
}

void KvmMachine::set_debug_slots(std::span<const DebugSlot> slots) {
  if (slots.size() > 4) throw std::invalid_argument("more than four debug-register slots");
  kvm_guest_debug dbg{};
  dbg.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP;
  uint64_t dr7 = 0;
  for (size_t i = 0; i < slots.size(); ++i) {
    const DebugSlot& d = slots[i];
    uint64_t len = 0;  // DR7 LEN encoding: 00 = 1 byte, 01 = 2, 11 = 4, 10 = 8
    switch (d.len) {
      case 1: len = 0; break;
      case 2: len = 1; break;
      case 4: len = 3; break;
      case 8: len = 2; break;
      default: throw std::invalid_argument("a debug-register length must be 1, 2, 4 or 8");
    }
    if (d.rw == 0) len = 0;
    dbg.arch.debugreg[i] = d.linear;
    dr7 |= 1ull << (2 * i);                          // Ln: local enable
    dr7 |= uint64_t{d.rw & 3u} << (16 + 4 * i);       // R/Wn
    dr7 |= len << (18 + 4 * i);                      // LENn
  }
  dbg.arch.debugreg[7] = dr7;
  vcpu_.set_guest_debug(dbg);
  debug_on_ = true;
}

void KvmMachine::request_stop() {
  stop_requested_.store(true);
  vcpu_.kick();
}

namespace {

// Where the exiting instruction is (see trace/event.hpp, VmExitEvent): KVM has already moved RIP
// past `hlt` always, past an `in`/`out` on hosts that emulate it (probed once per process:
// host_rip_advances()), and past an MMIO write always (its emulator completes the write before
// the exit, KVM API 5. KVM_EXIT_MMIO; a read completes on the next KVM_RUN). The instruction is
// looked for at RIP and just before it, and recognised by what it does: an I/O instruction on
// that port, `hlt`, or a store whose memory operand is the written address.
struct ExitingInstruction {
  uint64_t rip = 0;
  uint64_t linear = 0;
  bool advanced = false;
  uint8_t len = 0;
  uint8_t bytes[15] = {};
};

ExitingInstruction locate_exiting_instruction(const GuestMemory& memory, const kvm_regs& regs,
                                              const kvm_sregs& s, x86::CpuMode mode,
                                              const platform::VcpuExit& exit) {
  ExitingInstruction at;
  at.rip = regs.rip;
  at.linear = linear_rip(s, regs.rip, mode);
  if (const auto* ie = std::get_if<platform::ExitInternalError>(&exit); ie && ie->insn_len > 0) {
    at.len = ie->insn_len;
    std::memcpy(at.bytes, ie->insn, ie->insn_len);
    return at;
  }
  at.len = read_insn(memory, s, at.linear, at.bytes);

  const auto* io_in = std::get_if<platform::ExitIoIn>(&exit);
  const auto* io_out = std::get_if<platform::ExitIoOut>(&exit);
  const auto* mmio_write = std::get_if<platform::ExitMmioWrite>(&exit);
  const bool is_hlt = std::holds_alternative<platform::ExitHlt>(exit);
  if (!io_in && !io_out && !is_hlt && !mmio_write) return at;

  x86::IoExitInfo io{};
  if (io_in) io = {io_in->port, io_in->size, false};
  if (io_out) io = {io_out->port, io_out->size, true};
  // Does an instruction of exactly these bytes cause this exit? `next_rip`: the RIP after it.
  auto causes = [&](std::span<const uint8_t> b, uint64_t next_rip) -> bool {
    if (is_hlt) return x86::match_hlt(b, x86::mode64(mode)) == b.size();
    if (!mmio_write) {
      return x86::match_io_instruction(b, io, static_cast<uint16_t>(regs.rdx),
                                       x86::default16(mode), x86::mode64(mode)) == b.size();
    }
    x86::Instruction insn;
    if (x86::decode(b, mode, &insn) != x86::DecodeStatus::kOk || insn.length != b.size()) {
      return false;
    }
    x86::CpuState after = from_kvm(regs, s);  // only for MMIO writes: the rest match by bytes
    after.rip = next_rip;
    const platform::PagingRegs pr{s.cr0, s.cr3, s.cr4, s.efer};
    for (unsigned i = 0; i < insn.operand_count; ++i) {
      const x86::Operand& op = insn.ops[i];
      if (op.kind != x86::OperandKind::kMem || insn.op == x86::Op::kLea) continue;
      if (op.size != mmio_write->data.size()) continue;
      const uint64_t linear = x86::linear_address(
          after, static_cast<x86::SegReg>(op.seg), x86::effective_address(insn, op, after));
      const auto gpa = platform::guest_linear_to_physical(memory.bytes(), pr, linear);
      if (gpa && *gpa == mmio_write->gpa) return true;
    }
    return false;
  };
  // Before RIP, the shortest instruction that ends at RIP and causes the exit is taken. A store
  // found by its address and size also matches without prefixes that change neither (67 with
  // the same address, a segment override with base 0): so it is then extended over the prefix
  // bytes before it while it still matches (SDM Vol. 2 2.1.1, 2.2.1: legacy prefixes; REX in
  // 64-bit mode).
  auto find_before = [&]() -> bool {
    uint8_t bytes[15];
    uint8_t n = 0, found = 0;
    for (uint8_t back = 1; back <= 15 && back <= at.linear && !found; ++back) {
      n = read_insn(memory, s, at.linear - back, bytes);
      if (n >= back && causes({bytes, back}, regs.rip)) found = back;
    }
    if (!found) return false;
    while (mmio_write && found < 15 && found < at.linear) {
      uint8_t longer[15];
      const uint8_t m = read_insn(memory, s, at.linear - found - 1, longer);
      if (m < found + 1 || !x86::is_prefix(longer[0], x86::mode64(mode)) || !causes({longer, found + 1u}, regs.rip)) break;
      ++found;
      n = m;
      std::memcpy(bytes, longer, m);
    }
    at.linear -= found;
    at.rip = regs.rip - found;
    at.advanced = true;
    at.len = n;
    std::memcpy(at.bytes, bytes, n);
    return true;
  };
  // The instruction at RIP, if it is the one (its length comes from its own encoding).
  auto causes_at_rip = [&] {
    const std::span<const uint8_t> b{at.bytes, at.len};
    unsigned len = 0;
    if (is_hlt) {
      len = x86::match_hlt(b, x86::mode64(mode));
    } else if (!mmio_write) {
      len = x86::match_io_instruction(b, io, static_cast<uint16_t>(regs.rdx), x86::default16(mode),
                                      x86::mode64(mode));
    } else if (x86::Instruction insn; x86::decode(b, mode, &insn) == x86::DecodeStatus::kOk) {
      len = insn.length;
    }
    return len > 0 && len <= at.len && causes(b.first(len), regs.rip + len);
  };
  // The predicted place is tried first, the other one second, so adjacent identical
  // instructions are told apart by the prediction.
  const HostRipBehaviour& host = host_rip_advances();
  const bool advanced = is_hlt || mmio_write || (io_out ? host.after_out : host.after_in);
  if (advanced) {
    // If neither place holds the instruction (self-modifying code?), RIP stays as KVM gave it.
    find_before();
  } else if (!causes_at_rip()) {
    find_before();
  }
  return at;
}

}  // namespace

trace::VmExitEvent KvmMachine::record_exit(trace::EventSink& sink, const platform::VcpuExit& exit,
                                           uint64_t seq, uint64_t t_exit) {
  const kvm_regs& regs = vcpu_.synced_regs();
  const kvm_sregs& s = vcpu_.synced_sregs();
  const x86::CpuMode mode = mode_of(s, regs.rflags);
  const ExitingInstruction at = locate_exiting_instruction(memory_, regs, s, mode, exit);
  platform::ExitSite site;
  site.seq = seq;
  site.time_ns = t_exit;
  site.handle_ns = static_cast<uint32_t>(std::min<uint64_t>(monotonic_ns() - t_exit, UINT32_MAX));
  site.rip = at.rip;
  site.cpl = cpl_of(s, regs.rflags);
  site.mode = mode;
  site.rip_advanced = at.advanced;
  site.insn_addr = at.linear;
  site.insn = {at.bytes, at.len};
  const trace::VmExitEvent e = platform::exit_event(exit, site);
  sink.on_event(e.header);
  return e;
}

std::string KvmMachine::describe_state(const kvm_regs& r, const kvm_sregs& s) const {
  char buf[640];
  auto seg = [](const kvm_segment& g) {
    char b[96];
    std::snprintf(b, sizeof b, "%04x base=%" PRIx64 " limit=%x type=%x dpl=%u l=%u db=%u",
                  g.selector, static_cast<uint64_t>(g.base), g.limit, g.type, g.dpl, g.l, g.db);
    return std::string(b);
  };
  const auto mode = mode_of(s, r.rflags);
  std::snprintf(buf, sizeof buf,
                "  vCPU: rip=%" PRIx64 " rsp=%" PRIx64 " rflags=%" PRIx64 " cpl=%u mode=%s\n"
                "        rax=%" PRIx64 " rbx=%" PRIx64 " rcx=%" PRIx64 " rdx=%" PRIx64 "\n"
                "        cr0=%" PRIx64 " cr2=%" PRIx64 " cr3=%" PRIx64 " cr4=%" PRIx64
                " efer=%" PRIx64 "\n"
                "        gdt=%" PRIx64 "/%x idt=%" PRIx64 "/%x\n",
                static_cast<uint64_t>(r.rip), static_cast<uint64_t>(r.rsp),
                static_cast<uint64_t>(r.rflags), cpl_of(s, r.rflags),
                std::string(trace::to_string(mode)).c_str(), static_cast<uint64_t>(r.rax),
                static_cast<uint64_t>(r.rbx), static_cast<uint64_t>(r.rcx),
                static_cast<uint64_t>(r.rdx), static_cast<uint64_t>(s.cr0),
                static_cast<uint64_t>(s.cr2), static_cast<uint64_t>(s.cr3),
                static_cast<uint64_t>(s.cr4), static_cast<uint64_t>(s.efer),
                static_cast<uint64_t>(s.gdt.base), s.gdt.limit,
                static_cast<uint64_t>(s.idt.base), s.idt.limit);
  return std::string(buf) + "        cs=" + seg(s.cs) + "\n        ss=" + seg(s.ss) + "\n";
}

void KvmMachine::complete_pending_io(const platform::VcpuExit& exit) {
  // Hardware-assisted KVM completes an `in`/`out` or MMIO access (and moves RIP past it) at
  // the next KVM_RUN; with immediate_exit set, KVM_RUN does that and returns EINTR at once
  // (KVM API 5, kvm_run.immediate_exit). So the final state is the same on every host: the
  // exiting instruction has completed.
  const bool pending = std::holds_alternative<platform::ExitIoIn>(exit) ||
                       std::holds_alternative<platform::ExitIoOut>(exit) ||
                       std::holds_alternative<platform::ExitMmioRead>(exit) ||
                       std::holds_alternative<platform::ExitMmioWrite>(exit);
  if (!pending) return;
  vcpu_.kick();
  platform::VcpuExit after = vcpu_.run();
  vcpu_.clear_kick();
  (void)after;  // platform::ExitInterrupted expected; anything else is the next exit, not run
}

RunResult KvmMachine::run(const RunLimits& limits, trace::EventSink* sink) {
  RunResult res;
  const bool tracing = sink != nullptr;
  vcpu_.set_sync_regs(tracing);
  stop_requested_.store(false);
  vcpu_.clear_kick();

  const uint64_t start = monotonic_ns();
  const uint64_t deadline = start + static_cast<uint64_t>(limits.timeout_s * 1e9);
  platform::ExitInternalError failure{};
  uint64_t seq = 0;  // every event of the run, hypercall records included
  {
    PassthroughThread device_thread(*this);  // mapped passthrough: its thread runs with the run
    RunTimer timer(vcpu_, limits.timeout_s);
    for (;;) {
      if (limits.max_exits != 0 && res.exits >= limits.max_exits) {
        res.reason = RunEndReason::kExitLimit;
        break;
      }
      platform::VcpuExit exit = vcpu_.run();
      if (std::holds_alternative<platform::ExitInterrupted>(exit)) {
        vcpu_.clear_kick();
        if (stop_requested_.load()) {
          res.reason = RunEndReason::kStopped;
          break;
        }
        if (monotonic_ns() >= deadline) {
          res.reason = RunEndReason::kTimeLimit;
          break;
        }
        continue;  // a signal for someone else
      }
      ++res.exits;
      const uint64_t t_exit = tracing ? monotonic_ns() : 0;
      platform::ExitAction action = platform::handle_exit(devices_, exit);
      if (tracing) {
        const trace::VmExitEvent recorded = record_exit(*sink, exit, seq++, t_exit);
        if (platform::HypercallRecord hc; devices_.hypercall.take_record(&hc)) {
          record_hypercall(*sink, hc, recorded, seq++);
        }
        platform::emit_device_events(devices_, sink, recorded.header, [&seq] { return seq++; });
      } else {
        platform::HypercallRecord hc;
        devices_.hypercall.take_record(&hc);
        devices_.device_events.clear();
      }
      if (!action.stop && hypercall_host_->pending()) {
        complete_pending_io(exit);
        hypercall_host_->apply();
      }
      if (!action.stop && tracing && sink->full()) {  // an in-memory sink at its cap
        action = platform::ExitAction::end(RunEndReason::kEventLimit);
      }
      if (action.stop) {
        res.reason = action.reason;
        res.exit_code = action.exit_code;
        res.last_exit_reason = platform::kvm_exit_reason(exit);
        if (const auto* ie = std::get_if<platform::ExitInternalError>(&exit)) failure = *ie;
        complete_pending_io(exit);
        break;
      }
    }
  }
  res.duration_ns = monotonic_ns() - start;
  res.regs = vcpu_.get_regs();
  res.sregs = vcpu_.get_sregs();

  const auto mode = mode_of(res.sregs, res.regs.rflags);
  switch (res.reason) {
    case RunEndReason::kTripleFault:
      res.detail = "triple fault (KVM_EXIT_SHUTDOWN): an exception occurred while the CPU "
                   "was delivering a double fault (e.g. no valid IDT or stack)\n" +
                   describe_state(res.regs, res.sregs);
      break;
    case RunEndReason::kEmulationFailure:
    case RunEndReason::kInternalError: {
      uint8_t bytes[15];
      uint8_t n = failure.insn_len;
      if (n > 0) {
        std::memcpy(bytes, failure.insn, n);
      } else {
        n = read_insn(memory_, res.sregs, linear_rip(res.sregs, res.regs.rip, mode), bytes);
      }
      const auto d = x86::disassemble({bytes, n}, mode, res.regs.rip);
      const std::span<const uint8_t> shown(bytes, d.ok ? d.length : n);
      res.detail = (res.reason == RunEndReason::kEmulationFailure
                        ? fmt::format("KVM could not emulate the instruction at rip={:#x}: {} "
                                      "[{:02x}]",
                                      res.regs.rip, d.text, fmt::join(shown, ""))
                        : "KVM internal error, suberror " + std::to_string(failure.suberror)) +
                   "\n" + describe_state(res.regs, res.sregs);
      break;
    }
    case RunEndReason::kFailEntry:
      res.detail = "VM entry failed (KVM_EXIT_FAIL_ENTRY): the CPU refused the guest state\n" +
                   describe_state(res.regs, res.sregs);
      break;
    case RunEndReason::kUnhandledExit:
      res.detail = "unhandled VM exit " +
                   std::string(trace::exit_reason_name(res.last_exit_reason)) + " (" +
                   std::to_string(res.last_exit_reason) + ")\n" +
                   describe_state(res.regs, res.sregs);
      break;
    default: break;
  }

  if (tracing) {
    trace::RunEndEvent end{};
    end.header = trace::make_header<trace::RunEndEvent>(trace::EventType::kRunEnd);
    end.header.seq = seq;  // dense and unique: after every exit and hypercall record
    end.header.time_ns = start + res.duration_ns;
    end.header.rip = res.regs.rip;
    end.header.cpu_mode = mode;
    end.header.cpl = cpl_of(res.sregs, res.regs.rflags);
    end.reason = res.reason;
    end.exit_code = res.exit_code;
    end.exits = res.exits;
    end.duration_ns = res.duration_ns;
    sink->on_event(end.header);
  }
  return res;
}

}  // namespace trapscope::vmm
