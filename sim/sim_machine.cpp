#include "sim/sim_machine.hpp"

#include <stdexcept>

#include <time.h>

#include <algorithm>
#include <cinttypes>
#include <cstddef>
#include <cstring>
#include <iterator>
#include <string_view>

#include <fmt/format.h>

#include "platform/exit_event.hpp"
#include "sim/bt/counts.hpp"
#include "x86/decoder.hpp"
#include "x86/disasm.hpp"
#include "sim/interp/handlers.hpp"
#include "sim/interp/protection.hpp"

namespace trapscope::sim {
namespace {

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::string describe(const CpuState& s) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "  vCPU: rip=%" PRIx64 " rsp=%" PRIx64 " rflags=%" PRIx64 " cpl=%u mode=%s\n"
                "        cr0=%" PRIx64 " cr2=%" PRIx64 " cr3=%" PRIx64 " cr4=%" PRIx64
                " efer=%" PRIx64 "\n        gdt=%" PRIx64 "/%x idt=%" PRIx64 "/%x cs=%04x ss=%04x\n",
                s.rip, s.gpr[kRsp], s.rflags, s.cpl(), std::string(trace::to_string(s.mode())).c_str(),
                s.cr0, s.cr2, s.cr3, s.cr4, s.efer, s.gdtr.base, s.gdtr.limit, s.idtr.base,
                s.idtr.limit, s.seg[kCs].selector, s.seg[kSs].selector);
  return buf;
}

// Instructions that may change what SimMachine::FetchContext holds (CR0, EFER, CS, RFLAGS.VM,
// the CPL): every system instruction (x86/ops.def family "system": far transfers, gates,
// iret, segment and control register loads, wrmsr, ...), popf, and a pop of a segment
// register. Exceptions are handled apart (recover()).
constexpr bool kSystemFamily[] = {
    false,  // kUnsupported
#define TRAPSCOPE_OP(name, family) std::string_view(#family) == "system",
#include "x86/ops.def"
#undef TRAPSCOPE_OP
};

bool changes_fetch_context(const Instruction& insn) {
  const auto op = static_cast<size_t>(insn.op);
  if (op < std::size(kSystemFamily) && kSystemFamily[op]) return true;
  if (insn.op == Op::kPopf) return true;
  if (insn.op == Op::kPop && insn.ops[0].kind == OperandKind::kReg &&
      insn.ops[0].reg_class == RegClass::kSeg) {
    return true;
  }
  return false;
}

}  // namespace

void apply_boot_state(CpuState& s, const platform::BootState& b) {
  s = CpuState{};
  s.rip = b.rip;
  s.gpr[kRsp] = b.rsp;
  s.rflags = b.rflags;
  s.seg[kCs] = (b.cs);
  s.seg[kDs] = (b.ds);
  s.seg[kEs] = (b.es);
  s.seg[kFs] = (b.fs);
  s.seg[kGs] = (b.gs);
  s.seg[kSs] = (b.ss);
  s.gdtr = {b.gdt_base, b.gdt_limit};
  // As KvmMachine::load: the real-mode IVT at 0, no IDT otherwise.
  s.idtr = {0, static_cast<uint16_t>((b.cr0 & kCr0Pe) ? 0 : 0x3FF)};
  s.tr = Segment{};
  s.tr.type = 0xB;  // busy 32-bit TSS, as after reset (SDM Vol. 3A 9.1.1)
  s.tr.s = 0;
  s.ldtr = Segment{};
  s.ldtr.type = 0x2;
  s.ldtr.s = 0;
  s.cr0 = b.cr0;
  s.cr3 = b.cr3;
  s.cr4 = b.cr4;
  s.efer = b.efer;
}

platform::HypercallArgs SimMachine::HypercallHost::args() {
  const CpuState& s = cpu_.s;
  return {static_cast<uint32_t>(s.gpr[kRax]), s.gpr[kRbx], s.gpr[kRcx], s.gpr[kRsi]};
}

void SimMachine::HypercallHost::set_cr3(uint64_t value) {
  cpu_.s.cr3 = value;
  mmu_cr3_written(cpu_);  // as `mov cr3` (sim/processor/control_registers.cpp write_cr3)
}

void SimMachine::note_dma_write(void* cpu, uint64_t gpa, uint64_t len) {
  for (uint64_t done = 0; done < len; done += 4096) {  // Cpu::note_write takes an unsigned size
    const auto chunk = static_cast<unsigned>(std::min<uint64_t>(len - done, 4096));
    static_cast<Cpu*>(cpu)->note_write(gpa + done, chunk);
  }
}

SimMachine::SimMachine(const SimConfig& config)
    : config_(config),
      memory_(config.memory_bytes),
      cpu_(memory_, devices_),
      dma_ram_(memory_.span(), &SimMachine::note_dma_write, &cpu_) {
  devices_.ram = &dma_ram_;
  if (!decode_cache_) throw std::bad_alloc();
  if (config.technique == virt::Technique::kBt) {
    bt_ = std::make_unique<bt::Cache>();
    bt_->lookup_events = config.bt_lookup_events;
    if (config.bt_adaptive_threshold > bt::kBtMaxAdaptiveThreshold) {
      throw std::invalid_argument("the adaptive threshold must be 1 to " +
                                  std::to_string(bt::kBtMaxAdaptiveThreshold));
    }
    if (config.bt_adaptive_threshold != 0) bt_->adaptive_threshold = config.bt_adaptive_threshold;
  } else if (config.technique != virt::Technique::kEmulation) {
    monitor_ = std::make_unique<virt::Monitor>(config.technique, config.deprivilege, config.vmcs);
  }
  if (!cpu_.tlb.set_entries(config.tlb_entries)) {
    throw std::invalid_argument("TLB entries must be a power of two from 1 to " +
                                std::to_string(Tlb::kMaxEntries));
  }
  cpu_.memvirt.mode = config.paging;
  devices_.hypercall.bind(&hypercall_host_);
  cpu_.memvirt.ept.assign(512, 0);  // the EPT PML4; the VMM fills the rest on EPT violations
}

void SimMachine::load(std::span<const uint8_t> image) {
  platform::load_image(memory_.span(), image, config_.load_address, config_.mode);
  const platform::BootState b = platform::prepare_boot(memory_.span(), config_.mode, config_.load_address);
  apply_boot_state(cpu_.s, b);
  cpu_.flush_tlb();
  cpu_.invalidate_all_code();
  if (bt_) bt_->flush();
}

void SimMachine::report_bt_counts(trace::EventSink& sink) {
  if (bt_) bt::report_unit_counts(*bt_, cpu_, sink);
}

SimMachine::FetchContext SimMachine::fetch_context() const {
  const CpuState& s = cpu_.s;
  FetchContext x;
  x.mode = s.mode();
  x.m64 = x.mode == trace::CpuMode::kLong64;
  x.paging = s.cr0 & kCr0Pg;
  x.cpl = s.cpl();
  x.user = x.cpl == 3;
  x.cs_base = s.seg[kCs].base;
  x.cs_limit = s.seg[kCs].limit;
  x.rip_mask = x.m64 ? ~0ull : s.seg[kCs].db ? 0xFFFFFFFFull : 0xFFFFull;
  return x;
}

void SimMachine::record_instruction(const uint8_t* code, uint8_t cpl, trace::CpuMode mode) {
  Cpu& c = cpu_;
  trace::InstructionEvent e;
  // type, cpl, cpu_mode, flags = 0, size, reserved = 0: the header's first 8 bytes in one
  // store (little-endian), so that a sink reading them as one word is served from the store
  // buffer (separate byte stores make that load wait for them: trace::Recorder::on_event).
  static_assert(offsetof(trace::EventHeader, seq) == 8 && offsetof(trace::EventHeader, size) == 4);
  const uint64_t head = static_cast<uint64_t>(trace::EventType::kInstruction) |
                        uint64_t{cpl} << 8 | static_cast<uint64_t>(mode) << 16 |
                        uint64_t{sizeof(trace::InstructionEvent)} << 32;
  std::memcpy(&e.header, &head, sizeof head);
  e.header.seq = c.next_seq();
  // A clock read per instruction would cost more than the instruction: instruction events
  // carry the host time sampled every 4096 instructions (run()).
  e.header.time_ns = clock_ns_;
  e.header.rip = c.fault_rip;
  static_assert(offsetof(trace::InstructionEvent, bytes) ==
                offsetof(trace::InstructionEvent, len) + 1);
  static_assert(sizeof(trace::InstructionEvent) - offsetof(trace::InstructionEvent, len) ==
                sizeof(DecodedEntry::code));
  std::memcpy(&e.len, code, sizeof(DecodedEntry::code));
  c.sink()->on_event(e.header);
}

// The common case: the instruction at CS:RIP is in the decode cache and its page's translation
// is in the TLB (or paging is off). The checks here are the fetch's (CS limit, execute
// permission) for an instruction already decoded; anything else goes to step_slow(), which
// fetches, decodes, fills the cache and raises fetch faults.
inline const SimMachine::DecodedEntry* SimMachine::lookup(const FetchContext& x) {
  Cpu& c = cpu_;
  const uint64_t rip = c.s.rip;
  const uint64_t la = x.m64 ? rip : ((x.cs_base + rip) & 0xFFFFFFFFull);
  uint64_t pa = la;
  if (x.paging) {
    const uint64_t vpn = la >> 12;
    const Tlb::Entry& t = c.tlb.slot(vpn);
    if (t.vpn != vpn || !(t.allow & Tlb::need_bit(Access::kExecute, x.user))) return nullptr;
    pa = (t.pfn << 12) | (la & 0xFFF);
  }
  const DecodedEntry& e = decode_cache_[(pa ^ (pa >> 14)) & (kDecodeCacheEntries - 1)];
  // Outside 64-bit mode the whole instruction must lie within the CS limit (RIP < 2^32, so
  // the sum does not wrap).
  if (e.tag != pa + 1 || e.mode != x.mode || e.generation != *e.page_generation ||
      (!x.m64 && rip + e.insn.length - 1 > x.cs_limit)) {
    return nullptr;
  }
  return &e;
}

inline StepStatus SimMachine::step_cached(const DecodedEntry& e, const FetchContext& x) {
  Cpu& c = cpu_;
  try {
    c.insn_bytes = e.code + 1;
    c.insn_len = e.insn.length;
    c.s.rip = (c.s.rip + e.insn.length) & x.rip_mask;
    // RF suppresses instruction breakpoints for one instruction and is cleared when an
    // instruction completes (SDM Vol. 3A 17.3.1.1); no breakpoints are modelled, so clearing
    // it before each instruction gives the same RFLAGS to anything the instruction pushes.
    c.s.rflags &= ~kRF;
    e.handler(c, e.insn);  // never under a technique: step_slow() caches nothing then
    ++c.s.tsc;
    ++instructions_;
    if (config_.record_instructions && c.sink()) [[unlikely]] {
      // The CPL and mode after the instruction: those of the context unless it changed them.
      if (e.changes_context) {
        record_instruction(e.code, c.cpl(), c.s.mode());
      } else {
        record_instruction(e.code, x.cpl, x.mode);
      }
    }
  } catch (...) {
    return recover(std::current_exception(), nullptr, 0);
  }
  if (c.halted) return StepStatus::kHalted;
  if (c.exit_requested) return StepStatus::kGuestExit;
  return StepStatus::kOk;
}

StepStatus SimMachine::step() {
  Cpu& c = cpu_;
  c.fault_rip = c.s.rip;
  const FetchContext x = fetch_context();
  const DecodedEntry* e = lookup(x);
  return e ? step_cached(*e, x) : step_slow();
}

StepStatus SimMachine::burst(uint64_t n, uint64_t* done) {
  Cpu& c = cpu_;
  const uint64_t exits = c.exits;
  FetchContext x = fetch_context();
  uint64_t i = 0;
  StepStatus st = StepStatus::kOk;
  while (i < n) {
    c.fault_rip = c.s.rip;
    const DecodedEntry* e = lookup(x);
    if (e != nullptr) [[likely]] {
      st = step_cached(*e, x);
      if (e->changes_context) refresh_context_ = true;
    } else {
      st = step_slow();
    }
    ++i;
    if (st != StepStatus::kOk || c.exits != exits) [[unlikely]] break;
    if (refresh_context_) [[unlikely]] {
      refresh_context_ = false;
      x = fetch_context();
    }
  }
  *done = i;
  return st;
}

StepStatus SimMachine::step_slow() {
  Cpu& c = cpu_;
  c.insn_bytes = nullptr;
  refresh_context_ = true;  // whatever the instruction was, the next one looks again
  uint8_t code[16] = {};  // as DecodedEntry::code: the length, then the bytes
  uint8_t* bytes = code + 1;
  unsigned n = 0;
  try {
    const trace::CpuMode mode = c.s.mode();
    const bool m64 = mode == trace::CpuMode::kLong64;
    const Segment& cs = c.s.seg[kCs];
    DecodedEntry* slot = nullptr;
    uint64_t pa = 0;
    if (m64 || c.s.rip <= cs.limit) {
      const uint64_t la = m64 ? c.s.rip : ((cs.base + c.s.rip) & 0xFFFFFFFFull);
      pa = c.translate(la, Access::kExecute, c.cpl() == 3);
      slot = &decode_cache_[(pa ^ (pa >> 14)) & (kDecodeCacheEntries - 1)];
    }
    Instruction insn;
    n = c.fetch(bytes, 15);
    const auto st = x86::decode({bytes, n}, mode, &insn);
    if (st == x86::DecodeStatus::kTruncated) {
      if (n < 15) {
        // The instruction continues on a page (or past a limit) that cannot be fetched:
        // fault on the first byte that is missing.
        const uint64_t la = (m64 ? c.s.rip : cs.base + c.s.rip) + n;
        if (!m64 && c.s.rip + n > cs.limit) raise(vec::kGP, 0);
        c.translate(m64 ? la : la & 0xFFFFFFFFull, Access::kExecute, c.cpl() == 3);
      }
      raise(vec::kGP, 0);  // longer than 15 bytes (SDM Vol. 2 2.3.11)
    }
    if (st == x86::DecodeStatus::kInvalid) raise(vec::kUD);
    if (insn.op == Op::kUnsupported) {
      detail_ = "unsupported: " + x86::disassemble({bytes, insn.length}, mode, c.s.rip).text +
                fmt::format(" at {:#x}", c.s.rip);
      return StepStatus::kUnsupported;
    }
    code[0] = insn.length;
    std::memset(bytes + insn.length, 0, 15 - insn.length);
    const Handler handler = select_handler(insn);
    // Cache it if it lies within one page of guest RAM. Under a virtualization technique
    // nothing is cached, so every instruction comes here and the fast path (step_cached())
    // never needs to check for a monitor.
    if (!monitor_ && slot != nullptr && (pa & 0xFFF) + insn.length <= 0x1000 &&
        memory_.contains(pa, insn.length)) {
      slot->tag = pa + 1;
      slot->mode = mode;
      slot->generation = c.code_generation(pa);
      slot->page_generation = c.code_generation_counter(pa);
      slot->handler = handler;
      slot->changes_context = changes_fetch_context(insn);
      slot->insn = insn;
      std::memcpy(slot->code, code, sizeof code);
      c.mark_code_page(pa);
    }
    c.insn_bytes = bytes;
    c.insn_len = insn.length;
    uint64_t next = c.s.rip + insn.length;
    if (!m64) next &= cs.db ? 0xFFFFFFFFull : 0xFFFFull;
    c.s.rip = next;
    c.s.rflags &= ~kRF;  // as in step_cached()
    if (monitor_) [[unlikely]] {
      monitor_->execute(c, insn, bytes);  // a technique's VMM
    } else {
      handler(c, insn);
    }
    ++c.s.tsc;
    ++instructions_;
    if (config_.record_instructions && c.sink()) record_instruction(code, c.cpl(), c.s.mode());
  } catch (...) {
    return recover(std::current_exception(), bytes, n);
  }
  if (c.halted) return StepStatus::kHalted;
  if (c.exit_requested) return StepStatus::kGuestExit;
  return StepStatus::kOk;
}

// An exception from fetch, decode or a handler: deliver a CPU fault through the IDT (or end the
// run on a triple fault), or stop on an unsupported instruction.
StepStatus SimMachine::recover(std::exception_ptr error, const uint8_t* fetched, unsigned n) {
  Cpu& c = cpu_;
  refresh_context_ = true;  // the exception's delivery may change mode, CS and CPL
  try {
    try {
      std::rethrow_exception(error);
    } catch (const RepSuspended&) {
      c.s.rip = c.fault_rip;  // not retired: no TSC, count or instruction event
      return StepStatus::kSuspended;
    } catch (const CpuFault& f) {
      c.s.rip = c.fault_rip;
      if (monitor_) monitor_->on_exception(c, f.vector, f.has_error_code, f.error_code);
      deliver(c, f.vector, EventSource::kException, f.has_error_code, f.error_code, c.fault_rip);
    }
  } catch (const TripleFault& t) {
    detail_ = std::string("triple fault: ") + t.what() + "\n" + describe(c.s);
    return StepStatus::kTripleFault;
  } catch (const Unsupported& u) {
    const auto d = c.insn_bytes
                       ? x86::disassemble({c.insn_bytes, c.insn_len}, c.s.mode(), c.fault_rip)
                       : x86::disassemble({fetched, fetched ? n : 0}, c.s.mode(), c.fault_rip);
    detail_ = fmt::format("unsupported: {} at {:#x} ({})", d.text, c.fault_rip, u.what());
    c.s.rip = c.fault_rip;
    return StepStatus::kUnsupported;
  } catch (const LimitReached& l) {
    limit_ = l.reason;
    detail_ = fmt::format("{} at {:#x}", trace::to_string(l.reason), c.fault_rip);
    c.s.rip = c.fault_rip;
    return StepStatus::kLimit;
  }
  if (c.halted) return StepStatus::kHalted;
  if (c.exit_requested) return StepStatus::kGuestExit;
  return StepStatus::kOk;
}

namespace {
// Passes events on and notes whether one of the watched types went by.
class WatchSink final : public trace::EventSink {
 public:
  WatchSink(trace::EventSink* next, uint32_t mask) : next_(next), mask_(mask) {}
  void on_event(const trace::EventHeader& e) override {
    if (mask_ & (1u << static_cast<unsigned>(e.type))) matched = true;
    if (next_) next_->on_event(e);
  }
  bool full() const override { return next_ && next_->full(); }
  bool matched = false;

 private:
  trace::EventSink* next_;
  uint32_t mask_;
};
}  // namespace

SimResult SimMachine::run(const SimLimits& limits, trace::EventSink* outer_sink) {
  using trace::RunEndReason;
  SimResult r;
  WatchSink watch(outer_sink, limits.stop_on);
  trace::EventSink* sink = limits.stop_on ? &watch : outer_sink;
  cpu_.set_sink(sink);
  cpu_.halted = false;
  cpu_.exit_requested = false;
  stop_.store(false);
  const uint64_t start = now_ns();
  const uint64_t deadline = start + static_cast<uint64_t>(limits.timeout_s * 1e9);
  const uint64_t first_instruction = instructions_;
  const uint64_t first_exit = cpu_.exits;
  // Without a breakpoint or an event to stop on, the checks below are only due every 4096
  // steps (the clock) or when an exit happened (burst() returns then). Under a technique's
  // monitor any instruction may change the fetch context, so each is a step() of its own.
  const bool fast = !monitor_ && !limits.has_breakpoint && !limits.stop_on;
  bool suspended = false;  // RIP is at a suspended string instruction, not at a new one
  for (uint64_t i = 0;;) {
    if (limits.max_instructions && instructions_ - first_instruction >= limits.max_instructions) {
      r.reason = RunEndReason::kInstructionLimit;
      break;
    }
    if (limits.max_exits && cpu_.exits - first_exit >= limits.max_exits) {
      r.reason = RunEndReason::kExitLimit;
      break;
    }
    if ((i & 0xFFF) == 0) {
      clock_ns_ = now_ns();
      if (stop_.load(std::memory_order_relaxed)) {
        r.reason = RunEndReason::kStopped;
        break;
      }
      if (clock_ns_ >= deadline) {
        r.reason = RunEndReason::kTimeLimit;
        break;
      }
      if (sink && sink->full()) {  // an in-memory sink at its cap (trace/limits.hpp)
        r.reason = RunEndReason::kEventLimit;
        break;
      }
    }
    if (limits.has_breakpoint && i > 0 && !suspended && cpu_.s.rip == limits.breakpoint) {
      r.reason = RunEndReason::kBreakpoint;
      break;
    }
    StepStatus st;
    if (bt_) {
      // Binary translation (sim/bt/execute.cpp): whole translation units, up to the next clock
      // check or the instruction limit.
      uint64_t n = 0x1000 - (i & 0xFFF), done = 0;
      if (limits.max_instructions) {
        n = std::min(n, limits.max_instructions - (instructions_ - first_instruction));
      }
      st = step_bt(n, limits, limits.stop_on ? &watch.matched : nullptr, &done);
      i += std::max<uint64_t>(done, 1);
    } else if (fast) {
      uint64_t n = 0x1000 - (i & 0xFFF), done = 0;
      if (limits.max_instructions) {
        n = std::min(n, limits.max_instructions - (instructions_ - first_instruction));
      }
      st = burst(n, &done);
      i += done;
    } else {
      st = step();
      ++i;
    }
    suspended = st == StepStatus::kSuspended;
    if (suspended) {
      i = (i | 0xFFF) + 1;  // up to kRepIterationsPerStep iterations ran: check the clock now
      st = StepStatus::kOk;
    }
    if (st == StepStatus::kOk) {
      if (watch.matched) {
        r.reason = RunEndReason::kEventMatched;
        break;
      }
      continue;
    }
    if (st == StepStatus::kHalted) {
      r.reason = RunEndReason::kHalted;
    } else if (st == StepStatus::kGuestExit) {
      r.reason = RunEndReason::kGuestExit;
      r.exit_code = *devices_.control.exit_code();
    } else if (st == StepStatus::kTripleFault) {
      r.reason = RunEndReason::kTripleFault;
      ++cpu_.exits;  // KVM reports it as KVM_EXIT_SHUTDOWN
      if (sink) {  // built as every VM-exit event is (platform/exit_event.hpp); no bytes
        platform::ExitSite site;
        site.seq = cpu_.next_seq();
        site.time_ns = Cpu::event_time();
        site.rip = cpu_.s.rip;
        site.cpl = cpu_.cpl();
        site.mode = cpu_.s.mode();
        const trace::VmExitEvent e = platform::exit_event(platform::ExitShutdown{}, site);
        sink->on_event(e.header);
      }
    } else if (st == StepStatus::kLimit) {
      r.reason = limit_;
    } else {
      r.reason = RunEndReason::kUnsupported;
    }
    r.detail = detail_;
    break;
  }
  r.instructions = instructions_ - first_instruction;
  r.exits = cpu_.exits - first_exit;
  r.duration_ns = now_ns() - start;
  if (sink && r.reason != RunEndReason::kEventMatched && r.reason != RunEndReason::kBreakpoint) {
    // A pause (breakpoint, matched event) is not the end of the run: no RunEndEvent, so that a
    // later run continues the same event stream.
    if (bt_) bt::report_unit_counts(*bt_, cpu_, *sink);  // sim/bt/counts.hpp
    trace::RunEndEvent end{};
    end.header = trace::make_header<trace::RunEndEvent>(trace::EventType::kRunEnd);
    end.header.seq = cpu_.next_seq();
    end.header.time_ns = Cpu::event_time();
    end.header.rip = cpu_.s.rip;
    end.header.cpl = cpu_.cpl();
    end.header.cpu_mode = cpu_.s.mode();
    end.reason = r.reason;
    end.exit_code = r.exit_code;
    end.exits = r.exits;
    end.duration_ns = r.duration_ns;
    sink->on_event(end.header);
  }
  cpu_.set_sink(nullptr);
  return r;
}

}  // namespace trapscope::sim
