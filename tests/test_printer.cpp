// The event printer (trace/printer.cpp) on records as a trace file may hold them: every event
// type in text and JSON lines (run in the ASan/UBSan build, where a reference to a misaligned
// packed field aborts), and length fields that claim more bytes than the record has.
#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

#include "tests/support.hpp"
#include "trace/condition.hpp"
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

TEST_CASE("printer: a virtualization event names its technique, paravirtualization too",
          "[unit][printer]") {
  // VirtEvent::technique holds trace::VirtTechnique's numbers (1, 2, 3), which differ from
  // sim::virt::Technique's (kTrapEmulate 1, kVt 2, kPv 4): the printer once showed 3 as "vt".
  const std::pair<trace::VirtTechnique, const char*> kCases[] = {
      {trace::VirtTechnique::kTrapEmulate, "trap-emulate"},
      {trace::VirtTechnique::kVt, "vt"},
      {trace::VirtTechnique::kPv, "pv"}};
  for (const auto& [technique, name] : kCases) {
    auto r = record(EventType::kVmTransition, 1);
    reinterpret_cast<trace::VirtEvent*>(r.at)->technique = static_cast<uint8_t>(technique);
    trace::EventFormatter json({trace::Format::kJsonl, false});
    CHECK(nlohmann::json::parse(json.format(header(r))).at("technique") == name);
  }
}

TEST_CASE("event table: sizes, names and the one dispatch agree (trace/events.def)",
          "[unit][printer]") {
  for (unsigned t = 1; t < static_cast<unsigned>(EventType::kMax); ++t) {
    const auto type = static_cast<EventType>(t);
    INFO("event type " << t);
    REQUIRE(trace::event_size(type) != 0);  // the numbers are dense
    CHECK(trace::parse_event_type(trace::to_string(type)) == type);
    CHECK(trace::event_label(type) != "?");
    const auto r = record(type);
    // visit hands each record to the overload of its struct: sizeof(struct) == its size.
    CHECK(trace::visit(header(r), [](const auto& e) { return sizeof e; }) == trace::event_size(type));
  }
  auto r = record(EventType::kVmExit);
  reinterpret_cast<EventHeader*>(r.at)->size = 40;  // a corrupt record: only its header
  CHECK(trace::visit(header(r), [](const auto& e) { return sizeof e; }) == sizeof(EventHeader));
}

TEST_CASE("trapscope run --technique pv --format jsonl: the VT-x model's transitions say pv",
          "[printer][cli]") {
  const auto r = test::run_trapscope(
      {"run", "pv-hello", "--backend", "sim", "--technique", "pv", "--format", "jsonl"});
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains(R"("technique":"pv")"));
  CHECK_THAT(r.out, !Catch::Contains(R"("technique":"vt")"));
}

TEST_CASE("printer: a device event names the device, the action and the command",
          "[unit][printer][devices]") {
  trace::DeviceEvent e{};
  e.header = trace::make_header<trace::DeviceEvent>(EventType::kDevice);
  e.device = trace::DeviceKind::kAta;
  e.unit = 0;
  e.action = trace::DeviceAction::kCommand;
  e.command = 0x20;
  e.address = 1;
  e.count = 1;
  trace::EventFormatter text({trace::Format::kText, false});
  CHECK_THAT(text.format(e.header),
             Catch::Contains("device  ata 0 command READ SECTORS (0x20) lba=1 count=1"));
  e.device = trace::DeviceKind::kVirtioBlk;
  e.action = trace::DeviceAction::kChain;
  e.command = 1;
  e.address = 8;
  e.count = 3;
  e.bytes = 4096;
  e.value = 0;
  CHECK_THAT(text.format(e.header),
             Catch::Contains("virtio-blk 0 chain head=0 OUT (0x1) sector=8 descriptors=3 bytes=4096"));

  std::string error;
  const auto c = trace::Condition::parse("device device=virtio-blk action=chain", &error);
  REQUIRE(c);
  CHECK(c->matches(e.header));
  const auto ata = trace::Condition::parse("device device=ata", &error);
  REQUIRE(ata);
  CHECK_FALSE(ata->matches(e.header));
}
