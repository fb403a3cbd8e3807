#include "platform/virtio_mmio.hpp"

#include <cstring>

#include "platform/devices.hpp"

namespace trapscope::platform {

std::string register_name(uint32_t offset) {
  switch (offset) {
    case kVmMagic: return "MagicValue";
    case kVmVersion: return "Version";
    case kVmDeviceId: return "DeviceID";
    case kVmVendorId: return "VendorID";
    case kVmDeviceFeatures: return "DeviceFeatures";
    case kVmDeviceFeaturesSel: return "DeviceFeaturesSel";
    case kVmDriverFeatures: return "DriverFeatures";
    case kVmDriverFeaturesSel: return "DriverFeaturesSel";
    case kVmQueueSel: return "QueueSel";
    case kVmQueueNumMax: return "QueueNumMax";
    case kVmQueueNum: return "QueueNum";
    case kVmQueueReady: return "QueueReady";
    case kVmQueueNotify: return "QueueNotify";
    case kVmInterruptStatus: return "InterruptStatus";
    case kVmInterruptAck: return "InterruptACK";
    case kVmStatus: return "Status";
    case kVmQueueDescLow: return "QueueDescLow";
    case kVmQueueDescHigh: return "QueueDescHigh";
    case kVmQueueDriverLow: return "QueueDriverLow";
    case kVmQueueDriverHigh: return "QueueDriverHigh";
    case kVmQueueDeviceLow: return "QueueDeviceLow";
    case kVmQueueDeviceHigh: return "QueueDeviceHigh";
    case kVmConfigGeneration: return "ConfigGeneration";
    default: break;
  }
  if (offset >= kVmConfig) return "Config+" + std::to_string(offset - kVmConfig);
  return "?";
}

void VirtioMmio::emit(trace::DeviceEvent e, bool keep_status) {
  e.device = kind_;
  e.unit = unit_;
  if (!keep_status) e.status = status_;
  devices_.emit(e);
}

void VirtioMmio::register_event(trace::DeviceAction action, uint64_t offset, size_t bytes,
                                uint64_t value) {
  trace::DeviceEvent e{};
  e.action = action;
  e.command = static_cast<uint32_t>(offset);
  e.count = static_cast<uint32_t>(bytes);
  e.value = value;
  emit(e);
}

GuestRam& VirtioMmio::ram() { return *devices_.ram; }

void VirtioMmio::reset() {
  status_ = 0;
  device_features_sel_ = driver_features_sel_ = queue_sel_ = 0;
  driver_features_ = 0;
  interrupt_status_ = 0;
  for (Virtqueue& q : queues_) q.reset();
  ready_.fill(false);
  reset_device();
}

void VirtioMmio::needs_reset(VirtqError why) {
  status_ |= kVirtioStatusNeedsReset;
  interrupt_status_ |= 2;  // configuration change notification (§4.2.2 InterruptStatus)
  ++counters_.needs_reset;
  counters_.last_error = why;
  trace::DeviceEvent e{};
  e.action = trace::DeviceAction::kNeedsReset;
  e.value = static_cast<uint64_t>(why);
  emit(e);
}

void VirtioMmio::used_buffers(uint32_t q) {
  interrupt_status_ |= 1;  // used buffer notification
  trace::DeviceEvent e{};
  e.action = trace::DeviceAction::kUsed;
  e.command = q;
  e.value = queues_[q].used_idx;
  emit(e);
}

void VirtioMmio::set_status(uint8_t v) {
  if (v == 0) {
    reset();
    return;
  }
  // FEATURES_OK is accepted only for a subset of our features that includes VERSION_1.
  if ((v & kVirtioStatusFeaturesOk) && !(status_ & kVirtioStatusFeaturesOk)) {
    const bool ok = (driver_features_ & ~device_features()) == 0 &&
                    (driver_features_ & kVirtioFVersion1) != 0;
    if (!ok) v &= static_cast<uint8_t>(~kVirtioStatusFeaturesOk);
  }
  // The driver cannot set or clear DEVICE_NEEDS_RESET; only a reset clears it.
  status_ = static_cast<uint8_t>((v & ~kVirtioStatusNeedsReset) |
                                 (status_ & kVirtioStatusNeedsReset));
}

uint32_t VirtioMmio::read_reg(uint32_t offset) {
  const bool have_queue = queue_sel_ < kNumQueues;
  switch (offset) {
    case kVmMagic: return kVirtioMagic;
    case kVmVersion: return 2;
    case kVmDeviceId: return device_id();
    case kVmVendorId: return kVirtioVendorId;
    case kVmDeviceFeatures:
      return device_features_sel_ < 2
                 ? static_cast<uint32_t>(device_features() >> (32 * device_features_sel_))
                 : 0;
    case kVmQueueNumMax: return have_queue ? kQueueNumMax : 0;
    case kVmQueueReady: return have_queue && ready_[queue_sel_] ? 1 : 0;
    case kVmInterruptStatus: return interrupt_status_;
    case kVmStatus: return status_;
    case kVmConfigGeneration: return 0;  // the configuration never changes
    default: return 0;
  }
}

void VirtioMmio::write_reg(uint32_t offset, uint32_t v) {
  const bool have_queue = queue_sel_ < kNumQueues;
  Virtqueue* q = have_queue ? &queues_[queue_sel_] : nullptr;
  auto set_low = [](uint64_t& r, uint32_t x) { r = (r & ~uint64_t{0xFFFFFFFF}) | x; };
  auto set_high = [](uint64_t& r, uint32_t x) { r = (r & 0xFFFFFFFF) | uint64_t{x} << 32; };
  switch (offset) {
    case kVmDeviceFeaturesSel: device_features_sel_ = v; break;
    case kVmDriverFeaturesSel: driver_features_sel_ = v; break;
    case kVmDriverFeatures:
      if (driver_features_sel_ == 0) set_low(driver_features_, v);
      if (driver_features_sel_ == 1) set_high(driver_features_, v);
      break;
    case kVmQueueSel: queue_sel_ = v; break;
    case kVmQueueNum: if (q) q->layout.size = v; break;
    case kVmQueueDescLow: if (q) set_low(q->layout.desc, v); break;
    case kVmQueueDescHigh: if (q) set_high(q->layout.desc, v); break;
    case kVmQueueDriverLow: if (q) set_low(q->layout.avail, v); break;
    case kVmQueueDriverHigh: if (q) set_high(q->layout.avail, v); break;
    case kVmQueueDeviceLow: if (q) set_low(q->layout.used, v); break;
    case kVmQueueDeviceHigh: if (q) set_high(q->layout.used, v); break;
    case kVmQueueReady:
      if (!q) break;
      if (v == 0) {
        ready_[queue_sel_] = false;
      } else if (!ready_[queue_sel_]) {
        const VirtqError e = check_layout(ram(), q->layout, kQueueNumMax);
        if (e != VirtqError::kNone) {
          needs_reset(e);
        } else {
          ready_[queue_sel_] = true;
          q->last_avail = q->used_idx = 0;
        }
      }
      break;
    case kVmQueueNotify: {
      ++counters_.notifies;
      trace::DeviceEvent e{};
      e.action = trace::DeviceAction::kNotify;
      e.command = v;
      emit(e);
      if (status_ & kVirtioStatusNeedsReset) break;  // ignored until the driver resets us
      if (v >= kNumQueues || !ready_[v] || !(status_ & kVirtioStatusDriverOk)) {
        needs_reset(VirtqError::kQueueNotReady);
        break;
      }
      process_queue(v);
      break;
    }
    case kVmInterruptAck: interrupt_status_ &= ~v; break;
    case kVmStatus: set_status(static_cast<uint8_t>(v)); break;
    default: break;  // read-only or unknown: ignored
  }
}

void VirtioMmio::read(uint64_t offset, std::span<uint8_t> data) {
  std::memset(data.data(), 0, data.size());
  uint64_t v = 0;
  if (offset >= kVmConfig) {
    read_config(offset - kVmConfig, data);
    std::memcpy(&v, data.data(), data.size() < 8 ? data.size() : 8);
  } else if (data.size() != 4 || offset % 4 != 0) {
    ++counters_.bad_accesses;
  } else {
    const uint32_t r = read_reg(static_cast<uint32_t>(offset));
    std::memcpy(data.data(), &r, 4);
    v = r;
  }
  register_event(trace::DeviceAction::kRegisterRead, offset, data.size(), v);
}

void VirtioMmio::write(uint64_t offset, std::span<const uint8_t> data) {
  uint32_t v = 0;
  std::memcpy(&v, data.data(), data.size() < 4 ? data.size() : 4);
  // The register_write event comes first, so a notify's chain events follow it.
  register_event(trace::DeviceAction::kRegisterWrite, offset, data.size(), v);
  if (offset >= kVmConfig) return;  // virtio-blk's configuration is read-only here
  if (data.size() != 4 || offset % 4 != 0) {
    ++counters_.bad_accesses;
    return;
  }
  write_reg(static_cast<uint32_t>(offset), v);
}

}  // namespace trapscope::platform
