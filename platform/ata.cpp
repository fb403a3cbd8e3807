#include "platform/ata.hpp"

#include <algorithm>
#include <cstring>

#include "platform/devices.hpp"

namespace trapscope::platform {
namespace ata {
namespace {

// An ATA string (ATA8-ACS "ATA string convention"): padded with spaces, two characters per
// word, the first in the high byte.
void put_string(std::array<uint16_t, 256>& w, size_t first, size_t words, const std::string& s) {
  for (size_t i = 0; i < words; ++i) {
    const auto ch = [&](size_t k) -> uint16_t {
      return k < s.size() ? static_cast<uint8_t>(s[k]) : ' ';
    };
    w[first + i] = static_cast<uint16_t>(ch(2 * i) << 8 | ch(2 * i + 1));
  }
}

}  // namespace

std::array<uint16_t, 256> identify_words(uint64_t sectors, unsigned unit) {
  std::array<uint16_t, 256> w{};
  const uint32_t lba28 = static_cast<uint32_t>(std::min<uint64_t>(sectors, 0x0FFFFFFF));
  // Obsolete CHS geometry (words 1, 3, 6, 54–58) for drivers that still read it: 16 heads,
  // 63 sectors per track, as many cylinders as fit (at most 16383).
  const uint16_t cylinders =
      static_cast<uint16_t>(std::clamp<uint64_t>(sectors / (16 * 63), 1, 16383));
  w[0] = 0x0040;  // bit 15 = 0: an ATA device; bit 6: not removable (obsolete, set by disks)
  w[1] = cylinders;
  w[3] = 16;
  w[6] = 63;
  put_string(w, 10, 10, "TS-ATA-" + std::to_string(unit));  // serial number
  put_string(w, 23, 4, kFirmware);                          // firmware revision
  put_string(w, 27, 20, kModel);                            // model number
  w[47] = 0x8000;  // bits 15:8 = 80h; 0 sectors per DRQ: READ/WRITE MULTIPLE not supported
  w[49] = 0x0200;  // LBA supported (DMA not)
  w[50] = 0x4000;  // bit 14 shall be one
  w[53] = 0x0002;  // words 64–70 valid
  w[54] = cylinders;
  w[55] = 16;
  w[56] = 63;
  const uint32_t chs = uint32_t{cylinders} * 16 * 63;
  w[57] = static_cast<uint16_t>(chs);
  w[58] = static_cast<uint16_t>(chs >> 16);
  w[60] = static_cast<uint16_t>(lba28);  // total user-addressable sectors (LBA28), low word
  w[61] = static_cast<uint16_t>(lba28 >> 16);
  w[64] = 0x0003;                        // PIO modes 3 and 4
  w[65] = w[66] = w[67] = w[68] = 120;   // cycle times, ns
  w[80] = 0x01F0;  // major version: ATA/ATAPI-4 to ATA8-ACS
  w[82] = 0x0000;  // no optional feature sets (no SMART, security, write cache control, NOP)
  w[83] = 0x5000;  // bit 14 one; bit 12: FLUSH CACHE supported (no LBA48, no FLUSH CACHE EXT)
  w[84] = 0x4000;  // bit 14 one
  w[85] = 0x0000;
  w[86] = 0x1000;  // FLUSH CACHE supported (enabled copy of word 83)
  w[87] = 0x4000;  // bit 14 one
  // Word 255: signature A5h and a checksum byte making the 512 bytes sum to 0 (mod 256).
  uint8_t sum = 0xA5;
  for (size_t i = 0; i < 255; ++i) sum = static_cast<uint8_t>(sum + (w[i] & 0xFF) + (w[i] >> 8));
  w[255] = static_cast<uint16_t>(static_cast<uint8_t>(-sum) << 8 | 0xA5);
  return w;
}

}  // namespace ata

using trace::DeviceAction;

AtaController::AtaController(Devices& devices) : devices_(devices) {
  for (size_t i = 0; i < drive_.size() && i < devices.disks.size(); ++i) {
    drive_[i].disk = devices.disks[i];
  }
  reset();
}

void AtaController::emit(DeviceAction action, uint32_t command, uint64_t address, uint32_t count,
                         uint32_t bytes, uint64_t value) {
  trace::DeviceEvent e{};
  e.device = trace::DeviceKind::kAta;
  e.unit = static_cast<uint8_t>(selected_);
  e.action = action;
  e.status = drive_[selected_].tf.status;
  e.command = command;
  e.address = address;
  e.count = count;
  e.bytes = bytes;
  e.value = value;
  devices_.emit(e);
}

// [SECTION] Software reset and the signature (ATA/ATAPI-6 clause 9: after a reset each device
// places the signature in its registers; for an ATA device: count 1, LBA 01h/00h/00h).
void AtaController::reset() {
  for (Drive& d : drive_) {
    d.tf = {};
    d.tf.count = 1;
    d.tf.lba_low = 1;
    d.tf.error = 0x01;  // diagnostic code: no error
    d.tf.status = d.disk ? static_cast<uint8_t>(ata::kDrdy | ata::kDsc) : 0;
    d.remaining = 0;
    d.pos = 0;
  }
  selected_ = 0;
}

// [SECTION] Registers.
uint8_t AtaController::read_register(uint16_t offset) {
  if (srst_) return ata::kBsy;  // while BSY, every command-block register reads as Status
  if (!present()) return 0;     // device 0 answers for an absent device 1 with 00h
  const TaskFile& tf = cur().tf;
  switch (offset) {
    case 1: return tf.error;
    case 2: return tf.count;
    case 3: return tf.lba_low;
    case 4: return tf.lba_mid;
    case 5: return tf.lba_high;
    case 6: return tf.device;
    case 7: note_status(); return tf.status;
    default: return 0;
  }
}

void AtaController::note_status() {
  const uint8_t s = cur().tf.status;
  if (s == last_status_seen_) return;
  last_status_seen_ = s;
  emit(DeviceAction::kRegisterRead, 7, 0, 1, 0, s);
}

void AtaController::write_register(uint16_t offset, uint8_t v) {
  if (srst_) return;
  // Both devices latch the command-block registers; only the selected one executes a command.
  for (Drive& d : drive_) {
    switch (offset) {
      case 1: d.tf.features = v; break;
      case 2: d.tf.count = v; break;
      case 3: d.tf.lba_low = v; break;
      case 4: d.tf.lba_mid = v; break;
      case 5: d.tf.lba_high = v; break;
      case 6: d.tf.device = v; break;
      default: break;
    }
  }
  if (offset == 6) {
    selected_ = (v >> 4) & 1;
    last_status_seen_ = -1;
  }
  if (offset == 7 && present()) execute(v);
}

// The second word of a 4-byte access belongs to the access the data event already counted
// (unless the first word ended a sector: then it opens the next sector's count).
template <typename Drive>
void same_access(Drive& d) {
  if (d.accesses > 0 && d.pos != 0) --d.accesses;
}

void AtaController::CommandBlock::read(uint16_t offset, std::span<uint8_t> data) {
  std::memset(data.data(), 0, data.size());
  if (offset == 0) {
    // The data port: 2 bytes per word; a 4-byte access moves two words, a 1-byte one a word.
    for (size_t i = 0; i < std::max<size_t>(1, data.size() / 2); ++i) {
      if (i > 0) same_access(c_.cur());
      const uint16_t w = c_.data_read();
      data[2 * i] = static_cast<uint8_t>(w);
      if (2 * i + 1 < data.size()) data[2 * i + 1] = static_cast<uint8_t>(w >> 8);
    }
    return;
  }
  if (!data.empty()) data[0] = c_.read_register(offset);
}

void AtaController::CommandBlock::write(uint16_t offset, std::span<const uint8_t> data) {
  if (data.empty()) return;
  if (offset == 0) {
    for (size_t i = 0; i < std::max<size_t>(1, data.size() / 2); ++i) {
      const uint8_t hi = 2 * i + 1 < data.size() ? data[2 * i + 1] : 0;
      if (i > 0) same_access(c_.cur());
      c_.data_write(static_cast<uint16_t>(data[2 * i] | hi << 8));
    }
    return;
  }
  c_.write_register(offset, data[0]);
}

// Alternate Status: the Status register without its side effects (no event either).
void AtaController::ControlBlock::read(uint16_t, std::span<uint8_t> data) {
  std::memset(data.data(), 0, data.size());
  if (data.empty()) return;
  data[0] = c_.srst_ ? ata::kBsy : c_.present() ? c_.cur().tf.status : 0;
}

// Device Control: SRST (bit 2) resets both devices when it goes from one to zero; nIEN (bit 1)
// is accepted and has no effect (no interrupts).
void AtaController::ControlBlock::write(uint16_t, std::span<const uint8_t> data) {
  if (data.empty()) return;
  const bool srst = data[0] & 0x04;
  for (Drive& d : c_.drive_) d.tf.control = data[0];
  if (c_.srst_ && !srst) c_.reset();
  c_.srst_ = srst;
  c_.last_status_seen_ = -1;
}

// [SECTION] The data port (PIO data-in / data-out protocols).

uint16_t AtaController::data_read() {
  Drive& d = cur();
  if (srst_ || !present() || !(d.tf.status & ata::kDrq) || d.writing) return 0;
  const uint16_t w = static_cast<uint16_t>(d.buffer[d.pos] | d.buffer[d.pos + 1] << 8);
  d.pos += 2;
  ++d.accesses;
  if (d.pos == kSectorBytes) sector_moved();
  return w;
}

void AtaController::data_write(uint16_t w) {
  Drive& d = cur();
  if (srst_ || !present() || !(d.tf.status & ata::kDrq) || !d.writing) return;
  d.buffer[d.pos] = static_cast<uint8_t>(w);
  d.buffer[d.pos + 1] = static_cast<uint8_t>(w >> 8);
  d.pos += 2;
  ++d.accesses;
  if (d.pos == kSectorBytes) sector_moved();
}

void AtaController::sector_moved() {
  Drive& d = cur();
  if (d.writing) {
    const BlockStatus s = d.disk->write(d.lba, d.buffer);
    if (s != BlockStatus::kOk) {
      fail(s == BlockStatus::kOutOfRange ? ata::kIdnf : ata::kAbrt);
      return;
    }
  }
  emit(DeviceAction::kData, d.command, d.lba, d.accesses, kSectorBytes);
  ++d.done;
  ++d.lba;
  --d.remaining;
  d.pos = 0;
  d.accesses = 0;
  if (d.remaining == 0) {
    complete();
  } else if (!d.writing) {
    load_sector();
  }
}

void AtaController::load_sector() {
  Drive& d = cur();
  const BlockStatus s = d.disk->read(d.lba, d.buffer);
  if (s != BlockStatus::kOk) {
    fail(s == BlockStatus::kOutOfRange ? ata::kIdnf : ata::kUnc);
    return;
  }
  d.pos = 0;
  d.tf.status = ata::kDrdy | ata::kDsc | ata::kDrq;
}

// [SECTION] Commands.
void AtaController::complete() {
  Drive& d = cur();
  d.tf.status = ata::kDrdy | ata::kDsc;
  d.tf.error = 0;
  d.remaining = 0;
  emit(DeviceAction::kComplete, d.command, 0, d.done);
}

void AtaController::fail(uint8_t error) {
  Drive& d = cur();
  d.tf.status = ata::kDrdy | ata::kDsc | ata::kErr;
  d.tf.error = error;
  d.remaining = 0;
  d.pos = 0;
  emit(DeviceAction::kError, d.command, d.lba, d.done, 0, error);
}

void AtaController::start_transfer(bool writing) {
  Drive& d = cur();
  const TaskFile& tf = d.tf;
  const uint32_t count = tf.count == 0 ? 256 : tf.count;
  d.writing = writing;
  d.done = 0;
  d.lba = uint64_t{tf.device & 0x0Fu} << 24 | uint64_t{tf.lba_high} << 16 |
          uint64_t{tf.lba_mid} << 8 | tf.lba_low;
  emit(DeviceAction::kCommand, d.command, d.lba, count);
  if (!(tf.device & 0x40)) {  // CHS addressing is not supported: LBA only
    fail(ata::kAbrt);
    return;
  }
  if (d.lba > d.disk->sectors() || count > d.disk->sectors() - d.lba) {
    fail(ata::kIdnf);
    return;
  }
  if (writing && d.disk->read_only()) {
    fail(ata::kAbrt);
    return;
  }
  d.remaining = count;
  d.pos = 0;
  d.accesses = 0;
  if (writing) {
    d.tf.status = ata::kDrdy | ata::kDsc | ata::kDrq;
  } else {
    load_sector();
  }
}

void AtaController::execute(uint8_t command) {
  Drive& d = cur();
  d.command = command;
  d.remaining = 0;
  d.pos = 0;
  d.accesses = 0;
  d.tf.error = 0;
  last_status_seen_ = -1;
  switch (command) {
    case ata::kIdentify: {
      emit(DeviceAction::kCommand, command, 0, 1);
      const auto words = ata::identify_words(d.disk->sectors(), selected_);
      for (size_t i = 0; i < words.size(); ++i) {
        d.buffer[2 * i] = static_cast<uint8_t>(words[i]);
        d.buffer[2 * i + 1] = static_cast<uint8_t>(words[i] >> 8);
      }
      d.writing = false;
      d.done = 0;
      d.lba = 0;
      d.remaining = 1;
      d.tf.status = ata::kDrdy | ata::kDsc | ata::kDrq;
      return;
    }
    case ata::kReadSectors:
    case ata::kReadSectorsNoRetry: start_transfer(false); return;
    case ata::kWriteSectors:
    case ata::kWriteSectorsNoRetry: start_transfer(true); return;
    case ata::kFlushCache: {
      emit(DeviceAction::kCommand, command, 0, 0);
      d.done = 0;
      const BlockStatus s = d.disk->flush();
      if (s != BlockStatus::kOk) {
        fail(ata::kAbrt);
        return;
      }
      emit(DeviceAction::kFlush, command);
      complete();
      return;
    }
    case ata::kIdentifyPacket:
      // Not a packet device: aborted, with the ATA signature in the LBA registers.
      d.tf.lba_mid = 0;
      d.tf.lba_high = 0;
      [[fallthrough]];
    default:
      emit(DeviceAction::kCommand, command, 0, 0);
      d.done = 0;
      d.lba = 0;
      fail(ata::kAbrt);
      return;
  }
}

}  // namespace trapscope::platform
