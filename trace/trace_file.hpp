// trace/trace_file.hpp — the versioned binary trace file (`trapscope run --trace FILE`,
// `trapscope show FILE`).
//
// Layout (all integers little-endian):
//   header   32 bytes  magic "TRAPSCOP", u16 version (kTraceFormatVersion), u16 header size (32),
//                      u32 metadata length M, 16 reserved bytes (zero)
//   metadata M bytes   JSON object (TraceMetadata), M <= kMaxMetadataBytes
//   records            events back to back, each a struct of trace/event.hpp whose header.size
//                      must equal event_size(header.type)
//   trailer  24 bytes  magic "TSTRAILR", u64 event count, u64 FNV-1a 64 over the records' 64-bit
//                      little-endian words
//
// Errors: the reader throws TraceError naming the file, what is wrong and the byte offset where
// it is (bad magic, unsupported version, a bad header field, metadata that is not the JSON
// object, truncation, unknown event type, wrong record size, missing trailer, count or
// checksum mismatch). read_trace never returns a partially read trace; a TraceReader returns
// events as it reads them and throws at the first bad byte, or, salvaging, stops there.
//
// Size: TraceReader reads through one buffer (kReadBufferBytes), whatever the file's size
// (`trapscope show`); read_trace keeps the events in a Recorder (memory: trace/recorder.hpp).
// A trace file is read only if it is a regular file (trace/input_file.hpp). TraceWriter stops
// recording at a size limit (`run --trace-max-size`): see kRunEndTraceLimit (trace/event.hpp).
//
// Compatibility: metadata keys added later are optional (a file without them reads as the
// defaults below); guest_sha256 was added without a version change (version 2 files without
// it are read, and a version 2 reader ignores it).
#pragma once

#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "trace/recorder.hpp"

namespace trapscope::trace {

// 2: BtTranslateEvent holds the unit's guest bytes; kBtCounts.
inline constexpr uint16_t kTraceFormatVersion = 2;
inline constexpr uint32_t kMaxMetadataBytes = 1u << 20;

class TraceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What ran: written as JSON in the file header.
struct TraceMetadata {
  std::string tool = "trapscope";
  std::string tool_version;
  std::string backend;      // "kvm" or "sim"
  std::string guest;        // guest name or file path
  std::string mode;         // "real", "protected" or "long"
  uint64_t load_address = 0;
  uint64_t memory_bytes = 0;
  std::string host;         // e.g. "kvm_pvm" (what `trapscope doctor` calls the KVM module)
  // Simulator: how the guest ran, so that a trace can be re-executed exactly (files written
  // before these keys existed read as the defaults: emulation, 1, native, 0 = default TLB).
  std::string technique = "emulation";  // sim/virt/monitor.hpp: emulation, trap-emulate, vt
  unsigned deprivilege = 1;             // trap-emulate: the guest kernel's real CPL
  std::string paging = "native";        // sim/mmu.hpp: native, shadow, ept
  unsigned tlb_entries = 0;             // 0: the simulator's default
  // SHA-256 of the guest image that ran, 64 lowercase hex digits ("" in files written before
  // this key existed). Re-execution (visualizer/core/trace_reexec.hpp) runs a guest only if it
  // has this checksum, or if the user names it (`gui TRACE --guest FILE`): a trace is untrusted
  // input and must not make trapscope load and show whatever file its metadata names.
  std::string guest_sha256;
};

// The metadata as the JSON object a trace file's header holds (also the Chrome export's
// otherData, trace/export_chrome.hpp).
std::string metadata_json(const TraceMetadata& metadata);

// SHA-256 (FIPS 180-4) of `bytes` as 64 lowercase hex digits, computed by OpenSSL's libcrypto.
std::string sha256_hex(const uint8_t* bytes, size_t size);
inline std::string sha256_hex(const std::vector<uint8_t>& bytes) {
  return sha256_hex(bytes.data(), bytes.size());
}

// Writes events to a file as they arrive. finish() writes the trailer; a writer destroyed
// without finish() leaves a file the reader rejects as truncated (which is what it is), and
// that TraceReader's salvage mode reads up to its last whole event.
//
// `max_bytes` (0: no limit) bounds the file: when the next event would leave no room for a
// RunEnd record and the trailer, the writer stops recording events (limit_reached(); the run
// goes on), except the run's RunEnd, which it still writes, marked kRunEndTraceLimit and
// numbered right after the last recorded event, before the trailer. The file stays complete
// and readable and is at most max_bytes long (unless the header and metadata alone exceed it).
class TraceWriter final : public EventSink {
 public:
  TraceWriter(const std::string& path, const TraceMetadata& metadata,
              uint64_t max_bytes = 0);  // throws TraceError
  ~TraceWriter() override;
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;

  void on_event(const EventHeader& event) override;  // throws TraceError on a write error
  void finish();                                     // throws TraceError

  bool limit_reached() const { return limit_reached_; }
  uint64_t dropped_events() const { return dropped_; }  // not recorded past the limit
  uint64_t max_bytes() const { return max_bytes_; }

 private:
  void append(const EventHeader& event);
  void flush();
  std::string path_;
  int fd_ = -1;
  std::vector<uint8_t> buffer_;
  uint64_t count_ = 0;
  uint64_t hash_;
  uint64_t max_bytes_;
  uint64_t bytes_ = 0;  // header, metadata and records so far
  uint64_t next_seq_ = 0;
  bool limit_reached_ = false;
  uint64_t dropped_ = 0;
};

struct TraceReadOptions {
  // Salvage (`trapscope show --salvage`): a file cut short (a killed writer) or damaged
  // after its metadata yields its events up to the last whole one before the damage, and
  // salvage_note() says what was dropped, instead of an error. Errors in the header or
  // metadata still throw (there is nothing to salvage without them).
  bool salvage = false;
};

// Reads a trace file as a stream: the header and metadata when constructed, then one record per
// next(). Memory: one buffer of kReadBufferBytes, whatever the size of the file.
class TraceReader {
 public:
  static constexpr size_t kReadBufferBytes = size_t{1} << 20;
  using Options = TraceReadOptions;

  // A file (a regular file only); throws TraceError.
  explicit TraceReader(const std::string& path, Options options = {});
  // Bytes in memory (not copied: they must outlive the reader); `name` names them in errors.
  TraceReader(const uint8_t* bytes, size_t size, std::string name, Options options = {});
  ~TraceReader();
  TraceReader(const TraceReader&) = delete;
  TraceReader& operator=(const TraceReader&) = delete;

  const TraceMetadata& metadata() const { return metadata_; }
  // The next record, valid until the next call; nullptr after the last one (the trailer was read
  // and matches; or, salvaging, the damage was reached). Throws TraceError.
  const EventHeader* next();
  uint64_t events() const { return count_; }        // records returned so far
  uint64_t file_bytes() const { return size_; }
  uint64_t offset() const { return pos_; }           // file offset just past the last record
  const std::string& name() const { return name_; }
  // Salvaging: "" if the file was whole, else what was dropped and why.
  const std::string& salvage_note() const { return salvage_note_; }
  uint64_t dropped_bytes() const { return dropped_bytes_; }

 private:
  size_t fill(size_t want);  // makes up to `want` bytes available at pos_; returns how many
  const uint8_t* at() const { return buf_.data() + begin_; }
  void read_header();
  [[noreturn]] void fail(const std::string& what) const;
  const EventHeader* stop(const std::string& what);  // salvage: end here; else fail()

  std::string name_;
  Options options_;
  int fd_ = -1;
  const uint8_t* mem_ = nullptr;  // the bytes, for the in-memory constructor
  uint64_t size_ = 0;             // file size
  uint64_t read_ = 0;             // bytes moved into buf_ so far
  std::vector<uint8_t> buf_;
  std::vector<uint64_t> record_;  // the record next() returned, 8-byte aligned
  size_t begin_ = 0, end_ = 0;    // unconsumed bytes: buf_[begin_, end_), file offset pos_
  uint64_t pos_ = 0;
  TraceMetadata metadata_;
  uint64_t count_ = 0;
  uint64_t hash_ = 0;
  bool done_ = false;
  std::string salvage_note_;
  uint64_t dropped_bytes_ = 0;
};

struct TraceFile {
  TraceMetadata metadata;
  Recorder events;
};

TraceFile read_trace(const std::string& path);  // throws TraceError
TraceFile parse_trace(const std::vector<uint8_t>& bytes, const std::string& name);

}  // namespace trapscope::trace
