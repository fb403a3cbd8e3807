// sim/interp/io.cpp — port I/O: in and out, imm8 and DX port forms, 1, 2 or 4 bytes (see
// x86/ops.def).
//
// Sources: Intel SDM Vol. 2 "IN", "OUT"; Vol. 1 19.5 (the IOPL / I/O permission bitmap check,
// done by Cpu::port_in/port_out: #GP(0)). Each access is recorded as the VM-exit-equivalent event
// the KVM backend would have seen (Cpu::record_exit_io).
#include "sim/interp/handlers.hpp"

namespace trapscope::sim {
namespace {

// The port operand: imm8 (zero-extended) or DX.
inline uint16_t port_of(const Cpu& cpu, const Operand& op) {
  return op.kind == OperandKind::kImm ? static_cast<uint16_t>(op.imm & 0xFF)
                                      : static_cast<uint16_t>(cpu.s.gpr[kRdx]);
}

}  // namespace

// in AL/AX/EAX, imm8|DX (a 32-bit load zero-extends RAX in 64-bit mode).
void exec_kIn(Cpu& cpu, const Instruction& insn) {
  const unsigned size = insn.ops[0].size;
  const uint16_t port = port_of(cpu, insn.ops[1]);
  const uint64_t v = cpu.port_in(port, size);
  uint64_t& rax = cpu.s.gpr[kRax];
  switch (size) {
    case 1: rax = (rax & ~0xFFull) | (v & 0xFF); break;
    case 2: rax = (rax & ~0xFFFFull) | (v & 0xFFFF); break;
    default: rax = v & 0xFFFFFFFFull; break;
  }
  cpu.record_exit_io(port, size, false, 1, v);
}

// out imm8|DX, AL/AX/EAX.
void exec_kOut(Cpu& cpu, const Instruction& insn) {
  const unsigned size = insn.ops[1].size;
  const uint16_t port = port_of(cpu, insn.ops[0]);
  const uint64_t v = cpu.s.gpr[kRax] & mask(size);
  cpu.port_out(port, size, v);
  cpu.record_exit_io(port, size, true, 1, v);
}

}  // namespace trapscope::sim
