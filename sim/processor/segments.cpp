// sim/processor/segments.cpp — descriptor reads and segment-register loads: the hidden part a
// segment register gets from a descriptor, the real-mode rule, the protected-mode checks of data
// and stack segment loads, CS loads, and the nulling of data segments on a return to an outer
// level (declared and documented in sim/processor/processor.hpp).
//
// Sources (Intel SDM Vol. 3A): 3.4.2–3.4.5 (selectors, hidden parts, descriptors, the accessed
// bit), 3.5 (system descriptor types), 5.6 and 5.7 (privilege checks on data and stack segment
// loads), 20.1.1 (real-mode segment loads); Vol. 2 MOV Sreg, POP Sreg, LDS/LES/LFS/LGS/LSS, RET
// and IRET (RETURN-TO-OUTER-PRIVILEGE-LEVEL).
#include "sim/processor/processor.hpp"

namespace trapscope::sim::processor {

// [SECTION] Descriptors and the hidden parts they give

// Reads the descriptor `selector` names from the GDT or (TI=1) the LDT. Returns false if the
// selector lies outside the table's limit (or TI=1 with no LDT): callers raise #GP(selector).
// `bytes` = 16 reads a 16-byte system descriptor (IA-32e mode).
bool read_descriptor(Cpu& cpu, uint16_t selector, Descriptor* d, unsigned bytes) {
  const CpuState& s = cpu.s;
  uint64_t base;
  uint32_t limit;
  if (selector & 4) {
    if (s.ldtr.unusable || (s.ldtr.selector & kSelectorMask) == 0 || !s.ldtr.present) {
      return false;
    }
    base = s.ldtr.base;
    limit = s.ldtr.limit;
  } else {
    base = s.gdtr.base;
    limit = s.gdtr.limit;
  }
  const uint32_t offset = selector & 0xFFF8u;
  if (offset + bytes - 1 > limit) return false;
  d->address = system_linear(cpu, base, offset);
  d->lo = cpu.read_system(d->address, 8);
  d->hi = bytes == 16 ? cpu.read_system(system_linear(cpu, base, offset + 8), 8) : 0;
  return true;
}

// Sets the accessed bit of a code/data descriptor (SDM 3.4.5.1: on the first load).
void mark_accessed(Cpu& cpu, Descriptor& d) {
  if (!d.s() || (d.type() & 1)) return;
  d.lo |= 1ull << 40;
  cpu.write_system(d.address + 5, 1, (d.lo >> 40) & 0xFF);
}

// The hidden part a segment register gets from a code/data descriptor (SDM 3.4.3).
Segment segment_from(const Descriptor& d, uint16_t selector) {
  Segment sg;
  sg.selector = selector;
  sg.base = d.s() ? d.base() : d.base64();
  sg.limit = d.limit();
  sg.type = d.type();
  sg.s = d.s();
  sg.dpl = d.dpl();
  sg.present = d.present();
  sg.db = d.db();
  sg.l = d.l();
  sg.g = d.g();
  sg.avl = d.avl();
  sg.unusable = 0;
  return sg;
}

// A null selector's hidden part: unusable, so that a later use faults (outside 64-bit mode).
Segment null_segment(uint16_t selector, uint8_t dpl) {
  Segment sg;
  sg.selector = selector;
  sg.base = 0;
  sg.limit = 0;
  sg.type = 0x3;
  sg.s = 1;
  sg.dpl = dpl;
  sg.present = 0;
  sg.db = 0;
  sg.l = 0;
  sg.g = 0;
  sg.avl = 0;
  sg.unusable = 1;
  return sg;
}

// [SECTION] Segment-register loads

// Real-mode (and CR0.PE=0) segment load: base = selector << 4; limit and attributes stay
// (SDM 20.1.1; this is what makes "unreal mode" possible).
void load_real(Cpu& cpu, SegReg seg, uint16_t selector) {
  Segment& sg = cpu.s.seg[seg];
  sg.selector = selector;
  sg.base = uint64_t{selector} << 4;
  sg.present = 1;
  sg.unusable = 0;
}

// After a return to an outer privilege level (RET, IRET): data segment registers whose segment
// the new CPL may not use are nulled (SDM Vol. 2 RET/IRET "RETURN-TO-OUTER-PRIVILEGE-LEVEL").
void clear_inaccessible_segments(Cpu& cpu, uint8_t new_cpl) {
  for (SegReg r : {kEs, kFs, kGs, kDs}) {
    Segment& sg = cpu.s.seg[r];
    if (sg.unusable || !sg.s) continue;
    const bool code = sg.type & 0x8;
    const bool conforming = code && (sg.type & 0x4);
    if (!conforming && sg.dpl < new_cpl) {
      const uint64_t base = sg.base;
      sg = null_segment(0, 0);
      if (r == kFs || r == kGs) sg.base = base;  // 64-bit FS/GS bases live in MSRs too
    }
  }
}

// Loads CS from a checked code descriptor with RPL = the new CPL.
void load_cs(Cpu& cpu, Descriptor& d, uint16_t selector, uint8_t cpl) {
  mark_accessed(cpu, d);
  cpu.s.seg[kCs] = segment_from(d, static_cast<uint16_t>((selector & kSelectorMask) | cpl));
}

// [SECTION] Data and stack segment loads (SDM 5.6, 5.7; Vol. 2 MOV Sreg, POP Sreg, LDS…)

void load_segment(Cpu& cpu, SegReg seg, uint16_t selector) {
  CpuState& s = cpu.s;
  if (seg == kCs) throw Unsupported("load_segment(CS): CS is loaded by far transfers only");
  if (real_mode(cpu)) return load_real(cpu, seg, selector);
  if (s.rflags & kVM) no_v86();
  const uint8_t cpl = cpu.cpl();
  const uint8_t rpl = selector & 3;
  const uint32_t err = selector & kSelectorMask;

  if ((selector & kSelectorMask) == 0) {
    if (seg == kSs) {
      // A null SS is allowed only in 64-bit mode at CPL < 3 with RPL = CPL (Vol. 2 MOV).
      if (!cpu.mode64() || cpl == 3 || rpl != cpl) raise(vec::kGP, 0);
      s.seg[kSs] = null_segment(selector, cpl);
      return;
    }
    s.seg[seg] = null_segment(selector, 0);  // a later use faults with #GP(0)
    return;
  }

  Descriptor d;
  if (!read_descriptor(cpu, selector, &d)) raise(vec::kGP, err);
  if (seg == kSs) {
    // SDM 5.7: RPL = CPL, writable data segment with DPL = CPL.
    if (rpl != cpl || !d.writable() || d.dpl() != cpl) raise(vec::kGP, err);
    if (!d.present()) raise(vec::kSS, err);
  } else {
    // SDM 5.6: a data or readable code segment; for data and non-conforming code the DPL
    // must be >= both CPL and RPL.
    if (!d.readable()) raise(vec::kGP, err);
    if (!d.conforming() && (d.dpl() < cpl || d.dpl() < rpl)) raise(vec::kGP, err);
    if (!d.present()) raise(vec::kNP, err);
  }
  mark_accessed(cpu, d);
  s.seg[seg] = segment_from(d, selector);
}

}  // namespace trapscope::sim::processor
