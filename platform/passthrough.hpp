// platform/passthrough.hpp — the passthrough device: a small DMA block engine whose register page
// and buffer are host memory that can be mapped straight into guest-physical space, and the
// simulator's IOMMU model that its DMA goes through. docs/passthrough.md explains both; the guest
// contract is in guests/include/trapscope.inc (TS_PT_*).
//
// Two ways to give the guest the same device (`trapscope run --passthrough mapped|emulated`):
//   mapped    the 8 KiB window (register page + buffer) is a shared memory object (memfd) mapped
//             into guest-physical space at kPassthroughBase: on KVM as memory slot 1
//             (KVM_SET_USER_MEMORY_REGION), on the simulator as a RAM-backed region its CPU reads
//             and writes directly. The guest's accesses cause no VM exit. The device reacts by
//             polling the doorbell word: on KVM a host thread (start_thread/stop_thread), on the
//             simulator in lock-step after every guest write to the window (deterministic runs).
//   emulated  the same registers on Devices::mmio: every guest access is an MMIO exit and the
//             doorbell write runs the command synchronously, inside that exit.
//
// Register page (offsets from kPassthroughBase; little-endian; RO = the device's, RW = the
// guest's; in mapped mode the guest can write anything, the device only reads the RW words):
//   0x00 ID        u32 RO  kPtMagic ("TSPT")      0x04 VERSION  u32 RO  1
//   0x08 CAPACITY  u32 RO  sectors of the disk behind the device
//   0x10 COMMAND   u32 RW  kPtCmd*                0x14 LENGTH   u32 RW  bytes, a multiple of 512
//   0x18 SECTOR    u64 RW  first sector           0x20 DMA_ADDR u64 RW  device address (IOVA)
//   0x28 DOORBELL  u32 RW  write a new value to start the command (the device polls this word)
//   0x2C COMPLETED u32 RO  the DOORBELL value of the last command finished (written last, with
//                          release order, so STATUS/ERROR/data are visible once it matches)
//   0x30 STATUS    u32 RO  0 ok, 1 error          0x34 ERROR    u32 RO  kPtErr* (0 = none)
//   0x38 DONE      u32 RO  commands finished so far
//   0x1000–0x1FFF  the device's buffer (8 sectors) for READ_BUF / WRITE_BUF
// The data behind it: a BlockBackend (platform/block.hpp); by default a built-in disk of
// kPtBuiltinSectors whose byte i of sector s is (s * 31 + i) & 0xFF (pattern_byte).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "platform/block.hpp"
#include "platform/bus.hpp"
#include "platform/guest_ram.hpp"
#include "trace/event.hpp"

namespace trapscope::platform {

// Above the largest guest RAM `--mem` allows (3584 MiB ends at 0xE000_0000, where the
// virtio-mmio devices start: platform/virtio_mmio.hpp), below 4 GiB so that a 32-bit guest
// reaches it without paging.
inline constexpr uint64_t kPassthroughBase = 0xE800'0000;
inline constexpr uint64_t kPassthroughBytes = 0x2000;  // register page + buffer page

inline constexpr uint32_t kPtMagic = 0x54505354;  // "TSPT" in memory order
inline constexpr uint32_t kPtRegId = 0x00, kPtRegVersion = 0x04, kPtRegCapacity = 0x08,
                          kPtRegCommand = 0x10, kPtRegLength = 0x14, kPtRegSector = 0x18,
                          kPtRegDmaAddr = 0x20, kPtRegDoorbell = 0x28, kPtRegCompleted = 0x2C,
                          kPtRegStatus = 0x30, kPtRegError = 0x34, kPtRegDone = 0x38;
inline constexpr uint32_t kPtBuffer = 0x1000, kPtBufferBytes = 0x1000;

// COMMAND values.
inline constexpr uint32_t kPtCmdRead = 1;      // disk → guest RAM at DMA_ADDR (DMA)
inline constexpr uint32_t kPtCmdWrite = 2;     // guest RAM at DMA_ADDR → disk (DMA)
inline constexpr uint32_t kPtCmdReadBuf = 3;   // disk → the device's buffer (no DMA)
inline constexpr uint32_t kPtCmdWriteBuf = 4;  // the device's buffer → disk
inline constexpr uint32_t kPtCmdFlush = 5;     // make the disk's writes durable
// ERROR values.
inline constexpr uint32_t kPtErrNone = 0, kPtErrCommand = 1, kPtErrLength = 2, kPtErrRange = 3,
                          kPtErrDma = 4, kPtErrWrite = 5;
// Largest LENGTH of a DMA command (bytes): a guest cannot make the device copy more at once.
inline constexpr uint32_t kPtMaxDma = 64 * 1024;
inline constexpr uint64_t kPtBuiltinSectors = 256;

enum class PassthroughMode : uint8_t { kNone, kMapped, kEmulated };
std::string_view to_string(PassthroughMode mode);  // "none", "mapped", "emulated"
std::optional<PassthroughMode> parse_passthrough_mode(std::string_view text);

// The byte the built-in disk holds at byte `i` of sector `lba`.
constexpr uint8_t pattern_byte(uint64_t lba, uint32_t i) {
  return static_cast<uint8_t>(lba * 31 + i);
}

// The simulator's IOMMU: DMA remapping after Intel VT-d (Intel Virtualization Technology for
// Directed I/O, Architecture Specification, ch. 3 "DMA Remapping"). A device's DMA carries a
// device address (an IOVA); the IOMMU translates it through the table of the domain the device
// is assigned to, page by page, and blocks (and reports, VT-d ch. 7) a request that hits no
// entry or lacks the permission. The VMM fills the table with the VM's own pages (as VFIO's
// VFIO_IOMMU_MAP_DMA does), so a device the guest programs can reach that VM's memory and
// nothing else: not the host's, not another VM's. The table here is a list of mappings
// (IOVA range → guest-physical range, writable or not) at 4 KiB granularity.
class Iommu {
 public:
  static constexpr uint64_t kPage = 4096;
  struct Mapping {
    uint64_t iova;
    uint64_t gpa;
    uint64_t bytes;
    bool writable;
  };
  struct Segment {
    uint64_t gpa;
    uint64_t bytes;
  };
  // Adds [iova, iova + bytes) → [gpa, …); all three 4 KiB aligned, bytes > 0, no overlap with a
  // mapping already there. Throws std::invalid_argument otherwise (a VMM bug, not the guest's).
  void map(uint64_t iova, uint64_t gpa, uint64_t bytes, bool writable);
  // Removes the pages [iova, iova + bytes) from whatever maps them (splitting mappings).
  void unmap(uint64_t iova, uint64_t bytes);
  // The guest-physical pieces of a DMA of `bytes` at `iova` (a write to memory if `write`), or
  // nullopt if any byte of it is unmapped or read-only for a write: the whole DMA is blocked.
  std::optional<std::vector<Segment>> translate(uint64_t iova, uint64_t bytes, bool write) const;
  const std::vector<Mapping>& mappings() const { return maps_; }
  uint64_t faults = 0;  // DMAs blocked

 private:
  const Mapping* find(uint64_t iova) const;
  std::vector<Mapping> maps_;
};

class PassthroughDevice {
 public:
  // disk: the data behind the device (null: the built-in pattern disk). ram: where DMA lands.
  // iommu: translate DMA through this table (the simulator); null: device address = GPA, checked
  // only against RAM's bounds (the KVM engine, docs/passthrough.md "On KVM"). Throws
  // std::system_error if the shared memory object cannot be made.
  PassthroughDevice(PassthroughMode mode, std::shared_ptr<BlockBackend> disk, GuestRam* ram,
                    std::unique_ptr<Iommu> iommu);
  ~PassthroughDevice();  // stops the thread
  PassthroughDevice(const PassthroughDevice&) = delete;
  PassthroughDevice& operator=(const PassthroughDevice&) = delete;

  PassthroughMode mode() const { return mode_; }
  bool mapped() const { return mode_ == PassthroughMode::kMapped; }
  // The window's host memory (page aligned; a MAP_SHARED mapping of a memfd: another process
  // could map the same object through fd()).
  std::span<uint8_t> window() { return {window_, kPassthroughBytes}; }
  int fd() const { return fd_; }
  bool contains(uint64_t gpa, uint64_t len) const {
    return gpa >= kPassthroughBase && len <= kPassthroughBytes &&
           gpa - kPassthroughBase <= kPassthroughBytes - len;
  }

  // Looks at the doorbell once; runs the command if it changed. True if it ran one. Called by
  // the device thread (KVM, mapped), by the simulator after a guest write to the window
  // (mapped), or by the MMIO doorbell write (emulated). Never throws for anything the guest wrote.
  bool service();

  // KVM, mapped: a host thread polls the doorbell (bounded back-off: spins, then sleeps 50 µs)
  // until stop_thread(), which joins it. Idempotent; the destructor stops it too.
  void start_thread();
  void stop_thread();
  bool thread_running() const { return thread_.joinable(); }

  // The events the device raised since the last call (device kind passthrough/iommu), moved out.
  // Thread-safe: the device thread adds, the vCPU thread takes (platform/handle_exit.cpp).
  std::vector<trace::DeviceEvent> take_events();

  // The MMIO face for emulated mode (Devices::mmio at kPassthroughBase).
  MmioDevice& mmio() { return mmio_; }

  Iommu* iommu() { return iommu_.get(); }
  BlockBackend& disk() { return *disk_; }
  uint64_t commands() const { return commands_.load(std::memory_order_relaxed); }
  uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }
  uint64_t dma_bytes() const { return dma_bytes_.load(std::memory_order_relaxed); }

 private:
  class Mmio final : public MmioDevice {
   public:
    explicit Mmio(PassthroughDevice& d) : d_(d) {}
    std::string_view name() const override { return "passthrough"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

   private:
    PassthroughDevice& d_;
  };

  uint32_t load32(uint32_t offset, std::memory_order order = std::memory_order_relaxed) const;
  uint64_t load64(uint32_t offset) const;
  void store32(uint32_t offset, uint32_t value,
               std::memory_order order = std::memory_order_relaxed);
  uint32_t execute(uint32_t command, uint32_t length, uint64_t sector, uint64_t dma_addr);
  bool dma(uint64_t iova, std::span<uint8_t> bytes, bool to_memory);
  void raise(trace::DeviceEvent e);
  void poll_loop();

  PassthroughMode mode_;
  std::shared_ptr<BlockBackend> disk_;
  GuestRam* ram_;
  std::unique_ptr<Iommu> iommu_;
  int fd_ = -1;
  uint8_t* window_ = nullptr;
  Mmio mmio_{*this};
  uint32_t last_doorbell_ = 0;  // only the servicing thread touches it
  std::vector<uint8_t> scratch_;
  std::mutex events_mutex_;
  std::vector<trace::DeviceEvent> events_;
  std::atomic<uint64_t> commands_{0}, errors_{0}, dma_bytes_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Why a VM with this device cannot be snapshotted or migrated (Devices::snapshot_blocker).
std::string passthrough_snapshot_blocker(PassthroughMode mode);

}  // namespace trapscope::platform
