// lessons/runner.hpp — runs a lesson on a backend: in a terminal, step by step (waiting for
// Enter between steps and before revealing an answer), or straight through with `check`, which
// verifies every expectation and is what the tests run for every lesson on every backend the
// lesson allows.
#pragma once

#include <cstdio>
#include <optional>
#include <string_view>
#include <istream>
#include <map>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "lessons/lesson.hpp"

namespace trapscope::lessons {

struct RunnerOptions {
  Lang lang = Lang::kEn;
  backend::Kind backend = backend::Kind::kSim;
  bool check = false;              // no waiting, one line per step, verify everything
  std::FILE* out = stdout;
  std::istream* in = nullptr;      // where Enter and answers are read (nullptr or EOF: do not wait)
  // Grading without asking (`lesson run ID --answers FILE`, with check): each question's answer
  // by step number (1-based); a question with none is wrong.
  const std::map<size_t, std::string>* answers = nullptr;
  bool reveal = false;             // print each question's answer instead of asking (--reveal)
};

struct LessonResult {
  bool passed = false;
  size_t steps_done = 0;  // steps whose action and expectations held
  std::string failure;    // "step 3 (line 41): expected …; the event was …"
  // Graded questions: asked (or read from the answers), answered right (on either try, and at
  // the first), and the wrong ones: "step 4 (FILE:LINE): '30', expected 31".
  size_t questions = 0, right = 0, first_try = 0;
  std::vector<std::string> wrong;
};

// An answers file (`lesson run ID --answers FILE`): one answer a line, "STEP: ANSWER" (the step's
// number, 1-based, as the lesson shows it); blank lines and lines starting with '#' are skipped;
// "seed: N" gives the seed the answers are for. Throws LessonError ("FILE:LINE: …").
struct Answers {
  std::map<size_t, std::string> by_step;
  std::optional<uint64_t> seed;
};
Answers parse_answers(std::string_view text, const std::string& file);

// Throws backend errors (vmm::KvmError when KVM is not usable) and LessonError for a lesson
// whose guest is not built in or whose backend the lesson does not allow.
LessonResult run_lesson(const Lesson& lesson, const RunnerOptions& options);

}  // namespace trapscope::lessons
