// sim/cpu.hpp — the simulator's processor: architectural state plus the operations that every
// instruction handler uses (operand access, segmentation, paging, stack, flags, port I/O).
//
// [SECTION] Faults
//   A handler that must raise an exception throws CpuFault; the step loop (sim/sim_machine.cpp)
//   restores RIP to the faulting instruction and delivers it through the IDT (or IVT in real
//   mode). Handlers do their checks and reads before their writes so that a fault leaves the
//   state unchanged (as the SDM requires of faults).
// [SECTION] RIP
//   While a handler runs, s.rip already points at the next instruction (so RIP-relative
//   operands and `call` see the right value); a branch assigns s.rip.
// [SECTION] Sizes
//   Sizes are in bytes (1, 2, 4, 8) unless a name says bits.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "sim/arch.hpp"
#include "sim/physical_memory.hpp"
#include "sim/mmu.hpp"
#include "trace/recorder.hpp"
#include "platform/devices.hpp"
#include "platform/handle_exit.hpp"

namespace trapscope::sim {

// Masks a value to `size` bytes.
constexpr uint64_t mask(unsigned size) { return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1; }
constexpr uint64_t sign_bit(unsigned size) { return 1ull << (8 * size - 1); }
constexpr int64_t sign_extend(uint64_t v, unsigned size) {
  return size >= 8 ? static_cast<int64_t>(v)
                   : static_cast<int64_t>((v & mask(size)) ^ sign_bit(size)) -
                         static_cast<int64_t>(sign_bit(size));
}

// Exception vectors (SDM Vol. 3A 6.3.1), as vec::kGP etc.
namespace vec {
inline constexpr uint8_t kDE = 0, kDB = 1, kNMI = 2, kBP = 3, kOF = 4, kBR = 5, kUD = 6, kNM = 7,
                         kDF = 8, kTS = 10, kNP = 11, kSS = 12, kGP = 13, kPF = 14, kMF = 16,
                         kAC = 17;
}  // namespace vec

struct CpuFault {
  uint8_t vector;
  bool has_error_code = false;
  uint32_t error_code = 0;
};
[[noreturn]] void raise(uint8_t vector);                       // no error code
[[noreturn]] void raise(uint8_t vector, uint32_t error_code);  // with error code

// A rep string instruction suspended between iterations (SDM Vol. 1 7.3.9.2, Vol. 2 "REP":
// a repeated string operation can be suspended; rCX, rSI and rDI describe the iterations done
// and RIP stays at the instruction, which resumes where it stopped). Handlers throw it after
// kRepIterationsPerStep iterations in one step, so that the step loop's time, stop and exit
// checks run at least that often during one instruction; the step loop puts RIP back and goes
// on (sim/sim_machine.cpp StepStatus::kSuspended). A suspended instruction has not retired: it is
// counted, recorded and advances the TSC once, when its last iteration is done.
struct RepSuspended {};
inline constexpr uint64_t kRepIterationsPerStep = 4096;

// How a data access forms its linear address and what it checks (SDM Vol. 3A 3.4, 5.3, 5.4;
// 3.3.7.1): real and virtual-8086 mode (base + offset, limit), protected/compatibility mode
// (type, limit), 64-bit mode (FS/GS base only, canonical).
enum class AddrMode : uint8_t { kReal, kProtected, kLong };

// An instruction or situation outside the simulator's documented subset.
struct Unsupported : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A device reached a cap of trace/limits.hpp during an access (the console's): thrown by
// Cpu::port_out/port_in after the access, so that even one rep outs of 2^32 elements stops at
// once; the step loop ends the run with `reason`, RIP at the instruction (RCX/RSI/RDI describe
// the elements done, as for a fault: SDM Vol. 2 "REP").
struct LimitReached {
  trace::RunEndReason reason;
};

using trace::RingCause;

class Cpu {
 public:
  Cpu(PhysicalMemory& memory, platform::Devices& devices)
      : mem_(memory),
        devices_(devices),
        page_gen_(memory.size() / 4096 + 1, 0),
        code_page_(memory.size() / 4096 + 1, 0) {}

  CpuState s;

  // --- registers -------------------------------------------------------------------------
  uint64_t gpr(unsigned index, unsigned size) const;
  // Writes the low `size` bytes; a 4-byte write zero-extends to 64 bits (SDM Vol. 1 3.4.1.1).
  void set_gpr(unsigned index, unsigned size, uint64_t value);

  // --- operands --------------------------------------------------------------------------
  // Reads/writes explicit operand i of the instruction (register, memory or immediate), with
  // the operand's own size.
  uint64_t read_op(const Instruction& insn, unsigned i);
  void write_op(const Instruction& insn, unsigned i, uint64_t value);
  // The effective address (offset within the segment) of a memory operand, masked to the
  // instruction's address size.
  uint64_t effective_address(const Instruction& insn, const Operand& op) const {
    return x86::effective_address(insn, op, s);  // x86/address.hpp
  }

  // --- memory ----------------------------------------------------------------------------
  // Segment-relative accesses: segmentation (limit and type checks outside 64-bit mode), then
  // paging with the current CPL, then guest-physical memory or MMIO. Throw #GP/#SS/#PF.
  uint64_t read(SegReg seg, uint64_t offset, unsigned size, Access access = Access::kRead);
  void write(SegReg seg, uint64_t offset, unsigned size, uint64_t value);
  // Linear-address accesses for the processor's own system-structure references (GDT, IDT,
  // TSS, page tables): supervisor accesses whatever the CPL.
  uint64_t read_system(uint64_t linear, unsigned size);
  void write_system(uint64_t linear, unsigned size, uint64_t value);
  // Linear → physical through the MMU; throws #PF (and sets CR2) on a fault. Paging off and TLB
  // hits are handled inline; a miss walks the tables (mmu_translate).
  uint64_t translate(uint64_t linear, Access access, bool user) {
    if (!(s.cr0 & kCr0Pg) && memvirt.mode != VmmPaging::kEpt) return linear;
    const uint64_t vpn = linear >> 12;
    const Tlb::Entry& e = tlb.slot(vpn);
    if (e.vpn == vpn && (e.allow & Tlb::need_bit(access, user))) {
      ++tlb.hits;
      return (e.pfn << 12) | (linear & 0xFFF);
    }
    return mmu_translate(*this, linear, access, user);
  }
  uint64_t linear_address(SegReg seg, uint64_t offset, unsigned size, Access access);
  AddrMode addr_mode() const {
    if (mode64()) return AddrMode::kLong;
    return protected_mode() && !(s.rflags & kVM) ? AddrMode::kProtected : AddrMode::kReal;
  }

  // --- the host-pointer fast path ----------------------------------------------------------
  // The host address of a data access of `size` bytes at seg:offset (a read, or a write when
  // Write), by a supervisor or `user` (CPL 3) access in address mode `am` (addr_mode()), or
  // nullptr when the access needs the full path (read/write): a fault to raise (segment type or
  // limit, non-canonical address, TLB miss or missing permission), an expand-down or unusable
  // segment, a page crossing, MMIO, or a write to a page that holds cached or translated code
  // (self-modifying code: note_write must see it). It raises nothing and changes nothing but
  // tlb.hits, by `hits` (the TLB look-ups the full path would have made and hit: 1, or 2 for a
  // read-modify-write, which reads and then writes): when it returns an address, read/write
  // would have reached the same bytes with the same checks, the same TLB hits and no event.
  // With paging on, the page's host address comes from the modelled TLB entry (Tlb::Entry::
  // host), so the TLB's statistics (hits, misses, walks) are the same with or without it.
  // Used by the interpreter's memory operands (sim/interp) and binary translation's memory
  // micro-ops (sim/bt/microops.cpp).
  template <bool Write>
  [[gnu::always_inline]] uint8_t* host_data(SegReg seg, uint64_t offset, unsigned size, AddrMode am, bool user,
                     unsigned hits) {
    const Segment& sg = s.seg[seg];
    uint64_t la;
    if (am == AddrMode::kReal) {
      if (offset + size - 1 > sg.limit) return nullptr;
      la = (sg.base + offset) & 0xFFFFFFFFull;
    } else if (am == AddrMode::kLong) {
      la = ((seg == kFs || seg == kGs) ? sg.base : 0) + offset;
      const uint64_t last = la + size - 1;
      if (static_cast<uint64_t>(static_cast<int64_t>(la << 16) >> 16) != la ||
          static_cast<uint64_t>(static_cast<int64_t>(last << 16) >> 16) != last) {
        return nullptr;
      }
    } else {
      const uint64_t last = offset + size - 1;
      if (sg.unusable || !sg.present) return nullptr;
      const bool code = sg.type & 0x8;
      if (Write ? (code || !(sg.type & 0x2)) : (code && !(sg.type & 0x2))) return nullptr;
      if (!code && (sg.type & 0x4)) return nullptr;  // expand-down
      if (last > sg.limit || last < offset) return nullptr;
      la = (sg.base + offset) & 0xFFFFFFFFull;
    }
    if ((la & 0xFFF) + size > 0x1000) return nullptr;
    if ((s.cr0 & kCr0Pg) || memvirt.mode == VmmPaging::kEpt) {
      const uint64_t vpn = la >> 12;
      const Tlb::Entry& e = tlb.slot(vpn);
      if (e.vpn != vpn || !(e.allow & Tlb::need_bit(Write ? Access::kWrite : Access::kRead, user)) ||
          e.host == nullptr) {
        return nullptr;
      }
      if (Write && code_page_[e.pfn]) return nullptr;  // e.host: pfn is a page of RAM
      tlb.hits += hits;
      return e.host + (la & 0xFFF);
    }
    if (!mem_.contains(la, size)) return nullptr;
    if (Write && code_page_[la >> 12]) return nullptr;
    return mem_.data() + la;
  }

  // Fetches up to `max` instruction bytes at CS:RIP into out; returns how many are readable
  // (#PF is raised only if not even the first byte is).
  unsigned fetch(uint8_t* out, unsigned max);

  // --- stack -----------------------------------------------------------------------------
  unsigned stack_address_size() const;  // bytes: 8 in 64-bit mode, else 4 if SS.B, else 2
  void push(uint64_t value, unsigned size);
  uint64_t pop(unsigned size);

  // --- flags -----------------------------------------------------------------------------
  bool cond(uint8_t cc) const;  // SDM Vol. 1 B.1 condition codes
  void set_flag(uint64_t flag, bool on) { s.rflags = on ? (s.rflags | flag) : (s.rflags & ~flag); }
  bool flag(uint64_t f) const { return (s.rflags & f) != 0; }
  // Arithmetic flags after an operation of `size` bytes (results are truncated to size).
  void flags_logic(uint64_t result, unsigned size);  // CF = OF = 0, AF undefined → 0
  void flags_add(uint64_t a, uint64_t b, uint64_t carry, uint64_t result, unsigned size);
  void flags_sub(uint64_t a, uint64_t b, uint64_t borrow, uint64_t result, unsigned size);
  void flags_szp(uint64_t result, unsigned size);  // SF, ZF, PF only

  // --- port I/O --------------------------------------------------------------------------
  // IOPL and TSS I/O-permission-bitmap check (SDM Vol. 1 19.5), then the device bus.
  uint64_t port_in(uint16_t port, unsigned size);
  void port_out(uint16_t port, unsigned size, uint64_t value);
  bool io_allowed(uint16_t port, unsigned size);
  // Applies the platform's decision on an exit (platform/handle_exit.hpp): sets halted or
  // exit_requested, or throws LimitReached for a device cap.
  void take(const platform::ExitAction& action);

  // --- modes -----------------------------------------------------------------------------
  uint8_t cpl() const { return s.cpl(); }
  bool protected_mode() const { return s.cr0 & kCr0Pe; }
  bool mode64() const { return s.code64(); }

  // --- events and devices ----------------------------------------------------------------
  platform::Devices& devices() { return devices_; }
  PhysicalMemory& memory() { return mem_; }
  void set_sink(trace::EventSink* sink) { sink_ = sink; }
  trace::EventSink* sink() const { return sink_; }
  uint64_t next_seq() { return seq_++; }
  // Event timestamps: host CLOCK_MONOTONIC ns, as on the KVM backend (trace/event.hpp). The
  // guest's own clock (s.tsc) counts retired instructions and is what keeps runs deterministic.
  static uint64_t event_time();
  uint64_t seq() const { return seq_; }
  void set_seq(uint64_t seq) { seq_ = seq; }
  // Records that the CPL changed (called by whoever changed CS).
  void note_ring_transition(uint8_t from_cpl, uint8_t to_cpl, RingCause cause, uint8_t vector);

  // What the KVM backend would have seen as a VM exit to user space: the simulator records the
  // same trace::VmExitEvent (same KVM exit reason numbers) so that traces, views and
  // co-simulation compare directly. Handlers of in/out/ins/outs call record_exit_io after the
  // access (value: the first element); `hlt` calls record_exit_hlt.
  void record_exit_io(uint16_t port, unsigned size, bool out, uint32_t count, uint64_t value);
  void record_exit_hlt();
  void record_exit_mmio(uint64_t gpa, unsigned size, bool write, uint64_t value);
  uint64_t exits = 0;             // VM-exit-equivalent events so far

  // Requests from handlers to the step loop.
  bool halted = false;            // `hlt` executed
  bool exit_requested = false;    // the guest wrote the control port
  uint64_t fault_rip = 0;         // RIP of the instruction being executed
  const uint8_t* insn_bytes = nullptr;  // its bytes (set by the step loop; valid during it)
  uint8_t insn_len = 0;

  // The TLB (sim/mmu.hpp): flush on MOV to CR3 (global entries kept), CR0/CR4 paging changes
  // and per page on INVLPG (mmu_cr3_written, mmu_invlpg).
  Tlb tlb;
  // The VMM's memory virtualization (native, shadow, EPT) and its counters.
  MemoryVirtualization memvirt;
  // Everything cached about translations: the TLB, and the shadow tables under shadow paging
  // (a paging-mode change, or state written from outside the guest).
  void flush_tlb() { mmu_flush_all(*this); }

  // Self-modifying code: the decode cache (sim/sim_machine.cpp) keys instructions by physical
  // address and remembers the page's generation; every write to a page that holds cached code
  // bumps it. All writes to guest memory go through physical_write or note_write.
  uint32_t code_generation(uint64_t gpa) const {
    return (gpa >> 12) < page_gen_.size() ? page_gen_[gpa >> 12] : 0;
  }
  // The counter itself (nullptr outside memory; stable for the Cpu's lifetime): the decode
  // cache keeps a pointer to it so that its check is a single load.
  const uint32_t* code_generation_counter(uint64_t gpa) const {
    return (gpa >> 12) < page_gen_.size() ? &page_gen_[gpa >> 12] : nullptr;
  }
  void mark_code_page(uint64_t gpa) {
    if ((gpa >> 12) < code_page_.size()) code_page_[gpa >> 12] = 1;
  }
  void note_write(uint64_t gpa, unsigned size) {
    for (uint64_t pg = gpa >> 12; pg <= (gpa + size - 1) >> 12 && pg < code_page_.size(); ++pg) {
      if (code_page_[pg]) {
        ++page_gen_[pg];
        code_page_[pg] = 0;
        ++code_writes;
      }
    }
  }
  // True if the decode cache or the translation cache holds code from the page of `gpa` (a
  // write to it must go through note_write; binary translation's fast data path checks this).
  bool is_code_page(uint64_t gpa) const {
    return (gpa >> 12) < code_page_.size() && code_page_[gpa >> 12];
  }
  // Writes the VMM's write protection trapped: those that bumped a code page's generation
  // (above) and, under shadow paging, writes to a write-protected guest page table
  // (sim/mmu.cpp). Binary translation counts each as a trap of the writing instruction, for
  // adaptive retranslation (sim/bt/translator.hpp).
  uint64_t code_writes = 0;
  // The pages marked as holding cached code (mark_code_page), in ascending order, and
  // marking them again: a snapshot keeps them (SimMachine::restore_state), because which
  // writes count in code_writes, and so which instructions binary translation counts as
  // trapping, depends on them.
  std::vector<uint32_t> code_pages() const {
    std::vector<uint32_t> out;
    for (size_t pg = 0; pg < code_page_.size(); ++pg) {
      if (code_page_[pg]) out.push_back(static_cast<uint32_t>(pg));
    }
    return out;
  }
  void mark_code_pages(const std::vector<uint32_t>& pages) {
    for (const uint32_t pg : pages) {
      if (pg < code_page_.size()) code_page_[pg] = 1;
    }
  }
  void invalidate_all_code() {
    for (size_t pg = 0; pg < page_gen_.size(); ++pg) {
      ++page_gen_[pg];
      code_page_[pg] = 0;
    }
  }

 private:
  uint64_t physical_read(uint64_t gpa, unsigned size);
  void physical_write(uint64_t gpa, unsigned size, uint64_t value);
  // The passthrough device if `--passthrough mapped` maps its window over [gpa, gpa + size).
  platform::PassthroughDevice* mapped_passthrough(uint64_t gpa, unsigned size);
  void passthrough_turn(platform::PassthroughDevice& pt);
  PhysicalMemory& mem_;
  platform::Devices& devices_;
  std::vector<uint32_t> page_gen_;  // per 4 KiB guest-physical page
  std::vector<uint8_t> code_page_;  // 1: the decode cache holds instructions from the page
  trace::EventSink* sink_ = nullptr;
  uint64_t seq_ = 0;
};

}  // namespace trapscope::sim
