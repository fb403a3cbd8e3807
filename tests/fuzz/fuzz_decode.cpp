// Fuzz target: the decoder adapter (sim/decode/: decode() into sim::Instruction and
// disassemble() to text, the one Zydis adapter). Input: byte 0 the CPU mode (every
// trace::CpuMode, kUnknown included), 8 bytes the runtime address, then the instruction bytes.
// Checked: a decoded instruction is 1..15 bytes and no longer than the bytes given, has at most
// 3 operands, and has the length the disassembler gives it.
#include "sim/decode/decoder.hpp"
#include "sim/decode/disasm.hpp"
#include "tests/fuzz/fuzz_input.hpp"

using namespace trapscope;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr const char* kTarget = "fuzz_decode";
  fuzz::FuzzInput in(data, size);
  const auto mode = static_cast<trace::CpuMode>(in.pick(static_cast<unsigned>(trace::CpuMode::kMax)));
  const uint64_t address = in.u64();
  const auto bytes = in.rest();

  const decode::Disassembly d = decode::disassemble(bytes, mode, address);
  if (d.ok && (d.length < 1 || d.length > 15 || d.length > bytes.size())) {
    fuzz::invariant_failed(kTarget, "disassembly length out of range");
  }
  sim::Instruction insn;
  const decode::DecodeStatus s = decode::decode(bytes, mode, &insn);
  if (s == decode::DecodeStatus::kOk) {
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
