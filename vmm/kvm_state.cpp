#include "vmm/kvm_state.hpp"

namespace trapscope::vmm {

x86::Segment from_kvm(const kvm_segment& k) {
  x86::Segment s;
  s.selector = k.selector;
  s.base = k.base;
  s.limit = k.limit;
  s.type = k.type;
  s.s = k.s;
  s.dpl = k.dpl;
  s.present = k.present;
  s.db = k.db;
  s.l = k.l;
  s.g = k.g;
  s.avl = k.avl;
  s.unusable = k.unusable;
  return s;
}

kvm_segment to_kvm(const x86::Segment& s) {
  kvm_segment k{};
  k.selector = s.selector;
  k.base = s.base;
  k.limit = s.limit;
  k.type = s.type;
  k.s = s.s;
  k.dpl = s.dpl;
  k.present = s.present;
  k.db = s.db;
  k.l = s.l;
  k.g = s.g;
  k.avl = s.avl;
  k.unusable = s.unusable;
  return k;
}

x86::CpuState from_kvm(const kvm_regs& r, const kvm_sregs& s) {
  x86::CpuState c;
  const uint64_t gprs[16] = {r.rax, r.rcx, r.rdx, r.rbx, r.rsp, r.rbp, r.rsi, r.rdi,
                           r.r8,  r.r9,  r.r10, r.r11, r.r12, r.r13, r.r14, r.r15};
  for (int i = 0; i < 16; ++i) c.gpr[i] = gprs[i];
  c.rip = r.rip;
  c.rflags = r.rflags;
  c.seg[x86::kEs] = from_kvm(s.es);
  c.seg[x86::kCs] = from_kvm(s.cs);
  c.seg[x86::kSs] = from_kvm(s.ss);
  c.seg[x86::kDs] = from_kvm(s.ds);
  c.seg[x86::kFs] = from_kvm(s.fs);
  c.seg[x86::kGs] = from_kvm(s.gs);
  c.tr = from_kvm(s.tr);
  c.ldtr = from_kvm(s.ldt);
  c.gdtr = {s.gdt.base, s.gdt.limit};
  c.idtr = {s.idt.base, s.idt.limit};
  c.cr0 = s.cr0;
  c.cr2 = s.cr2;
  c.cr3 = s.cr3;
  c.cr4 = s.cr4;
  c.cr8 = s.cr8;
  c.efer = s.efer;
  return c;
}

void to_kvm(const x86::CpuState& c, kvm_regs* r, kvm_sregs* s) {
  __u64* gprs[16] = {&r->rax, &r->rcx, &r->rdx, &r->rbx, &r->rsp, &r->rbp, &r->rsi, &r->rdi,
                   &r->r8,  &r->r9,  &r->r10, &r->r11, &r->r12, &r->r13, &r->r14, &r->r15};
  for (int i = 0; i < 16; ++i) *gprs[i] = c.gpr[i];
  r->rip = c.rip;
  r->rflags = c.rflags;
  s->es = to_kvm(c.seg[x86::kEs]);
  s->cs = to_kvm(c.seg[x86::kCs]);
  s->ss = to_kvm(c.seg[x86::kSs]);
  s->ds = to_kvm(c.seg[x86::kDs]);
  s->fs = to_kvm(c.seg[x86::kFs]);
  s->gs = to_kvm(c.seg[x86::kGs]);
  s->tr = to_kvm(c.tr);
  s->ldt = to_kvm(c.ldtr);
  s->gdt.base = c.gdtr.base;
  s->gdt.limit = c.gdtr.limit;
  s->idt.base = c.idtr.base;
  s->idt.limit = c.idtr.limit;
  s->cr0 = c.cr0;
  s->cr2 = c.cr2;
  s->cr3 = c.cr3;
  s->cr4 = c.cr4;
  s->cr8 = c.cr8;
  s->efer = c.efer;
}

}  // namespace trapscope::vmm
