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
// Errors: the reader throws TraceError naming the file and what is wrong (bad magic,
// unsupported version, truncation with the byte offset, unknown event type, wrong record size,
// checksum or count mismatch, missing trailer). It never returns a partially read trace.
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
};

// Writes events to a file as they arrive. finish() writes the trailer; a writer destroyed
// without finish() leaves a file the reader rejects as truncated (which is what it is).
class TraceWriter final : public EventSink {
 public:
  TraceWriter(const std::string& path, const TraceMetadata& metadata);  // throws TraceError
  ~TraceWriter() override;
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;

  void on_event(const EventHeader& event) override;  // throws TraceError on a write error
  void finish();                                     // throws TraceError

 private:
  void flush();
  std::string path_;
  int fd_ = -1;
  std::vector<uint8_t> buffer_;
  uint64_t count_ = 0;
  uint64_t hash_;
};

struct TraceFile {
  TraceMetadata metadata;
  Recorder events;
};

TraceFile read_trace(const std::string& path);  // throws TraceError
TraceFile parse_trace(const std::vector<uint8_t>& bytes, const std::string& name);

}  // namespace trapscope::trace
