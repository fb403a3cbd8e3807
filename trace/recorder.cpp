#include "trace/recorder.hpp"

#include <sys/mman.h>

#include <cstdlib>
#include <new>
#include <stdexcept>

namespace trapscope::trace {

void Recorder::FreeDeleter::operator()(void* p) const { std::free(p); }

std::byte* Recorder::new_chunk() {
  // 2 MiB-aligned so that the kernel can back it with huge pages (fewer page faults).
  void* p = std::aligned_alloc(2u << 20, kChunkBytes);
  if (p == nullptr) throw std::bad_alloc();
  ::madvise(p, kChunkBytes, MADV_HUGEPAGE);
  return static_cast<std::byte*>(p);
}

void Recorder::on_event(const EventHeader& event) {
  const size_t size = event.size;
  const size_t rounded = (size + 7) & ~size_t{7};
  if (used_ + rounded > kChunkBytes) {
    chunks_.emplace_back(new_chunk());
    used_ = 0;
  }
  if (count_ % kIndexPerChunk == 0 && count_ / kIndexPerChunk == index_.size()) {
    auto* p = static_cast<uint64_t*>(std::malloc(kIndexPerChunk * sizeof(uint64_t)));
    if (p == nullptr) throw std::bad_alloc();
    index_.emplace_back(p);
  }
  std::memcpy(chunks_.back().get() + used_, &event, size);
  index_[count_ / kIndexPerChunk][count_ % kIndexPerChunk] =
      (uint64_t{chunks_.size() - 1} << 32) | used_;
  used_ += rounded;
  ++count_;
}

void Recorder::clear() {
  chunks_.clear();
  index_.clear();
  used_ = kChunkBytes;
  count_ = 0;
}

const EventHeader& Recorder::at(size_t i) const {
  if (i >= count_) throw std::out_of_range("Recorder::at");
  const uint64_t o = index_[i / kIndexPerChunk][i % kIndexPerChunk];
  return *reinterpret_cast<const EventHeader*>(chunks_[o >> 32].get() + (o & 0xFFFFFFFFu));
}

}  // namespace trapscope::trace
