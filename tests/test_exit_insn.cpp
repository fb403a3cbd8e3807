// Finding the instruction that caused an IO or HLT exit (x86/io_insn.hpp).
#include <catch2/catch.hpp>

#include <vector>

#include "x86/io_insn.hpp"

using trapscope::x86::IoExitInfo;
using trapscope::x86::match_hlt;
using trapscope::x86::match_io_instruction;

namespace {
unsigned io(std::vector<uint8_t> b, IoExitInfo info, uint16_t dx = 0, bool d16 = false,
            bool m64 = false) {
  return match_io_instruction(b, info, dx, d16, m64);
}
}  // namespace

TEST_CASE("port-I/O instructions are matched by port, size and direction", "[unit][exit-insn]") {
  CHECK(io({0xEE}, {0xE9, 1, true}, 0xE9) == 1);                      // out dx, al
  CHECK(io({0xEE}, {0xE9, 1, false}, 0xE9) == 0);                     // direction differs
  CHECK(io({0xEE}, {0xE9, 1, true}, 0xE8) == 0);                      // dx differs
  CHECK(io({0xE6, 0xEE}, {0xEE, 1, true}) == 2);                      // out 0xEE, al
  CHECK(io({0xEE}, {0xEE, 1, true}, /*dx=*/0) == 0);                  // the imm8 is not dx
  CHECK(io({0xE4, 0x60}, {0x60, 1, false}) == 2);                     // in al, 0x60
  CHECK(io({0xEF}, {0x3F8, 4, true}, 0x3F8) == 1);                    // out dx, eax (32-bit)
  CHECK(io({0xEF}, {0x3F8, 2, true}, 0x3F8, /*d16=*/true) == 1);      // out dx, ax (real)
  CHECK(io({0x66, 0xEF}, {0x3F8, 2, true}, 0x3F8) == 2);              // 66: 16-bit in 32-bit
  CHECK(io({0x66, 0xEF}, {0x3F8, 4, true}, 0x3F8, true) == 2);        // 66: 32-bit in real
  CHECK(io({0xF3, 0x6E}, {0xE9, 1, true}, 0xE9) == 2);                // rep outsb
  CHECK(io({0x48, 0xEE}, {0xE9, 1, true}, 0xE9, false, true) == 2);   // REX in 64-bit mode
  CHECK(io({0x90}, {0xE9, 1, true}, 0xE9) == 0);
  CHECK(io({}, {0xE9, 1, true}, 0xE9) == 0);
}

TEST_CASE("hlt is matched with its prefixes", "[unit][exit-insn]") {
  std::vector<uint8_t> hlt{0xF4}, pre{0x2E, 0xF4}, nop{0x90};
  CHECK(match_hlt(hlt, false) == 1);
  CHECK(match_hlt(pre, false) == 2);
  CHECK(match_hlt(nop, false) == 0);
}
