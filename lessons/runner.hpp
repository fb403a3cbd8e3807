// lessons/runner.hpp — runs a lesson on a backend: in a terminal, step by step (waiting for
// Enter between steps and before revealing an answer), or straight through with `check`, which
// verifies every expectation and is what the tests run for every lesson on every backend the
// lesson allows.
#pragma once

#include <cstdio>
#include <istream>
#include <string>

#include "backend/backend.hpp"
#include "lessons/lesson.hpp"

namespace trapscope::lessons {

struct RunnerOptions {
  Lang lang = Lang::kEn;
  backend::Kind backend = backend::Kind::kSim;
  bool check = false;              // no waiting, one line per step, verify everything
  std::FILE* out = stdout;
  std::istream* in = nullptr;      // where Enter is read from (nullptr or EOF: do not wait)
};

struct LessonResult {
  bool passed = false;
  size_t steps_done = 0;  // steps whose action and expectations held
  std::string failure;    // "step 3 (line 41): expected …; the event was …"
};

// Throws backend errors (vmm::KvmError when KVM is not usable) and LessonError for a lesson
// whose guest is not built in or whose backend the lesson does not allow.
LessonResult run_lesson(const Lesson& lesson, const RunnerOptions& options);

}  // namespace trapscope::lessons
