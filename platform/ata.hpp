// platform/ata.hpp — the emulated ATA (IDE) controller, PIO only, on the legacy primary bus: what
// a guest driver written from the specifications finds there (docs/disks.md "The ATA
// controller"). Every register access is a port-I/O VM exit.
//
// Sources (docs/references.md "Devices"): the ATA/ATAPI Command Set (ATA8-ACS, T13/1699-D) for
// the commands — IDENTIFY DEVICE (ECh) and its data words, READ SECTORS (20h), WRITE SECTORS
// (30h), FLUSH CACHE (E7h), and the Status/Error bits each command's "Normal/Error outputs"
// name; ATA/ATAPI-6 (T13/1410D) for the parallel register interface this controller models:
// clause 7 (the Command and Control block registers, the Device register's DEV and LBA bits,
// the Device Control register's SRST and nIEN), clause 9 (the PIO data-in, PIO data-out and
// non-data protocols, software reset, and device 0 answering for an absent device 1); the
// OSDev wiki "ATA PIO Mode" for how drivers poll.
//
// Registers (primary bus):
//   0x1F0 Data (16-bit; a 32-bit access moves two words, an 8-bit one a whole word of which the
//         low byte is seen)      0x1F1 Error (read) / Features (write, ignored)
//   0x1F2 Sector Count (0 = 256) 0x1F3–0x1F5 LBA bits 7:0, 15:8, 23:16
//   0x1F6 Device: bit 4 DEV (drive 0/1), bit 6 LBA, bits 3:0 LBA 27:24
//   0x1F7 Status (read) / Command (write)
//   0x3F6 Alternate Status (read: Status without side effects) / Device Control (write: bit 2
//         SRST software reset, bit 1 nIEN — accepted and ignored: this controller raises no
//         interrupts, a driver polls Status)
// Behaviour a driver can rely on:
//   - A command completes inside the VM exit that wrote it: BSY is never seen set except while
//     SRST is held. Status after a data command: DRDY|DSC|DRQ (0x58) while a sector is waiting
//     for the data port, then DRDY|DSC (0x50) after the last word; on error DRDY|DSC|ERR (0x51).
//   - READ/WRITE SECTORS move Sector Count sectors (0 = 256) from LBA (LBA28; the LBA bit must
//     be set — CHS addressing is aborted), DRQ per sector: each 256 data words (in any mix of
//     `in ax`/`rep insw`/`in eax`) finish a sector; a write reaches the disk when its sector is
//     complete. A sector range past the end of the disk: IDNF (error 0x10), nothing moved. A
//     write to a read-only disk: ABRT (error 0x04), nothing moved. A host I/O error: UNC on
//     reads, ABRT on writes. FLUSH CACHE makes every write durable (BlockBackend::flush).
//   - Any other command: ERR with ABRT. IDENTIFY PACKET DEVICE is aborted with the ATA
//     signature in the LBA registers (a non-packet device).
//   - Drive 1 absent (one --disk): while DEV selects it, every register reads 0x00 (ATA/ATAPI-6:
//     device 0 answers for an absent device 1 with Status 00h) and commands are ignored. No disk
//     at all: the controller is not on the bus, its ports read 0xFF (a floating bus).
//   - After SRST (and at power-on) each drive has the ATA signature: Sector Count 1, LBA 1/0/0,
//     Error 0x01 (diagnostics passed), Device 0.
// Events (trace/device_event.hpp; a few per command, none per word): command, data (one per
// sector), complete or error, flush; and a register_read of Status when the value a driver
// sees changes (so a polling loop adds one event, not one per poll).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "platform/block.hpp"
#include "platform/bus.hpp"
#include "trace/event.hpp"

namespace trapscope::platform {

struct Devices;

inline constexpr uint16_t kAtaCommandBase = 0x1F0;  // 8 ports
inline constexpr uint16_t kAtaControlPort = 0x3F6;

namespace ata {
// Status register bits.
inline constexpr uint8_t kBsy = 0x80, kDrdy = 0x40, kDf = 0x20, kDsc = 0x10, kDrq = 0x08,
                         kErr = 0x01;
// Error register bits.
inline constexpr uint8_t kAbrt = 0x04, kIdnf = 0x10, kUnc = 0x40;
// Command opcodes.
inline constexpr uint8_t kReadSectors = 0x20, kReadSectorsNoRetry = 0x21, kWriteSectors = 0x30,
                         kWriteSectorsNoRetry = 0x31, kIdentifyPacket = 0xA1, kFlushCache = 0xE7,
                         kIdentify = 0xEC;
// The strings IDENTIFY DEVICE reports (words 10–19, 23–26, 27–46).
inline constexpr const char* kModel = "trapscope ATA disk";
inline constexpr const char* kFirmware = "1.0";
// The 256 IDENTIFY DEVICE words for a disk of `sectors` sectors (unit: 0 or 1, in the serial).
std::array<uint16_t, 256> identify_words(uint64_t sectors, unsigned unit);
}  // namespace ata

class AtaController final {
 public:
  // The drives are Devices::disks[0] and [1] (if given); events go to devices.emit.
  explicit AtaController(Devices& devices);
  AtaController(const AtaController&) = delete;
  AtaController& operator=(const AtaController&) = delete;

  // The two port ranges (command block and control block), for Devices::pio.
  PioDevice& command_block() { return command_; }
  PioDevice& control_block() { return control_; }

  // Register state for tests and a future Devices panel.
  struct TaskFile {
    uint8_t error = 0, features = 0, count = 0, lba_low = 0, lba_mid = 0, lba_high = 0,
            device = 0, status = 0, control = 0;
  };
  TaskFile task_file(unsigned unit) const { return drive_[unit & 1].tf; }
  unsigned selected() const { return selected_; }

 private:
  struct Drive {
    std::shared_ptr<BlockBackend> disk;  // null: absent
    TaskFile tf;
    uint8_t command = 0;          // the command in progress (for events)
    uint64_t lba = 0;             // the sector the buffer holds or will hold
    uint32_t remaining = 0;       // sectors still to move, this one included
    uint32_t done = 0;            // sectors moved by this command
    bool writing = false;
    std::array<uint8_t, kSectorBytes> buffer{};
    size_t pos = 0;               // bytes of `buffer` moved through the data port
    uint32_t accesses = 0;        // data-port accesses for this sector (the data event)
  };
  class CommandBlock final : public PioDevice {
   public:
    explicit CommandBlock(AtaController& c) : c_(c) {}
    std::string_view name() const override { return "ata-primary"; }
    void read(uint16_t offset, std::span<uint8_t> data) override;
    void write(uint16_t offset, std::span<const uint8_t> data) override;

   private:
    AtaController& c_;
  };
  class ControlBlock final : public PioDevice {
   public:
    explicit ControlBlock(AtaController& c) : c_(c) {}
    std::string_view name() const override { return "ata-primary-control"; }
    void read(uint16_t offset, std::span<uint8_t> data) override;
    void write(uint16_t offset, std::span<const uint8_t> data) override;

   private:
    AtaController& c_;
  };

  Drive& cur() { return drive_[selected_]; }
  bool present() const { return drive_[selected_].disk != nullptr; }
  uint8_t read_register(uint16_t offset);
  void write_register(uint16_t offset, uint8_t value);
  uint16_t data_read();
  void data_write(uint16_t word);
  void execute(uint8_t command);
  void start_transfer(bool writing);
  void load_sector();     // read: fetch the next sector into the buffer
  void sector_moved();    // the data port moved a whole sector
  void complete();
  void fail(uint8_t error);
  void reset();
  void note_status();     // a register_read event when the Status a driver sees changed
  void emit(trace::DeviceAction action, uint32_t command, uint64_t address = 0, uint32_t count = 0,
            uint32_t bytes = 0, uint64_t value = 0);

  Devices& devices_;
  CommandBlock command_{*this};
  ControlBlock control_{*this};
  std::array<Drive, 2> drive_;
  unsigned selected_ = 0;
  bool srst_ = false;
  int last_status_seen_ = -1;
};

}  // namespace trapscope::platform
