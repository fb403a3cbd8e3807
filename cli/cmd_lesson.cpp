// `trapscope lesson list|run|check`: guided, checked walkthroughs (lessons/README.md).
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <vector>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "lessons/runner.hpp"
#include "lessons/step.hpp"
#include "trace/input_file.hpp"
#include "vmm/kvm.hpp"

namespace trapscope::cli {
namespace {

// The language: --lang, else Spanish when the locale (LC_ALL, LC_MESSAGES, LANG) says so.
lessons::Lang pick_lang(const std::string& flag) {
  if (!flag.empty()) return *lessons::parse_lang(flag);
  return lessons::lang_from_environment();
}

// Runs one lesson on one backend; returns the exit status. With `answers` it grades them (exit
// status 1 when one is wrong, listed on stderr).
int run_one(const lessons::Lesson& l, const std::string& backend_flag, lessons::Lang lang,
            bool check, const lessons::Answers* answers = nullptr, bool reveal = false) {
  std::string backend = backend_flag;
  if (backend.empty()) {
    backend = l.backends.front();
    if (backend == "kvm" && !backend::kvm_usable() && l.allows("sim")) backend = "sim";
  }
  if (!l.allows(backend)) {
    std::fprintf(stderr, "trapscope lesson: lesson %s does not run on %s\n", l.id.c_str(),
                 backend.c_str());
    return kBadInput;
  }
  std::string why;
  if (backend == "kvm" && !backend::kvm_usable(&why)) {
    std::fprintf(stderr, "trapscope lesson: KVM is not usable here: %s\n", why.c_str());
    return kNoKvm;
  }
  lessons::RunnerOptions o;
  o.lang = lang;
  o.backend = backend == "kvm" ? backend::Kind::kKvm : backend::Kind::kSim;
  o.check = check || answers;
  o.in = o.check || reveal ? nullptr : &std::cin;
  o.answers = answers ? &answers->by_step : nullptr;
  o.reveal = reveal;
  const lessons::LessonResult r = lessons::run_lesson(l, o);
  if (answers && !r.wrong.empty()) {
    std::fprintf(stderr, "trapscope lesson: %zu of %zu answers wrong:\n", r.wrong.size(),
                 r.questions);
    for (const std::string& w : r.wrong) std::fprintf(stderr, "  %s\n", w.c_str());
  }
  return r.passed && r.wrong.empty() ? kOk : kGuestFailed;
}

}  // namespace

void add_lesson_command(CLI::App& app, int* status) {
  struct Options {
    std::string lesson;
    std::string lang;
    std::string backend;
    bool check = false;
    bool gui = false;
    std::optional<uint64_t> seed;
    std::string answers;
    bool reveal = false;
    std::vector<std::string> files;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("lesson", "Guided, checked lessons in Spanish and English");
  cmd->require_subcommand(1);

  CLI::App* list = cmd->add_subcommand("list", "List the built-in lessons");
  list->add_option("--lang", o->lang, "es or en (default: from LANG)")
      ->check(CLI::IsMember({"es", "en"}));
  list->callback([o, status] {
    const lessons::Lang lang = pick_lang(o->lang);
    try {
      for (const lessons::Lesson& l : lessons::builtin_lessons()) {
        std::string b;
        for (const auto& x : l.backends) b += (b.empty() ? "" : ",") + x;
        std::printf("%2d  %-22s %-8s %s\n", l.number, l.id.c_str(), b.c_str(),
                    l.title.in(lang).c_str());
        if (l.topic) std::printf("    %-31s %s: %s\n", "", lang == lessons::Lang::kEs ? "tema" : "topic",
                                 l.topic->in(lang).c_str());
      }
      *status = kOk;
    } catch (const lessons::LessonError& e) {
      std::fprintf(stderr, "trapscope lesson: %s\n", e.what());
      *status = kBadInput;
    }
  });

  CLI::App* run = cmd->add_subcommand(
      "run", "Run a lesson step by step (Enter between steps), or verify it with --check");
  run->add_option("LESSON", o->lesson, "A built-in lesson's id or number, or a lesson file")
      ->required();
  run->add_option("--lang", o->lang, "es or en (default: from LANG)")
      ->check(CLI::IsMember({"es", "en"}));
  run->add_option("--backend", o->backend, "kvm or sim (default: the lesson's first choice)")
      ->check(CLI::IsMember({"kvm", "sim"}));
  run->add_flag("--check", o->check, "Run straight through and verify every expectation");
  run->add_flag("--gui", o->gui, "In the visualizer's lesson pane (`trapscope gui --lesson ID`)");
  run->add_option("--seed", o->seed,
                  "A variant: the lesson's parameters chosen from this seed (same seed, same problem)");
  run->add_option("--answers", o->answers,
                  "Grade a file of answers ('STEP: ANSWER' lines) without asking: exit 0 all right, "
                  "1 with the wrong ones listed (docs/lessons.md)");
  run->add_flag("--reveal", o->reveal, "Print every question's answer without asking");
  run->footer("Exit status: 0 every expectation held (and every answer right); 1 one did not; "
              "2 bad lesson, answers file or usage; 5 KVM needed and unusable.");
  run->callback([o, status] {
    if (o->gui) {
      if (o->check || o->seed || !o->answers.empty() || o->reveal) {
        std::fprintf(stderr, "trapscope lesson: --check, --seed, --answers and --reveal run in "
                             "the terminal; drop --gui\n");
        *status = kBadInput;
        return;
      }
      *status = run_lesson_gui(o->lesson, o->backend, pick_lang(o->lang));
      return;
    }
    try {
      std::optional<lessons::Answers> answers;
      if (!o->answers.empty()) {
        std::string error;
        const auto text = trace::read_input_file(o->answers, lessons::kMaxLessonFileBytes,
                                                 "an answers file", &error);
        if (!text) throw lessons::LessonError(o->answers + ": cannot read the answers file: " + error);
        answers = lessons::parse_answers(*text, o->answers);
        if (o->reveal) throw lessons::LessonError("--answers grades, --reveal tells: use one");
        if (answers->seed && o->seed && *answers->seed != *o->seed)
          throw lessons::LessonError(o->answers + ": the answers are for seed " +
                                     std::to_string(*answers->seed) + ", not " +
                                     std::to_string(*o->seed));
      }
      const std::optional<uint64_t> seed = o->seed ? o->seed : answers ? answers->seed : std::nullopt;
      const lessons::Lesson l = lessons::find_lesson(o->lesson, seed);
      if (seed && l.params.empty())
        std::fprintf(stderr, "trapscope lesson: lesson %s has no parameters: --seed changes nothing\n",
                     l.id.c_str());
      *status = run_one(l, o->backend, pick_lang(o->lang), o->check, answers ? &*answers : nullptr,
                        o->reveal);
    } catch (const lessons::LessonError& e) {
      std::fprintf(stderr, "trapscope lesson: %s\n", e.what());
      *status = kBadInput;
    } catch (const vmm::KvmError& e) {
      std::fprintf(stderr, "trapscope lesson: KVM: %s\n", e.what());
      *status = kNoKvm;
    }
  });

  CLI::App* check = cmd->add_subcommand(
      "check", "Verify lesson files (default: every built-in lesson) on every backend each names "
               "(KVM where usable)");
  check->add_option("FILE", o->files, "Lesson files to check (read, validated, then run)");
  check->callback([o, status] {
    int worst = kOk;
    try {
      const bool kvm = backend::kvm_usable();
      std::vector<lessons::Lesson> all;
      if (o->files.empty()) {
        all = lessons::builtin_lessons();
      } else {
        for (const std::string& f : o->files) {
          lessons::Lesson l = lessons::load_lesson_file(f);
          // A file whose id is a built-in lesson's would be ambiguous in a course's list.
          for (const lessons::Lesson& b : lessons::builtin_lessons())
            if (b.id == l.id)
              throw lessons::LessonError(f + ": id: '" + l.id + "' is the built-in lesson " +
                                         std::to_string(b.number) + "'s; choose another");
          all.push_back(std::move(l));
        }
      }
      for (const lessons::Lesson& l : all) {
        for (const std::string& b : l.backends) {
          if (b == "kvm" && !kvm) {
            std::printf("lesson %s on kvm: skipped (KVM is not usable here)\n", l.id.c_str());
            continue;
          }
          const int rc = run_one(l, b, lessons::Lang::kEn, true);
          if (rc != kOk) worst = rc;
        }
      }
    } catch (const lessons::LessonError& e) {
      std::fprintf(stderr, "trapscope lesson: %s\n", e.what());
      worst = kBadInput;
    } catch (const vmm::KvmError& e) {
      std::fprintf(stderr, "trapscope lesson: KVM: %s\n", e.what());
      worst = kNoKvm;
    }
    *status = worst;
  });
}

}  // namespace trapscope::cli
