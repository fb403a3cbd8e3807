// visualizer/core/disasm_window.hpp — the disassembly view's lines around RIP, from the code
// bytes a stop published (CodeWindow). x86 cannot be decoded backwards, so the lines before
// RIP come from the earliest start in the window whose instruction-by-instruction decoding
// lands exactly on RIP (the usual heuristic; it can be wrong after data or padding).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "visualizer/core/model.hpp"
#include "visualizer/core/pg_classifier_hook.hpp"

namespace trapscope::viz {

struct DisasmLine {
  uint64_t address = 0;  // CS offset (what RIP holds when it executes)
  uint8_t length = 0;
  uint8_t bytes[15] = {};
  bool ok = false;       // false: "(bad)" or unreadable bytes
  bool is_rip = false;
  std::string text;
  PgClass pg = PgClass::kUnclassified;
};

std::vector<DisasmLine> disassemble_around(const CodeWindow& window, int before, int after);

}  // namespace trapscope::viz
