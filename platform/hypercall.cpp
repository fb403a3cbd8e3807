#include "platform/hypercall.hpp"

#include <cstring>
#include <vector>

#include "platform/devices.hpp"

namespace trapscope::platform {
namespace {

constexpr uint64_t kPageSize = 4096;
constexpr uint64_t kPtePresent = 1;
constexpr uint64_t kPteFrameMask = 0x000FFFFFFFFFF000ull;  // bits 51:12 (SDM Vol. 3A 4.5)

// [gpa, gpa + len) inside guest memory, without overflow.
bool inside(std::span<const uint8_t> mem, uint64_t gpa, uint64_t len) {
  return gpa <= mem.size() && len <= mem.size() - gpa;
}

int32_t check_page(std::span<const uint8_t> mem, uint64_t gpa) {
  if (gpa % kPageSize != 0) return kHcEinval;
  if (!inside(mem, gpa, kPageSize)) return kHcEfault;
  return kHcOk;
}

HypercallRecord console_write(HypercallHost& host, ConsoleOutput& console, HypercallArgs a) {
  HypercallRecord r{a};
  const auto mem = host.guest_memory();
  if (a.arg2 > kMaxConsoleBytes) r.result = kHcE2big;
  else if (!inside(mem, a.arg1, a.arg2)) r.result = kHcEfault;
  if (r.result != kHcOk) return r;
  for (uint64_t i = 0; i < a.arg2; ++i) console.put(mem[a.arg1 + i]);
  r.applied = a.arg2;
  return r;
}

// After Xen's mmu_update (Barham et al., SOSP 2003, 3.3.1; xen/arch/x86/mm.c do_mmu_update):
// every pair is validated first, then all are written. The pair list lies in guest memory and a
// pair may write into it (its PTE address can be another pair's field), so it is copied out
// ONCE, and the copy is validated and applied (hypercall.hpp [SECTION] Guest memory).
HypercallRecord mmu_update(HypercallHost& host, HypercallArgs a) {
  HypercallRecord r{a};
  const auto mem = host.guest_memory();
  if (a.arg2 > kMaxMmuUpdates) {
    r.result = kHcE2big;
    return r;
  }
  struct Pair {
    uint64_t pte, value;
  };
  static_assert(sizeof(Pair) == 16);
  if (!inside(mem, a.arg1, a.arg2 * sizeof(Pair))) {  // arg2 <= 2048: no overflow
    r.result = kHcEfault;
    return r;
  }
  std::vector<Pair> pairs(a.arg2);
  if (a.arg2 != 0) std::memcpy(pairs.data(), mem.data() + a.arg1, a.arg2 * sizeof(Pair));
  for (const Pair& p : pairs) {
    if (p.pte % 8 != 0) r.result = kHcEinval;
    else if (!inside(mem, p.pte, 8)) r.result = kHcEfault;
    else if ((p.value & kPtePresent) && !inside(mem, p.value & kPteFrameMask, kPageSize)) {
      r.result = kHcEfault;  // resource control: a guest maps only its own memory
    }
    if (r.result != kHcOk) return r;
  }
  for (const Pair& p : pairs) {
    std::memcpy(mem.data() + p.pte, &p.value, 8);
    host.pte_written(p.pte);
  }
  host.flush_tlb();
  r.applied = a.arg2;
  return r;
}

}  // namespace

std::string_view hypercall_name(uint32_t nr) {
  switch (static_cast<Hypercall>(nr)) {
    case Hypercall::kConsoleWrite: return "console_write";
    case Hypercall::kMmuUpdate: return "mmu_update";
    case Hypercall::kSetCr3: return "set_cr3";
    case Hypercall::kSetSharedInfo: return "set_shared_info";
    case Hypercall::kHalt: return "halt";
    case Hypercall::kYield: return "yield";
  }
  return "?";
}

std::string_view hypercall_result_name(int32_t result) {
  switch (result) {
    case kHcOk: return "ok";
    case kHcE2big: return "E2BIG";
    case kHcEfault: return "EFAULT";
    case kHcEinval: return "EINVAL";
    case kHcEnosys: return "ENOSYS";
  }
  return "?";
}

HypercallRecord execute_hypercall(HypercallHost& host, ConsoleOutput& console,
                                  uint64_t* shared_info_gpa) {
  const HypercallArgs a = host.args();
  HypercallRecord r{a};
  switch (static_cast<Hypercall>(a.nr)) {
    case Hypercall::kConsoleWrite: return console_write(host, console, a);
    case Hypercall::kMmuUpdate: return mmu_update(host, a);
    case Hypercall::kSetCr3:
      r.result = check_page(host.guest_memory(), a.arg1);
      if (r.result == kHcOk) host.set_cr3(a.arg1);
      return r;
    case Hypercall::kSetSharedInfo:
      r.result = check_page(host.guest_memory(), a.arg1);
      if (r.result == kHcOk) *shared_info_gpa = a.arg1;
      return r;
    case Hypercall::kHalt: return r;  // the backend ends the run (HypercallDevice::take_halt)
    case Hypercall::kYield: return r;
  }
  r.result = kHcEnosys;
  return r;
}

trace::VmExitEvent hypercall_event(const HypercallRecord& record,
                                   const trace::VmExitEvent& doorbell, uint64_t seq) {
  trace::VmExitEvent e{};
  e.header = trace::make_header<trace::VmExitEvent>(trace::EventType::kVmExit);
  e.header.seq = seq;
  e.header.time_ns = doorbell.header.time_ns;
  e.header.rip = doorbell.header.rip;
  e.header.cpu_mode = doorbell.header.cpu_mode;
  e.header.cpl = doorbell.header.cpl;
  e.header.flags = trace::kExitFlagHypercallRecord |
                   (doorbell.header.flags & trace::kExitFlagRipAdvanced);
  e.reason = static_cast<uint32_t>(trace::ExitReason::kHypercall);
  e.payload.hypercall = {record.args.nr, record.result, record.args.arg1, record.args.arg2};
  e.insn_addr = doorbell.insn_addr;
  e.insn_len = doorbell.insn_len;
  std::memcpy(e.insn, doorbell.insn, sizeof e.insn);
  return e;
}

}  // namespace trapscope::platform
