#include "platform/devices.hpp"

#include <cstring>
#include <stdexcept>

#include "platform/virtio_blk.hpp"
#include "trace/limits.hpp"

namespace trapscope::platform {

static_assert(trace::kConsoleLimitBytes == size_t{64} << 20,
              "ConsoleOutput::kTruncatedMarker names the limit: update it");

void ConsoleOutput::set_text(std::string text, uint64_t dropped) {
  text_ = std::move(text);
  dropped_ = dropped;
}

void ConsoleOutput::put(uint8_t byte) {
  if (dropped_ != 0 || text_.size() >= trace::kConsoleLimitBytes) [[unlikely]] {
    if (dropped_++ == 0) {
      text_ += kTruncatedMarker;
      if (echo_ != nullptr) {
        std::fwrite(kTruncatedMarker.data(), 1, kTruncatedMarker.size(), echo_);
        std::fflush(echo_);
      }
    }
    return;
  }
  text_.push_back(static_cast<char>(byte));
  if (echo_ != nullptr) {
    std::fputc(byte, echo_);
    if (byte == '\n') std::fflush(echo_);
  }
}

void DebugConsole::read(uint16_t, std::span<uint8_t> data) {
  std::memset(data.data(), 0, data.size());
  if (!data.empty()) data[0] = 0xE9;
}

void DebugConsole::write(uint16_t, std::span<const uint8_t> data) {
  if (!data.empty()) out_.put(data[0]);  // one byte of output per access, as Bochs does
}

// 16550 registers (offset from base; DLAB = LCR bit 7):
//   0 RBR (read) / THR (write) / DLL (DLAB)   1 IER / DLM (DLAB)   2 IIR (read) / FCR (write)
//   3 LCR   4 MCR   5 LSR   6 MSR   7 SCR
void Uart16550::read(uint16_t offset, std::span<uint8_t> data) {
  const bool dlab = r_.lcr & 0x80;
  uint8_t v = 0;
  switch (offset) {
    case 0: v = dlab ? r_.dll : 0; break;        // no receive data
    case 1: v = dlab ? r_.dlm : r_.ier; break;
    case 2: v = 0x01; break;                      // IIR: no interrupt pending
    case 3: v = r_.lcr; break;
    case 4: v = r_.mcr; break;
    case 5: v = 0x60; break;                      // LSR: THRE | TEMT, no data ready
    case 6: v = 0xB0; break;                      // MSR: DCD, DSR, CTS asserted
    case 7: v = r_.scr; break;
  }
  std::memset(data.data(), 0, data.size());
  if (!data.empty()) data[0] = v;
}

void Uart16550::write(uint16_t offset, std::span<const uint8_t> data) {
  if (data.empty()) return;
  const uint8_t v = data[0];
  const bool dlab = r_.lcr & 0x80;
  switch (offset) {
    case 0:
      if (dlab) r_.dll = v;
      else out_.put(v);
      break;
    case 1:
      if (dlab) r_.dlm = v;
      else r_.ier = v & 0x0F;
      break;
    case 3: r_.lcr = v; break;
    case 4: r_.mcr = v & 0x1F; break;
    case 7: r_.scr = v; break;
    default: break;  // FCR, LSR, MSR writes have no effect here
  }
}

void ControlPort::read(uint16_t, std::span<uint8_t> data) {
  std::memset(data.data(), 0, data.size());
}

void ControlPort::write(uint16_t, std::span<const uint8_t> data) {
  uint32_t v = 0;
  std::memcpy(&v, data.data(), data.size() < 4 ? data.size() : 4);
  exit_code_ = v;
}

void HypercallDevice::read(uint16_t, std::span<uint8_t> data) {
  std::memset(data.data(), 0, data.size());
  ++calls_;
  if (host_ != nullptr) {
    last_ = execute_hypercall(*host_, out_, &shared_info_gpa_);
  } else {
    last_ = HypercallRecord{{}, kHcEnosys, 0};
  }
  pending_ = true;
  halt_ = last_.result == kHcOk && last_.args.nr == static_cast<uint32_t>(Hypercall::kHalt);
  if (last_.result != kHcOk) ++errors_;
  const uint32_t v = static_cast<uint32_t>(last_.result);
  std::memcpy(data.data(), &v, data.size() < 4 ? data.size() : 4);
}

void HypercallDevice::write(uint16_t, std::span<const uint8_t>) {}

bool HypercallDevice::take_record(HypercallRecord* out) {
  if (!pending_) return false;
  pending_ = false;
  *out = last_;
  return true;
}

std::optional<uint8_t> HypercallDevice::event_mask() const {
  if (shared_info_gpa_ == 0 || host_ == nullptr) return std::nullopt;
  const auto mem = host_->guest_memory();
  if (shared_info_gpa_ >= mem.size()) return std::nullopt;
  return mem[shared_info_gpa_];
}

Devices::State Devices::save() const {
  return {console.text(),  uart.registers(),  control.exit_code(),
          mmio_writes,     console.dropped(), mmio_writes_dropped,
          hypercall.shared_info_gpa()};
}

void Devices::restore(const State& st) {
  console.set_text(st.console, st.console_dropped);
  uart.set_registers(st.uart);
  control.set_exit_code(st.exit_code);
  mmio_writes = st.mmio_writes;
  mmio_writes_dropped = st.mmio_writes_dropped;
  hypercall.set_shared_info_gpa(st.hypercall_shared_info);
}

void Devices::record_mmio_write(const MmioWrite& w) {
  if (mmio_writes.size() < trace::kMmioLogLimitEntries) {
    mmio_writes.push_back(w);
  } else {
    ++mmio_writes_dropped;
  }
}

std::optional<trace::RunEndReason> Devices::limit_reached() const {
  if (console.full()) return trace::RunEndReason::kConsoleLimit;
  return std::nullopt;
}

Devices::Devices() {
  pio.insert(kDebugConsolePort, 1, &debug_console);
  pio.insert(kCom1Base, 8, &uart);
  pio.insert(kControlPort, 1, &control);
  pio.insert(kHypercallPort, 1, &hypercall);
}

Devices::~Devices() = default;

void Devices::attach_disks() {
  if (!disks.empty() && !ata) {
    ata = std::make_unique<AtaController>(*this);
    pio.insert(kAtaCommandBase, 8, &ata->command_block());
    pio.insert(kAtaControlPort, 1, &ata->control_block());
  }
  for (size_t i = virtio_blk.size(); i < disks.size(); ++i) {
    const uint64_t base = kVirtioMmioBase + kVirtioMmioStride * i;
    if (ram != nullptr && ram->size() > base) {
      char msg[96];
      std::snprintf(msg, sizeof msg, "virtio-blk%zu at guest-physical 0x%llx would overlap guest RAM",
                    i, static_cast<unsigned long long>(base));
      throw std::invalid_argument(msg);
    }
    virtio_blk.push_back(std::make_unique<VirtioBlk>(*this, static_cast<uint8_t>(i), disks[i]));
    mmio.insert(base, kVirtioMmioSize, virtio_blk.back().get());
  }
}

BlockStatus Devices::flush_disks() {
  BlockStatus first = BlockStatus::kOk;
  for (const auto& d : disks) {
    const BlockStatus s = d->flush();
    if (first == BlockStatus::kOk) first = s;
  }
  return first;
}

void Devices::emit(const trace::DeviceEvent& e) {
  if (device_events.size() >= kMaxDeviceEventsPerExit) {
    ++device_events_dropped;
    return;
  }
  device_events.push_back(e);
}

void Devices::attach_passthrough(PassthroughMode mode, bool iommu) {
  if (mode == PassthroughMode::kNone) return;
  std::unique_ptr<Iommu> table;
  if (iommu && ram != nullptr) {
    table = std::make_unique<Iommu>();
    const uint64_t bytes = ram->size() & ~(Iommu::kPage - 1);
    if (bytes != 0) table->map(0, 0, bytes, true);  // the VMM assigns the VM's pages
  }
  passthrough = std::make_unique<PassthroughDevice>(mode, nullptr, ram, std::move(table));
  if (mode == PassthroughMode::kEmulated) {
    mmio.insert(kPassthroughBase, kPassthroughBytes, &passthrough->mmio());
  }
}

std::optional<std::string> Devices::snapshot_blocker() const {
  if (passthrough) return passthrough_snapshot_blocker(passthrough->mode());
  return std::nullopt;
}

}  // namespace trapscope::platform
