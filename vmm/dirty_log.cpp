#include "vmm/dirty_log.hpp"

#include <cstring>
#include <exception>

#include "vmm/guest_memory.hpp"
#include "vmm/kvm.hpp"

namespace trapscope::vmm {
namespace {

DirtyLogProbe probe() {
  DirtyLogProbe p;
  try {
    Kvm kvm = Kvm::open();
    Vm vm = kvm.create_vm();
    GuestMemory mem(1 << 20);
    // mov byte [0x3000], 1 ; mov byte [0x5000], 1 ; hlt   (real mode, at 0x1000)
    static constexpr uint8_t kCode[] = {0xC6, 0x06, 0x00, 0x30, 0x01, 0xC6,
                                        0x06, 0x00, 0x50, 0x01, 0xF4};
    std::memcpy(mem.bytes().data() + 0x1000, kCode, sizeof kCode);
    vm.set_user_memory_region(0, 0, mem.size(), mem.host_address(), KVM_MEM_LOG_DIRTY_PAGES);
    Vcpu vcpu = vm.create_vcpu(0);
    kvm_sregs s = vcpu.get_sregs();
    s.cs.base = 0;
    s.cs.selector = 0;
    vcpu.set_sregs(s);
    kvm_regs r{};
    r.rip = 0x1000;
    r.rflags = 2;
    vcpu.set_regs(r);
    vm.get_dirty_log(0, mem.size() / 4096);  // start clean
    const platform::VcpuExit exit = vcpu.run();
    if (!std::holds_alternative<platform::ExitHlt>(exit)) {
      p.detail = "the probe guest did not halt";
      return p;
    }
    const auto log = vm.get_dirty_log(0, mem.size() / 4096);
    const int logged = static_cast<int>((log[0] >> 3) & 1) + static_cast<int>((log[0] >> 5) & 1);
    p.works = logged == 2;
    p.detail = std::to_string(logged) + " of 2 written pages logged";
  } catch (const std::exception& e) {
    p.detail = e.what();
  }
  return p;
}

}  // namespace

const DirtyLogProbe& host_dirty_log() {
  static const DirtyLogProbe p = probe();
  return p;
}

}  // namespace trapscope::vmm
