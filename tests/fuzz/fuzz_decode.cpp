// Fuzz target: the decoder adapter (x86/: decode() into x86::Instruction and
// disassemble() to text, the one Zydis adapter). Input: byte 0 the CPU mode (every
// x86::CpuMode, kUnknown included), 8 bytes the runtime address, then the instruction bytes.
// Checked: a decoded instruction is 1..15 bytes and no longer than the bytes given, has at most
// 3 operands, and has the length the disassembler gives it.
#include "x86/decoder.hpp"
#include "x86/disasm.hpp"
#include "tests/fuzz/fuzz_input.hpp"

using namespace trapscope;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr const char* kTarget = "fuzz_decode";
  fuzz::FuzzInput in(data, size);
  const auto mode = static_cast<x86::CpuMode>(in.pick(static_cast<unsigned>(x86::CpuMode::kMax)));
  const uint64_t address = in.u64();
  const auto bytes = in.rest();

  const x86::Disassembly d = x86::disassemble(bytes, mode, address);
  if (d.ok && (d.length < 1 || d.length > 15 || d.length > bytes.size())) {
    fuzz::invariant_failed(kTarget, "disassembly length out of range");
  }
  x86::Instruction insn;
  const x86::DecodeStatus s = x86::decode(bytes, mode, &insn);
  if (s == x86::DecodeStatus::kOk) {
    if (insn.length < 1 || insn.length > 15 || insn.length > bytes.size()) {
      fuzz::invariant_failed(kTarget, "decoded length out of range");
    }
    if (insn.operand_count > 3) fuzz::invariant_failed(kTarget, "more than 3 operands");
    if (d.ok && d.length != insn.length) {
      fuzz::invariant_failed(kTarget, "decoder and disassembler disagree on the length");
    }
  }
  return 0;
}
