#include "lessons/runner.hpp"

#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <deque>
#include <optional>
#include <string_view>
#include <vector>

#include "guests/guest_catalog.hpp"
#include "lessons/step.hpp"
#include "trace/exit_stats.hpp"

namespace trapscope::lessons {
namespace {

using trace::EventHeader;

// How many lines of events a step prints at most (the answering event included).
constexpr size_t kShownEvents = 16;

// Receives the backend's events, copied (records are only valid during on_event), in order. A
// run call can deliver more than the event a step waits for (the rest of the instruction: a
// trap's ring transition after its exception): steps take events from the front, and what a
// step did not take is the next step's.
class PendingSink final : public trace::EventSink {
 public:
  explicit PendingSink(trace::ExitStats& stats) : stats_(stats) {}
  void on_event(const EventHeader& e) override {
    // Where a run call ended is the runner's business (RunOutcome); a KVM run that stops on an
    // exit reports it as an exit-count limit. The runner adds the real end of the run itself.
    if (e.type == trace::EventType::kRunEnd) return;
    stats_.on_event(e);
    push(&e, e.size);
  }
  void push(const void* record, size_t size) {
    const auto* p = static_cast<const uint8_t*>(record);
    pending.emplace_back(p, p + size);
    // Numbers events across the lesson (a KVM run numbers from 0 at every call).
    reinterpret_cast<EventHeader*>(pending.back().data())->seq = seq_++;
  }
  std::deque<std::vector<uint8_t>> pending;

 private:
  trace::ExitStats& stats_;  // the whole lesson's
  uint64_t seq_ = 0;
};

const EventHeader& header(const std::vector<uint8_t>& r) {
  return *reinterpret_cast<const EventHeader*>(r.data());
}

class Session {
 public:
  Session(const Lesson& l, const RunnerOptions& o) : lesson_(l), o_(o) {}

  LessonResult run() {
    (void)guest_image(lesson_);  // throws when the guest is not built in
    const std::string_view backend_name = o_.backend == backend::Kind::kKvm ? "kvm" : "sim";
    if (!lesson_.allows(backend_name))
      throw LessonError("lesson " + lesson_.id + " does not run on " + std::string(backend_name) +
                        " (backends: " + join(lesson_.backends) + ")");
    start();
    LessonResult& result = result_;
    if (!o_.check) {
      say("\n%s %d — %s\n", o_.lang == Lang::kEs ? "Lección" : "Lesson", lesson_.number,
          lesson_.title.in(o_.lang).c_str());
      say("%s\n", terminal_text(lesson_.summary.in(o_.lang)).c_str());
      if (lesson_.seed) {
        std::string values;
        for (const Param& p : lesson_.params)
          values += (values.empty() ? "" : ", ") + p.name + " = " + std::to_string(p.value);
        say("(%s %llu: %s)\n", o_.lang == Lang::kEs ? "variante de la semilla" : "variant of seed",
            static_cast<unsigned long long>(*lesson_.seed), values.c_str());
      }
      say("(%s: %s, backend %s%s%s)\n", o_.lang == Lang::kEs ? "invitado" : "guest",
          lesson_.guest.c_str(), std::string(backend_name).c_str(),
          o_.backend == backend::Kind::kSim ? ", " : "",
          o_.backend == backend::Kind::kSim ? (setup_.technique + ", " + setup_.paging + " paging").c_str() : "");
    }
    for (size_t i = 0; i < lesson_.steps.size(); ++i) {
      std::string failure = run_step(i);
      if (!failure.empty()) {
        result.failure = step_failure(lesson_, i, failure);
        say("%s %s\n", o_.check ? "FAIL" : "✗", result.failure.c_str());
        return result;
      }
      ++result.steps_done;
    }
    result.passed = true;
    if (!o_.check && !lesson_.sources.empty()) {
      say("\n%s:\n", o_.lang == Lang::kEs ? "Fuentes" : "Sources");
      for (const std::string& src : lesson_.sources) say("  - %s\n", src.c_str());
    }
    if (result_.questions && (!o_.check || o_.answers)) {
      if (o_.answers)
        say("score: %zu/%zu right\n", result_.right, result_.questions);
      else if (!o_.reveal && result_.right + result_.wrong.size() > 0)
        say("\n%s: %zu/%zu (%zu %s)\n", o_.lang == Lang::kEs ? "Puntuación" : "Score",
            result_.right, result_.questions, result_.first_try,
            o_.lang == Lang::kEs ? "a la primera" : "at the first try");
    }
    if (o_.check && !o_.answers)
      say("lesson %s on %s: all %zu steps passed\n", lesson_.id.c_str(),
          std::string(backend_name).c_str(), lesson_.steps.size());
    return result;
  }

 private:
  template <typename... A>
  void say(const char* fmt, A... args) {
    std::fprintf(o_.out, fmt, args...);
    std::fflush(o_.out);
  }
  void say(const char* text) { say("%s", text); }

  static std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  }

  void wait_enter(const char* prompt_es, const char* prompt_en) {
    if (o_.check || !o_.in || !*o_.in) return;
    say("  [%s]", o_.lang == Lang::kEs ? prompt_es : prompt_en);
    std::string line;
    std::getline(*o_.in, line);
  }

  // The student's answer to step i's question, typed: two tries, the lesson's hint between
  // them; --reveal prints the answer instead. Nothing is asked when the input has ended.
  void ask(size_t i, std::optional<uint64_t> event) {
    const Step& s = lesson_.steps[i];
    const Lang lang = o_.lang;
    const bool es = lang == Lang::kEs;
    ++result_.questions;
    if (o_.reveal) {
      say("  = %s\n", expected_text(*s.grade, lang, event).c_str());
      return;
    }
    if (!o_.in || !*o_.in) return;
    for (int attempt = 1; attempt <= kTries; ++attempt) {
      say("  %s ", es ? "Tu respuesta:" : "Your answer:");
      std::string line;
      if (!std::getline(*o_.in, line)) {
        say("\n");
        return;
      }
      if (accepts(*s.grade, line, event)) {
        ++result_.right;
        if (attempt == 1) ++result_.first_try;
        say("  ✓ %s\n", es ? "¡Correcto!" : "Right!");
        return;
      }
      const std::string why = unreadable(*s.grade, line, lang);
      say("  ✗ %s%s\n", es ? "No" : "No", why.empty() ? "." : (": " + why).c_str());
      if (attempt < kTries) {
        if (s.hint) say("  %s %s\n", es ? "Pista:" : "Hint:", terminal_text(s.hint->in(lang)).c_str());
        say("  %s\n", es ? "Prueba otra vez." : "Try again.");
      }
    }
    result_.wrong.push_back(wrong_line(i, "", *s.grade, event));
  }

  // Step i's answer from the answers file (--answers): right, or listed as wrong.
  void grade_from_file(size_t i, std::optional<uint64_t> event) {
    const Step& s = lesson_.steps[i];
    ++result_.questions;
    const auto it = o_.answers->find(i + 1);
    if (it != o_.answers->end() && accepts(*s.grade, it->second, event)) {
      ++result_.right;
      ++result_.first_try;
      say("step %zu: right\n", i + 1);
      return;
    }
    result_.wrong.push_back(wrong_line(i, it == o_.answers->end() ? "" : it->second, *s.grade, event));
    say("wrong: %s\n", result_.wrong.back().c_str());
  }

  std::string wrong_line(size_t i, const std::string& typed, const Grade& g,
                         std::optional<uint64_t> event) const {
    return "step " + std::to_string(i + 1) + " (" + lesson_.file + ":" +
           std::to_string(lesson_.steps[i].line) + "): " +
           (typed.empty() && o_.answers ? "no answer" : o_.answers ? "'" + typed + "'" : "answered wrong twice") +
           ", expected " + expected_text(g, Lang::kEn, event);
  }

  // Markdown for a terminal: **strong** in bold where stdout is a terminal, plain elsewhere.
  std::string terminal_text(const std::string& md) const {
    const bool tty = isatty(fileno(o_.out));
    std::string out;
    bool open = false;
    for (size_t i = 0; i < md.size(); ++i) {
      if (md.compare(i, 2, "**") == 0) {
        if (tty) out += open ? "\033[0m" : "\033[1m";
        open = !open;
        ++i;
      } else {
        out += md[i];
      }
    }
    if (open && tty) out += "\033[0m";
    return out;
  }

  // (Re)starts the guest from its first instruction on a fresh machine.
  void start() {
    machine_ = backend::make_backend(o_.backend, machine_config(lesson_, setup_));
    if (!load_guest(lesson_, *machine_))
      throw LessonError(lesson_.file + ": the parameter block does not fit in guest memory");
    sink_.pending.clear();
    ended_ = false;
    end_detail_.clear();
    exits_ = 0;
    traps_ = callouts_ = since_instructions_ = 0;
  }

  std::string run_step(size_t i) {
    const Step& s = lesson_.steps[i];
    const Lang lang = o_.lang;
    if (!o_.check) {
      say("\n── %s %zu/%zu", lang == Lang::kEs ? "Paso" : "Step", i + 1, lesson_.steps.size());
      if (s.title) say(": %s", s.title->in(lang).c_str());
      say(" ──\n%s\n", terminal_text(s.text.in(lang)).c_str());
      if (s.question) {
        say("\n? %s\n", terminal_text(s.question->in(lang)).c_str());
        if (s.grade && s.grade->kind == Grade::Kind::kChoice)
          say("  %s\n", options_text(*s.grade, lang).c_str());
        // A number or a choice is predicted before the action; an event is picked after it.
        if (s.grade && s.grade->kind != Grade::Kind::kEvent) ask(i, std::nullopt);
      }
    } else if (s.question && s.grade && s.grade->kind != Grade::Kind::kEvent && o_.answers) {
      grade_from_file(i, std::nullopt);
    }
    std::vector<std::vector<uint8_t>> seen;  // the events this step's action took
    if (s.restart) {
      setup_ = after_restart(setup_, *s.restart);
      start();
      if (!o_.check)
        say("(%s: %s, %s paging)\n",
            lang == Lang::kEs ? "el invitado vuelve a empezar" : "the guest starts again",
            setup_.technique.c_str(), setup_.paging.c_str());
    }
    if (s.run_until) {
      std::string failure = run_until(*s.run_until, seen);
      if (!failure.empty()) return failure;
    }
    if (std::string failure = check_step(s, seen.empty() ? nullptr : &header(seen.back()), exits_,
                                         machine_->devices().console.text());
        !failure.empty())
      return failure;
    const std::optional<uint64_t> event =
        seen.empty() ? std::nullopt : std::optional<uint64_t>(header(seen.back()).seq);
    const bool pick_event = s.question && s.grade && s.grade->kind == Grade::Kind::kEvent;
    if (o_.check) {
      if (pick_event && o_.answers) grade_from_file(i, event);
      if (!o_.answers)
        say("lesson %s step %zu ok%s%s\n", lesson_.id.c_str(), i + 1, seen.empty() ? "" : ": ",
            seen.empty() ? "" : event_line(header(seen.back())).c_str());
      return {};
    }
    // The answering event is always on screen; marked at once unless the student is to pick it.
    answer_ = !s.run_until || seen.empty() ? Answer::kNone : pick_event ? Answer::kPlain : Answer::kMarked;
    for (Show what : s.show) show(what, seen);
    if (answer_ != Answer::kNone &&
        std::find(s.show.begin(), s.show.end(), Show::kEvents) == s.show.end())
      show(Show::kEvents, pick_event ? seen : std::vector<std::vector<uint8_t>>(seen.end() - 1, seen.end()));
    if (pick_event) {
      ask(i, event);
      show_answering(seen);
    }
    if (s.expect || s.console || s.exits) say("✓ %s\n", lang == Lang::kEs ? "comprobado" : "checked");
    if (s.answer) {
      std::string expected;
      if (s.grade && !o_.reveal) expected = expected_text(*s.grade, lang, event) + ". ";
      say("\n→ %s%s\n", expected.c_str(), terminal_text(s.answer->in(lang)).c_str());
    }
    if (i + 1 < lesson_.steps.size()) wait_enter("Enter: siguiente paso", "Enter: next step");
    return {};
  }

  // Runs until an event matches `p`: the events taken, the matching one last, go to `seen`.
  // A message on failure: the guest's run ended first, or the run stopped without ending it
  // (the lesson's timeout: trace::ends_guest_run), which is no run_end either.
  std::string run_until(const Predicate& p, std::vector<std::vector<uint8_t>>& seen) {
    uint32_t mask = 0;
    if (std::string why = stop_mask_on(p, o_.backend, &mask); !why.empty()) return why;
    std::optional<backend::RunOutcome> stopped;
    for (;;) {
      while (!sink_.pending.empty()) {
        seen.push_back(std::move(sink_.pending.front()));
        sink_.pending.pop_front();
        const EventHeader& e = header(seen.back());
        if (trace::is_vm_exit(e)) ++exits_;
        if (e.type == trace::EventType::kVmmTrap) ++traps_;
        if (e.type == trace::EventType::kBtCallout) ++callouts_;
        if (p.matches(e)) return {};
        if (e.type == trace::EventType::kRunEnd) return ended_before(e, end_detail_, p);
      }
      if (ended_) return "the guest's run has already ended; nothing more happens";
      if (stopped) return stopped_before(*stopped, p);
      backend::StopCondition sc;
      sc.timeout_s = lesson_.timeout_s;
      sc.stop_on = mask;
      const backend::RunOutcome r = machine_->run(sc, &sink_);
      instructions_ += r.instructions;
      run_ns_ += r.duration_ns;
      since_instructions_ += r.instructions;
      if (!trace::ends_guest_run(r.reason)) {
        // Stopped at an event of the mask (the loop looks at it), or short of one.
        if (r.reason != trace::RunEndReason::kEventMatched) stopped = r;
      } else {
        ended_ = true;
        end_detail_ = r.detail;
        trace::RunEndEvent end{};
        end.header.type = trace::EventType::kRunEnd;
        end.header.size = sizeof end;
        end.header.cpl = trace::kCplUnknown;
        end.header.rip = machine_->registers().rip;
        end.reason = r.reason;
        end.exit_code = r.exit_code;
        end.exits = exits_;
        for (const auto& rec : sink_.pending)
          end.exits += trace::is_vm_exit(header(rec));
        end.duration_ns = r.duration_ns;
        sink_.push(&end, sizeof end);
      }
    }
  }

  // "the run stopped (time limit: the lesson's timeout is 10 s an action) before vm_exit …"
  std::string stopped_before(const backend::RunOutcome& r, const Predicate& p) const {
    std::string why(trace::to_string(r.reason));
    if (r.reason == trace::RunEndReason::kTimeLimit) {
      char t[64];
      std::snprintf(t, sizeof t, ": the lesson's timeout is %g s an action", lesson_.timeout_s);
      why += t;
    } else if (!r.detail.empty()) {
      why += ": " + r.detail;
    }
    return "the run stopped (" + why + ") before " + p.describe();
  }

  // The event the step's action stopped on, marked: "▶ #12 vm_exit IO …".
  void show_answering(const std::vector<std::vector<uint8_t>>& seen) {
    const bool tty = isatty(fileno(o_.out));
    say("%s▶ %s%s\n", tty ? "\033[1m" : "", event_line(header(seen.back())).c_str(),
        tty ? "\033[0m" : "");
  }

  void show(Show what, const std::vector<std::vector<uint8_t>>& seen) {
    const Lang lang = o_.lang;
    switch (what) {
      case Show::kEvents: {
        // The first events, then the one the step stopped on (the answer): always printed, and
        // marked unless the student is to pick it, whatever is elided between them.
        const bool last = answer_ != Answer::kNone && !seen.empty();
        const size_t before = seen.size() - (last ? 1 : 0);  // the events before the answer
        const size_t shown = std::min(before, kShownEvents - (last ? 1 : 0));
        for (size_t k = 0; k < shown; ++k) say("  %s\n", event_line(header(seen[k])).c_str());
        if (before > shown)
          say("  … %zu %s\n", before - shown, lang == Lang::kEs ? "eventos más" : "more events");
        if (last && answer_ == Answer::kMarked) show_answering(seen);
        else if (last) say("  %s\n", event_line(header(seen.back())).c_str());
        break;
      }
      case Show::kRegisters: {
        const x86::CpuState r = machine_->registers();
        say("  rip=0x%" PRIx64 " rsp=0x%" PRIx64 " rflags=0x%" PRIx64 " CPL=%u\n", r.rip,
            r.gpr[4], r.rflags, r.cpl());
        say("  cr0=0x%" PRIx64 " cr3=0x%" PRIx64 " cr4=0x%" PRIx64 " efer=0x%" PRIx64 "\n", r.cr0,
            r.cr3, r.cr4, r.efer);
        break;
      }
      case Show::kStats:
        if (o_.backend == backend::Kind::kSim)
          say("  %s: %" PRIu64 "\n",
              lang == Lang::kEs ? "instrucciones ejecutadas hasta ahora"
                                : "instructions executed so far",
              instructions_);
        // The host time the actions took (what a cost per instruction divides).
        char ms[32];
        std::snprintf(ms, sizeof ms, "%.1f", static_cast<double>(run_ns_) / 1e6);
        if (lang == Lang::kEs) *std::strchr(ms, '.') = ',';  // a decimal comma in Spanish
        say("  %s: %s ms\n",
            lang == Lang::kEs ? "tiempo del anfitrión en las acciones hasta ahora"
                              : "host time of the actions so far",
            ms);
        say("%s", stats_.table().c_str());
        break;
      case Show::kEfficiency: {
        if (o_.backend != backend::Kind::kSim) break;  // KVM does not count instructions
        const Efficiency e =
            efficiency(setup_.technique, since_instructions_, exits_, traps_, callouts_);
        say("  %s\n", efficiency_line(e, setup_.technique, lang).c_str());
        say("  (%s %" PRIu64 ", %s %" PRIu64 ", callouts %" PRIu64 ")\n",
            "VM exits", exits_, lang == Lang::kEs ? "traps al VMM" : "VMM traps", traps_, callouts_);
        break;
      }
      case Show::kConsole:
        say("  %s: %s\n", lang == Lang::kEs ? "consola" : "console",
            machine_->devices().console.text().c_str());
        break;
    }
  }

  const Lesson& lesson_;
  const RunnerOptions& o_;
  std::unique_ptr<backend::Backend> machine_;
  bool ended_ = false;
  std::string end_detail_;
  Setup setup_ = initial_setup(lesson_);  // what the guest runs under now
  trace::ExitStats stats_;
  PendingSink sink_{stats_};
  uint64_t instructions_ = 0;
  uint64_t run_ns_ = 0;  // host time of the run calls
  // Since the guest (re)started: instructions, VMM traps, BT callouts (exits_: VM exits).
  uint64_t since_instructions_ = 0, traps_ = 0, callouts_ = 0;
  uint64_t exits_ = 0;
  // The last event of the step's action, its run_until match: none (no action), marked ▶, or
  // plain (the student is to pick it: marked after the answer).
  enum class Answer : uint8_t { kNone, kMarked, kPlain };
  Answer answer_ = Answer::kNone;
  LessonResult result_;
  static constexpr int kTries = 2;  // a wrong answer, the hint, another try; then the reveal
};

}  // namespace

LessonResult run_lesson(const Lesson& lesson, const RunnerOptions& options) {
  return Session(lesson, options).run();
}

}  // namespace trapscope::lessons

namespace trapscope::lessons {

Answers parse_answers(std::string_view text, const std::string& file) {
  Answers a;
  size_t number = 0;
  for (size_t start = 0; start < text.size(); ) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string line(text.substr(start, end - start));
    start = end + 1;
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t b = line.find_first_not_of(" \t");
    if (b == std::string::npos || line[b] == '#') continue;
    const std::string where = file + ":" + std::to_string(number) + ": ";
    const size_t colon = line.find(':');
    if (colon == std::string::npos)
      throw LessonError(where + "expected 'STEP: ANSWER' (or 'seed: N'), got '" + line + "'");
    std::string key = line.substr(b, colon - b);
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.pop_back();
    std::string value = line.substr(colon + 1);
    value.erase(0, std::min(value.size(), value.find_first_not_of(" \t")));
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
    if (key == "seed") {
      const auto s = parse_value_number(value);
      if (!s) throw LessonError(where + "seed: must be a number");
      a.seed = *s;
      continue;
    }
    const auto step = parse_value_number(key);
    if (!step || *step == 0 || *step > 999)
      throw LessonError(where + "'" + key + "' is not a step number (1, 2, …)");
    if (!a.by_step.emplace(*step, value).second)
      throw LessonError(where + "a second answer for step " + key);
  }
  return a;
}

}  // namespace trapscope::lessons
