// x86/vmx.hpp — VT-x facts the VT-x model, the printers and the views share: the basic exit
// reasons and the decoding of the exit qualification and the VM-exit instruction-information
// field. Written once here; trace/printer.cpp (`run` output, JSON), the visualizer's details pane
// and exit statistics call these functions.
//
// Sources (Intel SDM, Vol. 3C, in the edition that numbers the VMX chapters 25–29, Dec. 2023 on;
// older editions number the same tables one chapter lower, e.g. 27-3 for 28-3):
//   Appendix C, table C-1 "Basic Exit Reasons".
//   28.2.1 "Basic VM-Exit Information": table 28-1 debug exceptions, 28-2 task switches, 28-3
//     control-register accesses, 28-4 MOV DR, 28-5 I/O instructions, 28-7 EPT violations; for
//     INVLPG the linear address of the operand; for #PF (exception bitmap) the faulting linear
//     address; for LGDT/LIDT/LLDT/LTR/SGDT/SIDT/SLDT/STR the instruction's displacement.
//   28.2.5 "Information for VM Exits Due to Instruction Execution": table 28-10 (VM-exit
//     instruction information for LIDT, LGDT, SIDT, SGDT) and 28-11 (LLDT, LTR, SLDT, STR):
//     bits 29:28 the instruction identity.
//   25.9.2 VM-exit interruption information: bit 31 valid, 10:8 type, 11 error code valid, 7:0
//     vector.
// docs/references.md copies these facts.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace trapscope::x86 {

// Basic exit reasons (SDM Vol. 3C Appendix C) used by name in this project.
enum class VmxExit : uint32_t {
  kExceptionOrNmi = 0,
  kTripleFault = 2,
  kInterruptWindow = 7,
  kTaskSwitch = 9,
  kCpuid = 10,
  kHlt = 12,
  kInvd = 13,
  kInvlpg = 14,
  kRdtsc = 16,
  kCrAccess = 28,
  kDrAccess = 29,
  kIoInstruction = 30,
  kRdmsr = 31,
  kWrmsr = 32,
  kGdtrIdtrAccess = 46,
  kLdtrTrAccess = 47,
  kEptViolation = 48,
  kWbinvd = 54,
};
inline constexpr uint32_t kVmxExitReasons = 70;  // 0..69 are defined (69 LOADIWKEY)

// Linux's short names (arch/x86/include/uapi/asm/vmx.h EXIT_REASON_*): "CR_ACCESS",
// "IO_INSTRUCTION", "GDTR_IDTR", …; "?" for a number the SDM leaves unused or beyond the table.
std::string_view vmx_exit_reason_name(uint32_t reason);
// The SDM's own words: "Control-register accesses", "I/O instruction", "Access to GDTR or
// IDTR", …; "" for an unused number.
std::string_view vmx_exit_reason_title(uint32_t reason);

// One decoded field of an exit qualification: the SDM's name for the bits and their value.
struct VmxField {
  std::string bits;   // "3:0", "5:4", "31:16"
  std::string name;   // "number of control register", "access type", …
  std::string value;  // "3 (CR3)", "0 = MOV to CR", …
};

// The exit qualification of an exit of basic reason `reason`, field by field, per the table
// the SDM gives for that reason; `info` is the VM-exit instruction-information field for
// reasons 46 and 47 (else unused). Empty for reasons whose qualification is undefined (0).
std::vector<VmxField> decode_exit_qualification(uint32_t reason, uint64_t qualification,
                                                uint32_t info = 0);
// The same in one phrase: "MOV to CR3 from RAX", "OUT 1 byte to port 0xe9 (immediate)",
// "SGDT", "linear address 0x7000"; "" when the qualification says nothing for the reason.
std::string exit_qualification_text(uint32_t reason, uint64_t qualification, uint32_t info = 0);

// The VM-exit instruction-information field of a descriptor-table exit (tables 28-10, 28-11):
// bits 29:28 the instruction identity. For 46: 0 SGDT, 1 SIDT, 2 LGDT, 3 LIDT; for 47: 0 SLDT,
// 1 STR, 2 LLDT, 3 LTR. Only the identity is modelled (the operand fields are left 0).
constexpr uint32_t descriptor_table_info(unsigned identity) { return (identity & 3u) << 28; }
std::string_view descriptor_table_instruction(uint32_t reason, uint32_t info);  // "SGDT", …

// 64-bit general-purpose register names by number (the encoding the qualifications use):
// "RAX", "RCX", … "R15".
std::string_view gpr_name(unsigned number);

}  // namespace trapscope::x86
