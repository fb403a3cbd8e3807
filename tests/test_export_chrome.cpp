// The Chrome trace-event JSON export (trace/export_chrome.hpp, `trapscope export`,
// `run --trace-format chrome`): the output is parsed back and its structure checked — valid
// JSON, every B has its E, slices nest on each track, timestamps never go backwards on a track,
// each flow has one start and one end (start first), and the counts of slices and instants
// equal the trace's counts of the kinds they stand for.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>
#include <vector>

#include "tests/support.hpp"
#include "trace/export_chrome.hpp"
#include "trace/trace_file.hpp"

using namespace trapscope;
using nlohmann::json;

namespace {

// What a trace holds, by the kind of output it maps to ([SECTION] Tracks).
struct TraceKinds {
  uint64_t exits = 0;         // VM exits, not hypercall records: X on tid 1
  uint64_t instructions = 0;  // X on tid 2
  uint64_t instants = 0;      // every other event: i on tid 1
  uint64_t cpl_changes = 0, mode_changes = 0;  // B on tids 3 and 4
};

TraceKinds kinds_of(const std::string& path) {
  TraceKinds k;
  trace::TraceReader r(path);
  uint8_t cpl = trace::kCplUnknown;
  auto mode = trace::CpuMode::kUnknown;
  while (const trace::EventHeader* e = r.next()) {
    if (e->type == trace::EventType::kVmExit && !(e->flags & trace::kExitFlagHypercallRecord)) {
      ++k.exits;
    } else if (e->type == trace::EventType::kInstruction) {
      ++k.instructions;
    } else {
      ++k.instants;
    }
    if (e->cpl != trace::kCplUnknown && e->cpl != cpl) ++k.cpl_changes, cpl = e->cpl;
    if (e->cpu_mode != trace::CpuMode::kUnknown && e->cpu_mode != mode) {
      ++k.mode_changes, mode = e->cpu_mode;
    }
  }
  return k;
}

// What the structure check counted.
struct Shape {
  std::map<int, uint64_t> x, i, b, e;  // per tid
  uint64_t flows = 0, counters = 0, metadata = 0;
  std::set<std::string> counter_names;
  json other;
};

// Timestamps are µs with three decimals: compared in ns to stay exact.
int64_t ns(const json& v) { return std::llround(v.get<double>() * 1000.0); }

// Parses a Chrome trace-event JSON file and checks its structure (the file's invariants that
// ui.perfetto.dev relies on); returns what it counted.
Shape check_chrome(const std::string& path) {
  const auto bytes = test::read_file(path);
  json doc;
  REQUIRE_NOTHROW(doc = json::parse(bytes.begin(), bytes.end()));
  REQUIRE(doc.is_object());
  REQUIRE(doc["traceEvents"].is_array());
  REQUIRE(doc["otherData"].is_object());
  Shape s;
  s.other = doc["otherData"];
  std::map<int, int64_t> last_ts;                        // per tid: slices and instants
  std::map<int, std::vector<int64_t>> open_x;            // per tid: ends of enclosing X slices
  std::map<int, std::vector<std::string>> open_b;        // per tid: open B slices
  std::map<std::string, int64_t> counter_ts;             // per counter
  std::map<uint64_t, std::pair<int, int>> flow_seen;     // bind_id → (outs, ins)
  std::map<uint64_t, int64_t> flow_out_ts;
  for (const json& ev : doc["traceEvents"]) {
    const std::string ph = ev.at("ph");
    REQUIRE(ev.at("pid") == 1);
    const int tid = ev.at("tid");
    const int64_t ts = ns(ev.at("ts"));
    if (ph == "M") {
      ++s.metadata;
      continue;
    }
    if (ph == "C") {
      ++s.counters;
      const std::string name = ev.at("name");
      s.counter_names.insert(name);
      REQUIRE(ev.at("args").is_object());
      if (counter_ts.count(name)) CHECK(ts >= counter_ts[name]);
      counter_ts[name] = ts;
      continue;
    }
    INFO("event " << ev.dump());
    if (last_ts.count(tid)) REQUIRE(ts >= last_ts[tid]);  // never backwards on a track
    last_ts[tid] = ts;
    auto& stack = open_x[tid];
    while (!stack.empty() && stack.back() <= ts && !(ph == "i" && stack.back() == ts)) {
      stack.pop_back();
    }
    if (ph == "X") {
      ++s.x[tid];
      const int64_t end = ts + ns(ev.at("dur"));
      REQUIRE(end >= ts);
      if (!stack.empty()) REQUIRE(end <= stack.back());  // nests in the slice around it
      stack.push_back(end);
      if (ev.contains("bind_id")) {
        const uint64_t id = ev["bind_id"];
        if (ev.value("flow_out", false)) {
          ++flow_seen[id].first;
          flow_out_ts[id] = ts;
        }
        if (ev.value("flow_in", false)) {
          ++flow_seen[id].second;
          REQUIRE(flow_seen[id].first == 1);  // the start comes first
          REQUIRE(flow_out_ts[id] <= ts);
        }
      }
    } else if (ph == "i") {
      ++s.i[tid];
      REQUIRE(ev.at("s") == "t");
      REQUIRE(ev.at("args").is_object());
    } else if (ph == "B") {
      ++s.b[tid];
      open_b[tid].push_back(ev.at("name"));
    } else if (ph == "E") {
      ++s.e[tid];
      REQUIRE_FALSE(open_b[tid].empty());  // every E closes a B
      open_b[tid].pop_back();
    } else {
      FAIL("unexpected phase " << ph);
    }
  }
  for (const auto& [tid, open] : open_b) {
    INFO("tid " << tid);
    CHECK(open.empty());  // every B has its E
  }
  for (const auto& [id, n] : flow_seen) {
    INFO("flow " << id);
    CHECK(n.first == 1);
    CHECK(n.second == 1);
    s.flows += n.first == 1 && n.second == 1;
  }
  return s;
}

std::string export_file(const std::string& trace_path, const std::string& name) {
  const std::string out = test::temp_path(name);
  std::FILE* f = std::fopen(out.c_str(), "wb");
  REQUIRE(f != nullptr);
  const trace::ChromeClock clock = trace::chrome_clock_for(trace_path);
  const auto counts = trace::export_chrome(trace_path, clock, f, out);
  std::fclose(f);
  CHECK(counts.dropped == 0);
  return out;
}

uint64_t on(const std::map<int, uint64_t>& per_tid, int tid) {
  const auto it = per_tid.find(tid);
  return it == per_tid.end() ? 0 : it->second;
}

void check_counts(const Shape& s, const TraceKinds& k) {
  CHECK(on(s.x, 1) == k.exits);
  CHECK(on(s.i, 1) == k.instants);
  CHECK(on(s.b, 3) == k.cpl_changes);
  CHECK(on(s.b, 4) == k.mode_changes);
  CHECK(s.e == s.b);
}

}  // namespace

TEST_CASE("export chrome: a simulator trace with instructions, on the instruction clock",
          "[export][unit]") {
  // boot goes from real to protected to long mode: mode slices, and exits for its console.
  auto b = test::guest_backend("boot", /*record_instructions=*/true);
  const std::string trace_path = test::temp_path("boot.trace");
  test::write_sim_trace(*b, trace_path, "boot");
  const TraceKinds k = kinds_of(trace_path);
  REQUIRE(k.instructions > 1000);
  REQUIRE(k.exits > 0);
  REQUIRE(k.mode_changes >= 3);
  REQUIRE(trace::chrome_clock_for(trace_path) == trace::ChromeClock::kInstructions);

  const Shape s = check_chrome(export_file(trace_path, "boot.json"));
  check_counts(s, k);
  CHECK(s.x.at(2) == k.instructions);  // one slice per instruction
  // Each exit's instruction retires right after it: every exit gets its flow arrow.
  CHECK(s.flows == k.exits);
  CHECK(s.counter_names.count("VM exits"));
  CHECK(s.other.at("clock").get<std::string>().find("instructions") != std::string::npos);
  CHECK(s.other.at("backend") == "sim");
  CHECK(s.other.at("guest") == "boot");
}

TEST_CASE("export chrome: a simulator trace without instructions uses the host clock",
          "[export][unit]") {
  auto b = test::guest_backend("rings", /*record_instructions=*/false);
  const std::string trace_path = test::temp_path("rings.trace");
  test::write_sim_trace(*b, trace_path, "rings");
  const TraceKinds k = kinds_of(trace_path);
  REQUIRE(k.instructions == 0);
  REQUIRE(k.cpl_changes >= 2);  // rings goes to CPL 3 and back
  REQUIRE(trace::chrome_clock_for(trace_path) == trace::ChromeClock::kHost);
  const Shape s = check_chrome(export_file(trace_path, "rings.json"));
  check_counts(s, k);
  CHECK(s.x.at(2) == k.exits);  // a guest-code slice before each exit
  CHECK(s.flows == k.exits);
  CHECK(s.other.at("clock").get<std::string>().find("CLOCK_MONOTONIC") != std::string::npos);
}

TEST_CASE("export chrome: a KVM trace whose exit slices last the VMM's handling time",
          "[export][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  const std::string trace_path = test::temp_path("hello-kvm.trace");
  const auto run = test::run_trapscope({"run", "hello", "--backend", "kvm", "-q", "--trace",
                                        trace_path});
  REQUIRE(run.exit_code == 0);
  const TraceKinds k = kinds_of(trace_path);
  REQUIRE(k.exits > 0);
  const std::string out = test::temp_path("hello-kvm.json");
  const auto exp = test::run_trapscope({"export", trace_path, "--format", "chrome", "-o", out});
  INFO(exp.err);
  REQUIRE(exp.exit_code == 0);
  const Shape s = check_chrome(out);
  check_counts(s, k);
  CHECK(s.flows == k.exits);
  CHECK(s.other.at("backend") == "kvm");
  // The X slices of tid 1 carry handle_ns as their duration, to the ns.
  const auto bytes = test::read_file(out);
  const json doc = json::parse(bytes.begin(), bytes.end());
  uint64_t checked = 0;
  for (const json& ev : doc["traceEvents"]) {
    if (ev["ph"] == "X" && ev["tid"] == 1) {
      CHECK(ns(ev["dur"]) == ev["args"]["handle_ns"].get<int64_t>());
      ++checked;
    }
  }
  CHECK(checked == k.exits);
}

TEST_CASE("run --trace-format chrome writes the same export as run --trace + export",
          "[export][cli]") {
  const std::string bin = test::temp_path("pv.trace"), direct = test::temp_path("pv-direct.json");
  const std::vector<std::string> run = {"run", "rings", "--backend", "sim", "-q",
                                        "--record-instructions"};
  auto a = run;
  a.insert(a.end(), {"--trace", bin});
  REQUIRE(test::run_trapscope(a).exit_code == 0);
  auto c = run;
  c.insert(c.end(), {"--trace", direct, "--trace-format", "chrome"});
  const auto r = test::run_trapscope(c);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const Shape from_run = check_chrome(direct);
  const Shape from_export = check_chrome(export_file(bin, "pv-export.json"));
  CHECK(from_run.x == from_export.x);
  CHECK(from_run.i == from_export.i);
  CHECK(from_run.b == from_export.b);
  CHECK(from_run.flows == from_export.flows);
  CHECK(from_run.counters == from_export.counters);
  check_counts(from_run, kinds_of(bin));

  // To standard output: only the JSON there, the summary on stderr.
  for (const char* out : {"-", "/dev/stdout"}) {
    const auto piped = test::run_trapscope({"export", bin, "--format", "chrome", "-o", out});
    CHECK(piped.exit_code == 0);
    CHECK(json::accept(piped.out));
    CHECK(piped.err.find("events ->") != std::string::npos);
  }

  const auto no_file = test::run_trapscope({"run", "hello", "--trace-format", "chrome"});
  CHECK(no_file.exit_code == 2);
  CHECK(no_file.err.find("needs --trace FILE") != std::string::npos);
}

TEST_CASE("export: bad input is refused with the reader's error, exit 2, no output left",
          "[export][cli]") {
  auto b = test::guest_backend("hello", /*record_instructions=*/false);
  const std::string good = test::temp_path("hello.trace");
  test::write_sim_trace(*b, good, "hello");
  auto bytes = test::read_file(good);
  const std::string cut = test::temp_path("hello-cut.trace");
  bytes.resize(bytes.size() - 30);  // into the last record
  test::write_file(cut, bytes);
  const std::string out = test::temp_path("cut.json");
  const auto r = test::run_trapscope({"export", cut, "--format", "chrome", "-o", out});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("truncated") != std::string::npos);
  CHECK(std::fopen(out.c_str(), "rb") == nullptr);  // nothing written

  const std::string junk = test::write_temp("junk.trace", "not a trace file at all");
  const auto j = test::run_trapscope({"export", junk, "--format", "chrome", "-o", out});
  CHECK(j.exit_code == 2);
  CHECK(j.err.find("junk.trace") != std::string::npos);

  const auto p = test::run_trapscope({"export", good, "--format", "perfetto", "-o", out});
  CHECK(p.exit_code == 2);
  CHECK(p.err.find("--format chrome") != std::string::npos);

  const auto w = test::run_trapscope(
      {"export", good, "--format", "chrome", "-o", "/nonexistent-dir/x.json"});
  CHECK(w.exit_code == 6);
  CHECK(w.err.find("cannot create") != std::string::npos);

  // A device is written directly and never removed on failure (an earlier version unlinked
  // the output after a failed write: /dev/full itself, when run as root).
  struct stat st {};
  if (::stat("/dev/full", &st) == 0 && S_ISCHR(st.st_mode)) {
    const auto full = test::run_trapscope({"export", good, "--format", "chrome", "-o", "/dev/full"});
    CHECK(full.exit_code == 6);
    CHECK(full.err.find("No space left") != std::string::npos);
    REQUIRE(::stat("/dev/full", &st) == 0);
    CHECK(S_ISCHR(st.st_mode));
  }
  // A regular file is replaced only by a complete export; a failed one leaves it as it was.
  const std::string kept = test::write_temp("kept.json", "previous contents");
  CHECK(test::run_trapscope({"export", cut, "--format", "chrome", "-o", kept}).exit_code == 2);
  const auto before = test::read_file(kept);
  CHECK(std::string(before.begin(), before.end()) == "previous contents");
  CHECK(test::run_trapscope({"export", good, "--format", "chrome", "-o", kept}).exit_code == 0);
  check_chrome(kept);
  const std::string temp_prefix = std::filesystem::path(kept).filename().string() + ".";
  for (const auto& entry :
       std::filesystem::directory_iterator(std::filesystem::path(kept).parent_path())) {
    CHECK(entry.path().filename().string().rfind(temp_prefix, 0) != 0);  // no temporary left
  }
}

namespace {

trace::VmExitEvent kvm_exit(uint64_t seq, uint64_t time_ns, uint32_t handle_ns, uint8_t cpl) {
  trace::VmExitEvent e{};
  e.header = trace::make_header<trace::VmExitEvent>(trace::EventType::kVmExit);
  e.header.seq = seq;
  e.header.time_ns = time_ns;
  e.header.cpl = cpl;
  e.header.cpu_mode = trace::CpuMode::kReal16;
  e.header.rip = 0x8000 + seq;
  e.reason = static_cast<uint32_t>(trace::ExitReason::kHlt);
  e.handle_ns = handle_ns;
  e.insn_len = 1;
  e.insn[0] = 0xF4;  // hlt
  return e;
}

}  // namespace

TEST_CASE("ChromeTraceWriter: crafted times (backwards, overlapping exits) still nest",
          "[export][unit]") {
  const std::string out = test::temp_path("crafted.json");
  std::FILE* f = std::fopen(out.c_str(), "wb");
  REQUIRE(f);
  trace::ChromeTraceWriter w(f, out, {}, trace::ChromeClock::kHost);
  // Exit 1 handled for 5 µs, exit 2 only 1 µs later, exit 3 back in time, then a page walk.
  for (const auto& e : {kvm_exit(0, 1'000'000, 5'000, 0), kvm_exit(1, 1'001'000, 100, 3),
                        kvm_exit(2, 900'000, 2'000, 0)}) {
    w.on_event(e.header);
  }
  trace::PageWalkEvent walk{};
  walk.header = trace::make_header<trace::PageWalkEvent>(trace::EventType::kPageWalk);
  walk.header.time_ns = 0;
  w.on_event(walk.header);
  w.finish();
  std::fclose(f);
  const Shape s = check_chrome(out);
  CHECK(s.x.at(1) == 3);
  CHECK(s.i.at(1) == 1);
  CHECK(s.b.at(3) == 3);  // CPL 0, 3, 0
  CHECK(s.flows == 3);
  CHECK(s.counter_names == std::set<std::string>{"VM exits", "TLB misses"});
}

TEST_CASE("ChromeTraceWriter: at its size limit it drops events and stays valid JSON",
          "[export][unit]") {
  const std::string out = test::temp_path("limited.json");
  std::FILE* f = std::fopen(out.c_str(), "wb");
  REQUIRE(f);
  const uint64_t limit = 256 << 10;
  trace::ChromeTraceWriter w(f, out, {}, trace::ChromeClock::kHost, limit);
  for (uint64_t i = 0; i < 20'000; ++i) {
    const auto e = kvm_exit(i, 1'000 * i, 100, static_cast<uint8_t>(i % 2 ? 3 : 0));
    w.on_event(e.header);
  }
  w.finish();
  std::fclose(f);
  CHECK(w.limit_reached());
  CHECK(w.counts().dropped > 0);
  CHECK(w.counts().bytes <= limit);
  const Shape s = check_chrome(out);
  CHECK(s.x.at(1) + w.counts().dropped == 20'000);
}

TEST_CASE("export: a large trace streams in bounded memory", "[export][cli]") {
  // compute with every instruction recorded: 400,000 instruction events, ~90 MB of JSON.
  const std::string big = test::temp_path("compute.trace");
  REQUIRE(test::run_trapscope({"run", "compute", "--backend", "sim", "-q", "--record-instructions",
                               "--max-instructions", "400000", "--trace", big})
              .exit_code == 4);  // the instruction limit
  REQUIRE(kinds_of(big).instructions == 400'000);
  // A child's ru_maxrss includes what it shared with this (large) process before exec, so the
  // export runs under /usr/bin/time (Debian's `time`), which reports its own child's peak.
  if (access("/usr/bin/time", X_OK) != 0) SKIP_TEST("/usr/bin/time (Debian package time) is missing");
  const std::string out = test::temp_path("compute.json");
  const auto e = test::run_command({"/usr/bin/time", "-f", "maxrss_kib=%M", TRAPSCOPE_EXE,
                                    "export", big, "--format", "chrome", "-o", out});
  INFO(e.err);
  REQUIRE(e.exit_code == 0);
  const auto at = e.err.rfind("maxrss_kib=");
  REQUIRE(at != std::string::npos);
  const long rss_kib = std::stol(e.err.substr(at + 11));
  const uint64_t out_bytes = std::filesystem::file_size(out);
  std::remove(out.c_str());
  INFO("output " << out_bytes << " bytes, peak RSS " << rss_kib << " KiB");
  REQUIRE(out_bytes > (64u << 20));  // far more than the memory bound below
  // ~10 MiB measured: the program, one read and one write buffer. Under AddressSanitizer its
  // quarantine of freed blocks (256 MiB by default: each event's strings are freed) and shadow
  // memory dominate: 549 MiB measured; the Release build checks the real bound.
#if defined(__SANITIZE_ADDRESS__)
  CHECK(rss_kib < 640 * 1024);
#else
  CHECK(rss_kib < 32 * 1024);
#endif
}

TEST_CASE("export chrome: every technique and paging mode keeps the structure",
          "[export][cli]") {
  struct Case {
    std::vector<std::string> args;
    const char* counter;  // a counter the trace must produce
  };
  const std::vector<Case> cases = {
      {{"kernelops", "--technique", "bt", "--max-instructions", "20000"}, "translation cache"},
      // Shadow paging records the VMM's software walks, not the processor's: no TLB counter.
      {{"paging", "--paging", "shadow"}, "VM exits"},
      {{"paging", "--paging", "ept"}, "TLB misses"},
      {{"popek", "--technique", "trap-emulate"}, "VM exits"},
      {{"popek", "--technique", "vt"}, "VM exits"},
      {{"pv-ptes", "--technique", "pv", "--backend", "sim"}, "VM exits"},
  };
  for (const Case& c : cases) {
    const std::string trace_path = test::temp_path("technique.trace");
    std::vector<std::string> argv = {"run"};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    argv.insert(argv.end(), {"-q", "--trace", trace_path});
    INFO(argv[1] << " " << argv[2] << " " << argv[3]);
    const auto r = test::run_trapscope(argv);
    REQUIRE((r.exit_code == 0 || r.exit_code == 4));
    const Shape s = check_chrome(export_file(trace_path, "technique.json"));
    check_counts(s, kinds_of(trace_path));
    CHECK(s.counter_names.count(c.counter));
  }
}
