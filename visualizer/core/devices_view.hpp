// visualizer/core/devices_view.hpp — the view model of the Devices panel
// (visualizer/panels/devices_panel.cpp), built from device events alone (trace/device_event.hpp), so
// it works the same live and from a trace file: data flows one way, engine → events → this
// model → the panel. No GUI: unit-tested in tests/test_gui_devices.cpp.
//
// [SECTION] Sources
//   register_read / register_write  a device's registers: the last value seen at each offset
//                  (virtio-mmio registers, platform/virtio_mmio.hpp; the ATA task file is one more
//                  source of the same events, command = register offset)
//   command, chain, complete, error, flush, notify, used, needs_reset
//                  the last kRecent of them per device ("last commands")
//   virtio-blk     QueueNum / QueueDesc / QueueDriver / QueueDevice writes give the queue's
//                  size and areas; each `chain` event fills the next available-ring slot
//                  (its head) and the next used-ring slot (head, status); `used` gives the used
//                  index; Status 0 (reset) empties the rings
//   sector map     per disk unit: IN / READ SECTORS → read, OUT / WRITE SECTORS → written, a
//                  flush turns written sectors into flushed
//
// [SECTION] Incremental
//   on_event() is O(1) per device event (a sector-map update is O(sectors)); truncation
//   (step back, reset) rebuilds from the device events still held.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <vector>

#include "trace/device_event.hpp"
#include "visualizer/core/event_store.hpp"

namespace trapscope::viz {

struct DeviceRegister {
  uint64_t value = 0;
  uint32_t event = 0;       // the event that last set or read it
  uint64_t changed_at = 0;  // DeviceModel::register_accesses when its value last changed
  bool written = false;     // the guest wrote it (else: only read)
};

// One device event, as the "last commands" list shows it.
struct DeviceActivity {
  uint32_t event = 0;
  trace::DeviceAction action = trace::DeviceAction::kCommand;
  uint8_t status = 0;
  uint32_t command = 0;
  uint64_t address = 0;
  uint32_t count = 0, bytes = 0;
  uint64_t value = 0;
};

struct RingSlot {
  bool filled = false;
  uint16_t head = 0;
  uint32_t descriptors = 0;
  uint32_t type = 0;
  uint8_t status = 0;  // used ring: the request's status byte
  uint32_t event = 0;
};

struct DeviceModel {
  static constexpr size_t kRecent = 16;
  trace::DeviceKind kind = trace::DeviceKind::kVirtioBlk;
  uint8_t unit = 0;
  uint8_t status = 0;  // the device's status byte (virtio Status, ATA status register)
  std::map<uint32_t, DeviceRegister> registers;  // by offset
  uint64_t register_accesses = 0;
  std::deque<DeviceActivity> recent;  // newest last
  uint64_t commands = 0, errors = 0, notifies = 0, needs_reset = 0;
  uint64_t last_reason = 0;  // the last needs_reset / error reason code
  // virtio: queue 0 as the driver set it up and as the device used it
  uint32_t queue_size = 0;
  uint64_t desc = 0, avail = 0, used = 0;
  uint16_t avail_taken = 0;  // chains the device took since the reset
  uint16_t used_idx = 0;     // from the last `used` event
  std::vector<RingSlot> avail_ring, used_ring;  // queue_size slots each (at most 256 shown)
  bool changed_recently(uint32_t offset, uint64_t window = 4) const;
};

enum class SectorState : uint8_t { kUntouched, kRead, kWritten, kFlushed };

class DevicesView {
 public:
  static constexpr uint64_t kMaxMappedSectors = uint64_t{1} << 20;  // 512 MiB of disk
  static constexpr uint32_t kMaxRingSlots = 256;

  void on_event(size_t index, const trace::EventHeader& e);
  void rebuild(const EventStore& store, const std::vector<uint32_t>& device_events, size_t n);
  void clear() { *this = DevicesView{}; }

  const std::vector<DeviceModel>& devices() const { return devices_; }
  // Per disk unit: one state per sector touched so far (sectors past the last touched one are
  // untouched; at most kMaxMappedSectors tracked).
  const std::map<uint8_t, std::vector<SectorState>>& sector_maps() const { return sectors_; }
  uint64_t revision() const { return revision_; }

 private:
  DeviceModel& device(trace::DeviceKind kind, uint8_t unit);
  void mark(uint8_t unit, uint64_t first, uint64_t count, SectorState s);
  void flush(uint8_t unit);
  std::vector<DeviceModel> devices_;
  std::map<uint8_t, std::vector<SectorState>> sectors_;
  uint64_t revision_ = 0;
};

}  // namespace trapscope::viz
