#include "x86/vmx.hpp"

#include <fmt/format.h>

#include <iterator>

namespace trapscope::x86 {
namespace {

struct Reason {
  std::string_view name;   // Linux EXIT_REASON_<name>
  std::string_view title;  // SDM Vol. 3C table C-1
};
// SDM Vol. 3C Appendix C, table C-1; 35, 38 and 42 are not used.
constexpr Reason kReasons[kVmxExitReasons] = {
    {"EXCEPTION_NMI", "Exception or non-maskable interrupt (NMI)"},
    {"EXTERNAL_INTERRUPT", "External interrupt"},
    {"TRIPLE_FAULT", "Triple fault"},
    {"INIT_SIGNAL", "INIT signal"},
    {"SIPI_SIGNAL", "Start-up IPI (SIPI)"},
    {"IO_SMI", "I/O system-management interrupt (SMI)"},
    {"OTHER_SMI", "Other SMI"},
    {"INTERRUPT_WINDOW", "Interrupt window"},
    {"NMI_WINDOW", "NMI window"},
    {"TASK_SWITCH", "Task switch"},
    {"CPUID", "CPUID"},
    {"GETSEC", "GETSEC"},
    {"HLT", "HLT"},
    {"INVD", "INVD"},
    {"INVLPG", "INVLPG"},
    {"RDPMC", "RDPMC"},
    {"RDTSC", "RDTSC"},
    {"RSM", "RSM"},
    {"VMCALL", "VMCALL"},
    {"VMCLEAR", "VMCLEAR"},
    {"VMLAUNCH", "VMLAUNCH"},
    {"VMPTRLD", "VMPTRLD"},
    {"VMPTRST", "VMPTRST"},
    {"VMREAD", "VMREAD"},
    {"VMRESUME", "VMRESUME"},
    {"VMWRITE", "VMWRITE"},
    {"VMOFF", "VMXOFF"},
    {"VMON", "VMXON"},
    {"CR_ACCESS", "Control-register accesses"},
    {"DR_ACCESS", "MOV DR"},
    {"IO_INSTRUCTION", "I/O instruction"},
    {"MSR_READ", "RDMSR"},
    {"MSR_WRITE", "WRMSR"},
    {"INVALID_STATE", "VM-entry failure due to invalid guest state"},
    {"MSR_LOAD_FAIL", "VM-entry failure due to MSR loading"},
    {"?", ""},
    {"MWAIT_INSTRUCTION", "MWAIT"},
    {"MONITOR_TRAP_FLAG", "Monitor trap flag"},
    {"?", ""},
    {"MONITOR_INSTRUCTION", "MONITOR"},
    {"PAUSE_INSTRUCTION", "PAUSE"},
    {"MCE_DURING_VMENTRY", "VM-entry failure due to machine-check event"},
    {"?", ""},
    {"TPR_BELOW_THRESHOLD", "TPR below threshold"},
    {"APIC_ACCESS", "APIC access"},
    {"EOI_INDUCED", "Virtualized EOI"},
    {"GDTR_IDTR", "Access to GDTR or IDTR"},
    {"LDTR_TR", "Access to LDTR or TR"},
    {"EPT_VIOLATION", "EPT violation"},
    {"EPT_MISCONFIG", "EPT misconfiguration"},
    {"INVEPT", "INVEPT"},
    {"RDTSCP", "RDTSCP"},
    {"PREEMPTION_TIMER", "VMX-preemption timer expired"},
    {"INVVPID", "INVVPID"},
    {"WBINVD", "WBINVD or WBNOINVD"},
    {"XSETBV", "XSETBV"},
    {"APIC_WRITE", "APIC write"},
    {"RDRAND", "RDRAND"},
    {"INVPCID", "INVPCID"},
    {"VMFUNC", "VMFUNC"},
    {"ENCLS", "ENCLS"},
    {"RDSEED", "RDSEED"},
    {"PML_FULL", "Page-modification log full"},
    {"XSAVES", "XSAVES"},
    {"XRSTORS", "XRSTORS"},
    {"PCONFIG", "PCONFIG"},
    {"SPP_EVENT", "SPP-related event"},
    {"UMWAIT", "UMWAIT"},
    {"TPAUSE", "TPAUSE"},
    {"LOADIWKEY", "LOADIWKEY"},
};

uint64_t bits(uint64_t v, unsigned hi, unsigned lo) {
  return (v >> lo) & ((uint64_t{1} << (hi - lo + 1)) - 1);
}

std::string flag(uint64_t v, unsigned bit) { return bits(v, bit, bit) ? "1" : "0"; }

// Table 28-3: bits 5:4.
constexpr std::string_view kCrAccessType[] = {"MOV to CR", "MOV from CR", "CLTS", "LMSW"};
// Table 28-2: bits 31:30.
constexpr std::string_view kTaskSwitchSource[] = {"CALL instruction", "IRET instruction",
                                                   "JMP instruction", "task gate in IDT"};

}  // namespace

std::string_view vmx_exit_reason_name(uint32_t reason) {
  return reason < kVmxExitReasons ? kReasons[reason].name : "?";
}

std::string_view vmx_exit_reason_title(uint32_t reason) {
  return reason < kVmxExitReasons ? kReasons[reason].title : "";
}

std::string_view gpr_name(unsigned n) {
  static constexpr std::string_view kNames[] = {"RAX", "RCX", "RDX", "RBX", "RSP", "RBP",
                                                "RSI", "RDI", "R8",  "R9",  "R10", "R11",
                                                "R12", "R13", "R14", "R15"};
  return kNames[n & 15];
}

std::string_view descriptor_table_instruction(uint32_t reason, uint32_t info) {
  static constexpr std::string_view kGdtIdt[] = {"SGDT", "SIDT", "LGDT", "LIDT"};
  static constexpr std::string_view kLdtTr[] = {"SLDT", "STR", "LLDT", "LTR"};
  const unsigned id = (info >> 28) & 3;
  if (reason == static_cast<uint32_t>(VmxExit::kGdtrIdtrAccess)) return kGdtIdt[id];
  if (reason == static_cast<uint32_t>(VmxExit::kLdtrTrAccess)) return kLdtTr[id];
  return "?";
}

std::vector<VmxField> decode_exit_qualification(uint32_t reason, uint64_t q, uint32_t info) {
  std::vector<VmxField> f;
  switch (static_cast<VmxExit>(reason)) {
    case VmxExit::kCrAccess: {  // table 28-3
      const unsigned type = static_cast<unsigned>(bits(q, 5, 4));
      f.push_back({"3:0", "number of control register", fmt::format("{} (CR{})", bits(q, 3, 0), bits(q, 3, 0))});
      f.push_back({"5:4", "access type", fmt::format("{} = {}", type, kCrAccessType[type])});
      f.push_back({"6", "LMSW operand type", bits(q, 6, 6) ? "1 = memory" : "0 = register"});
      f.push_back({"11:8", "general-purpose register",
                   type <= 1 ? fmt::format("{} ({})", bits(q, 11, 8), gpr_name(bits(q, 11, 8) & 15))
                             : "0 (not used for CLTS and LMSW)"});
      f.push_back({"31:16", "LMSW source data",
                   type == 3 ? fmt::format("{:#x}", bits(q, 31, 16)) : "0 (LMSW only)"});
      break;
    }
    case VmxExit::kIoInstruction: {  // table 28-5
      const unsigned size = static_cast<unsigned>(bits(q, 2, 0));
      f.push_back({"2:0", "size of access",
                   fmt::format("{} = {} byte{}", size, size + 1, size ? "s" : "")});
      f.push_back({"3", "direction of the attempted access", bits(q, 3, 3) ? "1 = IN" : "0 = OUT"});
      f.push_back({"4", "string instruction", flag(q, 4)});
      f.push_back({"5", "REP prefixed", flag(q, 5)});
      f.push_back({"6", "operand encoding", bits(q, 6, 6) ? "1 = immediate" : "0 = DX"});
      f.push_back({"31:16", "port number", fmt::format("{:#x}", bits(q, 31, 16))});
      break;
    }
    case VmxExit::kDrAccess: {  // table 28-4
      f.push_back({"2:0", "number of debug register", fmt::format("{} (DR{})", bits(q, 2, 0), bits(q, 2, 0))});
      f.push_back({"4", "direction of access", bits(q, 4, 4) ? "1 = MOV from DR" : "0 = MOV to DR"});
      f.push_back({"11:8", "general-purpose register",
                   fmt::format("{} ({})", bits(q, 11, 8), gpr_name(bits(q, 11, 8) & 15))});
      break;
    }
    case VmxExit::kTaskSwitch: {  // table 28-2
      f.push_back({"15:0", "selector of task-state segment", fmt::format("{:#x}", bits(q, 15, 0))});
      const unsigned src = static_cast<unsigned>(bits(q, 31, 30));
      f.push_back({"31:30", "source of task switch initiation",
                   fmt::format("{} = {}", src, kTaskSwitchSource[src])});
      break;
    }
    case VmxExit::kEptViolation: {  // table 28-7
      f.push_back({"0", "data read", flag(q, 0)});
      f.push_back({"1", "data write", flag(q, 1)});
      f.push_back({"2", "instruction fetch", flag(q, 2)});
      f.push_back({"3", "readable (AND of the EPT entries' bit 0)", flag(q, 3)});
      f.push_back({"4", "writable (AND of bit 1)", flag(q, 4)});
      f.push_back({"5", "executable (AND of bit 2)", flag(q, 5)});
      f.push_back({"7", "guest linear-address field valid", flag(q, 7)});
      if (bits(q, 7, 7)) {
        f.push_back({"8", "access to", bits(q, 8, 8) ? "1 = the translated linear address"
                                                       : "0 = a guest paging-structure entry"});
      }
      f.push_back({"12", "NMI unblocking due to IRET", flag(q, 12)});
      break;
    }
    case VmxExit::kInvlpg:
      f.push_back({"63:0", "linear address of the operand", fmt::format("{:#x}", q)});
      break;
    case VmxExit::kExceptionOrNmi:
      // #PF: the faulting linear address; #DB: as table 28-1; others: 0 (28.2.1).
      if ((info & 0xFF) == 14) {
        f.push_back({"63:0", "faulting linear address (CR2 to be)", fmt::format("{:#x}", q)});
      } else if ((info & 0xFF) == 1) {
        f.push_back({"3:0", "B3–B0 (breakpoint conditions met)", fmt::format("{:#x}", bits(q, 3, 0))});
        f.push_back({"13", "BD (debug-register access detected)", flag(q, 13)});
        f.push_back({"14", "BS (single instruction)", flag(q, 14)});
      }
      break;
    case VmxExit::kGdtrIdtrAccess:
    case VmxExit::kLdtrTrAccess:
      f.push_back({"63:0", "displacement of the memory operand", fmt::format("{:#x}", q)});
      f.push_back({"29:28 (instruction information)", "instruction identity",
                   fmt::format("{} = {}", (info >> 28) & 3, descriptor_table_instruction(reason, info))});
      break;
    default:
      break;  // CPUID, HLT, RDTSC, RDMSR, …: the qualification is undefined (0)
  }
  return f;
}

std::string exit_qualification_text(uint32_t reason, uint64_t q, uint32_t info) {
  switch (static_cast<VmxExit>(reason)) {
    case VmxExit::kCrAccess: {
      const unsigned cr = static_cast<unsigned>(bits(q, 3, 0));
      switch (bits(q, 5, 4)) {
        case 0: return fmt::format("MOV to CR{} from {}", cr, gpr_name(bits(q, 11, 8) & 15));
        case 1: return fmt::format("MOV from CR{} to {}", cr, gpr_name(bits(q, 11, 8) & 15));
        case 2: return "CLTS";
        default: return fmt::format("LMSW {:#x}", bits(q, 31, 16));
      }
    }
    case VmxExit::kIoInstruction: {
      const unsigned size = static_cast<unsigned>(bits(q, 2, 0)) + 1;
      std::string s = bits(q, 3, 3) ? "IN" : "OUT";
      if (bits(q, 4, 4)) s += "S";
      if (bits(q, 5, 5)) s = "REP " + s;
      return s + fmt::format(" {} byte{} {} port {:#x}{}", size, size > 1 ? "s" : "",
                             bits(q, 3, 3) ? "from" : "to", bits(q, 31, 16),
                             bits(q, 6, 6) ? " (immediate)" : " (DX)");
    }
    case VmxExit::kDrAccess:
      return fmt::format("MOV {} DR{} {} {}", bits(q, 4, 4) ? "from" : "to", bits(q, 2, 0),
                         bits(q, 4, 4) ? "to" : "from", gpr_name(bits(q, 11, 8) & 15));
    case VmxExit::kTaskSwitch:
      return fmt::format("task switch to TSS {:#x} by {}", bits(q, 15, 0),
                         kTaskSwitchSource[bits(q, 31, 30)]);
    case VmxExit::kEptViolation: {
      std::string s;
      auto add = [&](const std::string& part) { s += (s.empty() ? "" : ", ") + part; };
      if (q & 1) add("data read");
      if (q & 2) add("data write");
      if (q & 4) add("instruction fetch");
      add((q & 0x38) ? std::string("EPT allowed ") + ((q & 8) ? "R" : "") + ((q & 16) ? "W" : "") +
                           ((q & 32) ? "X" : "")
                     : std::string("EPT entry not present"));
      if (q & 0x80) {
        add("guest-linear address valid");
        add((q & 0x100) ? "access to the translated address"
                        : "access to a guest paging-structure entry");
      }
      return s;
    }
    case VmxExit::kInvlpg:
      return fmt::format("INVLPG linear address {:#x}", q);
    case VmxExit::kExceptionOrNmi:
      if ((info & 0xFF) == 14) return fmt::format("#PF at linear address {:#x}", q);
      return "";
    case VmxExit::kGdtrIdtrAccess:
    case VmxExit::kLdtrTrAccess:
      return std::string(descriptor_table_instruction(reason, info)) +
             fmt::format(", displacement {:#x}", q);
    default:
      return "";
  }
}

}  // namespace trapscope::x86
