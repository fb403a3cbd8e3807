// sim/bt/execute.cpp — the translation cache's executor: SimMachine::step_bt runs guest kernel
// code from translated units (sim/bt/translator.hpp) and hands CPL 3 code to the interpreter's
// fast path (SimMachine::step).
#include <algorithm>
#include <cstring>

#include "sim/bt/translator.hpp"
#include "sim/machine.hpp"

namespace trapscope::sim {

// Runs translated units from CS:RIP, following chains, until `budget` instructions have
// retired, a callout, an exception, a breakpoint, a watched event (`matched`: null when no
// event is watched), a VM-exit-equivalent event, CPL 3, or 64 units; *done: the instructions
// retired. Falls back to step() for one instruction when RIP cannot be translated (CPL 3 code,
// a TLB miss, MMIO, the CS limit).
StepStatus SimMachine::step_bt(uint64_t budget, const SimLimits& limits, const bool* matched,
                               uint64_t* done_out) {
  Cpu& c = cpu_;
  bt::Cache& cache = *bt_;
  bt::BtStats& st = cache.stats();
  bt::Unit* prev = nullptr;
  int prev_slot = -1;
  uint64_t& done = *done_out;
  done = 0;
  for (unsigned hops = 0; hops < 64 && done < budget; ++hops) {
    const CpuState& s = c.s;
    const trace::CpuMode mode = s.mode();
    const bool m64 = mode == trace::CpuMode::kLong64;
    const Segment& cs = s.seg[kCs];
    bool direct = c.cpl() == 3 || (!m64 && s.rip > cs.limit);
    uint64_t pa = 0;
    if (!direct) {
      const uint64_t la = m64 ? s.rip : ((cs.base + s.rip) & 0xFFFFFFFFull);
      pa = la;
      if (s.cr0 & kCr0Pg) {
        const uint64_t vpn = la >> 12;
        const Tlb::Entry& t = c.tlb.slot(vpn);
        if (t.vpn != vpn || !(t.allow & Tlb::need_bit(Access::kExecute, false))) {
          direct = true;  // the interpreter walks the tables (and raises #PF) first
        }
        pa = (t.pfn << 12) | (la & 0xFFF);
      }
      direct = direct || !memory_.contains(pa, 1);
    }
    bt::Unit* u = nullptr;
    if (!direct) {
      if (prev_slot >= 0) {
        bt::Unit* next = prev->chain[prev_slot];
        if (next && next->valid && next->rip == s.rip && next->pa == pa &&
            next->cs_base == cs.base && next->mode == mode &&
            next->generation == c.code_generation(pa)) {
          u = next;
          ++st.chained;
        }
      }
      if (!u) {
        const uint64_t flushes = st.flushes;
        u = cache.find(c, s.rip, cs.base, pa, mode);
        if (!u) u = cache.translate(c, s.rip, cs.base, pa, mode);
        if (u && prev_slot >= 0 && st.flushes == flushes) cache.link(c, *prev, prev_slot, *u);
      }
      direct = !u || (!m64 && s.rip + u->guest_bytes - 1 > cs.limit);
    }
    if (direct) {
      if (done) break;
      ++st.direct_insns;
      *done_out = 1;
      return step();
    }

    const uint64_t exits = c.exits;
    const uint64_t code_writes = c.code_writes;
    ++u->executions;
    ++st.unit_executions;
    // A partial unit only at the budget's end (the run loop's clock check or instruction limit).
    const size_t n = static_cast<size_t>(std::min<uint64_t>(u->code.size(), budget - done));
    const bool checked = limits.has_breakpoint || matched != nullptr ||
                         config_.record_instructions;
    c.s.rflags &= ~kRF;  // as step_cached(): cleared when an instruction completes
    size_t i = 0;
    bool stop = false;  // return to the run loop after this unit (exit, SMC, watched event)
    try {
      for (; i < n; ++i) {
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
      done += i;
      instructions_ += i;
      u->instructions += i;
      st.cache_insns += i;
      cache.note_trap(c, *u, i);
      return recover(std::current_exception(), nullptr, 0);
    }
    done += i;
    instructions_ += i;
    u->instructions += i;
    st.cache_insns += i;
    if (c.halted) return StepStatus::kHalted;
    if (c.exit_requested) return StepStatus::kGuestExit;
    if (stop || i < u->code.size() || done >= budget) return StepStatus::kOk;
    prev = u;
    prev_slot = -1;
    if (u->has_exit[1] && c.s.rip == u->next_rip[1]) {
      prev_slot = 1;
    } else if (u->has_exit[0] && c.s.rip == u->next_rip[0]) {
      prev_slot = 0;
    }
  }
  return StepStatus::kOk;
}

}  // namespace trapscope::sim
