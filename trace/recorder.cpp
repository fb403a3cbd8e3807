#include "trace/recorder.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <new>
#include <stdexcept>

namespace trapscope::trace {

Recorder::Block::Block(size_t bytes) : n_(bytes) {
  p_ = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p_ == MAP_FAILED) throw std::bad_alloc();
}

Recorder::Block::~Block() {
  if (p_ != nullptr) ::munmap(p_, n_);
}

Recorder::~Recorder() = default;

bool Recorder::room_for(size_t more) {
  const size_t cap = limit_ > SIZE_MAX - reserve_ ? SIZE_MAX : limit_ + reserve_;
  if (memory_bytes() + more <= cap) return true;
  full_ = true;
  return false;
}

bool Recorder::next_chunk() {
  const size_t next = cur_ == nullptr ? 0 : chunk_ + 1;
  if (next >= kMaxChunks) {
    throw std::length_error("Recorder: more than 16 GiB of events other than instructions");
  }
  if (next == chunks_.size()) {
    if (!room_for(kChunkBytes)) return false;
    chunks_.emplace_back(kChunkBytes);
  }
  chunk_ = next;
  cur_ = chunks_[next].get();
  used_ = 0;
  return true;
}

bool Recorder::next_index_block() {
  const size_t b = count_ >> kIndexShift;
  if (b == index_.size()) {
    if (!room_for(kIndexPerBlock * sizeof(uint32_t))) return false;
    index_.emplace_back(kIndexPerBlock * sizeof(uint32_t));
  }
  block_ptr_ = reinterpret_cast<uint32_t*>(index_[b].get());
  return true;
}

uint32_t Recorder::store_record(const EventHeader& event) {
  const size_t size = event.size;
  const size_t rounded = (size + 7) & ~size_t{7};
  if (used_ + rounded > kChunkBytes) [[unlikely]] {
    if (!next_chunk()) return kNoRoom;
  }
  std::memcpy(cur_ + used_, &event, size);
  const auto word = static_cast<uint32_t>((chunk_ << kOffsetBits) | (used_ >> 3));
  used_ += rounded;
  return word;
}

uint32_t Recorder::add_site(const Site& s, size_t slot) {
  if (sites_.size() >= kSiteTag) {
    throw std::length_error("Recorder: more than 2^31 distinct instructions");
  }
  size_t grow = 0;  // bytes the vectors below are about to allocate
  if (sites_.size() == sites_.capacity()) {
    grow += std::max<size_t>(sites_.capacity(), 16) * (sizeof(Site) + sizeof(uint32_t));
  }
  if ((sites_.size() + 1) * 2 > table_.size()) grow += table_.size() * 2 * sizeof(uint32_t);
  if (grow != 0 && !room_for(grow)) return kNoRoom;
  const auto id = static_cast<uint32_t>(sites_.size());
  sites_.push_back(s);
  next_.push_back(id);  // no successor seen yet: any valid site will do
  table_[slot] = id + 1;
  if (sites_.size() * 2 > table_.size()) {  // grow: keep the table at most half full
    std::vector<uint32_t> bigger(table_.size() * 2, 0);
    const size_t mask = bigger.size() - 1;
    for (uint32_t v : table_) {
      if (v == 0) continue;
      size_t h = site_hash(sites_[v - 1]) & mask;
      while (bigger[h] != 0) h = (h + 1) & mask;
      bigger[h] = v;
    }
    table_.swap(bigger);
  }
  return id;
}

// Out of line, with add_anchor(): the common path of on_event() stays free of their registers.
[[gnu::noinline]] uint32_t Recorder::find_site(const Site& s) {
  if (table_.empty()) table_.assign(1024, 0);
  const size_t mask = table_.size() - 1;
  for (size_t h = site_hash(s) & mask;; h = (h + 1) & mask) {
    const uint32_t v = table_[h];
    if (v == 0) return add_site(s, h);
    if (sites_[v - 1] == s) return v - 1;
  }
}

[[gnu::noinline]] bool Recorder::add_anchor(const EventHeader& event) {
  if (anchors_.size() == anchors_.capacity() &&
      !room_for(std::max<size_t>(anchors_.capacity(), 16) * sizeof(Anchor))) {
    return false;
  }
  seq_base_ = event.seq - count_;
  time_ns_ = event.time_ns;
  anchors_.push_back({count_, seq_base_, time_ns_});
  return true;
}

void Recorder::on_event(const EventHeader& event) {
  if (full_) [[unlikely]] {
    // At the cap: only a run end, from the reserve, so that the recording says how it ended.
    if (event.type != EventType::kRunEnd || reserve_ != 0) return drop();
    reserve_ = kRunEndReserveBytes;
    full_ = false;
    on_event(event);
    full_ = true;
    reserve_ = 0;
    return;
  }
  if ((count_ & (kIndexPerBlock - 1)) == 0) [[unlikely]] {
    if (!next_index_block()) return drop();
  }
  uint32_t word;
  if (event.type == EventType::kInstruction && event.size == sizeof(InstructionEvent)) {
    // Four 8-byte loads (the producer has just written the record; loads that match its
    // stores are forwarded from the store buffer: sim/sim_machine.cpp record_instruction()).
    const auto* p = reinterpret_cast<const std::byte*>(&event);
    static_assert(offsetof(InstructionEvent, len) == 32 && offsetof(EventHeader, rip) == 24);
    Site s;
    std::memcpy(&s.head, p, 8);
    std::memcpy(&s.rip, p + 24, 8);
    std::memcpy(&s.code[0], p + 32, 8);
    std::memcpy(&s.code[1], p + 40, 8);
    uint32_t site = predicted_;
    if (site >= sites_.size() || !(sites_[site] == s)) [[unlikely]] {
      site = find_site(s);
      if (site == kNoRoom) return drop();
      next_[last_site_] = site;  // (the first site: last_site_ = 0 is that site itself)
    }
    if (event.seq != seq_base_ + count_ || event.time_ns != time_ns_) [[unlikely]] {
      if (!add_anchor(event)) return drop();
    }
    last_site_ = site;
    predicted_ = next_[site];
    word = kSiteTag | site;
  } else {
    word = store_record(event);
    if (word == kNoRoom) return drop();
  }
  block_ptr_[count_ & (kIndexPerBlock - 1)] = word;
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
    sites_ = std::move(other.sites_);
    next_ = std::move(other.next_);
    last_site_ = other.last_site_;
    predicted_ = other.predicted_;
    table_ = std::move(other.table_);
    anchors_ = std::move(other.anchors_);
    seq_base_ = other.seq_base_;
    time_ns_ = other.time_ns_;
    limit_ = other.limit_;
    full_ = other.full_;
    dropped_ = other.dropped_;
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
  sites_.clear();
  next_.clear();
  last_site_ = 0;
  predicted_ = 0;
  std::fill(table_.begin(), table_.end(), 0);
  anchors_.clear();
  seq_base_ = 0;
  time_ns_ = 0;
  full_ = false;
  dropped_ = 0;
}

void Recorder::clear() {
  rewind();
  chunks_.clear();
  index_.clear();
  std::vector<Site>().swap(sites_);
  std::vector<uint32_t>().swap(next_);
  std::vector<uint32_t>().swap(table_);
  std::vector<Anchor>().swap(anchors_);
}

const EventHeader& Recorder::at(size_t i) const {
  if (i >= count_) throw std::out_of_range("Recorder::at");
  const uint32_t w =
      reinterpret_cast<const uint32_t*>(index_[i >> kIndexShift].get())[i & (kIndexPerBlock - 1)];
  if ((w & kSiteTag) == 0) {
    const size_t offset = size_t{w & ((1u << kOffsetBits) - 1)} << 3;
    return *reinterpret_cast<const EventHeader*>(chunks_[w >> kOffsetBits].get() + offset);
  }
  thread_local std::array<InstructionEvent, kInstructionSlots> ring;
  thread_local size_t next = 0;
  InstructionEvent& e = ring[next++ % kInstructionSlots];
  const Site& s = sites_[w & ~kSiteTag];
  std::memcpy(&e.header, &s.head, sizeof s.head);
  e.header.rip = s.rip;
  std::memcpy(&e.len, s.code, sizeof s.code);
  // The last anchor at or before i (none: seq = i, time 0, as on_event predicts).
  auto a = std::upper_bound(anchors_.begin(), anchors_.end(), i,
                            [](size_t v, const Anchor& x) { return v < x.index; });
  if (a == anchors_.begin()) {
    e.header.seq = i;
    e.header.time_ns = 0;
  } else {
    --a;
    e.header.seq = a->seq_base + i;
    e.header.time_ns = a->time_ns;
  }
  return e.header;
}

size_t Recorder::memory_bytes() const {
  return chunks_.size() * kChunkBytes + index_.size() * kIndexPerBlock * sizeof(uint32_t) +
         sites_.capacity() * sizeof(Site) + next_.capacity() * sizeof(uint32_t) +
         table_.capacity() * sizeof(uint32_t) +
         anchors_.capacity() * sizeof(Anchor);
}

}  // namespace trapscope::trace
