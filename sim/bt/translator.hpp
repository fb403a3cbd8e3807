// sim/bt/translator.hpp — binary translation (`--technique bt`): a VMware-style translator with
// a translation cache, after Adams & Agesen, "A Comparison of Software and Hardware Techniques
// for x86 Virtualization", ASPLOS 2006, section 3, and Bugnion et al., "Bringing Virtualization
// to the x86 Architecture with the Original VMware Workstation", ACM TOCS 30(4), 2012.
//
// [SECTION] What it does
//   Binary, dynamic, on demand, system level: guest code is translated only when it is about to
//   run at CPL 0..2 (or in real mode, where there is no CPL 3); guest CPL 3 code runs directly
//   on the interpreter's fast path (SimMachine::step). A TRANSLATION UNIT (TU) is a run of
//   guest instructions that starts at the RIP to execute and ends after a control-flow
//   instruction, after a callout, after kBtMaxUnitInsns (12) instructions, after an
//   instruction past which IP wraps (16-bit code at 0xFFFF, 32-bit at 0xFFFFFFFF: the next
//   instruction is at CS:0, as the interpreter's RIP mask gives), or before an instruction
//   that would leave the 4 KiB guest page (so a unit lies in one physical page).
//   The unit's translated form (its compiled code fragment, CCF) is real pre-decoded code: an
//   array of micro-ops specialised at translation time ([SECTION] Micro-ops), executed without
//   fetching or decoding again (SimMachine::step_bt in sim/bt/execute.cpp).
//
// [SECTION] IDENT and non-IDENT (trace::BtKind; the classifier is x86/classify.hpp)
//   IDENT: innocuous instructions are kept as they are.
//   PC-relative: a RIP-relative memory operand becomes an absolute address (the unit is keyed
//     by its RIP, so the address is known at translation time).
//   direct control flow: jmp/jcc/call rel, loop, jcxz: the two possible next RIPs are computed
//     at translation time and the unit's two exits are patched to the successor units once
//     those exist (chaining).
//   indirect control flow: ret, jmp/call r/m: the exit looks the target up in the translation
//     cache's hash table.
//   sensitive, in-cache: cli, sti, pushf, popf, sgdt, sidt, sldt, str, smsw, lar, lsl, verr,
//     verw, mov r/m from Sreg, push Sreg: emulated against the virtual CPU inside the unit (no
//     exit from the cache).
//   privileged or sensitive, callout: everything else the classifier marks (mov CR, lgdt, in,
//     out, hlt, iret, int n, far control transfers, mov Sreg, wrmsr, …): the unit ends and the
//     VMM emulates the instruction on the virtual CPU (a kBtCallout event).
//   The virtual CPU is the simulator's Cpu, so each kind runs the interpreter's handler for the
//   instruction: equivalence with the interpreter holds by construction (tested in
//   tests/test_bt.cpp, including against KVM).
//
// [SECTION] Chaining, coherence, adaptation
//   Chaining: a unit ending in direct control flow or a fall-through keeps a pointer per exit
//     (taken, not taken) to its successor, patched the first time that exit is taken; later
//     the executor goes straight there without the hash lookup. A chained successor is used
//     only if it is still valid and the current RIP still maps to its physical address.
//     After a whole unit with no generic micro-op and no callout (so the mode, CS, CPL, paging,
//     halt and exit state cannot have changed: Unit::chainable), the unit's last micro-op
//     (chain_op in microops.cpp, the chained inner loop) runs the chained successor's micro-ops
//     itself, a tail call, without returning to the executor: it checks validity, page
//     generation, the CS limit, the physical address RIP maps to now (the TLB; nothing to
//     check in real mode, which has no paging) and the budget, and keeps the statistics
//     (Unit::executions and instructions, TSC, instructions retired) as it goes; the executor
//     learns where the chain stopped from MicroRun. The successor's RIP, CS base and mode need
//     no check: a link is made in the context its unit ran in, and a chainable unit leaves the
//     context unchanged. Anything else returns to the executor's lookup.
//   Coherence: translating a unit marks its physical page as code (Cpu::mark_code_page); any
//     write to a marked page bumps the page's code generation (the decode cache uses the same
//     counters). A unit whose page generation changed is dropped (with every unit of that page:
//     a kBtInvalidate event) and translated again. The executor checks after every instruction,
//     so self-modifying code inside the running unit takes effect on the next instruction.
//   CR3 changes: units are keyed by guest RIP, CS base, guest-PHYSICAL address and mode; each
//     lookup (and each chain step) translates the RIP through the current TLB, so after a
//     MOV to CR3 a unit is reused only where the new address space maps the same page.
//   Adaptive retranslation: an instruction that traps (raises a fault, or writes a page that
//     holds translated code, which VMware detects with a write-protection trace, or under
//     shadow paging a write-protected guest page table: Cpu::code_writes) is counted;
//     after Cache::adaptive_threshold traps (kBtAdaptiveThreshold unless a test sets another)
//     its unit is retranslated with the instruction turned into a callout (BtKind::kAdaptive),
//     as Adams & Agesen describe for page-table writes.
//
// [SECTION] What the translator records (for the translation-cache view)
//   What it decided for a unit goes out in the events, so that the view (visualizer/core/
//   tcache_view.hpp) shows the translator's record, live or from a trace, and decides nothing
//   itself: BtTranslateEvent carries each instruction's bytes and BtKind and the adaptive
//   threshold in force; BtCalloutEvent each callout; BtCountsEvent the unit's executions,
//   instructions and traps (faults and code-page writes of its instructions). The sentence
//   for a kind is kind_reason() (kind_reason.hpp); for a sensitive instruction (in-cache,
//   callout) it is the classifier's sentence for its bytes (x86/classify.hpp), which the
//   fixed-size event cannot hold: the view looks that sentence up for the recorded bytes, as
//   it disassembles them, and shows the kind the translator recorded.
//
// [SECTION] Freeing invalidated units (Cache::retire, Cache::free_retired)
//   An invalidated unit (its page was written, an adaptive retranslation) is RETIRED at once
//   (Cache::retire): marked invalid and taken out of every table that finds units (map_,
//   by_page_, its front_ slot), so no lookup returns it again. It is FREED later, when the
//   cache is about to grow: translate() first frees the retired units if there are at least
//   max(kBtCollectMin, live units / 2) of them (free_retired: one pass over units_ nulls every
//   live unit's chain[] exit that leads to a retired unit, forgets `resume` if it names one,
//   reports each retired unit's counters as a kBtCounts event if they changed (counts.hpp),
//   then frees them). So the cache holds fewer than max(kBtCollectMin, live / 2) retired units
//   plus those retired since the last translation, however often the guest rewrites its code,
//   and the pass costs O(1) per freed unit, amortised. Translations happen at the same points
//   of a guest's run however the run is stopped and resumed ([SECTION] Resuming a unit), so
//   freeing (and the counts it reports) does too.
//   Why deferred freeing with a pass, not back-links (each unit listing the exits that lead to
//   it): the executor holds Unit* locals across calls that retire units (a lookup that finds
//   its page written, note_trap after a self-modifying write) and reads `valid` through them
//   and through chain[]; retiring frees nothing, so all of those reads stay safe, and the one
//   call that frees, translate(), is one the executor makes holding only `prev`, which it
//   drops first if it is retired (execute.cpp). No bookkeeping on the link path, no second
//   list per unit to keep consistent, and the pass reaches every chain[] pointer that can lead
//   to a retired unit because every live unit is in units_. The rule for code that keeps a
//   Unit*: a retired unit may be freed by the next translate() (or free_retired, or a flush).
//   A whole-cache flush (capacity, load) frees everything at once; at capacity
//   the units' counters are reported first.
//
// [SECTION] Micro-ops (sim/bt/microops.hpp)
//   Each translated instruction gets a MicroOp: a function chosen for its operation, operand
//   form (reg-reg, reg-imm, reg-mem, mem-reg, mem-imm), operand size and address mode, with its
//   operands pre-resolved (register numbers, the immediate truncated, the displacement, base,
//   index, scale, segment and address-size mask of a memory operand, a direct branch's two
//   RIPs). Forms with a micro-op of their own: mov, the two-operand ALU (add adc sub sbb and or
//   xor cmp test), inc/dec, shifts and rotates by an immediate, imul reg,reg[,imm], jcc, jmp
//   rel, loop. Other register-only instructions run the interpreter's handler directly (no
//   bookkeeping needed); everything else (in-cache sensitive instructions, indirect branches,
//   string and stack instructions, …) runs the GENERIC path: the interpreter's handler with the
//   step loop's bookkeeping (fault RIP, instruction bytes, RIP = the next instruction).
//   Per-instruction bookkeeping is off the hot path: the executor's fast loop stores no RIP,
//   fault RIP, instruction bytes or TSC per instruction. RIP is written at the unit's end (or by
//   its branch), the TSC once per unit; if instruction i raises, the executor fills in RIP,
//   fault RIP, bytes and TSC of instruction i before the exception is delivered, so faults have
//   the RIP and error code the interpreter gives. Dispatch is threaded: each micro-op ends by
//   calling the next one (a tail call), the last is end_micro_op(), which returns or goes on
//   to a chained successor; without the tail-call optimisation (Debug, sanitizers) the stack
//   holds one frame per micro-op run since the executor's call, at most 2 × 1024
//   (execute.cpp kMaxChainInsns). Only the generic path may exit or write a page holding
//   code; if it did, it returns instead of going on, and the executor finds the instruction
//   by c.fault_rip (which the generic path and a faulting branch set) in MicroRun::unit.
//   Guest registers live in Cpu::s.gpr; a micro-op that reads the register the previous one
//   wrote takes its value from the accumulator, an argument passed along the threaded calls in
//   a host register (MicroOp::acc_out, make_micro_op's acc_in), so a chain of dependent
//   instructions does not wait for each store to be forwarded to the next load; every result
//   is still stored to s.gpr. The flags of add/sub/cmp/and/or/xor/test/inc/dec come from the
//   host's ALU (LAHF, SETO) on x86-64 hosts.
//   Data accesses (fast_data in microops.cpp): the segment checks of Cpu::linear_address, then
//   a TLB hit (or paging off), then guest RAM, then (for a write) a page that holds no code: the
//   micro-op reads or writes host memory directly. Anything else (a fault, a TLB miss, MMIO, a
//   page crossing, a write to a code page, an expand-down segment) runs the generic path, which
//   raises, walks, exits and invalidates exactly as the interpreter does; the fast path never
//   changes state before it knows it can finish.
//   Stop conditions inside a unit (a breakpoint, a watched event, recording every instruction,
//   an instruction limit or clock check that falls inside it) and a trailing callout run the
//   interpreter's handlers one by one (the generic loop): exact state between instructions.
//
// [SECTION] Resuming a unit (Cache::resume)
//   A step_bt call may return inside a unit: a breakpoint, a watched event, a single step, the
//   run loop's instruction budget (its clock check every 4096 instructions, an instruction
//   limit) or an exit (MMIO) after instruction i. The next call goes on with that unit from
//   instruction i, on the generic loop, as a run that did not stop would have; it does not
//   translate a new unit starting at the RIP in the middle. Likewise a call that returns after
//   a whole unit leaves its exit to be linked (chained) to the unit the next call runs. So a
//   run stopped after every event (the visualizer's re-execution of a trace) or stepped one
//   instruction at a time translates, links and counts exactly what an uninterrupted run does
//   (tests/test_bt.cpp). The record is used only if nothing happened in between (same RIP,
//   no instruction retired, the same CR0, CR3, CR4 and EFER) and the unit is still valid with
//   its page unwritten and the same CS base, mode and CPL 0..2; otherwise the call looks RIP
//   up as usual. A write
//   to the unit's own page, an exception or a CPL 3 step end it, as they end a unit in an
//   uninterrupted run. Counting: a unit's `executions` counts its entries (a resumed unit is
//   not entered again), its `instructions` every instruction it retired, resumed or not.
//   A jump into the middle of a unit still translates a unit of its own, as in QEMU: only a
//   unit stopped in is resumed.
//
// [SECTION] Snapshots (Cache::State, Cache::save, Cache::restore)
//   Stepping back in the live visualizer restores a snapshot and runs on from it
//   (visualizer/core/live_controller.hpp); for that run to translate, link, invalidate, free
//   and count exactly what the uninterrupted run did from that point, a simulator snapshot
//   keeps the cache's whole state (SimMachine::save_code_state): every unit held (live and
//   retired, in units_ order, with its instructions, trap counts, statistics and the counters
//   last reported), its chain links, map_ and by_page_, the retranslation, trap and adaptive
//   tables, the statistics, the unit numbering and `resume`; and the Cpu's code-page marks
//   (Cpu::code_pages), which decide which writes count as traps. Pointers are stored as
//   indices into the saved units and made pointers again on restore. Three things are not
//   copied but rebuilt, because each is a function of what is copied:
//   - the micro-ops (Unit::micro): build_micro_ops makes them from the unit's instructions and
//     mode alone (make_micro_op reads nothing else, and nothing changes a unit's instructions
//     after translation but TransInsn::traps, which it does not read), so rebuilding gives the
//     same micro-ops with MicroOp::t and MicroOp::unit pointing into the new unit; this also
//     keeps the snapshot smaller (no MicroOp array);
//   - front_: a memo of map_ (find() checks a hit and falls back to map_), left empty;
//   - the page generations: restore_state bumps every page's generation (the decode cache
//     must forget what it held), so a unit's `generation` is set to its page's new generation
//     if it was current when saved, and to a value it can no longer take otherwise (a unit
//     whose page was written since its translation, not yet found stale, stays stale).
//     Unit::generation_counter is set from the same Cpu (the counters live as long as it).
//   A snapshot is restored into the machine it was taken from (the backend checks the memory
//   size; the counters and handlers are that machine's).
//
// [SECTION] Flag liveness
//   The arithmetic flags (CF PF AF ZF SF OF) an instruction writes are computed only if
//   someone may read them (build_micro_ops in translator.cpp). A backward pass over the unit
//   starts with every flag live at the unit's exit (the successor is not looked at) and for
//   each instruction i (bt::flag_use): i needs its flags if it may write a live one; live
//   becomes (live − what i always writes) ∪ what i reads. An instruction that may fault (any
//   memory access, a branch) reads every flag, because the exception handler sees RFLAGS; so
//   does any instruction the micro-ops do not model. Shifts by CL write no flag when CL masks
//   to 0, so they kill none. A flag-less micro-op leaves RFLAGS as it was; its generic path
//   (taken on a slow access) computes the flags anyway, which is harmless.
//
// [SECTION] Costs
//   Translation cost is measured in host nanoseconds (BtStats::translate_ns); the paper quotes
//   about 2300 cycles per translated instruction for VMware (a figure, not a model here).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sim/bt/kind_reason.hpp"
#include "sim/bt/microops.hpp"
#include "sim/cpu.hpp"
#include "sim/arch.hpp"
#include "sim/interp/handlers.hpp"
#include "trace/event.hpp"

namespace trapscope::sim::bt {

using trace::BtKind;
using trace::kBtMaxUnitInsns;

// Traps before an instruction is retranslated into a callout (Cache::adaptive_threshold's
// default; 1..kBtMaxAdaptiveThreshold, the range BtTranslateEvent::adaptive_threshold holds).
inline constexpr uint32_t kBtAdaptiveThreshold = 4;
inline constexpr uint32_t kBtMaxAdaptiveThreshold = 255;
// Units kept before the whole cache is flushed (VMware also flushed a full cache).
inline constexpr size_t kBtMaxUnits = 1u << 16;
// Retired (invalidated) units held before Cache::collect() frees them, at least ([SECTION]
// Freeing invalidated units; the bound grows to half the live units).
inline constexpr size_t kBtCollectMin = 64;

// One translated guest instruction.
struct TransInsn {
  Handler handler = nullptr;  // the interpreter's handler for its form (select_handler)
  uint64_t rip = 0;           // its guest RIP (a translation-time constant)
  uint64_t next_rip = 0;      // the RIP after it, masked to the code size
  Instruction insn;           // pre-decoded (PC-relative operands already made absolute)
  uint8_t code[16] = {};      // the length, then the guest bytes (trace::InstructionEvent's
                              //   `len` and `bytes`)
  BtKind kind = BtKind::kIdent;
  std::string_view reason;    // why non-IDENT (the classifier's sentence for sensitive ones)
  uint32_t traps = 0;         // faults raised / code-page writes made by this translation
};

struct Unit {
  uint32_t id = 0;
  uint64_t rip = 0;       // guest RIP (offset in CS) of the first instruction
  uint64_t cs_base = 0;
  uint64_t pa = 0;        // guest-physical address of the first byte
  trace::CpuMode mode = trace::CpuMode::kUnknown;
  uint32_t generation = 0;  // the page's code generation when translated
  const uint32_t* generation_counter = nullptr;  // Cpu::code_generation_counter(pa)
  uint16_t guest_bytes = 0;
  uint64_t last_rip = 0;  // rip + guest_bytes - 1: the offset in CS of its last byte
  bool valid = true;
  std::vector<TransInsn> code;  // 1..kBtMaxUnitInsns
  // The executable form ([SECTION] Micro-ops): micro[i] runs code[i] for i < fast, then
  // micro[fast] = end_micro_op(). A trailing callout (fast = code.size() - 1) runs on the
  // executor's generic loop.
  std::vector<MicroOp> micro;
  uint8_t fast = 0;
  uint8_t insns = 0;  // code.size()
  // RIP after micro[0..fast) ran, when their last one does not write s.rip itself (0 when it
  // does, or fast = 0): the executor stores it once per unit.
  uint64_t fast_next_rip = 0;
  // Some micro-op runs the generic path (it may change the mode, CS or CPL): the executor
  // computes its fetch context again after the unit.
  bool refresh_context = false;
  // fast == insns and !refresh_context: after a whole run of its micro-ops its last micro-op may go
  // straight on to a chained successor (chain_op in microops.cpp, the chained inner loop).
  bool chainable = false;
  // Exits of a unit whose last instruction is direct control flow or which falls through:
  // next_rip[0] = fall-through / not taken, next_rip[1] = taken (direct branch only).
  uint64_t next_rip[2] = {0, 0};
  bool has_exit[2] = {false, false};
  Unit* chain[2] = {nullptr, nullptr};  // patched successors (chaining)
  // Statistics (the translation-cache panel, like QEMU's hotblocks).
  uint64_t executions = 0;
  uint64_t instructions = 0;   // guest instructions executed from this unit
  uint32_t translations = 1;   // times this address was translated (1 + retranslations)
  uint32_t traps = 0;          // traps counted by note_trap (the sum of its TransInsn::traps)
  // The counters in its last kBtCounts event (counts.hpp): a resumed unit ([SECTION] Resuming a
  // unit) retires instructions without a new execution.
  uint64_t reported_executions = 0, reported_instructions = 0;
  uint32_t reported_traps = 0;
};

struct BtStats {
  uint64_t units = 0;            // units in the cache now
  uint64_t translations = 0;     // units translated (including retranslations)
  uint64_t translated_insns = 0; // guest instructions translated
  uint64_t translate_ns = 0;     // host time spent translating
  uint64_t lookups = 0;          // hash-table lookups (unit entries not reached by a chain)
  uint64_t hits = 0;             // lookups that found a valid unit
  uint64_t chained = 0;          // unit entries reached through a chain (no lookup)
  uint64_t chains = 0;           // exits patched
  uint64_t invalidations = 0;    // units dropped because their page was written
  uint64_t flushes = 0;          // whole-cache flushes (capacity)
  uint64_t freed = 0;            // invalidated units freed by Cache::collect()
  uint64_t callouts = 0;         // callouts executed
  uint64_t adaptive = 0;         // instructions retranslated into callouts
  uint64_t unit_executions = 0;  // units executed
  uint64_t cache_insns = 0;      // guest instructions executed from the cache
  uint64_t direct_insns = 0;     // guest instructions executed directly (CPL 3, fall-backs)
  uint64_t ident = 0, non_ident = 0;  // instructions translated IDENT / non-IDENT
  // "units 12, translations 14, …" (one line per group; `run --stats`).
  std::string summary() const;
};

// Classifies one decoded instruction for translation (no Cpu needed; tests use it directly).
// `next_rip`: the RIP after it. Returns the kind and rewrites `insn` where the kind says so.
BtKind translate_insn(Instruction& insn, std::span<const uint8_t> bytes, uint64_t next_rip,
                      std::string_view* reason);

bool is_control_flow(Op op);

class Cache {
 public:
  // The unit for (rip, cs_base, pa, mode) if one is cached and its page was not written since;
  // a stale one is dropped with every unit of its page (reported through `sink`).
  Unit* find(Cpu& cpu, uint64_t rip, uint64_t cs_base, uint64_t pa, trace::CpuMode mode);
  // Translates the unit starting at rip (pa = its physical address, inside guest RAM). Returns
  // null if not even the first instruction can be translated (crosses the page, invalid,
  // unsupported: the interpreter then raises what is due).
  Unit* translate(Cpu& cpu, uint64_t rip, uint64_t cs_base, uint64_t pa, trace::CpuMode mode);
  // Counts a trap of instruction i of u; true if it just crossed the adaptive threshold (the
  // unit was dropped and will be retranslated with that instruction as a callout).
  bool note_trap(Cpu& cpu, Unit& u, size_t i);
  void link(Cpu& cpu, Unit& from, int slot, Unit& to);
  // Counts a callout of t (RIP already advanced: cpu.fault_rip is t's) and reports it.
  void report_callout(Cpu& cpu, const Unit& u, const TransInsn& t);
  void flush();  // frees every unit (load, capacity)
  // Frees the retired (invalidated) units, whatever their number ([SECTION] Freeing
  // invalidated units: translate() does it when there are enough; tests call it directly):
  // nulls every live unit's exit that leads to one, forgets `resume` if it names one, reports
  // their counters through cpu.sink() if it is set, and frees them.
  void free_retired(Cpu& cpu);

  // Where the last SimMachine::step_bt call left off ([SECTION] Resuming a unit): inside a
  // unit it stopped in (index < unit->insns: the next instruction to run), or after a whole
  // unit (index == unit->insns) whose exit `slot` is still to be linked to the unit run next.
  // The next step_bt call uses it only if nothing happened in between: CS:RIP is still `rip`,
  // the machine retired no instruction (`instructions`, SimMachine::instructions()), the
  // paging controls are as they were (`paging`: CR0, CR3, CR4, EFER; the backend's
  // set_registers may change them), and the unit is still valid with its page unwritten. A
  // TLB flush alone does not matter (the visualizer flushes it at its snapshots): the rest of
  // a unit runs without fetching in a run that does not stop either. A cache flush forgets
  // it, and so does free_retired() when it frees the unit it names.
  struct Resume {
    Unit* unit = nullptr;  // null: nothing to resume
    uint8_t index = 0;
    int8_t slot = -1;
    uint64_t rip = 0;
    uint64_t instructions = 0;
    uint64_t paging[4] = {};
  };
  Resume resume;

  // Everything the cache holds, as a snapshot keeps it ([SECTION] Snapshots): units without
  // their micro-ops, pointers as indices into `units` (-1: none).
  struct State;
  // A copy of the cache's state; `cpu`: the machine's, for the page generations.
  std::shared_ptr<const State> save(const Cpu& cpu) const;
  // Replaces the cache's state by `state`, saved from this machine's cache; call after the
  // Cpu's state, code generations and code-page marks are restored (SimMachine::restore_state).
  void restore(const State& state, const Cpu& cpu);

  BtStats& stats() { return stats_; }
  const BtStats& stats() const { return stats_; }
  // The units held, in translation order: the live ones (valid) and the retired ones not
  // freed yet (invalid). A live unit stays until a flush; a retired one may go at the next
  // translate() or free_retired().
  const std::vector<std::unique_ptr<Unit>>& units() const { return units_; }
  size_t retired() const { return retired_; }  // invalid units in units()
  // Host bytes the units hold (the Unit objects and their code and micro-op arrays).
  size_t bytes() const;
  bool lookup_events = false;  // emit a kBtLookup event per lookup (SimConfig::bt_lookup_events)
  // Traps after which an instruction is retranslated into a callout ([SECTION] Chaining,
  // coherence, adaptation; SimConfig::bt_adaptive_threshold), 1..kBtMaxAdaptiveThreshold;
  // recorded in every BtTranslateEvent.
  uint32_t adaptive_threshold = kBtAdaptiveThreshold;

 private:
  struct Key {
    uint64_t rip, cs_base, pa;
    trace::CpuMode mode;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return std::hash<uint64_t>()(k.rip * 0x9E3779B97F4A7C15ull ^ k.pa ^ (k.cs_base << 7) ^
                                   static_cast<uint64_t>(k.mode));
    }
  };
  void invalidate_page(Cpu& cpu, uint64_t page, uint64_t rip);
  // Marks u invalid and takes it out of map_ and front_ (the caller: out of by_page_).
  void retire(Unit& u);
  void collect(Cpu& cpu) {  // translate()'s first step
    if (retired_ >= std::max<uint64_t>(kBtCollectMin, stats_.units / 2)) free_retired(cpu);
  }
  Unit*& front_slot(const Key& key) { return front_[KeyHash()(key) & (kFrontEntries - 1)]; }
  static constexpr size_t kFrontEntries = 4096;
  // Recently found units: live ones only (retire() clears a unit's slot), checked anyway.
  std::array<Unit*, kFrontEntries> front_{};
  std::unordered_map<Key, Unit*, KeyHash> map_;               // live units only
  std::unordered_map<uint64_t, std::vector<Unit*>> by_page_;  // pa >> 12 → its live units
  std::unordered_map<uint64_t, uint32_t> retranslations_;     // pa of a unit → times
  std::unordered_map<uint64_t, uint32_t> trap_counts_;         // pa of an instruction → traps
  std::unordered_map<uint64_t, bool> adaptive_;                // pa of an instruction → callout
  std::vector<std::unique_ptr<Unit>> units_;
  size_t retired_ = 0;  // invalid units in units_, freed by the next free_retired()
  uint32_t next_id_ = 0;
  BtStats stats_;
};

struct Cache::State {
  struct SavedUnit {
    Unit unit;                    // micro empty, chain and generation_counter null
    int32_t chain[2] = {-1, -1};  // Unit::chain
    bool current = false;         // generation was its page's generation when saved
  };
  std::vector<SavedUnit> units;  // units_, in order
  std::vector<std::pair<Key, uint32_t>> map;
  std::vector<std::pair<uint64_t, std::vector<uint32_t>>> by_page;
  std::unordered_map<uint64_t, uint32_t> retranslations, trap_counts;
  std::unordered_map<uint64_t, bool> adaptive;
  size_t retired = 0;
  uint32_t next_id = 0;
  BtStats stats;
  Resume resume;               // unit null: see resume_unit
  int32_t resume_unit = -1;
  // Host bytes held (the units and their instruction arrays, the tables), for the
  // visualizer's snapshot budget.
  size_t bytes() const;
};

}  // namespace trapscope::sim::bt
