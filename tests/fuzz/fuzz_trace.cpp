// Fuzz target: the trace-file reader (trace/trace_file.hpp read_trace, what `trapscope show`
// reads) and the printers it feeds (trace/printer.hpp, text and JSON lines), and the Chrome
// trace-event export (trace/export_chrome.hpp, `trapscope export`). A trace is untrusted input:
// the reader must reject it with a TraceError or return events that the printers can print and
// that export to valid JSON (parsed back here).
//
// Input: byte 0, then the file. Byte 0 bit 1 picks the export's clock (instructions, host). When
// byte 0 is odd, the trailer's event count and checksum are
// first rewritten to match the records (when the file walks to a trailer), so that mutated
// records reach the printers instead of stopping at the checksum, as a crafted file would
// (`show` on the file as written to the scratch path reproduces it).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_input.hpp"
#include "trace/export_chrome.hpp"
#include "trace/printer.hpp"
#include "trace/trace_file.hpp"

using namespace trapscope;

namespace {

// One scratch file per process (the reader takes a path).
const std::string& scratch_path() {
  static const std::string path = [] {
    const char* dir = std::getenv("TMPDIR");
    std::string p = std::string(dir && *dir ? dir : "/tmp") + "/fuzz_trace.XXXXXX";
    const int fd = ::mkstemp(p.data());
    if (fd < 0) fuzz::invariant_failed("fuzz_trace", "cannot create a scratch file");
    ::close(fd);
    std::atexit([] { ::unlink(scratch_path().c_str()); });
    return p;
  }();
  return path;
}

// The trailer a writer would have written for these records (trace/trace_file.hpp: header 32
// bytes with the metadata length at byte 12, records, trailer "TSTRAILR" + count + FNV-1a 64
// over the records' 64-bit little-endian words). Leaves a file that does not walk alone.
void fix_trailer(std::vector<uint8_t>& b) {
  constexpr size_t kHeader = 32, kTrailer = 24;
  if (b.size() < kHeader + kTrailer) return;
  uint32_t meta_len;
  std::memcpy(&meta_len, b.data() + 12, 4);
  size_t pos = kHeader + meta_len;
  if (meta_len > b.size() || pos > b.size()) return;
  uint64_t hash = 0xcbf29ce484222325ull, count = 0;
  while (b.size() - pos >= sizeof(trace::EventHeader) &&
         std::memcmp(b.data() + pos, "TSTRAILR", 8) != 0) {
    trace::EventHeader h;
    std::memcpy(&h, b.data() + pos, sizeof h);
    const uint16_t want = trace::event_size(h.type);
    if (want == 0 || h.size != want || b.size() - pos < want) return;
    for (size_t i = 0; i < want; i += 8) {  // sizes are multiples of 8 (trace/event.hpp)
      uint64_t w;
      std::memcpy(&w, b.data() + pos + i, 8);
      hash = (hash ^ w) * 0x100000001b3ull;
    }
    pos += want;
    ++count;
  }
  if (b.size() - pos != kTrailer || std::memcmp(b.data() + pos, "TSTRAILR", 8) != 0) return;
  std::memcpy(b.data() + pos + 8, &count, 8);
  std::memcpy(b.data() + pos + 16, &hash, 8);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::vector<uint8_t> file(data + 1, data + size);
  if (data[0] & 1) fix_trailer(file);
  const std::string& path = scratch_path();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) fuzz::invariant_failed("fuzz_trace", "cannot write the scratch file");
  if (!file.empty()) std::fwrite(file.data(), 1, file.size(), f);
  std::fclose(f);
  try {
    const trace::TraceFile t = trace::read_trace(path);
    trace::EventFormatter text({trace::Format::kText, true});
    trace::EventFormatter jsonl({trace::Format::kJsonl, true});
    for (size_t i = 0; i < t.events.size(); ++i) {
      const trace::EventHeader& e = t.events.at(i);
      (void)text.format(e);
      (void)jsonl.format(e);
    }
    char* out = nullptr;
    size_t out_size = 0;
    std::FILE* mem = ::open_memstream(&out, &out_size);
    if (!mem) fuzz::invariant_failed("fuzz_trace", "open_memstream failed");
    {
      trace::ChromeTraceWriter chrome(
          mem, "memory", t.metadata,
          (data[0] & 2) ? trace::ChromeClock::kInstructions : trace::ChromeClock::kHost);
      for (size_t i = 0; i < t.events.size(); ++i) chrome.on_event(t.events.at(i));
      chrome.finish();
    }
    std::fclose(mem);
    const bool valid = nlohmann::json::accept(std::string_view(out, out_size));
    std::free(out);
    if (!valid) fuzz::invariant_failed("fuzz_trace", "the Chrome JSON export is not valid JSON");
  } catch (const trace::TraceError&) {
    // rejected with a reason: what a bad file must get
  }
  return 0;
}
