#include "x86/classify.hpp"

#include "x86/decoder.hpp"
#include "x86/disasm.hpp"

namespace trapscope::x86 {
namespace {


constexpr Classification innocuous(std::string_view why) {
  return {PgClass::kInnocuous, false, false, false, false, why};
}
// Privileged: traps at CPL > 0; all of these are also sensitive (control or behaviour).
constexpr Classification privileged(std::string_view why, bool control = true) {
  return {PgClass::kPrivileged, true, control, !control, false, why};
}
// Sensitive but unprivileged: the holes in x86.
constexpr Classification hole(std::string_view why, bool control, bool behaviour, bool user) {
  return {PgClass::kSensitive, false, control, behaviour, user, why};
}

constexpr Classification kGeneral =
    innocuous("touches only general registers, flags and memory through the guest's own "
              "segments and pages: same result at any CPL");
constexpr Classification kNearBranch =
    innocuous("near control transfer within the current code segment: no privilege check");
constexpr Classification kStringIo = privileged(
    "IOPL-sensitive I/O: #GP when CPL > IOPL unless the TSS I/O bitmap allows the port (SDM "
    "Vol. 1 19.5); privileged under a VMM that sets IOPL 0 and an all-ones bitmap");
constexpr Classification kCliSti = privileged(
    "IOPL-sensitive: #GP(0) when CPL > IOPL (SDM Vol. 2 CLI/STI); privileged under a VMM that "
    "runs the guest with IOPL 0; changes IF (control-sensitive)");
constexpr Classification kWbinvd =
    privileged("wbinvd/invd: #GP(0) at CPL > 0 (SDM Vol. 3A 5.9); flushes the real caches");
constexpr Classification kSegLoad = hole(
    "loads a segment register: the descriptor's DPL is checked against the CPL and RPL (SDM Vol. "
    "3A 5.6), so whether it faults depends on the mode; does not trap at CPL > 0 "
    "(Robin & Irvine 2000)",
    true, true, false);
constexpr Classification kSegRead = hole(
    "reads a segment selector: the RPL of CS/SS is the real CPL (SDM Vol. 3A 5.5), so a "
    "deprivileged kernel sees it is not at CPL 0; does not trap (Robin & Irvine 2000)",
    false, true, false);
constexpr Classification kFar = hole(
    "far control transfer through a segment descriptor or gate: CPL/DPL/RPL checks and stack "
    "switches depend on the CPL (SDM Vol. 3A 5.8); does not trap at CPL > 0 (Robin & Irvine "
    "2000)",
    true, true, false);
constexpr Classification kSoftInt = hole(
    "software interrupt through the IDT: gate DPL checked against the CPL, may switch to CPL 0 "
    "(SDM Vol. 3A 6.12.1.1); does not trap to the VMM (Robin & Irvine 2000)",
    true, true, false);
constexpr Classification kStoreTable = hole(
    "stores a system register the VMM owns (GDTR/IDTR/LDTR/TR/MSW): shows where the real "
    "tables are (location-sensitive); unprivileged on x86 unless CR4.UMIP = 1 (SDM Vol. 3A 2.5, "
    "Robin & Irvine 2000)",
    false, true, true);
constexpr Classification kProbe = hole(
    "lar/lsl/verr/verw: the answer depends on the CPL and the descriptor's DPL (SDM Vol. 2), so "
    "a deprivileged kernel sees different rights; does not trap (Robin & Irvine 2000)",
    false, true, true);

Classification by_op(Op op) {
  switch (op) {
    case Op::kPushf:
      return hole("pushf: pushes the real IF and IOPL (SDM Vol. 2 PUSHF), not the virtual ones; "
                  "does not trap (Robin & Irvine 2000)",
                  false, true, true);
    case Op::kPopf:
      return hole("popf: at CPL > IOPL a change of IF is silently ignored, and IOPL changes only "
                  "at CPL 0 (SDM Vol. 2 POPF): no trap, the VMM never sees the guest's IF",
                  true, true, false);
    case Op::kMovToSeg:
    case Op::kLoadFarPointer:
      return kSegLoad;
    case Op::kMovFromSeg:
      return kSegRead;
    case Op::kJmpFar:
    case Op::kCallFar:
    case Op::kRetFar:
      return kFar;
    case Op::kIret:
      return hole("iret: changes CPL, IF and IOPL only as far as the CPL allows (SDM Vol. 2 IRET): "
                  "at CPL > 0 IF/IOPL changes are ignored silently; does not trap",
                  true, true, false);
    case Op::kInt:
    case Op::kInt3:
    case Op::kInto:
      return kSoftInt;
    case Op::kSyscall:
      return hole("syscall: switches to CPL 0 at the MSR-defined entry (SDM Vol. 2 SYSCALL), "
                  "control-sensitive but never traps",
                  true, false, false);
    case Op::kSgdt:
    case Op::kSidt:
    case Op::kSldt:
    case Op::kStr:
    case Op::kSmsw:
      return kStoreTable;
    case Op::kLar:
    case Op::kLsl:
    case Op::kVerr:
    case Op::kVerw:
      return kProbe;
    case Op::kLgdt:
    case Op::kLidt:
    case Op::kLldt:
    case Op::kLtr:
      return privileged("loads a descriptor-table register: #GP(0) at CPL > 0 (SDM Vol. 3A 5.9)");
    case Op::kLmsw:
    case Op::kClts:
      return privileged("writes CR0: #GP(0) at CPL > 0 (SDM Vol. 3A 5.9)");
    case Op::kMovCr:
      return privileged("mov to/from a control register: #GP(0) at CPL > 0 (SDM Vol. 3A 5.9)");
    case Op::kMovDr:
      return privileged("mov to/from a debug register: #GP(0) at CPL > 0 (SDM Vol. 3A 5.9)");
    case Op::kInvlpg:
      return privileged("invlpg: #GP(0) at CPL > 0 (SDM Vol. 3A 5.9); controls the TLB");
    case Op::kRdmsr:
    case Op::kWrmsr:
      return privileged("rdmsr/wrmsr: #GP(0) at CPL > 0 (SDM Vol. 3A 5.9)");
    case Op::kHlt:
      return privileged("hlt: #GP(0) at CPL > 0 (SDM Vol. 3A 5.9); stops the processor");
    case Op::kSwapgs:
      return privileged("swapgs: #GP(0) at CPL > 0 (SDM Vol. 2 SWAPGS)");
    case Op::kSysret:
      return privileged("sysret: #GP(0) at CPL > 0 (SDM Vol. 2 SYSRET); changes the CPL");
    case Op::kCli:
    case Op::kSti:
      return kCliSti;
    case Op::kIn:
    case Op::kOut:
    case Op::kIns:
    case Op::kOuts:
      return kStringIo;
    case Op::kRdtsc:
      return privileged("rdtsc: #GP(0) at CPL > 0 when CR4.TSD = 1 (SDM Vol. 2 RDTSC), which a "
                        "VMM sets to virtualize time; else it reads the real counter",
                        false);
    case Op::kCpuid:
      return innocuous("cpuid: never traps on classic x86 and changes nothing (identification "
                       "only); VT-x makes it an unconditional VM exit (SDM Vol. 3C 25.1.2)");
    case Op::kUd:
      return innocuous("ud0/ud1/ud2: #UD at every CPL; the guest's own IDT handles it");
    case Op::kJmp: case Op::kJcc: case Op::kCall: case Op::kRet: case Op::kJcxz:
    case Op::kLoop: case Op::kLoope: case Op::kLoopne:
      return kNearBranch;
    default:
      return kGeneral;
  }
}

// The opcode after legacy and REX prefixes (0 if none is left).
std::span<const uint8_t> skip_prefixes(std::span<const uint8_t> b) {
  size_t i = 0;
  while (i < b.size()) {
    const uint8_t x = b[i];
    const bool legacy = x == 0x66 || x == 0x67 || x == 0xF0 || x == 0xF2 || x == 0xF3 ||
                        x == 0x2E || x == 0x36 || x == 0x3E || x == 0x26 || x == 0x64 ||
                        x == 0x65;
    if (!legacy && (x & 0xF0) != 0x40) break;  // REX bytes decode as prefixes only in 64-bit
    ++i;                                       // mode; elsewhere 0x40..0x4F are not kNop
  }
  return b.subspan(i);
}

}  // namespace

std::string_view to_string(PgClass c) {
  switch (c) {
    case PgClass::kInnocuous: return "innocuous";
    case PgClass::kSensitive: return "sensitive";
    case PgClass::kPrivileged: return "privileged";
  }
  return "?";
}

Classification classify(const Instruction& insn, std::span<const uint8_t> bytes) {
  if (insn.op == Op::kNop) {
    const auto op = skip_prefixes(bytes);
    if (op.size() >= 2 && op[0] == 0x0F && (op[1] == 0x08 || op[1] == 0x09)) return kWbinvd;
    return innocuous("no operation (nop, pause, endbr): changes nothing");
  }
  if (insn.op == Op::kPush || insn.op == Op::kPop) {
    if (insn.operand_count > 0 && insn.ops[0].kind == OperandKind::kReg &&
        insn.ops[0].reg_class == RegClass::kSeg) {
      return insn.op == Op::kPush ? kSegRead : kSegLoad;
    }
  }
  return by_op(insn.op);
}

Classification classify_mnemonic(std::string_view m) {
  if (m == "sysenter") {
    return hole("sysenter: switches to CPL 0 at the MSR-defined entry (SDM Vol. 2 SYSENTER); "
                "control-sensitive but never traps",
                true, false, false);
  }
  if (m == "sysexit") return privileged("sysexit: #GP(0) at CPL > 0 (SDM Vol. 2 SYSEXIT)");
  if (m == "rdpmc") {
    return privileged("rdpmc: #GP(0) at CPL > 0 unless CR4.PCE = 1 (SDM Vol. 2 RDPMC)", false);
  }
  if (m == "rdtscp") {
    return privileged("rdtscp: #GP(0) at CPL > 0 when CR4.TSD = 1 (SDM Vol. 2 RDTSCP)", false);
  }
  if (m == "monitor" || m == "mwait") {
    return privileged("monitor/mwait: #UD at CPL > 0 unless enabled by the OS (SDM Vol. 2)");
  }
  if (m == "xsetbv") return privileged("xsetbv: #GP(0) at CPL > 0 (SDM Vol. 2 XSETBV)");
  if (m == "clac" || m == "stac") {
    return privileged("clac/stac: #UD at CPL > 0 (SDM Vol. 2); changes RFLAGS.AC");
  }
  if (m == "rsm") return privileged("rsm: #UD outside system-management mode (SDM Vol. 2 RSM)");
  if (m == "vmcall" || m == "vmlaunch" || m == "vmresume" || m == "vmxon" || m == "vmxoff" ||
      m == "vmptrld" || m == "vmptrst" || m == "vmclear" || m == "vmread" || m == "vmwrite" ||
      m == "invept" || m == "invvpid") {
    return privileged("VMX instruction: #UD outside VMX operation, #GP(0) at CPL > 0 "
                      "(SDM Vol. 3C 30)");
  }
  if (m == "invpcid" || m == "wbnoinvd" || m == "lmsw" || m == "clts") {
    return privileged("#GP(0) at CPL > 0 (SDM Vol. 3A 5.9)");
  }
  return innocuous("outside the simulator's subset and not a system instruction: no access to "
                   "state a VMM must control");
}

ClassifiedInstruction classify_bytes(std::span<const uint8_t> bytes, CpuMode mode,
                                     uint64_t address) {
  ClassifiedInstruction out;
  if (bytes.empty()) {
    out.text = "(no bytes)";
    return out;
  }
  const Disassembly d = disassemble(bytes, mode, address);
  out.text = d.text;
  if (!d.ok) return out;
  out.ok = true;
  out.length = d.length;
  Instruction insn;
  if (decode(bytes.first(d.length), mode, &insn) == DecodeStatus::kOk &&
      insn.op != Op::kUnsupported) {
    out.c = classify(insn, bytes.first(d.length));
  } else {
    out.c = classify_mnemonic(std::string_view(d.text).substr(0, d.text.find(' ')));
  }
  return out;
}

}  // namespace trapscope::x86
