#include "platform/passthrough.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace trapscope::platform {

std::string_view to_string(PassthroughMode mode) {
  switch (mode) {
    case PassthroughMode::kNone: return "none";
    case PassthroughMode::kMapped: return "mapped";
    case PassthroughMode::kEmulated: return "emulated";
  }
  return "?";
}

std::optional<PassthroughMode> parse_passthrough_mode(std::string_view text) {
  for (PassthroughMode m :
       {PassthroughMode::kNone, PassthroughMode::kMapped, PassthroughMode::kEmulated}) {
    if (text == to_string(m)) return m;
  }
  return std::nullopt;
}

std::string passthrough_snapshot_blocker(PassthroughMode mode) {
  if (mode == PassthroughMode::kMapped) {
    return "the VM has a passthrough device (--passthrough mapped): the guest drives it through "
           "memory the VMM does not see, and the device's state and its DMA in flight are "
           "outside what the VMM can capture, so the VM cannot be snapshotted or migrated";
  }
  return "the VM has a passthrough device (--passthrough emulated): its register page and "
         "pending command are not part of trapscope's device state, so the VM cannot be "
         "snapshotted or migrated";
}

// [SECTION] IOMMU

void Iommu::map(uint64_t iova, uint64_t gpa, uint64_t bytes, bool writable) {
  if (bytes == 0 || (iova | gpa | bytes) % kPage != 0 || iova + bytes < iova ||
      gpa + bytes < gpa) {
    throw std::invalid_argument("iommu: mapping not page aligned or empty");
  }
  for (const Mapping& m : maps_) {
    if (iova < m.iova + m.bytes && m.iova < iova + bytes) {
      throw std::invalid_argument("iommu: mapping overlaps one already in the table");
    }
  }
  maps_.push_back({iova, gpa, bytes, writable});
}

void Iommu::unmap(uint64_t iova, uint64_t bytes) {
  const uint64_t lo = iova & ~(kPage - 1);
  const uint64_t hi = bytes > UINT64_MAX - iova ? UINT64_MAX : iova + bytes;
  std::vector<Mapping> out;
  for (const Mapping& m : maps_) {
    const uint64_t end = m.iova + m.bytes;
    if (hi <= m.iova || end <= lo) {
      out.push_back(m);
      continue;
    }
    if (m.iova < lo) out.push_back({m.iova, m.gpa, lo - m.iova, m.writable});
    const uint64_t cut = (hi + kPage - 1) & ~(kPage - 1);
    if (cut < end) out.push_back({cut, m.gpa + (cut - m.iova), end - cut, m.writable});
  }
  maps_ = std::move(out);
}

const Iommu::Mapping* Iommu::find(uint64_t iova) const {
  for (const Mapping& m : maps_) {
    if (iova >= m.iova && iova - m.iova < m.bytes) return &m;
  }
  return nullptr;
}

std::optional<std::vector<Iommu::Segment>> Iommu::translate(uint64_t iova, uint64_t bytes,
                                                             bool write) const {
  std::vector<Segment> out;
  if (bytes > UINT64_MAX - iova) return std::nullopt;
  uint64_t at = iova;
  while (at < iova + bytes) {
    const Mapping* m = find(at);
    if (m == nullptr || (write && !m->writable)) return std::nullopt;
    const uint64_t n = std::min(iova + bytes - at, m->iova + m->bytes - at);
    const uint64_t gpa = m->gpa + (at - m->iova);
    if (!out.empty() && out.back().gpa + out.back().bytes == gpa) {
      out.back().bytes += n;
    } else {
      out.push_back({gpa, n});
    }
    at += n;
  }
  return out;
}

// [SECTION] The device

namespace {
trace::DeviceEvent device_event(trace::DeviceKind kind, trace::DeviceAction action) {
  trace::DeviceEvent e{};
  e.device = kind;
  e.action = action;
  return e;
}

// The built-in data source: kPtBuiltinSectors of pattern_byte.
std::shared_ptr<BlockBackend> builtin_disk() {
  auto d = std::make_shared<MemoryBlock>(kPtBuiltinSectors);
  for (uint64_t s = 0; s < kPtBuiltinSectors; ++s) {
    for (uint32_t i = 0; i < kSectorBytes; ++i) d->bytes()[s * kSectorBytes + i] = pattern_byte(s, i);
  }
  return d;
}
}  // namespace

PassthroughDevice::PassthroughDevice(PassthroughMode mode, std::shared_ptr<BlockBackend> disk,
                                     GuestRam* ram, std::unique_ptr<Iommu> iommu)
    : mode_(mode), disk_(disk ? std::move(disk) : builtin_disk()), ram_(ram),
      iommu_(std::move(iommu)) {
  // A shared memory object, as a device in another process would map it too.
  fd_ = ::memfd_create("trapscope-passthrough", MFD_CLOEXEC);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "memfd_create");
  if (::ftruncate(fd_, kPassthroughBytes) != 0) {
    const int err = errno;
    ::close(fd_);
    throw std::system_error(err, std::generic_category(), "ftruncate of the passthrough window");
  }
  void* p = ::mmap(nullptr, kPassthroughBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (p == MAP_FAILED) {
    const int err = errno;
    ::close(fd_);
    throw std::system_error(err, std::generic_category(), "mmap of the passthrough window");
  }
  window_ = static_cast<uint8_t*>(p);
  store32(kPtRegId, kPtMagic);
  store32(kPtRegVersion, 1);
  store32(kPtRegCapacity,
          static_cast<uint32_t>(std::min<uint64_t>(disk_->sectors(), UINT32_MAX)));
  scratch_.reserve(kPtMaxDma);
}

PassthroughDevice::~PassthroughDevice() {
  stop_thread();
  ::munmap(window_, kPassthroughBytes);
  ::close(fd_);
}

// The shared words are read and written with atomic_ref: the guest (another CPU, on KVM) and the
// device thread share them. Offsets are constants, naturally aligned in a page-aligned window.
uint32_t PassthroughDevice::load32(uint32_t offset, std::memory_order order) const {
  return std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(window_ + offset)).load(order);
}

uint64_t PassthroughDevice::load64(uint32_t offset) const {
  return std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(window_ + offset))
      .load(std::memory_order_relaxed);
}

void PassthroughDevice::store32(uint32_t offset, uint32_t value, std::memory_order order) {
  std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(window_ + offset)).store(value, order);
}

void PassthroughDevice::raise(trace::DeviceEvent e) {
  std::lock_guard<std::mutex> lock(events_mutex_);
  if (events_.size() < 4096) events_.push_back(e);  // drained at every VM exit
}

std::vector<trace::DeviceEvent> PassthroughDevice::take_events() {
  std::lock_guard<std::mutex> lock(events_mutex_);
  return std::exchange(events_, {});
}

bool PassthroughDevice::service() {
  // Acquire: the guest wrote COMMAND, LENGTH, SECTOR and DMA_ADDR before the doorbell.
  const uint32_t bell = load32(kPtRegDoorbell, std::memory_order_acquire);
  if (bell == last_doorbell_) return false;
  last_doorbell_ = bell;
  const uint32_t command = load32(kPtRegCommand);
  const uint32_t length = load32(kPtRegLength);
  const uint64_t sector = load64(kPtRegSector);
  const uint64_t dma_addr = load64(kPtRegDmaAddr);
  trace::DeviceEvent cmd = device_event(trace::DeviceKind::kPassthrough,
                                        trace::DeviceAction::kCommand);
  cmd.command = command;
  cmd.address = sector;
  cmd.count = length / kSectorBytes;
  cmd.value = dma_addr;
  raise(cmd);
  const uint32_t error = execute(command, length, sector, dma_addr);
  store32(kPtRegStatus, error == kPtErrNone ? 0 : 1);
  store32(kPtRegError, error);
  store32(kPtRegDone, load32(kPtRegDone) + 1);
  commands_.fetch_add(1, std::memory_order_relaxed);
  if (error != kPtErrNone) errors_.fetch_add(1, std::memory_order_relaxed);
  trace::DeviceEvent done = device_event(
      trace::DeviceKind::kPassthrough,
      error == kPtErrNone ? trace::DeviceAction::kComplete : trace::DeviceAction::kError);
  done.status = error == kPtErrNone ? 0 : 1;
  done.command = command;
  done.count = length / kSectorBytes;
  done.value = error;
  raise(done);
  // Release: everything above (status, data, DMA into RAM) is visible once COMPLETED matches.
  store32(kPtRegCompleted, bell, std::memory_order_release);
  return true;
}

bool PassthroughDevice::dma(uint64_t iova, std::span<uint8_t> bytes, bool to_memory) {
  if (ram_ == nullptr) return false;
  std::vector<Iommu::Segment> segments;
  if (iommu_) {
    auto t = iommu_->translate(iova, bytes.size(), to_memory);
    if (!t) {
      ++iommu_->faults;
      trace::DeviceEvent f =
          device_event(trace::DeviceKind::kIommu, trace::DeviceAction::kIommuFault);
      f.address = iova;
      f.bytes = static_cast<uint32_t>(bytes.size());
      f.value = to_memory ? 1 : 0;  // 1: a write to memory
      raise(f);
      return false;
    }
    segments = std::move(*t);
  } else {
    segments.push_back({iova, bytes.size()});  // device address = guest-physical address
  }
  for (const Iommu::Segment& s : segments) {  // all-or-nothing: check every piece first
    if (!ram_->contains(s.gpa, s.bytes)) return false;
  }
  uint64_t done = 0;
  for (const Iommu::Segment& s : segments) {
    const auto piece = bytes.subspan(done, s.bytes);
    const bool ok = to_memory ? ram_->write(s.gpa, piece) : ram_->read(s.gpa, piece);
    if (!ok) return false;
    done += s.bytes;
  }
  dma_bytes_.fetch_add(bytes.size(), std::memory_order_relaxed);
  trace::DeviceEvent e = device_event(trace::DeviceKind::kPassthrough, trace::DeviceAction::kDma);
  e.status = to_memory ? 1 : 0;  // 1: the device wrote memory
  e.address = iova;
  e.bytes = static_cast<uint32_t>(bytes.size());
  e.value = segments.front().gpa;
  raise(e);
  return true;
}

uint32_t PassthroughDevice::execute(uint32_t command, uint32_t length, uint64_t sector,
                                    uint64_t dma_addr) {
  if (command == kPtCmdFlush) return disk_->flush() == BlockStatus::kOk ? kPtErrNone : kPtErrWrite;
  const bool buffered = command == kPtCmdReadBuf || command == kPtCmdWriteBuf;
  if (command < kPtCmdRead || command > kPtCmdWriteBuf) return kPtErrCommand;
  if (length == 0 || length % kSectorBytes != 0 ||
      length > (buffered ? kPtBufferBytes : kPtMaxDma)) {
    return kPtErrLength;
  }
  const uint64_t n = length / kSectorBytes;
  if (sector > disk_->sectors() || n > disk_->sectors() - sector) return kPtErrRange;
  std::span<uint8_t> data = buffered ? std::span<uint8_t>(window_ + kPtBuffer, length)
                                     : (scratch_.resize(length), std::span<uint8_t>(scratch_));
  BlockStatus st = BlockStatus::kOk;
  switch (command) {
    case kPtCmdRead:
    case kPtCmdReadBuf:
      st = disk_->read(sector, data);
      if (st == BlockStatus::kOk && !buffered && !dma(dma_addr, data, true)) return kPtErrDma;
      break;
    default:  // kPtCmdWrite, kPtCmdWriteBuf
      if (!buffered && !dma(dma_addr, data, false)) return kPtErrDma;
      st = disk_->write(sector, data);
      break;
  }
  if (st == BlockStatus::kOutOfRange) return kPtErrRange;
  return st == BlockStatus::kOk ? kPtErrNone : kPtErrWrite;
}

void PassthroughDevice::poll_loop() {
  unsigned idle = 0;
  while (!stop_.load(std::memory_order_acquire)) {
    if (service()) {
      idle = 0;
    } else if (++idle < 256) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
}

void PassthroughDevice::start_thread() {
  if (thread_.joinable()) return;
  stop_.store(false, std::memory_order_release);
  // The thread takes no signals (it inherits this mask): Ctrl-C and the run timer's signal must
  // reach the vCPU thread, whose KVM_RUN they interrupt.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    thread_ = std::thread([this] { poll_loop(); });
  } catch (...) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    throw;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void PassthroughDevice::stop_thread() {
  if (!thread_.joinable()) return;
  stop_.store(true, std::memory_order_release);
  thread_.join();
}

// [SECTION] Emulated: the same registers behind MMIO exits.

void PassthroughDevice::Mmio::read(uint64_t offset, std::span<uint8_t> data) {
  if (offset > kPassthroughBytes || data.size() > kPassthroughBytes - offset) {
    std::memset(data.data(), 0xFF, data.size());
    return;
  }
  std::memcpy(data.data(), d_.window_ + offset, data.size());
}

void PassthroughDevice::Mmio::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset > kPassthroughBytes || data.size() > kPassthroughBytes - offset) return;
  // Only the guest's registers and the buffer are writable through MMIO.
  const bool guest_reg = offset >= kPtRegCommand && offset + data.size() <= kPtRegCompleted;
  if (!guest_reg && offset < kPtBuffer) return;
  std::memcpy(d_.window_ + offset, data.data(), data.size());
  if (offset < kPtRegDoorbell + 4 && offset + data.size() > kPtRegDoorbell) d_.service();
}

}  // namespace trapscope::platform
