// sim/bt/execute.cpp — the translation cache's executor: SimMachine::step_bt runs guest kernel
// code from translated units (sim/bt/translator.hpp) and hands CPL 3 code to the interpreter's
// fast path (SimMachine::step).
#include <algorithm>
#include <cstring>

#include "sim/bt/translator.hpp"
#include "sim/machine.hpp"

namespace trapscope::sim {
namespace {

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
// event is watched), a VM-exit-equivalent event, CPL 3, or 64 units; *done: the instructions
// retired. Falls back to step() for one instruction when RIP cannot be translated (CPL 3 code,
// a TLB miss, MMIO, the CS limit).
//
// A whole unit with no stop condition to check runs its micro-ops (the fast loop, see
// translator.hpp [SECTION] Micro-ops); a partial unit (the budget's end) or a run that checks
// breakpoints, watched events or records instructions runs each instruction's interpreter
// handler with the step loop's bookkeeping (the generic loop), as does a trailing callout.
StepStatus SimMachine::step_bt(uint64_t budget, const SimLimits& limits, const bool* matched,
                               uint64_t* done_out) {
  Cpu& c = cpu_;
  bt::Cache& cache = *bt_;
  bt::BtStats& st = cache.stats();
  const bool checked = limits.has_breakpoint || matched != nullptr ||
                       config_.record_instructions;
  bt::Unit* prev = nullptr;
  int prev_slot = -1;
  // Counted here and added to the machine's and the cache's counters on return.
  uint64_t done = 0, chained = 0, units = 0;
  const auto finish = [&](StepStatus status) {
    instructions_ += done;
    st.cache_insns += done;
    st.chained += chained;
    st.unit_executions += units;
    *done_out = done;
    return status;
  };
  // What finding a unit depends on besides RIP; computed again after a unit that ran a generic
  // micro-op (which may have changed the mode, CS, paging or the CPL).
  struct {
    trace::CpuMode mode;
    bool m64, paging, user;
    uint64_t cs_base, cs_limit;
  } x;
  const auto refresh = [&] {
    x.mode = c.s.mode();
    x.m64 = x.mode == trace::CpuMode::kLong64;
    x.paging = c.s.cr0 & kCr0Pg;
    x.user = c.cpl() == 3;
    x.cs_base = c.s.seg[kCs].base;
    x.cs_limit = c.s.seg[kCs].limit;
  };
  refresh();
  for (unsigned hops = 0; hops < 64 && done < budget; ++hops) {
    const uint64_t rip = c.s.rip;
    bool direct = x.user || (!x.m64 && rip > x.cs_limit);
    uint64_t pa = 0;
    if (!direct) {
      const uint64_t la = x.m64 ? rip : ((x.cs_base + rip) & 0xFFFFFFFFull);
      pa = la;
      if (x.paging) {
        const uint64_t vpn = la >> 12;
        const Tlb::Entry& t = c.tlb.slot(vpn);
        if (t.vpn != vpn || !(t.allow & Tlb::need_bit(Access::kExecute, false))) {
          direct = true;  // the interpreter walks the tables (and raises #PF) first
        }
        pa = (t.pfn << 12) | (la & 0xFFF);
      }
    }
    bt::Unit* u = nullptr;
    if (!direct) {
      if (prev_slot >= 0) {
        bt::Unit* next = prev->chain[prev_slot];
        if (next && next->valid && next->rip == rip && next->pa == pa &&
            next->cs_base == x.cs_base && next->mode == x.mode &&
            next->generation == *next->generation_counter) {
          u = next;  // a chained unit lies in guest RAM: it was translated from there
          ++chained;
        }
      }
      if (!u && memory_.contains(pa, 1)) {
        const uint64_t flushes = st.flushes;
        u = cache.find(c, rip, x.cs_base, pa, x.mode);
        if (!u) u = cache.translate(c, rip, x.cs_base, pa, x.mode);
        if (u && prev_slot >= 0 && st.flushes == flushes) cache.link(c, *prev, prev_slot, *u);
      }
      direct = !u || (!x.m64 && rip + u->guest_bytes - 1 > x.cs_limit);
    }
    if (direct) {
      if (done) break;
      ++st.direct_insns;
      finish(StepStatus::kOk);
      *done_out = 1;
      return step();
    }

    const uint64_t exits = c.exits;
    const uint64_t code_writes = c.code_writes;
    ++u->executions;
    ++units;
    const size_t size = u->code.size();
    // A partial unit only at the budget's end (the run loop's clock check or instruction limit).
    const size_t n = static_cast<size_t>(std::min<uint64_t>(size, budget - done));
    c.s.rflags &= ~kRF;  // as step_cached(): cleared when an instruction completes
    const uint64_t tsc0 = c.s.tsc;
    size_t i = 0;
    bool in_micro = false;
    bool stop = false;  // return to the run loop after this unit (exit, SMC, watched event)
    try {
      if (!checked && n == size) {
        // The fast path: the unit's micro-ops, threaded (each runs the next); no
        // per-instruction RIP, fault RIP, instruction bytes or TSC. The chain returns early
        // only after a generic path that exited or wrote a page holding code.
        const bt::MicroOp* ops = u->micro.data();
        in_micro = true;
        ops[0].fn(c, ops);
        in_micro = false;
        i = u->fast;
        if (c.exits != exits || c.code_writes != code_writes) [[unlikely]] {
          i = index_of(*u, c.fault_rip);
          if (c.code_writes != code_writes) cache.note_trap(c, *u, i);
          ++i;
          stop = true;
        }
        c.s.tsc = tsc0 + i;
        if (!stop && i > 0 && !ops[i - 1].sets_rip) c.s.rip = ops[i - 1].next;
      }
      for (; i < n && !stop; ++i) {  // the generic loop
        bt::TransInsn& t = u->code[i];
        if (checked) [[unlikely]] {
          if (limits.has_breakpoint && done + i > 0 && t.rip == limits.breakpoint) break;
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
        if (checked) [[unlikely]] {
          if (config_.record_instructions && c.sink()) {
            record_instruction(t.code, c.cpl(), c.s.mode());
          }
          if (matched != nullptr && *matched) {
            ++i;
            stop = true;
            break;
          }
        }
        if (c.exits != exits || c.code_writes != code_writes) [[unlikely]] {
          // An exit (MMIO) ends the step as in burst(); a write to a page holding translated
          // code is what VMware's write-protection trace traps: counted for adaptation, and the
          // next lookup sees the page's new generation.
          if (c.code_writes != code_writes) cache.note_trap(c, *u, i);
          ++i;
          stop = true;
          break;
        }
      }
    } catch (...) {
      // Instruction i raised (in the micro-ops: the one c.fault_rip names); the bookkeeping
      // the fast path skipped, for recover().
      if (in_micro) i = index_of(*u, c.fault_rip);
      const bt::TransInsn& t = u->code[i];
      c.fault_rip = t.rip;
      c.insn_bytes = t.code + 1;
      c.insn_len = t.insn.length;
      c.s.tsc = tsc0 + i;
      done += i;
      u->instructions += i;
      cache.note_trap(c, *u, i);
      finish(StepStatus::kOk);
      return recover(std::current_exception(), nullptr, 0);
    }
    done += i;
    u->instructions += i;
    if (c.halted) return finish(StepStatus::kHalted);
    if (c.exit_requested) return finish(StepStatus::kGuestExit);
    if (stop || i < size || done >= budget) return finish(StepStatus::kOk);
    if (u->refresh_context) refresh();
    prev = u;
    prev_slot = -1;
    if (u->has_exit[1] && c.s.rip == u->next_rip[1]) {
      prev_slot = 1;
    } else if (u->has_exit[0] && c.s.rip == u->next_rip[0]) {
      prev_slot = 0;
    }
  }
  return finish(StepStatus::kOk);
}

}  // namespace trapscope::sim
