// tests/difftest/generator.cpp — see generator.hpp for the subset and its rules.
#include "tests/difftest/generator.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <cstdio>
#include <random>
#include <stdexcept>

#include "x86/disasm.hpp"
#include "sim/interp/undefined.hpp"

namespace trapscope::difftest {
namespace {

// [SECTION] Encoder
// Register ids: 0..15 = RAX..R15 (8-bit: AL..R15B, 4..7 = SPL..DIL need a REX prefix);
// 16..19 = AH, CH, DH, BH (8-bit, encodable only without REX).
constexpr int kAh = 16;
constexpr int kRax = 0, kRcx = 1, kRdx = 2, kRsp = 4, kRbp = 5;

struct Mem {
  int base = kBaseRegister;  // -1: no base (SIB base 101 with mod 00: disp32)
  int index = -1;            // -1: no index; never 4 (RSP cannot be an index)
  unsigned scale = 1;
  int32_t disp = 0;
  unsigned disp_size = 1;    // 0, 1 or 4 (raised where the encoding needs a displacement)
  bool rip = false;          // RIP-relative disp32
  bool addr32 = false;       // 67 prefix (32-bit address computation)
  uint8_t seg_prefix = 0;    // a segment-override prefix byte, or 0
  bool index_guard = false;  // emit `movzx index32, index8` first (keeps the access in bounds)
};

struct Rm {
  bool mem = false;
  int reg = 0;  // register id when !mem
  Mem m;
};

Rm reg_rm(int reg) { return Rm{false, reg, {}}; }
Rm mem_rm(const Mem& m) { return Rm{true, 0, m}; }

struct Enc {
  unsigned size = 4;         // operand size in bytes: 2 → 66 prefix, 8 → REX.W (unless default64)
  bool default64 = false;    // push/pop: 64-bit without REX.W
  bool addr32 = false;       // 67 prefix
  std::vector<uint8_t> opcode;
  bool has_modrm = false;
  int reg = 0;               // the ModRM reg field: a register id (reg_is_gpr) or a digit
  bool reg_is_gpr = false;
  unsigned reg_size = 0;     // width of the reg-field register (1: byte-register rules)
  Rm rm;
  unsigned rm_size = 0;      // width of the r/m register (1: byte-register rules)
  int opreg = -1;            // register in the low 3 bits of the last opcode byte
  unsigned opreg_size = 0;
  uint64_t imm = 0;
  unsigned imm_len = 0;
  bool lock = false;         // F0
  uint8_t rep = 0;           // F2 / F3, or 0
  uint8_t seg_prefix = 0;    // a segment override without a ModRM memory operand (strings)
};

std::vector<uint8_t> encode(const Enc& e) {
  uint8_t rex = 0;
  bool need_rex = false, no_rex = false;
  auto field = [&](int id, unsigned size) {
    if (size == 1) {
      if (id >= kAh) {
        no_rex = true;
        return id - kAh + 4;
      }
      if (id >= 4 && id <= 7) need_rex = true;
    }
    return id;
  };
  std::vector<uint8_t> out;
  const bool mem = e.has_modrm && e.rm.mem;
  if (e.lock) out.push_back(0xF0);
  if (e.rep) out.push_back(e.rep);
  if (mem && e.rm.m.seg_prefix) out.push_back(e.rm.m.seg_prefix);
  if (e.seg_prefix) out.push_back(e.seg_prefix);
  if (e.addr32 || (mem && e.rm.m.addr32)) out.push_back(0x67);
  if (e.size == 2) out.push_back(0x66);
  if (e.size == 8 && !e.default64) rex |= 8;
  std::vector<uint8_t> opcode = e.opcode;
  if (e.opreg >= 0) {
    const int f = field(e.opreg, e.opreg_size);
    if (f & 8) rex |= 1;
    opcode.back() = static_cast<uint8_t>(opcode.back() | (f & 7));
  }
  std::vector<uint8_t> tail;  // ModRM, SIB, displacement
  if (e.has_modrm) {
    const int regf = e.reg_is_gpr ? field(e.reg, e.reg_size) : e.reg;
    if (regf & 8) rex |= 4;
    const uint8_t r = static_cast<uint8_t>((regf & 7) << 3);
    if (!e.rm.mem) {
      const int f = field(e.rm.reg, e.rm_size);
      if (f & 8) rex |= 1;
      tail.push_back(static_cast<uint8_t>(0xC0 | r | (f & 7)));
    } else if (e.rm.m.rip) {
      tail.push_back(static_cast<uint8_t>(0x05 | r));
      for (int i = 0; i < 4; ++i) tail.push_back(static_cast<uint8_t>(e.rm.m.disp >> (8 * i)));
    } else {
      const Mem& m = e.rm.m;
      unsigned ds = m.disp_size;
      if (m.base < 0) ds = 4;
      if (m.base >= 0 && (m.base & 7) == 5 && ds == 0) ds = 1;
      const uint8_t mod = m.base < 0 ? 0 : ds == 0 ? 0 : ds == 1 ? 1 : 2;
      const bool sib = m.index >= 0 || m.base < 0 || (m.base & 7) == 4;
      if (sib) {
        tail.push_back(static_cast<uint8_t>(mod << 6 | r | 4));
        const uint8_t ss = m.scale == 8 ? 3 : m.scale == 4 ? 2 : m.scale == 2 ? 1 : 0;
        const int idx = m.index < 0 ? 4 : m.index;
        const int base = m.base < 0 ? 5 : m.base;
        if (idx & 8) rex |= 2;
        if (base & 8) rex |= 1;
        tail.push_back(static_cast<uint8_t>(ss << 6 | (idx & 7) << 3 | (base & 7)));
      } else {
        if (m.base & 8) rex |= 1;
        tail.push_back(static_cast<uint8_t>(mod << 6 | r | (m.base & 7)));
      }
      for (unsigned i = 0; i < ds; ++i) tail.push_back(static_cast<uint8_t>(m.disp >> (8 * i)));
    }
  }
  if (rex || need_rex) {
    if (no_rex) throw std::logic_error("difftest encoder: AH..BH with a REX prefix");
    out.push_back(static_cast<uint8_t>(0x40 | rex));
  }
  out.insert(out.end(), opcode.begin(), opcode.end());
  out.insert(out.end(), tail.begin(), tail.end());
  for (unsigned i = 0; i < e.imm_len; ++i) out.push_back(static_cast<uint8_t>(e.imm >> (8 * i)));
  return out;
}

// An instruction with ModRM: reg field = register `reg` (width reg_size), r/m = rm.
Enc rr(unsigned size, std::vector<uint8_t> opcode, int reg, const Rm& rm,
       unsigned reg_size = 0, unsigned rm_size = 0) {
  Enc e;
  e.size = size;
  e.opcode = std::move(opcode);
  e.has_modrm = true;
  e.reg = reg;
  e.reg_is_gpr = true;
  e.reg_size = reg_size ? reg_size : size;
  e.rm = rm;
  e.rm_size = rm_size ? rm_size : size;
  return e;
}

// An instruction with ModRM whose reg field is an opcode digit.
Enc digit(unsigned size, std::vector<uint8_t> opcode, int d, const Rm& rm) {
  Enc e;
  e.size = size;
  e.opcode = std::move(opcode);
  e.has_modrm = true;
  e.reg = d;
  e.rm = rm;
  e.rm_size = size;
  return e;
}

Enc with_imm(Enc e, uint64_t imm, unsigned len) {
  e.imm = imm;
  e.imm_len = len;
  return e;
}

// Absolute [disp32] (SIB, no base, no index).
Mem absolute(uint64_t address) {
  Mem m;
  m.base = -1;
  m.disp = static_cast<int32_t>(address);
  m.disp_size = 4;
  return m;
}

// [SECTION] Flag bookkeeping
struct Fx {
  uint64_t reads = 0;      // flags the instruction reads
  uint64_t defines = 0;    // flags it sets to a defined value
  uint64_t undefines = 0;  // flags it leaves undefined
  bool maybe_nop = false;  // may leave every flag unchanged (count 0 in CL)
};

constexpr uint64_t kCF = kFlagCF, kPF = kFlagPF, kAF = kFlagAF, kZF = kFlagZF, kSF = kFlagSF,
                   kOF = kFlagOF, kAll = kStatusFlags;

uint64_t condition_flags(unsigned cc) {
  switch (cc >> 1) {
    case 0: return kOF;
    case 1: return kCF;
    case 2: return kZF;
    case 3: return kCF | kZF;
    case 4: return kSF;
    case 5: return kPF;
    case 6: return kSF | kOF;
    default: return kZF | kSF | kOF;
  }
}

// An instruction that writes the flags in `written` and leaves sim::undefined_flags(op) of them
// undefined (the one table of undefined flags, sim/interp/undefined.hpp).
Fx writes(uint64_t written, uint64_t undefined) { return {0, written & ~undefined, undefined, false}; }
Fx arith() { return {0, kAll, 0, false}; }
Fx logic() { return writes(kAll, sim::undefined_flags(x86::Op::kAnd)); }
Fx none() { return {}; }

uint64_t mix(uint64_t x) {  // splitmix64
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// [SECTION] The generator
class Gen {
 public:
  Gen(uint64_t seed, uint64_t index, const GenOptions& o, Program& p)
      : rng_(mix(mix(seed) ^ index)), opt_(o), p_(p), out_(&p.entries) {}

  void start_state() {
    for (int i = 0; i < 16; ++i) p_.gpr[i] = value64();
    uint64_t rsp = kStackAddress + 0x1000 + u(0x100);
    if (u(4) != 0) rsp &= ~uint64_t{7};
    p_.gpr[kRsp] = rsp;
    p_.gpr[kRbp] = kScratchBase;
    p_.rflags = 0x2 | (rng_() & kAll) | (opt_.start_if ? kFlagIF : 0) | (u(10) == 0 ? kFlagDF : 0);
    p_.scratch.resize(kScratchSize);
    p_.stack.resize(kStackSize);
    fill_random(p_.scratch);
    fill_random(p_.stack);
    // Some runs of equal bytes and zeros in the scratch buffer (zero sources for bsf/bsr…).
    for (int k = 0; k < 8; ++k) {
      const uint64_t at = u(kScratchSize - 16);
      const uint8_t fill = u(2) ? 0 : 0xFF;
      for (uint64_t j = 0; j < 1 + u(16); ++j) p_.scratch[at + j] = fill;
    }
  }

  void body(unsigned templates) {
    // 1 program in 32 faults on purpose somewhere (compared at the fault: harness.hpp).
    const uint64_t fault_at = opt_.allow_faults && u(32) == 0 ? u(templates) : ~0ull;
    for (unsigned i = 0; i < templates; ++i) {
      if (i == fault_at) {
        t_fault();
      } else {
        one(false);
      }
    }
    p_.undefined_flags = undef_;
    p_.stack_delta = -static_cast<int64_t>(stack_bytes_);
  }

 private:
  // --- random helpers ------------------------------------------------------------------
  void fill_random(std::vector<uint8_t>& bytes) {
    for (size_t i = 0; i < bytes.size(); i += 8) {
      const uint64_t v = rng_();
      std::memcpy(bytes.data() + i, &v, std::min<size_t>(8, bytes.size() - i));
    }
  }
  uint64_t u(uint64_t n) { return n ? rng_() % n : 0; }
  bool chance(unsigned percent) { return u(100) < percent; }

  uint64_t value64() {
    static constexpr uint64_t kSpecial[] = {
        0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF,
        0x80000000, 0xFFFFFFFF, 0x100000000ull, 0x7FFFFFFFFFFFFFFFull, 0x8000000000000000ull,
        ~0ull, ~0ull - 1, 0xFFFFFFFF00000000ull, 0x00000000FFFF0000ull, 0x8000000080008080ull};
    switch (u(10)) {
      case 0: return u(256);
      case 1: return ~u(256);
      case 2: case 3: return kSpecial[u(std::size(kSpecial))];
      case 4: return static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(rng_())));
      case 5: return rng_() & 0xFFFFFFFF;
      case 6: return kSpecial[u(std::size(kSpecial))] ^ (1ull << u(64));
      default: return rng_();
    }
  }
  uint64_t imm(unsigned len) {
    const uint64_t v = value64();
    return len >= 8 ? v : v & ((1ull << (8 * len)) - 1);
  }
  unsigned pick_size() {
    static constexpr unsigned kSizes[] = {1, 1, 2, 4, 4, 8, 8, 8};
    return kSizes[u(8)];
  }
  unsigned pick_size_no8() {
    static constexpr unsigned kSizes[] = {2, 4, 4, 8, 8, 8};
    return kSizes[u(6)];
  }

  // --- registers and operands ----------------------------------------------------------
  // An 8-bit instruction uses the legacy bank (AL CL DL BL AH CH DH BH, no REX) or the REX bank
  // (0..15); wider ones always 0..15.
  struct Bank {
    bool legacy = false;
  };
  Bank bank(unsigned size) { return Bank{size == 1 && chance(30)}; }
  int any_reg(Bank b) {
    static constexpr int kLegacy[] = {0, 1, 2, 3, kAh, kAh + 1, kAh + 2, kAh + 3};
    return b.legacy ? kLegacy[u(8)] : static_cast<int>(u(16));
  }
  int dst_reg(Bank b) {
    for (;;) {
      const int r = any_reg(b);
      if (r != kRsp && r != kRbp) return r;
    }
  }
  // no_rex: the instruction also names AH..BH, so the index must not need REX.X.
  Mem scratch_mem(unsigned size, bool no_rex = false) {
    Mem m;
    m.base = kRbp;
    if (chance(10)) {
      // [rsp + disp8]: the stack page (RSP is within 0x300 of its middle).
      m.base = kRsp;
      m.disp = static_cast<int32_t>(u(256)) - 128;
      m.disp_size = m.disp == 0 && chance(50) ? 0 : 1;
    } else if (allow_index_ && chance(15)) {
      // [rbp + index*scale + disp8] with index = its own low byte (0..255): at most 1147 bytes
      // above the base. Never RAX/RCX/RDX (implicit operands of div, shifts, strings…).
      static constexpr int kIndex[] = {3, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
      static constexpr unsigned kScales[] = {1, 2, 4};
      m.index = kIndex[u(no_rex ? 3 : std::size(kIndex))];
      m.scale = kScales[u(3)];
      m.index_guard = true;
      m.disp = static_cast<int32_t>(u(256)) - 128;
      m.disp_size = 1;
    } else if (chance(85)) {
      m.disp = static_cast<int32_t>(u(256)) - 128;
      m.disp_size = 1;
    } else {
      m.disp = static_cast<int32_t>(u(kScratchSize - size)) - static_cast<int32_t>(kScratchSize / 2);
      m.disp_size = 4;
    }
    if (chance(8)) m.addr32 = true;  // EBP-based: the same addresses below 4 GiB
    if (chance(8)) {                 // all bases are 0 (FS/GS too): the same addresses
      static constexpr uint8_t kSeg[] = {0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65};
      m.seg_prefix = kSeg[u(6)];
    }
    return m;
  }
  Rm any_rm(unsigned size, Bank b, unsigned mem_percent = 30) {
    return chance(mem_percent) ? mem_rm(scratch_mem(size, b.legacy)) : reg_rm(any_reg(b));
  }
  Rm dst_rm(unsigned size, Bank b, unsigned mem_percent = 30) {
    return chance(mem_percent) ? mem_rm(scratch_mem(size, b.legacy)) : reg_rm(dst_reg(b));
  }
  static unsigned imm_len(unsigned size) { return size == 1 ? 1 : size == 2 ? 2 : 4; }

  // --- emission ------------------------------------------------------------------------
  void emit_bytes(const std::vector<uint8_t>& bytes, Fx fx, Entry::Kind kind = Entry::kBody) {
    if (fx.reads & undef_) define_flags();
    Entry e;
    e.bytes = bytes;
    e.kind = kind;
    e.undefined_before = undef_;
    out_->push_back(std::move(e));
    if (fx.maybe_nop) {
      undef_ |= fx.undefines;
    } else {
      undef_ = (undef_ & ~fx.defines) | fx.undefines;
    }
  }
  void emit(const Enc& e, Fx fx, Entry::Kind kind = Entry::kBody) {
    if (e.has_modrm && e.rm.mem && e.rm.m.index_guard) {  // movzx index32, index8
      emit_bytes(encode(rr(4, {0x0F, 0xB6}, e.rm.m.index, reg_rm(e.rm.m.index), 4, 1)), none(),
                 Entry::kGuard);
    }
    emit_bytes(encode(e), fx, kind);
  }
  // A locked read-modify-write of memory now and then (valid at CPL 3; no effect on the result).
  Enc lockable(Enc e) {
    if (e.rm.mem && chance(15)) e.lock = true;
    return e;
  }

  // `cmp` writes all six status flags and no register.
  void define_flags() {
    allow_index_ = false;  // its operands need no guard
    const unsigned size = pick_size();
    const Bank b = bank(size);
    std::vector<uint8_t> bytes;
    switch (u(3)) {
      case 0: bytes = encode(rr(size, {uint8_t(size == 1 ? 0x38 : 0x39)}, any_reg(b), any_rm(size, b)));
        break;
      case 1: bytes = encode(rr(size, {uint8_t(size == 1 ? 0x3A : 0x3B)}, any_reg(b), any_rm(size, b)));
        break;
      default:
        if (size == 1) {
          bytes = encode(with_imm(digit(1, {0x80}, 7, any_rm(1, b)), imm(1), 1));
        } else {
          bytes = encode(with_imm(digit(size, {0x83}, 7, any_rm(size, b)), imm(1), 1));
        }
    }
    Entry e;
    e.bytes = std::move(bytes);
    e.kind = Entry::kDefiner;
    e.undefined_before = undef_;
    out_->push_back(std::move(e));
    undef_ = 0;
    allow_index_ = true;
  }

  // --- templates -----------------------------------------------------------------------
  void t_alu() {
    const unsigned op = static_cast<unsigned>(u(8));  // add or adc sbb and sub xor cmp
    const unsigned size = pick_size();
    const Bank b = bank(size);
    const bool is_logic = op == 1 || op == 4 || op == 6;
    Fx fx = is_logic ? logic() : arith();
    if (op == 2 || op == 3) fx.reads = kCF;
    const bool writes = op != 7;
    const uint8_t base = static_cast<uint8_t>(op << 3);
    switch (u(4)) {
      case 0: {
        const Enc e = rr(size, {uint8_t(base | (size == 1 ? 0 : 1))}, any_reg(b),
                         writes ? dst_rm(size, b) : any_rm(size, b));
        emit(writes ? lockable(e) : e, fx);
        break;
      }
      case 1:
        emit(rr(size, {uint8_t(base | (size == 1 ? 2 : 3))}, writes ? dst_reg(b) : any_reg(b),
                any_rm(size, b)), fx);
        break;
      case 2: {
        Enc e;
        e.size = size;
        e.opcode = {uint8_t(base | (size == 1 ? 4 : 5))};
        emit(with_imm(e, imm(imm_len(size)), imm_len(size)), fx);
        break;
      }
      default: {
        const Rm rm = writes ? dst_rm(size, b) : any_rm(size, b);
        Enc e;
        if (size == 1) {
          e = with_imm(digit(1, {0x80}, op, rm), imm(1), 1);
        } else if (chance(50)) {
          e = with_imm(digit(size, {0x83}, op, rm), imm(1), 1);
        } else {
          e = with_imm(digit(size, {0x81}, op, rm), imm(imm_len(size)), imm_len(size));
        }
        emit(writes ? lockable(e) : e, fx);
      }
    }
  }

  void t_test() {
    const unsigned size = pick_size();
    const Bank b = bank(size);
    switch (u(3)) {
      case 0:
        emit(rr(size, {uint8_t(size == 1 ? 0x84 : 0x85)}, any_reg(b), any_rm(size, b)), logic());
        break;
      case 1: {
        Enc e;
        e.size = size;
        e.opcode = {uint8_t(size == 1 ? 0xA8 : 0xA9)};
        emit(with_imm(e, imm(imm_len(size)), imm_len(size)), logic());
        break;
      }
      default:
        emit(with_imm(digit(size, {uint8_t(size == 1 ? 0xF6 : 0xF7)}, 0, any_rm(size, b)),
                      imm(imm_len(size)), imm_len(size)),
             logic());
    }
  }

  void t_incdec() {
    const unsigned size = pick_size();
    emit(lockable(digit(size, {uint8_t(size == 1 ? 0xFE : 0xFF)}, static_cast<int>(u(2)),
                        dst_rm(size, bank(size)))),
         Fx{0, kAll & ~kCF, 0, false});
  }

  void t_notneg() {
    const unsigned size = pick_size();
    const bool neg = chance(50);
    emit(lockable(digit(size, {uint8_t(size == 1 ? 0xF6 : 0xF7)}, neg ? 3 : 2, dst_rm(size, bank(size)))),
         neg ? arith() : none());
  }

  static Fx mul_fx() { return writes(kAll, sim::undefined_flags(x86::Op::kMul)); }

  void t_mul1() {
    const unsigned size = pick_size();
    emit(digit(size, {uint8_t(size == 1 ? 0xF6 : 0xF7)}, chance(50) ? 4 : 5,
               any_rm(size, bank(size))),
         mul_fx());
  }

  void t_imul() {
    const unsigned size = pick_size_no8();
    const int dst = dst_reg({});
    const Rm src = any_rm(size, {});
    switch (u(3)) {
      case 0: emit(rr(size, {0x0F, 0xAF}, dst, src), mul_fx()); break;
      case 1: emit(with_imm(rr(size, {0x6B}, dst, src), imm(1), 1), mul_fx()); break;
      default:
        emit(with_imm(rr(size, {0x69}, dst, src), imm(imm_len(size)), imm_len(size)), mul_fx());
    }
  }

  void t_div() {
    const unsigned size = pick_size();
    const bool is_signed = chance(50);
    const bool guarded = !opt_.allow_faults || u(16) != 0;
    Bank b = bank(size);
    Rm src;
    if (!guarded) {
      p_.may_fault = true;
      src = any_rm(size, b);
    } else {
      // The divisor is neither part of the dividend nor RSP/RBP (the guard writes it).
      if (chance(30)) {
        src = mem_rm(scratch_mem(size));
      } else {
        int r;
        do {
          r = dst_reg(b);
        } while (r == kRax || r == kRdx || r == kAh);
        src = reg_rm(r);
      }
      // The high half of the dividend: zero (div) or the sign of the low half (idiv).
      if (!is_signed) {
        if (size == 1) {
          emit(rr(1, {0x30}, kAh, reg_rm(kAh)), logic(), Entry::kGuard);  // xor ah, ah
        } else {
          emit(rr(size == 8 ? 4 : size, {0x31}, kRdx, reg_rm(kRdx)), logic(), Entry::kGuard);
        }
      } else {
        Enc e;
        e.size = size == 1 ? 2 : size;
        e.opcode = {uint8_t(size == 1 ? 0x98 : 0x99)};  // cbw / cwd / cdq / cqo
        emit(e, none(), Entry::kGuard);
      }
      // The divisor: unsigned nonzero (or 1); signed even and nonzero, so never 0 or -1 and
      // the quotient of a sign-extended dividend fits.
      if (size == 1) {
        emit(with_imm(digit(1, {0x80}, 1, src), is_signed ? 2 : 1, 1), logic(), Entry::kGuard);
        if (is_signed) emit(with_imm(digit(1, {0x80}, 4, src), 0xFE, 1), logic(), Entry::kGuard);
      } else {
        emit(with_imm(digit(size, {0x83}, 1, src), is_signed ? 2 : 1, 1), logic(), Entry::kGuard);
        if (is_signed) emit(with_imm(digit(size, {0x83}, 4, src), 0xFE, 1), logic(), Entry::kGuard);
      }
    }
    emit(digit(size, {uint8_t(size == 1 ? 0xF6 : 0xF7)}, is_signed ? 7 : 6, src),
         writes(kAll, sim::undefined_flags(is_signed ? x86::Op::kIdiv : x86::Op::kDiv)));
  }

  uint64_t shift_count(unsigned bits) {
    switch (u(5)) {
      case 0: return u(2);
      case 1: case 2: return 1 + u(bits - 1);
      case 3: return bits + u(bits);
      default: return u(256);
    }
  }

  void t_shift() {
    static constexpr unsigned kOps[] = {0, 1, 2, 3, 4, 5, 7};  // rol ror rcl rcr shl shr sar
    const unsigned op = kOps[u(7)];
    const unsigned size = pick_size();
    const unsigned bits = 8 * size;
    const Rm dst = dst_rm(size, bank(size));
    const bool rotate = op <= 1, through_carry = op == 2 || op == 3;
    static constexpr x86::Op kSimOp[] = {x86::Op::kRol, x86::Op::kRor, x86::Op::kRcl, x86::Op::kRcr,
                                         x86::Op::kShl, x86::Op::kShr, x86::Op::kShl, x86::Op::kSar};
    const uint64_t written = rotate || through_carry ? kCF | kOF : kAll;
    Fx fx;
    if (through_carry) fx.reads = kCF;
    auto known = [&](uint64_t count) {
      const unsigned m = static_cast<unsigned>(count & (size == 8 ? 63 : 31));
      if (m == 0) return;  // no flag changes
      const Fx w = writes(written, sim::undefined_flags(kSimOp[op], bits, m));
      fx.defines = w.defines;
      fx.undefines = w.undefines;
    };
    const uint8_t small = size == 1 ? 0 : 1;
    switch (u(3)) {
      case 0:
        known(1);
        emit(digit(size, {uint8_t(0xD0 | small)}, op, dst), fx);
        break;
      case 1:
        fx.maybe_nop = true;
        fx.undefines = sim::undefined_flags(kSimOp[op], bits);  // any count in CL
        emit(digit(size, {uint8_t(0xD2 | small)}, op, dst), fx);
        break;
      default: {
        const uint64_t count = shift_count(bits);
        known(count);
        emit(with_imm(digit(size, {uint8_t(0xC0 | small)}, op, dst), count, 1), fx);
      }
    }
  }

  void t_shxd() {
    const unsigned size = pick_size_no8();
    const bool right = chance(50);
    const Rm dst = dst_rm(size, {});
    const int src = any_reg({});
    if (chance(40)) {
      if (size == 2) emit(with_imm(digit(1, {0x80}, 4, reg_rm(kRcx)), 0x0F, 1), logic(), Entry::kGuard);
      // The 16-bit count is at most 15 after the guard: count 15 stands for them all.
      emit(rr(size, {0x0F, uint8_t(right ? 0xAD : 0xA5)}, src, dst),
           Fx{0, 0, sim::undefined_flags(right ? x86::Op::kShrd : x86::Op::kShld, 8 * size,
                                         size == 2 ? 15 : sim::kAnyCount), true});
    } else {
      uint64_t count = size == 2 ? (u(17) | (u(8) << 5)) : shift_count(8 * size);
      const uint64_t m = count & (size == 8 ? 63 : 31);
      Fx fx;
      if (m != 0) {
        fx = writes(kAll, sim::undefined_flags(right ? x86::Op::kShrd : x86::Op::kShld, 8 * size,
                                               static_cast<unsigned>(m)));
      }
      emit(with_imm(rr(size, {0x0F, uint8_t(right ? 0xAC : 0xA4)}, src, dst), count, 1), fx);
    }
  }

  void t_bt() {
    const unsigned op = 4 + static_cast<unsigned>(u(4));  // bt bts btr btc
    static constexpr uint8_t kRegForm[] = {0xA3, 0xAB, 0xB3, 0xBB};
    const unsigned size = pick_size_no8();
    const bool writes = op != 4;
    const Fx fx{0, kCF, sim::undefined_flags(x86::Op::kBt), false};
    switch (u(4)) {
      case 0:
        emit(rr(size, {0x0F, kRegForm[op - 4]}, any_reg({}),
                reg_rm(writes ? dst_reg({}) : any_reg({}))), fx);
        break;
      case 1:
        emit(with_imm(digit(size, {0x0F, 0xBA}, op,
                            reg_rm(writes ? dst_reg({}) : any_reg({}))), u(256), 1), fx);
        break;
      case 2: {
        const Enc e = with_imm(digit(size, {0x0F, 0xBA}, op, mem_rm(scratch_mem(size))), u(256), 1);
        emit(writes ? lockable(e) : e, fx);
        break;
      }
      default: {
        // A register bit offset addresses memory far from the operand: keep it in 0..1023.
        const int r = dst_reg({});
        emit(with_imm(digit(4, {0x81}, 4, reg_rm(r)), 0x3FF, 4), logic(), Entry::kGuard);
        const Enc e = rr(size, {0x0F, kRegForm[op - 4]}, r, mem_rm(scratch_mem(size)));
        emit(writes ? lockable(e) : e, fx);
      }
    }
  }

  void t_bsf() {
    const unsigned size = pick_size_no8();
    const int dst = dst_reg({});
    const Rm src = any_rm(size, {});
    if (!opt_.undefined_results) {  // a non-zero source: or src, 1 << k (RSP, RBP: never 0)
      if (src.mem || (src.reg != kRsp && src.reg != kRbp)) {
        emit(with_imm(digit(size, {0x83}, 1, src), uint64_t{1} << u(7), 1), logic(), Entry::kGuard);
      }
    } else if (chance(30)) {  // a zero source: the destination is left unchanged
      if (src.mem) {
        emit(with_imm(digit(size, {0x83}, 4, src), 0, 1), logic(), Entry::kGuard);
      } else if (src.reg != kRsp && src.reg != kRbp) {
        emit(rr(4, {0x31}, src.reg, src), logic(), Entry::kGuard);
      }
    }
    const bool forward = chance(50);
    emit(rr(size, {0x0F, uint8_t(forward ? 0xBC : 0xBD)}, dst, src),
         writes(kAll, sim::undefined_flags(forward ? x86::Op::kBsf : x86::Op::kBsr)));
  }

  void t_cmov() {
    const unsigned size = pick_size_no8();
    const unsigned cc = static_cast<unsigned>(u(16));
    emit(rr(size, {0x0F, uint8_t(0x40 | cc)}, dst_reg({}), any_rm(size, {})),
         Fx{condition_flags(cc), 0, 0, false});
  }

  void t_setcc() {
    const unsigned cc = static_cast<unsigned>(u(16));
    emit(digit(1, {0x0F, uint8_t(0x90 | cc)}, 0, dst_rm(1, bank(1))),
         Fx{condition_flags(cc), 0, 0, false});
  }

  void t_xchg() {
    const unsigned size = pick_size();
    const Bank b = bank(size);
    if (size != 1 && chance(30)) {
      Enc e;
      e.size = size;
      e.opcode = {0x90};
      int r;
      do {
        r = dst_reg({});
      } while (r == kRax);
      e.opreg = r;
      e.opreg_size = size;
      emit(e, none());
      return;
    }
    emit(lockable(rr(size, {uint8_t(size == 1 ? 0x86 : 0x87)}, dst_reg(b), dst_rm(size, b))), none());
  }

  void t_xadd() {
    const unsigned size = pick_size();
    const Bank b = bank(size);
    emit(lockable(rr(size, {0x0F, uint8_t(size == 1 ? 0xC0 : 0xC1)}, dst_reg(b), dst_rm(size, b))), arith());
  }

  void t_cmpxchg() {
    const unsigned size = pick_size();
    const Bank b = bank(size);
    emit(lockable(rr(size, {0x0F, uint8_t(size == 1 ? 0xB0 : 0xB1)}, any_reg(b), dst_rm(size, b))), arith());
  }

  void t_movx() {
    const bool sign = chance(50);
    switch (u(3)) {
      case 0: {  // r16/32/64 <- r/m8
        const Bank b = bank(1);
        unsigned size = pick_size_no8();
        int dst;
        if (b.legacy) {
          if (size == 8) size = 4;
          static constexpr int kLow[] = {0, 1, 2, 3, 6, 7};
          dst = kLow[u(6)];
        } else {
          dst = dst_reg({});
        }
        emit(rr(size, {0x0F, uint8_t(sign ? 0xBE : 0xB6)}, dst, any_rm(1, b), size, 1), none());
        break;
      }
      case 1: {  // r32/64 <- r/m16
        const unsigned size = chance(50) ? 4 : 8;
        Enc e = rr(size, {0x0F, uint8_t(sign ? 0xBF : 0xB7)}, dst_reg({}), any_rm(2, {}), size, 2);
        emit(e, none());
        break;
      }
      default:  // movsxd r64 <- r/m32
        emit(rr(8, {0x63}, dst_reg({}), any_rm(4, {}), 8, 4), none());
    }
  }

  void t_lea() {
    const unsigned size = pick_size_no8();
    Mem m;
    if (chance(10)) {
      m.rip = true;
      m.disp = static_cast<int32_t>(value64());
    } else {
      m.base = chance(15) ? -1 : static_cast<int>(u(16));
      if (chance(60)) {
        do {
          m.index = static_cast<int>(u(16));
        } while (m.index == kRsp);
      }
      static constexpr unsigned kScales[] = {1, 2, 4, 8};
      m.scale = kScales[u(4)];
      m.disp_size = static_cast<unsigned>(u(3));
      if (m.disp_size == 2) m.disp_size = 4;
      m.disp = m.disp_size == 1 ? static_cast<int8_t>(rng_()) : static_cast<int32_t>(value64());
    }
    Enc e = rr(size, {0x8D}, dst_reg({}), mem_rm(m));
    e.addr32 = chance(20);
    emit(e, none());
  }

  void t_mov() {
    const unsigned size = pick_size();
    const Bank b = bank(size);
    switch (u(9) / 2) {
      case 4: {  // mov acc, [moffs] / mov [moffs], acc: a 64-bit (or with 67, 32-bit) address
        const bool store = chance(50);
        Enc e;
        e.size = size;
        e.opcode = {uint8_t((store ? 0xA2 : 0xA0) | (size == 1 ? 0 : 1))};
        e.addr32 = chance(25);
        const uint64_t at = kScratchAddress + u(kScratchSize - size);
        emit(with_imm(e, at, e.addr32 ? 4 : 8), none());
        break;
      }
      case 0:
        emit(rr(size, {uint8_t(size == 1 ? 0x88 : 0x89)}, any_reg(b), dst_rm(size, b)), none());
        break;
      case 1:
        emit(rr(size, {uint8_t(size == 1 ? 0x8A : 0x8B)}, dst_reg(b), any_rm(size, b)), none());
        break;
      case 2: {
        Enc e;
        e.size = size;
        e.opcode = {uint8_t(size == 1 ? 0xB0 : 0xB8)};
        e.opreg = dst_reg(b);
        e.opreg_size = size;
        const unsigned len = size == 8 ? (chance(50) ? 8 : 4) : imm_len(size);
        if (size == 8 && len == 4) e.size = 4;  // mov r32, imm32 (zero-extends)
        emit(with_imm(e, imm(len), len), none());
        break;
      }
      default:
        emit(with_imm(digit(size, {uint8_t(size == 1 ? 0xC6 : 0xC7)}, 0, dst_rm(size, b)),
                      imm(imm_len(size)), imm_len(size)),
             none());
    }
  }

  void t_bswap() {
    Enc e;
    e.size = chance(50) ? 4 : 8;
    e.opcode = {0x0F, 0xC8};
    e.opreg = dst_reg({});
    e.opreg_size = e.size;
    emit(e, none());
  }

  void t_convert() {
    Enc e;
    e.size = pick_size_no8();
    e.opcode = {uint8_t(chance(50) ? 0x98 : 0x99)};
    emit(e, none());
  }

  bool can_push(unsigned n) const { return stack_bytes_ + n <= kMaxStackBytes; }
  bool can_pop(unsigned n) const { return stack_bytes_ >= n; }

  void t_pushpop() {
    const bool wide = chance(85);
    const unsigned n = wide ? 8 : 2;
    const bool push = can_push(n) && (!can_pop(n) || chance(55));
    if (push) {
      Enc e;
      e.size = wide ? 8 : 2;
      e.default64 = true;
      switch (u(wide ? 4 : 2)) {
        case 0: e.opcode = {0x50}; e.opreg = static_cast<int>(u(16)); e.opreg_size = e.size; break;
        case 1: e = digit(e.size, {0xFF}, 6, mem_rm(scratch_mem(n))); e.default64 = true; break;
        case 2: e.opcode = {0x6A}; e = with_imm(e, imm(1), 1); break;
        default: e.opcode = {0x68}; e = with_imm(e, imm(4), 4); break;
      }
      emit(e, none());
      stack_bytes_ += n;
    } else if (can_pop(n)) {
      Enc e;
      if (chance(75)) {
        e.size = wide ? 8 : 2;
        e.default64 = true;
        e.opcode = {0x58};
        e.opreg = dst_reg({});
        e.opreg_size = e.size;
      } else {
        e = digit(wide ? 8 : 2, {0x8F}, 0, mem_rm(scratch_mem(n)));
        e.default64 = true;
      }
      emit(e, none());
      stack_bytes_ -= n;
    }
  }

  void t_flags_stack() {
    if (!can_push(8)) return;
    const int r = dst_reg({});
    Enc pop;
    pop.size = 8;
    pop.default64 = true;
    pop.opcode = {0x58};
    pop.opreg = r;
    pop.opreg_size = 8;
    emit_bytes({0x9C}, Fx{kAll, 0, 0, false});  // pushfq
    emit(pop, none());                     // pop r
    if (chance(25)) return;
    // Flip random flags (never TF) and reserved bits, then popfq. At CPL 3 with IOPL 0, IF and
    // IOPL must stay as they were; VIF/VIP/VM are unaffected, RF is cleared.
    uint64_t mask = 0;
    for (uint64_t bit : {kCF, kPF, kAF, kZF, kSF, kOF}) {
      if (chance(50)) mask |= bit;
    }
    static constexpr uint64_t kOther[] = {
        kFlagDF, kFlagIF, 1ull << 12, 1ull << 13, 1ull << 14, 1ull << 16, 1ull << 17,
        1ull << 19, 1ull << 20, 1ull << 21, 1ull << 1, 1ull << 3, 1ull << 5, 1ull << 15,
        1ull << 22, 1ull << 27, 1ull << 31};
    for (uint64_t bit : kOther) {
      if (chance(15)) mask |= bit;
    }
    if (opt_.popf_ac && chance(30)) mask |= kFlagAC;
    emit(with_imm(digit(8, {0x81}, 6, reg_rm(r)), mask, 4), logic());  // xor r, imm32
    Enc push = pop;
    push.opcode = {0x50};
    emit(push, none());
    emit_bytes({0x9D}, Fx{0, kAll, 0, false});  // popfq
  }

  void t_flagops() {
    switch (u(7)) {
      case 0: emit_bytes({0xF8}, Fx{0, kCF, 0, false}); break;    // clc
      case 1: emit_bytes({0xF9}, Fx{0, kCF, 0, false}); break;    // stc
      case 2: emit_bytes({0xF5}, Fx{kCF, kCF, 0, false}); break;  // cmc
      case 3: case 4: emit_bytes({0xFC}, none()); break;          // cld
      case 5: emit_bytes({0xFD}, none()); break;                  // std
      default:
        if (chance(50)) {
          emit_bytes({0x9F}, Fx{kSF | kZF | kAF | kPF | kCF, 0, 0, false});  // lahf
        } else {
          emit_bytes({0x9E}, Fx{0, kSF | kZF | kAF | kPF | kCF, 0, false});  // sahf
        }
    }
  }

  void t_string() {
    static constexpr uint8_t kOps[] = {0xA4, 0xAA, 0xAC, 0xA6, 0xAE};  // movs stos lods cmps scas
    const unsigned which = static_cast<unsigned>(u(5));
    const bool uses_rsi = which == 0 || which == 2 || which == 3;
    const bool uses_rdi = which != 2;
    const bool compares = which >= 3;
    const unsigned size = pick_size();
    uint8_t rep = 0;
    if (chance(60)) rep = compares && chance(50) ? 0xF2 : 0xF3;
    // Pointers into the scratch buffer and a small count: at most 40 elements either way (DF).
    auto point = [&](int reg) {
      Mem m;
      m.base = kRbp;
      m.disp = static_cast<int32_t>(u(256)) - 128;
      m.disp_size = 1;
      emit(rr(8, {0x8D}, reg, mem_rm(m)), none(), Entry::kGuard);
    };
    if (uses_rsi) point(6);
    if (uses_rdi) point(7);
    uint64_t count = 0;
    if (rep) {
      count = chance(10) ? 0 : 1 + u(40);
      Enc mov;
      mov.size = 4;
      mov.opcode = {0xB8};
      mov.opreg = kRcx;
      mov.opreg_size = 4;
      emit(with_imm(mov, count, 4), none(), Entry::kGuard);
    }
    Enc e;
    e.size = size;
    e.opcode = {uint8_t(kOps[which] | (size == 1 ? 0 : 1))};
    e.rep = rep;
    e.addr32 = chance(10);  // ESI/EDI/ECX
    if (uses_rsi && chance(10)) {
      static constexpr uint8_t kSeg[] = {0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65};
      e.seg_prefix = kSeg[u(6)];
    }
    emit(e, compares && (!rep || count != 0) ? arith() : none());
  }

  // Near transfers that land just past themselves (or past bytes never executed), stack balanced:
  // call rel32 + pop; lea r,[rip+k] + push r + ret / ret 8; lea + jmp r; lea + call r + pop.
  void t_control() {
    if (!can_push(16)) return;
    const int r = dst_reg({});
    Enc push_r;
    push_r.size = 8;
    push_r.default64 = true;
    push_r.opcode = {0x50};
    push_r.opreg = r;
    push_r.opreg_size = 8;
    Enc pop_any = push_r;
    pop_any.opcode = {0x58};
    pop_any.opreg = dst_reg({});
    auto lea_rip = [&](uint64_t disp) {
      Mem m;
      m.rip = true;
      m.disp = static_cast<int32_t>(disp);
      return rr(8, {0x8D}, r, mem_rm(m));
    };
    const unsigned gap = chance(50) ? 0 : 1 + static_cast<unsigned>(u(8));
    auto skipped = [&] {
      if (gap == 0) return;
      Entry e;
      e.kind = Entry::kSkipped;
      for (unsigned i = 0; i < gap; ++i) e.bytes.push_back(static_cast<uint8_t>(rng_()));
      out_->push_back(std::move(e));
    };
    switch (u(5)) {
      case 0:
        emit_bytes({0xE8, uint8_t(gap), 0, 0, 0}, none());
        skipped();
        emit(pop_any, none());
        break;
      case 1:
        emit(lea_rip(encode(push_r).size() + 1 + gap), none());
        emit(push_r, none());
        emit_bytes({0xC3}, none());
        skipped();
        break;
      case 2:
        emit_bytes({0x6A, uint8_t(rng_())}, none());
        emit(lea_rip(encode(push_r).size() + 3 + gap), none());
        emit(push_r, none());
        emit_bytes({0xC2, 8, 0}, none());  // ret 8
        skipped();
        break;
      case 3: {
        Enc jmp = digit(8, {0xFF}, 4, reg_rm(r));
        jmp.default64 = true;
        emit(lea_rip(encode(jmp).size() + gap), none());
        emit(jmp, none());
        skipped();
        break;
      }
      default: {
        Enc call = digit(8, {0xFF}, 2, reg_rm(r));
        call.default64 = true;
        emit(lea_rip(encode(call).size() + gap), none());
        emit(call, none());
        skipped();
        emit(pop_any, none());
      }
    }
  }

  // An instruction that faults at CPL 3: #UD, #BP, #GP (hlt, cli, a non-canonical address),
  // #PF (a supervisor page). No IDT: triple fault at this instruction on both backends.
  void t_fault() {
    p_.may_fault = true;
    switch (u(6)) {
      case 0: emit_bytes({0x0F, 0x0B}, none()); break;  // ud2
      case 1: emit_bytes({0xCC}, none()); break;        // int3
      case 2: emit_bytes({uint8_t(chance(50) ? 0xF4 : 0xFA)}, none()); break;  // hlt / cli
      case 3: {  // mov rax, [non-canonical]
        Enc e;
        e.size = 8;
        e.opcode = {0xA1};
        emit(with_imm(e, 0x8000000000000000ull | rng_() >> 1, 8), none());
        break;
      }
      default: {  // a load or store to the VMM's page tables (supervisor): #PF
        const Rm rm = mem_rm(absolute(vmm_page_table_address()));
        if (chance(50)) {
          emit(rr(8, {0x8B}, dst_reg({}), rm), none());
        } else {
          emit(rr(8, {0x89}, any_reg({}), rm), none());
        }
      }
    }
  }
  uint64_t vmm_page_table_address() { return 0x1000 + 8 * u(0x600); }

  // Self-modifying code: a store into the immediate of the next instruction (add al, imm8).
  void t_smc() {
    Mem m;
    m.rip = true;
    m.disp = 1;  // from the end of this mov to the imm8 of `add al, imm8` (04 ib)
    const uint8_t written = static_cast<uint8_t>(rng_());
    emit(with_imm(digit(1, {0xC6}, 0, mem_rm(m)), written, 1), none());
    emit_bytes({0x04, uint8_t(rng_())}, arith());
  }

  void t_nop() {
    static const std::vector<uint8_t> kNops[] = {
        {0x90}, {0x66, 0x90}, {0x0F, 0x1F, 0x00}, {0x0F, 0x1F, 0x40, 0x00},
        {0x0F, 0x1F, 0x44, 0x00, 0x00}, {0x66, 0x0F, 0x1F, 0x44, 0x00, 0x00},
        {0x0F, 0x1F, 0x80, 0x00, 0x00, 0x00, 0x00}, {0x0F, 0x1F, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00}};
    emit_bytes(kNops[u(std::size(kNops))], none());
  }

  void t_branch() {
    if (chance(20)) {  // jmp over bytes that are never executed
      const unsigned n = 1 + static_cast<unsigned>(u(12));
      emit_bytes({0xEB, uint8_t(n)}, none());
      Entry skipped;
      skipped.kind = Entry::kSkipped;
      for (unsigned i = 0; i < n; ++i) skipped.bytes.push_back(static_cast<uint8_t>(rng_()));
      out_->push_back(std::move(skipped));
      return;
    }
    const unsigned cc = static_cast<unsigned>(u(16));
    emit_bytes({uint8_t(0x70 | cc), 0}, Fx{condition_flags(cc), 0, 0, false});
    const size_t at = out_->size() - 1;
    const uint64_t undef_before = undef_;
    one(true);
    size_t len = 0;
    for (size_t i = at + 1; i < out_->size(); ++i) len += (*out_)[i].bytes.size();
    if (len > 127) throw std::logic_error("difftest generator: a skipped unit over 127 bytes");
    (*out_)[at].bytes[1] = static_cast<uint8_t>(len);
    undef_ |= undef_before;  // either path
  }

  // One template (in_unit: inside a jcc-skipped unit — nothing that moves RSP, no branch).
  void one(bool in_unit) {
    struct T {
      void (Gen::*fn)();
      unsigned weight;
      bool stack;
    };
    static constexpr T kTemplates[] = {
        {&Gen::t_alu, 20, false},     {&Gen::t_test, 3, false},    {&Gen::t_incdec, 3, false},
        {&Gen::t_notneg, 3, false},   {&Gen::t_mul1, 3, false},    {&Gen::t_imul, 3, false},
        {&Gen::t_div, 3, false},      {&Gen::t_shift, 9, false},   {&Gen::t_shxd, 3, false},
        {&Gen::t_bt, 4, false},       {&Gen::t_bsf, 3, false},     {&Gen::t_cmov, 4, false},
        {&Gen::t_setcc, 3, false},    {&Gen::t_xchg, 3, false},    {&Gen::t_xadd, 2, false},
        {&Gen::t_cmpxchg, 2, false},  {&Gen::t_movx, 3, false},    {&Gen::t_lea, 3, false},
        {&Gen::t_mov, 4, false},      {&Gen::t_bswap, 1, false},   {&Gen::t_convert, 2, false},
        {&Gen::t_pushpop, 5, true},   {&Gen::t_flags_stack, 2, true},
        {&Gen::t_flagops, 3, false},  {&Gen::t_nop, 1, false},     {&Gen::t_branch, 3, true},
        {&Gen::t_string, 4, false},   {&Gen::t_control, 3, true},  {&Gen::t_smc, 1, false},
    };
    unsigned total = 0;
    for (const T& t : kTemplates) {
      if (in_unit && t.stack) continue;
      if (!opt_.branches && t.fn == &Gen::t_branch) continue;
      total += t.weight;
    }
    uint64_t pick = u(total);
    for (const T& t : kTemplates) {
      if (in_unit && t.stack) continue;
      if (!opt_.branches && t.fn == &Gen::t_branch) continue;
      if (pick < t.weight) {
        (this->*t.fn)();
        return;
      }
      pick -= t.weight;
    }
  }

  std::mt19937_64 rng_;
  const GenOptions& opt_;
  Program& p_;
  std::vector<Entry>* out_;
  uint64_t undef_ = 0;
  unsigned stack_bytes_ = 0;
  bool allow_index_ = true;
};

void add_epilogue(Program& p) {
  auto add = [&](std::vector<uint8_t> bytes) {
    Entry e;
    e.bytes = std::move(bytes);
    e.kind = Entry::kEpilogue;
    e.undefined_before = p.undefined_flags;
    p.entries.push_back(std::move(e));
  };
  for (int r = 0; r < 16; ++r) {  // mov [results + 8r], r64
    add(encode(rr(8, {0x89}, r, mem_rm(absolute(kResultsAddress + 8 * r)))));
  }
  add({0x9C});  // pushfq
  add({0x58});  // pop rax
  add(encode(rr(8, {0x89}, kRax, mem_rm(absolute(kResultsAddress + kResultFlagsOffset)))));
  add(encode(with_imm(digit(4, {0xC7}, 0, mem_rm(absolute(kResultsAddress + kResultMarkerOffset))),
                      kMarker, 4)));
  add({0xF4});  // hlt: #GP at CPL 3 → #DF → triple fault (no IDT)
}

}  // namespace

void finish(Program& p) {
  p.code.clear();
  bool epilogue = false;
  for (Entry& e : p.entries) {
    if (e.kind == Entry::kEpilogue && !epilogue) {
      epilogue = true;
      p.epilogue_address = kCodeAddress + p.code.size();
    }
    e.offset = static_cast<uint32_t>(p.code.size());
    p.code.insert(p.code.end(), e.bytes.begin(), e.bytes.end());
  }
  p.hlt_address = kCodeAddress + p.code.size() - 1;
  if (p.code.size() > kCodeCapacity) throw std::length_error("difftest: program too long");
}

Program generate(uint64_t seed, uint64_t index, const GenOptions& options) {
  Program p;
  p.seed = seed;
  p.index = index;
  Gen g(seed, index, options, p);
  g.start_state();
  g.body(options.length);
  add_epilogue(p);
  finish(p);
  return p;
}

Program make_program(uint64_t seed, uint64_t index, const std::vector<std::vector<uint8_t>>& body,
                     const GenOptions& options) {
  Program p;
  p.seed = seed;
  p.index = index;
  Gen g(seed, index, options, p);
  g.start_state();
  for (const auto& bytes : body) {
    Entry e;
    e.bytes = bytes;
    e.undefined_before = kStatusFlags;
    p.entries.push_back(std::move(e));
  }
  p.undefined_flags = kStatusFlags;  // unknown: compare only registers and memory strictly
  p.flags_tracked = false;
  add_epilogue(p);
  finish(p);
  return p;
}

std::string flags_string(uint64_t f) {
  static constexpr std::pair<uint64_t, const char*> kNames[] = {
      {kFlagCF, "CF"}, {kFlagPF, "PF"}, {kFlagAF, "AF"}, {kFlagZF, "ZF"}, {kFlagSF, "SF"},
      {kFlagTF, "TF"}, {kFlagIF, "IF"}, {kFlagDF, "DF"}, {kFlagOF, "OF"}, {1ull << 14, "NT"},
      {1ull << 16, "RF"}, {1ull << 17, "VM"}, {kFlagAC, "AC"}, {1ull << 19, "VIF"},
      {1ull << 20, "VIP"}, {1ull << 21, "ID"}};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%#" PRIx64 " [", f);
  std::string s = buf;
  bool first = true;
  for (const auto& [bit, name] : kNames) {
    if (f & bit) {
      if (!first) s += ' ';
      s += name;
      first = false;
    }
  }
  if (const uint64_t iopl = (f >> 12) & 3) s += std::string(first ? "" : " ") + "IOPL=" + std::to_string(iopl);
  return s + "]";
}

std::string describe(const Program& p) {
  static constexpr const char* kNames[16] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                             "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
  std::string s;
  char buf[160];
  std::snprintf(buf, sizeof buf, "program seed=%" PRIu64 " index=%" PRIu64 " (difftest --seed %" PRIu64
                " --only %" PRIu64 ")\n  start:", p.seed, p.index, p.seed, p.index);
  s += buf;
  for (int i = 0; i < 16; ++i) {
    std::snprintf(buf, sizeof buf, "%s %s=%016" PRIx64, i % 4 == 0 ? "\n   " : "", kNames[i], p.gpr[i]);
    s += buf;
  }
  s += "\n    rflags=" + flags_string(p.rflags) + "; scratch and stack: random bytes of the seed\n";
  for (const Entry& e : p.entries) {
    const uint64_t at = kCodeAddress + e.offset;
    std::string hex;
    for (uint8_t b : e.bytes) {
      std::snprintf(buf, sizeof buf, "%02x", b);
      hex += buf;
    }
    std::string text;
    if (e.kind == Entry::kSkipped) {
      text = "(bytes jumped over)";
    } else {
      const auto d = x86::disassemble(e.bytes, x86::CpuMode::kLong64, at);
      text = d.ok ? d.text : "(bad)";
      if (d.ok && d.length != e.bytes.size()) text += "  !! length " + std::to_string(d.length);
    }
    const char* tag = e.kind == Entry::kGuard      ? "  ; guard"
                      : e.kind == Entry::kDefiner  ? "  ; defines flags"
                      : e.kind == Entry::kEpilogue ? "  ; epilogue"
                                                   : "";
    std::snprintf(buf, sizeof buf, "  %06" PRIx64 ": %-24s ", at, hex.c_str());
    s += buf + text + tag + "\n";
  }
  if (p.undefined_flags) s += "  status flags undefined at the end: " + flags_string(p.undefined_flags) + "\n";
  return s;
}

}  // namespace trapscope::difftest
