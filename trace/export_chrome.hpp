// trace/export_chrome.hpp — events as a Chrome trace-event JSON file, the format that
// ui.perfetto.dev and chrome://tracing open (`trapscope export TRACE --format chrome`,
// `trapscope run --trace FILE --trace-format chrome`; docs/perfetto.md shows what it looks like).
//
// Format: the "JSON Object Format" of the Trace Event Format (Google, "Trace Event Format",
// docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU): an object with
// "displayTimeUnit", "otherData" (the trace's metadata and the clock) and "traceEvents", one
// object per line. Phases used: M (process and thread names, sort order), X (complete slices),
// B/E (CPL and CPU-mode slices), i (thread-scoped instants), C (counters), and version-2 flows
// ("bind_id" with "flow_out" on the source slice and "flow_in" on the target, as Perfetto's
// JSON importer, src/trace_processor/importers/json, and the Catapult viewer read them).
//
// [SECTION] Tracks (pid 1 is the VM; one vCPU, tids 1–4, because a trace holds one vCPU)
//   tid 1 "vCPU 0"             VM exits as X slices named "VM exit <KVM reason>", their duration
//                              the VMM's handling time (VmExitEvent::handle_ns; 0 where the trace
//                              has none: the simulator's VMM does not measure it); every other
//                              event kind but instructions as an instant (i) named after its
//                              type ("page_walk", "exception 14", "CPL 0 -> 3", "hypercall" for
//                              a hypercall record, "run end: …").
//   tid 2 "vCPU 0 guest"       with instruction events: each retired instruction as an X slice of
//                              one clock unit named by its disassembly; without: the guest's run
//                              between two exits as an X slice named by the instruction that
//                              ended it. A flow arrow goes from that slice (the instruction that
//                              caused the exit) to the exit's slice on tid 1.
//   tid 3 "vCPU 0 CPL"         B/E slices "CPL n" from the CPL in every event's header.
//   tid 4 "vCPU 0 CPU mode"    B/E slices "real", "protected32", "long64", … likewise.
//   counters (process-scoped): "VM exits per ms", "TLB misses per ms" (page walks by the
//   processor, nested walks; per 1000 instructions on the instruction clock), "translation
//   cache units" (units translated minus units invalidated). A counter appears only when the
//   trace has its kind; rates are emitted at the start of each 1 ms bucket (one 0 for a run
//   of empty buckets).
//   Every event's args are its JSON-lines form (trace/printer.hpp EventFormatter, kJsonl): one
//   field table serves `show --format jsonl` and this export.
//
// [SECTION] Clock
//   kHost: host CLOCK_MONOTONIC (EventHeader::time_ns) minus the first event's, as
//   microseconds with ns precision (displayTimeUnit "ns"). kInstructions (simulator traces with
//   instruction events, `run --record-instructions`): the guest's retired-instruction count,
//   one instruction = 1 µs on the timeline; an event during instruction k (0-based) is at k.
//   The events of other simulator traces carry no instruction count, so they use kHost.
//   otherData "clock" names the clock. Timestamps never go backwards in the file: an event
//   whose time is before the one written last (a crafted trace) is moved to it, and a VM exit
//   that would start inside the previous exit's slice starts at its end, so slices nest.
//
// [SECTION] Memory and errors
//   Streaming: each event is written as it arrives, through a 1 MiB buffer; state is O(1) (one
//   pending exit for its flow). Write errors throw ExportWriteError. `max_bytes` (0: none) stops
//   writing events once the file would exceed it (dropped() counts them); finish() still
//   closes every slice, so the file stays valid JSON and every B has its E.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "trace/printer.hpp"
#include "trace/trace_file.hpp"

namespace trapscope::trace {

enum class ChromeClock { kHost, kInstructions };

// Writing the output failed (disk full, a closed pipe): the host's fault, not the trace's.
class ExportWriteError : public TraceError {
 public:
  using TraceError::TraceError;
};

// What was written, by phase (for the command's summary and the tests).
struct ChromeExportCounts {
  uint64_t events = 0;      // trace events read
  uint64_t complete = 0;    // X
  uint64_t instants = 0;    // i
  uint64_t begins = 0;      // B
  uint64_t ends = 0;        // E
  uint64_t counters = 0;    // C
  uint64_t flows = 0;       // flow arrows (each a flow_out and a flow_in)
  uint64_t metadata = 0;    // M
  uint64_t dropped = 0;     // events not written past max_bytes
  uint64_t bytes = 0;       // bytes written
};

class ChromeTraceWriter final : public EventSink {
 public:
  // `out` stays the caller's (not closed). Writes the header and the M events at once.
  ChromeTraceWriter(std::FILE* out, std::string out_name, const TraceMetadata& metadata,
                    ChromeClock clock, uint64_t max_bytes = 0);
  ~ChromeTraceWriter() override;
  ChromeTraceWriter(const ChromeTraceWriter&) = delete;
  ChromeTraceWriter& operator=(const ChromeTraceWriter&) = delete;

  void on_event(const EventHeader& event) override;  // throws ExportWriteError
  // Flushes the pending exit, closes the open slices and counters, ends the JSON and flushes
  // `out`. Throws ExportWriteError. Call once; on_event() after it is an error.
  void finish();

  const ChromeExportCounts& counts() const { return counts_; }
  bool limit_reached() const { return counts_.dropped > 0; }

 private:
  struct Rate {  // a per-bucket rate counter
    const char* name;
    bool started = false;
    uint64_t bucket = 0, count = 0;
  };
  uint64_t clock_of(const EventHeader& e);  // the event's time in clock units (ns or insn×1000)
  void slice_states(const EventHeader& e, uint64_t t);
  void add_rate(Rate& r, uint64_t t);
  void close_rate(Rate& r, bool gap);
  void write_exit(const VmExitEvent& e, uint64_t t, const std::string& args, uint64_t flow);
  void write_guest_slice(const VmExitEvent& e, uint64_t end, uint64_t flow);
  void write_instruction(const InstructionEvent& e, uint64_t t, const std::string& args,
                         uint64_t flow);
  void flush_pending();
  void begin_record(char ph, int tid, uint64_t t);
  void end_record();
  void put(std::string_view s) { buf_.append(s); }
  void put_string(std::string_view s);  // a JSON string literal
  void put_ts(uint64_t t);              // clock units as µs with 3 decimals
  void put_flow(uint64_t flow, const char* direction);
  void drain();

  std::FILE* out_;
  std::string out_name_;
  ChromeClock clock_;
  uint64_t max_bytes_;
  std::string buf_;
  bool first_record_ = true;
  bool finished_ = false;
  EventFormatter args_{{Format::kJsonl, true}};
  ChromeExportCounts counts_;
  // clock
  bool have_base_ = false;
  uint64_t base_ns_ = 0;
  uint64_t instructions_ = 0;  // instruction events seen (kInstructions)
  uint64_t last_t_ = 0;        // the latest time written (monotonic)
  uint64_t exit_end_ = 0;      // end of the last VM exit slice on tid 1
  bool have_exit_end_ = false;
  // state slices
  uint8_t cpl_ = kCplUnknown;
  CpuMode mode_ = CpuMode::kUnknown;
  // the exit waiting for its instruction (kInstructions: the instruction retires after it)
  bool pending_ = false;
  VmExitEvent pending_exit_{};
  uint64_t pending_t_ = 0;
  std::string pending_args_;
  uint64_t next_flow_ = 1;
  Rate exits_{"VM exits"}, tlb_misses_{"TLB misses"};
  uint64_t tcache_units_ = 0;
};

// Reads a whole trace file, checking it (throws the reader's TraceError), and returns its
// clock: kInstructions for a trace with instruction events, else kHost.
ChromeClock chrome_clock_for(const std::string& trace_path);

// Streams a trace file (checked by chrome_clock_for first: a file that changed since throws)
// to `out`. Memory: the reader's buffer and the writer's.
ChromeExportCounts export_chrome(const std::string& trace_path, ChromeClock clock,
                                 std::FILE* out, const std::string& out_name);

}  // namespace trapscope::trace
