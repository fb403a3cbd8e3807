#include "visualizer/core/devices_view.hpp"

#include <algorithm>

#include "trace/event.hpp"

namespace trapscope::viz {

namespace {
using trace::DeviceAction;
using trace::DeviceKind;

// virtio-mmio register offsets the model follows (platform/virtio_mmio.hpp).
constexpr uint32_t kQueueNum = 0x038, kStatus = 0x070, kDescLow = 0x080, kDescHigh = 0x084,
                   kDriverLow = 0x090, kDriverHigh = 0x094, kDeviceLow = 0x0a0,
                   kDeviceHigh = 0x0a4;
// Request types / ATA opcodes that move data (trace/device_event.hpp).
constexpr uint32_t kVirtioIn = 0, kVirtioOut = 1, kVirtioFlush = 4;
constexpr uint32_t kAtaRead = 0x20, kAtaWrite = 0x30, kAtaFlush = 0xE7;

void set_low(uint64_t& r, uint64_t v) { r = (r & ~uint64_t{0xFFFFFFFF}) | (v & 0xFFFFFFFF); }
void set_high(uint64_t& r, uint64_t v) { r = (r & 0xFFFFFFFF) | (v & 0xFFFFFFFF) << 32; }
}  // namespace

bool DeviceModel::changed_recently(uint32_t offset, uint64_t window) const {
  const auto it = registers.find(offset);
  return it != registers.end() && it->second.changed_at != 0 &&
         register_accesses - it->second.changed_at < window;
}

DeviceModel& DevicesView::device(DeviceKind kind, uint8_t unit) {
  for (DeviceModel& d : devices_) {
    if (d.kind == kind && d.unit == unit) return d;
  }
  DeviceModel d;
  d.kind = kind;
  d.unit = unit;
  devices_.push_back(std::move(d));
  return devices_.back();
}

void DevicesView::mark(uint8_t unit, uint64_t first, uint64_t count, SectorState s) {
  if (first >= kMaxMappedSectors) return;
  count = std::min(count, kMaxMappedSectors - first);
  auto& map = sectors_[unit];
  if (map.size() < first + count) map.resize(first + count, SectorState::kUntouched);
  for (uint64_t i = first; i < first + count; ++i) {
    // Reading a written (not yet flushed) sector keeps it "written".
    if (s == SectorState::kRead && map[i] != SectorState::kUntouched) continue;
    map[i] = s;
  }
}

void DevicesView::flush(uint8_t unit) {
  for (SectorState& s : sectors_[unit]) {
    if (s == SectorState::kWritten) s = SectorState::kFlushed;
  }
}

void DevicesView::on_event(size_t index, const trace::EventHeader& h) {
  if (h.type != trace::EventType::kDevice || h.size != sizeof(trace::DeviceEvent)) return;
  const auto& e = reinterpret_cast<const trace::DeviceEvent&>(h);
  if (e.device >= DeviceKind::kMax) return;
  DeviceModel& d = device(e.device, e.unit);
  const auto event = static_cast<uint32_t>(index);
  const bool virtio = e.device == DeviceKind::kVirtioBlk;
  d.status = e.status;
  ++revision_;
  switch (e.action) {
    case DeviceAction::kRegisterRead:
    case DeviceAction::kRegisterWrite: {
      ++d.register_accesses;
      const auto [it, inserted] = d.registers.try_emplace(e.command);
      DeviceRegister& r = it->second;
      const bool write = e.action == DeviceAction::kRegisterWrite;
      if (inserted || r.value != e.value) r.changed_at = d.register_accesses;
      r.value = e.value;
      r.event = event;
      r.written |= write;
      if (virtio && write) {
        switch (e.command) {
          case kQueueNum: d.queue_size = static_cast<uint32_t>(e.value); break;
          case kDescLow: set_low(d.desc, e.value); break;
          case kDescHigh: set_high(d.desc, e.value); break;
          case kDriverLow: set_low(d.avail, e.value); break;
          case kDriverHigh: set_high(d.avail, e.value); break;
          case kDeviceLow: set_low(d.used, e.value); break;
          case kDeviceHigh: set_high(d.used, e.value); break;
          case kStatus:
            if (e.value == 0) {  // reset: the rings start again
              d.avail_taken = d.used_idx = 0;
              d.avail_ring.clear();
              d.used_ring.clear();
            }
            break;
          default: break;
        }
      }
      return;  // registers are shown in their own table, not as commands
    }
    case DeviceAction::kNotify: ++d.notifies; break;
    case DeviceAction::kNeedsReset:
      ++d.needs_reset;
      d.last_reason = e.value;
      break;
    case DeviceAction::kError:
      ++d.errors;
      d.last_reason = e.value;
      break;
    case DeviceAction::kFlush: flush(e.unit); break;
    case DeviceAction::kUsed: d.used_idx = static_cast<uint16_t>(e.value); break;
    case DeviceAction::kChain: {
      ++d.commands;
      const uint32_t size = std::min(d.queue_size, kMaxRingSlots);
      if (size != 0 && (size & (size - 1)) == 0) {
        d.avail_ring.resize(size);
        d.used_ring.resize(size);
        const RingSlot slot{true, static_cast<uint16_t>(e.value), e.count, e.command, e.status,
                            event};
        d.avail_ring[d.avail_taken % size] = slot;
        d.used_ring[d.avail_taken % size] = slot;
      }
      ++d.avail_taken;
      if (e.status == 0 && e.command == kVirtioIn) mark(e.unit, e.address, e.bytes / 512, SectorState::kRead);
      if (e.status == 0 && e.command == kVirtioOut) mark(e.unit, e.address, e.bytes / 512, SectorState::kWritten);
      if (e.status == 0 && e.command == kVirtioFlush) flush(e.unit);
      break;
    }
    case DeviceAction::kCommand:
      ++d.commands;
      if (e.device == DeviceKind::kAta) {
        if (e.command == kAtaRead) mark(e.unit, e.address, e.count, SectorState::kRead);
        if (e.command == kAtaWrite) mark(e.unit, e.address, e.count, SectorState::kWritten);
        if (e.command == kAtaFlush) flush(e.unit);
      }
      break;
    default: break;
  }
  d.recent.push_back({event, e.action, e.status, e.command, e.address, e.count, e.bytes, e.value});
  if (d.recent.size() > DeviceModel::kRecent) d.recent.pop_front();
}

void DevicesView::rebuild(const EventStore& store, const std::vector<uint32_t>& device_events,
                          size_t n) {
  clear();
  EventRecord r;
  for (uint32_t i : device_events) {
    if (i >= n) break;
    store.load(i, &r);
    on_event(i, r.header);
  }
  ++revision_;
}

}  // namespace trapscope::viz
