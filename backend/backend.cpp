#include "backend/backend.hpp"

#include <atomic>
#include <cstring>
#include <stdexcept>

#include "platform/disk_image.hpp"
#include "sim/sim_machine.hpp"
#include "vmm/kvm_extended_state.hpp"
#include "vmm/kvm_state.hpp"
#include "vmm/kvm_machine.hpp"

namespace trapscope::backend {
namespace {

bool write_span(std::span<uint8_t> mem, uint64_t gpa, std::span<const uint8_t> bytes) {
  if (gpa > mem.size() || bytes.size() > mem.size() - gpa) return false;
  std::memcpy(mem.data() + gpa, bytes.data(), bytes.size());
  return true;
}

// Every run end (guest exit, fault, limit, stop request) makes the disks' writes durable.
RunOutcome flushed(platform::Devices& devices, RunOutcome r) {
  if (const auto s = devices.flush_disks(); s != platform::BlockStatus::kOk) {
    r.detail += "disk flush at run end failed: " + std::string(platform::to_string(s)) + "\n";
  }
  return r;
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
    if (stop.debug_slots.size() > 4 || (stop.has_breakpoint && !stop.debug_slots.empty())) {
      throw std::invalid_argument("KVM has four debug registers (DR0-DR3): too many breakpoints");
    }
    if (stop.debug_slots.empty()) {
      machine_.set_debug(false, stop.has_breakpoint, stop.breakpoint);
    } else {
      std::vector<vmm::DebugSlot> slots;
      for (const DebugSlot& d : stop.debug_slots) slots.push_back({d.linear, d.rw, d.len});
      machine_.set_debug_slots(slots);
    }
    vmm::RunResult r = machine_.run({stop.timeout_s, max_exits}, sink);
    machine_.set_debug(false, false, 0);
    if ((stop.stop_on & vm_exit_bit) && r.reason == trace::RunEndReason::kExitLimit) {
      r.reason = trace::RunEndReason::kEventMatched;
    }
    if ((stop.has_breakpoint || !stop.debug_slots.empty()) &&
        r.reason == trace::RunEndReason::kDebug) {
      r.reason = trace::RunEndReason::kBreakpoint;
    }
    return flushed(devices(), {r.reason, r.exit_code, r.exits, 0, r.duration_ns, r.detail});
  }
  RunOutcome step(trace::EventSink* sink) override {
    machine_.set_debug(true, false, 0);
    vmm::RunResult r = machine_.run({10.0, 0}, sink);
    machine_.set_debug(false, false, 0);
    if (r.reason == trace::RunEndReason::kDebug) r.reason = trace::RunEndReason::kStep;
    return flushed(devices(), {r.reason, r.exit_code, r.exits, 0, r.duration_ns, r.detail});
  }
  Snapshot snapshot(bool with_memory) override {
    settle();
    Snapshot s;
    s.kind = Kind::kKvm;
    s.registers = registers();
    vmm::read_msrs_and_debug(machine_.vcpu(), &s.registers);
    s.fpu = vmm::from_kvm(machine_.vcpu().get_fpu());
    s.events = vmm::from_kvm(machine_.vcpu().get_vcpu_events());
    const auto m = memory();
    if (with_memory) s.memory.assign(m.begin(), m.end());
    s.devices = machine_.devices().save();
    return s;
  }
  void restore(const Snapshot& s) override {
    if (!s.memory.empty() && s.memory.size() != memory().size()) {
      throw std::invalid_argument("snapshot of a machine with another memory size");
    }
    settle();
    if (!s.memory.empty()) {
      std::memcpy(machine_.memory().bytes().data(), s.memory.data(), s.memory.size());
    }
    set_registers(s.registers);
    vmm::write_msrs_and_debug(machine_.vcpu(), s.registers);
    if (s.fpu) machine_.vcpu().set_fpu(vmm::to_kvm(*s.fpu));
    kvm_vcpu_events e = machine_.vcpu().get_vcpu_events();
    vmm::to_kvm(s.events.value_or(x86::PendingEvents{}), &e);
    machine_.vcpu().set_vcpu_events(e);
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
  bool set_dirty_logging(bool on) override {
    auto& mem = machine_.memory();
    machine_.vm().set_user_memory_region(0, 0, mem.size(), mem.host_address(),
                                         on ? KVM_MEM_LOG_DIRTY_PAGES : 0);
    return true;
  }
  std::vector<uint64_t> take_dirty_log() override {
    return machine_.vm().get_dirty_log(0, machine_.memory().size() / 4096);
  }

 private:
  // After an I/O or MMIO exit the vCPU's state is consistent only once KVM_RUN has been entered
  // again, which completes the access; with immediate_exit set it returns at once without
  // running guest code (KVM API 5, kvm_run.immediate_exit). Harmless when nothing is pending.
  void settle() {
    machine_.vcpu().kick();
    (void)machine_.vcpu().run();
    machine_.vcpu().clear_kick();
  }
  vmm::KvmMachine machine_;
};

class SimBackend final : public Backend {
 public:
  explicit SimBackend(const Config& c)
      : machine_(sim::SimConfig{c.memory_bytes, c.mode, c.load_address, c.record_instructions,
                                c.technique, c.deprivilege, c.paging, c.tlb_entries,
                                c.bt_lookup_events, c.bt_adaptive_threshold, c.vmcs}) {}
  std::optional<sim::virt::VmcsControls> vmcs() const override {
    const sim::virt::Monitor* m = machine_.monitor();
    if (m && (m->technique() == sim::virt::Technique::kVt ||
              m->technique() == sim::virt::Technique::kPv)) {
      return m->controls();
    }
    return std::nullopt;
  }
  bool set_vmcs(const sim::virt::VmcsControls& controls) override {
    sim::virt::Monitor* m = machine_.monitor();
    if (!m || (m->technique() != sim::virt::Technique::kVt &&
               m->technique() != sim::virt::Technique::kPv)) {
      return false;
    }
    m->controls() = controls;
    return true;
  }
  const sim::bt::BtStats* bt_stats() override {
    return machine_.bt_cache() ? &machine_.bt_cache()->stats() : nullptr;
  }
  void report_bt_counts(trace::EventSink& sink) override { machine_.report_bt_counts(sink); }
  Kind kind() const override { return Kind::kSim; }
  void load(std::span<const uint8_t> image) override { machine_.load(image); }
  RunOutcome run(const StopCondition& stop, trace::EventSink* sink) override {
    if (!stop.debug_slots.empty()) {
      throw std::invalid_argument("the simulator has no debug-register slots: check breakpoints "
                                  "and watchpoints between steps (gdbstub/session.cpp)");
    }
    sim::SimLimits limits;
    limits.max_instructions = stop.max_instructions;
    limits.max_exits = stop.max_exits;
    limits.timeout_s = stop.timeout_s;
    limits.has_breakpoint = stop.has_breakpoint;
    limits.breakpoint = stop.breakpoint;
    limits.stop_on = stop.stop_on;
    const sim::SimResult r = machine_.run(limits, sink);
    return flushed(devices(),
                   {r.reason, r.exit_code, r.exits, r.instructions, r.duration_ns, r.detail});
  }
  RunOutcome step(trace::EventSink* sink) override {
    sim::SimLimits limits;
    limits.max_instructions = 1;
    sim::SimResult r = machine_.run(limits, sink);
    if (r.reason == trace::RunEndReason::kInstructionLimit) r.reason = trace::RunEndReason::kStep;
    return flushed(devices(),
                   {r.reason, r.exit_code, r.exits, r.instructions, r.duration_ns, r.detail});
  }
  Snapshot snapshot(bool with_memory) override {
    Snapshot s;
    s.kind = Kind::kSim;
    s.registers = machine_.cpu().s;
    const auto m = machine_.memory().span();
    if (with_memory) s.memory.assign(m.begin(), m.end());
    s.devices = machine_.devices().save();
    s.instructions = machine_.instructions();
    s.code = std::make_shared<const sim::CodeState>(machine_.save_code_state());
    return s;
  }
  void restore(const Snapshot& s) override {
    if (!s.memory.empty() && s.memory.size() != machine_.memory().size()) {
      throw std::invalid_argument("snapshot of a machine with another memory size");
    }
    if (s.events && s.events->any()) {
      throw std::invalid_argument("the snapshot has an event pending delivery (KVM), which the "
                                  "simulator cannot deliver");
    }
    if (!s.memory.empty()) std::memcpy(machine_.memory().data(), s.memory.data(), s.memory.size());
    // A KVM snapshot has no code state; one of another technique's translation cache is not
    // this machine's: both start with empty caches.
    const bool own_code = s.kind == Kind::kSim && s.code &&
                          (s.code->bt != nullptr) == (machine_.bt_cache() != nullptr);
    machine_.restore_state(s.registers, s.instructions, own_code ? s.code.get() : nullptr);
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
  if (config.disks.size() > 2) {
    throw platform::DiskError("at most 2 disks (ATA drives 0 and 1); " +
                              std::to_string(config.disks.size()) + " given");
  }
  std::vector<std::shared_ptr<platform::BlockBackend>> disks;
  for (const platform::DiskSpec& spec : config.disks) disks.push_back(platform::open_disk(spec));
  ++g_machines_made;
  std::unique_ptr<Backend> b;
  if (kind == Kind::kKvm) {
    b = std::make_unique<KvmBackend>(config);
  } else {
    b = std::make_unique<SimBackend>(config);
  }
  b->devices().disks = std::move(disks);
  if (config.add_disks) config.add_disks(b->devices());  // tests: in-memory disks
  b->devices().attach_disks();
  // The simulator models the IOMMU; on KVM the device is VMM code checked against RAM's bounds.
  b->devices().attach_passthrough(config.passthrough, kind == Kind::kSim);
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
