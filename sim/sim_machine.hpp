// sim/sim_machine.hpp — the software machine: a Cpu, guest-physical memory, the standard devices
// (shared with the KVM backend: platform/devices.hpp), and the step loop of the interpreter (the
// "emulation" technique: fetch, decode with Zydis, execute the handler, deliver exceptions).
//
// Deterministic: the same guest and limits give the same events, registers and memory on every
// run and host (the time-stamp counter counts retired instructions).
#pragma once

#include <atomic>
#include <exception>
#include <cstdlib>
#include <memory>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "sim/bt/translator.hpp"
#include "sim/cpu.hpp"
#include "sim/physical_memory.hpp"
#include "sim/virt/monitor.hpp"
#include "trace/recorder.hpp"
#include "platform/devices.hpp"
#include "platform/loader.hpp"

namespace trapscope::sim {

struct SimConfig {
  uint64_t memory_bytes = 16ull << 20;
  platform::BootMode mode = platform::BootMode::kReal;
  uint64_t load_address = platform::kDefaultLoadAddress;
  bool record_instructions = false;  // emit a trace::InstructionEvent per retired instruction
  virt::Technique technique = virt::Technique::kEmulation;  // sim/virt/monitor.hpp
  uint8_t deprivilege = 1;  // trap-and-emulate: the real CPL of the guest kernel (1 or 3)
  VmmPaging paging = VmmPaging::kNative;     // how the VMM virtualizes memory (sim/mmu.hpp)
  unsigned tlb_entries = Tlb::kDefaultEntries;  // a power of two, 1 … Tlb::kMaxEntries
  bool bt_lookup_events = false;  // bt: a kBtLookup event per translation-cache lookup
  // bt: traps before an instruction is retranslated into a callout, 1..255 (0: the translator's
  // kBtAdaptiveThreshold; other values are for tests: the view must follow the translator).
  uint32_t bt_adaptive_threshold = 0;
  virt::VmcsControls vmcs;  // vt, pv: the VT-x model's controls at the start (sim/virt/vmcs.hpp)
};

struct SimLimits {
  uint64_t max_instructions = 0;  // 0 = no limit
  uint64_t max_exits = 0;         // VM-exit-equivalent events; 0 = no limit
  double timeout_s = 10.0;        // host wall-clock limit
  bool has_breakpoint = false;    // stop before executing the instruction at `breakpoint`
  uint64_t breakpoint = 0;        //   (RIP; not checked for the run's first instruction)
  uint32_t stop_on = 0;           // bit (1 << EventType): stop after an event of that type
};

// What a snapshot keeps besides registers, memory and devices (SimMachine::save_code_state):
// the pages marked as holding cached code and, under technique bt, the translation cache
// (sim/bt/translator.hpp [SECTION] Snapshots), so that a run restored from it translates,
// links and counts what the uninterrupted run did from that point.
struct CodeState {
  std::vector<uint32_t> code_pages;             // Cpu::code_pages()
  std::shared_ptr<const bt::Cache::State> bt;   // null unless technique bt
  size_t bytes() const {
    return sizeof(CodeState) + code_pages.capacity() * sizeof(uint32_t) + (bt ? bt->bytes() : 0);
  }
};

enum class StepStatus : uint8_t {
  kOk,           // one instruction retired (or one exception delivered)
  kHalted,       // `hlt`
  kGuestExit,    // control port written
  kTripleFault,
  kUnsupported,  // an instruction outside the subset: stop (detail says which, where)
  // A rep string instruction was suspended between iterations (sim/cpu.hpp RepSuspended):
  // nothing retired, RIP is at it and the next step resumes it.
  kSuspended,
  kLimit,        // a device reached a cap of trace/limits.hpp (LimitReached): stop
};

struct SimResult {
  trace::RunEndReason reason = trace::RunEndReason::kStopped;
  uint32_t exit_code = 0;
  uint64_t instructions = 0;
  uint64_t exits = 0;
  uint64_t duration_ns = 0;  // host time
  std::string detail;        // "unsupported: <disassembly> at <rip>", triple-fault state, …
};

class SimMachine {
 public:
  explicit SimMachine(const SimConfig& config);

  // Loads a flat binary and sets the CPU up exactly as the KVM backend does (platform/loader.hpp).
  // Throws platform::LoadError.
  void load(std::span<const uint8_t> image);

  // Executes one instruction (delivering any exception it raises), or the next
  // kRepIterationsPerStep iterations of a rep string instruction (kSuspended until its last).
  StepStatus step();
  const std::string& stop_detail() const { return detail_; }

  // Runs until the guest halts, exits, faults or a limit is hit; events go to `sink` (may be
  // null) and end with a trace::RunEndEvent.
  SimResult run(const SimLimits& limits, trace::EventSink* sink);

  // Returns the CPU to a saved state (memory is restored by the caller): flushes the TLB and
  // the decode cache; `code` (from save_code_state() on this machine, at the same point) puts
  // back the code-page marks and the translation cache; without it the cache is emptied.
  void restore_state(const CpuState& state, uint64_t instructions,
                     const CodeState* code = nullptr) {
    cpu_.s = state;
    cpu_.halted = false;
    cpu_.exit_requested = false;
    cpu_.flush_tlb();
    cpu_.invalidate_all_code();
    if (code) cpu_.mark_code_pages(code->code_pages);
    if (bt_) {
      if (code && code->bt) {
        bt_->restore(*code->bt, cpu_);
      } else {
        bt_->flush();
      }
    }
    instructions_ = instructions;
  }
  CodeState save_code_state() const {
    CodeState c;
    c.code_pages = cpu_.code_pages();
    if (bt_) c.bt = bt_->save(cpu_);
    return c;
  }

  // Async-signal-safe: ends the current run with RunEndReason::kStopped.
  void request_stop() { stop_.store(true); }

  Cpu& cpu() { return cpu_; }
  platform::Devices& devices() { return devices_; }
  PhysicalMemory& memory() { return memory_; }
  uint64_t instructions() const { return instructions_; }
  // The VMM of a virtualization technique; null under plain emulation.
  virt::Monitor* monitor() { return monitor_.get(); }
  const virt::Monitor* monitor() const { return monitor_.get(); }
  // The translation cache of binary translation (sim/bt/translator.hpp); null otherwise.
  bt::Cache* bt_cache() { return bt_.get(); }
  // Between runs: the bt units' counters that changed since they were last reported, as
  // kBtCounts events (sim/bt/counts.hpp; a run reports them only when it ends).
  void report_bt_counts(trace::EventSink& sink);

 private:
  SimConfig config_;
  PhysicalMemory memory_;
  platform::Devices devices_;
  Cpu cpu_;
  // Devices' DMA into memory_: a write to a page that holds cached code invalidates it, as a
  // store of the guest does (Cpu::note_write).
  platform::SpanRam dma_ram_;
  static void note_dma_write(void* cpu, uint64_t gpa, uint64_t len);
  uint64_t instructions_ = 0;
  std::string detail_;
  trace::RunEndReason limit_ = trace::RunEndReason::kConsoleLimit;  // of the last kLimit step

  // Decoded instructions by guest-physical address (Bochs's "icache" idea): a hit skips fetch
  // and Zydis. Direct-mapped; an entry is valid while its page's code generation is unchanged.
  // The array comes from calloc: all-zero bytes are an empty entry (tag 0), and the host maps
  // the pages lazily, so a machine that runs little code pays for little of it.
  struct DecodedEntry {
    uint64_t tag;  // guest-physical address + 1; 0 = empty
    uint32_t generation;       // of its page when cached
    trace::CpuMode mode;
    // The instruction may change what FetchContext holds (system instructions, popf, pop of a
    // segment register): burst() computes the context again after it.
    bool changes_context;
    void (*handler)(Cpu&, const Instruction&);  // interp/handlers.hpp select_handler()
    const uint32_t* page_generation;            // Cpu::code_generation_counter(tag - 1)
    Instruction insn;
    // The length, then the bytes zero-padded to 15: exactly InstructionEvent's `len` and
    // `bytes`, so that recording an instruction copies 16 bytes.
    uint8_t code[16];
  };
  struct FreeDeleter {
    void operator()(DecodedEntry* p) const { std::free(p); }
  };
  static constexpr size_t kDecodeCacheEntries = 1u << 14;
  std::unique_ptr<DecodedEntry[], FreeDeleter> decode_cache_{
      static_cast<DecodedEntry*>(std::calloc(kDecodeCacheEntries, sizeof(DecodedEntry)))};
  // What fetching depends on besides RIP: the processor mode, CS, paging and the CPL. It stays
  // valid across instructions that do not change it (see DecodedEntry::changes_context) and is
  // computed again after an exception or an instruction that took the slow path.
  struct FetchContext {
    trace::CpuMode mode;
    bool m64;
    bool paging;
    bool user;        // CPL 3
    uint8_t cpl;
    uint64_t cs_base;
    uint64_t cs_limit;
    uint64_t rip_mask;  // of the next RIP: 16, 32 or 64 bits
  };
  FetchContext fetch_context() const;
  // The cached instruction at CS:RIP, or nullptr if the fast path cannot be taken (not cached,
  // TLB miss, limit, stale code): then step_slow() fetches, decodes and raises what is due.
  const DecodedEntry* lookup(const FetchContext& x);
  StepStatus step_cached(const DecodedEntry& e, const FetchContext& x);
  // Runs up to `n` instructions with no per-instruction stop condition other than an exit,
  // halt, guest exit or fault; *done counts the instructions (and delivered exceptions).
  StepStatus burst(uint64_t n, uint64_t* done);
  void record_instruction(const uint8_t* code, uint8_t cpl, trace::CpuMode mode);
  bool refresh_context_ = false;  // set by step_slow() and recover()
  [[gnu::noinline]] StepStatus step_slow();
  [[gnu::noinline]] StepStatus recover(std::exception_ptr error, const uint8_t* fetched,
                                       unsigned n);
  std::unique_ptr<virt::Monitor> monitor_;  // null: emulation (the step loop's fast path)
  std::unique_ptr<bt::Cache> bt_;           // technique bt (sim/bt/execute.cpp)
  StepStatus step_bt(uint64_t budget, const SimLimits& limits, const bool* matched,
                     uint64_t* done);
  class BtStep;  // one step_bt call, in named steps (sim/bt/execute.cpp)
  // The hypercall interface on the simulator (platform/hypercall.hpp), bound to devices_.hypercall.
  class HypercallHost final : public platform::HypercallHost {
   public:
    explicit HypercallHost(Cpu& cpu, PhysicalMemory& memory) : cpu_(cpu), memory_(memory) {}
    platform::HypercallArgs args() override;
    std::span<uint8_t> guest_memory() override { return memory_.span(); }
    // The PTE store's effects: on cached code (note_write) and, under shadow paging, on the
    // shadow entries built from that page table (resynchronized: sim/mmu.hpp).
    void pte_written(uint64_t gpa) override {
      cpu_.note_write(gpa, 8);
      mmu_vmm_table_write(cpu_, gpa);
    }
    // The TLB only: pte_written keeps the shadow tables equal to the guest's.
    void flush_tlb() override { mmu_flush_tlb(cpu_); }
    void set_cr3(uint64_t value) override;

   private:
    Cpu& cpu_;
    PhysicalMemory& memory_;
  };
  HypercallHost hypercall_host_{cpu_, memory_};
  std::atomic<bool> stop_{false};
  uint64_t clock_ns_ = 0;  // host time sampled by run() every 4096 instructions
};

// Sets a CPU's state from the loader's boot state (shared with the KVM backend's set-up).
void apply_boot_state(CpuState& s, const platform::BootState& boot);

}  // namespace trapscope::sim
