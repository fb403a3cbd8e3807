// visualizer/core/state_dump.hpp — the GUI's state as JSON (`--dump-state FILE`, the script's
// `dump FILE`), built from the same model calls the panels draw from, so a test can compare
// what the GUI shows with what the backend says.
//
// Keys: source, backend, state, message, events, lanes{vm_exit, exception, page_walk,
// ring_transition, instruction, run_end}, selected{index, type, summary, rip, cpl, mode, and
// per type: exit_reason, kvm_exit_reason, port, direction, size, value | vector, error_code |
// from_cpl, to_cpl | linear, physical}, cpl_shown, mode_shown, registers{rax…r15, rip, rflags,
// cr0, cr2, cr3, cr4, efer, cs/ss/ds/es/fs/gs/ldtr/tr{selector, base, limit, type, s, dpl, present,
//   l, db, g} (the descriptor cache, SDM Vol. 3A 3.4.5)}, instructions,
// console, end, exit_stats[{reason, kvm_exit_reason, count, total_ns, min_ns, max_ns}], filter,
// breakpoints[], tcache (dump_tcache). Registers and numbers are JSON numbers.
#pragma once

#include <nlohmann/json.hpp>

#include "visualizer/core/model.hpp"

namespace trapscope::viz {

nlohmann::json dump_state(const Model& model);
nlohmann::json dump_registers(const x86::CpuState& registers);
nlohmann::json dump_event(const EventRecord& event);
// The translation cache (tcache_view.hpp): totals {blocks, units, translations, translated_insns,
// ident, non_ident, chains, callouts, adaptive_callouts, invalidated_units, executions,
// instructions, count_reports}, hot[] (blocks by executions, at most 200: rip, pa, insns,
// translations, executions, instructions, callouts, live), invalidations[{event, page_pa, units,
// rip}], selected (a block, plus unit, lines[{rip, bytes, guest, kind, translated, why}] of its
// newest translation, successors[{rip, taken}], predecessors[…]) or null.
nlohmann::json dump_tcache(const Model& model);

class LessonDriver;
// A lesson's state (`trapscope gui --lesson`): {id, file, lang, step (1-based, shown), steps,
// next_to_run (1-based), technique, paging, results[{step, verdict ("not run", "running",
// "passed", "failed"), failure, event (-1: none), event_line}]}.
nlohmann::json dump_lesson(const LessonDriver& lesson);

}  // namespace trapscope::viz
