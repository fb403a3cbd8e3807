// Fuzz target: the lesson loader (lessons/lesson.hpp parse_lesson, what `trapscope lesson run
// FILE` reads). The input is the YAML text. A malformed lesson must be refused with a
// LessonError; an accepted one must have what the schema (lessons/README.md) requires.
#include <string>
#include <string_view>

#include "lessons/lesson.hpp"
#include "tests/fuzz/fuzz_input.hpp"

using namespace trapscope;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  try {
    const lessons::Lesson l = lessons::parse_lesson(yaml, "fuzz.yaml");
    if (l.id.empty()) fuzz::invariant_failed("fuzz_lesson", "a lesson without an id was accepted");
    if (l.guest.empty()) {
      fuzz::invariant_failed("fuzz_lesson", "a lesson without a guest was accepted");
    }
  } catch (const lessons::LessonError&) {
    // refused with FILE:LINE: FIELD: problem
  }
  return 0;
}
