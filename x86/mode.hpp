// x86/mode.hpp — the processor's operating mode and current privilege level, defined once.
//
// Both engines and the trace printer take the mode and CPL from here: the simulator from its
// CpuState (x86/state.hpp), the KVM backend from kvm_sregs, the trace from the event header.
// Sources: Intel SDM Vol. 3A 2.2 (modes of operation), 9.8–9.9 (switching modes), 5.5 (privilege
// levels: the CPL is SS.DPL, which the processor keeps equal to the CPL; VMX guest state does the
// same, Vol. 3C 25.4.1; KVM on AMD reports the VMCB's CPL as SS.DPL).
#pragma once

#include <cstdint>
#include <string_view>

namespace trapscope::x86 {

// The processor mode the code runs in (decides how bytes decode and disassemble).
// The numbers are part of the trace file format (trace/event.hpp, EventHeader::cpu_mode).
enum class CpuMode : uint8_t {
  kUnknown = 0,
  kReal16 = 1,       // real mode (CR0.PE = 0), and virtual-8086 mode (decodes as 16-bit)
  kProtected16 = 2,  // protected mode, 16-bit code segment (CS.D = 0)
  kProtected32 = 3,  // protected mode, 32-bit code segment (CS.D = 1)
  kLong64 = 4,       // IA-32e 64-bit mode (EFER.LMA = 1, CS.L = 1)
  kCompat32 = 5,     // IA-32e compatibility mode, 32-bit code segment
  kCompat16 = 6,     // IA-32e compatibility mode, 16-bit code segment
  kMax,
};

// "real", "protected16", "protected32", "long64", "compat32", "compat16"; "unknown" otherwise.
std::string_view to_string(CpuMode mode);

// Control-register, EFER and RFLAGS bits that decide the mode (SDM Vol. 3A 2.5, 2.2.1;
// Vol. 1 3.4.3).
inline constexpr uint64_t kCr0Pe = 1ull << 0, kCr0Mp = 1ull << 1, kCr0Em = 1ull << 2,
                          kCr0Ts = 1ull << 3, kCr0Et = 1ull << 4, kCr0Ne = 1ull << 5,
                          kCr0Wp = 1ull << 16, kCr0Am = 1ull << 18, kCr0Nw = 1ull << 29,
                          kCr0Cd = 1ull << 30, kCr0Pg = 1ull << 31;
inline constexpr uint64_t kCr4Vme = 1ull << 0, kCr4Pvi = 1ull << 1, kCr4Tsd = 1ull << 2,
                          kCr4De = 1ull << 3, kCr4Pse = 1ull << 4, kCr4Pae = 1ull << 5,
                          kCr4Pge = 1ull << 7, kCr4Osfxsr = 1ull << 9, kCr4Umip = 1ull << 11;
inline constexpr uint64_t kEferSce = 1ull << 0, kEferLme = 1ull << 8, kEferLma = 1ull << 10,
                          kEferNxe = 1ull << 11;
inline constexpr uint64_t kCF = 1ull << 0, kPF = 1ull << 2, kAF = 1ull << 4, kZF = 1ull << 6,
                          kSF = 1ull << 7, kTF = 1ull << 8, kIF = 1ull << 9, kDF = 1ull << 10,
                          kOF = 1ull << 11, kIOPL = 3ull << 12, kNT = 1ull << 14,
                          kRF = 1ull << 16, kVM = 1ull << 17, kAC = 1ull << 18,
                          kVIF = 1ull << 19, kVIP = 1ull << 20, kID = 1ull << 21;
inline constexpr uint64_t kArithFlags = kCF | kPF | kAF | kZF | kSF | kOF;

// The mode from CR0, EFER, RFLAGS and the code segment's L and D/B bits (SDM Vol. 3A 2.2).
constexpr CpuMode mode_of(uint64_t cr0, uint64_t efer, uint64_t rflags, bool cs_l, bool cs_db) {
  if (!(cr0 & kCr0Pe) || (rflags & kVM)) return CpuMode::kReal16;
  if (efer & kEferLma) {
    if (cs_l) return CpuMode::kLong64;
    return cs_db ? CpuMode::kCompat32 : CpuMode::kCompat16;
  }
  return cs_db ? CpuMode::kProtected32 : CpuMode::kProtected16;
}

// The CPL: 0 in real mode, 3 in virtual-8086 mode, else SS.DPL (SDM Vol. 3A 5.5). Not CS.RPL:
// between setting CR0.PE and the far jump, CS still holds a real-mode selector whose low bits
// are not a privilege level.
constexpr uint8_t cpl_of(uint64_t cr0, uint64_t rflags, uint8_t ss_dpl) {
  if (!(cr0 & kCr0Pe)) return 0;
  if (rflags & kVM) return 3;
  return ss_dpl & 3;
}

// 16-bit default operand size (real mode, 16-bit code segments), and 64-bit mode.
constexpr bool default16(CpuMode m) {
  return m == CpuMode::kReal16 || m == CpuMode::kProtected16 || m == CpuMode::kCompat16;
}
constexpr bool mode64(CpuMode m) { return m == CpuMode::kLong64; }

}  // namespace trapscope::x86
