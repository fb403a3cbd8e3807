// sim/vmm_paging.hpp — how the simulator's VMM virtualizes guest memory, and the TLB's sizes
// (the choices a user makes with --paging and --tlb-entries; what backend/backend.hpp needs
// without the simulated CPU). The models: sim/mmu.hpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace trapscope::sim {

// How the simulator's VMM virtualizes guest memory.
//   kNative: the guest's tables are walked by the (simulated) hardware directly: the baseline,
//            what a machine without a VMM does.
//   kShadow: the VMM keeps shadow tables (GVA → HPA) built from the guest's, write-protects the
//            guest's page-table pages and traps CR3 writes and INVLPG; the hardware walks only
//            the shadow. A miss in the shadow is a hidden page fault (a VM exit the guest never
//            sees); a fault of the guest's own tables is a true fault, reflected to the guest.
//   kEpt:    the hardware walks the guest's tables and translates every guest-physical address
//            it meets through a 4-level nested table (EPT) the VMM fills lazily; a missing EPT
//            entry is an EPT violation VM exit.
// Guest-visible behaviour (registers, memory, console, exit code) is the same in all three.
enum class VmmPaging : uint8_t { kNative, kShadow, kEpt };
std::string_view to_string(VmmPaging mode);
std::optional<VmmPaging> parse_vmm_paging(std::string_view name);

// Counts of the memory-virtualization work, for `trapscope run --stats` and the tests. Exit
// counts use Intel's basic exit reasons (SDM Vol. 3D Appendix C): they are VM exits inside the
// simulator's VMM, which KVM would handle in the kernel without telling user space.
struct PagingStats {
  uint64_t walks = 0;             // TLB misses that walked (any mode)
  uint64_t guest_refs = 0;        // guest paging-structure entries read by the hardware walker
                                  // (native, EPT)
  uint64_t nested_refs = 0;       // EPT entries read (EPT)
  uint64_t shadow_refs = 0;       // shadow-table entries read by the hardware walker (shadow)
  uint64_t vmm_guest_refs = 0;    // guest entries read by the shadow VMM's software walks
  uint64_t guest_page_faults = 0; // #PF delivered to the guest (= true faults, every mode)
  uint64_t hidden_faults = 0;     // shadow: #PF exits resolved by the VMM (guest never sees them)
  uint64_t true_faults = 0;       // shadow: #PF exits reflected to the guest
  uint64_t pt_write_traps = 0;    // shadow: writes to write-protected guest page tables
  uint64_t vmm_table_writes = 0;  // shadow: shadowed guest page-table entries the VMM itself
                                  // wrote (a hypercall's mmu_update): resynchronized, no trap
  uint64_t cr3_exits = 0;         // shadow: MOV to CR3 (exit reason 28)
  uint64_t invlpg_exits = 0;      // shadow: INVLPG (exit reason 14)
  uint64_t ept_violations = 0;    // EPT: exit reason 48
  uint64_t shadow_dropped = 0;    // shadow entries dropped by resynchronization
  // VM exits by Intel basic exit reason (0 exception, 14 INVLPG, 28 CR access, 48 EPT violation)
  std::vector<std::pair<uint32_t, uint64_t>> exits_by_reason() const;
  uint64_t walk_refs() const { return guest_refs + nested_refs + shadow_refs; }
};

// The TLB's number of entries: a power of two, 1 … kTlbMaxEntries (sim/mmu.hpp, Tlb).
inline constexpr unsigned kTlbMaxEntries = 4096;
inline constexpr unsigned kTlbDefaultEntries = 256;

}  // namespace trapscope::sim
