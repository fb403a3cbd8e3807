#include "trace/recorder.hpp"

#include <sys/mman.h>

#include <cstdlib>
#include <new>
#include <stdexcept>

namespace trapscope::trace {
namespace {

// 2 MiB-aligned so that the kernel can back it with huge pages (fewer page faults).
void* alloc_huge(size_t bytes) {
  void* p = std::aligned_alloc(size_t{2} << 20, bytes);
  if (p == nullptr) throw std::bad_alloc();
  ::madvise(p, bytes, MADV_HUGEPAGE);
  return p;
}

}  // namespace

void Recorder::FreeDeleter::operator()(void* p) const { std::free(p); }

void Recorder::next_chunk() {
  const size_t next = cur_ == nullptr ? 0 : chunk_ + 1;
  if (next >= kMaxChunks) {
    throw std::length_error("Recorder: more than 32 GiB of events");
  }
  if (next == chunks_.size()) chunks_.emplace_back(static_cast<std::byte*>(alloc_huge(kChunkBytes)));
  chunk_ = next;
  cur_ = chunks_[next].get();
  used_ = 0;
}

void Recorder::next_index_block() {
  const size_t b = count_ >> kIndexShift;
  if (b == index_.size()) {
    index_.emplace_back(static_cast<uint32_t*>(alloc_huge(kIndexPerBlock * sizeof(uint32_t))));
  }
  block_ptr_ = index_[b].get();
}

void Recorder::on_event(const EventHeader& event) {
  const size_t size = event.size;
  const size_t rounded = (size + 7) & ~size_t{7};
  if (used_ + rounded > kChunkBytes) [[unlikely]] next_chunk();
  if ((count_ & (kIndexPerBlock - 1)) == 0) [[unlikely]] next_index_block();
  std::byte* dst = cur_ + used_;
  // Instruction events are most of a recording: a copy of constant size is a few moves.
  if (size == sizeof(InstructionEvent)) {
    std::memcpy(dst, &event, sizeof(InstructionEvent));
  } else {
    std::memcpy(dst, &event, size);
  }
  block_ptr_[count_ & (kIndexPerBlock - 1)] =
      static_cast<uint32_t>((chunk_ << (kChunkShift - 3)) | (used_ >> 3));
  used_ += rounded;
  ++count_;
}

Recorder& Recorder::operator=(Recorder&& other) noexcept {
  if (this != &other) {
    chunks_ = std::move(other.chunks_);
    index_ = std::move(other.index_);
    cur_ = other.cur_;
    chunk_ = other.chunk_;
    used_ = other.used_;
    block_ptr_ = other.block_ptr_;
    count_ = other.count_;
    other.clear();
  }
  return *this;
}

void Recorder::rewind() {
  cur_ = nullptr;
  chunk_ = 0;
  used_ = kChunkBytes;
  block_ptr_ = nullptr;
  count_ = 0;
}

void Recorder::clear() {
  rewind();
  chunks_.clear();
  index_.clear();
}

const EventHeader& Recorder::at(size_t i) const {
  if (i >= count_) throw std::out_of_range("Recorder::at");
  const uint32_t o = index_[i >> kIndexShift][i & (kIndexPerBlock - 1)];
  const size_t offset = size_t{o & ((1u << (kChunkShift - 3)) - 1)} << 3;
  return *reinterpret_cast<const EventHeader*>(chunks_[o >> (kChunkShift - 3)].get() + offset);
}

size_t Recorder::memory_bytes() const {
  return chunks_.size() * kChunkBytes + index_.size() * kIndexPerBlock * sizeof(uint32_t);
}

}  // namespace trapscope::trace
