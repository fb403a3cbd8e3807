#include "x86/io_insn.hpp"

namespace trapscope::x86 {
namespace {

// Skips legacy prefixes (and REX in 64-bit mode); returns the opcode's index or the span size.
unsigned skip_prefixes(std::span<const uint8_t> b, bool mode64, bool* opsize_prefix) {
  unsigned i = 0;
  *opsize_prefix = false;
  while (i < b.size() && i < 14) {
    const uint8_t p = b[i];
    if (!is_prefix(p, mode64)) return i;
    if (p == 0x66) *opsize_prefix = true;
    if (mode64 && (p & 0xF0) == 0x40) return i + 1;  // REX: the last prefix; the opcode follows
    ++i;
  }
  return i;
}

}  // namespace

unsigned match_io_instruction(std::span<const uint8_t> b, const IoExitInfo& io, uint16_t dx,
                              bool default16, bool mode64) {
  bool opsize;
  const unsigned i = skip_prefixes(b, mode64, &opsize);
  if (i >= b.size()) return 0;
  const uint8_t op = b[i];
  const bool byte_form = (op & 1) == 0;
  const uint8_t wide = (default16 != opsize) ? 2 : 4;
  const uint8_t size = byte_form ? 1 : wide;
  bool out;
  unsigned len;
  uint16_t port;
  switch (op & 0xFE) {
    case 0xE4: case 0xE6:
      if (i + 1 >= b.size()) return 0;
      out = (op & 0xFE) == 0xE6;
      port = b[i + 1];
      len = i + 2;
      break;
    case 0xEC: case 0xEE:
      out = (op & 0xFE) == 0xEE;
      port = dx;
      len = i + 1;
      break;
    case 0x6C: case 0x6E:
      out = (op & 0xFE) == 0x6E;
      port = dx;
      len = i + 1;
      break;
    default: return 0;
  }
  return (out == io.out && port == io.port && size == io.size) ? len : 0;
}

unsigned match_hlt(std::span<const uint8_t> b, bool mode64) {
  bool opsize;
  const unsigned i = skip_prefixes(b, mode64, &opsize);
  return (i < b.size() && b[i] == 0xF4) ? i + 1 : 0;
}

}  // namespace trapscope::x86
