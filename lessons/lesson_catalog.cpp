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

std::vector<Lesson> builtin_lessons(std::optional<uint64_t> seed) {
  std::vector<Lesson> all;
  for (const EmbeddedLesson& e : kEmbedded)
    all.push_back(parse_lesson(std::string_view(reinterpret_cast<const char*>(e.data), e.size),
                               std::string("lessons/") + e.name, seed));
  std::stable_sort(all.begin(), all.end(),
                   [](const Lesson& a, const Lesson& b) { return a.number < b.number; });
  for (size_t i = 1; i < all.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (all[i].id == all[j].id || all[i].number == all[j].number)
        throw LessonError(all[i].file + ": id: " + all[i].id + " (number " +
                          std::to_string(all[i].number) + ") repeats the id or number of " +
                          all[j].file);
  return all;
}

Lesson find_lesson(const std::string& arg, std::optional<uint64_t> seed) {
  const bool is_path = arg.find('/') != std::string::npos ||
                       (arg.size() > 5 && arg.compare(arg.size() - 5, 5, ".yaml") == 0);
  if (is_path) return load_lesson_file(arg, seed);
  std::string known;
  for (Lesson& l : builtin_lessons(seed)) {
    if (l.id == arg || std::to_string(l.number) == arg) return std::move(l);
    known += (known.empty() ? "" : ", ") + l.id;
  }
  throw LessonError("no lesson '" + arg + "' (built in: " + known +
                    "; or give the path of a lesson file)");
}

}  // namespace trapscope::lessons
