// x86/classify.hpp — the Popek–Goldberg classifier: is an x86 instruction privileged,
// sensitive or innocuous, and why.
//
// [SECTION] Terms (Popek & Goldberg, "Formal Requirements for Virtualizable Third Generation
// Architectures", CACM 17(7), 1974)
//   privileged:          traps (here: #GP or #UD) when executed outside supervisor mode (CPL > 0)
//                        and does not trap at CPL 0;
//   control-sensitive:   can change the processor mode or the resources (CR0/CR3/CR4, descriptor
//                        tables, interrupt flag, I/O, MSRs, the CPL itself);
//   behaviour-sensitive: its result depends on the mode (the CPL, IOPL) or on where the
//                        resources really are (GDT/IDT base, TR, CR0 bits);
//   sensitive = control- or behaviour-sensitive; innocuous = not sensitive.
//   Theorem 1: a trap-and-emulate VMM can be built if sensitive ⊆ privileged.
//   Theorem 3: a hybrid VMM (supervisor code interpreted, user code run directly) can be built if
//   the user-sensitive instructions (sensitive when executed in user mode) ⊆ privileged.
//
// [SECTION] Classes here
//   PgClass::kPrivileged — privileged (and, on x86, every privileged instruction is also
//     sensitive). IOPL- and CR4-dependent instructions (cli/sti/in/out, rdtsc) are counted
//     privileged under the configuration a VMM chooses (IOPL 0, CR4.TSD = 1); the reason says so.
//   PgClass::kSensitive — sensitive but NOT privileged on classic x86 (before CR4.UMIP): the
//     instructions that break Theorem 1 (Robin & Irvine, USENIX Security 2000: sgdt, sidt, sldt,
//     smsw, str, pushf, popf, lar, lsl, verr, verw, push/pop Sreg, mov Sreg, far call/jmp/ret,
//     int n; plus iret, lds/les/lfs/lgs/lss, syscall and sysenter, which behave the same way).
//   PgClass::kInnocuous — neither.
//   Facts per instruction: Intel SDM Vol. 2 (the instruction's page), Vol. 3A 2.8 ("System
//   instruction summary"), 5.9 ("Privileged instructions"), 5.6 (segment loads), 19.5 / Vol. 1
//   (I/O privilege), 2.5 (CR4.TSD, CR4.UMIP).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "x86/insn.hpp"
#include "x86/mode.hpp"

namespace trapscope::x86 {

enum class PgClass : uint8_t { kInnocuous, kSensitive, kPrivileged };
std::string_view to_string(PgClass c);

struct Classification {
  PgClass cls = PgClass::kInnocuous;
  bool privileged = false;
  bool control_sensitive = false;
  bool behaviour_sensitive = false;
  bool user_sensitive = false;  // sensitive when executed in user mode (Theorem 3)
  std::string_view reason;      // one sentence with the SDM fact ("why")
};

// Classifies a decoded instruction. `bytes` are its encoding (needed to tell wbinvd/invd from
// the nops the simulator maps to the same Op). O(1), no allocation: the trap-and-emulate
// technique calls it for every instruction the guest kernel executes.
Classification classify(const Instruction& insn, std::span<const uint8_t> bytes);

// The same for an instruction outside the simulator's subset, by its Zydis mnemonic
// ("sysenter", "rdpmc", …).
Classification classify_mnemonic(std::string_view mnemonic);

// One instruction decoded from bytes and classified.
struct ClassifiedInstruction {
  bool ok = false;      // false: not a valid instruction in this mode (or no bytes)
  uint8_t length = 0;
  std::string text;     // Intel-syntax disassembly
  Classification c;
};
ClassifiedInstruction classify_bytes(std::span<const uint8_t> bytes, CpuMode mode,
                                     uint64_t address);

}  // namespace trapscope::x86
