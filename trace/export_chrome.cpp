#include "trace/export_chrome.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <span>

#include "x86/disasm.hpp"

namespace trapscope::trace {
namespace {

constexpr int kPid = 1;
// tids of the vCPU's tracks ([SECTION] Tracks).
constexpr int kTidVcpu = 1, kTidGuest = 2, kTidCpl = 3, kTidMode = 4;
constexpr size_t kBufferBytes = size_t{1} << 20;
constexpr uint64_t kBucket = 1'000'000;  // a rate counter's bucket: 1 ms (1000 instructions)
constexpr uint64_t kUnit = 1'000;        // one instruction on the kInstructions clock (1 µs)
constexpr uint64_t kLimitMargin = 64 << 10;  // room kept under max_bytes for finish()

std::string disasm(const uint8_t* bytes, size_t len, size_t max, CpuMode mode, uint64_t addr) {
  if (len == 0) return "(instruction bytes not readable)";
  return x86::disassemble({bytes, std::min(len, max)}, mode, addr).text;
}

// Compact JSON; bytes that are not UTF-8 (a guest file's name) become U+FFFD instead of throwing.
std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string instant_name(const EventHeader& h) {
  switch (h.type) {
    case EventType::kVmExit: return "hypercall";  // the record after its doorbell's exit
    case EventType::kRunEnd:
      return "run end: " + std::string(to_string(reinterpret_cast<const RunEndEvent&>(h).reason));
    case EventType::kException:
      return "exception " +
             std::to_string(reinterpret_cast<const ExceptionEvent&>(h).vector);
    case EventType::kRingTransition: {
      const auto& e = reinterpret_cast<const RingTransitionEvent&>(h);
      return "CPL " + std::to_string(e.from_cpl) + " -> " + std::to_string(e.to_cpl);
    }
    case EventType::kVmTransition:
      return (h.flags & kVirtFlagEntry) ? "VT-x VM entry" : "VT-x VM exit";
    default: return std::string(to_string(h.type));
  }
}

}  // namespace

ChromeTraceWriter::ChromeTraceWriter(std::FILE* out, std::string out_name,
                                     const TraceMetadata& m, ChromeClock clock,
                                     uint64_t max_bytes)
    : out_(out), out_name_(std::move(out_name)), clock_(clock), max_bytes_(max_bytes) {
  buf_.reserve(kBufferBytes + (64 << 10));
  const bool insn = clock_ == ChromeClock::kInstructions;
  nlohmann::json other = nlohmann::json::parse(metadata_json(m));
  other["clock"] = insn ? "guest instructions retired: 1 us on the timeline = 1 instruction"
                        : "host CLOCK_MONOTONIC, microseconds since the first event";
  other["pid_tid"] =
      "pid 1 = the VM; tid 1 vCPU 0 (exits, events), 2 guest code, 3 CPL, 4 CPU mode";
  put("{\"displayTimeUnit\":\"");
  put(insn ? "ms" : "ns");
  put("\",\n\"otherData\":");
  put(dump(other));
  put(",\n\"traceEvents\":[\n");
  // Names and order of the tracks (M events).
  auto meta = [&](const char* what, int tid, const nlohmann::json& args) {
    begin_record('M', tid, 0);
    put(",\"name\":\"");
    put(what);
    put("\",\"args\":");
    put(dump(args));
    end_record();
    ++counts_.metadata;
  };
  std::string process = "guest " + m.guest + " (" + m.backend;
  if (!m.host.empty() && m.host != m.backend) process += ", " + m.host;
  meta("process_name", kTidVcpu, {{"name", process + ")"}});
  const char* names[] = {"vCPU 0",
                         insn ? "vCPU 0 guest instructions" : "vCPU 0 guest code (run to exit)",
                         "vCPU 0 CPL", "vCPU 0 CPU mode"};
  for (int tid = kTidVcpu; tid <= kTidMode; ++tid) {
    meta("thread_name", tid, {{"name", names[tid - 1]}});
    meta("thread_sort_index", tid, {{"sort_index", tid}});
  }
  drain();
}

ChromeTraceWriter::~ChromeTraceWriter() = default;

void ChromeTraceWriter::begin_record(char ph, int tid, uint64_t t) {
  put(first_record_ ? "{\"ph\":\"" : ",\n{\"ph\":\"");
  first_record_ = false;
  buf_ += ph;
  put("\",\"ts\":");
  put_ts(t);
  put(",\"pid\":");
  put(std::to_string(kPid));
  put(",\"tid\":");
  put(std::to_string(tid));
}

void ChromeTraceWriter::end_record() {
  buf_ += '}';
  if (buf_.size() >= kBufferBytes) drain();
}

void ChromeTraceWriter::put_string(std::string_view s) {
  put(dump(nlohmann::json(s)));
}

// A version-2 flow's end on the current record: "bind_id" and "flow_out" or "flow_in".
void ChromeTraceWriter::put_flow(uint64_t flow, const char* direction) {
  put(",\"bind_id\":");
  put(std::to_string(flow));
  put(",\"");
  put(direction);
  put("\":true");
}

void ChromeTraceWriter::put_ts(uint64_t t) {
  char b[32];
  std::snprintf(b, sizeof b, "%llu.%03llu", static_cast<unsigned long long>(t / 1000),
                static_cast<unsigned long long>(t % 1000));
  put(b);
}

void ChromeTraceWriter::drain() {
  if (buf_.empty()) return;
  if (std::fwrite(buf_.data(), 1, buf_.size(), out_) != buf_.size()) {
    throw ExportWriteError(out_name_ + ": write error: " + std::strerror(errno));
  }
  counts_.bytes += buf_.size();
  buf_.clear();
}

uint64_t ChromeTraceWriter::clock_of(const EventHeader& e) {
  uint64_t t;
  if (clock_ == ChromeClock::kInstructions) {
    t = instructions_ * kUnit;
  } else {
    if (!have_base_) {
      have_base_ = true;
      base_ns_ = e.time_ns;
    }
    t = e.time_ns >= base_ns_ ? e.time_ns - base_ns_ : 0;
  }
  last_t_ = std::max(last_t_, t);  // never backwards ([SECTION] Clock)
  return last_t_;
}

void ChromeTraceWriter::slice_states(const EventHeader& e, uint64_t t) {
  auto change = [&](int tid, bool open, const std::string& name) {
    if (open) {
      begin_record('E', tid, t);
      end_record();
      ++counts_.ends;
    }
    begin_record('B', tid, t);
    put(",\"name\":");
    put_string(name);
    end_record();
    ++counts_.begins;
  };
  if (e.cpl != kCplUnknown && e.cpl != cpl_) {
    change(kTidCpl, cpl_ != kCplUnknown, "CPL " + std::to_string(e.cpl));
    cpl_ = e.cpl;
  }
  if (e.cpu_mode != CpuMode::kUnknown && e.cpu_mode != mode_) {
    change(kTidMode, mode_ != CpuMode::kUnknown, std::string(to_string(e.cpu_mode)));
    mode_ = e.cpu_mode;
  }
}

void ChromeTraceWriter::add_rate(Rate& r, uint64_t t) {
  const uint64_t b = t / kBucket;
  if (!r.started || b != r.bucket) {
    if (r.started) close_rate(r, b > r.bucket + 1);
    r.started = true;
    r.bucket = b;
    r.count = 0;
  }
  ++r.count;
}

// Writes the rate of r's bucket at its start and, when the next bucket with events is not the
// next one (`gap`, or the end), a 0 at the next bucket's start: one 0 for a run of empty buckets.
void ChromeTraceWriter::close_rate(Rate& r, bool gap) {
  const char* key = clock_ == ChromeClock::kInstructions ? "per 1000 instructions" : "per ms";
  for (int i = 0; i < (gap ? 2 : 1); ++i) {
    begin_record('C', kTidVcpu, (r.bucket + i) * kBucket);
    put(",\"name\":\"");
    put(r.name);
    put("\",\"args\":{\"");
    put(key);
    put("\":");
    put(std::to_string(i == 0 ? r.count : 0));
    buf_ += '}';
    end_record();
    ++counts_.counters;
  }
}

void ChromeTraceWriter::write_guest_slice(const VmExitEvent& e, uint64_t end, uint64_t flow) {
  const uint64_t start = have_exit_end_ ? std::min(exit_end_, end) : 0;
  begin_record('X', kTidGuest, start);
  put(",\"dur\":");
  put_ts(end - start);
  put(",\"name\":");
  put_string(disasm(e.insn, e.insn_len, sizeof e.insn, e.header.cpu_mode, e.insn_addr));
  char rip[48];
  std::snprintf(rip, sizeof rip, ",\"args\":{\"exiting_rip\":\"0x%llx\"}",
                static_cast<unsigned long long>(e.header.rip));
  put(rip);
  put_flow(flow, "flow_out");
  end_record();
  ++counts_.complete;
}

void ChromeTraceWriter::write_exit(const VmExitEvent& e, uint64_t t, const std::string& args,
                                   uint64_t flow) {
  const uint64_t dur = clock_ == ChromeClock::kHost ? e.handle_ns : 0;
  begin_record('X', kTidVcpu, t);
  put(",\"dur\":");
  put_ts(dur);
  put(",\"name\":");
  const std::string_view reason = exit_reason_name(e.reason);
  put_string("VM exit " + (reason == "?" ? std::to_string(e.reason) : std::string(reason)));
  put(",\"args\":");
  put(args);
  if (flow) {
    put_flow(flow, "flow_in");
    ++counts_.flows;
  }
  end_record();
  ++counts_.complete;
  exit_end_ = t + dur;
  have_exit_end_ = true;
}

void ChromeTraceWriter::write_instruction(const InstructionEvent& e, uint64_t t,
                                          const std::string& args, uint64_t flow) {
  begin_record('X', kTidGuest, t);
  put(",\"dur\":");
  put_ts(kUnit);
  put(",\"name\":");
  put_string(disasm(e.bytes, e.len, sizeof e.bytes, e.header.cpu_mode, e.header.rip));
  put(",\"args\":");
  put(args);
  if (flow) put_flow(flow, "flow_out");
  end_record();
  ++counts_.complete;
}

// kInstructions: the pending exit, without a flow (its instruction did not follow it).
void ChromeTraceWriter::flush_pending() {
  if (!pending_) return;
  pending_ = false;
  write_exit(pending_exit_, pending_t_, pending_args_, 0);
}

void ChromeTraceWriter::on_event(const EventHeader& e) {
  if (finished_) throw ExportWriteError(out_name_ + ": an event after the end of the export");
  ++counts_.events;
  if (e.size != event_size(e.type) || e.type == EventType::kMax) {
    throw TraceError(out_name_ + ": an event of type " +
                     std::to_string(static_cast<unsigned>(e.type)) + " with size " +
                     std::to_string(e.size) + " (trace/event.hpp kEventSize)");
  }
  if (max_bytes_ && counts_.bytes + buf_.size() + kLimitMargin > max_bytes_) {
    ++counts_.dropped;
    return;
  }
  const uint64_t t = clock_of(e);
  const bool exit = e.type == EventType::kVmExit && !(e.flags & kExitFlagHypercallRecord);
  if (exit) flush_pending();  // one pending exit at most
  slice_states(e, t);
  const std::string args = args_.format(e);
  switch (e.type) {
    case EventType::kInstruction: {
      const auto& in = reinterpret_cast<const InstructionEvent&>(e);
      ++instructions_;  // t is the count before it: the instruction spans [t, t + 1)
      if (pending_ && in.header.rip == pending_exit_.header.rip) {
        pending_ = false;  // the instruction that caused the pending exit: a flow between them
        const uint64_t flow = next_flow_++;
        write_instruction(in, t, args, flow);
        write_exit(pending_exit_, pending_t_, pending_args_, flow);
      } else {
        flush_pending();
        write_instruction(in, t, args, 0);
      }
      return;
    }
    case EventType::kVmExit:
      if (exit) {
        const auto& x = reinterpret_cast<const VmExitEvent&>(e);
        add_rate(exits_, t);
        if (clock_ == ChromeClock::kInstructions) {
          pending_ = true;  // its instruction retires after it: the flow starts there
          pending_exit_ = x;
          pending_t_ = t;
          pending_args_ = args;
        } else {
          uint64_t start = t;
          if (have_exit_end_) start = std::max(start, exit_end_);  // nest ([SECTION] Clock)
          last_t_ = std::max(last_t_, start);
          const uint64_t flow = next_flow_++;
          write_guest_slice(x, start, flow);
          write_exit(x, start, args, flow);
        }
        return;
      }
      break;
    case EventType::kPageWalk:
      if (!(e.flags & kWalkByVmm)) add_rate(tlb_misses_, t);
      break;
    case EventType::kNestedWalk: add_rate(tlb_misses_, t); break;
    case EventType::kBtTranslate:
    case EventType::kBtInvalidate: {
      if (e.type == EventType::kBtTranslate) {
        ++tcache_units_;
      } else {
        tcache_units_ -= std::min<uint64_t>(
            tcache_units_, reinterpret_cast<const BtInvalidateEvent&>(e).units);
      }
      begin_record('C', kTidVcpu, t);
      put(",\"name\":\"translation cache\",\"args\":{\"units\":");
      put(std::to_string(tcache_units_));
      buf_ += '}';
      end_record();
      ++counts_.counters;
      break;
    }
    default: break;
  }
  begin_record('i', kTidVcpu, t);
  put(",\"s\":\"t\",\"name\":");
  put_string(instant_name(e));
  put(",\"args\":");
  put(args);
  end_record();
  ++counts_.instants;
}

void ChromeTraceWriter::finish() {
  if (finished_) return;
  flush_pending();
  finished_ = true;
  for (const int tid : {kTidCpl, kTidMode}) {
    if (tid == kTidCpl ? cpl_ != kCplUnknown : mode_ != CpuMode::kUnknown) {
      begin_record('E', tid, std::max(last_t_, exit_end_));
      end_record();
      ++counts_.ends;
    }
  }
  for (Rate* r : {&exits_, &tlb_misses_}) {
    if (r->started) close_rate(*r, true);
  }
  put("\n]}\n");
  drain();
  if (std::fflush(out_) != 0) {
    throw ExportWriteError(out_name_ + ": write error: " + std::strerror(errno));
  }
}

ChromeClock chrome_clock_for(const std::string& trace_path) {
  bool instructions = false;
  TraceReader check(trace_path);
  while (const EventHeader* e = check.next()) {
    instructions |= e->type == EventType::kInstruction;
  }
  return instructions ? ChromeClock::kInstructions : ChromeClock::kHost;
}

ChromeExportCounts export_chrome(const std::string& trace_path, ChromeClock clock,
                                 std::FILE* out, const std::string& out_name) {
  TraceReader r(trace_path);
  ChromeTraceWriter w(out, out_name, r.metadata(), clock);
  while (const EventHeader* e = r.next()) w.on_event(*e);
  w.finish();
  return w.counts();
}

}  // namespace trapscope::trace
