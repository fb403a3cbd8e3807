// sim/cpu_state.hpp — the architectural state of one x86-64 logical processor, as plain data.
//
// This is also the register view of the backend interface (backend/backend.hpp): the KVM backend
// converts kvm_regs/kvm_sregs to and from it, so views and tests see the same shape on either
// backend. Segment registers hold their hidden (descriptor-cache) part in KVM's terms
// (`struct kvm_segment`), Intel SDM Vol. 3A 3.4.3.
#pragma once

#include <cstdint>

#include "trace/event.hpp"

namespace trapscope::sim {

enum Gpr : uint8_t {
  kRax, kRcx, kRdx, kRbx, kRsp, kRbp, kRsi, kRdi,
  kR8, kR9, kR10, kR11, kR12, kR13, kR14, kR15,
};
enum SegReg : uint8_t { kEs, kCs, kSs, kDs, kFs, kGs, kSegCount };

struct Segment {
  uint16_t selector = 0;
  uint64_t base = 0;
  uint32_t limit = 0xFFFF;  // byte granular (already scaled by G)
  uint8_t type = 0x3;       // descriptor type field
  uint8_t s = 1, dpl = 0, present = 1, db = 0, l = 0, g = 0, avl = 0;
  uint8_t unusable = 0;
  bool operator==(const Segment&) const = default;  // member by member (never the padding)
};

struct DescriptorTable {
  uint64_t base = 0;
  uint16_t limit = 0xFFFF;
  bool operator==(const DescriptorTable&) const = default;
};

// RFLAGS bits (SDM Vol. 1 3.4.3).
inline constexpr uint64_t kCF = 1ull << 0, kPF = 1ull << 2, kAF = 1ull << 4, kZF = 1ull << 6,
                          kSF = 1ull << 7, kTF = 1ull << 8, kIF = 1ull << 9, kDF = 1ull << 10,
                          kOF = 1ull << 11, kIOPL = 3ull << 12, kNT = 1ull << 14,
                          kRF = 1ull << 16, kVM = 1ull << 17, kAC = 1ull << 18,
                          kVIF = 1ull << 19, kVIP = 1ull << 20, kID = 1ull << 21;
inline constexpr uint64_t kArithFlags = kCF | kPF | kAF | kZF | kSF | kOF;

// Control register and EFER bits used by the model (SDM Vol. 3A 2.5, 2.2.1).
inline constexpr uint64_t kCr0Pe = 1ull << 0, kCr0Mp = 1ull << 1, kCr0Em = 1ull << 2,
                          kCr0Ts = 1ull << 3, kCr0Et = 1ull << 4, kCr0Ne = 1ull << 5,
                          kCr0Wp = 1ull << 16, kCr0Am = 1ull << 18, kCr0Nw = 1ull << 29,
                          kCr0Cd = 1ull << 30, kCr0Pg = 1ull << 31;
inline constexpr uint64_t kCr4Vme = 1ull << 0, kCr4Pvi = 1ull << 1, kCr4Tsd = 1ull << 2,
                          kCr4De = 1ull << 3, kCr4Pse = 1ull << 4, kCr4Pae = 1ull << 5,
                          kCr4Pge = 1ull << 7, kCr4Osfxsr = 1ull << 9, kCr4Umip = 1ull << 11;
inline constexpr uint64_t kEferSce = 1ull << 0, kEferLme = 1ull << 8, kEferLma = 1ull << 10,
                          kEferNxe = 1ull << 11;

// MSR numbers (SDM Vol. 4).
inline constexpr uint32_t kMsrEfer = 0xC0000080, kMsrStar = 0xC0000081,
                          kMsrLstar = 0xC0000082, kMsrCstar = 0xC0000083,
                          kMsrFmask = 0xC0000084, kMsrFsBase = 0xC0000100,
                          kMsrGsBase = 0xC0000101, kMsrKernelGsBase = 0xC0000102,
                          kMsrTsc = 0x10;

struct CpuState {
  uint64_t gpr[16] = {};
  uint64_t rip = 0;
  uint64_t rflags = 0x2;
  Segment seg[kSegCount];
  Segment ldtr, tr;
  DescriptorTable gdtr, idtr;
  uint64_t cr0 = 0x60000010, cr2 = 0, cr3 = 0, cr4 = 0, cr8 = 0;
  uint64_t dr[8] = {0, 0, 0, 0, 0, 0, 0xFFFF0FF0, 0x400};
  uint64_t efer = 0, star = 0, lstar = 0, cstar = 0, fmask = 0, kernel_gs_base = 0;
  uint64_t tsc = 0;  // the model's time-stamp counter: retired instructions

  // Every architectural field compared (not memcmp: the structs have padding bytes).
  bool operator==(const CpuState&) const = default;

  // CPL: 0 in real mode, 3 in virtual-8086 mode, else SS.DPL, which the processor keeps equal
  // to the CPL (SDM Vol. 3A 5.5; VMX guest state does the same, 24.4.1). Not CS.RPL: between
  // setting CR0.PE and the far jump, CS still holds a real-mode selector whose low bits are not
  // a privilege level.
  uint8_t cpl() const {
    if (!(cr0 & kCr0Pe)) return 0;
    if (rflags & kVM) return 3;
    return seg[kSs].dpl;
  }
  bool long_mode_active() const { return efer & kEferLma; }
  bool code64() const { return long_mode_active() && seg[kCs].l; }
  trace::CpuMode mode() const {
    using trace::CpuMode;
    if (!(cr0 & kCr0Pe) || (rflags & kVM)) return CpuMode::kReal16;
    if (efer & kEferLma) {
      if (seg[1].l) return CpuMode::kLong64;  // seg[kCs]
      return seg[1].db ? CpuMode::kCompat32 : CpuMode::kCompat16;
    }
    return seg[1].db ? CpuMode::kProtected32 : CpuMode::kProtected16;
  }
};

}  // namespace trapscope::sim
