// lessons/lesson.hpp — a lesson: a guest, where it may run, and steps an instructor writes.
//
// A lesson file is YAML (parsed with yaml-cpp, Debian's libyaml-cpp-dev); the schema is in
// lessons/README.md. Every text comes in Spanish and English. A step has narrative text, an
// optional action (run the guest until an event matching a predicate happens), the expectation
// the runner checks on that event, and optionally a question whose answer is revealed after the
// action has run.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "lessons/predicate.hpp"

namespace trapscope::lessons {

enum class Lang : uint8_t { kEs, kEn };
std::optional<Lang> parse_lang(std::string_view text);  // "es", "en"
std::string_view to_string(Lang lang);

// A text in both languages (a lesson file must give both: a missing one is an error).
struct Text {
  std::string es;
  std::string en;
  const std::string& in(Lang lang) const { return lang == Lang::kEs ? es : en; }
};

// What the lesson shows after its step's action ran.
enum class Show : uint8_t { kEvents, kRegisters, kStats, kConsole };

// Starts the guest again from its first instruction under another technique or memory
// virtualization (simulator only).
struct Restart {
  std::string technique;  // "emulation", "trap-emulate", "vt"
  int deprivilege = 1;    // trap-and-emulate: the real CPL of the guest kernel (1 or 3)
  std::string paging;     // "native", "shadow", "ept"; "" = the lesson's
};

struct Step {
  int line = 0;                        // line of the step in the lesson file (1-based)
  std::optional<Text> title;
  Text text;                           // Markdown
  std::optional<Restart> restart;      // first, start the guest again (before run_until)
  std::optional<Predicate> run_until;  // the action: run until an event matches
  std::optional<Predicate> expect;     // checked on the event that ended the action
  std::optional<std::string> console;  // the guest's console output so far contains this
  std::optional<uint64_t> exits;       // VM exits since the guest (re)started, after the action
  std::optional<Text> question;        // asked before the action runs
  std::optional<Text> answer;          // revealed after it
  std::vector<Show> show;              // printed after the action (default: the events)
};

struct Lesson {
  std::string file;     // where it came from ("built-in:NAME.yaml" for the built-in lessons)
  std::string id;       // [a-z0-9-]+, what `trapscope lesson run ID` takes
  int number = 0;       // order in `trapscope lesson list`
  Text title;
  Text summary;
  std::string guest;    // a built-in guest name
  std::string mode;     // "" = the guest's own boot mode
  std::vector<std::string> backends;  // "kvm", "sim": where the lesson may run, preferred first
  std::string technique = "emulation";  // the simulator's technique (sim/virt/monitor.hpp)
  int deprivilege = 1;                  // trap-and-emulate: the guest kernel's real CPL
  std::string paging = "native";        // the simulator's memory virtualization (sim/mmu.hpp)
  double timeout_s = 10;                // limit of each action (host seconds)
  std::vector<Step> steps;
  bool allows(std::string_view backend) const;
};

// A malformed lesson: what() is "FILE:LINE: FIELD: problem".
class LessonError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses a lesson from YAML text; `file` names it in errors. Throws LessonError.
Lesson parse_lesson(std::string_view yaml, const std::string& file);
// Reads and parses a file. Throws LessonError (also for an unreadable file, one that is not a
// regular file, and one larger than kMaxLessonFileBytes: checked before reading).
inline constexpr uint64_t kMaxLessonFileBytes = uint64_t{1} << 20;  // 1 MiB
Lesson load_lesson_file(const std::string& path);

// The lessons built into trapscope (lessons/*.yaml, embedded at build time), by number.
// Throws LessonError if one of them is malformed (a build defect the tests catch).
std::vector<Lesson> builtin_lessons();
// A built-in lesson by id or number ("2"), or a lesson file (an argument containing '/' or
// ending in .yaml). Throws LessonError.
Lesson find_lesson(const std::string& id_or_path);

}  // namespace trapscope::lessons
