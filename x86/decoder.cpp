#include "x86/decoder.hpp"

#include <Zydis/Zydis.h>

namespace trapscope::x86 {
namespace {


struct Decoders {
  ZydisDecoder real16, legacy16, legacy32, compat16, compat32, long64;
  Decoders() {
    ZydisDecoderInit(&real16, ZYDIS_MACHINE_MODE_REAL_16, ZYDIS_STACK_WIDTH_16);
    ZydisDecoderInit(&legacy16, ZYDIS_MACHINE_MODE_LEGACY_16, ZYDIS_STACK_WIDTH_16);
    ZydisDecoderInit(&legacy32, ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32);
    ZydisDecoderInit(&compat16, ZYDIS_MACHINE_MODE_LONG_COMPAT_16, ZYDIS_STACK_WIDTH_16);
    ZydisDecoderInit(&compat32, ZYDIS_MACHINE_MODE_LONG_COMPAT_32, ZYDIS_STACK_WIDTH_32);
    ZydisDecoderInit(&long64, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  }
  const ZydisDecoder* get(CpuMode m) const {
    switch (m) {
      case CpuMode::kReal16: return &real16;
      case CpuMode::kProtected16: return &legacy16;
      case CpuMode::kProtected32: return &legacy32;
      case CpuMode::kCompat16: return &compat16;
      case CpuMode::kCompat32: return &compat32;
      default: return &long64;
    }
  }
};

// Condition codes in SDM Vol. 1 B.1 order: O NO B NB Z NZ BE NBE S NS P NP L NL LE NLE.
int condition(ZydisMnemonic m) {
  switch (m) {
    case ZYDIS_MNEMONIC_JO: case ZYDIS_MNEMONIC_CMOVO: case ZYDIS_MNEMONIC_SETO: return 0;
    case ZYDIS_MNEMONIC_JNO: case ZYDIS_MNEMONIC_CMOVNO: case ZYDIS_MNEMONIC_SETNO: return 1;
    case ZYDIS_MNEMONIC_JB: case ZYDIS_MNEMONIC_CMOVB: case ZYDIS_MNEMONIC_SETB: return 2;
    case ZYDIS_MNEMONIC_JNB: case ZYDIS_MNEMONIC_CMOVNB: case ZYDIS_MNEMONIC_SETNB: return 3;
    case ZYDIS_MNEMONIC_JZ: case ZYDIS_MNEMONIC_CMOVZ: case ZYDIS_MNEMONIC_SETZ: return 4;
    case ZYDIS_MNEMONIC_JNZ: case ZYDIS_MNEMONIC_CMOVNZ: case ZYDIS_MNEMONIC_SETNZ: return 5;
    case ZYDIS_MNEMONIC_JBE: case ZYDIS_MNEMONIC_CMOVBE: case ZYDIS_MNEMONIC_SETBE: return 6;
    case ZYDIS_MNEMONIC_JNBE: case ZYDIS_MNEMONIC_CMOVNBE: case ZYDIS_MNEMONIC_SETNBE: return 7;
    case ZYDIS_MNEMONIC_JS: case ZYDIS_MNEMONIC_CMOVS: case ZYDIS_MNEMONIC_SETS: return 8;
    case ZYDIS_MNEMONIC_JNS: case ZYDIS_MNEMONIC_CMOVNS: case ZYDIS_MNEMONIC_SETNS: return 9;
    case ZYDIS_MNEMONIC_JP: case ZYDIS_MNEMONIC_CMOVP: case ZYDIS_MNEMONIC_SETP: return 10;
    case ZYDIS_MNEMONIC_JNP: case ZYDIS_MNEMONIC_CMOVNP: case ZYDIS_MNEMONIC_SETNP: return 11;
    case ZYDIS_MNEMONIC_JL: case ZYDIS_MNEMONIC_CMOVL: case ZYDIS_MNEMONIC_SETL: return 12;
    case ZYDIS_MNEMONIC_JNL: case ZYDIS_MNEMONIC_CMOVNL: case ZYDIS_MNEMONIC_SETNL: return 13;
    case ZYDIS_MNEMONIC_JLE: case ZYDIS_MNEMONIC_CMOVLE: case ZYDIS_MNEMONIC_SETLE: return 14;
    case ZYDIS_MNEMONIC_JNLE: case ZYDIS_MNEMONIC_CMOVNLE: case ZYDIS_MNEMONIC_SETNLE: return 15;
    default: return -1;
  }
}

Op map_mnemonic(const ZydisDecodedInstruction& in, uint8_t* cc) {
  const ZydisMnemonic m = in.mnemonic;
  const int c = condition(m);
  if (c >= 0) {
    *cc = static_cast<uint8_t>(c);
    switch (m) {
      case ZYDIS_MNEMONIC_CMOVO: case ZYDIS_MNEMONIC_CMOVNO: case ZYDIS_MNEMONIC_CMOVB:
      case ZYDIS_MNEMONIC_CMOVNB: case ZYDIS_MNEMONIC_CMOVZ: case ZYDIS_MNEMONIC_CMOVNZ:
      case ZYDIS_MNEMONIC_CMOVBE: case ZYDIS_MNEMONIC_CMOVNBE: case ZYDIS_MNEMONIC_CMOVS:
      case ZYDIS_MNEMONIC_CMOVNS: case ZYDIS_MNEMONIC_CMOVP: case ZYDIS_MNEMONIC_CMOVNP:
      case ZYDIS_MNEMONIC_CMOVL: case ZYDIS_MNEMONIC_CMOVNL: case ZYDIS_MNEMONIC_CMOVLE:
      case ZYDIS_MNEMONIC_CMOVNLE: return Op::kCmovcc;
      case ZYDIS_MNEMONIC_SETO: case ZYDIS_MNEMONIC_SETNO: case ZYDIS_MNEMONIC_SETB:
      case ZYDIS_MNEMONIC_SETNB: case ZYDIS_MNEMONIC_SETZ: case ZYDIS_MNEMONIC_SETNZ:
      case ZYDIS_MNEMONIC_SETBE: case ZYDIS_MNEMONIC_SETNBE: case ZYDIS_MNEMONIC_SETS:
      case ZYDIS_MNEMONIC_SETNS: case ZYDIS_MNEMONIC_SETP: case ZYDIS_MNEMONIC_SETNP:
      case ZYDIS_MNEMONIC_SETL: case ZYDIS_MNEMONIC_SETNL: case ZYDIS_MNEMONIC_SETLE:
      case ZYDIS_MNEMONIC_SETNLE: return Op::kSetcc;
      default: return Op::kJcc;
    }
  }
  const bool far = in.meta.branch_type == ZYDIS_BRANCH_TYPE_FAR;
  switch (m) {
    case ZYDIS_MNEMONIC_MOV: return Op::kMov;  // CR/DR/Sreg forms are fixed up by operands
    case ZYDIS_MNEMONIC_MOVZX: return Op::kMovzx;
    case ZYDIS_MNEMONIC_MOVSX: return Op::kMovsx;
    case ZYDIS_MNEMONIC_MOVSXD: return Op::kMovsxd;
    case ZYDIS_MNEMONIC_LEA: return Op::kLea;
    case ZYDIS_MNEMONIC_XCHG: return Op::kXchg;
    case ZYDIS_MNEMONIC_CMPXCHG: return Op::kCmpxchg;
    case ZYDIS_MNEMONIC_XADD: return Op::kXadd;
    case ZYDIS_MNEMONIC_BSWAP: return Op::kBswap;
    case ZYDIS_MNEMONIC_CBW: case ZYDIS_MNEMONIC_CWDE: case ZYDIS_MNEMONIC_CDQE: return Op::kCbw;
    case ZYDIS_MNEMONIC_CWD: case ZYDIS_MNEMONIC_CDQ: case ZYDIS_MNEMONIC_CQO: return Op::kCwd;
    case ZYDIS_MNEMONIC_NOP: case ZYDIS_MNEMONIC_PAUSE: case ZYDIS_MNEMONIC_WBINVD:
    case ZYDIS_MNEMONIC_INVD: case ZYDIS_MNEMONIC_ENDBR64: case ZYDIS_MNEMONIC_ENDBR32:
      return Op::kNop;
    case ZYDIS_MNEMONIC_PUSH: return Op::kPush;
    case ZYDIS_MNEMONIC_POP: return Op::kPop;
    case ZYDIS_MNEMONIC_PUSHF: case ZYDIS_MNEMONIC_PUSHFD: case ZYDIS_MNEMONIC_PUSHFQ:
      return Op::kPushf;
    case ZYDIS_MNEMONIC_POPF: case ZYDIS_MNEMONIC_POPFD: case ZYDIS_MNEMONIC_POPFQ:
      return Op::kPopf;
    case ZYDIS_MNEMONIC_PUSHA: case ZYDIS_MNEMONIC_PUSHAD: return Op::kPusha;
    case ZYDIS_MNEMONIC_POPA: case ZYDIS_MNEMONIC_POPAD: return Op::kPopa;
    case ZYDIS_MNEMONIC_LEAVE: return Op::kLeave;
    case ZYDIS_MNEMONIC_LAHF: return Op::kLahf;
    case ZYDIS_MNEMONIC_SAHF: return Op::kSahf;
    case ZYDIS_MNEMONIC_XLAT: return Op::kXlat;
    case ZYDIS_MNEMONIC_ADD: return Op::kAdd;
    case ZYDIS_MNEMONIC_ADC: return Op::kAdc;
    case ZYDIS_MNEMONIC_SUB: return Op::kSub;
    case ZYDIS_MNEMONIC_SBB: return Op::kSbb;
    case ZYDIS_MNEMONIC_AND: return Op::kAnd;
    case ZYDIS_MNEMONIC_OR: return Op::kOr;
    case ZYDIS_MNEMONIC_XOR: return Op::kXor;
    case ZYDIS_MNEMONIC_CMP: return Op::kCmp;
    case ZYDIS_MNEMONIC_TEST: return Op::kTest;
    case ZYDIS_MNEMONIC_INC: return Op::kInc;
    case ZYDIS_MNEMONIC_DEC: return Op::kDec;
    case ZYDIS_MNEMONIC_NEG: return Op::kNeg;
    case ZYDIS_MNEMONIC_NOT: return Op::kNot;
    case ZYDIS_MNEMONIC_SHL: return Op::kShl;
    case ZYDIS_MNEMONIC_SHR: return Op::kShr;
    case ZYDIS_MNEMONIC_SAR: return Op::kSar;
    case ZYDIS_MNEMONIC_ROL: return Op::kRol;
    case ZYDIS_MNEMONIC_ROR: return Op::kRor;
    case ZYDIS_MNEMONIC_RCL: return Op::kRcl;
    case ZYDIS_MNEMONIC_RCR: return Op::kRcr;
    case ZYDIS_MNEMONIC_SHLD: return Op::kShld;
    case ZYDIS_MNEMONIC_SHRD: return Op::kShrd;
    case ZYDIS_MNEMONIC_MUL: return Op::kMul;
    case ZYDIS_MNEMONIC_IMUL: return Op::kImul;
    case ZYDIS_MNEMONIC_DIV: return Op::kDiv;
    case ZYDIS_MNEMONIC_IDIV: return Op::kIdiv;
    case ZYDIS_MNEMONIC_BT: return Op::kBt;
    case ZYDIS_MNEMONIC_BTS: return Op::kBts;
    case ZYDIS_MNEMONIC_BTR: return Op::kBtr;
    case ZYDIS_MNEMONIC_BTC: return Op::kBtc;
    case ZYDIS_MNEMONIC_BSF: return Op::kBsf;
    case ZYDIS_MNEMONIC_BSR: return Op::kBsr;
    case ZYDIS_MNEMONIC_CLC: return Op::kClc;
    case ZYDIS_MNEMONIC_STC: return Op::kStc;
    case ZYDIS_MNEMONIC_CMC: return Op::kCmc;
    case ZYDIS_MNEMONIC_CLD: return Op::kCld;
    case ZYDIS_MNEMONIC_STD: return Op::kStd;
    case ZYDIS_MNEMONIC_JMP: return far ? Op::kJmpFar : Op::kJmp;
    case ZYDIS_MNEMONIC_CALL: return far ? Op::kCallFar : Op::kCall;
    case ZYDIS_MNEMONIC_RET: return far ? Op::kRetFar : Op::kRet;
    case ZYDIS_MNEMONIC_JCXZ: case ZYDIS_MNEMONIC_JECXZ: case ZYDIS_MNEMONIC_JRCXZ:
      return Op::kJcxz;
    case ZYDIS_MNEMONIC_LOOP: return Op::kLoop;
    case ZYDIS_MNEMONIC_LOOPE: return Op::kLoope;
    case ZYDIS_MNEMONIC_LOOPNE: return Op::kLoopne;
    case ZYDIS_MNEMONIC_MOVSB: case ZYDIS_MNEMONIC_MOVSW: case ZYDIS_MNEMONIC_MOVSD:
    case ZYDIS_MNEMONIC_MOVSQ: return Op::kMovs;
    case ZYDIS_MNEMONIC_STOSB: case ZYDIS_MNEMONIC_STOSW: case ZYDIS_MNEMONIC_STOSD:
    case ZYDIS_MNEMONIC_STOSQ: return Op::kStos;
    case ZYDIS_MNEMONIC_LODSB: case ZYDIS_MNEMONIC_LODSW: case ZYDIS_MNEMONIC_LODSD:
    case ZYDIS_MNEMONIC_LODSQ: return Op::kLods;
    case ZYDIS_MNEMONIC_CMPSB: case ZYDIS_MNEMONIC_CMPSW: case ZYDIS_MNEMONIC_CMPSD:
    case ZYDIS_MNEMONIC_CMPSQ: return Op::kCmps;
    case ZYDIS_MNEMONIC_SCASB: case ZYDIS_MNEMONIC_SCASW: case ZYDIS_MNEMONIC_SCASD:
    case ZYDIS_MNEMONIC_SCASQ: return Op::kScas;
    case ZYDIS_MNEMONIC_INSB: case ZYDIS_MNEMONIC_INSW: case ZYDIS_MNEMONIC_INSD:
      return Op::kIns;
    case ZYDIS_MNEMONIC_OUTSB: case ZYDIS_MNEMONIC_OUTSW: case ZYDIS_MNEMONIC_OUTSD:
      return Op::kOuts;
    case ZYDIS_MNEMONIC_IN: return Op::kIn;
    case ZYDIS_MNEMONIC_OUT: return Op::kOut;
    case ZYDIS_MNEMONIC_LDS: *cc = kDs; return Op::kLoadFarPointer;
    case ZYDIS_MNEMONIC_LES: *cc = kEs; return Op::kLoadFarPointer;
    case ZYDIS_MNEMONIC_LFS: *cc = kFs; return Op::kLoadFarPointer;
    case ZYDIS_MNEMONIC_LGS: *cc = kGs; return Op::kLoadFarPointer;
    case ZYDIS_MNEMONIC_LSS: *cc = kSs; return Op::kLoadFarPointer;
    case ZYDIS_MNEMONIC_LGDT: return Op::kLgdt;
    case ZYDIS_MNEMONIC_LIDT: return Op::kLidt;
    case ZYDIS_MNEMONIC_SGDT: return Op::kSgdt;
    case ZYDIS_MNEMONIC_SIDT: return Op::kSidt;
    case ZYDIS_MNEMONIC_LLDT: return Op::kLldt;
    case ZYDIS_MNEMONIC_SLDT: return Op::kSldt;
    case ZYDIS_MNEMONIC_LTR: return Op::kLtr;
    case ZYDIS_MNEMONIC_STR: return Op::kStr;
    case ZYDIS_MNEMONIC_SMSW: return Op::kSmsw;
    case ZYDIS_MNEMONIC_LMSW: return Op::kLmsw;
    case ZYDIS_MNEMONIC_CLTS: return Op::kClts;
    case ZYDIS_MNEMONIC_INVLPG: return Op::kInvlpg;
    case ZYDIS_MNEMONIC_RDMSR: return Op::kRdmsr;
    case ZYDIS_MNEMONIC_WRMSR: return Op::kWrmsr;
    case ZYDIS_MNEMONIC_CPUID: return Op::kCpuid;
    case ZYDIS_MNEMONIC_RDTSC: return Op::kRdtsc;
    case ZYDIS_MNEMONIC_CLI: return Op::kCli;
    case ZYDIS_MNEMONIC_STI: return Op::kSti;
    case ZYDIS_MNEMONIC_HLT: return Op::kHlt;
    case ZYDIS_MNEMONIC_IRET: case ZYDIS_MNEMONIC_IRETD: case ZYDIS_MNEMONIC_IRETQ:
      return Op::kIret;
    case ZYDIS_MNEMONIC_INT: return Op::kInt;
    case ZYDIS_MNEMONIC_INT3: return Op::kInt3;
    case ZYDIS_MNEMONIC_INTO: return Op::kInto;
    case ZYDIS_MNEMONIC_SYSCALL: return Op::kSyscall;
    case ZYDIS_MNEMONIC_SYSRET: return Op::kSysret;
    case ZYDIS_MNEMONIC_SWAPGS: return Op::kSwapgs;
    case ZYDIS_MNEMONIC_LAR: return Op::kLar;
    case ZYDIS_MNEMONIC_LSL: return Op::kLsl;
    case ZYDIS_MNEMONIC_VERR: return Op::kVerr;
    case ZYDIS_MNEMONIC_VERW: return Op::kVerw;
    case ZYDIS_MNEMONIC_UD0: case ZYDIS_MNEMONIC_UD1: case ZYDIS_MNEMONIC_UD2: return Op::kUd;
    default: return Op::kUnsupported;
  }
}

// Zydis register → (class, index). Returns false for registers the simulator does not model.
bool map_register(ZydisRegister r, RegClass* cls, uint8_t* index) {
  auto in = [r](ZydisRegister lo, ZydisRegister hi) { return r >= lo && r <= hi; };
  if (in(ZYDIS_REGISTER_AL, ZYDIS_REGISTER_BL)) {
    *cls = RegClass::kGpr;
    *index = static_cast<uint8_t>(r - ZYDIS_REGISTER_AL);
  } else if (in(ZYDIS_REGISTER_AH, ZYDIS_REGISTER_BH)) {
    *cls = RegClass::kGprHigh;
    *index = static_cast<uint8_t>(r - ZYDIS_REGISTER_AH);
  } else if (in(ZYDIS_REGISTER_SPL, ZYDIS_REGISTER_DIL)) {
    *cls = RegClass::kGpr;
    *index = static_cast<uint8_t>(4 + r - ZYDIS_REGISTER_SPL);
  } else if (in(ZYDIS_REGISTER_R8B, ZYDIS_REGISTER_R15B)) {
    *cls = RegClass::kGpr;
    *index = static_cast<uint8_t>(8 + r - ZYDIS_REGISTER_R8B);
  } else if (in(ZYDIS_REGISTER_AX, ZYDIS_REGISTER_R15W)) {
    *cls = RegClass::kGpr;
    *index = static_cast<uint8_t>(r - ZYDIS_REGISTER_AX);
  } else if (in(ZYDIS_REGISTER_EAX, ZYDIS_REGISTER_R15D)) {
    *cls = RegClass::kGpr;
    *index = static_cast<uint8_t>(r - ZYDIS_REGISTER_EAX);
  } else if (in(ZYDIS_REGISTER_RAX, ZYDIS_REGISTER_R15)) {
    *cls = RegClass::kGpr;
    *index = static_cast<uint8_t>(r - ZYDIS_REGISTER_RAX);
  } else if (in(ZYDIS_REGISTER_ES, ZYDIS_REGISTER_GS)) {
    *cls = RegClass::kSeg;
    *index = static_cast<uint8_t>(r - ZYDIS_REGISTER_ES);
  } else if (in(ZYDIS_REGISTER_CR0, ZYDIS_REGISTER_CR15)) {
    *cls = RegClass::kCr;
    *index = static_cast<uint8_t>(r - ZYDIS_REGISTER_CR0);
  } else if (in(ZYDIS_REGISTER_DR0, ZYDIS_REGISTER_DR15)) {
    *cls = RegClass::kDr;
    *index = static_cast<uint8_t>(r - ZYDIS_REGISTER_DR0);
  } else {
    *cls = RegClass::kOther;
    *index = 0;
    return false;
  }
  return true;
}

// A memory base/index register as a GPR index (or kRipBase / kNoReg).
int8_t address_register(ZydisRegister r) {
  if (r == ZYDIS_REGISTER_NONE) return kNoReg;
  if (r == ZYDIS_REGISTER_RIP || r == ZYDIS_REGISTER_EIP || r == ZYDIS_REGISTER_IP) {
    return kRipBase;
  }
  RegClass cls;
  uint8_t idx;
  if (!map_register(r, &cls, &idx) || cls != RegClass::kGpr) return kNoReg;
  return static_cast<int8_t>(idx);
}

}  // namespace

DecodeStatus decode(std::span<const uint8_t> bytes, CpuMode mode, Instruction* out) {
  static const Decoders decoders;
  ZydisDecodedInstruction in;
  ZydisDecodedOperand zops[ZYDIS_MAX_OPERAND_COUNT];
  const ZyanStatus st =
      ZydisDecoderDecodeFull(decoders.get(mode), bytes.data(), bytes.size(), &in, zops);
  if (st == ZYDIS_STATUS_NO_MORE_DATA) return DecodeStatus::kTruncated;
  if (!ZYAN_SUCCESS(st)) return DecodeStatus::kInvalid;

  Instruction& x = *out;
  x = Instruction{};
  x.length = in.length;
  x.operand_size = in.operand_width;
  x.address_size = in.address_width;
  x.op = map_mnemonic(in, &x.cc);
  if (in.attributes & (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE)) x.rep = Instruction::kRep;
  if (in.attributes & ZYDIS_ATTRIB_HAS_REPNE) x.rep = Instruction::kRepne;
  x.lock = in.attributes & ZYDIS_ATTRIB_HAS_LOCK;
  x.seg_override = in.attributes & ZYDIS_ATTRIB_HAS_SEGMENT;

  bool unmodelled = false;
  const uint8_t n = in.operand_count_visible < 3 ? in.operand_count_visible : 3;
  for (uint8_t i = 0; i < n; ++i) {
    const ZydisDecodedOperand& z = zops[i];
    Operand& o = x.ops[i];
    o.size = static_cast<uint8_t>(z.size / 8);
    switch (z.type) {
      case ZYDIS_OPERAND_TYPE_REGISTER:
        o.kind = OperandKind::kReg;
        if (!map_register(z.reg.value, &o.reg_class, &o.reg)) unmodelled = true;
        break;
      case ZYDIS_OPERAND_TYPE_MEMORY:
        o.kind = OperandKind::kMem;
        o.seg = z.mem.segment >= ZYDIS_REGISTER_ES && z.mem.segment <= ZYDIS_REGISTER_GS
                    ? static_cast<uint8_t>(z.mem.segment - ZYDIS_REGISTER_ES)
                    : static_cast<uint8_t>(kDs);
        o.base = address_register(z.mem.base);
        o.index = address_register(z.mem.index);
        o.scale = z.mem.scale;
        o.disp = z.mem.disp.has_displacement ? z.mem.disp.value : 0;
        if (z.mem.type != ZYDIS_MEMOP_TYPE_MEM && z.mem.type != ZYDIS_MEMOP_TYPE_AGEN) {
          unmodelled = true;
        }
        break;
      case ZYDIS_OPERAND_TYPE_IMMEDIATE:
        o.kind = OperandKind::kImm;
        o.imm = z.imm.value.u;
        break;
      case ZYDIS_OPERAND_TYPE_POINTER:
        o.kind = OperandKind::kFarPtr;
        o.imm = z.ptr.offset;
        o.far_selector = z.ptr.segment;
        break;
      default: unmodelled = true; break;
    }
  }
  x.operand_count = n;
  // A visible operand the simulator does not model (XMM, x87, …) means an instruction outside
  // the subset even if its mnemonic is shared (movsd/cmpsd also name SSE instructions).
  if (unmodelled) {
    x.op = Op::kUnsupported;
  }

  // mov to/from CR, DR and segment registers are their own ops.
  if (x.op == Op::kMov && n == 2) {
    const Operand& a = x.ops[0];
    const Operand& b = x.ops[1];
    auto is = [](const Operand& o, RegClass c) {
      return o.kind == OperandKind::kReg && o.reg_class == c;
    };
    if (is(a, RegClass::kCr) || is(b, RegClass::kCr)) x.op = Op::kMovCr;
    else if (is(a, RegClass::kDr) || is(b, RegClass::kDr)) x.op = Op::kMovDr;
    else if (is(a, RegClass::kSeg)) x.op = Op::kMovToSeg;
    else if (is(b, RegClass::kSeg)) x.op = Op::kMovFromSeg;
  }
  return DecodeStatus::kOk;
}

}  // namespace trapscope::x86
