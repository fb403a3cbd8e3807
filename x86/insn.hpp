// x86/insn.hpp — a decoded x86 instruction in the simulator's own form.
//
// The Zydis adapter (x86/decoder.hpp) fills it; the interpreter executes it. Op numbers
// come from the X-macro table x86/ops.def (after Bochs's ia_opcodes.def), which also generates
// the names and the dispatch table, so an instruction the simulator does not implement has no
// Op and becomes Op::kUnsupported ("unsupported: <disassembly> at <rip>").
#pragma once

#include <cstdint>
#include <string_view>

namespace trapscope::x86 {

enum class Op : uint16_t {
  kUnsupported = 0,
#define TRAPSCOPE_OP(name, family) name,
#include "x86/ops.def"
#undef TRAPSCOPE_OP
  kCount,
};
std::string_view op_name(Op op);

enum class OperandKind : uint8_t { kNone, kReg, kMem, kImm, kFarPtr };
enum class RegClass : uint8_t {
  kGpr,      // index 0..15, size says the width (1, 2, 4, 8 bytes)
  kGprHigh,  // AH, CH, DH, BH: index 0..3 = the register whose bits 15:8 are meant
  kSeg,      // index = SegReg
  kCr,       // index = n of CRn
  kDr,       // index = n of DRn
  kOther,    // a register the simulator does not model (the instruction is unsupported)
};

inline constexpr int8_t kNoReg = -1;
inline constexpr int8_t kRipBase = 16;  // memory base register "RIP" (RIP-relative)

struct Operand {
  OperandKind kind = OperandKind::kNone;
  uint8_t size = 0;  // bytes (memory pseudo-descriptors for lgdt/sgdt: 6 or 10)
  // kReg
  RegClass reg_class = RegClass::kGpr;
  uint8_t reg = 0;
  // kMem: segment:[base + index*scale + disp]; for `lea` only the offset is used
  uint8_t seg = 0;
  int8_t base = kNoReg;
  int8_t index = kNoReg;
  uint8_t scale = 0;
  int64_t disp = 0;
  // kImm: the value sign-extended to 64 bits when the encoding sign-extends it (e.g. imm8 of
  // `add r32, imm8`), else zero-extended; `size` is then the ENCODED width (1 for imm8), and
  // Cpu::read_op returns the value truncated to the instruction's operand size.
  // kFarPtr: the offset (the selector is far_selector).
  uint64_t imm = 0;
  uint16_t far_selector = 0;
};

struct Instruction {
  Op op = Op::kUnsupported;
  uint8_t length = 0;
  uint8_t operand_size = 0;  // bits: 16, 32 or 64 (the instruction's effective operand size)
  uint8_t address_size = 0;  // bits: 16, 32 or 64
  uint8_t cc = 0;            // condition code 0..15 for Jcc/SETcc/CMOVcc (SDM Vol. 1 B.1)
  uint8_t rep = 0;           // 0, kRep (REP/REPE) or kRepne
  bool lock = false;
  bool seg_override = false;
  uint8_t operand_count = 0;  // visible (explicit) operands
  Operand ops[3];
  static constexpr uint8_t kRep = 1, kRepne = 2;
};

}  // namespace trapscope::x86
