// sim/interp/undefined.hpp — where the SDM says "undefined": which CPU the simulator follows
// there, what it does, and (for the differential tests) which flags each instruction leaves
// undefined.
//
// [SECTION] The CPU the model follows
//   Flags (and a few results) that the Intel SDM leaves undefined differ between vendors and
//   between generations of one vendor: after `bsf` an AMD Zen 4 clears CF/OF/SF/AF and sets PF
//   from the index, an older EPYC left them unchanged, Intel processors do something else again.
//   The simulator follows ONE CPU, kModelCpu below:
//     AMD EPYC, CPUID vendor "AuthenticAMD", family 0x19 (25), model 0x11 (17): Zen 4
//     ("Genoa", AMD's Processor Programming Reference for Family 19h Model 11h).
//   Measured on 2026-12-06 natively at CPL 3 by the differential tests of
//   tests/test_sim_integer.cpp ("[diff]", every undefined flag compared, ~16,000 runs) and by a
//   probe of 200,000 random bsf/bsr (16/32/64-bit, zero and non-zero sources). Family and model
//   are CPUID leaf 1 EAX with the extended fields added (Intel SDM Vol. 2A "CPUID", Figure 3-6;
//   AMD APM Vol. 3, CPUID Fn0000_0001_EAX): host_cpu() below.
//   A test that compares the simulator with the host CPU compares undefined flags only when
//   host_is_model_cpu(); elsewhere it masks undefined_flags() and says so (tests/host_cpu.hpp).
//   docs/references.md explains the choice.
//
// [SECTION] What the model does (the values computed in sim/interp/alu.cpp, datamov.cpp)
//   and/or/xor/test     AF = 0
//   shl/shr/sar         AF = 1; OF for counts > 1: shl MSB(r) ^ CF, shr/sar bit N-1 ^ bit N-2 of r
//                       (0 for shr, 0 for sar); 8/16-bit counts past the width: shl/shr give
//                       0 with CF = 0 (shl by exactly the width: CF = bit 0), sar gives the sign
//   rol/ror/rcl/rcr     OF for counts > 1: rol/rcl MSB(r) ^ CF, ror/rcr bit N-1 ^ bit N-2 of r,
//                       also when the rotation is a multiple of the width (rcl al, 9 sets OF)
//   shld/shrd           AF = 1; OF as shl/shr above; 16-bit counts 16..31: see double_shift
//   mul/imul            SF, ZF, AF, PF unchanged
//   div/idiv            SF = ZF = PF = 0, AF = 1, CF and OF unchanged
//   bt/bts/btr/btc      OF, SF, AF, PF unchanged
//   bsf/bsr             CF = OF = SF = AF = 0, ZF = (source == 0), PF = parity of the index (of 0
//                       for a zero source); zero source: destination unchanged (AMD documents
//                       it: APM Vol. 3 "BSF"; a 32-bit register keeps its upper half)
//   bswap r16           the low word becomes 0 (datamov.cpp)
//   These are also Bochs's choices except mul/imul (Bochs: SF/ZF/PF from the low half, AF = 0),
//   div/idiv (Bochs: unchanged), the shift AF (Bochs: 0), bsf/bsr flags (Bochs: unchanged) and
//   16-bit shld/shrd past 16.
#pragma once

#include <cpuid.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "sim/arch.hpp"

namespace trapscope::sim {

struct CpuIdentity {
  std::string vendor;  // CPUID leaf 0: "AuthenticAMD", "GenuineIntel"
  unsigned family = 0;  // base family + extended family (when the base is 0xF)
  unsigned model = 0;   // (extended model << 4) + model (base family 0x6 or 0xF)
  bool operator==(const CpuIdentity&) const = default;
};

// The CPU whose undefined flags the simulator models (see the head of this file).
inline const CpuIdentity& model_cpu() {
  static const CpuIdentity cpu{"AuthenticAMD", 0x19, 0x11};
  return cpu;
}
inline constexpr std::string_view kModelCpuName = "AMD EPYC, Zen 4";

// This host's CPU, from CPUID leaves 0 and 1.
inline CpuIdentity host_cpu() {
  CpuIdentity id;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return id;
  char vendor[13] = {};
  std::memcpy(vendor, &b, 4);
  std::memcpy(vendor + 4, &d, 4);
  std::memcpy(vendor + 8, &c, 4);
  id.vendor = vendor;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return id;
  const unsigned base_family = (a >> 8) & 0xF, base_model = (a >> 4) & 0xF;
  id.family = base_family == 0xF ? base_family + ((a >> 20) & 0xFF) : base_family;
  id.model = base_family == 0x6 || base_family == 0xF ? (((a >> 16) & 0xF) << 4) | base_model
                                                      : base_model;
  return id;
}

// True when this host is the CPU the model follows: only then may a test compare flags (and
// results) the SDM leaves undefined.
inline bool host_is_model_cpu() {
  static const bool same = host_cpu() == model_cpu();
  return same;
}

inline std::string cpu_name(const CpuIdentity& id) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s family 0x%x model 0x%x",
                id.vendor.empty() ? "(unknown)" : id.vendor.c_str(), id.family, id.model);
  return buf;
}

// [SECTION] The status flags the SDM leaves undefined, per instruction (Intel SDM Vol. 2, each
// instruction's "Flags Affected"). `bits` is the operand width; for shifts and rotates `count`
// is the count after the CPU masks it (& 0x1F, & 0x3F for 64-bit operands), kAnyCount when it
// is not known (a count in CL): the union over all counts. Instructions not listed: 0.
inline constexpr unsigned kAnyCount = ~0u;

constexpr uint64_t undefined_flags(Op op, unsigned bits = 64, unsigned count = kAnyCount) {
  const bool any = count == kAnyCount;
  switch (op) {
    case Op::kAnd: case Op::kOr: case Op::kXor: case Op::kTest:
      return kAF;
    case Op::kShl: case Op::kShr: case Op::kSar: {
      // AF for any non-zero count, OF past 1, and CF for shl/shr counts reaching the width
      // (possible for 8- and 16-bit operands only).
      if (count == 0) return 0;
      const bool cf = op != Op::kSar && bits <= 16 && (any || count >= bits);
      return kAF | (any || count > 1 ? kOF : 0) | (cf ? kCF : 0);
    }
    case Op::kRol: case Op::kRor: case Op::kRcl: case Op::kRcr:
      return any || count > 1 ? kOF : 0;
    case Op::kShld: case Op::kShrd:
      // Past the operand size (16-bit operands, counts 17..31) result and flags are undefined.
      if (count == 0) return 0;
      if (bits == 16 && (any || count > 16)) return kArithFlags;
      return kAF | (any || count > 1 ? kOF : 0);
    case Op::kMul: case Op::kImul:
      return kSF | kZF | kAF | kPF;
    case Op::kDiv: case Op::kIdiv:
      return kArithFlags;
    case Op::kBt: case Op::kBts: case Op::kBtr: case Op::kBtc:
      return kOF | kSF | kAF | kPF;
    case Op::kBsf: case Op::kBsr:
      return kCF | kOF | kSF | kAF | kPF;
    default:
      return 0;
  }
}

}  // namespace trapscope::sim
