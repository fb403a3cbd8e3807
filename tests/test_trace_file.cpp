// tests/test_trace_file.cpp — the in-memory Recorder, the binary trace file (writer, reader and
// every error the reader must report), the text/JSON-lines printer and ExitStats.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "guests/guest_catalog.hpp"
#include "tests/support.hpp"
#include "trace/event.hpp"
#include "trace/exit_stats.hpp"
#include "trace/input_file.hpp"
#include "trace/printer.hpp"
#include "trace/recorder.hpp"
#include "trace/trace_file.hpp"
#include "visualizer/core/trace_reexec.hpp"

using namespace trapscope;
using trace::EventType;
using trace::RunEndEvent;
using trace::TraceError;
using trace::VmExitEvent;
using Bytes = std::vector<unsigned char>;

namespace {

VmExitEvent io_exit(uint64_t seq, uint16_t port, uint64_t value, uint8_t dir = 1) {
  VmExitEvent e{};
  e.header = trace::make_header<VmExitEvent>(EventType::kVmExit);
  e.header.seq = seq;
  e.header.time_ns = 1'000'000 + seq * 1000;
  e.header.rip = 0x8000 + seq;
  e.header.cpl = 0;
  e.header.cpu_mode = trace::CpuMode::kReal16;
  e.reason = 2;
  e.handle_ns = 100 + static_cast<uint32_t>(seq);
  e.insn_addr = 0x8000 + seq;
  e.insn_len = 1;
  e.insn[0] = dir ? 0xEE : 0xEC;  // out dx, al / in al, dx
  e.payload.io.port = port;
  e.payload.io.size = 1;
  e.payload.io.direction = dir;
  e.payload.io.count = 1;
  e.payload.io.value = value;
  return e;
}

VmExitEvent hlt_exit(uint64_t seq, uint32_t handle_ns = 50) {
  VmExitEvent e{};
  e.header = trace::make_header<VmExitEvent>(EventType::kVmExit);
  e.header.seq = seq;
  e.header.rip = 0x9000;
  e.header.cpl = 0;
  e.header.cpu_mode = trace::CpuMode::kLong64;
  e.header.flags = trace::kExitFlagRipAdvanced;
  e.reason = 5;
  e.handle_ns = handle_ns;
  e.insn_addr = 0x9000;
  e.insn_len = 1;
  e.insn[0] = 0xF4;
  return e;
}

RunEndEvent run_end(uint64_t seq, trace::RunEndReason reason, uint32_t code = 0) {
  RunEndEvent e{};
  e.header = trace::make_header<RunEndEvent>(EventType::kRunEnd);
  e.header.seq = seq;
  e.header.time_ns = 9'000'000;
  e.header.rip = 0x9001;
  e.header.cpu_mode = trace::CpuMode::kLong64;
  e.header.cpl = 0;
  e.reason = reason;
  e.exit_code = code;
  e.exits = seq;
  e.duration_ns = 8'000'000;
  return e;
}

trace::TraceMetadata sample_metadata() {
  trace::TraceMetadata m;
  m.tool_version = "0.1.0-test";
  m.backend = "kvm";
  m.guest = "guests/hello.bin \"quoted\" \xc3\xa9";
  m.mode = "long";
  m.load_address = 0x8000;
  m.memory_bytes = 16ull << 20;
  m.host = "kvm_pvm";
  m.technique = "trap-emulate";
  m.deprivilege = 3;
  m.paging = "ept";
  m.tlb_entries = 64;
  return m;
}

struct Sample {
  std::vector<VmExitEvent> exits;
  RunEndEvent end;
};

Sample sample_events() {
  Sample s;
  s.exits.push_back(io_exit(0, 0xE9, 'A'));
  s.exits.push_back(io_exit(1, 0x3FD, 0x60, 0));
  s.exits.push_back(hlt_exit(2));
  s.end = run_end(3, trace::RunEndReason::kHalted);
  return s;
}

// Writes the sample trace and returns its path.
std::string write_sample(const std::string& name) {
  const std::string path = test::temp_path(name);
  const Sample s = sample_events();
  trace::TraceWriter w(path, sample_metadata());
  for (const auto& e : s.exits) w.on_event(e.header);
  w.on_event(s.end.header);
  w.finish();
  return path;
}

size_t metadata_len(const Bytes& b) {
  uint32_t m;
  std::memcpy(&m, b.data() + 12, 4);
  return m;
}

// Byte offset of the first record.
size_t records_start(const Bytes& b) { return 32 + metadata_len(b); }

std::string write_bytes(const std::string& name, const Bytes& bytes) {
  const std::string path = test::temp_path(name);
  test::write_file(path, bytes);
  return path;
}

// Reads `bytes` through a file (so the real read path is used); removes the file.
trace::TraceFile read_bytes(const std::string& name, const Bytes& bytes) {
  const std::string path = write_bytes(name, bytes);
  struct Remove {
    std::string p;
    ~Remove() { ::unlink(p.c_str()); }
  } rm{path};
  return trace::read_trace(path);
}

}  // namespace

// [SECTION] Recorder

TEST_CASE("Recorder stores 10,000 mixed events and returns each intact", "[unit][trace-file]") {
  trace::Recorder rec;
  REQUIRE(rec.empty());
  constexpr size_t kN = 10'000;
  for (size_t i = 0; i < kN; ++i) {
    if (i % 3 == 2) {
      const RunEndEvent e = run_end(i, trace::RunEndReason::kGuestExit, static_cast<uint32_t>(i));
      rec.on_event(e.header);
    } else {
      const VmExitEvent e = io_exit(i, static_cast<uint16_t>(i & 0xFFFF), i * 7, i % 2);
      rec.on_event(e.header);
    }
  }
  REQUIRE(rec.size() == kN);
  REQUIRE_FALSE(rec.empty());
  size_t bad = 0;
  for (size_t i = 0; i < kN; ++i) {
    const trace::EventHeader& h = rec.at(i);
    if (h.seq != i) ++bad;
    if (i % 3 == 2) {
      const RunEndEvent want = run_end(i, trace::RunEndReason::kGuestExit, static_cast<uint32_t>(i));
      const RunEndEvent* got = rec.get<RunEndEvent>(i, EventType::kRunEnd);
      if (got == nullptr || std::memcmp(got, &want, sizeof want) != 0) ++bad;
      if (rec.get<VmExitEvent>(i, EventType::kVmExit) != nullptr) ++bad;
    } else {
      const VmExitEvent want = io_exit(i, static_cast<uint16_t>(i & 0xFFFF), i * 7, i % 2);
      const VmExitEvent* got = rec.get<VmExitEvent>(i, EventType::kVmExit);
      if (got == nullptr || std::memcmp(got, &want, sizeof want) != 0) ++bad;
      if (rec.get<RunEndEvent>(i, EventType::kRunEnd) != nullptr) ++bad;
    }
  }
  REQUIRE(bad == 0);
  REQUIRE_THROWS_AS(rec.at(kN), std::out_of_range);
  rec.clear();
  REQUIRE(rec.empty());
  REQUIRE(rec.size() == 0);
  const VmExitEvent e = hlt_exit(0);
  rec.on_event(e.header);
  REQUIRE(rec.size() == 1);
  REQUIRE(std::memcmp(rec.get<VmExitEvent>(0, EventType::kVmExit), &e, sizeof e) == 0);
}

TEST_CASE("Recorder crosses chunks and index blocks, rewind() reuses its memory",
          "[unit][trace-file]") {
  // 1.2 Mi events: past an index block (1 Mi entries) and across several 8 MiB chunks, with
  // records of two sizes so that chunk ends fall at different offsets.
  constexpr size_t kN = (size_t{1} << 20) + 200'000;
  // Every instruction distinct (a site each: the Recorder's worst case).
  auto insn = [](size_t i, size_t salt) {
    trace::InstructionEvent e{};
    e.header = trace::make_header<trace::InstructionEvent>(EventType::kInstruction);
    e.header.seq = i;
    e.header.rip = 0x1000 + i + salt;
    e.len = static_cast<uint8_t>(1 + i % 15);
    for (unsigned k = 0; k < e.len; ++k) e.bytes[k] = static_cast<uint8_t>(i + salt + k);
    return e;
  };
  auto fill = [&](trace::Recorder& rec, size_t salt) {
    for (size_t i = 0; i < kN; ++i) {
      if (i % 7 == 3) {
        const VmExitEvent e = io_exit(i, static_cast<uint16_t>(salt), i * 3, i % 2);
        rec.on_event(e.header);
      } else {
        const trace::InstructionEvent e = insn(i, salt);
        rec.on_event(e.header);
      }
    }
  };
  auto count_bad = [&](const trace::Recorder& rec, size_t salt) {
    size_t bad = 0;
    for (size_t i = 0; i < kN; ++i) {
      if (i % 7 == 3) {
        const VmExitEvent want = io_exit(i, static_cast<uint16_t>(salt), i * 3, i % 2);
        const VmExitEvent* got = rec.get<VmExitEvent>(i, EventType::kVmExit);
        if (got == nullptr || std::memcmp(got, &want, sizeof want) != 0) ++bad;
      } else {
        const trace::InstructionEvent want = insn(i, salt);
        const auto* got = rec.get<trace::InstructionEvent>(i, EventType::kInstruction);
        if (got == nullptr || std::memcmp(got, &want, sizeof want) != 0) ++bad;
      }
    }
    return bad;
  };
  trace::Recorder rec;
  fill(rec, 0);
  REQUIRE(rec.size() == kN);
  CHECK(count_bad(rec, 0) == 0);
  const size_t held = rec.memory_bytes();
  CHECK(rec.instruction_sites() == kN - kN / 7);
  CHECK(held >= (kN - kN / 7) * 32);  // a 32-byte site per distinct instruction

  rec.rewind();
  CHECK(rec.empty());
  CHECK(rec.memory_bytes() == held);
  REQUIRE_THROWS_AS(rec.at(0), std::out_of_range);
  fill(rec, 5);
  REQUIRE(rec.size() == kN);
  CHECK(count_bad(rec, 5) == 0);
  CHECK(rec.memory_bytes() == held);  // the same chunks, none added

  trace::Recorder moved = std::move(rec);
  CHECK(rec.empty());
  CHECK(rec.memory_bytes() == 0);
  REQUIRE(moved.size() == kN);
  CHECK(count_bad(moved, 5) == 0);
  moved.clear();
  CHECK(moved.memory_bytes() == 0);
}

TEST_CASE("Recorder keeps a repeated instruction in 4 bytes and returns every field intact",
          "[unit][trace-file]") {
  // A loop of 50 instructions, one of them rewritten now and then (self-modifying code: the
  // same RIP with other bytes), the host time changing every 4096 events (as the simulator
  // samples it), a seq that jumps once, and a VM exit every 10,000 events.
  constexpr size_t kN = 3u << 20;
  auto event = [](size_t i) {
    if (i % 10'000 == 9'999) {
      return std::optional<VmExitEvent>(io_exit(i, 0xE9, i, 1));
    }
    return std::optional<VmExitEvent>();
  };
  auto insn = [](size_t i) {
    trace::InstructionEvent e{};
    e.header = trace::make_header<trace::InstructionEvent>(EventType::kInstruction);
    const size_t k = i % 50;
    e.header.cpl = static_cast<uint8_t>(k % 4);
    e.header.cpu_mode = trace::CpuMode::kProtected32;
    e.header.seq = i < kN / 2 ? i : i + 1000;
    e.header.time_ns = 1'000'000 + (i / 4096) * 7919 - (i % 4096 == 4095 ? 500 : 0);
    e.header.rip = 0x7C00 + 3 * k;
    e.len = 3;
    e.bytes[0] = static_cast<uint8_t>(k);
    e.bytes[1] = k == 7 ? static_cast<uint8_t>(i / 100'000 % 2) : 0x90;
    e.bytes[2] = 0xC3;
    return e;
  };
  trace::Recorder rec;
  for (size_t i = 0; i < kN; ++i) {
    if (const auto x = event(i)) {
      rec.on_event(x->header);
    } else {
      const trace::InstructionEvent e = insn(i);
      rec.on_event(e.header);
    }
  }
  REQUIRE(rec.size() == kN);
  CHECK(rec.instruction_sites() == 51);
  // 52 bytes per instruction in the previous layout; here 4 + the 4 MiB index blocks' and the
  // 8 MiB chunk's rounding.
  CHECK(rec.memory_bytes() < kN * 8);
  size_t bad = 0;
  for (size_t i = 0; i < kN; ++i) {
    if (const auto x = event(i)) {
      const VmExitEvent* got = rec.get<VmExitEvent>(i, EventType::kVmExit);
      if (got == nullptr || std::memcmp(got, &*x, sizeof *x) != 0) ++bad;
    } else {
      const trace::InstructionEvent want = insn(i);
      const auto* got = rec.get<trace::InstructionEvent>(i, EventType::kInstruction);
      if (got == nullptr || std::memcmp(got, &want, sizeof want) != 0) ++bad;
    }
  }
  CHECK(bad == 0);

  // A rebuilt instruction record outlives kInstructionSlots - 1 further accesses.
  const trace::EventHeader& first = rec.at(0);
  for (size_t i = 1; i < trace::Recorder::kInstructionSlots; ++i) (void)rec.at(i);
  const trace::InstructionEvent want = insn(0);
  CHECK(std::memcmp(&first, &want, sizeof want) == 0);
}

TEST_CASE("TeeSink forwards each event to every sink", "[unit][trace-file]") {
  trace::Recorder a, b;
  trace::TeeSink tee;
  tee.add(&a);
  tee.add(&b);
  const VmExitEvent e = io_exit(0, 0xE9, 'x');
  tee.on_event(e.header);
  REQUIRE(a.size() == 1);
  REQUIRE(b.size() == 1);
  REQUIRE(std::memcmp(b.get<VmExitEvent>(0, EventType::kVmExit), &e, sizeof e) == 0);
}

// [SECTION] Trace file round trip

TEST_CASE("TraceWriter -> read_trace round trip", "[unit][trace-file]") {
  const std::string path = write_sample("roundtrip.trace");
  const Sample s = sample_events();
  const trace::TraceMetadata m = sample_metadata();

  const trace::TraceFile t = trace::read_trace(path);
  CHECK(t.metadata.tool == "trapscope");
  CHECK(t.metadata.tool_version == m.tool_version);
  CHECK(t.metadata.backend == m.backend);
  CHECK(t.metadata.guest == m.guest);
  CHECK(t.metadata.mode == m.mode);
  CHECK(t.metadata.load_address == m.load_address);
  CHECK(t.metadata.memory_bytes == m.memory_bytes);
  CHECK(t.metadata.host == m.host);
  CHECK(t.metadata.technique == "trap-emulate");
  CHECK(t.metadata.deprivilege == 3);
  CHECK(t.metadata.paging == "ept");
  CHECK(t.metadata.tlb_entries == 64);

  REQUIRE(t.events.size() == 4);
  for (size_t i = 0; i < 3; ++i) {
    const VmExitEvent* got = t.events.get<VmExitEvent>(i, EventType::kVmExit);
    REQUIRE(got != nullptr);
    CHECK(std::memcmp(got, &s.exits[i], sizeof(VmExitEvent)) == 0);
  }
  const RunEndEvent* end = t.events.get<RunEndEvent>(3, EventType::kRunEnd);
  REQUIRE(end != nullptr);
  CHECK(std::memcmp(end, &s.end, sizeof(RunEndEvent)) == 0);

  // Layout: 32-byte header, metadata, 3 x 88 + 56 bytes of records, 24-byte trailer.
  const Bytes bytes = test::read_file(path);
  REQUIRE(bytes.size() == 32 + metadata_len(bytes) + 3 * 88 + 56 + 24);
  CHECK(std::memcmp(bytes.data(), "TRAPSCOP", 8) == 0);
  CHECK(bytes[8] == trace::kTraceFormatVersion);  // the version, little-endian
  CHECK(bytes[9] == 0);
  CHECK(bytes[10] == 32);
  CHECK(std::memcmp(bytes.data() + bytes.size() - 24, "TSTRAILR", 8) == 0);
  CHECK(bytes[bytes.size() - 16] == 4);  // event count
  const auto meta = nlohmann::json::parse(bytes.begin() + 32, bytes.begin() + 32 + metadata_len(bytes));
  CHECK(meta.at("host") == "kvm_pvm");
  ::unlink(path.c_str());
}

TEST_CASE("Trace file round trip: no events, and 10,000 events (several buffer flushes)",
          "[unit][trace-file]") {
  SECTION("no events") {
    const std::string path = test::temp_path("empty-run.trace");
    {
      trace::TraceWriter w(path, trace::TraceMetadata{});
      w.finish();
    }
    const trace::TraceFile t = trace::read_trace(path);
    CHECK(t.events.empty());
    CHECK(t.metadata.tool == "trapscope");
    CHECK(t.metadata.backend.empty());
    ::unlink(path.c_str());
  }
  SECTION("10,000 events") {
    const std::string path = test::temp_path("big.trace");
    constexpr size_t kN = 10'000;
    {
      trace::TraceWriter w(path, sample_metadata());
      for (size_t i = 0; i + 1 < kN; ++i) {
        const VmExitEvent e = io_exit(i, 0xE9, i);
        w.on_event(e.header);
      }
      const RunEndEvent end = run_end(kN - 1, trace::RunEndReason::kExitLimit);
      w.on_event(end.header);
      w.finish();
      w.finish();  // a second finish does nothing
    }
    const trace::TraceFile t = trace::read_trace(path);
    REQUIRE(t.events.size() == kN);
    size_t bad = 0;
    for (size_t i = 0; i + 1 < kN; ++i) {
      const VmExitEvent want = io_exit(i, 0xE9, i);
      const VmExitEvent* got = t.events.get<VmExitEvent>(i, EventType::kVmExit);
      if (got == nullptr || std::memcmp(got, &want, sizeof want) != 0) ++bad;
    }
    CHECK(bad == 0);
    const RunEndEvent* end = t.events.get<RunEndEvent>(kN - 1, EventType::kRunEnd);
    REQUIRE(end != nullptr);
    CHECK(end->reason == trace::RunEndReason::kExitLimit);
    ::unlink(path.c_str());
  }
}

// [SECTION] Reader errors

TEST_CASE("read_trace: a missing file", "[unit][trace-file]") {
  const std::string path = test::temp_path("does-not-exist.trace");
  REQUIRE_THROWS_AS(trace::read_trace(path), TraceError);
  REQUIRE_THROWS_WITH(trace::read_trace(path), Catch::Contains(path) &&
                                                   Catch::Contains("cannot open") &&
                                                   Catch::Contains("No such file"));
}

TEST_CASE("TraceWriter: a path that cannot be created", "[unit][trace-file]") {
  const std::string path = test::temp_path("no-such-dir") + "/x.trace";
  REQUIRE_THROWS_AS(trace::TraceWriter(path, trace::TraceMetadata{}), TraceError);
  REQUIRE_THROWS_WITH(trace::TraceWriter(path, trace::TraceMetadata{}),
                      Catch::Contains("cannot create") && Catch::Contains(path));
}

TEST_CASE("read_trace: an empty file", "[unit][trace-file]") {
  REQUIRE_THROWS_AS(read_bytes("empty.trace", {}), TraceError);
  REQUIRE_THROWS_WITH(read_bytes("empty.trace", {}),
                      Catch::Contains("empty.trace") &&
                          Catch::Contains("not a trapscope trace file"));
}

TEST_CASE("read_trace: wrong magic", "[unit][trace-file]") {
  const std::string path = write_sample("magic.trace");
  Bytes b = test::read_file(path);
  ::unlink(path.c_str());
  b[0] = 'X';
  REQUIRE_THROWS_WITH(read_bytes("magic.trace", b), Catch::Contains("TRAPSCOP") &&
                                                         Catch::Contains("magic"));
  // A text file.
  const std::string text = "hello, this is not a trace file at all, just some text\n";
  REQUIRE_THROWS_WITH(read_bytes("text.trace", Bytes(text.begin(), text.end())),
                      Catch::Contains("not a trapscope trace file"));
}

TEST_CASE("read_trace: unsupported version", "[unit][trace-file]") {
  const std::string path = write_sample("version.trace");
  Bytes b = test::read_file(path);
  ::unlink(path.c_str());
  b[8] = trace::kTraceFormatVersion + 1;
  const std::string next = std::to_string(trace::kTraceFormatVersion + 1);
  REQUIRE_THROWS_WITH(read_bytes("version.trace", b),
                      Catch::Contains("version " + next + " is not supported") &&
                          Catch::Contains("reads version " +
                                          std::to_string(trace::kTraceFormatVersion)));
  b[8] = 0;
  b[9] = 1;  // 256
  REQUIRE_THROWS_WITH(read_bytes("version.trace", b), Catch::Contains("version 256"));
}

TEST_CASE("read_trace: a file cut anywhere throws TraceError and never crashes",
          "[unit][trace-file]") {
  const std::string path = write_sample("cut.trace");
  const Bytes full = test::read_file(path);
  ::unlink(path.c_str());
  const size_t rec = records_start(full);

  // Every length shorter than the full file, in memory (fast) …
  size_t not_thrown = 0, wrong_type = 0;
  for (size_t cut = 0; cut < full.size(); ++cut) {
    const std::vector<uint8_t> part(full.begin(), full.begin() + static_cast<ptrdiff_t>(cut));
    try {
      (void)trace::parse_trace(part, "cut.trace");
      ++not_thrown;
    } catch (const TraceError&) {
    } catch (...) {
      ++wrong_type;
    }
  }
  CHECK(not_thrown == 0);
  CHECK(wrong_type == 0);

  // … and a few through real files, with the message checked.
  SECTION("in the middle of the first record") {
    const Bytes part(full.begin(), full.begin() + static_cast<ptrdiff_t>(rec + 40));
    REQUIRE_THROWS_WITH(read_bytes("cut1.trace", part),
                        Catch::Contains("truncated in record 0") &&
                            Catch::Contains("at byte " + std::to_string(rec)) &&
                            Catch::Contains("40 remain"));
  }
  SECTION("in the middle of the header of the second record") {
    const Bytes part(full.begin(), full.begin() + static_cast<ptrdiff_t>(rec + 88 + 10));
    REQUIRE_THROWS_WITH(read_bytes("cut2.trace", part),
                        Catch::Contains("truncated after 1 events") &&
                            Catch::Contains("at byte " + std::to_string(rec + 88)));
  }
  SECTION("in the middle of the RunEnd record") {
    const Bytes part(full.begin(), full.begin() + static_cast<ptrdiff_t>(rec + 3 * 88 + 50));
    REQUIRE_THROWS_WITH(read_bytes("cut3.trace", part),
                        Catch::Contains("truncated in record 3") && Catch::Contains("56 bytes"));
  }
  SECTION("in the middle of the trailer") {
    const Bytes part(full.begin(), full.end() - 5);
    REQUIRE_THROWS_WITH(read_bytes("cut4.trace", part),
                        Catch::Contains("corrupt trailer") && Catch::Contains("19 bytes"));
  }
  SECTION("in the middle of the metadata") {
    const Bytes part(full.begin(), full.begin() + 40);
    REQUIRE_THROWS_WITH(read_bytes("cut5.trace", part),
                        Catch::Contains("truncated header") && Catch::Contains("file size 40"));
  }
}

TEST_CASE("read_trace: a file cut inside its 32-byte header is reported as truncated",
          "[unit][trace-file]") {
  // Bug: parse_trace reports a file shorter than the header as having no "TRAPSCOP" magic even
  // when the magic is there, so `trapscope show` tells the user the file is not a trace at all
  // rather than that it was cut short.
  const std::string path = write_sample("cut-header.trace");
  const Bytes full = test::read_file(path);
  ::unlink(path.c_str());
  const Bytes part(full.begin(), full.begin() + 20);
  REQUIRE(std::memcmp(part.data(), "TRAPSCOP", 8) == 0);
  REQUIRE_THROWS_WITH(read_bytes("cut-header.trace", part), Catch::Contains("truncated"));
}

TEST_CASE("read_trace: no trailer (writer destroyed without finish)", "[unit][trace-file]") {
  const std::string path = test::temp_path("unfinished.trace");
  {
    trace::TraceWriter w(path, sample_metadata());
    const VmExitEvent e = io_exit(0, 0xE9, 'A');
    w.on_event(e.header);
    w.on_event(e.header);
  }
  const Bytes b = test::read_file(path);
  REQUIRE(b.size() == records_start(b) + 2 * 88);
  REQUIRE_THROWS_WITH(trace::read_trace(path),
                      Catch::Contains(path) && Catch::Contains("truncated after 2 events") &&
                          Catch::Contains("no trailer"));
  ::unlink(path.c_str());

  // The same with the trailer of a good file cut off.
  const std::string good = write_sample("notrailer.trace");
  Bytes g = test::read_file(good);
  ::unlink(good.c_str());
  g.resize(g.size() - 24);
  REQUIRE_THROWS_WITH(read_bytes("notrailer.trace", g),
                      Catch::Contains("truncated after 4 events") && Catch::Contains("no trailer"));
}

TEST_CASE("read_trace: a flipped byte inside a record fails the checksum", "[unit][trace-file]") {
  const std::string path = write_sample("flip.trace");
  const Bytes full = test::read_file(path);
  ::unlink(path.c_str());
  const size_t rec = records_start(full);
  // Payload byte of record 1, its rip, and the RunEnd's exit count.
  for (size_t off : {rec + 88 + 70, rec + 88 + 24, rec + 3 * 88 + 40}) {
    Bytes b = full;
    b[off] ^= 0x01;
    INFO("flipped byte " << off);
    REQUIRE_THROWS_WITH(read_bytes("flip.trace", b), Catch::Contains("checksum mismatch"));
  }
}

TEST_CASE("read_trace: unknown event type", "[unit][trace-file]") {
  const std::string path = write_sample("type.trace");
  const Bytes full = test::read_file(path);
  ::unlink(path.c_str());
  const size_t rec = records_start(full);
  // 0 and everything from EventType::kMax up are not event types (new types get new numbers).
  const auto first_unused = static_cast<uint8_t>(EventType::kMax);
  for (uint8_t type : {uint8_t{0}, first_unused, uint8_t{0x7F}, uint8_t{0xFF}}) {
    Bytes b = full;
    b[rec + 88] = type;  // record 1
    REQUIRE_THROWS_WITH(read_bytes("type.trace", b),
                        Catch::Contains("corrupt record 1") &&
                            Catch::Contains("at byte " + std::to_string(rec + 88)) &&
                            Catch::Contains("unknown event type " + std::to_string(type)));
  }
}

TEST_CASE("read_trace: wrong record size", "[unit][trace-file]") {
  const std::string path = write_sample("size.trace");
  const Bytes full = test::read_file(path);
  ::unlink(path.c_str());
  const size_t rec = records_start(full);
  Bytes b = full;
  b[rec + 4] = 87;  // VmExitEvent is 88 bytes
  REQUIRE_THROWS_WITH(read_bytes("size.trace", b),
                      Catch::Contains("corrupt record 0") && Catch::Contains("size 87") &&
                          Catch::Contains("vm_exit record is 88"));
  // A RunEnd header claiming to be a VM exit's size.
  b = full;
  b[rec + 3 * 88 + 4] = 88;
  REQUIRE_THROWS_WITH(read_bytes("size.trace", b),
                      Catch::Contains("corrupt record 3") && Catch::Contains("run_end record is 56"));
}

TEST_CASE("read_trace: trailer count mismatch", "[unit][trace-file]") {
  const std::string path = write_sample("count.trace");
  Bytes b = test::read_file(path);
  ::unlink(path.c_str());
  b[b.size() - 16] = 5;
  REQUIRE_THROWS_WITH(read_bytes("count.trace", b),
                      Catch::Contains("trailer counts 5 events") &&
                          Catch::Contains("file holds 4"));
}

TEST_CASE("read_trace: bytes after the trailer", "[unit][trace-file]") {
  const std::string path = write_sample("extra.trace");
  Bytes b = test::read_file(path);
  ::unlink(path.c_str());
  b.push_back(0);
  REQUIRE_THROWS_WITH(read_bytes("extra.trace", b),
                      Catch::Contains("corrupt trailer") && Catch::Contains("25 bytes"));
}

TEST_CASE("read_trace: metadata that is not JSON, or lacks fields", "[unit][trace-file]") {
  const std::string path = write_sample("meta.trace");
  const Bytes full = test::read_file(path);
  ::unlink(path.c_str());
  const size_t mlen = metadata_len(full);

  SECTION("not JSON") {
    Bytes b = full;
    std::memset(b.data() + 32, 'x', mlen);
    REQUIRE_THROWS_WITH(read_bytes("meta.trace", b),
                        Catch::Contains("meta.trace") && Catch::Contains("corrupt metadata"));
  }
  SECTION("JSON without the fields") {
    Bytes b = full;
    std::string json = "[]";
    json.resize(mlen, ' ');
    std::memcpy(b.data() + 32, json.data(), mlen);
    REQUIRE_THROWS_WITH(read_bytes("meta.trace", b), Catch::Contains("corrupt metadata"));
    json = "{\"tool\": \"trapscope\"}";
    json.resize(mlen, ' ');
    std::memcpy(b.data() + 32, json.data(), mlen);
    REQUIRE_THROWS_WITH(read_bytes("meta.trace", b), Catch::Contains("corrupt metadata"));
  }
  SECTION("metadata length beyond the file or the limit") {
    Bytes b = full;
    const uint32_t huge = 0x00FFFFFF;
    std::memcpy(b.data() + 12, &huge, 4);
    REQUIRE_THROWS_WITH(read_bytes("meta.trace", b), Catch::Contains("metadata length 16777215"));
    const uint32_t past_end = static_cast<uint32_t>(full.size());
    std::memcpy(b.data() + 12, &past_end, 4);
    REQUIRE_THROWS_WITH(read_bytes("meta.trace", b), Catch::Contains("truncated header"));
  }
}

// [SECTION] Byte offsets, streaming, salvage, the size limit

TEST_CASE("read_trace: header, metadata and trailer errors name the byte offset",
          "[unit][trace-file]") {
  const std::string path = write_sample("offset.trace");
  const Bytes full = test::read_file(path);
  ::unlink(path.c_str());
  const size_t rec = records_start(full);
  const size_t trailer = full.size() - 24;
  const auto fails_at = [](const std::string& name, const Bytes& b, uint64_t offset) {
    INFO(name);
    REQUIRE_THROWS_WITH(read_bytes(name, b), Catch::Contains("at byte " + std::to_string(offset)));
  };
  Bytes b = full;
  b[0] = 'X';
  fails_at("magic.trace", b, 0);
  fails_at("short.trace", Bytes(full.begin(), full.begin() + 20), 20);
  b = full;
  b[8] = 9;
  fails_at("version.trace", b, 8);
  b = full;
  b[10] = 33;
  fails_at("header-size.trace", b, 10);
  b = full;
  const uint32_t huge = 0x00FFFFFF;
  std::memcpy(b.data() + 12, &huge, 4);
  fails_at("meta-limit.trace", b, 12);
  fails_at("meta-cut.trace", Bytes(full.begin(), full.begin() + 40), 12);
  b = full;
  const size_t colon = std::string(full.begin() + 32, full.end()).find(':');
  b[32 + colon] = '#';  // {"tool"#: not JSON from there
  fails_at("meta-json.trace", b, 32 + colon);
  b = full;
  std::string json = "{\"tool\": \"trapscope\"}";
  json.resize(metadata_len(full), ' ');
  std::memcpy(b.data() + 32, json.data(), json.size());
  fails_at("meta-keys.trace", b, 32);
  b = full;
  b[trailer + 8] = 5;
  fails_at("count.trace", b, trailer);
  b = full;
  b[trailer + 16] ^= 1;
  fails_at("hash.trace", b, trailer);
  b = full;
  b.push_back(0);
  fails_at("extra.trace", b, trailer);
  fails_at("notrailer.trace", Bytes(full.begin(), full.end() - 24), trailer);
  fails_at("record.trace", Bytes(full.begin(), full.begin() + static_cast<ptrdiff_t>(rec + 40)),
           rec);
}

TEST_CASE("read_trace: refuses what is not a regular file before reading it",
          "[unit][trace-file]") {
  // Bug: /dev/zero was read until std::bad_alloc (~1 GB), and a FIFO blocked forever.
  REQUIRE_THROWS_WITH(trace::read_trace("/dev/zero"),
                      Catch::Contains("/dev/zero") &&
                          Catch::Contains("not a regular file (a character device)"));
  const std::string fifo = test::temp_path("trace.fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  REQUIRE_THROWS_WITH(trace::read_trace(fifo), Catch::Contains("not a regular file (a FIFO)"));
  ::unlink(fifo.c_str());
  REQUIRE_THROWS_WITH(trace::read_trace("/tmp"),
                      Catch::Contains("not a regular file (a directory)"));
}

TEST_CASE("read_input_file: caps a file before reading it whole", "[unit][trace-file]") {
  std::string error;
  const std::string small = test::write_temp("small.txt", "0123456789");
  REQUIRE(trace::read_input_file(small, 10, "a test", &error) == "0123456789");
  CHECK_FALSE(trace::read_input_file(small, 9, "a test", &error));
  CHECK(error == "larger than 9 bytes (the limit for a test)");
  CHECK_FALSE(trace::read_input_file("/dev/zero", 1 << 20, "a test", &error));
  CHECK(error == "not a regular file (a character device)");
  CHECK_FALSE(trace::read_input_file(test::temp_path("missing.txt"), 10, "a test", &error));
  CHECK_THAT(error, Catch::Contains("cannot open: No such file"));
}

TEST_CASE("TraceReader streams a file in one buffer and gives every record back",
          "[unit][trace-file]") {
  // 40,000 events: 3.5 MB, several times the reader's buffer.
  const std::string path = test::temp_path("stream.trace");
  {
    trace::TraceWriter w(path, sample_metadata());
    for (uint64_t i = 0; i < 40'000; ++i) w.on_event(io_exit(i, 0xE9, i & 0xFF).header);
    w.on_event(run_end(40'000, trace::RunEndReason::kHalted).header);
    w.finish();
  }
  trace::TraceReader r(path);
  CHECK(r.metadata().guest == sample_metadata().guest);
  uint64_t n = 0;
  while (const trace::EventHeader* e = r.next()) {
    REQUIRE(e->seq == n);
    if (n < 40'000) {
      const VmExitEvent want = io_exit(n, 0xE9, n & 0xFF);
      REQUIRE(std::memcmp(e, &want, sizeof want) == 0);
    }
    ++n;
  }
  CHECK(n == 40'001);
  CHECK(r.next() == nullptr);
  CHECK(r.salvage_note().empty());
  ::unlink(path.c_str());
}

TEST_CASE("TraceReader salvage: a file cut anywhere after its metadata gives its whole events",
          "[unit][trace-file]") {
  const std::string path = write_sample("salvage.trace");
  const Bytes full = test::read_file(path);
  ::unlink(path.c_str());
  const size_t rec = records_start(full);
  for (size_t cut = rec; cut < full.size(); ++cut) {
    INFO("cut at " << cut);
    const Bytes part(full.begin(), full.begin() + static_cast<ptrdiff_t>(cut));
    trace::TraceReader r(part.data(), part.size(), "cut.trace", {.salvage = true});
    uint64_t n = 0;
    while (r.next() != nullptr) ++n;
    // Records: 3 VM exits of 88 bytes, then a 56-byte run end.
    const size_t whole = cut < rec + 3 * 88 ? (cut - rec) / 88 : cut < rec + 3 * 88 + 56 ? 3 : 4;
    REQUIRE(n == whole);
    const size_t kept = rec + std::min<size_t>(whole, 3) * 88 + (whole == 4 ? 56 : 0);
    CHECK(r.dropped_bytes() == cut - kept);
    CHECK_THAT(r.salvage_note(), Catch::Contains("salvaged " + std::to_string(whole) + " events") &&
                                     Catch::Contains("dropped " + std::to_string(cut - kept) +
                                                     " bytes from byte " + std::to_string(kept)));
    // Without salvage the same bytes are an error.
    REQUIRE_THROWS_AS(trace::parse_trace(part, "cut.trace"), TraceError);
  }
  // Damage in the header is not salvaged.
  Bytes b = full;
  b[8] = 9;
  REQUIRE_THROWS_WITH(trace::TraceReader(b.data(), b.size(), "v.trace", {.salvage = true}),
                      Catch::Contains("version 9"));
}

TEST_CASE("TraceWriter stops recording at its size limit and ends the file cleanly",
          "[unit][trace-file]") {
  const std::string path = test::temp_path("limit.trace");
  const uint64_t limit = 64 * 1024;
  uint64_t dropped = 0;
  {
    trace::TraceWriter w(path, sample_metadata(), limit);
    for (uint64_t i = 0; i < 10'000; ++i) w.on_event(io_exit(i, 0xE9, 'x').header);
    CHECK(w.limit_reached());
    w.on_event(run_end(10'000, trace::RunEndReason::kStopped).header);
    w.finish();
    dropped = w.dropped_events();
  }
  const Bytes b = test::read_file(path);
  CHECK(b.size() <= limit);
  CHECK(b.size() > limit - 88 - 56 - 24);
  const trace::TraceFile t = trace::read_trace(path);
  REQUIRE(t.events.size() >= 2);
  CHECK(dropped == 10'000 - (t.events.size() - 1));
  const auto* end = t.events.get<RunEndEvent>(t.events.size() - 1, EventType::kRunEnd);
  REQUIRE(end != nullptr);
  CHECK((end->header.flags & trace::kRunEndTraceLimit) != 0);
  CHECK(end->reason == trace::RunEndReason::kStopped);
  CHECK(end->header.seq == t.events.size() - 1);  // numbered after the last recorded event
  ::unlink(path.c_str());

  // Under the limit nothing changes: no mark.
  {
    trace::TraceWriter w(path, sample_metadata(), limit);
    w.on_event(io_exit(0, 0xE9, 'x').header);
    w.on_event(run_end(1, trace::RunEndReason::kHalted).header);
    w.finish();
    CHECK_FALSE(w.limit_reached());
  }
  const trace::TraceFile u = trace::read_trace(path);
  CHECK((u.events.at(1).flags & trace::kRunEndTraceLimit) == 0);
  ::unlink(path.c_str());
}

TEST_CASE("Trace metadata: guest_sha256 round trip, old files without it, bad values",
          "[unit][trace-file]") {
  const Bytes abc{'a', 'b', 'c'};
  // FIPS 180-4 example (B.1): SHA-256("abc").
  CHECK(trace::sha256_hex(std::vector<uint8_t>(abc.begin(), abc.end())) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  trace::TraceMetadata m = sample_metadata();
  m.guest_sha256 = trace::sha256_hex(std::vector<uint8_t>(abc.begin(), abc.end()));
  const std::string path = test::temp_path("sha.trace");
  {
    trace::TraceWriter w(path, m);
    w.finish();
  }
  CHECK(trace::read_trace(path).metadata.guest_sha256 == m.guest_sha256);
  // The sample (no checksum) reads as "" — as files written before the key existed.
  const std::string old = write_sample("old.trace");
  CHECK(trace::read_trace(old).metadata.guest_sha256.empty());
  ::unlink(old.c_str());
  // A value that is not a SHA-256 is refused, with the metadata's offset.
  Bytes b = test::read_file(path);
  const std::string text(b.begin(), b.end());
  b[text.find(m.guest_sha256)] = 'X';
  REQUIRE_THROWS_WITH(read_bytes("badsha.trace", b),
                      Catch::Contains("guest_sha256") && Catch::Contains("at byte 32"));
  ::unlink(path.c_str());
}

TEST_CASE("reexecution_for: a trace's guest runs only if it matches the recorded SHA-256",
          "[unit][trace-file][reexec]") {
  const auto hello = guests::find("hello");
  REQUIRE(hello);
  const std::vector<uint8_t> image(hello->image.begin(), hello->image.end());
  const std::string guest = test::temp_path("reexec-guest.bin");
  test::write_file(guest, {image.begin(), image.end()});
  trace::TraceFile t;
  t.metadata.backend = "sim";
  t.metadata.mode = "real";
  t.metadata.memory_bytes = 16ull << 20;
  t.metadata.load_address = platform::kDefaultLoadAddress;
  t.metadata.guest = guest;
  t.metadata.guest_sha256 = trace::sha256_hex(image);
  std::string why;
  CHECK(viz::reexecution_for(t, "", &why) != nullptr);

  SECTION("the file changed since the recording") {
    test::write_file(guest, {0xF4});
    CHECK(viz::reexecution_for(t, "", &why) == nullptr);
    CHECK_THAT(why, Catch::Contains("does not match the SHA-256"));
    // The user's explicit choice is run.
    CHECK(viz::reexecution_for(t, guest, &why) != nullptr);
  }
  SECTION("no checksum: a file the trace names is not run; a built-in guest is") {
    t.metadata.guest_sha256.clear();
    t.metadata.guest = "/etc/passwd";
    CHECK(viz::reexecution_for(t, "", &why) == nullptr);
    CHECK_THAT(why, Catch::Contains("no checksum") && Catch::Contains("--guest FILE"));
    CHECK(viz::reexecution_for(t, guest, &why) != nullptr);
    t.metadata.guest = "hello";
    CHECK(viz::reexecution_for(t, "", &why) != nullptr);
  }
  SECTION("a configuration from an untrusted trace is validated before anything is loaded") {
    t.metadata.memory_bytes = uint64_t{1} << 62;
    CHECK(viz::reexecution_for(t, "", &why) == nullptr);
    CHECK_THAT(why, Catch::Contains("cannot run"));
  }
  ::unlink(guest.c_str());
}

// [SECTION] Printer

TEST_CASE("EventFormatter: text and JSON lines of an IO exit", "[unit][trace-file]") {
  VmExitEvent e = io_exit(0, 0xE9, 0x41);
  e.header.rip = 0x7C00;
  e.insn_addr = 0x7C00;
  e.handle_ns = 1500;

  SECTION("text with timing") {
    trace::EventFormatter f({trace::Format::kText, true});
    const std::string line = f.format(e.header);
    CHECK_THAT(line, Catch::StartsWith("#0"));
    CHECK_THAT(line, Catch::Contains("+0.00us"));
    CHECK_THAT(line, Catch::Contains("VM exit IO"));
    CHECK_THAT(line, Catch::Contains("rip=0x7c00"));
    CHECK_THAT(line, Catch::Contains("cpl=0 real"));
    CHECK_THAT(line, Catch::Contains("out dx, al"));
    CHECK_THAT(line, Catch::Contains("port=0xe9 out size=1 value=0x41 'A'"));
    CHECK_THAT(line, Catch::EndsWith("handled in 1.50us"));
    CHECK(line.find('\n') == std::string::npos);

    // The next event's time is relative to the first.
    VmExitEvent e2 = io_exit(1, 0x3F8, '\n');
    e2.header.time_ns = e.header.time_ns + 25'000;
    e2.payload.io.count = 3;
    const std::string line2 = f.format(e2.header);
    CHECK_THAT(line2, Catch::StartsWith("#1"));
    CHECK_THAT(line2, Catch::Contains("+25.0us"));
    CHECK_THAT(line2, Catch::Contains("port=0x3f8 out size=1 count=3 value=0xa '\\n'"));
  }
  SECTION("text without timing") {
    trace::EventFormatter f({trace::Format::kText, false});
    const std::string line = f.format(e.header);
    CHECK_THAT(line, Catch::Contains("IO"));
    CHECK_THAT(line, Catch::Contains("port=0xe9"));
    CHECK_THAT(line, Catch::Contains("out dx, al"));
    CHECK(line.find("handle") == std::string::npos);
    CHECK(line.find("us") == std::string::npos);
    CHECK(line.find('+') == std::string::npos);
  }
  SECTION("JSON lines with timing") {
    trace::EventFormatter f({trace::Format::kJsonl, true});
    const std::string line = f.format(e.header);
    CHECK(line.find('\n') == std::string::npos);
    const auto j = nlohmann::json::parse(line);
    CHECK(j.at("reason") == "IO");
    CHECK(j.at("kvm_exit_reason") == 2);
    CHECK(j.at("type") == "vm_exit");
    CHECK(j.at("seq") == 0);
    CHECK(j.at("rip") == "0x7c00");
    CHECK(j.at("mode") == "real");
    CHECK(j.at("cpl") == 0);
    CHECK(j.at("insn_addr") == "0x7c00");
    CHECK(j.at("insn_bytes") == "ee");
    CHECK(j.at("disasm") == "out dx, al");
    CHECK(j.at("time_ns") == 1'000'000);
    CHECK(j.at("handle_ns") == 1500);
    CHECK(j.at("io").at("port") == 0xE9);
    CHECK(j.at("io").at("direction") == "out");
    CHECK(j.at("io").at("size") == 1);
    CHECK(j.at("io").at("count") == 1);
    CHECK(j.at("io").at("value") == 0x41);
  }
  SECTION("JSON lines without timing") {
    trace::EventFormatter f({trace::Format::kJsonl, false});
    const std::string line = f.format(e.header);
    const auto j = nlohmann::json::parse(line);
    CHECK(j.at("reason") == "IO");
    CHECK(j.at("disasm") == "out dx, al");
    CHECK_FALSE(j.contains("time_ns"));
    CHECK_FALSE(j.contains("handle_ns"));
    CHECK(line.find("time_ns") == std::string::npos);
    CHECK(line.find("handle") == std::string::npos);
  }
}

TEST_CASE("EventFormatter: RunEnd, MMIO and unreadable instruction bytes", "[unit][trace-file]") {
  SECTION("RunEnd") {
    const RunEndEvent end = run_end(3, trace::RunEndReason::kGuestExit, 7);
    trace::EventFormatter text({trace::Format::kText, false});
    CHECK(text.format(end.header) ==
          "#3     run end: guest exit code 7 at rip=0x9001 after 3 VM exits");
    trace::EventFormatter json({trace::Format::kJsonl, false});
    const auto j = nlohmann::json::parse(json.format(end.header));
    CHECK(j.at("type") == "run_end");
    CHECK(j.at("reason") == "guest exit code");
    CHECK(j.at("exit_code") == 7);
    CHECK(j.at("exits") == 3);
    CHECK_FALSE(j.contains("duration_ns"));
    trace::EventFormatter jt({trace::Format::kJsonl, true});
    CHECK(nlohmann::json::parse(jt.format(end.header)).at("duration_ns") == 8'000'000);
  }
  SECTION("MMIO read in long mode") {
    VmExitEvent e{};
    e.header = trace::make_header<VmExitEvent>(EventType::kVmExit);
    e.header.cpu_mode = trace::CpuMode::kLong64;
    e.reason = 6;
    const uint8_t insn[] = {0x48, 0x8B, 0x04, 0x25, 0x00, 0x00, 0x00, 0x40};
    std::memcpy(e.insn, insn, sizeof insn);
    e.insn_len = sizeof insn;
    e.payload.mmio.gpa = 0x40000000;
    e.payload.mmio.len = 8;
    e.payload.mmio.data = ~0ull;
    trace::EventFormatter text({trace::Format::kText, false});
    const std::string line = text.format(e.header);
    CHECK_THAT(line, Catch::Contains("VM exit MMIO"));
    CHECK_THAT(line, Catch::Contains("cpl=?"));
    CHECK_THAT(line, Catch::Contains("mov rax, [0x0000000040000000]"));
    CHECK_THAT(line, Catch::Contains("gpa=0x40000000 read len=8 data=0xffffffffffffffff"));
    trace::EventFormatter json({trace::Format::kJsonl, false});
    const auto j = nlohmann::json::parse(json.format(e.header));
    CHECK(j.at("reason") == "MMIO");
    CHECK_FALSE(j.contains("cpl"));
    CHECK(j.at("mmio").at("gpa") == "0x40000000");
    CHECK(j.at("mmio").at("direction") == "read");
    CHECK(j.at("mmio").at("data") == "0xffffffffffffffff");
  }
  SECTION("no instruction bytes") {
    VmExitEvent e = hlt_exit(0);
    e.insn_len = 0;
    trace::EventFormatter text({trace::Format::kText, false});
    CHECK_THAT(text.format(e.header), Catch::Contains("(instruction bytes not readable)"));
  }
}

// [SECTION] ExitStats

TEST_CASE("ExitStats counts VM exits per reason", "[unit][trace-file]") {
  trace::ExitStats stats;
  for (uint32_t ns : {100u, 300u, 200u}) {
    VmExitEvent e = io_exit(0, 0xE9, 'a');
    e.handle_ns = ns;
    stats.on_event(e.header);
  }
  const VmExitEvent h = hlt_exit(3, 50);
  stats.on_event(h.header);
  const RunEndEvent end = run_end(4, trace::RunEndReason::kHalted);
  stats.on_event(end.header);  // not an exit: ignored

  REQUIRE(stats.total() == 4);
  const auto& by = stats.by_reason();
  REQUIRE(by.size() == 2);
  const auto& io = by.at(2);
  CHECK(io.count == 3);
  CHECK(io.total_ns == 600);
  CHECK(io.min_ns == 100);
  CHECK(io.max_ns == 300);
  const auto& hlt = by.at(5);
  CHECK(hlt.count == 1);
  CHECK(hlt.total_ns == 50);
  CHECK(hlt.min_ns == 50);
  CHECK(hlt.max_ns == 50);

  const std::string table = stats.table();
  const size_t io_row = table.find("IO(2)");
  const size_t hlt_row = table.find("HLT(5)");
  REQUIRE(io_row != std::string::npos);
  REQUIRE(hlt_row != std::string::npos);
  CHECK(io_row < hlt_row);  // most frequent first
  CHECK_THAT(table, Catch::StartsWith("VM-EXIT"));
  CHECK_THAT(table, Catch::Contains("75.00%"));
  CHECK_THAT(table, Catch::Contains("25.00%"));
}
