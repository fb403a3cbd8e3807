#include "platform/virtio_blk.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "platform/devices.hpp"

namespace trapscope::platform {

namespace {
constexpr uint32_t kHeaderBytes = 16;
constexpr uint32_t kChunkSectors = 64;  // bytes move through a 32 KiB host buffer

uint64_t le(const uint8_t* p, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = n; i-- > 0;) v = v << 8 | p[i];
  return v;
}
}  // namespace

VirtioBlk::VirtioBlk(Devices& devices, uint8_t unit, std::shared_ptr<BlockBackend> disk)
    : VirtioMmio(devices, trace::DeviceKind::kVirtioBlk, unit),
      disk_(std::move(disk)),
      name_("virtio-blk" + std::to_string(unit)),
      unit_(unit) {}

std::string VirtioBlk::id() const {
  std::string s = "trapscope-vblk" + std::to_string(unit_);
  s.resize(kVirtioBlkIdBytes, '\0');
  return s;
}

uint64_t VirtioBlk::device_features() const {
  return kVirtioFVersion1 | kVirtioBlkFFlush | (disk_->read_only() ? kVirtioBlkFRo : 0);
}

void VirtioBlk::read_config(uint64_t offset, std::span<uint8_t> data) {
  const uint64_t capacity = disk_->sectors();
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t at = offset + i;
    data[i] = at < 8 ? static_cast<uint8_t>(capacity >> (8 * at)) : 0;
  }
}

void VirtioBlk::process_queue(uint32_t q) {
  Virtqueue& v = vq(q);
  uint16_t n = 0;
  const VirtqError e = v.pending(ram(), &n);
  if (e != VirtqError::kNone) {
    needs_reset(e);
    return;
  }
  const uint16_t used_before = v.used_idx;
  for (uint16_t i = 0; i < n; ++i) {
    uint16_t head;
    const VirtqError pe = v.pop(ram(), &head);
    if (pe != VirtqError::kNone) {
      needs_reset(pe);
      break;
    }
    if (!serve(v, head)) break;
  }
  if (v.used_idx != used_before) used_buffers(q);
}

bool VirtioBlk::serve(Virtqueue& v, uint16_t head) {
  ++blk_.requests;
  VirtqChain c;
  const VirtqError walk = walk_chain(ram(), v.layout, head, v.layout.size, &c);
  if (walk != VirtqError::kNone && walk != VirtqError::kBufferOutsideRam) {
    needs_reset(walk);
    return false;
  }
  if (c.writable_bytes == 0) {
    needs_reset(VirtqError::kNoStatusByte);
    return false;
  }
  uint8_t header[kHeaderBytes] = {};
  const bool have_header = chain_read(ram(), c, 0, header);
  const uint32_t type = have_header ? static_cast<uint32_t>(le(header, 4)) : 0;
  const uint64_t sector = have_header ? le(header + 8, 8) : 0;
  uint64_t data_bytes = 0;
  if (type == kVirtioBlkTOut) data_bytes = c.readable_bytes - std::min<uint64_t>(c.readable_bytes, kHeaderBytes);
  if (type == kVirtioBlkTIn) data_bytes = c.writable_bytes - 1;

  uint32_t written = 0;
  uint8_t status = kVirtioBlkSIoErr;
  VirtqError reason = VirtqError::kNone;
  if (walk == VirtqError::kBufferOutsideRam) {
    reason = walk;
  } else if (have_header) {
    status = do_request(c, type, sector, data_bytes, &written);
  }
  const uint8_t sb[1] = {status};
  if (!chain_write(ram(), c, c.writable_bytes - 1, sb)) {
    needs_reset(VirtqError::kNoStatusByte);
    return false;
  }
  ++written;

  trace::DeviceEvent ev{};
  ev.action = trace::DeviceAction::kChain;
  ev.status = status;
  ev.command = type;
  ev.address = sector;
  ev.count = static_cast<uint32_t>(c.buffers.size());
  ev.bytes = static_cast<uint32_t>(std::min<uint64_t>(data_bytes, UINT32_MAX));
  ev.value = head;
  emit(ev, true);
  if (status != kVirtioBlkSOk) {
    ++(status == kVirtioBlkSUnsupp ? blk_.unsupp : blk_.ioerr);
    trace::DeviceEvent er{};
    er.action = trace::DeviceAction::kError;
    er.command = type;
    er.address = sector;
    er.value = static_cast<uint64_t>(reason);
    emit(er);
  }
  if (!v.push_used(ram(), head, written)) {
    needs_reset(VirtqError::kRingOutsideRam);
    return false;
  }
  return true;
}

uint8_t VirtioBlk::do_request(const VirtqChain& c, uint32_t type, uint64_t sector,
                              uint64_t data_bytes, uint32_t* written) {
  switch (type) {
    case kVirtioBlkTIn:
    case kVirtioBlkTOut: {
      const bool out = type == kVirtioBlkTOut;
      if (out && disk_->read_only()) return kVirtioBlkSIoErr;
      const uint64_t n = data_bytes / kSectorBytes;
      if (data_bytes % kSectorBytes != 0 || data_bytes > kVirtioBlkMaxRequestBytes ||
          sector > disk_->sectors() ||
          n > disk_->sectors() - sector) {
        return kVirtioBlkSIoErr;
      }
      std::vector<uint8_t> buf(std::min<uint64_t>(n, kChunkSectors) * kSectorBytes);
      for (uint64_t done = 0; done < n;) {
        const uint64_t k = std::min<uint64_t>(n - done, kChunkSectors);
        const std::span<uint8_t> chunk(buf.data(), k * kSectorBytes);
        const uint64_t at = done * kSectorBytes;
        if (out) {
          if (!chain_read(ram(), c, kHeaderBytes + at, chunk)) return kVirtioBlkSIoErr;
          if (disk_->write(sector + done, chunk) != BlockStatus::kOk) return kVirtioBlkSIoErr;
          blk_.sectors_written += k;
        } else {
          if (disk_->read(sector + done, chunk) != BlockStatus::kOk) return kVirtioBlkSIoErr;
          if (!chain_write(ram(), c, at, chunk)) return kVirtioBlkSIoErr;
          *written += static_cast<uint32_t>(chunk.size());
          blk_.sectors_read += k;
        }
        done += k;
      }
      return kVirtioBlkSOk;
    }
    case kVirtioBlkTFlush: {
      const BlockStatus s = disk_->flush();
      ++blk_.flushes;
      trace::DeviceEvent f{};
      f.action = trace::DeviceAction::kFlush;
      f.command = type;
      emit(f);
      return s == BlockStatus::kOk ? kVirtioBlkSOk : kVirtioBlkSIoErr;
    }
    case kVirtioBlkTGetId: {
      if (c.writable_bytes - 1 < kVirtioBlkIdBytes) return kVirtioBlkSIoErr;
      const std::string s = id();
      if (!chain_write(ram(), c, 0, {reinterpret_cast<const uint8_t*>(s.data()), s.size()})) {
        return kVirtioBlkSIoErr;
      }
      *written = kVirtioBlkIdBytes;
      return kVirtioBlkSOk;
    }
    default:
      return kVirtioBlkSUnsupp;
  }
}

}  // namespace trapscope::platform
