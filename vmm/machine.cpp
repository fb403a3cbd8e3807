#include "vmm/machine.hpp"

#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cinttypes>
#include <cstring>
#include <mutex>

#include <fmt/format.h>

#include "sim/decode/disasm.hpp"
#include "vmm/exit_insn.hpp"
#include "vmm/guest_paging.hpp"
#include "vmm/handle_exit.hpp"

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

kvm_segment to_kvm(const SegmentState& s) {
  kvm_segment k{};
  k.base = s.base;
  k.limit = s.limit;
  k.selector = s.selector;
  k.type = s.type;
  k.present = s.present;
  k.dpl = s.dpl;
  k.db = s.db;
  k.s = s.s;
  k.l = s.l;
  k.g = s.g;
  return k;
}

uint8_t cpl_of(const kvm_sregs& s, uint64_t rflags) {
  if (!(s.cr0 & 1)) return 0;
  if (rflags & (1ull << 17)) return 3;  // virtual-8086
  return s.cs.selector & 3;
}

trace::CpuMode mode_of(const kvm_sregs& s, uint64_t rflags) {
  return cpu_mode(s.cr0, s.efer, s.cs.l, s.cs.db, rflags);
}

// Reads up to 15 instruction bytes at a guest-linear address through the guest's page tables.
uint8_t read_insn(const GuestMemory& mem, const kvm_sregs& s, uint64_t linear, uint8_t* out) {
  const PagingRegs pr{s.cr0, s.cr3, s.cr4, s.efer};
  uint8_t n = 0;
  while (n < 15) {
    const uint64_t la = linear + n;
    auto gpa = guest_linear_to_physical(mem.bytes(), pr, la);
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
        VcpuExit exit = m.vcpu().run();
        const uint64_t rip = m.vcpu().get_regs().rip;
        if (const auto* o = std::get_if<ExitIoOut>(&exit)) {
          behaviour.after_out = rip == entry + 2;
          (void)o;
        } else if (const auto* in = std::get_if<ExitIoIn>(&exit)) {
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

// The hypercall interface on KVM (vmm/hypercall.hpp): the doorbell's `in` is a KVM_EXIT_IO; the
// registers come from KVM_GET_REGS. CR3 loads and TLB flushes go in with KVM_SET_SREGS, but
// only after the `in` has completed (KVM_SET_SREGS while KVM still has the `in` pending makes
// an emulating KVM run the `in` again): run() calls apply() after complete_pending_io().
class KvmHypercallHost final : public HypercallHost {
 public:
  KvmHypercallHost(Vcpu& vcpu, GuestMemory& memory) : vcpu_(vcpu), memory_(memory) {}
  HypercallArgs args() override {
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
void KvmMachine::record_hypercall(trace::EventSink& sink, const HypercallRecord& hc,
                                  const trace::VmExitEvent& io_exit, uint64_t seq) {
  const trace::VmExitEvent e = hypercall_event(hc, io_exit, seq);
  sink.on_event(e.header);
}

KvmMachine::KvmMachine(const MachineConfig& config)
    : config_(config),
      kvm_(Kvm::open()),
      vm_(kvm_.create_vm()),
      memory_(config.memory_bytes),
      vcpu_(create_vcpu(kvm_, vm_, memory_)) {
  hypercall_host_ = std::make_unique<KvmHypercallHost>(vcpu_, memory_);
  devices_.hypercall.bind(hypercall_host_.get());
}

KvmMachine::~KvmMachine() = default;

void KvmMachine::load(std::span<const uint8_t> image) {
  load_image(memory_.bytes(), image, config_.load_address, config_.mode);
  const BootState b = prepare_boot(memory_.bytes(), config_.mode, config_.load_address);

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
  s.idt.limit = config_.mode == BootMode::kReal ? 0x3FF : 0;
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

void KvmMachine::request_stop() {
  stop_requested_.store(true);
  vcpu_.kick();
}

trace::VmExitEvent KvmMachine::record_exit(trace::EventSink& sink, const VcpuExit& exit,
                                           uint64_t seq, uint64_t t_exit) {
  const kvm_regs& regs = vcpu_.synced_regs();
  const kvm_sregs& s = vcpu_.synced_sregs();
  trace::VmExitEvent e{};
  e.header = trace::make_header<trace::VmExitEvent>(trace::EventType::kVmExit);
  e.header.seq = seq;
  e.header.time_ns = t_exit;
  e.header.rip = regs.rip;
  e.header.cpu_mode = mode_of(s, regs.rflags);
  e.header.cpl = cpl_of(s, regs.rflags);
  e.reason = kvm_exit_reason(exit);
  e.handle_ns = static_cast<uint32_t>(std::min<uint64_t>(monotonic_ns() - t_exit, UINT32_MAX));

  uint64_t linear = linear_rip(s, regs.rip, e.header.cpu_mode);
  if (const auto* ie = std::get_if<ExitInternalError>(&exit); ie && ie->insn_len > 0) {
    e.insn_len = ie->insn_len;
    std::memcpy(e.insn, ie->insn, ie->insn_len);
  } else {
    e.insn_len = read_insn(memory_, s, linear, e.insn);
  }
  // Point at the exiting instruction if KVM has already completed it (see trace/event.hpp).
  // KVM always moves RIP past `hlt`; whether it has moved past an `in`/`out` depends on the
  // host (probed once per process: host_rip_advances()). The predicted place is tried first,
  // the other one second, so adjacent identical instructions are told apart by the probe.
  const auto* io_in = std::get_if<ExitIoIn>(&exit);
  const auto* io_out = std::get_if<ExitIoOut>(&exit);
  const bool is_hlt = std::holds_alternative<ExitHlt>(exit);
  if (io_in || io_out || is_hlt) {
    const bool m64 = e.header.cpu_mode == trace::CpuMode::kLong64;
    const bool d16 = e.header.cpu_mode == trace::CpuMode::kReal16 ||
                     e.header.cpu_mode == trace::CpuMode::kProtected16 ||
                     e.header.cpu_mode == trace::CpuMode::kCompat16;
    IoExitInfo io{};
    if (io_in) io = {io_in->port, io_in->size, false};
    if (io_out) io = {io_out->port, io_out->size, true};
    const auto dx = static_cast<uint16_t>(regs.rdx);
    auto match = [&](std::span<const uint8_t> b) {
      return is_hlt ? match_hlt(b, m64) : match_io_instruction(b, io, dx, d16, m64);
    };
    auto find_before = [&]() -> bool {
      for (uint8_t back = 1; back <= 15 && back <= linear; ++back) {
        uint8_t bytes[15];
        const uint8_t n = read_insn(memory_, s, linear - back, bytes);
        if (n >= back && match({bytes, back}) == back) {
          linear -= back;
          e.header.rip = regs.rip - back;
          e.header.flags |= trace::kExitFlagRipAdvanced;
          e.insn_len = n;
          std::memcpy(e.insn, bytes, n);
          return true;
        }
      }
      return false;
    };
    const HostRipBehaviour& host = host_rip_advances();
    const bool advanced = is_hlt || (io_out ? host.after_out : host.after_in);
    if (advanced) {
      if (!find_before() && match({e.insn, e.insn_len}) == 0) {
        // Neither place holds the instruction (self-modifying code?): leave RIP as KVM gave it.
      }
    } else if (match({e.insn, e.insn_len}) == 0) {
      find_before();
    }
  }
  e.insn_addr = linear;

  trace::ExitPayload& p = e.payload;
  if (const auto* io = std::get_if<ExitIoOut>(&exit)) {
    p.io = {io->port, io->size, 1, io->count, 0, {}};
    std::memcpy(&p.io.value, io->data.data(), std::min<size_t>(io->size, 8));
  } else if (const auto* io = std::get_if<ExitIoIn>(&exit)) {
    p.io = {io->port, io->size, 0, io->count, 0, {}};
    std::memcpy(&p.io.value, io->data.data(), std::min<size_t>(io->size, 8));
  } else if (const auto* m = std::get_if<ExitMmioRead>(&exit)) {
    p.mmio.gpa = m->gpa;
    p.mmio.len = static_cast<uint8_t>(m->data.size());
    std::memcpy(&p.mmio.data, m->data.data(), m->data.size());
  } else if (const auto* m = std::get_if<ExitMmioWrite>(&exit)) {
    p.mmio.gpa = m->gpa;
    p.mmio.len = static_cast<uint8_t>(m->data.size());
    p.mmio.is_write = 1;
    std::memcpy(&p.mmio.data, m->data.data(), m->data.size());
  } else if (const auto* ie = std::get_if<ExitInternalError>(&exit)) {
    p.internal = {ie->suberror, ie->ndata, {ie->data[0], ie->data[1]}};
  } else if (const auto* fe = std::get_if<ExitFailEntry>(&exit)) {
    p.fail_entry.hardware_entry_failure_reason = fe->hardware_entry_failure_reason;
    p.fail_entry.cpu = fe->cpu;
  } else if (const auto* d = std::get_if<ExitDebug>(&exit)) {
    p.debug = {d->exception, 0, d->dr6, d->dr7};
  } else if (const auto* se = std::get_if<ExitSystemEvent>(&exit)) {
    p.system_event.type = se->type;
  }
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

void KvmMachine::complete_pending_io(const VcpuExit& exit) {
  // Hardware-assisted KVM completes an `in`/`out` or MMIO access (and moves RIP past it) at
  // the next KVM_RUN; with immediate_exit set, KVM_RUN does that and returns EINTR at once
  // (KVM API 5, kvm_run.immediate_exit). So the final state is the same on every host: the
  // exiting instruction has completed.
  const bool pending = std::holds_alternative<ExitIoIn>(exit) ||
                       std::holds_alternative<ExitIoOut>(exit) ||
                       std::holds_alternative<ExitMmioRead>(exit) ||
                       std::holds_alternative<ExitMmioWrite>(exit);
  if (!pending) return;
  vcpu_.kick();
  VcpuExit after = vcpu_.run();
  vcpu_.clear_kick();
  (void)after;  // ExitInterrupted expected; anything else is the next exit, not run
}

RunResult KvmMachine::run(const RunLimits& limits, trace::EventSink* sink) {
  RunResult res;
  const bool tracing = sink != nullptr;
  vcpu_.set_sync_regs(tracing);
  stop_requested_.store(false);
  vcpu_.clear_kick();

  const uint64_t start = monotonic_ns();
  const uint64_t deadline = start + static_cast<uint64_t>(limits.timeout_s * 1e9);
  ExitInternalError failure{};
  {
    RunTimer timer(vcpu_, limits.timeout_s);
    uint64_t seq = 0;
    for (;;) {
      if (limits.max_exits != 0 && res.exits >= limits.max_exits) {
        res.reason = RunEndReason::kExitLimit;
        break;
      }
      VcpuExit exit = vcpu_.run();
      if (std::holds_alternative<ExitInterrupted>(exit)) {
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
      ExitAction action = handle_exit(devices_, exit);
      if (tracing) {
        const trace::VmExitEvent recorded = record_exit(*sink, exit, seq++, t_exit);
        if (HypercallRecord hc; devices_.hypercall.take_record(&hc)) {
          record_hypercall(*sink, hc, recorded, seq++);
        }
      } else {
        HypercallRecord hc;
        devices_.hypercall.take_record(&hc);
      }
      if (!action.stop && hypercall_host_->pending()) {
        complete_pending_io(exit);
        hypercall_host_->apply();
      }
      if (!action.stop && tracing && sink->full()) {  // an in-memory sink at its cap
        action = ExitAction::end(RunEndReason::kEventLimit);
      }
      if (action.stop) {
        res.reason = action.reason;
        res.exit_code = action.exit_code;
        res.last_exit_reason = kvm_exit_reason(exit);
        if (const auto* ie = std::get_if<ExitInternalError>(&exit)) failure = *ie;
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
      const auto d = decode::disassemble({bytes, n}, mode, res.regs.rip);
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
    end.header.seq = res.exits;  // dense: one event per exit, then this one
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
