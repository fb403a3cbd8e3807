// platform/block.hpp — a virtual disk as the device models see it: an array of 512-byte sectors
// that can be read, written and flushed. The disk controllers (the emulated ATA controller, the
// paravirtual virtio-blk device) are written against this interface; what is behind it (a raw
// image file, a copy-on-write overlay over a base image, memory in tests) is not their concern.
//
// Errors are values, not exceptions: a controller turns them into its own error report to the
// guest (ATA: ERR in the status register, ABRT in the error register; virtio-blk:
// VIRTIO_BLK_S_IOERR), so nothing a guest asks for can make the VMM throw.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace trapscope::platform {

inline constexpr uint32_t kSectorBytes = 512;

enum class BlockStatus : uint8_t {
  kOk,
  kOutOfRange,  // a sector past the end of the disk
  kReadOnly,    // a write to a disk attached read-only
  kIoError,     // the host could not read or write the backing file
};
std::string_view to_string(BlockStatus status);

class BlockBackend {
 public:
  virtual ~BlockBackend() = default;
  virtual std::string_view name() const = 0;  // what the user named (the image's path)
  virtual uint64_t sectors() const = 0;       // the disk's size in 512-byte sectors
  virtual bool read_only() const = 0;
  // Sectors [lba, lba + data.size() / 512); data.size() is a multiple of 512. Nothing is read
  // or written unless the whole range lies on the disk.
  virtual BlockStatus read(uint64_t lba, std::span<uint8_t> data) = 0;
  virtual BlockStatus write(uint64_t lba, std::span<const uint8_t> data) = 0;
  // Makes every write so far durable in the backing store (the guest's FLUSH CACHE /
  // VIRTIO_BLK_T_FLUSH; also done by the VMM at every run end).
  virtual BlockStatus flush() = 0;

 protected:
  bool in_range(uint64_t lba, size_t bytes) const {
    const uint64_t n = bytes / kSectorBytes;
    return bytes % kSectorBytes == 0 && lba <= sectors() && n <= sectors() - lba;
  }
};

// A disk held in memory (tests, fuzzing): `sectors` zero sectors.
class MemoryBlock final : public BlockBackend {
 public:
  explicit MemoryBlock(uint64_t sectors, bool read_only = false)
      : bytes_(sectors * kSectorBytes), read_only_(read_only) {}
  std::string_view name() const override { return "memory"; }
  uint64_t sectors() const override { return bytes_.size() / kSectorBytes; }
  bool read_only() const override { return read_only_; }
  BlockStatus read(uint64_t lba, std::span<uint8_t> data) override {
    if (!in_range(lba, data.size())) return BlockStatus::kOutOfRange;
    if (!data.empty()) std::memcpy(data.data(), bytes_.data() + lba * kSectorBytes, data.size());
    return BlockStatus::kOk;
  }
  BlockStatus write(uint64_t lba, std::span<const uint8_t> data) override {
    if (read_only_) return BlockStatus::kReadOnly;
    if (!in_range(lba, data.size())) return BlockStatus::kOutOfRange;
    if (!data.empty()) std::memcpy(bytes_.data() + lba * kSectorBytes, data.data(), data.size());
    ++writes;
    return BlockStatus::kOk;
  }
  BlockStatus flush() override {
    ++flushes;
    return BlockStatus::kOk;
  }
  std::vector<uint8_t>& bytes() { return bytes_; }
  uint64_t writes = 0, flushes = 0;

 private:
  std::vector<uint8_t> bytes_;
  bool read_only_;
};

// How the user attached a disk: `--disk PATH[,readonly][,overlay=FILE]` (cli/options.hpp).
struct DiskSpec {
  std::string path;
  bool read_only = false;
  std::string overlay;  // empty: writes go to `path` itself
};

}  // namespace trapscope::platform
