// platform/hypercall.hpp — trapscope's paravirtual hypercall interface: ONE implementation of every
// call and of its argument validation, used by the KVM backend and by the simulator alike.
//
// [SECTION] Why a port-I/O doorbell and not VMCALL
//   KVM handles VMCALL/VMMCALL in the kernel (Linux Documentation/virt/kvm/x86/hypercalls.rst):
//   an unknown hypercall number returns -KVM_ENOSYS (1000) in RAX to the guest without an exit to
//   user space, and KVM_EXIT_HYPERCALL is documented as unused (Documentation/virt/kvm/api.rst,
//   section 5, "KVM_EXIT_HYPERCALL": user space that needs guest interaction is told to use
//   KVM_EXIT_IO or KVM_EXIT_MMIO instead; only KVM_HC_MAP_GPA_RANGE can be forwarded, with
//   KVM_CAP_EXIT_HYPERCALL). A user-space VMM such as trapscope therefore takes its hypercalls
//   as an `in` from a port: a KVM_EXIT_IO on KVM, the same I/O VM exit in the simulator.
//
// [SECTION] Calling convention (the guest side: guests/include/trapscope.inc, TS_HC_*)
//   eax = call number, ebx/rbx = arg 1, ecx/rcx = arg 2, esi/rsi = arg 3 (KVM's own convention
//   without rdx, which holds the port), then `in eax, dx` with dx = kHypercallPort. The VMM
//   returns the result as the data of the `in`: eax = 0 on success, a negative error (below).
//   One hypercall = one VM exit. Addresses are guest-physical (a PV guest knows its physical
//   memory, as a Xen PV guest knows its frames).
//
// [SECTION] Calls
//   1 console_write(gpa, len)        len bytes from gpa to the console; len ≤ kMaxConsoleBytes
//   2 mmu_update(gpa, count)         count (PTE GPA, value) pairs of 16 bytes at gpa, each writes
//                                    the 8-byte value to the PTE; count ≤ kMaxMmuUpdates (Xen
//                                    batches up to 2048 per call: Barham et al., SOSP 2003). All
//                                    pairs are validated before any is applied (all or nothing);
//                                    the VMM then flushes the guest's TLB (Xen's mmu_update +
//                                    a flush). A VMM that shadows the guest's tables updates the
//                                    shadows of the written entries only (pte_written); the TLB
//                                    flush keeps the shadows
//   3 set_cr3(value)                 loads CR3 (and flushes the TLB); page-aligned, inside memory
//   4 set_shared_info(gpa)           registers the guest's shared page: byte 0 is the event mask
//                                    (1 = events masked), which the guest writes directly in
//                                    place of cli/sti (Xen's evtchn_upcall_mask); page-aligned
//   5 halt()                         ends the run as `hlt` would (no event can wake the guest)
//   6 yield()                        gives up the vCPU (one vCPU: returns at once)
//   Validation (each failure: an error code in eax, a kHypercall event, no memory touched):
//     unknown number → kEnosys; a buffer, pair array, PTE or page outside guest memory, or a
//     PTE whose present value maps a frame outside guest memory → kEfault; a PTE GPA not 8-byte
//     aligned, a CR3/shared page not 4 KiB aligned → kEinval; a count or length over the bound
//     → kE2big.
//
// [SECTION] Guest memory: the rules every hypercall and device follows
//   Guest memory is the guest's to change at any moment — on KVM another vCPU could, and within
//   one call the call's own writes can (an mmu_update pair whose PTE is a field of a later pair).
//   1. Copy once, validate the copy, apply the copy. A request that lies in guest memory (the
//      mmu_update pair list) is copied out of it exactly once; validation and the writes use the
//      copy, never a second read. A byte read once and used once needs no copy (console_write).
//   2. Bounds arithmetic that cannot overflow. A range [gpa, gpa + len) is inside memory of
//      `size` bytes iff gpa <= size && len <= size - gpa (never gpa + len <= size, which wraps
//      2^64); a count is checked against its bound before count * element size is formed.
//   3. Fail before any effect: every check runs before the first write (all or nothing).
//   The hostile guests (tests/hostile/*.asm, tests/test_hostile.cpp) attack each of these on
//   both engines; on KVM guest RAM lies between guard pages (vmm/guest_memory.hpp).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "trace/event.hpp"

namespace trapscope::platform {

inline constexpr uint16_t kHypercallPort = 0x510;
inline constexpr uint64_t kMaxConsoleBytes = 4096;
inline constexpr uint64_t kMaxMmuUpdates = 2048;

enum class Hypercall : uint32_t {
  kConsoleWrite = 1,
  kMmuUpdate = 2,
  kSetCr3 = 3,
  kSetSharedInfo = 4,
  kHalt = 5,
  kYield = 6,
};
std::string_view hypercall_name(uint32_t nr);  // "console_write", …; "?" if unknown

// Results in eax (Linux errno values, negated, as Xen and KVM hypercalls return them).
enum HypercallResult : int32_t {
  kHcOk = 0,
  kHcE2big = -7,
  kHcEfault = -14,
  kHcEinval = -22,
  kHcEnosys = -38,
};
std::string_view hypercall_result_name(int32_t result);  // "ok", "E2BIG", …

struct HypercallArgs {
  uint32_t nr = 0;
  uint64_t arg1 = 0, arg2 = 0, arg3 = 0;
};

// What a backend lets the hypercall code do to its guest. Memory is the whole guest-physical
// memory [0, size); everything the calls read or write is bounds-checked against it here.
class HypercallHost {
 public:
  virtual ~HypercallHost() = default;
  virtual HypercallArgs args() = 0;                // the guest's registers at the doorbell
  virtual std::span<uint8_t> guest_memory() = 0;
  // After the 8-byte PTE store at `gpa`: a VMM that shadows the guest's tables resynchronizes
  // the shadow entries built from that page only, as after a trapped write to it (the simulator;
  // Xen's sh_write_guest_entry); KVM's MMU is not reachable from user space (nothing here).
  virtual void pte_written(uint64_t gpa) = 0;
  // The guest's TLB, every entry (the simulator: its TLB, keeping the shadow tables that
  // pte_written kept current; KVM: a CR4.PGE toggle, SDM Vol. 3A 4.10.4.1, which makes KVM reset
  // the vCPU's MMU context).
  virtual void flush_tlb() = 0;
  virtual void set_cr3(uint64_t value) = 0;
};

// One hypercall as executed: what the guest asked and what it got back.
struct HypercallRecord {
  HypercallArgs args;
  int32_t result = kHcOk;
  uint64_t applied = 0;  // mmu_update: pairs written; console_write: bytes written
};

class ConsoleOutput;

// Validates and performs one hypercall. `console` receives console_write output.
HypercallRecord execute_hypercall(HypercallHost& host, ConsoleOutput& console,
                                  uint64_t* shared_info_gpa);

// The event that records a hypercall (reason kHypercall, flag kExitFlagHypercallRecord), made
// after `doorbell`, the I/O exit of the doorbell's `in` it describes: it takes that exit's time,
// RIP, CPL, mode, kExitFlagRipAdvanced and instruction bytes (so both print the same
// instruction) and the sequence number `seq`. Both backends record hypercalls through it.
trace::VmExitEvent hypercall_event(const HypercallRecord& record,
                                   const trace::VmExitEvent& doorbell, uint64_t seq);

}  // namespace trapscope::platform
