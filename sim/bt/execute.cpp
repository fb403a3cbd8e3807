// sim/bt/execute.cpp — the translation cache's executor: SimMachine::step_bt runs guest kernel
// code from translated units (sim/bt/translator.hpp) and hands CPL 3 code to the interpreter's
// fast path (SimMachine::step).
#include <algorithm>
#include <cstring>

#include "sim/bt/translator.hpp"
#include "sim/machine.hpp"

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

// Runs translated units from CS:RIP, following chains, until `budget` instructions have
// retired, a callout, an exception, a breakpoint, a watched event (`matched`: null when no
// event is watched), a VM-exit-equivalent event, CPL 3, or kMaxHops units; *done: the instructions
// retired. Falls back to step() for one instruction when RIP cannot be translated (CPL 3 code,
// a TLB miss, MMIO, the CS limit).
//
// A whole unit with no stop condition to check runs its micro-ops (the fast loop, see
// translator.hpp [SECTION] Micro-ops); a partial unit (the budget's end) or a run that checks
// breakpoints, watched events or records instructions runs each instruction's interpreter
// handler with the step loop's bookkeeping (the generic loop), as does a trailing callout.
// A call that returns inside a unit leaves Cache::resume for the next call, which goes on with
// that unit on the generic loop (translator.hpp [SECTION] Resuming a unit).
StepStatus SimMachine::step_bt(uint64_t budget, const SimLimits& limits, const bool* matched,
                               uint64_t* done_out) {
  Cpu& c = cpu_;
  bt::Cache& cache = *bt_;
  bt::BtStats& st = cache.stats();
  const bool checked = limits.has_breakpoint || matched != nullptr ||
                       config_.record_instructions;
  bt::Unit* prev = nullptr;
  int prev_slot = -1;
  // Where the last call left off ([SECTION] Resuming a unit in translator.hpp): a unit to go
  // on with (checked below, once the context is known), or one whose exit is to be linked.
  bt::Cache::Resume from = cache.resume;
  cache.resume = {};
  const uint64_t paging[4] = {c.s.cr0, c.s.cr3, c.s.cr4, c.s.efer};
  if (from.unit && (from.rip != c.s.rip || from.instructions != instructions_ ||
                    !std::equal(paging, paging + 4, from.paging))) {
    from.unit = nullptr;  // something ran or changed the machine since
  }
  if (from.unit && from.index == from.unit->insns) {
    prev = from.unit;
    prev_slot = from.slot;
    from.unit = nullptr;
  }
  // The micro-ops' view of this call (bt::MicroRun). r.done: the instructions retired;
  // units: the units entered here, chained: those of them reached through a chain; r.linked:
  // the units chain_op entered. Added to the machine's and the cache's counters on return.
  bt::MicroRun r;
  uint64_t units = 0, chained = 0;
  const auto finish = [&](StepStatus status) {
    instructions_ += r.done;
    st.cache_insns += r.done;
    st.chained += chained + r.linked;
    st.unit_executions += units + r.linked;
    *done_out = r.done;
    return status;
  };
  // What finding a unit depends on besides RIP (the rest is in r); computed again after a unit
  // that ran a generic micro-op (which may have changed the mode, CS, paging or the CPL).
  trace::CpuMode mode{};
  bool user = false;
  const auto refresh = [&] {
    mode = c.s.mode();
    r.m64 = mode == trace::CpuMode::kLong64;
    r.paging = c.s.cr0 & kCr0Pg;
    user = c.cpl() == 3;
    r.cs_base = c.s.seg[kCs].base;
    r.cs_limit = c.s.seg[kCs].limit;
  };
  refresh();
  // The physical address of the code at `rip` with the access checks that let translated code
  // run there, or false when the interpreter runs it directly (CPL 3, the CS limit, a TLB miss
  // or no execute permission: the interpreter walks the tables and raises #PF first).
  const auto code_pa = [&](uint64_t rip, uint64_t* pa) {
    if (user || (!r.m64 && rip > r.cs_limit)) return false;
    return bt::fetch_pa(c, r, rip, pa);
  };
  // from's successor in `slot` if it is still the unit for (rip, pa) in this context.
  const auto chained_unit = [&](const bt::Unit& from, int slot, uint64_t rip,
                                uint64_t pa) -> bt::Unit* {
    bt::Unit* next = from.chain[slot];
    if (next && next->valid && next->rip == rip && next->pa == pa &&
        next->cs_base == r.cs_base && next->mode == mode &&
        next->generation == *next->generation_counter) {
      return next;  // a chained unit lies in guest RAM: it was translated from there
    }
    return nullptr;
  };
  // The exit of u that RIP took (1: taken, 0: fall-through), or -1.
  const auto exit_slot = [&](const bt::Unit& u) {
    if (u.has_exit[1] && c.s.rip == u.next_rip[1]) return 1;
    if (u.has_exit[0] && c.s.rip == u.next_rip[0]) return 0;
    return -1;
  };
  const auto fits_cs = [&](const bt::Unit& u, uint64_t rip) {
    return r.m64 || rip + u.guest_bytes - 1 <= r.cs_limit;
  };
  // Notes where this call leaves off: inside u before instruction i, or after its end (once
  // r.done counts u's instructions).
  const auto leave = [&](bt::Unit& u, size_t i) {
    cache.resume = {&u, static_cast<uint8_t>(i),
                    static_cast<int8_t>(i == u.insns ? exit_slot(u) : -1), c.s.rip,
                    instructions_ + r.done, {c.s.cr0, c.s.cr3, c.s.cr4, c.s.efer}};
  };
  for (unsigned hops = 0; hops < kMaxHops && r.done < budget; ++hops) {
    const uint64_t rip = c.s.rip;
    uint64_t pa = 0;
    bt::Unit* u = nullptr;
    size_t start = 0;  // the first instruction of u to run: > 0 when resuming u
    if (from.unit) {
      // Go on with the unit the last call stopped in, as if it had not stopped: nothing ran
      // since (checked above), so the code it was running is still there; the context and the
      // page are checked again anyway. No lookup, no fetch check: the rest of a unit runs
      // without them in a run that does not stop.
      bt::Unit& f = *from.unit;
      if (f.valid && f.generation == *f.generation_counter && f.code[from.index].rip == rip &&
          f.cs_base == r.cs_base && f.mode == mode && !user && fits_cs(f, f.rip)) {
        u = &f;
        start = from.index;
      }
      from.unit = nullptr;
    }
    bool direct = !u && !code_pa(rip, &pa);
    if (!direct && !u) {
      if (prev_slot >= 0) {
        u = chained_unit(*prev, prev_slot, rip, pa);
        if (u) ++chained;
      }
      if (!u && memory_.contains(pa, 1)) {
        const uint64_t flushes = st.flushes;
        u = cache.find(c, rip, r.cs_base, pa, mode);
        if (!u) {
          // translate() may free retired units (translator.hpp [SECTION] Freeing invalidated
          // units), prev among them if find() or note_trap retired it: then forget it (no
          // link from it, nothing to resume).
          if (prev && !prev->valid) {
            prev = nullptr;
            prev_slot = -1;
          }
          u = cache.translate(c, rip, r.cs_base, pa, mode);
          if (st.flushes != flushes) {  // a full cache was flushed: prev is gone too
            prev = nullptr;
            prev_slot = -1;
          }
        }
        if (u && prev_slot >= 0 && st.flushes == flushes) cache.link(c, *prev, prev_slot, *u);
      }
      direct = !u || !fits_cs(*u, rip);
    }
    if (direct) {
      if (r.done) break;
      ++st.direct_insns;
      finish(StepStatus::kOk);
      *done_out = 1;
      return step();
    }

    const uint64_t exits = c.exits;
    const uint64_t code_writes = c.code_writes;
    if (start == 0) {  // a resumed unit was entered (and counted) by an earlier call
      ++u->executions;
      ++units;
    }
    // A partial unit only at the budget's end (the run loop's clock check or instruction limit).
    size_t n = static_cast<size_t>(std::min<uint64_t>(u->insns, start + (budget - r.done)));
    c.s.rflags &= ~kRF;  // as step_cached(): cleared when an instruction completes
    uint64_t tsc0 = c.s.tsc;
    const uint64_t done0 = r.done;
    size_t i = start;
    bool in_micro = false;
    bool stop = false;  // return to the run loop after this unit (exit, SMC, watched event)
    // In a catch: in the micro-ops, the instruction that raised is the one c.fault_rip names,
    // in r.unit; the bookkeeping the fast path skipped.
    const auto find_raiser = [&] {
      if (in_micro) {
        u = r.unit;
        tsc0 += r.done - done0;
        i = index_of(*u, c.fault_rip);
      }
    };
    try {
      if (!checked && n == u->insns && start == 0) {
        // The fast path: the unit's micro-ops, threaded (each runs the next); no
        // per-instruction RIP, fault RIP, instruction bytes or TSC. A chainable unit's last
        // micro-op goes on to its chained successor (chain_op in microops.cpp), at most
        // kMaxChainInsns instructions at a time; r.unit is the unit that ran last. The chain
        // returns early only after a generic path that exited or wrote a page holding code.
        const bt::MicroOp* ops = u->micro.data();
        r.unit = u;
        r.limit = std::min(budget, r.done + kMaxChainInsns);
        in_micro = true;
        ops[0].fn(c, ops, r, 0);
        in_micro = false;
        u = r.unit;
        tsc0 += r.done - done0;  // the whole units before u (chain_op advanced the TSC)
        n = u->insns;
        i = u->fast;
        if (c.exits != exits || c.code_writes != code_writes) [[unlikely]] {
          i = index_of(*u, c.fault_rip);
          if (c.code_writes != code_writes) cache.note_trap(c, *u, i);
          ++i;
          stop = true;
        }
        c.s.tsc = tsc0 + i;
        if (!stop && u->fast_next_rip) c.s.rip = u->fast_next_rip;  // i == u->fast here
      }
      for (; i < n && !stop; ++i) {  // the generic loop
        bt::TransInsn& t = u->code[i];
        if (checked) [[unlikely]] {
          // Not on the call's first instruction: the run loop stopped there already.
          if (limits.has_breakpoint && r.done + i > start && t.rip == limits.breakpoint) break;
        }
        c.fault_rip = t.rip;
        c.insn_bytes = t.code + 1;
        c.insn_len = t.insn.length;
        c.s.rip = t.next_rip;
        if (t.kind >= trace::BtKind::kCallout) [[unlikely]] {
          ++st.callouts;
          if (c.sink()) cache.report_callout(c, *u, t);
        }
        t.handler(c, t.insn);
        ++c.s.tsc;
        if (checked && config_.record_instructions && c.sink()) [[unlikely]] {
          record_instruction(t.code, c.cpl(), c.s.mode());
        }
        if (c.exits != exits || c.code_writes != code_writes ||
            (checked && matched != nullptr && *matched)) [[unlikely]] {
          // An exit (MMIO) ends the step as in burst(); a write to a page holding translated
          // code is what VMware's write-protection trace traps: counted for adaptation (also
          // when a watched event stops the run here, so that stopping changes nothing), and
          // the next lookup sees the page's new generation.
          if (c.code_writes != code_writes) cache.note_trap(c, *u, i);
          ++i;
          stop = true;
          break;
        }
      }
    } catch (const RepSuspended&) {
      // Instruction i, a rep string instruction, was suspended (sim/cpu.hpp): the ones before
      // it retired; the next call resumes the unit at it (not a trap: nothing to adapt).
      find_raiser();
      c.s.rip = c.fault_rip;
      c.s.tsc = tsc0 + (i - start);
      r.done += i - start;
      u->instructions += i - start;
      leave(*u, i);
      return finish(StepStatus::kSuspended);
    } catch (...) {
      find_raiser();  // instruction i raised; the fast path's bookkeeping, for recover()
      const bt::TransInsn& t = u->code[i];
      c.fault_rip = t.rip;
      c.insn_bytes = t.code + 1;
      c.insn_len = t.insn.length;
      c.s.tsc = tsc0 + (i - start);
      r.done += i - start;
      u->instructions += i - start;
      cache.note_trap(c, *u, i);
      finish(StepStatus::kOk);
      return recover(std::current_exception(), nullptr, 0);
    }
    r.done += i - start;
    u->instructions += i - start;
    if (c.halted || c.exit_requested || stop || i < u->insns || r.done >= budget) {
      leave(*u, i);
      return finish(c.halted          ? StepStatus::kHalted
                    : c.exit_requested ? StepStatus::kGuestExit
                                       : StepStatus::kOk);
    }
    if (u->refresh_context) refresh();
    prev = u;
    prev_slot = exit_slot(*u);
  }
  if (prev) leave(*prev, prev->insns);
  return finish(StepStatus::kOk);
}

}  // namespace trapscope::sim
