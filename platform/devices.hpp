// platform/devices.hpp — the guest-visible devices, shared by the KVM backend and the simulator.
// No KVM types here: a device sees read/write(offset, bytes) from a port-I/O bus (after
// Firecracker's vstate/bus.rs), so either backend and any test can drive it.
//
// Port map (the guest contract, guests/include/trapscope.inc):
//   0x0E9         debug console: out writes one byte of console output; in returns 0xE9
//                 (the Bochs/QEMU "port E9 hack" convention, so a guest can detect it)
//   0x3F8–0x3FF   COM1, a minimal 16550 UART (National Semiconductor PC16550D data sheet):
//                 THR output, LSR always "transmitter empty" (0x60), DLAB/divisor latch, IER,
//                 LCR, MCR, SCR stored; no receive data, no interrupts
//   0x0F4         trapscope control port: out of a value V (1, 2 or 4 bytes) ends the run with
//                 guest exit code V (0 = test passed, anything else = failed with that code);
//                 in returns 0
//   0x510         hypercall doorbell: `in eax, dx` performs the hypercall in eax (platform/hypercall.hpp)
// Unclaimed ports read as all ones and ignore writes (as an ISA bus with nothing on it).
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "platform/ata.hpp"
#include "platform/block.hpp"
#include "platform/bus.hpp"
#include "platform/guest_ram.hpp"
#include "trace/event.hpp"
#include "platform/hypercall.hpp"
#include "platform/passthrough.hpp"

namespace trapscope::platform {

inline constexpr uint16_t kDebugConsolePort = 0xE9;
inline constexpr uint16_t kCom1Base = 0x3F8;
inline constexpr uint16_t kControlPort = 0xF4;

// The port-I/O and MMIO buses and their devices: platform/bus.hpp.

// Where console output goes: kept in memory (tests, the GUI) and optionally echoed live.
// At most trace::kConsoleLimitBytes of guest output are kept: the byte that does not fit is
// dropped and counted, kTruncatedMarker is appended to the text (and echoed) once, and full()
// turns true; both engines then end the run with RunEndReason::kConsoleLimit.
class ConsoleOutput {
 public:
  static constexpr std::string_view kTruncatedMarker =
      "\n[trapscope: console output truncated: limit of 64 MiB reached, run stopped]\n";

  // `dropped` > 0: a capture that was already full (its text ends with the marker).
  void set_text(std::string text, uint64_t dropped = 0);
  void set_echo(std::FILE* out) { echo_ = out; }
  void put(uint8_t byte);
  const std::string& text() const { return text_; }
  bool full() const { return dropped_ != 0; }
  uint64_t dropped() const { return dropped_; }  // guest bytes not kept

 private:
  std::string text_;
  uint64_t dropped_ = 0;
  std::FILE* echo_ = nullptr;
};

class DebugConsole final : public PioDevice {
 public:
  explicit DebugConsole(ConsoleOutput& out) : out_(out) {}
  std::string_view name() const override { return "debug-console"; }
  void read(uint16_t offset, std::span<uint8_t> data) override;
  void write(uint16_t offset, std::span<const uint8_t> data) override;

 private:
  ConsoleOutput& out_;
};

class Uart16550 final : public PioDevice {
 public:
  explicit Uart16550(ConsoleOutput& out) : out_(out) {}
  std::string_view name() const override { return "uart16550"; }
  void read(uint16_t offset, std::span<uint8_t> data) override;
  void write(uint16_t offset, std::span<const uint8_t> data) override;
  struct Registers {
    uint8_t ier = 0, lcr = 0, mcr = 0, scr = 0, dll = 0, dlm = 0;
  };
  Registers registers() const { return r_; }
  void set_registers(const Registers& r) { r_ = r; }

 private:
  ConsoleOutput& out_;
  Registers r_;
};

class ControlPort final : public PioDevice {
 public:
  std::string_view name() const override { return "control"; }
  void read(uint16_t offset, std::span<uint8_t> data) override;
  void write(uint16_t offset, std::span<const uint8_t> data) override;
  std::optional<uint32_t> exit_code() const { return exit_code_; }
  void set_exit_code(std::optional<uint32_t> code) { exit_code_ = code; }

 private:
  std::optional<uint32_t> exit_code_;
};

// The hypercall doorbell (platform/hypercall.hpp). A backend binds its HypercallHost; an `in` from
// the port executes the call and returns its result. Without a host every call fails (ENOSYS).
class HypercallDevice final : public PioDevice {
 public:
  explicit HypercallDevice(ConsoleOutput& out) : out_(out) {}
  std::string_view name() const override { return "hypercall"; }
  void read(uint16_t offset, std::span<uint8_t> data) override;
  void write(uint16_t offset, std::span<const uint8_t> data) override;  // ignored
  void bind(HypercallHost* host) { host_ = host; }
  // The call the last doorbell executed, once (the backend records it as an event).
  bool take_record(HypercallRecord* out);
  uint64_t calls() const { return calls_; }
  uint64_t errors() const { return errors_; }
  uint64_t shared_info_gpa() const { return shared_info_gpa_; }  // 0 = none registered
  void set_shared_info_gpa(uint64_t gpa) { shared_info_gpa_ = gpa; }  // restoring a snapshot
  // The event mask in the shared page (1 = masked, the PV `cli`); nullopt if none registered.
  std::optional<uint8_t> event_mask() const;
  // True once after a successful halt call (the backend then ends the run as for `hlt`).
  bool take_halt() { return std::exchange(halt_, false); }

 private:
  ConsoleOutput& out_;
  HypercallHost* host_ = nullptr;
  HypercallRecord last_;
  bool pending_ = false;
  bool halt_ = false;
  uint64_t calls_ = 0, errors_ = 0, shared_info_gpa_ = 0;
};

class VirtioBlk;  // platform/virtio_blk.hpp

// A write to guest-physical memory that no memory backs (recorded, otherwise ignored).
struct MmioWrite {
  uint64_t gpa;
  uint8_t len;
  uint64_t data;
};

// The standard device set of a trapscope machine, wired on its bus.
struct Devices {
  Devices();
  ~Devices();
  Devices(const Devices&) = delete;
  Devices& operator=(const Devices&) = delete;

  // Everything a snapshot must keep of the devices.
  struct State {
    std::string console;
    Uart16550::Registers uart;
    std::optional<uint32_t> exit_code;
    std::vector<MmioWrite> mmio_writes;
    uint64_t console_dropped = 0;
    uint64_t mmio_writes_dropped = 0;
    uint64_t hypercall_shared_info = 0;  // HypercallDevice::shared_info_gpa()
  };
  State save() const;
  void restore(const State& state);

  // Logs a write to unbacked memory: the first trace::kMmioLogLimitEntries are kept in
  // mmio_writes, later ones only counted in mmio_writes_dropped (the run goes on).
  void record_mmio_write(const MmioWrite& w);
  // A cap of trace/limits.hpp that ends the run (the console's), if reached.
  std::optional<trace::RunEndReason> limit_reached() const;

  ConsoleOutput console;
  DebugConsole debug_console{console};
  Uart16550 uart{console};
  ControlPort control;
  HypercallDevice hypercall{console};
  PioBus pio;
  MmioBus mmio;  // virtio-blk devices (attach_disks); unclaimed reads return all ones
  // Guest RAM for devices that do DMA (platform/guest_ram.hpp); set by the engine that owns
  // the RAM before the first run, never null then.
  GuestRam* ram = nullptr;
  // The machine's disks in the order given (`--disk`), shared by the controllers that expose
  // them (platform/block.hpp).
  std::vector<std::shared_ptr<BlockBackend>> disks;
  // Puts the controllers that expose `disks` on the buses (once, after `disks` is filled, with
  // `ram` set): the ATA controller (platform/ata.hpp) with disks[0] and [1] as drives 0 and 1 at
  // 0x1F0-0x1F7 and 0x3F6, and virtio-blk device N over disks[N] on `mmio` at kVirtioMmioBase +
  // N × kVirtioMmioStride (platform/virtio_mmio.hpp): a guest uses whichever driver it has.
  // Without disks nothing is attached (the ATA ports stay floating). Throws
  // std::invalid_argument if guest RAM would reach the virtio-mmio range.
  void attach_disks();
  // BlockBackend::flush on every disk (each run end); kOk or the first error.
  BlockStatus flush_disks();
  std::unique_ptr<AtaController> ata;
  std::vector<std::unique_ptr<VirtioBlk>> virtio_blk;
  // The passthrough device (platform/passthrough.hpp; `--passthrough`), null if none. Mapped:
  // the engine maps its window at kPassthroughBase; emulated: it is on `mmio`.
  std::unique_ptr<PassthroughDevice> passthrough;
  // Adds it (needs `ram` set). iommu: DMA goes through the simulator's IOMMU model, with the
  // VM's RAM assigned to it (identity: device address = guest-physical address).
  void attach_passthrough(PassthroughMode mode, bool iommu);
  // Why this VM cannot be snapshotted or migrated (a passthrough device, whose state lives
  // outside the VMM), or nullopt when it can. Snapshot files: snapshot/format.hpp.
  std::optional<std::string> snapshot_blocker() const;

  // Events the devices raised while the current VM exit was handled (trace/device_event.hpp).
  // The engine emits them right after that exit's own event and clears them
  // (platform/exit_event.hpp emit_device_events). At most kMaxDeviceEventsPerExit are kept per
  // exit; the rest are counted in device_events_dropped.
  static constexpr size_t kMaxDeviceEventsPerExit = 4096;
  void emit(const trace::DeviceEvent& e);
  std::vector<trace::DeviceEvent> device_events;
  uint64_t device_events_dropped = 0;
  std::vector<MmioWrite> mmio_writes;
  uint64_t mmio_writes_dropped = 0;  // writes past kMmioLogLimitEntries, not in mmio_writes
};

}  // namespace trapscope::platform
