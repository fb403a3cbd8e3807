// sim/bt/execute.cpp — the translation cache's executor: SimMachine::step_bt runs guest kernel
// code from translated units (sim/bt/translator.hpp) and hands CPL 3 code to the interpreter's
// fast path (SimMachine::step).
#include <algorithm>
#include <cstring>
#include <optional>

#include "sim/bt/translator.hpp"
#include "sim/sim_machine.hpp"

namespace trapscope::sim {
namespace {

// The most units step_bt enters itself in one call (chain_op's are not counted). The run
// loop's budget (up to 0x1000 instructions, its clock-check period) bounds a call already; this
// only bounds a call that retires few instructions per unit. 64 cost the compute bench ~3 host
// instructions per guest instruction in returns to the run loop (callgrind, docs/benchmarks.md's BT bench
// paragraph).
constexpr unsigned kMaxHops = 1024;
// The most instructions chain_op (microops.cpp) runs in units one after the other before it
// returns to step_bt: bounds the native stack in builds where the micro-ops' tail calls are
// real calls (Debug, sanitizers: at most 2 * kMaxChainInsns frames, one per micro-op and one
// per unit's end); where they are jumps it costs one return to step_bt per 1024 instructions.
constexpr uint64_t kMaxChainInsns = 1024;

// The index in u of the instruction at `rip` (the micro-ops name a stopping or faulting
// instruction by c.fault_rip; RIPs within a unit are distinct).
size_t index_of(const bt::Unit& u, uint64_t rip) {
  for (size_t i = 0; i < u.code.size(); ++i) {
    if (u.code[i].rip == rip) return i;
  }
  return 0;  // not reached: every micro-op that stops or raises set c.fault_rip
}

}  // namespace

// [SECTION] One step_bt call, in named steps
//
// SimMachine::step_bt runs translated units from CS:RIP, following chains, until `budget`
// instructions have retired, a callout, an exception, a breakpoint, a watched event (`matched`:
// null when no event is watched), a VM-exit-equivalent event, CPL 3, or kMaxHops units; *done:
// the instructions retired. Falls back to step() for one instruction when RIP cannot be
// translated (CPL 3 code, a TLB miss, MMIO, the CS limit).
//
// A whole unit with no stop condition to check runs its micro-ops (the fast loop, see
// translator.hpp [SECTION] Micro-ops); a partial unit (the budget's end) or a run that checks
// breakpoints, watched events or records instructions runs each instruction's interpreter
// handler with the step loop's bookkeeping (the generic loop), as does a trailing callout.
// A call that returns inside a unit leaves Cache::resume for the next call, which goes on with
// that unit on the generic loop (translator.hpp [SECTION] Resuming a unit).
//
// The steps of one call (SimMachine::BtStep), in the order run() takes them:
//   take_resume       where the last call left off: a unit to go on with, or one to link from
//   refresh_context   what finding a unit depends on besides RIP (again after a unit that may
//                     have changed the mode, CS, paging or the CPL)
//   resumed_unit      the unit the last call stopped in, if nothing changed since
//   unit_at           the unit for CS:RIP: the previous unit's chained successor, a lookup, or a
//                     new translation (linked from the previous unit); null: run directly
//   step_directly     one instruction on the interpreter's step()
//   run_unit          enter a unit and run it: its micro-ops (run_micro_ops) and/or its
//                     instructions' handlers one by one (run_handlers); a suspended rep string
//                     instruction (on_suspended) or a fault (on_raise) ends the call
//   end_unit          return to the run loop, or go on with the next unit
//   leave, finish     note where the call stopped; add its counts to the machine's and cache's
class SimMachine::BtStep {
 public:
  BtStep(SimMachine& m, bt::MicroRun& r, uint64_t budget, const SimLimits& limits,
         const bool* matched, uint64_t* done_out)
      : m_(m),
        r_(r),
        c_(m.cpu_),
        cache_(*m.bt_),
        st_(cache_.stats()),
        limits_(limits),
        matched_(matched),
        budget_(budget),
        done_out_(done_out),
        checked_(limits.has_breakpoint || matched != nullptr || m.config_.record_instructions) {}

  [[gnu::always_inline]] StepStatus run() {
    take_resume();
    refresh_context();
    for (unsigned hops = 0; hops < kMaxHops && r_.done < budget_; ++hops) {
      const uint64_t rip = c_.s.rip;
      size_t start = 0;  // the first instruction of the unit to run: > 0 when resuming it
      bt::Unit* u = resumed_unit(rip, &start);
      if (!u) u = unit_at(rip);
      if (!u) {
        if (r_.done) break;
        return step_directly();
      }
      if (const std::optional<StepStatus> ended = run_unit(u, start)) return *ended;
    }
    if (prev_) leave(*prev_, prev_->insns);
    return finish(StepStatus::kOk);
  }

 private:
  // One unit's run (run_unit and the steps it calls): where it is, and what the fast path
  // skipped.
  struct UnitRun {
    bt::Unit* u;           // the unit running (after the micro-ops: the last one they ran)
    size_t start;          // its first instruction run in this call
    size_t n;              // run up to, not including, instruction n
    size_t i;              // the instruction running, or the next one
    uint64_t tsc0;         // the TSC before instruction `start` of u
    uint64_t done0;        // r_.done when the unit was entered
    uint64_t exits;        // c.exits when the unit was entered
    uint64_t code_writes;  // c.code_writes when the unit was entered
    bool in_micro = false; // the micro-ops are running (a raise names its instruction by RIP)
    bool stop = false;     // return to the run loop after this unit (exit, SMC, watched event)
  };

  // Where the last call left off ([SECTION] Resuming a unit in translator.hpp): a unit to go
  // on with (checked by resumed_unit, once the context is known), or one whose exit is to be
  // linked.
  [[gnu::always_inline]] void take_resume() {
    from_ = cache_.resume;
    cache_.resume = {};
    const uint64_t paging[4] = {c_.s.cr0, c_.s.cr3, c_.s.cr4, c_.s.efer};
    if (from_.unit && (from_.rip != c_.s.rip || from_.instructions != m_.instructions_ ||
                       !std::equal(paging, paging + 4, from_.paging))) {
      from_.unit = nullptr;  // something ran or changed the machine since
    }
    if (from_.unit && from_.index == from_.unit->insns) {
      prev_ = from_.unit;
      prev_slot_ = from_.slot;
      from_.unit = nullptr;
    }
  }

  // What finding a unit depends on besides RIP (the rest is in r_); computed again after a
  // unit that ran a generic micro-op (which may have changed the mode, CS, paging or the CPL).
  [[gnu::always_inline]] void refresh_context() {
    mode_ = c_.s.mode();
    r_.m64 = mode_ == trace::CpuMode::kLong64;
    r_.paging = c_.s.cr0 & kCr0Pg;
    user_ = c_.cpl() == 3;
    r_.cs_base = c_.s.seg[kCs].base;
    r_.cs_limit = c_.s.seg[kCs].limit;
  }

  // The unit the last call stopped in, to go on with as if it had not stopped: nothing ran
  // since (take_resume checked), so the code it was running is still there; the context and
  // the page are checked again anyway. No lookup, no fetch check: the rest of a unit runs
  // without them in a run that does not stop. Null if there is none (only on the first hop).
  [[gnu::always_inline]] bt::Unit* resumed_unit(uint64_t rip, size_t* start) {
    if (!from_.unit) return nullptr;
    bt::Unit& f = *from_.unit;
    from_.unit = nullptr;
    if (f.valid && f.generation == *f.generation_counter && f.code[from_.index].rip == rip &&
        f.cs_base == r_.cs_base && f.mode == mode_ && !user_ && fits_cs(f, f.rip)) {
      *start = from_.index;
      return &f;
    }
    return nullptr;
  }

  // The unit for the code at `rip`: the previous unit's chained successor, else the cache's
  // unit, else a new translation (linked from the previous unit's exit). Null when the
  // interpreter runs it directly: CPL 3, the CS limit, no TLB entry with execute permission,
  // not guest RAM, or a unit that would cross the CS limit.
  [[gnu::always_inline]] bt::Unit* unit_at(uint64_t rip) {
    uint64_t pa = 0;
    if (!code_pa(rip, &pa)) return nullptr;
    bt::Unit* u = nullptr;
    if (prev_slot_ >= 0) {
      u = chained_unit(*prev_, prev_slot_, rip, pa);
      if (u) ++chained_;
    }
    if (!u && m_.memory_.contains(pa, 1)) u = find_or_translate(rip, pa);
    return u && fits_cs(*u, rip) ? u : nullptr;
  }

  // The physical address of the code at `rip` with the access checks that let translated code
  // run there, or false when the interpreter runs it directly (CPL 3, the CS limit, a TLB miss
  // or no execute permission: the interpreter walks the tables and raises #PF first).
  [[gnu::always_inline]] bool code_pa(uint64_t rip, uint64_t* pa) const {
    if (user_ || (!r_.m64 && rip > r_.cs_limit)) return false;
    return bt::fetch_pa(c_, r_, rip, pa);
  }

  // from's successor in `slot` if it is still the unit for (rip, pa) in this context.
  [[gnu::always_inline]] bt::Unit* chained_unit(const bt::Unit& from, int slot, uint64_t rip,
                                                uint64_t pa) const {
    bt::Unit* next = from.chain[slot];
    if (next && next->valid && next->rip == rip && next->pa == pa &&
        next->cs_base == r_.cs_base && next->mode == mode_ &&
        next->generation == *next->generation_counter) {
      return next;  // a chained unit lies in guest RAM: it was translated from there
    }
    return nullptr;
  }

  // The cache's unit for (rip, pa) in this context, or a new translation; linked from the
  // previous unit's exit unless the cache was flushed.
  [[gnu::always_inline]] bt::Unit* find_or_translate(uint64_t rip, uint64_t pa) {
    const uint64_t flushes = st_.flushes;
    bt::Unit* u = cache_.find(c_, rip, r_.cs_base, pa, mode_);
    if (!u) {
      // translate() may free retired units (translator.hpp [SECTION] Freeing invalidated
      // units), prev among them if find() or note_trap retired it: then forget it (no link
      // from it, nothing to resume).
      if (prev_ && !prev_->valid) forget_prev();
      u = cache_.translate(c_, rip, r_.cs_base, pa, mode_);
      if (st_.flushes != flushes) forget_prev();  // a full cache was flushed: prev is gone too
    }
    if (u && prev_slot_ >= 0 && st_.flushes == flushes) cache_.link(c_, *prev_, prev_slot_, *u);
    return u;
  }

  [[gnu::always_inline]] void forget_prev() {
    prev_ = nullptr;
    prev_slot_ = -1;
  }

  // No unit for CS:RIP and nothing retired in this call yet: one instruction on the
  // interpreter (counted as run directly).
  [[gnu::always_inline]] StepStatus step_directly() {
    ++st_.direct_insns;
    finish(StepStatus::kOk);
    *done_out_ = 1;
    return m_.step();
  }

  // Enters u (at instruction `start`) and runs it; a status to return to the run loop, or none
  // to go on with the next unit.
  [[gnu::always_inline]] std::optional<StepStatus> run_unit(bt::Unit* u, size_t start) {
    Cpu& c = c_;
    UnitRun p{u, start, 0, start, 0, 0, c.exits, c.code_writes};
    if (start == 0) {  // a resumed unit was entered (and counted) by an earlier call
      ++u->executions;
      ++units_;
    }
    // A partial unit only at the budget's end (the run loop's clock check or instruction
    // limit).
    p.n = static_cast<size_t>(std::min<uint64_t>(u->insns, start + (budget_ - r_.done)));
    c.s.rflags &= ~kRF;  // as step_cached(): cleared when an instruction completes
    p.tsc0 = c.s.tsc;
    p.done0 = r_.done;
    try {
      if (!checked_ && p.n == u->insns && start == 0) run_micro_ops(p);
      run_handlers(p);
    } catch (const RepSuspended&) {
      return on_suspended(p);
    } catch (...) {
      return on_raise(p);
    }
    return end_unit(p);
  }

  // The fast path: the unit's micro-ops, threaded (each runs the next); no per-instruction
  // RIP, fault RIP, instruction bytes or TSC. A chainable unit's last micro-op goes on to its
  // chained successor (chain_op in microops.cpp), at most kMaxChainInsns instructions at a
  // time; r_.unit is the unit that ran last. The chain returns early only after a generic path
  // that exited or wrote a page holding code: then the rest of that unit runs on the handlers.
  [[gnu::always_inline]] void run_micro_ops(UnitRun& p) {
    Cpu& c = c_;
    const bt::MicroOp* ops = p.u->micro.data();
    r_.unit = p.u;
    r_.limit = std::min(budget_, r_.done + kMaxChainInsns);
    p.in_micro = true;
    ops[0].fn(c, ops, r_, 0);
    p.in_micro = false;
    p.u = r_.unit;
    p.tsc0 += r_.done - p.done0;  // the whole units before u (chain_op advanced the TSC)
    p.n = p.u->insns;
    p.i = p.u->fast;
    if (c.exits != p.exits || c.code_writes != p.code_writes) [[unlikely]] {
      p.i = index_of(*p.u, c.fault_rip);
      if (c.code_writes != p.code_writes) cache_.note_trap(c, *p.u, p.i);
      ++p.i;
      p.stop = true;
    }
    c.s.tsc = p.tsc0 + p.i;
    if (!p.stop && p.u->fast_next_rip) c.s.rip = p.u->fast_next_rip;  // i == u->fast here
  }

  // The generic loop: instructions p.i .. p.n - 1 of the unit on their interpreter handlers,
  // with the step loop's bookkeeping (RIP, fault RIP, instruction bytes, TSC, callouts,
  // recording, breakpoints, watched events).
  [[gnu::always_inline]] void run_handlers(UnitRun& p) {
    Cpu& c = c_;
    bt::Unit* u = p.u;
    for (; p.i < p.n && !p.stop; ++p.i) {
      bt::TransInsn& t = u->code[p.i];
      if (checked_) [[unlikely]] {
        // Not on the call's first instruction: the run loop stopped there already.
        if (limits_.has_breakpoint && r_.done + p.i > p.start && t.rip == limits_.breakpoint) {
          break;
        }
      }
      c.fault_rip = t.rip;
      c.insn_bytes = t.code + 1;
      c.insn_len = t.insn.length;
      c.s.rip = t.next_rip;
      if (t.kind >= trace::BtKind::kCallout) [[unlikely]] {
        ++st_.callouts;
        if (c.sink()) cache_.report_callout(c, *u, t);
      }
      t.handler(c, t.insn);
      ++c.s.tsc;
      if (checked_ && m_.config_.record_instructions && c.sink()) [[unlikely]] {
        m_.record_instruction(t.code, c.cpl(), c.s.mode());
      }
      if (c.exits != p.exits || c.code_writes != p.code_writes ||
          (checked_ && matched_ != nullptr && *matched_)) [[unlikely]] {
        // An exit (MMIO) ends the step as in burst(); a write to a page holding translated
        // code is what VMware's write-protection trace traps: counted for adaptation (also
        // when a watched event stops the run here, so that stopping changes nothing), and
        // the next lookup sees the page's new generation.
        if (c.code_writes != p.code_writes) cache_.note_trap(c, *u, p.i);
        ++p.i;
        p.stop = true;
        break;
      }
    }
  }

  // In a catch: in the micro-ops, the instruction that raised is the one c.fault_rip names,
  // in r_.unit; the bookkeeping the fast path skipped.
  [[gnu::always_inline]] void find_raiser(UnitRun& p) {
    if (p.in_micro) {
      p.u = r_.unit;
      p.tsc0 += r_.done - p.done0;
      p.i = index_of(*p.u, c_.fault_rip);
    }
  }

  // Instruction p.i, a rep string instruction, was suspended (sim/cpu.hpp): the ones before it
  // retired; the next call resumes the unit at it (not a trap: nothing to adapt).
  [[gnu::always_inline]] StepStatus on_suspended(UnitRun& p) {
    find_raiser(p);
    c_.s.rip = c_.fault_rip;
    retire(p);
    leave(*p.u, p.i);
    return finish(StepStatus::kSuspended);
  }

  // Instruction p.i raised (called inside the catch): the fast path's bookkeeping, for
  // recover(), which delivers the fault or ends the run.
  [[gnu::always_inline]] StepStatus on_raise(UnitRun& p) {
    find_raiser(p);
    const bt::TransInsn& t = p.u->code[p.i];
    c_.fault_rip = t.rip;
    c_.insn_bytes = t.code + 1;
    c_.insn_len = t.insn.length;
    retire(p);
    cache_.note_trap(c_, *p.u, p.i);
    finish(StepStatus::kOk);
    return m_.recover(std::current_exception(), nullptr, 0);
  }

  // Instructions p.start .. p.i - 1 of p.u retired: the TSC and the counts.
  [[gnu::always_inline]] void retire(const UnitRun& p) {
    c_.s.tsc = p.tsc0 + (p.i - p.start);
    r_.done += p.i - p.start;
    p.u->instructions += p.i - p.start;
  }

  // After a unit ran without raising: return to the run loop (halt, guest exit, a stop, a
  // partial unit, the budget spent), or go on with the next unit, chained from this one's exit.
  [[gnu::always_inline]] std::optional<StepStatus> end_unit(UnitRun& p) {
    Cpu& c = c_;
    bt::Unit* u = p.u;
    r_.done += p.i - p.start;
    u->instructions += p.i - p.start;
    if (c.halted || c.exit_requested || p.stop || p.i < u->insns || r_.done >= budget_) {
      leave(*u, p.i);
      return finish(c.halted          ? StepStatus::kHalted
                    : c.exit_requested ? StepStatus::kGuestExit
                                       : StepStatus::kOk);
    }
    if (u->refresh_context) refresh_context();
    prev_ = u;
    prev_slot_ = exit_slot(*u);
    return std::nullopt;
  }

  // The exit of u that RIP took (1: taken, 0: fall-through), or -1.
  [[gnu::always_inline]] int exit_slot(const bt::Unit& u) const {
    if (u.has_exit[1] && c_.s.rip == u.next_rip[1]) return 1;
    if (u.has_exit[0] && c_.s.rip == u.next_rip[0]) return 0;
    return -1;
  }

  [[gnu::always_inline]] bool fits_cs(const bt::Unit& u, uint64_t rip) const {
    return r_.m64 || rip + u.guest_bytes - 1 <= r_.cs_limit;
  }

  // Notes where this call leaves off: inside u before instruction i, or after its end (once
  // r_.done counts u's instructions).
  [[gnu::always_inline]] void leave(bt::Unit& u, size_t i) {
    cache_.resume = {&u, static_cast<uint8_t>(i),
                     static_cast<int8_t>(i == u.insns ? exit_slot(u) : -1), c_.s.rip,
                     m_.instructions_ + r_.done, {c_.s.cr0, c_.s.cr3, c_.s.cr4, c_.s.efer}};
  }

  // Adds the call's counts to the machine's and the cache's counters.
  [[gnu::always_inline]] StepStatus finish(StepStatus status) {
    m_.instructions_ += r_.done;
    st_.cache_insns += r_.done;
    st_.chained += chained_ + r_.linked;
    st_.unit_executions += units_ + r_.linked;
    *done_out_ = r_.done;
    return status;
  }

  SimMachine& m_;
  // The micro-ops' view of this call (bt::MicroRun), a variable of step_bt apart from this
  // object: the micro-ops receive its address, while this object's address never leaves
  // step_bt (every step is inlined into it), so that the compiler keeps the members below in
  // registers as it would local variables (bt_speed's kernelops ran 4% slower when the
  // MicroRun was a member and the cold steps were calls).
  bt::MicroRun& r_;
  Cpu& c_;
  bt::Cache& cache_;
  bt::BtStats& st_;
  const SimLimits& limits_;
  const bool* matched_;
  const uint64_t budget_;
  uint64_t* done_out_;
  const bool checked_;  // a breakpoint, a watched event or recording: every unit on the handlers
  bt::Cache::Resume from_;
  bt::Unit* prev_ = nullptr;  // the unit run last in this call (or before it), to link from
  int prev_slot_ = -1;        // its exit RIP took, or -1
  // units_: the units entered here, chained_: those of them reached through a chain; r_.done
  // and r_.linked (step_bt's MicroRun): the instructions retired and the units chain_op
  // entered. Added to the machine's and the cache's counters on return (finish).
  uint64_t units_ = 0, chained_ = 0;
  trace::CpuMode mode_{};
  bool user_ = false;  // CPL 3
};

StepStatus SimMachine::step_bt(uint64_t budget, const SimLimits& limits, const bool* matched,
                               uint64_t* done_out) {
  bt::MicroRun r;
  return BtStep(*this, r, budget, limits, matched, done_out).run();
}

}  // namespace trapscope::sim
