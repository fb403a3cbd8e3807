// lessons/grade.hpp — a question's checkable answer: a number (with a tolerance where it is a
// measurement), a choice among named options, or the event the step stops at (the student
// selects it in the visualizer, or types its number #N in a terminal). The terminal runner, the
// answers file (`lesson run ID --answers FILE`) and the visualizer's lesson pane grade with
// accepts(), so an answer is right or wrong the same way everywhere.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace trapscope::lessons {

enum class Lang : uint8_t;
struct Text;

struct Option {
  std::string id;      // what an answers file gives ([a-z0-9-]+)
  std::string es, en;  // what a student may type or click, in each language
};

struct Grade {
  enum class Kind : uint8_t { kNumber, kChoice, kEvent };
  Kind kind = Kind::kNumber;
  // kNumber: the value, as written in the lesson (decimal, 0x-hex or a decimal fraction), and
  // the tolerance: absolute, or a fraction of the value when `relative` (written "10%").
  double number = 0;
  std::string number_text;
  double tolerance = 0;
  bool relative = false;
  // kChoice: the right option's id among `options` (at least two, ids unique).
  std::string choice;
  std::vector<Option> options;
};

// A number as a student may type it: decimal, 0x-hexadecimal, a fraction with '.' or ',', an
// exponent (3.8e6); spaces and '_' ignored. nullopt when it is not one.
std::optional<double> parse_typed_number(std::string_view text);

// Whether `typed` is the answer. `event` is the number of the event the step stopped at (kEvent;
// "#12" and "12" both name it). Choices match an option's id, its text in either language (case
// and Spanish accents ignored) or its position (1, 2, …).
bool accepts(const Grade& grade, std::string_view typed, std::optional<uint64_t> event);
// Why `typed` cannot be an answer at all ("not a number", "not one of: sí, no"), or "".
std::string unreadable(const Grade& grade, std::string_view typed, Lang lang);
// The right answer as a student would type it: "0x48", "3800000 ± 50%", "no", "#12".
std::string expected_text(const Grade& grade, Lang lang, std::optional<uint64_t> event);
// The options as a prompt shows them: "1) sí  2) no".
std::string options_text(const Grade& grade, Lang lang);

}  // namespace trapscope::lessons
