// backend/backend.hpp — the one interface that the KVM backend and the simulator both offer, so
// that every command, view, lesson and test works on either.
//
// Registers are seen as x86::CpuState (the KVM backend converts from kvm_regs/kvm_sregs, KVM API
// 4.11–4.14). Events go to a trace::EventSink in the one schema (trace/event.hpp): VM exits with
// KVM's exit-reason numbers on both backends; the simulator adds ring transitions, exceptions,
// page walks and, on request, retired instructions.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "x86/extended_state.hpp"
#include "x86/state.hpp"
#include "sim/virt/technique.hpp"
#include "sim/virt/vmcs.hpp"
#include "sim/vmm_paging.hpp"
#include "trace/recorder.hpp"
#include "platform/devices.hpp"
#include "platform/loader.hpp"

namespace trapscope::sim {
struct CodeState;
}
namespace trapscope::sim::bt {
struct BtStats;
}

namespace trapscope::backend {

enum class Kind : uint8_t { kKvm, kSim };
std::string_view to_string(Kind kind);

struct Config {
  uint64_t memory_bytes = 16ull << 20;
  platform::BootMode mode = platform::BootMode::kReal;
  uint64_t load_address = platform::kDefaultLoadAddress;
  bool record_instructions = false;  // simulator: an event per retired instruction
  // Simulator: the virtualization technique (sim/virt/monitor.hpp) and, for trap-and-emulate,
  // the real CPL of the guest kernel (1 or 3).
  sim::virt::Technique technique = sim::virt::Technique::kEmulation;
  uint8_t deprivilege = 1;
  // Simulator: how its VMM virtualizes memory, and the TLB size (sim/mmu.hpp).
  sim::VmmPaging paging = sim::VmmPaging::kNative;
  unsigned tlb_entries = sim::kTlbDefaultEntries;
  bool bt_lookup_events = false;  // technique bt: an event per translation-cache lookup
  uint32_t bt_adaptive_threshold = 0;  // technique bt: sim::SimConfig::bt_adaptive_threshold
  // `--disk`: the machine's disks (at most 2), opened by make_backend into Devices::disks
  // (platform/disk_image.hpp open_disk) and flushed at the end of every run and step.
  std::vector<platform::DiskSpec> disks;
  sim::virt::VmcsControls vmcs;  // techniques vt, pv: the VT-x model's VMCS (sim/virt/vmcs.hpp)
  // The passthrough device (platform/passthrough.hpp, docs/passthrough.md): none, mapped (no
  // VM exits; the simulator adds its IOMMU model) or emulated (MMIO exits).
  platform::PassthroughMode passthrough = platform::PassthroughMode::kNone;
  // Tests: adds disks (e.g. platform::MemoryBlock) to a new machine's Devices::disks before
  // make_backend calls Devices::attach_disks; called once per machine (cosim makes two).
  std::function<void(platform::Devices&)> add_disks;
};

// The simulator's memory-virtualization counters (sim/mmu.hpp), for `run --stats`.
struct PagingCounters {
  uint64_t tlb_hits = 0, tlb_misses = 0, tlb_flushes = 0;
  unsigned tlb_entries = 0;
  sim::PagingStats stats;
};

// A debug-register slot (SDM Vol. 3B 18.2: DR0–DR3 and DR7's R/W and LEN fields): the gdb stub's
// (gdbstub/) hardware breakpoints and watchpoints on KVM.
struct DebugSlot {
  uint64_t linear = 0;
  uint8_t rw = 0;   // DR7 R/W: 0 instruction execution, 1 data write, 3 data read or write
  uint8_t len = 1;  // bytes: 1, 2, 4 or 8 (execution: 1)
};

struct StopCondition {
  double timeout_s = 10.0;        // host wall clock
  uint64_t max_exits = 0;         // VM exits (simulator: the same events); 0 = no limit
  uint64_t max_instructions = 0;  // simulator only; 0 = no limit
  bool has_breakpoint = false;    // stop before the instruction at guest RIP `breakpoint`
  uint64_t breakpoint = 0;        //   (KVM: a hardware breakpoint on the linear address)
  uint32_t stop_on = 0;           // bits (1 << trace::EventType): stop after such an event
                                  //   (KVM observes only VM exits: other bits are refused)
  // KVM only, at most 4 (KVM_SET_GUEST_DEBUG, USE_HW_BP): a hit ends the run with kBreakpoint
  // and its KVM_EXIT_DEBUG event carries DR6 (bit i: slot i). The simulator refuses them
  // (std::invalid_argument): the gdb stub checks its breakpoints and watchpoints itself there.
  std::vector<DebugSlot> debug_slots = {};
};

// Everything needed to return a machine to an earlier point (step back = restore + re-run on
// the deterministic simulator; snapshot files: snapshot/). KVM snapshots hold the registers,
// segment, descriptor-table and control state, EFER, the MSRs of x86::CpuState, the debug
// registers, the FPU/SSE state, the pending events and memory (taken after KVM has completed
// an I/O or MMIO exit's access, KVM API 5 immediate_exit); not KVM's TSC.
struct Snapshot {
  Kind kind = Kind::kSim;
  x86::CpuState registers;
  std::vector<uint8_t> memory;  // restore: empty = guest memory is left as it is
  // KVM only (the simulator models neither: x86/extended_state.hpp).
  std::optional<x86::FpuState> fpu;
  std::optional<x86::PendingEvents> events;
  platform::Devices::State devices;
  uint64_t instructions = 0;  // simulator: instructions retired at the snapshot
  // Simulator: the code-page marks and the translation cache (sim/sim_machine.hpp CodeState;
  // shared, as it is never changed once taken). Null on KVM.
  std::shared_ptr<const sim::CodeState> code;
};

struct RunOutcome {
  trace::RunEndReason reason = trace::RunEndReason::kStopped;
  uint32_t exit_code = 0;
  uint64_t exits = 0;
  uint64_t instructions = 0;  // retired instructions (simulator; 0 on KVM: not observable)
  uint64_t duration_ns = 0;
  std::string detail;         // faults: what happened and the vCPU state
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Kind kind() const = 0;
  // Throws platform::LoadError for an image that does not fit.
  virtual void load(std::span<const uint8_t> image) = 0;
  // Throws std::invalid_argument for a stop condition the backend cannot observe.
  virtual RunOutcome run(const StopCondition& stop, trace::EventSink* sink) = 0;
  // Executes one instruction (reason kStep, or how the run ended if it did). On KVM this uses
  // KVM_GUESTDBG_SINGLESTEP, which this project's kvm_pvm hosts report only for emulated code
  // (CPL 0, real mode), not for natively run CPL 3 code (`trapscope doctor`).
  virtual RunOutcome step(trace::EventSink* sink) = 0;
  // with_memory false: Snapshot::memory stays empty (snapshot/ reads memory() itself).
  virtual Snapshot snapshot(bool with_memory = true) = 0;
  // Takes a snapshot of either engine (cross-engine: what one engine lacks is left at its reset
  // value, docs/snapshots.md). std::invalid_argument if the memory size differs or the state
  // cannot be taken (the simulator: a pending event, which it cannot deliver).
  virtual void restore(const Snapshot& snapshot) = 0;
  virtual x86::CpuState registers() = 0;
  // Sets the general registers, RIP, RFLAGS and the segment, descriptor-table, control and EFER
  // state (the KVM backend: KVM_SET_REGS + KVM_SET_SREGS). Throws vmm::KvmError if KVM refuses.
  virtual void set_registers(const x86::CpuState& state) = 0;
  virtual std::span<const uint8_t> memory() const = 0;  // guest-physical [0, size)
  // False (nothing written) if [gpa, gpa + bytes.size()) is not inside guest memory.
  virtual bool write_memory(uint64_t gpa, std::span<const uint8_t> bytes) = 0;
  virtual platform::Devices& devices() = 0;
  // Async-signal-safe: ends the current run with RunEndReason::kStopped.
  virtual void request_stop() = 0;
  // The simulator's memory-virtualization counters; nullopt on KVM (not observable there).
  virtual std::optional<PagingCounters> paging_counters() const { return std::nullopt; }
  // KVM's statistics of the vCPU (vmm::Vcpu::stats(): KVM_GET_STATS_FD), counts since the
  // backend was made — "exits" counts the VM exits KVM handled in the kernel too. Empty on the
  // simulator.
  virtual std::vector<std::pair<std::string, uint64_t>> kvm_stats() { return {}; }
  // Live migration (snapshot/migration.hpp). KVM: dirty-page logging of guest memory on or off
  // (KVM_MEM_LOG_DIRTY_PAGES on its memory slot); false where the engine has none (the
  // simulator: migration compares pages with the copy it sent).
  virtual bool set_dirty_logging(bool on) { (void)on; return false; }
  // The pages written since the last call (KVM_GET_DIRTY_LOG): a bit per 4 KiB page.
  virtual std::vector<uint64_t> take_dirty_log() { return {}; }
  // The translation cache's counters under technique bt (sim/bt/translator.hpp); else null.
  virtual const sim::bt::BtStats* bt_stats() { return nullptr; }
  // Under technique bt, emits a kBtCounts event (sim/bt/counts.hpp) for each unit whose
  // counters changed since its last one, between runs: a run reports them when it ends, not
  // when it pauses (a breakpoint, a watched event), so that stopping does not change the event
  // stream; the visualizer asks for them when it stops for the user. Else nothing.
  virtual void report_bt_counts(trace::EventSink& sink) { (void)sink; }
  // Under techniques vt and pv, the VT-x model's VMCS controls now (sim/virt/vmcs.hpp); else
  // nullopt. set_vmcs changes them between runs (the next instruction follows them); false when
  // there is no VT-x model (KVM, another technique).
  virtual std::optional<sim::virt::VmcsControls> vmcs() const { return std::nullopt; }
  virtual bool set_vmcs(const sim::virt::VmcsControls& controls) {
    (void)controls;
    return false;
  }
};

// Throws vmm::KvmError (or std::system_error) when KVM is not usable, platform::DiskError for a
// disk that cannot be opened (checked before KVM is touched).
std::unique_ptr<Backend> make_backend(Kind kind, const Config& config);
// How many machines make_backend has made in this process: each runs the guest once (`run
// --stats` prints it, so that a test sees that `run --technique T` runs the guest once).
uint64_t machines_made();

// True when /dev/kvm can be opened and a VM created (the default backend is KVM then).
bool kvm_usable(std::string* why = nullptr);

}  // namespace trapscope::backend
