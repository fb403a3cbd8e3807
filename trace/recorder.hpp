// trace/recorder.hpp — where events go: the EventSink interface and the in-memory Recorder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "trace/event.hpp"
#include "trace/limits.hpp"

namespace trapscope::trace {

// Receives events. `event` is the start of a record of event.size bytes (one of the structs in
// trace/event.hpp). Sinks copy what they keep; the record is only valid during the call.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void on_event(const EventHeader& event) = 0;
  // True once the sink keeps no more events (an in-memory sink at its cap, trace/limits.hpp):
  // both engines then end the run with RunEndReason::kEventLimit (checked after each VM exit
  // and at least every 4096 instructions, so a few more events may arrive and be dropped).
  virtual bool full() const { return false; }
};

// Keeps every event in memory and gives each back intact (byte for byte).
//
// [SECTION] Shape
//   Instruction-retired events, most of a recording, are kept compactly: 4 bytes each, the
//   number of their *site*. A site is everything of the 48-byte InstructionEvent except
//   header.seq and header.time_ns (type, CPL, mode, flags, RIP, length and bytes: 32 bytes),
//   stored once per distinct value in a side table. Each site remembers the site that followed
//   it last time; an instruction that matches that prediction (a loop: nearly always) costs a
//   32-byte comparison, others a look-up in a hash table of the sites. header.seq and
//   header.time_ns are predicted (seq one more per event, time unchanged) and an *anchor*
//   (event number, seq − number, time) is kept only where a prediction fails: the simulator
//   samples the time every 4096 instructions, so that is one 24-byte anchor per 4096.
//   Other events are copied whole into 8 MiB chunks (8-byte aligned), plus the same 4-byte
//   word per event locating them.
//
// [SECTION] Memory
//   4 bytes per instruction event + 32 bytes per distinct site (+ 4–8 of hash table), other
//   records their size rounded up to 8 + 4 bytes. The old layout (the 48-byte record + a 4-byte
//   index, 52 bytes per instruction) made a first recording pay mostly for the kernel zeroing
//   fresh pages (~0.1–0.4 ms per MiB on this project's hosts, about 20 ns per instruction:
//   more than the interpreter takes to execute one); see docs/benchmarks.md and bench/interp_mips.
//   Chunks and index blocks are anonymous mmap()s, given back to the kernel by clear() and the
//   destructor (no huge-page advice: on hosts with THP defrag = madvise, huge-page faults
//   stalled in direct compaction). rewind() keeps them for the next recording.
//   Limits: 2048 chunks (16 GiB of non-instruction records), 2^31 distinct sites; past them a
//   record throws std::length_error.
//
// [SECTION] Cap
//   A Recorder holds at most limit_bytes() of memory (default trace::kRecorderLimitBytes,
//   trace/limits.hpp): an event that would need more is dropped and counted (dropped()), and
//   full() turns true, so the engine ends the run (RunEndReason::kEventLimit). Run-end events
//   may use kRunEndReserveBytes more, so that a capped recording still ends with its run end.
//
// [SECTION] Access
//   at(i) of an instruction event rebuilds the record into a per-thread ring of
//   kInstructionSlots records: the reference stays valid for kInstructionSlots − 1 further
//   at()/get() calls of instruction events on the same thread (any Recorder), and is not
//   invalidated by other threads. References to other events stay valid until the Recorder is
//   modified (on_event never moves them; rewind()/clear() end them). Concurrent const access
//   from several threads is safe; on_event() is not, as for any container.
class Recorder final : public EventSink {
 public:
  static constexpr size_t kInstructionSlots = 256;
  // Room past the cap for run-end events (a new chunk and index block: 12 MiB, and some).
  static constexpr size_t kRunEndReserveBytes = size_t{16} << 20;

  // limit_bytes: the cap on memory_bytes() ([SECTION] Cap); SIZE_MAX for none.
  explicit Recorder(size_t limit_bytes = kRecorderLimitBytes) : limit_(limit_bytes) {}
  ~Recorder() override;
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;
  Recorder(Recorder&& other) noexcept { *this = std::move(other); }
  Recorder& operator=(Recorder&& other) noexcept;  // `other` is left empty

  void on_event(const EventHeader& event) override;
  bool full() const override { return full_; }
  uint64_t dropped() const { return dropped_; }  // events not kept because of the cap
  size_t limit_bytes() const { return limit_; }

  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  void clear();   // forgets every event and frees the memory
  void rewind();  // forgets every event and keeps the memory for the next ones

  // The i-th event's header (i < size(); std::out_of_range otherwise). See [SECTION] Access for
  // how long the reference lives.
  const EventHeader& at(size_t i) const;

  // The i-th event as T; nullptr if it is of another type.
  template <typename T>
  const T* get(size_t i, EventType type) const {
    const EventHeader& h = at(i);
    return h.type == type && h.size == sizeof(T) ? reinterpret_cast<const T*>(&h) : nullptr;
  }

  // Bytes of memory held (chunks, index, sites, hash table and anchors; in use or kept by
  // rewind()).
  size_t memory_bytes() const;
  // Distinct instruction sites held (information; see [SECTION] Shape).
  size_t instruction_sites() const { return sites_.size(); }

 private:
  static constexpr size_t kChunkShift = 23;  // 8 MiB chunks
  static constexpr size_t kChunkBytes = size_t{1} << kChunkShift;
  static constexpr size_t kOffsetBits = kChunkShift - 3;                // offset / 8
  static constexpr size_t kMaxChunks = size_t{1} << (31 - kOffsetBits);  // 2048
  static constexpr uint32_t kSiteTag = 0x80000000u;  // index word: an instruction's site
  static constexpr size_t kIndexShift = 20;          // index blocks of 1 Mi entries (4 MiB)
  static constexpr size_t kIndexPerBlock = size_t{1} << kIndexShift;

  // An InstructionEvent without seq and time_ns (see [SECTION] Shape).
  struct Site {
    uint64_t head;     // EventHeader bytes 0..7: type, cpl, cpu_mode, flags, size, reserved
    uint64_t rip;
    uint64_t code[2];  // len, bytes[15]
    bool operator==(const Site& o) const {  // without branches: one test of four words
      return ((head ^ o.head) | (rip ^ o.rip) | (code[0] ^ o.code[0]) | (code[1] ^ o.code[1])) ==
             0;
    }
  };
  static_assert(sizeof(Site) == 32);
  struct Anchor {
    uint64_t index;     // first event it applies to
    uint64_t seq_base;  // header.seq − event number (mod 2^64) from there on
    uint64_t time_ns;   // header.time_ns from there on
  };
  // A block of anonymous memory (mmap), unmapped when destroyed.
  class Block {
   public:
    explicit Block(size_t bytes);
    Block(Block&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(o.n_) {}
    Block& operator=(Block&&) = delete;
    ~Block();
    std::byte* get() const { return static_cast<std::byte*>(p_); }

   private:
    void* p_;
    size_t n_;
  };

  static constexpr uint32_t kNoRoom = 0xFFFFFFFFu;  // store_record/find_site: over the cap
  uint32_t store_record(const EventHeader& event);
  uint32_t find_site(const Site& s);  // the hash table; adds s if new
  uint32_t add_site(const Site& s, size_t slot);
  bool add_anchor(const EventHeader& event);
  bool next_chunk();
  bool next_index_block();
  // False (and full() from now on) if `more` bytes would take memory_bytes() past the cap.
  bool room_for(size_t more);
  void drop() { ++dropped_; }
  static size_t site_hash(const Site& s) {
    return static_cast<size_t>(((s.rip ^ s.code[0]) * 0x9E3779B97F4A7C15ull) >> 32);
  }

  // Chunks and index blocks in use are [0, chunk_] and [0, count_ >> kIndexShift]; later ones
  // are kept (rewind()) for reuse.
  std::vector<Block> chunks_;
  std::vector<Block> index_;       // uint32_t words: kSiteTag | site, or chunk << 20 | offset / 8
  std::byte* cur_ = nullptr;       // the chunk being filled (nullptr before the first record)
  size_t chunk_ = 0;               // its number
  size_t used_ = kChunkBytes;      // bytes used in it
  uint32_t* block_ptr_ = nullptr;  // the index block being filled
  size_t count_ = 0;
  std::vector<Site> sites_;
  std::vector<uint32_t> next_;   // per site: the site that followed it last time
  uint32_t last_site_ = 0;       // the last instruction's site (valid if sites_ is not empty)
  uint32_t predicted_ = 0;       // next_[last_site_]
  std::vector<uint32_t> table_;  // open addressing: site + 1, 0 = empty; at most half full
  std::vector<Anchor> anchors_;  // by index, ascending
  uint64_t seq_base_ = 0;        // the current prediction (as the last anchor; 0, 0 before one)
  uint64_t time_ns_ = 0;
  size_t limit_ = kRecorderLimitBytes;
  size_t reserve_ = 0;           // kRunEndReserveBytes while storing a run end, else 0
  bool full_ = false;
  uint64_t dropped_ = 0;
};

// Forwards each event to several sinks (e.g. a Recorder and a trace file).
class TeeSink final : public EventSink {
 public:
  void add(EventSink* sink) { sinks_.push_back(sink); }
  void on_event(const EventHeader& event) override {
    for (EventSink* s : sinks_) s->on_event(event);
  }
  bool full() const override {
    for (const EventSink* s : sinks_) {
      if (s->full()) return true;
    }
    return false;
  }

 private:
  std::vector<EventSink*> sinks_;
};

}  // namespace trapscope::trace
