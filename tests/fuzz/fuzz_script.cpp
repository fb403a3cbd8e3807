// Fuzz target: the GUI script parser (visualizer/core/script.hpp parse_script, what `trapscope
// gui --script FILE` reads). The input is the script text. A bad line must be refused with
// "line N: …"; every accepted command names a line of the script.
#include <string>
#include <string_view>

#include "tests/fuzz/fuzz_input.hpp"
#include "visualizer/core/script.hpp"

using namespace trapscope;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string error;
  const auto script = viz::parse_script(text, &error);
  if (!script) {
    if (error.rfind("line ", 0) != 0) {
      fuzz::invariant_failed("fuzz_script", "a refusal that does not name its line");
    }
    return 0;
  }
  int last = 0;
  for (const viz::ScriptCommand& c : *script) {
    if (c.line < 1 || c.line < last) {
      fuzz::invariant_failed("fuzz_script", "a command with a line number out of order");
    }
    last = c.line;
  }
  return 0;
}
