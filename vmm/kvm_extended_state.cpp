#include "vmm/kvm_extended_state.hpp"

#include <cstring>

namespace trapscope::vmm {
namespace {

const std::vector<uint32_t> kMsrs = {x86::kMsrStar, x86::kMsrLstar, x86::kMsrCstar,
                                     x86::kMsrFmask, x86::kMsrKernelGsBase};

}  // namespace

void read_msrs_and_debug(const Vcpu& vcpu, x86::CpuState* c) {
  const std::vector<uint64_t> v = vcpu.get_msrs(kMsrs);
  c->star = v[0];
  c->lstar = v[1];
  c->cstar = v[2];
  c->fmask = v[3];
  c->kernel_gs_base = v[4];
  const kvm_debugregs d = vcpu.get_debugregs();
  for (int i = 0; i < 4; ++i) c->dr[i] = d.db[i];
  c->dr[6] = d.dr6;
  c->dr[7] = d.dr7;
}

void write_msrs_and_debug(Vcpu& vcpu, const x86::CpuState& c) {
  vcpu.set_msrs(kMsrs, {c.star, c.lstar, c.cstar, c.fmask, c.kernel_gs_base});
  kvm_debugregs d{};
  for (int i = 0; i < 4; ++i) d.db[i] = c.dr[i];
  d.dr6 = c.dr[6];
  d.dr7 = c.dr[7];
  vcpu.set_debugregs(d);
}

x86::FpuState from_kvm(const kvm_fpu& f) {
  x86::FpuState s;
  static_assert(sizeof s.st == sizeof f.fpr && sizeof s.xmm == sizeof f.xmm);
  std::memcpy(s.st, f.fpr, sizeof s.st);
  std::memcpy(s.xmm, f.xmm, sizeof s.xmm);
  s.fcw = f.fcw;
  s.fsw = f.fsw;
  s.ftw = f.ftwx;
  s.last_opcode = f.last_opcode;
  s.last_ip = f.last_ip;
  s.last_dp = f.last_dp;
  s.mxcsr = f.mxcsr;
  return s;
}

kvm_fpu to_kvm(const x86::FpuState& s) {
  kvm_fpu f{};
  std::memcpy(f.fpr, s.st, sizeof s.st);
  std::memcpy(f.xmm, s.xmm, sizeof s.xmm);
  f.fcw = s.fcw;
  f.fsw = s.fsw;
  f.ftwx = s.ftw;
  f.last_opcode = s.last_opcode;
  f.last_ip = s.last_ip;
  f.last_dp = s.last_dp;
  f.mxcsr = s.mxcsr;
  return f;
}

x86::PendingEvents from_kvm(const kvm_vcpu_events& e) {
  x86::PendingEvents p;
  p.exception_injected = e.exception.injected;
  p.exception_pending = e.exception.pending;
  p.exception_has_error_code = e.exception.has_error_code;
  p.exception_vector = e.exception.nr;
  p.exception_error_code = e.exception.error_code;
  p.interrupt_injected = e.interrupt.injected;
  p.interrupt_soft = e.interrupt.soft;
  p.interrupt_vector = e.interrupt.nr;
  p.interrupt_shadow = e.interrupt.shadow;
  p.nmi_injected = e.nmi.injected;
  p.nmi_pending = e.nmi.pending;
  p.nmi_masked = e.nmi.masked;
  return p;
}

void to_kvm(const x86::PendingEvents& p, kvm_vcpu_events* e) {
  e->exception.injected = p.exception_injected;
  e->exception.pending = p.exception_pending;
  e->exception.has_error_code = p.exception_has_error_code;
  e->exception.nr = p.exception_vector;
  e->exception.error_code = p.exception_error_code;
  e->interrupt.injected = p.interrupt_injected;
  e->interrupt.soft = p.interrupt_soft;
  e->interrupt.nr = p.interrupt_vector;
  e->interrupt.shadow = p.interrupt_shadow;
  e->nmi.injected = p.nmi_injected;
  e->nmi.pending = p.nmi_pending;
  e->nmi.masked = p.nmi_masked;
  e->flags |= KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_NMI_PENDING;
}

}  // namespace trapscope::vmm
