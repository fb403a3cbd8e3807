#include "x86/disasm.hpp"

#include <Zydis/Zydis.h>

namespace trapscope::x86 {
namespace {

ZydisMachineMode machine_mode(CpuMode mode) {
  switch (mode) {
    case CpuMode::kReal16: return ZYDIS_MACHINE_MODE_REAL_16;
    case CpuMode::kProtected16: return ZYDIS_MACHINE_MODE_LEGACY_16;
    case CpuMode::kProtected32: return ZYDIS_MACHINE_MODE_LEGACY_32;
    case CpuMode::kCompat32: return ZYDIS_MACHINE_MODE_LONG_COMPAT_32;
    case CpuMode::kCompat16: return ZYDIS_MACHINE_MODE_LONG_COMPAT_16;
    case CpuMode::kLong64:
    case CpuMode::kUnknown:
    case CpuMode::kMax: break;
  }
  return ZYDIS_MACHINE_MODE_LONG_64;
}

}  // namespace

Disassembly disassemble(std::span<const uint8_t> bytes, CpuMode mode,
                        uint64_t runtime_address) {
  Disassembly out;
  ZydisDisassembledInstruction insn;
  if (bytes.empty() ||
      !ZYAN_SUCCESS(ZydisDisassembleIntel(machine_mode(mode), runtime_address, bytes.data(),
                                          bytes.size(), &insn))) {
    out.text = "(bad)";
    return out;
  }
  out.ok = true;
  out.length = insn.info.length;
  out.text = insn.text;
  switch (insn.info.mnemonic) {
    case ZYDIS_MNEMONIC_IN: case ZYDIS_MNEMONIC_OUT:
    case ZYDIS_MNEMONIC_INSB: case ZYDIS_MNEMONIC_INSW: case ZYDIS_MNEMONIC_INSD:
    case ZYDIS_MNEMONIC_OUTSB: case ZYDIS_MNEMONIC_OUTSW: case ZYDIS_MNEMONIC_OUTSD:
      out.port_io = true;
      break;
    case ZYDIS_MNEMONIC_HLT: out.halt = true; break;
    default: break;
  }
  return out;
}

}  // namespace trapscope::x86
