// x86/state.hpp — the architectural state of one x86-64 logical processor, as plain data.
//
// This is also the register view of the backend interface (backend/backend.hpp): the KVM backend
// converts kvm_regs/kvm_sregs to and from it, so views and tests see the same shape on either
// backend. Segment registers hold their hidden (descriptor-cache) part in KVM's terms
// (`struct kvm_segment`), Intel SDM Vol. 3A 3.4.3.
#pragma once

#include <cstdint>

#include "x86/mode.hpp"

namespace trapscope::x86 {

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

// RFLAGS, CR0, CR4 and EFER bits: x86/mode.hpp.

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

  // CPL and mode: x86/mode.hpp (SS.DPL, SDM Vol. 3A 5.5).
  uint8_t cpl() const { return cpl_of(cr0, rflags, seg[kSs].dpl); }
  bool long_mode_active() const { return efer & kEferLma; }
  bool code64() const { return long_mode_active() && seg[kCs].l; }
  CpuMode mode() const { return mode_of(cr0, efer, rflags, seg[kCs].l, seg[kCs].db); }
};

}  // namespace trapscope::x86
