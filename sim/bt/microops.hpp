// sim/bt/microops.hpp — the executable form of a translation unit (sim/bt/translator.hpp): one
// MicroOp per guest instruction, chosen at translation time for the instruction's operation,
// operand form, operand size, address mode and whether its arithmetic flags are live. The
// executor (sim/bt/execute.cpp) runs a unit's micro-ops one after the other with no
// per-instruction bookkeeping; see translator.hpp [SECTION] Micro-ops for the design.
#pragma once

#include <cstdint>

#include "sim/cpu.hpp"
#include "sim/insn.hpp"
#include "trace/event.hpp"

namespace trapscope::sim::bt {

struct TransInsn;
struct MicroOp;
// Runs one instruction, then the next micro-op of the unit (threaded dispatch: a tail call);
// the unit's micro-ops end with end_micro_op(), which returns to the executor. The chain also
// returns early after an instruction whose generic path exited or wrote a page holding code
// (c.fault_rip then names it) and unwinds when an instruction raises (c.fault_rip names it).
using MicroFn = void (*)(Cpu&, const MicroOp*);

// How a data access forms its linear address and what it checks (SDM Vol. 3A 3.4, 5.3, 5.4;
// 3.3.7.1): real mode (base + offset, limit), protected/compatibility mode (type, limit), 64-bit
// mode (FS/GS base only, canonical).
enum class AddrMode : uint8_t { kReal, kProtected, kLong };

struct MicroOp {
  MicroFn fn = nullptr;
  const TransInsn* t = nullptr;  // its instruction (the generic path runs t->handler)
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
// used where there is one.
MicroOp make_micro_op(const TransInsn& t, trace::CpuMode mode, bool need_flags);
// The micro-op after a unit's last one: returns to the executor.
MicroOp end_micro_op();

}  // namespace trapscope::sim::bt
