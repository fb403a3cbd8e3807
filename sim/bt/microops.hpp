// sim/bt/microops.hpp — the executable form of a translation unit (sim/bt/translator.hpp): one
// MicroOp per guest instruction, chosen at translation time for the instruction's operation,
// operand form, operand size, address mode and whether its arithmetic flags are live. The
// executor (sim/bt/execute.cpp) runs a unit's micro-ops one after the other with no
// per-instruction bookkeeping; see translator.hpp [SECTION] Micro-ops for the design.
#pragma once

#include <cstdint>

#include "sim/cpu.hpp"
#include "sim/arch.hpp"
#include "trace/event.hpp"

namespace trapscope::sim::bt {

struct TransInsn;
struct Unit;
struct MicroOp;

// The executor's state while micro-ops run (SimMachine::step_bt in execute.cpp), passed to
// every micro-op. The last micro-op of a chainable unit (chain_op, see end_micro_op) goes
// straight on to the unit's chained successor when it may, and records that here: when the
// micro-ops return (or raise), `unit` is the unit that ran last and `done` counts the guest
// instructions of the whole units before it.
struct MicroRun {
  Unit* unit = nullptr;   // the unit whose micro-ops run now
  uint64_t done = 0;      // guest instructions retired in this step_bt call before `unit`
  // chain_op runs a successor only if done stays within this once it has run: step_bt's
  // budget, or less so that a run of micro-ops returns to step_bt after so many instructions
  // (which bounds the native stack where the micro-ops' tail calls are real calls).
  uint64_t limit = 0;
  uint64_t linked = 0;    // units chain_op entered in this step_bt call
  // The fetch context (CS base and limit, 64-bit mode, CR0.PG), as step_bt computed it: a
  // chainable unit does not change it.
  uint64_t cs_base = 0, cs_limit = 0;
  bool m64 = false, paging = false;
};

// The guest-physical address of translated code at `rip` in the fetch context `r`: the linear
// address (CS base + RIP outside 64-bit mode, SDM Vol. 3A 3.4), then the TLB when paging is on,
// for a supervisor instruction fetch (translated code never runs at CPL 3). False on a TLB miss
// or without execute permission: the interpreter then walks the tables and raises #PF first.
// The CS limit and the CPL are the caller's checks (step_bt's lookup, chain_op).
inline bool fetch_pa(const Cpu& c, const MicroRun& r, uint64_t rip, uint64_t* pa) {
  uint64_t a = r.m64 ? rip : ((r.cs_base + rip) & 0xFFFFFFFFull);
  if (r.paging) {
    const uint64_t vpn = a >> 12;
    const Tlb::Entry& e = c.tlb.slot(vpn);
    if (e.vpn != vpn || !(e.allow & Tlb::need_bit(Access::kExecute, false))) return false;
    a = (e.pfn << 12) | (a & 0xFFF);
  }
  *pa = a;
  return true;
}

// Runs one instruction, then the next micro-op of the unit (threaded dispatch: a tail call);
// the unit's micro-ops end with end_micro_op(), which returns to the executor or goes on to
// a chained successor. The chain also returns early after an instruction whose generic path
// exited or wrote a page holding code (c.fault_rip then names it) and unwinds when an
// instruction raises (c.fault_rip names it).
// `acc`: the accumulator, the value of the guest register the previous micro-op of the unit
// left there (MicroOp::acc_out of that op; 0 before a unit's first), read by the micro-op
// variants that take that operand from it (microops.cpp, the accumulator).
using MicroFn = void (*)(Cpu&, const MicroOp*, MicroRun&, uint64_t acc);

struct MicroOp {
  MicroFn fn = nullptr;
  const TransInsn* t = nullptr;  // its instruction (the generic path runs t->handler)
  Unit* unit = nullptr;          // end_micro_op of a chainable unit: that unit
  uint64_t imm = 0;     // the immediate (already truncated to the operand size)
  uint64_t disp = 0;    // memory operand: displacement
  uint64_t amask = 0;   // memory operand: the address-size mask
  uint64_t target = 0;  // direct branch: the RIP when taken
  uint64_t next = 0;    // the RIP after the instruction
  uint8_t r0 = 0, r1 = 0, r2 = 0;  // register operands (destination first)
  int8_t base = kNoReg, index = kNoReg;
  uint8_t scale = 0;    // 1, 2, 4, 8 (0 without an index)
  uint8_t seg = 0;      // SegReg of the memory operand
  AddrMode amode = AddrMode::kReal;
  bool sets_rip = false;  // writes s.rip itself (branches, the generic path)
  bool generic = false;   // runs the interpreter's handler with the step loop's bookkeeping
  bool flags = true;      // computes the arithmetic flags it writes (false: proved dead)
  // The guest register whose value it passes on as the accumulator (kNoReg: none), for the
  // next micro-op's choice of variant (make_micro_op's acc_in).
  int8_t acc_out = kNoReg;
};

// What an instruction does with the arithmetic flags (CF PF AF ZF SF OF, as RFLAGS bits), for
// flag liveness over a unit: `read` before it runs, `may_write` in some executions,
// `must_write` in every execution that completes. `exact` is false for an instruction the
// micro-ops do not model (memory, system, string, …): it counts as reading every flag (it may
// fault, and the exception handler sees RFLAGS) and has no flag-less form.
struct FlagUse {
  uint64_t read = kArithFlags;
  uint64_t may_write = kArithFlags;
  uint64_t must_write = 0;
  bool exact = false;
};
FlagUse flag_use(const TransInsn& t);

// The micro-op of t in a unit of `mode`. `need_flags`: some reader (a later instruction, a
// possible fault, the unit's exit) may see the flags it writes; when false a flag-less form is
// used where there is one. `acc_in`: the register in the accumulator when it runs (the
// previous micro-op's acc_out; kNoReg for a unit's first).
MicroOp make_micro_op(const TransInsn& t, trace::CpuMode mode, bool need_flags,
                      int acc_in = kNoReg);
// The micro-op after a unit's last one. For a unit that is not Unit::chainable it returns to
// the executor. For a chainable one (`chain_from`, all of whose instructions just ran as
// micro-ops) it is the chained inner loop: it stores the unit's end RIP and, if the exit RIP
// took has a chained successor that is still valid, unchanged (page generation), at the same
// physical address, inside the CS limit and the budget, and the hop limit allows, it accounts
// for the unit (TSC, MicroRun::done, Unit::instructions) and runs the successor's micro-ops
// (a tail call); otherwise it returns and the executor finishes the unit.
MicroOp end_micro_op(Unit* chain_from = nullptr);

}  // namespace trapscope::sim::bt
