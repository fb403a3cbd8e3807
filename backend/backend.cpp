#include "backend/backend.hpp"

#include <atomic>
#include <cstring>
#include <stdexcept>

#include "sim/sim_machine.hpp"
#include "vmm/kvm_state.hpp"
#include "vmm/kvm_machine.hpp"

namespace trapscope::backend {
namespace {

bool write_span(std::span<uint8_t> mem, uint64_t gpa, std::span<const uint8_t> bytes) {
  if (gpa > mem.size() || bytes.size() > mem.size() - gpa) return false;
  std::memcpy(mem.data() + gpa, bytes.data(), bytes.size());
  return true;
}

class KvmBackend final : public Backend {
 public:
  explicit KvmBackend(const Config& c) : machine_(vmm::MachineConfig{c.memory_bytes, c.mode, c.load_address}) {}
  Kind kind() const override { return Kind::kKvm; }
  void load(std::span<const uint8_t> image) override { machine_.load(image); }
  std::vector<std::pair<std::string, uint64_t>> kvm_stats() override {
    return machine_.vcpu().stats();
  }
  RunOutcome run(const StopCondition& stop, trace::EventSink* sink) override {
    const uint32_t vm_exit_bit = 1u << static_cast<unsigned>(trace::EventType::kVmExit);
    if (stop.max_instructions != 0 || (stop.stop_on & ~vm_exit_bit) != 0) {
      throw std::invalid_argument(
          "KVM does not report retired instructions, ring transitions, exceptions or page "
          "walks to the VMM: use the simulator (--backend sim) for that stop condition");
    }
    uint64_t max_exits = stop.max_exits;
    if (stop.stop_on & vm_exit_bit) max_exits = 1;
    machine_.set_debug(false, stop.has_breakpoint, stop.breakpoint);
    vmm::RunResult r = machine_.run({stop.timeout_s, max_exits}, sink);
    machine_.set_debug(false, false, 0);
    if ((stop.stop_on & vm_exit_bit) && r.reason == trace::RunEndReason::kExitLimit) {
      r.reason = trace::RunEndReason::kEventMatched;
    }
    if (stop.has_breakpoint && r.reason == trace::RunEndReason::kDebug) {
      r.reason = trace::RunEndReason::kBreakpoint;
    }
    return {r.reason, r.exit_code, r.exits, 0, r.duration_ns, r.detail};
  }
  RunOutcome step(trace::EventSink* sink) override {
    machine_.set_debug(true, false, 0);
    vmm::RunResult r = machine_.run({10.0, 0}, sink);
    machine_.set_debug(false, false, 0);
    if (r.reason == trace::RunEndReason::kDebug) r.reason = trace::RunEndReason::kStep;
    return {r.reason, r.exit_code, r.exits, 0, r.duration_ns, r.detail};
  }
  Snapshot snapshot() override {
    Snapshot s;
    s.kind = Kind::kKvm;
    s.registers = registers();
    const auto m = memory();
    s.memory.assign(m.begin(), m.end());
    s.devices = machine_.devices().save();
    return s;
  }
  void restore(const Snapshot& s) override {
    if (s.kind != Kind::kKvm || s.memory.size() != memory().size()) {
      throw std::invalid_argument("snapshot of another machine");
    }
    std::memcpy(machine_.memory().bytes().data(), s.memory.data(), s.memory.size());
    set_registers(s.registers);
    machine_.devices().restore(s.devices);
  }
  x86::CpuState registers() override {
    return vmm::from_kvm(machine_.vcpu().get_regs(), machine_.vcpu().get_sregs());
  }
  void set_registers(const x86::CpuState& c) override {
    kvm_regs r{};
    kvm_sregs s = machine_.vcpu().get_sregs();
    vmm::to_kvm(c, &r, &s);
    machine_.vcpu().set_sregs(s);
    machine_.vcpu().set_regs(r);
  }
  std::span<const uint8_t> memory() const override {
    return const_cast<vmm::KvmMachine&>(machine_).memory().bytes();
  }
  bool write_memory(uint64_t gpa, std::span<const uint8_t> bytes) override {
    return write_span(machine_.memory().bytes(), gpa, bytes);
  }
  platform::Devices& devices() override { return machine_.devices(); }
  void request_stop() override { machine_.request_stop(); }

 private:
  vmm::KvmMachine machine_;
};

class SimBackend final : public Backend {
 public:
  explicit SimBackend(const Config& c)
      : machine_(sim::SimConfig{c.memory_bytes, c.mode, c.load_address, c.record_instructions,
                                c.technique, c.deprivilege, c.paging, c.tlb_entries,
                                c.bt_lookup_events, c.bt_adaptive_threshold}) {}
  const sim::bt::BtStats* bt_stats() override {
    return machine_.bt_cache() ? &machine_.bt_cache()->stats() : nullptr;
  }
  void report_bt_counts(trace::EventSink& sink) override { machine_.report_bt_counts(sink); }
  Kind kind() const override { return Kind::kSim; }
  void load(std::span<const uint8_t> image) override { machine_.load(image); }
  RunOutcome run(const StopCondition& stop, trace::EventSink* sink) override {
    sim::SimLimits limits;
    limits.max_instructions = stop.max_instructions;
    limits.max_exits = stop.max_exits;
    limits.timeout_s = stop.timeout_s;
    limits.has_breakpoint = stop.has_breakpoint;
    limits.breakpoint = stop.breakpoint;
    limits.stop_on = stop.stop_on;
    const sim::SimResult r = machine_.run(limits, sink);
    return {r.reason, r.exit_code, r.exits, r.instructions, r.duration_ns, r.detail};
  }
  RunOutcome step(trace::EventSink* sink) override {
    sim::SimLimits limits;
    limits.max_instructions = 1;
    sim::SimResult r = machine_.run(limits, sink);
    if (r.reason == trace::RunEndReason::kInstructionLimit) r.reason = trace::RunEndReason::kStep;
    return {r.reason, r.exit_code, r.exits, r.instructions, r.duration_ns, r.detail};
  }
  Snapshot snapshot() override {
    Snapshot s;
    s.kind = Kind::kSim;
    s.registers = machine_.cpu().s;
    const auto m = machine_.memory().span();
    s.memory.assign(m.begin(), m.end());
    s.devices = machine_.devices().save();
    s.instructions = machine_.instructions();
    s.code = std::make_shared<const sim::CodeState>(machine_.save_code_state());
    return s;
  }
  void restore(const Snapshot& s) override {
    if (s.kind != Kind::kSim || s.memory.size() != machine_.memory().size()) {
      throw std::invalid_argument("snapshot of another machine");
    }
    std::memcpy(machine_.memory().data(), s.memory.data(), s.memory.size());
    machine_.restore_state(s.registers, s.instructions, s.code.get());
    machine_.devices().restore(s.devices);
  }
  x86::CpuState registers() override { return machine_.cpu().s; }
  void set_registers(const x86::CpuState& c) override {
    const uint64_t tsc = machine_.cpu().s.tsc;
    machine_.cpu().s = c;
    machine_.cpu().s.tsc = tsc;
    machine_.cpu().flush_tlb();
  }
  bool write_memory(uint64_t gpa, std::span<const uint8_t> bytes) override {
    machine_.cpu().flush_tlb();
    if (!write_span(machine_.memory().span(), gpa, bytes)) return false;
    if (!bytes.empty()) machine_.cpu().note_write(gpa, static_cast<unsigned>(bytes.size()));
    return true;
  }
  std::span<const uint8_t> memory() const override {
    return const_cast<sim::SimMachine&>(machine_).memory().span();
  }
  platform::Devices& devices() override { return machine_.devices(); }
  void request_stop() override { machine_.request_stop(); }
  std::optional<PagingCounters> paging_counters() const override {
    const sim::Cpu& c = const_cast<sim::SimMachine&>(machine_).cpu();
    return PagingCounters{c.tlb.hits, c.tlb.misses, c.tlb.flushes, c.tlb.entries(), c.memvirt.stats};
  }

 private:
  sim::SimMachine machine_;
};

}  // namespace

std::string_view to_string(Kind kind) { return kind == Kind::kKvm ? "kvm" : "sim"; }

namespace {
std::atomic<uint64_t> g_machines_made{0};
}  // namespace

uint64_t machines_made() { return g_machines_made.load(); }

std::unique_ptr<Backend> make_backend(Kind kind, const Config& config) {
  ++g_machines_made;
  std::unique_ptr<Backend> b;
  if (kind == Kind::kKvm) b = std::make_unique<KvmBackend>(config);
  else b = std::make_unique<SimBackend>(config);
  if (config.add_disks) config.add_disks(b->devices());
  b->devices().attach_disks();
  return b;
}

bool kvm_usable(std::string* why) {
  try {
    vmm::Kvm kvm = vmm::Kvm::open();
    vmm::Vm vm = kvm.create_vm();
    return true;
  } catch (const std::exception& e) {
    if (why) *why = e.what();
    return false;
  }
}

}  // namespace trapscope::backend
