#include "vmm/kvm.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>

namespace trapscope::vmm {
namespace {

// Runs an ioctl, retrying on EINTR, and throws KvmError(name, errno) on failure.
template <typename Arg>
int checked_ioctl(int fd, unsigned long request, const char* name, Arg arg) {
  int r;
  do {
    r = ::ioctl(fd, request, arg);
  } while (r < 0 && errno == EINTR);
  if (r < 0) throw KvmError(name, errno);
  return r;
}
#define KVM_IOCTL(fd, req, arg) checked_ioctl((fd), (req), #req, (arg))

// struct kvm_cpuid2 ends in a __DECLARE_FLEX_ARRAY, which in C++ adds an empty struct member:
// sizeof is 12 instead of the kernel's 8, and the size is encoded in the ioctl number. So the
// CPUID ioctls are defined here with the kernel's layout: an 8-byte header, then the entries.
struct Cpuid2Header {
  __u32 nent;
  __u32 padding;
};
static_assert(sizeof(Cpuid2Header) == 8);
constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, Cpuid2Header);
constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, Cpuid2Header);

std::vector<uint8_t> cpuid_buffer(uint32_t nent) {
  std::vector<uint8_t> buf(sizeof(Cpuid2Header) + size_t{nent} * sizeof(kvm_cpuid_entry2));
  Cpuid2Header h{nent, 0};
  std::memcpy(buf.data(), &h, sizeof h);
  return buf;
}

}  // namespace

KvmError::KvmError(std::string op, int err)
    : std::runtime_error(op + ": " + std::strerror(err)), op_(std::move(op)), err_(err) {}

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

// --- Kvm -------------------------------------------------------------------------------------

Kvm Kvm::open(const char* path) {
  int fd = ::open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) throw KvmError(std::string("open ") + path, errno);
  Kvm kvm{Fd(fd)};
  if (int v = kvm.api_version(); v != KVM_API_VERSION) {
    throw KvmError("KVM_GET_API_VERSION (got " + std::to_string(v) + ", need " +
                       std::to_string(KVM_API_VERSION) + ")",
                   ENOTSUP);
  }
  return kvm;
}

int Kvm::api_version() const { return KVM_IOCTL(fd_.get(), KVM_GET_API_VERSION, 0); }

int Kvm::check_extension(int capability) const {
  return KVM_IOCTL(fd_.get(), KVM_CHECK_EXTENSION, capability);
}

int Kvm::vcpu_mmap_size() const { return KVM_IOCTL(fd_.get(), KVM_GET_VCPU_MMAP_SIZE, 0); }

std::vector<kvm_cpuid_entry2> Kvm::supported_cpuid() const {
  for (uint32_t n = 64; n <= 4096; n *= 2) {
    std::vector<uint8_t> buf = cpuid_buffer(n);
    if (::ioctl(fd_.get(), kGetSupportedCpuid, buf.data()) == 0) {
      Cpuid2Header h;
      std::memcpy(&h, buf.data(), sizeof h);
      std::vector<kvm_cpuid_entry2> entries(std::min(h.nent, n));
      std::memcpy(entries.data(), buf.data() + sizeof h, entries.size() * sizeof entries[0]);
      return entries;
    }
    if (errno != E2BIG) throw KvmError("KVM_GET_SUPPORTED_CPUID", errno);
  }
  throw KvmError("KVM_GET_SUPPORTED_CPUID", E2BIG);
}

Vm Kvm::create_vm() const {
  int fd = KVM_IOCTL(fd_.get(), KVM_CREATE_VM, 0);
  Fd owned(fd);
  return Vm(std::move(owned), vcpu_mmap_size());
}

// --- Vm --------------------------------------------------------------------------------------

int Vm::check_extension(int capability) const {
  return KVM_IOCTL(fd_.get(), KVM_CHECK_EXTENSION, capability);
}

void Vm::set_user_memory_region(uint32_t slot, uint64_t gpa, uint64_t bytes, void* hva,
                                uint32_t flags) {
  kvm_userspace_memory_region region{};
  region.slot = slot;
  region.flags = flags;
  region.guest_phys_addr = gpa;
  region.memory_size = bytes;
  region.userspace_addr = reinterpret_cast<uint64_t>(hva);
  KVM_IOCTL(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region);
}

void Vm::set_tss_addr(uint64_t gpa) { KVM_IOCTL(fd_.get(), KVM_SET_TSS_ADDR, gpa); }

std::vector<uint64_t> Vm::get_dirty_log(uint32_t slot, uint64_t pages) const {
  std::vector<uint64_t> bitmap((pages + 63) / 64, 0);
  kvm_dirty_log log{};
  log.slot = slot;
  log.dirty_bitmap = bitmap.data();
  KVM_IOCTL(fd_.get(), KVM_GET_DIRTY_LOG, &log);
  return bitmap;
}

Vcpu Vm::create_vcpu(int id) {
  int fd = KVM_IOCTL(fd_.get(), KVM_CREATE_VCPU, id);
  return Vcpu(Fd(fd), mmap_size_);
}

// --- Vcpu ------------------------------------------------------------------------------------

Vcpu::Vcpu(Fd fd, int mmap_size) : fd_(std::move(fd)), run_size_(static_cast<size_t>(mmap_size)) {
  void* p = ::mmap(nullptr, run_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
  if (p == MAP_FAILED) throw KvmError("mmap(kvm_run)", errno);
  run_ = static_cast<kvm_run*>(p);
}

Vcpu Vcpu::from_raw_fd_unmapped(int fd) { return Vcpu(Fd(fd), nullptr, 0); }

Vcpu::Vcpu(Vcpu&& o) noexcept
    : fd_(std::move(o.fd_)), run_(o.run_), run_size_(o.run_size_), sync_regs_(o.sync_regs_) {
  o.run_ = nullptr;
  o.run_size_ = 0;
}

Vcpu::~Vcpu() {
  if (run_ != nullptr) ::munmap(run_, run_size_);
}

kvm_regs Vcpu::get_regs() const {
  kvm_regs r{};
  KVM_IOCTL(fd_.get(), KVM_GET_REGS, &r);
  return r;
}
void Vcpu::set_regs(const kvm_regs& regs) { KVM_IOCTL(fd_.get(), KVM_SET_REGS, &regs); }
kvm_sregs Vcpu::get_sregs() const {
  kvm_sregs s{};
  KVM_IOCTL(fd_.get(), KVM_GET_SREGS, &s);
  return s;
}
void Vcpu::set_sregs(const kvm_sregs& sregs) { KVM_IOCTL(fd_.get(), KVM_SET_SREGS, &sregs); }
kvm_fpu Vcpu::get_fpu() const {
  kvm_fpu f{};
  KVM_IOCTL(fd_.get(), KVM_GET_FPU, &f);
  return f;
}
kvm_vcpu_events Vcpu::get_vcpu_events() const {
  kvm_vcpu_events e{};
  KVM_IOCTL(fd_.get(), KVM_GET_VCPU_EVENTS, &e);
  return e;
}

void Vcpu::set_fpu(const kvm_fpu& fpu) { KVM_IOCTL(fd_.get(), KVM_SET_FPU, &fpu); }
void Vcpu::set_vcpu_events(const kvm_vcpu_events& events) {
  KVM_IOCTL(fd_.get(), KVM_SET_VCPU_EVENTS, &events);
}
kvm_debugregs Vcpu::get_debugregs() const {
  kvm_debugregs d{};
  KVM_IOCTL(fd_.get(), KVM_GET_DEBUGREGS, &d);
  return d;
}
void Vcpu::set_debugregs(const kvm_debugregs& dr) { KVM_IOCTL(fd_.get(), KVM_SET_DEBUGREGS, &dr); }

namespace {
// struct kvm_msrs ends in a flexible array too (as kvm_cpuid2 above): an 8-byte header of our
// own, its ioctl numbers from it, then the entries.
struct MsrsHeader {
  __u32 nmsrs;
  __u32 pad;
};
static_assert(sizeof(MsrsHeader) == 8);
constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, MsrsHeader);
constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);

struct MsrsBuffer {
  explicit MsrsBuffer(const std::vector<uint32_t>& index)
      : bytes(sizeof(MsrsHeader) + index.size() * sizeof(kvm_msr_entry), 0) {
    const MsrsHeader h{static_cast<__u32>(index.size()), 0};
    std::memcpy(bytes.data(), &h, sizeof h);
    for (size_t i = 0; i < index.size(); ++i) {
      kvm_msr_entry e{};
      e.index = index[i];
      set(i, e);
    }
  }
  kvm_msr_entry get(size_t i) const {
    kvm_msr_entry e;
    std::memcpy(&e, bytes.data() + sizeof(MsrsHeader) + i * sizeof e, sizeof e);
    return e;
  }
  void set(size_t i, const kvm_msr_entry& e) {
    std::memcpy(bytes.data() + sizeof(MsrsHeader) + i * sizeof e, &e, sizeof e);
  }
  std::vector<uint8_t> bytes;
};
}  // namespace

std::vector<uint64_t> Vcpu::get_msrs(const std::vector<uint32_t>& index) const {
  MsrsBuffer b(index);
  const int n = checked_ioctl(fd_.get(), kGetMsrs, "KVM_GET_MSRS", b.bytes.data());
  if (n != static_cast<int>(index.size())) throw KvmError("KVM_GET_MSRS", EINVAL);
  std::vector<uint64_t> out(index.size());
  for (size_t i = 0; i < index.size(); ++i) out[i] = b.get(i).data;
  return out;
}

void Vcpu::set_msrs(const std::vector<uint32_t>& index, const std::vector<uint64_t>& values) {
  MsrsBuffer b(index);
  for (size_t i = 0; i < index.size() && i < values.size(); ++i) {
    kvm_msr_entry e = b.get(i);
    e.data = values[i];
    b.set(i, e);
  }
  const int n = checked_ioctl(fd_.get(), kSetMsrs, "KVM_SET_MSRS", b.bytes.data());
  if (n != static_cast<int>(index.size())) throw KvmError("KVM_SET_MSRS", EINVAL);
}

std::vector<std::pair<std::string, uint64_t>> Vcpu::stats() const {
  // struct kvm_stats_desc without its name: the uapi header declares the name with
  // __DECLARE_FLEX_ARRAY, which in C++ adds an empty struct and makes sizeof 20, not the 16
  // bytes that precede the name in the file (KVM API 4.133).
  struct DescHead {
    uint32_t flags;
    int16_t exponent;
    uint16_t size;  // number of u64 values (1 for a single value; more for a histogram)
    uint32_t offset;
    uint32_t bucket_size;
  };
  static_assert(sizeof(DescHead) == 16);
  std::vector<std::pair<std::string, uint64_t>> out;
  const int sfd = ::ioctl(fd_.get(), KVM_GET_STATS_FD, nullptr);
  if (sfd < 0) return out;
  const Fd stats_fd(sfd);
  kvm_stats_header h{};
  if (::pread(sfd, &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h)) return out;
  const size_t desc_size = sizeof(DescHead) + h.name_size;
  std::vector<uint8_t> descs(desc_size * h.num_desc);
  if (descs.empty() || ::pread(sfd, descs.data(), descs.size(), h.desc_offset) !=
                           static_cast<ssize_t>(descs.size())) {
    return out;
  }
  for (uint32_t i = 0; i < h.num_desc; ++i) {
    DescHead d;
    std::memcpy(&d, descs.data() + i * desc_size, sizeof d);
    if (d.size != 1) continue;  // a histogram
    const char* name = reinterpret_cast<const char*>(descs.data() + i * desc_size + sizeof d);
    uint64_t v = 0;
    if (::pread(sfd, &v, sizeof v, h.data_offset + d.offset) != static_cast<ssize_t>(sizeof v)) {
      continue;
    }
    out.emplace_back(std::string(name, strnlen(name, h.name_size)), v);
  }
  return out;
}

void Vcpu::set_cpuid(const std::vector<kvm_cpuid_entry2>& entries) {
  std::vector<uint8_t> buf = cpuid_buffer(static_cast<uint32_t>(entries.size()));
  if (!entries.empty()) {
    std::memcpy(buf.data() + sizeof(Cpuid2Header), entries.data(),
                entries.size() * sizeof(kvm_cpuid_entry2));
  }
  checked_ioctl(fd_.get(), kSetCpuid2, "KVM_SET_CPUID2", buf.data());
}

void Vcpu::set_guest_debug(const kvm_guest_debug& dbg) {
  KVM_IOCTL(fd_.get(), KVM_SET_GUEST_DEBUG, &dbg);
}

kvm_translation Vcpu::translate(uint64_t linear) const {
  kvm_translation t{};
  t.linear_address = linear;
  KVM_IOCTL(fd_.get(), KVM_TRANSLATE, &t);
  return t;
}

void Vcpu::set_sync_regs(bool on) { sync_regs_ = on; }

const kvm_regs& Vcpu::synced_regs() const { return run_->s.regs.regs; }
const kvm_sregs& Vcpu::synced_sregs() const { return run_->s.regs.sregs; }

void Vcpu::kick() const {
  if (run_ != nullptr) __atomic_store_n(&run_->immediate_exit, 1, __ATOMIC_SEQ_CST);
}
void Vcpu::clear_kick() const {
  if (run_ != nullptr) __atomic_store_n(&run_->immediate_exit, 0, __ATOMIC_SEQ_CST);
}

platform::VcpuExit Vcpu::run() {
  if (run_ != nullptr) {
    run_->kvm_valid_regs = sync_regs_ ? (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS) : 0;
  }
  if (::ioctl(fd_.get(), KVM_RUN, 0) < 0) {
    if (errno == EINTR) return platform::ExitInterrupted{};
    throw KvmError("KVM_RUN", errno);
  }
  kvm_run& r = *run_;
  switch (r.exit_reason) {
    case KVM_EXIT_IO: {
      auto* base = reinterpret_cast<uint8_t*>(run_) + r.io.data_offset;
      const size_t len = size_t{r.io.size} * r.io.count;
      // KVM places the data inside this mapping (KVM_PIO_PAGE_OFFSET); checked, not trusted
      // (platform/hypercall.hpp [SECTION] Guest memory, rule 2): otherwise an unhandled exit.
      if (r.io.data_offset > run_size_ || len > run_size_ - r.io.data_offset) {
        return platform::ExitOther{r.exit_reason};
      }
      if (r.io.direction == KVM_EXIT_IO_OUT) {
        return platform::ExitIoOut{r.io.port, r.io.size, r.io.count, {base, len}};
      }
      return platform::ExitIoIn{r.io.port, r.io.size, r.io.count, {base, len}};
    }
    case KVM_EXIT_MMIO: {
      const size_t len = r.mmio.len <= 8 ? r.mmio.len : 8;
      if (r.mmio.is_write) return platform::ExitMmioWrite{r.mmio.phys_addr, {r.mmio.data, len}};
      return platform::ExitMmioRead{r.mmio.phys_addr, {r.mmio.data, len}};
    }
    case KVM_EXIT_HLT: return platform::ExitHlt{};
    case KVM_EXIT_SHUTDOWN: return platform::ExitShutdown{};
    case KVM_EXIT_INTERNAL_ERROR: {
      platform::ExitInternalError e{};
      e.suberror = r.internal.suberror;
      e.ndata = r.internal.ndata;
      for (uint32_t i = 0; i < 2 && i < e.ndata; ++i) e.data[i] = r.internal.data[i];
      if (e.suberror == KVM_INTERNAL_ERROR_EMULATION && r.emulation_failure.ndata >= 3 &&
          (r.emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
        e.insn_len = r.emulation_failure.insn_size <= 15 ? r.emulation_failure.insn_size : 15;
        std::memcpy(e.insn, r.emulation_failure.insn_bytes, e.insn_len);
      }
      return e;
    }
    case KVM_EXIT_FAIL_ENTRY:
      return platform::ExitFailEntry{r.fail_entry.hardware_entry_failure_reason, r.fail_entry.cpu};
    case KVM_EXIT_DEBUG:
      return platform::ExitDebug{r.debug.arch.exception, r.debug.arch.pc, r.debug.arch.dr6,
                       r.debug.arch.dr7};
    case KVM_EXIT_SYSTEM_EVENT: return platform::ExitSystemEvent{r.system_event.type};
    case KVM_EXIT_INTR: return platform::ExitInterrupted{};
    default: return platform::ExitOther{r.exit_reason};
  }
}

}  // namespace trapscope::vmm
