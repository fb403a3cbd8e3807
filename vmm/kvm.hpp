// vmm/kvm.hpp — RAII wrappers for the three kinds of KVM file descriptor.
//
//   Kvm   the system fd (/dev/kvm): API version, capabilities, supported CPUID, VM creation
//   Vm    a VM fd: memory slots, vCPU creation
//   Vcpu  a vCPU fd and its mmap'ed `struct kvm_run`: registers, CPUID, guest debug, KVM_RUN
//
// Every ioctl is checked: a failure throws KvmError carrying the ioctl's name and errno (its
// text in what()). Source: the KVM API documentation (Documentation/virt/kvm/api.rst), section 4
// for the ioctls and section 5 for `struct kvm_run`. Nothing outside Vcpu::run() reads the
// kvm_run exit union: run() returns a typed platform::VcpuExit (platform/exit.hpp).
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "platform/exit.hpp"

namespace trapscope::vmm {

class KvmError : public std::runtime_error {
 public:
  KvmError(std::string op, int err);
  const std::string& op() const { return op_; }  // e.g. "KVM_CREATE_VM"
  int error() const { return err_; }             // errno value

 private:
  std::string op_;
  int err_;
};

// An owned file descriptor (closed on destruction). -1 = none.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
  int get() const { return fd_; }
  int release() { int f = fd_; fd_ = -1; return f; }

 private:
  int fd_ = -1;
};

class Vcpu;
class Vm;

class Kvm {
 public:
  // Opens /dev/kvm (or `path`) and checks KVM_GET_API_VERSION == 12.
  static Kvm open(const char* path = "/dev/kvm");
  explicit Kvm(Fd fd) : fd_(std::move(fd)) {}

  int api_version() const;                    // KVM_GET_API_VERSION
  int check_extension(int capability) const;  // KVM_CHECK_EXTENSION: 0 = not supported
  int vcpu_mmap_size() const;                 // KVM_GET_VCPU_MMAP_SIZE, bytes
  std::vector<kvm_cpuid_entry2> supported_cpuid() const;  // KVM_GET_SUPPORTED_CPUID
  Vm create_vm() const;                       // KVM_CREATE_VM
  int fd() const { return fd_.get(); }

 private:
  Fd fd_;
};

class Vm {
 public:
  explicit Vm(Fd fd, int vcpu_mmap_size) : fd_(std::move(fd)), mmap_size_(vcpu_mmap_size) {}

  int check_extension(int capability) const;  // KVM_CHECK_EXTENSION on the VM fd
  // KVM_SET_USER_MEMORY_REGION: guest-physical [gpa, gpa + bytes) backed by host memory at hva.
  void set_user_memory_region(uint32_t slot, uint64_t gpa, uint64_t bytes, void* hva,
                              uint32_t flags = 0);
  void set_tss_addr(uint64_t gpa);  // KVM_SET_TSS_ADDR (VMX real-mode support), 3 pages
  // KVM_GET_DIRTY_LOG of a slot registered with KVM_MEM_LOG_DIRTY_PAGES: a bit per 4 KiB page
  // written since the last call (the call clears the log), `pages` bits in 64-bit words.
  std::vector<uint64_t> get_dirty_log(uint32_t slot, uint64_t pages) const;
  Vcpu create_vcpu(int id);         // KVM_CREATE_VCPU + mmap of its kvm_run
  int fd() const { return fd_.get(); }

 private:
  Fd fd_;
  int mmap_size_;
};

class Vcpu {
 public:
  // Takes ownership of `fd`; maps its kvm_run (mmap_size bytes). Throws KvmError("mmap", …).
  Vcpu(Fd fd, int mmap_size);
  // A vCPU over an fd that has no kvm_run mapping (for tests of the error paths: every call
  // then fails with the ioctl's errno, and run() with EBADF-style errors from KVM_RUN).
  static Vcpu from_raw_fd_unmapped(int fd);
  Vcpu(Vcpu&& o) noexcept;
  Vcpu& operator=(Vcpu&&) = delete;
  Vcpu(const Vcpu&) = delete;
  ~Vcpu();

  kvm_regs get_regs() const;                  // KVM_GET_REGS
  void set_regs(const kvm_regs& regs);        // KVM_SET_REGS
  kvm_sregs get_sregs() const;                // KVM_GET_SREGS
  void set_sregs(const kvm_sregs& sregs);     // KVM_SET_SREGS
  kvm_fpu get_fpu() const;                    // KVM_GET_FPU
  kvm_vcpu_events get_vcpu_events() const;    // KVM_GET_VCPU_EVENTS
  void set_fpu(const kvm_fpu& fpu);           // KVM_SET_FPU
  void set_vcpu_events(const kvm_vcpu_events& events);  // KVM_SET_VCPU_EVENTS
  kvm_debugregs get_debugregs() const;        // KVM_GET_DEBUGREGS
  void set_debugregs(const kvm_debugregs& dr);  // KVM_SET_DEBUGREGS
  // KVM_GET_MSRS / KVM_SET_MSRS of the MSRs `index` names (values in the same order). Throws
  // KvmError if KVM refuses one (the ioctl returns how many it processed; fewer = refused).
  std::vector<uint64_t> get_msrs(const std::vector<uint32_t>& index) const;
  void set_msrs(const std::vector<uint32_t>& index, const std::vector<uint64_t>& values);
  void set_cpuid(const std::vector<kvm_cpuid_entry2>& entries);  // KVM_SET_CPUID2
  void set_guest_debug(const kvm_guest_debug& dbg);               // KVM_SET_GUEST_DEBUG
  kvm_translation translate(uint64_t linear) const;               // KVM_TRANSLATE
  // KVM's binary statistics of this vCPU (KVM API 4.133 KVM_GET_STATS_FD, "struct
  // kvm_stats_header" / "struct kvm_stats_desc"): every single-value statistic (histograms left
  // out) by name, e.g. "exits" (all VM exits, those KVM handles in the kernel included),
  // "io_exits", "halt_exits", "pf_taken", "invlpg", "insn_emulation", "hypercalls"; counts since
  // the vCPU was created. Empty when the kernel has no stats fd (before Linux 5.14).
  std::vector<std::pair<std::string, uint64_t>> stats() const;

  // KVM_RUN once. Returns the typed exit; spans inside it point into kvm_run and are valid
  // until the next run(). A run interrupted by a signal or immediate_exit returns
  // platform::ExitInterrupted. Other failures throw KvmError("KVM_RUN", errno).
  platform::VcpuExit run();

  // Ask KVM to copy the registers into kvm_run at every exit (KVM_CAP_SYNC_REGS), so that
  // tracing needs no KVM_GET_REGS/SREGS ioctl per exit.
  void set_sync_regs(bool on);
  bool sync_regs() const { return sync_regs_; }
  const kvm_regs& synced_regs() const;    // valid after run() when sync_regs()
  const kvm_sregs& synced_sregs() const;  // valid after run() when sync_regs()

  // Async-signal-safe: makes the current or next KVM_RUN return at once (immediate_exit).
  void kick() const;
  void clear_kick() const;
  int fd() const { return fd_.get(); }

 private:
  Vcpu(Fd fd, kvm_run* run, size_t size) : fd_(std::move(fd)), run_(run), run_size_(size) {}
  Fd fd_;
  kvm_run* run_ = nullptr;
  size_t run_size_ = 0;
  bool sync_regs_ = false;
};

}  // namespace trapscope::vmm
