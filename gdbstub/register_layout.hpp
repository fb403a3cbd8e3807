// gdbstub/register_layout.hpp — the register layouts the stub offers gdb, one per x86 processor mode,
// and the target descriptions (gdb's XML) that name them.
//
// gdb learns the layout of the `g`/`G` packets from the target description it reads once, when it
// connects (qXfer:features:read:target.xml). Layouts (GDB manual, Appendix G "Target
// Descriptions", G.5 "Standard Target Features", i386 Features: org.gnu.gdb.i386.core and
// org.gnu.gdb.i386.sse; register order as that section lists them):
//   kI8086  real mode (and virtual-8086): the i386 32-bit registers, architecture "i8086" so that
//           gdb disassembles 16-bit code;
//   kI386   protected mode and long mode's compatibility sub-mode: the same registers,
//           architecture "i386";
//   kX86_64 64-bit mode: the x86-64 registers, architecture "i386:x86-64".
// Every layout ends with trapscope's own feature "org.trapscope.x86.system" (cr0, cr2, cr3, cr4,
// efer, 64 bits each), so that `p/x $cr0` shows the mode switch itself.
//
// x87 and SSE registers are part of gdb's i386 features but not of trapscope's CPU model
// (x86/state.hpp): they read as zero and writes to them are ignored.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "x86/state.hpp"

namespace trapscope::gdbstub {

enum class Layout : uint8_t { kI8086, kI386, kX86_64 };

// The layout that matches the processor's current mode.
Layout layout_for(const x86::CpuState& s);
std::string_view architecture_name(Layout layout);  // "i8086", "i386", "i386:x86-64"

// The target description document (target.xml) of `layout`.
const std::string& target_xml(Layout layout);

// Number of registers of `layout` (gdb's register numbers 0 … count-1, the `p`/`P` numbers).
size_t register_count(Layout layout);
// Register `n`'s name and size in bytes (0 if there is no register `n`).
std::string_view register_name(Layout layout, size_t n);
size_t register_bytes(Layout layout, size_t n);

// All registers, target byte order (little-endian), as the `g` reply carries them.
std::vector<uint8_t> read_all(Layout layout, const x86::CpuState& s);
// Register n's bytes (empty if there is no register n).
std::vector<uint8_t> read_one(Layout layout, const x86::CpuState& s, size_t n);
// Writes register n from `bytes` (exactly register_bytes long; false otherwise). A 32-bit layout
// replaces a 64-bit register's low half; a segment register's selector is written, and in real
// or virtual-8086 mode its base too (selector × 16, SDM Vol. 3A 20.1.1); protected-mode hidden
// parts are left alone. x87/SSE writes are accepted and ignored.
bool write_one(Layout layout, x86::CpuState* s, size_t n, std::span<const uint8_t> bytes);
// The whole `G` block: false (nothing written) unless it is exactly read_all's length.
bool write_all(Layout layout, x86::CpuState* s, std::span<const uint8_t> bytes);

// The register number of the program counter (eip/rip) in `layout`.
size_t pc_register(Layout layout);

}  // namespace trapscope::gdbstub
