// trace/printer.hpp — human (text) and machine (JSON lines) forms of events.
//
// Text: one line per event, times relative to the first event printed.
// JSON lines: one JSON object per line with the same fields (addresses as "0x…" strings,
// times in ns). The disassembly of a VM exit's instruction is produced here from its bytes.
#pragma once

#include <cstdio>
#include <string>

#include "trace/recorder.hpp"

namespace trapscope::trace {

enum class Format { kText, kJsonl };

struct PrintOptions {
  Format format = Format::kText;
  bool timing = true;  // false: leave out timestamps and handling times (deterministic output,
                       // used by the golden traces)
};

// Formats events one at a time; keeps the first timestamp to print relative times.
class EventFormatter {
 public:
  explicit EventFormatter(PrintOptions options) : options_(options) {}
  std::string format(const EventHeader& event);  // one line, no trailing newline

 private:
  std::string text(const EventHeader& event);
  std::string jsonl(const EventHeader& event);
  PrintOptions options_;
  bool have_base_ = false;
  uint64_t base_ns_ = 0;
};

// The text of a trap-and-emulate or VT-x model event (trace::VirtEvent), without sequence
// number or time; `with_cost` adds the VT-x model's cycle cost.
std::string virt_event_text(const VirtEvent& event, bool with_cost);

// The text of a binary-translation event (types kBtTranslate..kBtCounts), without sequence
// number or time; "" for other types. A translation lists each instruction as
// "<length>:<kind>" (trace::BtKind: IDENT, pc-relative, direct-branch, …).
std::string bt_event_text(const EventHeader& event);

// An EventSink that prints each event as a line to a stdio stream.
class PrintSink final : public EventSink {
 public:
  PrintSink(std::FILE* out, PrintOptions options) : out_(out), formatter_(options) {}
  void on_event(const EventHeader& event) override;

 private:
  std::FILE* out_;
  EventFormatter formatter_;
};

}  // namespace trapscope::trace
