// `trapscope lesson list|run|check`: guided, checked walkthroughs (lessons/README.md).
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "lessons/runner.hpp"
#include "lessons/step.hpp"
#include "vmm/kvm.hpp"

namespace trapscope::cli {
namespace {

// The language: --lang, else Spanish when the locale (LC_ALL, LC_MESSAGES, LANG) says so.
lessons::Lang pick_lang(const std::string& flag) {
  if (!flag.empty()) return *lessons::parse_lang(flag);
  return lessons::lang_from_environment();
}

// Runs one lesson on one backend; returns the exit status.
int run_one(const lessons::Lesson& l, const std::string& backend_flag, lessons::Lang lang,
            bool check) {
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
  o.check = check;
  o.in = check ? nullptr : &std::cin;
  const lessons::LessonResult r = lessons::run_lesson(l, o);
  return r.passed ? kOk : kGuestFailed;
}

}  // namespace

void add_lesson_command(CLI::App& app, int* status) {
  struct Options {
    std::string lesson;
    std::string lang;
    std::string backend;
    bool check = false;
    bool gui = false;
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
  run->footer("Exit status: 0 every expectation held; 1 one did not; 2 bad lesson or usage; "
              "5 KVM needed and unusable.");
  run->callback([o, status] {
    if (o->gui) {
      if (o->check) {
        std::fprintf(stderr, "trapscope lesson: --check runs in the terminal; drop --gui\n");
        *status = kBadInput;
        return;
      }
      *status = run_lesson_gui(o->lesson, o->backend, pick_lang(o->lang));
      return;
    }
    try {
      const lessons::Lesson l = lessons::find_lesson(o->lesson);
      *status = run_one(l, o->backend, pick_lang(o->lang), o->check);
    } catch (const lessons::LessonError& e) {
      std::fprintf(stderr, "trapscope lesson: %s\n", e.what());
      *status = kBadInput;
    } catch (const vmm::KvmError& e) {
      std::fprintf(stderr, "trapscope lesson: KVM: %s\n", e.what());
      *status = kNoKvm;
    }
  });

  CLI::App* check = cmd->add_subcommand(
      "check", "Verify every built-in lesson on every backend it allows (KVM where usable)");
  check->callback([status] {
    int worst = kOk;
    try {
      const bool kvm = backend::kvm_usable();
      for (const lessons::Lesson& l : lessons::builtin_lessons()) {
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
    }
    *status = worst;
  });
}

}  // namespace trapscope::cli
