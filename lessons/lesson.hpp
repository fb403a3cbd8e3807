// lessons/lesson.hpp — a lesson: a guest, where it may run, and steps an instructor writes.
//
// A lesson file is YAML (parsed with yaml-cpp, Debian's libyaml-cpp-dev); the schema is in
// lessons/README.md. Every text comes in Spanish and English. A step has narrative text, an
// optional action (run the guest until an event matching a predicate happens), the expectation
// the runner checks on that event, and optionally a question whose answer is revealed after the
// action has run, graded against a checkable answer (lessons/grade.hpp). A lesson may take
// parameters chosen from a seed (lessons/params.hpp).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "lessons/grade.hpp"
#include "lessons/params.hpp"
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
// kEfficiency: of the instructions since the guest (re)started, how many the VMM handled (VM
// exits, VMM traps, BT callouts) and the share that ran directly (simulator only; none under
// emulation, where software runs every instruction).
enum class Show : uint8_t { kEvents, kRegisters, kStats, kConsole, kEfficiency };

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
  std::optional<Grade> grade;          // the question's checkable answer (every question has one)
  std::optional<Text> hint;            // shown after a wrong answer, before another try
  std::vector<Show> show;              // printed after the action (default: the events)
};

struct Lesson {
  std::string file;     // where it came from ("built-in:NAME.yaml" for the built-in lessons)
  std::string id;       // [a-z0-9-]+, what `trapscope lesson run ID` takes
  int number = 0;       // order in `trapscope lesson list`
  Text title;
  Text summary;
  std::optional<Text> topic;  // the course topic it covers (`lesson list`, docs/lessons.md)
  std::vector<std::string> sources;  // where its facts come from (SDM sections, papers)
  std::string guest;    // a built-in guest name, or a file (guest_file) named relative to the lesson
  std::string guest_file;  // the guest's image file when it is not built in ("" = built in)
  std::shared_ptr<const std::vector<uint8_t>> guest_bytes;  // its bytes (read with the lesson)
  std::vector<Param> params;        // seeded parameters, their values chosen (lessons/params.hpp)
  std::optional<uint64_t> seed;     // the seed they were chosen from (nullopt: defaults)
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

// Parses a lesson from YAML text; `file` names it in errors and is where a guest given as a path
// is looked for (relative to the file's folder). With a seed the parameters take the values the
// seed chooses, else their defaults. Throws LessonError.
//
// Refused when the file is read, with every problem's line: unknown fields and values (an event
// kind, a field of that kind, a value out of its range, a technique or paging: the message lists
// the valid ones), an event kind KVM cannot report in a lesson that names kvm, duplicate option
// ids, a question without a checkable answer (grade), and a ` #` inside an unquoted (plain)
// text, which YAML reads as the start of a comment and would cut the text there.
Lesson parse_lesson(std::string_view yaml, const std::string& file,
                    std::optional<uint64_t> seed = std::nullopt);
// Reads and parses a file. Throws LessonError (also for an unreadable file, one that is not a
// regular file, and one larger than kMaxLessonFileBytes: checked before reading).
inline constexpr uint64_t kMaxLessonFileBytes = uint64_t{1} << 20;  // 1 MiB
inline constexpr uint64_t kMaxGuestFileBytes = uint64_t{1} << 24;   // a guest image: 16 MiB
Lesson load_lesson_file(const std::string& path, std::optional<uint64_t> seed = std::nullopt);

// The lessons built into trapscope (lessons/*.yaml, embedded at build time), by number.
// Throws LessonError if one of them is malformed or two share an id or a number (a build defect
// the tests catch).
std::vector<Lesson> builtin_lessons(std::optional<uint64_t> seed = std::nullopt);
// A built-in lesson by id or number ("2"), or a lesson file (an argument containing '/' or
// ending in .yaml). Throws LessonError.
Lesson find_lesson(const std::string& id_or_path, std::optional<uint64_t> seed = std::nullopt);

// The ` #` comments that follow a value on the same line in YAML text (outside quotes and block
// scalars), as "LINE: …": in a lesson they are texts cut short (empty when there are none).
std::vector<std::string> trailing_comments(std::string_view yaml);

}  // namespace trapscope::lessons
