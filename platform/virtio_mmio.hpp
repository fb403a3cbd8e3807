// platform/virtio_mmio.hpp — the virtio-mmio transport of OASIS virtio 1.1 §4.2 (the "version 2",
// non-legacy register layout, §4.2.2), as a device on Devices::mmio. A device type (virtio-blk:
// platform/virtio_blk.hpp) derives from VirtioMmio and supplies its ID, features, configuration
// space and what a queue notify does.
//
// Where it sits: device N at kVirtioMmioBase + N × kVirtioMmioStride, kVirtioMmioSize bytes —
// above the largest guest RAM trapscope allows (`--mem 3584` ends at 0xE000_0000), so no RAM
// size can overlap it; Devices::attach_disks refuses one that would (docs/virtio.md).
//
// Registers (offset, 32-bit, little-endian; §4.2.2 table "MMIO Device Register Layout"):
//   0x000 MagicValue R "virt" 0x74726976   0x004 Version R 2    0x008 DeviceID R   0x00c VendorID R
//   0x010 DeviceFeatures R (32 bits chosen by 0x014 DeviceFeaturesSel W)
//   0x020 DriverFeatures W (32 bits chosen by 0x024 DriverFeaturesSel W)
//   0x030 QueueSel W   0x034 QueueNumMax R   0x038 QueueNum W   0x044 QueueReady RW
//   0x050 QueueNotify W   0x060 InterruptStatus R   0x064 InterruptACK W   0x070 Status RW
//   0x080/0x084 QueueDescLow/High W   0x090/0x094 QueueDriverLow/High W (available ring)
//   0x0a0/0x0a4 QueueDeviceLow/High W (used ring)   0x0fc ConfigGeneration R   0x100+ Config RW
// §4.2.2.2: the driver uses 32-bit aligned accesses for registers; any other access is ignored
// (reads 0) and counted in bad_accesses. Unknown offsets read 0 and ignore writes.
//
// Device status (§2.1): ACKNOWLEDGE 1, DRIVER 2, DRIVER_OK 4, FEATURES_OK 8, DEVICE_NEEDS_RESET
// 64, FAILED 128; writing 0 resets the device (§4.2.3.1). FEATURES_OK is kept only if the
// driver's features are a subset of the device's and include VIRTIO_F_VERSION_1 (bit 32; §6.1:
// this device is not legacy), else the driver reads it back clear (§3.1.1 step 6).
//
// Queues: QueueReady = 1 checks the queue (platform/virtqueue.hpp check_layout); a bad one sets
// DEVICE_NEEDS_RESET. A notify processes the queue (the device type's job) only with DRIVER_OK
// and the queue ready. No interrupts: trapscope has no interrupt controller, so the driver polls
// the used ring; InterruptStatus bit 0 (used buffer notification) is still set when the device
// adds to a used ring and bit 1 (configuration change) when it sets DEVICE_NEEDS_RESET, as
// §4.2.2 says, and InterruptACK clears them.
//
// Events (trace/device_event.hpp, device virtio-blk, unit N): register_read / register_write per
// access (command = offset, value, count = access bytes, status = device status before a write,
// after a read); notify (command = queue);
// needs_reset (value = VirtqError, platform/virtqueue.hpp).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

#include "platform/bus.hpp"
#include "platform/virtqueue.hpp"
#include "trace/device_event.hpp"
#include "trace/event.hpp"

namespace trapscope::platform {

struct Devices;

inline constexpr uint64_t kVirtioMmioBase = 0xE000'0000;
inline constexpr uint64_t kVirtioMmioStride = 0x1000;
inline constexpr uint64_t kVirtioMmioSize = 0x200;
inline constexpr uint32_t kVirtioMagic = 0x7472'6976;  // "virt", little-endian
inline constexpr uint32_t kVirtioVendorId = 0x5354'5254;  // "TRTS": trapscope's own

inline constexpr uint64_t kVirtioFVersion1 = uint64_t{1} << 32;

inline constexpr uint8_t kVirtioStatusAcknowledge = 1;
inline constexpr uint8_t kVirtioStatusDriver = 2;
inline constexpr uint8_t kVirtioStatusDriverOk = 4;
inline constexpr uint8_t kVirtioStatusFeaturesOk = 8;
inline constexpr uint8_t kVirtioStatusNeedsReset = 64;
inline constexpr uint8_t kVirtioStatusFailed = 128;

// Register offsets (§4.2.2).
enum VirtioMmioReg : uint32_t {
  kVmMagic = 0x000, kVmVersion = 0x004, kVmDeviceId = 0x008, kVmVendorId = 0x00c,
  kVmDeviceFeatures = 0x010, kVmDeviceFeaturesSel = 0x014, kVmDriverFeatures = 0x020,
  kVmDriverFeaturesSel = 0x024, kVmQueueSel = 0x030, kVmQueueNumMax = 0x034, kVmQueueNum = 0x038,
  kVmQueueReady = 0x044, kVmQueueNotify = 0x050, kVmInterruptStatus = 0x060,
  kVmInterruptAck = 0x064, kVmStatus = 0x070, kVmQueueDescLow = 0x080, kVmQueueDescHigh = 0x084,
  kVmQueueDriverLow = 0x090, kVmQueueDriverHigh = 0x094, kVmQueueDeviceLow = 0x0a0,
  kVmQueueDeviceHigh = 0x0a4, kVmConfigGeneration = 0x0fc, kVmConfig = 0x100,
};
// The register's name in the specification ("QueueNotify"); "Config+N" in the config space.
std::string register_name(uint32_t offset);

class VirtioMmio : public MmioDevice {
 public:
  static constexpr uint32_t kQueueNumMax = 256;

  VirtioMmio(Devices& devices, trace::DeviceKind kind, uint8_t unit)
      : devices_(devices), kind_(kind), unit_(unit) {}
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  uint8_t status() const { return status_; }
  uint32_t interrupt_status() const { return interrupt_status_; }
  uint64_t driver_features() const { return driver_features_; }
  const Virtqueue& queue(uint32_t i) const { return queues_.at(i); }
  bool queue_ready(uint32_t i) const { return ready_.at(i); }

  struct Counters {
    uint64_t notifies = 0;
    uint64_t needs_reset = 0;   // times the device entered DEVICE_NEEDS_RESET
    uint64_t bad_accesses = 0;  // register accesses not 32-bit aligned
    VirtqError last_error = VirtqError::kNone;
  };
  const Counters& counters() const { return counters_; }

 protected:
  static constexpr uint32_t kNumQueues = 1;
  virtual uint32_t device_id() const = 0;
  virtual uint64_t device_features() const = 0;
  // Reads `data.size()` bytes of the configuration space at `offset` (zeros past its end).
  virtual void read_config(uint64_t offset, std::span<uint8_t> data) = 0;
  // The driver notified queue `q` (ready, DRIVER_OK): process what it made available.
  virtual void process_queue(uint32_t q) = 0;
  virtual void reset_device() {}

  // Sets DEVICE_NEEDS_RESET (and InterruptStatus bit 1), counts it, raises a needs_reset event.
  void needs_reset(VirtqError why);
  // After the device added to queue q's used ring: InterruptStatus bit 0, a `used` event.
  void used_buffers(uint32_t q);
  // Fills device, unit and (unless keep_status) status = the device status byte.
  void emit(trace::DeviceEvent e, bool keep_status = false);
  GuestRam& ram();
  Virtqueue& vq(uint32_t q) { return queues_[q]; }
  Counters counters_;

 private:
  void reset();
  void write_reg(uint32_t offset, uint32_t v);
  uint32_t read_reg(uint32_t offset);
  void set_status(uint8_t v);
  void register_event(trace::DeviceAction action, uint64_t offset, size_t bytes, uint64_t value);

  Devices& devices_;
  trace::DeviceKind kind_;
  uint8_t unit_;
  uint8_t status_ = 0;
  uint32_t device_features_sel_ = 0, driver_features_sel_ = 0, queue_sel_ = 0;
  uint64_t driver_features_ = 0;
  uint32_t interrupt_status_ = 0;
  std::array<Virtqueue, kNumQueues> queues_{};
  std::array<bool, kNumQueues> ready_{};
};

}  // namespace trapscope::platform
