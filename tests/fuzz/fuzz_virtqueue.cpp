// Fuzz target: the split virtqueue parser (platform/virtqueue.hpp) and virtio-blk serving a
// notify (platform/virtio_blk.hpp) over random guest RAM: rings, descriptors and requests are
// whatever the input says.
//
// Input: byte 0 the RAM size (1..16 pages of 4 KiB); bytes 1..2 the queue size (any u16, so
// non-powers of two and sizes above QueueNumMax occur); three u16 ring offsets (desc, avail,
// used; ×2 so most are aligned, some not); one byte the head for the direct walk; one byte
// max_descriptors; one byte the disk (0..15 sectors, bit 7 read-only); then RAM's contents
// (zeros past the input's end).
//
// Checked besides ASan/UBSan (RAM is a heap block of exactly its size): a walk that succeeds
// returns at most min(max_descriptors, size) buffers, readable ones before writable ones, with
// byte counts that add up and in_ram telling the truth; the device never writes RAM outside the
// used ring and the chains' device-writable buffers, and its used idx advances by at most the
// number of available entries.
#include <algorithm>
#include <memory>
#include <vector>

#include "tests/fuzz/fuzz_input.hpp"
#include "platform/devices.hpp"
#include "platform/virtio_blk.hpp"
#include "platform/virtqueue.hpp"

using namespace trapscope;

namespace {

constexpr const char* kTarget = "fuzz_virtqueue";
constexpr uint64_t kPage = 4096;

void check_walk(const platform::GuestRam& ram, const platform::VirtqLayout& q, uint16_t head,
                uint32_t max) {
  platform::VirtqChain c;
  const auto e = platform::walk_chain(ram, q, head, max, &c);
  if (e != platform::VirtqError::kNone && e != platform::VirtqError::kBufferOutsideRam) return;
  if (c.buffers.empty() || c.buffers.size() > std::min(max, q.size)) {
    fuzz::invariant_failed(kTarget, "a chain longer than its limits (or empty)");
  }
  uint64_t rd = 0, wr = 0;
  bool seen_write = false, all_in = true;
  for (const auto& b : c.buffers) {
    if (!b.write && seen_write) fuzz::invariant_failed(kTarget, "readable after writable");
    seen_write |= b.write;
    (b.write ? wr : rd) += b.len;
    if (b.in_ram != ram.contains(b.gpa, b.len)) fuzz::invariant_failed(kTarget, "in_ram lies");
    all_in &= b.in_ram;
  }
  if (rd != c.readable_bytes || wr != c.writable_bytes) {
    fuzz::invariant_failed(kTarget, "byte counts do not add up");
  }
  if (all_in != (e == platform::VirtqError::kNone)) {
    fuzz::invariant_failed(kTarget, "kBufferOutsideRam without such a buffer (or missed)");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  std::vector<uint8_t> mem((1 + in.pick(16)) * kPage, 0);
  platform::VirtqLayout q;
  q.size = static_cast<uint32_t>(in.uint(2));
  q.desc = in.uint(2) * 2;
  q.avail = in.uint(2) * 2;
  q.used = in.uint(2) * 2;
  const uint16_t head = in.u8();
  const uint32_t max = in.u8();
  const uint8_t disk_choice = in.u8();
  const auto contents = in.rest();
  std::copy_n(contents.begin(), std::min(contents.size(), mem.size()), mem.begin());

  platform::SpanRam ram(mem);
  if (platform::check_layout(ram, q, platform::VirtioMmio::kQueueNumMax) ==
      platform::VirtqError::kNone) {
    check_walk(ram, q, head, max);
  }

  // The device: driver set-up through the registers, then one notify of what RAM holds.
  const std::vector<uint8_t> before = mem;
  std::vector<bool> may_change(mem.size(), false);
  platform::Devices d;
  d.ram = &ram;
  d.disks.push_back(std::make_shared<platform::MemoryBlock>(disk_choice & 15, disk_choice & 0x80));
  d.attach_disks();
  platform::VirtioBlk& dev = *d.virtio_blk[0];
  auto wr = [&](uint32_t off, uint32_t v) {
    dev.write(off, {reinterpret_cast<const uint8_t*>(&v), 4});
  };
  wr(platform::kVmStatus, 1 | 2);
  wr(platform::kVmDriverFeaturesSel, 1);
  wr(platform::kVmDriverFeatures, 1);
  wr(platform::kVmStatus, 1 | 2 | 8);
  wr(platform::kVmQueueNum, q.size);
  wr(platform::kVmQueueDescLow, static_cast<uint32_t>(q.desc));
  wr(platform::kVmQueueDriverLow, static_cast<uint32_t>(q.avail));
  wr(platform::kVmQueueDeviceLow, static_cast<uint32_t>(q.used));
  wr(platform::kVmQueueReady, 1);
  wr(platform::kVmStatus, 1 | 2 | 4 | 8);
  if (dev.queue_ready(0)) {
    // What the device may write: the used ring and every chain's writable buffers.
    for (uint64_t i = 0; i < platform::virtq_used_bytes(q.size); ++i) may_change[q.used + i] = true;
    uint16_t avail_idx = 0;
    dev.queue(0).avail_idx(ram, &avail_idx);
    for (uint16_t k = 0; k < std::min<uint32_t>(avail_idx, q.size); ++k) {
      uint16_t h = 0;
      ram.read(q.avail + 4 + 2 * k, {reinterpret_cast<uint8_t*>(&h), 2});
      platform::VirtqChain c;
      platform::walk_chain(ram, q, static_cast<uint16_t>(h % q.size), q.size, &c);
      for (const auto& b : c.buffers) {
        if (!b.write || !b.in_ram) continue;
        for (uint64_t i = 0; i < b.len; ++i) may_change[b.gpa + i] = true;
      }
    }
  }
  // A device write into the descriptor table or the available ring changes the chains it walks
  // next: the bytes it may write are then not known beforehand, so that case is not checked.
  bool check_ram = true;
  if (dev.queue_ready(0)) {
    for (uint64_t i = 0; i < platform::virtq_desc_bytes(q.size); ++i) check_ram &= !may_change[q.desc + i];
    for (uint64_t i = 0; i < platform::virtq_avail_bytes(q.size); ++i) check_ram &= !may_change[q.avail + i];
  }
  wr(platform::kVmQueueNotify, 0);
  for (uint64_t i = 0; check_ram && i < mem.size(); ++i) {
    if (mem[i] != before[i] && !may_change[i]) {
      fuzz::invariant_failed(kTarget, "the device wrote RAM outside the used ring and writable buffers");
    }
  }
  if (dev.queue_ready(0)) {
    uint16_t avail_idx = 0;
    dev.queue(0).avail_idx(ram, &avail_idx);
    if (dev.queue(0).used_idx > std::min<uint32_t>(avail_idx, q.size)) {
      fuzz::invariant_failed(kTarget, "more used entries than available ones");
    }
  }
  return 0;
}
