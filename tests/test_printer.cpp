// The event printer (trace/printer.cpp) on records as a trace file may hold them: every event
// type in text and JSON lines (run in the ASan/UBSan build, where a reference to a misaligned
// packed field aborts), and length fields that claim more bytes than the record has.
#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

#include "trace/event.hpp"
#include "trace/printer.hpp"

using namespace trapscope;
using trace::EventHeader;
using trace::EventType;

namespace {

// A record of `type` at the end of a heap block (ASan reports any read past it), `offset` bytes
// into it (an odd offset: every multi-byte field misaligned, as in a byte buffer), zero but for
// a long-mode header.
struct Record {
  std::unique_ptr<uint8_t[]> block;
  uint8_t* at = nullptr;
};
Record record(EventType type, size_t offset = 0) {
  const uint16_t size = trace::event_size(type);
  Record r{std::make_unique<uint8_t[]>(size + offset), nullptr};
  r.at = r.block.get() + offset;
  EventHeader h{};
  h.type = type;
  h.size = size;
  h.cpl = 3;
  h.cpu_mode = trace::CpuMode::kLong64;
  h.seq = 7;
  h.rip = 0x401000;
  std::memcpy(r.at, &h, sizeof h);
  return r;
}

const EventHeader& header(const Record& r) { return *reinterpret_cast<const EventHeader*>(r.at); }

}  // namespace

TEST_CASE("printer: every event type prints as text and as one JSON object, at any address",
          "[unit][printer]") {
  for (unsigned t = 1; t < static_cast<unsigned>(EventType::kMax); ++t) {
    const auto type = static_cast<EventType>(t);
    if (trace::event_size(type) == 0) continue;
    INFO("event type " << t);
    const auto r = record(type, 3);
    trace::EventFormatter text({trace::Format::kText, true});
    CHECK_FALSE(text.format(header(r)).empty());
    trace::EventFormatter json({trace::Format::kJsonl, true});
    const auto j = nlohmann::json::parse(json.format(header(r)));
    CHECK(j.at("type") == std::string(trace::to_string(type)));
    CHECK(j.at("seq") == 7);
  }
}

TEST_CASE("printer: an instruction length past the record's 15 bytes is clamped",
          "[unit][printer]") {
  // A crafted trace can claim insn_len = 255: the printer must not read the next record.
  auto bytes_of = [](const Record& r) {
    trace::EventFormatter json({trace::Format::kJsonl, false});
    const std::string line = json.format(header(r));
    trace::EventFormatter text({trace::Format::kText, false});
    CHECK_FALSE(text.format(header(r)).empty());
    return nlohmann::json::parse(line).at("insn_bytes").get<std::string>();
  };
  {
    auto r = record(EventType::kVmExit);
    auto* e = reinterpret_cast<trace::VmExitEvent*>(r.at);
    e->reason = static_cast<uint32_t>(trace::ExitReason::kHlt);
    e->insn_len = 255;
    e->insn[0] = 0xF4;
    CHECK(bytes_of(r) == "f4" + std::string(28, '0'));
  }
  {
    auto r = record(EventType::kInstruction);
    auto* e = reinterpret_cast<trace::InstructionEvent*>(r.at);
    e->len = 255;
    e->bytes[0] = 0x90;
    CHECK(bytes_of(r) == "90" + std::string(28, '0'));
  }
  for (const EventType type : {EventType::kVmmTrap, EventType::kSensitiveNoTrap, EventType::kVmTransition}) {
    auto r = record(type);
    auto* e = reinterpret_cast<trace::VirtEvent*>(r.at);
    e->insn_len = 255;
    e->insn[0] = 0xFA;
    CHECK(bytes_of(r).size() == 30);
  }
  {
    auto r = record(EventType::kBtCallout);
    auto* e = reinterpret_cast<trace::BtCalloutEvent*>(r.at);
    e->insn_len = 255;
    CHECK(bytes_of(r).size() == 30);
  }
}
