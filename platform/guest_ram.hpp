// platform/guest_ram.hpp — guest-physical RAM as a device sees it for DMA (direct memory access:
// a device that reads a request from, or writes data into, guest memory without the CPU, as a
// virtqueue or a bus-mastering controller does). Each engine implements it over its own RAM
// (the KVM backend over the memory slot, the simulator over its PhysicalMemory, noting writes to
// pages that hold translated code), so a device model is written once.
//
// Every access is bounds-checked here: a guest-chosen address or length that leaves RAM is
// refused as a whole (nothing read or written), never clipped — the device then reports the
// error to the guest in its own way (virtio: VIRTIO_BLK_S_IOERR / DEVICE_NEEDS_RESET).
#pragma once

#include <cstdint>
#include <cstring>
#include <span>

namespace trapscope::platform {

class GuestRam {
 public:
  virtual ~GuestRam() = default;
  virtual uint64_t size() const = 0;  // bytes of RAM at GPA 0
  // True and copies if [gpa, gpa + out.size()) lies inside RAM; false and nothing copied if not.
  virtual bool read(uint64_t gpa, std::span<uint8_t> out) const = 0;
  // True and copies if [gpa, gpa + in.size()) lies inside RAM; false and nothing written if not.
  virtual bool write(uint64_t gpa, std::span<const uint8_t> in) = 0;

  bool contains(uint64_t gpa, uint64_t len) const { return gpa <= size() && len <= size() - gpa; }
};

// GuestRam over one host span (tests; the KVM backend). `on_write` (may be null) is told of
// every successful write, after the copy.
class SpanRam final : public GuestRam {
 public:
  using WriteHook = void (*)(void* context, uint64_t gpa, uint64_t len);
  explicit SpanRam(std::span<uint8_t> bytes, WriteHook on_write = nullptr,
                   void* context = nullptr)
      : bytes_(bytes), on_write_(on_write), context_(context) {}
  uint64_t size() const override { return bytes_.size(); }
  bool read(uint64_t gpa, std::span<uint8_t> out) const override {
    if (!contains(gpa, out.size())) return false;
    if (!out.empty()) std::memcpy(out.data(), bytes_.data() + gpa, out.size());
    return true;
  }
  bool write(uint64_t gpa, std::span<const uint8_t> in) override {
    if (!contains(gpa, in.size())) return false;
    if (in.empty()) return true;
    std::memcpy(bytes_.data() + gpa, in.data(), in.size());
    if (on_write_ != nullptr) on_write_(context_, gpa, in.size());
    return true;
  }

 private:
  std::span<uint8_t> bytes_;
  WriteHook on_write_;
  void* context_;
};

}  // namespace trapscope::platform
