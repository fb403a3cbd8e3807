// lessons/params.hpp — seeded variants of a lesson (`trapscope lesson run ID --seed N`).
//
// A lesson may declare parameters (`params:` in its file, lessons/README.md): each a name, a
// default, and the values a seed chooses from (a list, or min..max by step). The runner writes
// the chosen values into the guest's memory at load time, in the parameter block the guest reads
// (no rebuilding guests), and the lesson's texts and expectations use them as `$(expr)` (decimal)
// or `$hex(expr)` (0x-hexadecimal): integer arithmetic with + - * / % and parentheses over the
// parameters' names and numbers, substituted in the file's text before it is read. Without a
// seed every parameter takes its default; a guest that finds no block uses the same defaults.
//
// The parameter block (guests/include/trapscope.inc, TS_PARAMS): at guest-physical 0x600, below
// the VMM's page tables (0x1000) and after its GDT (0x500..0x517):
//   +0  u32 magic 0x42505354 ("TSPB" in memory)   +4  u32 count
//   +8  u64 value of parameter 0, +16 parameter 1, … (in the order the lesson declares them)
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace trapscope::lessons {

inline constexpr uint64_t kParamsAddress = 0x600;
inline constexpr uint32_t kParamsMagic = 0x42505354;  // "TSPB"
inline constexpr size_t kMaxParams = 16;

struct Param {
  std::string name;                // [a-z_][a-z0-9_]*
  uint64_t fallback = 0;           // the default: no seed, or a guest without the block
  std::vector<uint64_t> values;    // what a seed chooses from (a list, or min..max by step)
  uint64_t value = 0;              // the value in use
};

// The value of parameter number `index` for `seed`: one of p.values, picked by splitmix64
// (Steele et al., OOPSLA 2014) of the seed and the index, so it does not depend on the C++
// library. The same seed always gives the same value.
uint64_t choose(const Param& p, size_t index, uint64_t seed);

// The bytes of the parameter block for `params` (their `value`s).
std::vector<uint8_t> params_block(const std::vector<Param>& params);

// `yaml` with every $(expr) and $hex(expr) replaced by its value. Throws LessonError
// ("FILE:LINE: $(…): unknown parameter 'x' (repeat, fault)") for a bad expression.
std::string substitute(std::string_view yaml, const std::map<std::string, uint64_t>& values,
                       const std::string& file);

}  // namespace trapscope::lessons
