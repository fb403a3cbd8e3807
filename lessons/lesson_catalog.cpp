// The built-in lessons: lessons/*.yaml, embedded at build time (lessons/embed.cmake).
#include <algorithm>
#include <cstddef>

#include "lessons/lesson.hpp"

namespace trapscope::lessons {
namespace {

struct EmbeddedLesson {
  const char* name;
  const unsigned char* data;
  size_t size;
};
#include "lessons_embedded.inc"

}  // namespace

std::vector<Lesson> builtin_lessons() {
  std::vector<Lesson> all;
  for (const EmbeddedLesson& e : kEmbedded)
    all.push_back(parse_lesson(std::string_view(reinterpret_cast<const char*>(e.data), e.size),
                               std::string("lessons/") + e.name));
  std::stable_sort(all.begin(), all.end(),
                   [](const Lesson& a, const Lesson& b) { return a.number < b.number; });
  return all;
}

Lesson find_lesson(const std::string& arg) {
  const bool is_path = arg.find('/') != std::string::npos ||
                       (arg.size() > 5 && arg.compare(arg.size() - 5, 5, ".yaml") == 0);
  if (is_path) return load_lesson_file(arg);
  std::string known;
  for (Lesson& l : builtin_lessons()) {
    if (l.id == arg || std::to_string(l.number) == arg) return std::move(l);
    known += (known.empty() ? "" : ", ") + l.id;
  }
  throw LessonError("no lesson '" + arg + "' (built in: " + known +
                    "; or give the path of a lesson file)");
}

}  // namespace trapscope::lessons
