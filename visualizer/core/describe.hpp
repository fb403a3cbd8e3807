// visualizer/core/describe.hpp — words for what the views show: one-line event summaries, the
// fields of the details pane, and the decoding of RFLAGS, CR0, CR4, EFER, segment descriptors,
// page-table entries and #PF error codes. Plain functions of plain data (no GUI), so tests and
// the state dump use exactly what the panels print.
//
// Sources: Intel SDM Vol. 1 3.4.3 (RFLAGS); Vol. 3A 2.5 (CR0, CR4), 2.2.1 (EFER), 3.4.5 and
// table 3-1/3-2 (segment descriptor types), 4.5 tables 4-15..4-20 (4-level paging entries),
// 4.7 (page-fault error code), table 6-1 (exception vectors).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "x86/state.hpp"
#include "visualizer/core/event_store.hpp"
#include "visualizer/core/words.hpp"

namespace trapscope::viz {

// "VM exit IO rip=0x8007 cpl=0 real out dx, al port=0xe9 out size=1 value=0x48 'H'": the text
// form of trace/printer.hpp without the sequence number and timing.
std::string event_summary(const EventRecord& event);

// What happened, without the RIP, CPL and mode (the event list shows those in columns):
// "out dx, al · port 0xe9 out · 0x48 'H'", "mov cr3, rax", "CPL 3 → 0 by exception (#GP)".
std::string event_brief(const EventRecord& event);

// Short type label for lists: "VM exit", "exception", "ring", "walk", "insn", "run end".
std::string_view type_label(trace::EventType type);

// One row of the details pane.
struct Field {
  std::string name;
  std::string value;
  std::string note;  // what it means, where it comes from (may be empty)
};
// Rows of VT-x and trap-and-emulate events come in `lang` (visualizer/core/words.hpp).
std::vector<Field> event_fields(const EventRecord& event, Lang lang = Lang::kEn);

// One or two sentences on what happened and who handled it, for the details pane.
std::string explain(const EventRecord& event, Lang lang = Lang::kEn);

// "#GP", "#PF", … (SDM Vol. 3A table 6-1); "int N" past the architectural vectors.
std::string vector_mnemonic(uint8_t vector);
std::string_view vector_long_name(uint8_t vector);  // "general protection", …

// A control or flag bit and whether it is set.
struct Bit {
  const char* name;     // "PE", "IF", …
  const char* meaning;  // "protection enable", …
  bool set;
};
std::vector<Bit> rflags_bits(uint64_t rflags);  // CF PF AF ZF SF TF IF DF OF NT RF VM AC VIF VIP ID
std::vector<Bit> cr0_bits(uint64_t cr0);
std::vector<Bit> cr4_bits(uint64_t cr4);
std::vector<Bit> efer_bits(uint64_t efer);
// The names of the set bits, space separated ("PE ET NE PG").
std::string set_bit_names(const std::vector<Bit>& bits);

// "code, execute/read, accessed", "data, read/write", "64-bit TSS (busy)", "LDT", …
std::string segment_type(const x86::Segment& s);

// "real mode", "protected mode, 32-bit code", "long mode, 64-bit code", …
std::string_view cpu_mode_name(trace::CpuMode mode);
// "ring 0 — kernel (most privileged)" / "ring 3 — user" / "ring 1"/"ring 2".
std::string_view ring_name(uint8_t cpl);

// "P RW US A D PS G NX" flags of a page-table entry; "not present" when P = 0.
std::string pte_flags(uint64_t entry);
// "present, write, user" style decoding of a #PF error code.
std::string page_fault_error(uint32_t error_code);
// Level names of a walk with `levels` entries, root first: PML4, PDPT, PD, PT (4-level); PDPT,
// PD, PT (PAE); PD, PT (32-bit).
std::string_view walk_level_name(unsigned levels, unsigned index);

std::string hex(uint64_t value);
std::string hex_fixed(uint64_t value, int digits);  // zero-padded, no prefix
std::string with_commas(uint64_t value);            // 1,234,567
std::string duration_ns(uint64_t ns);               // "950 ns", "12.3 µs", "4.56 ms"

}  // namespace trapscope::viz
