#include "snapshot/machine.hpp"

#include <cstring>
#include <ctime>

#include "vmm/doctor.hpp"

namespace trapscope::snapshot {

std::vector<std::string> not_captured(backend::Kind engine) {
  if (engine == backend::Kind::kKvm) {
    return {"retired-instruction count and the simulator's TSC (KVM reports neither)",
            "KVM's TSC and MSRs other than EFER, STAR, LSTAR, CSTAR, SFMASK, KernelGSbase and "
            "the FS/GS bases (SYSENTER, PAT, APIC base: no teaching guest uses them)",
            "in-kernel local APIC / PIC / PIT state (trapscope creates none)"};
  }
  return {"FPU/SSE state (the simulator has no x87/SSE instructions: KVM keeps its reset state)",
          "pending events and the interrupt shadow (the simulator has no interrupt sources)",
          "the decode and translation caches (a restored run starts with empty caches: its bt "
          "counters differ, the guest's results do not)"};
}

void HoldRunEnd::on_event(const trace::EventHeader& e) {
  if (e.type == trace::EventType::kRunEnd && e.size == sizeof held_) {
    std::memcpy(&held_, &e, sizeof held_);
    holding_ = true;
  } else if (next_) {
    next_->on_event(e);
  }
}

void HoldRunEnd::release(uint64_t earlier_exits, uint64_t earlier_ns) {
  held_.exits += earlier_exits;
  held_.duration_ns += earlier_ns;
  if (holding_ && next_) next_->on_event(held_.header);
  holding_ = false;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

File capture(backend::Backend& machine, Metadata meta, bool with_memory) {
  if (const auto why = machine.devices().snapshot_blocker()) {
    throw RestoreError("this machine cannot be snapshotted: " + *why);
  }
  File f;
  f.state = machine.snapshot(/*with_memory=*/false);
  if (with_memory) {
    f.memory = MemoryImage::from(machine.memory());
  } else {
    f.memory.bytes = machine.memory().size();
  }
  f.state.code.reset();
  meta.engine = std::string(backend::to_string(machine.kind()));
  meta.memory_bytes = f.memory.bytes;
  meta.host = machine.kind() == backend::Kind::kKvm ? vmm::host_kvm_module() : "simulator";
  meta.time = utc_now();
  meta.tool_version = TRAPSCOPE_VERSION;
  meta.not_captured = not_captured(machine.kind());
  if (machine.kind() == backend::Kind::kSim) meta.instructions = f.state.instructions;
  f.meta = std::move(meta);
  return f;
}

void apply(const File& f, backend::Backend& machine, bool with_memory) {
  const auto mem = machine.memory();
  if (mem.size() != f.memory.bytes) {
    throw RestoreError("the snapshot holds " + std::to_string(f.memory.bytes >> 20) +
                       " MiB of guest memory, the machine has " + std::to_string(mem.size() >> 20) +
                       " MiB (--mem)");
  }
  if (machine.kind() == backend::Kind::kSim && f.state.events && f.state.events->any()) {
    throw RestoreError("the snapshot has an event pending delivery (taken on KVM), which the "
                       "simulator cannot deliver: restore it with --backend kvm");
  }
  // Whole pages through write_memory: the simulator notes writes to pages of cached code.
  size_t next = 0;
  static const uint8_t kZero[kPageBytes] = {};
  for (uint64_t p = 0; with_memory && p < f.memory.bytes / kPageBytes; ++p) {
    const bool present = next < f.memory.pages.size() && f.memory.pages[next] == p;
    const uint8_t* src = present ? f.memory.data.data() + next * kPageBytes : kZero;
    if (present) ++next;
    if (std::memcmp(mem.data() + p * kPageBytes, src, kPageBytes) == 0) continue;
    machine.write_memory(p * kPageBytes, {src, kPageBytes});
  }
  try {
    machine.restore(f.state);  // state.memory is empty: memory stays as written above
  } catch (const std::exception& e) {
    throw RestoreError(std::string("the machine refused the state: ") + e.what());
  }
}

}  // namespace trapscope::snapshot
