// sim/processor/control_registers.cpp — writes to CR0, CR3 and CR4: reserved-bit and
// combination checks, IA-32e mode activation and deactivation, and the TLB invalidation each
// change requires (declared and documented in sim/processor/processor.hpp; MOV CR, LMSW and
// CLTS in sim/interp/system.cpp call them).
//
// Sources (Intel SDM Vol. 3A): 2.5 (control registers, reserved bits, PG without PE, NW without
// CD), 2.2.1 (EFER), 9.8.5 (initializing IA-32e mode: LMA set by enabling paging with LME and
// PAE; leaving it), 4.10.4.1 (operations that invalidate TLBs: MOV to CR3, to CR0 changing
// PG/WP, to CR4 changing PGE/PAE/PSE); Vol. 2 MOV (control registers).
#include "sim/processor/processor.hpp"

namespace trapscope::sim::processor {
namespace {

constexpr uint64_t kCr0Writable = kCr0Pe | kCr0Mp | kCr0Em | kCr0Ts | kCr0Et | kCr0Ne | kCr0Wp |
                                  kCr0Am | kCr0Nw | kCr0Cd | kCr0Pg;
// CR4 bits the model implements (and CPUID advertises): TSD, PSE, PAE, PGE, UMIP.
constexpr uint64_t kCr4Writable = kCr4Tsd | kCr4Pse | kCr4Pae | kCr4Pge | kCr4Umip;

}  // namespace

void write_cr0(Cpu& cpu, uint64_t value) {
  CpuState& s = cpu.s;
  if (value >> 32) raise(vec::kGP, 0);
  value = (value & kCr0Writable) | kCr0Et;  // other bits of 31:0 are ignored; ET is fixed 1
  if ((value & kCr0Pg) && !(value & kCr0Pe)) raise(vec::kGP, 0);
  if ((value & kCr0Nw) && !(value & kCr0Cd)) raise(vec::kGP, 0);
  const bool pg_on = (value & kCr0Pg) && !(s.cr0 & kCr0Pg);
  const bool pg_off = !(value & kCr0Pg) && (s.cr0 & kCr0Pg);
  uint64_t efer = s.efer;
  if (pg_on && (s.efer & kEferLme)) {
    // Activating IA-32e mode (SDM 9.8.5): needs CR4.PAE and a non-64-bit CS.
    if (!(s.cr4 & kCr4Pae) || s.seg[kCs].l) raise(vec::kGP, 0);
    efer |= kEferLma;
  }
  if (pg_off && (s.efer & kEferLma)) {
    if (cpu.mode64()) raise(vec::kGP, 0);  // leave 64-bit mode first (compatibility mode)
    efer &= ~kEferLma;
  }
  const uint64_t changed = value ^ s.cr0;
  s.cr0 = value;
  s.efer = efer;
  if (changed & (kCr0Pg | kCr0Pe | kCr0Wp)) cpu.flush_tlb();
}

void write_cr3(Cpu& cpu, uint64_t value) {
  if (cpu.s.long_mode_active() && (value >> 52)) raise(vec::kGP, 0);  // reserved bits
  cpu.s.cr3 = cpu.s.long_mode_active() ? value : value & 0xFFFFFFFFull;
  mmu_cr3_written(cpu);  // no PCIDs: every non-global TLB entry (SDM 4.10.4.1)
}

void write_cr4(Cpu& cpu, uint64_t value) {
  CpuState& s = cpu.s;
  if (value & ~kCr4Writable) raise(vec::kGP, 0);
  if (s.long_mode_active() && !(value & kCr4Pae)) raise(vec::kGP, 0);
  const uint64_t changed = value ^ s.cr4;
  s.cr4 = value;
  if (changed & (kCr4Pge | kCr4Pae | kCr4Pse)) cpu.flush_tlb();
}

}  // namespace trapscope::sim::processor
