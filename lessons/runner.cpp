#include "lessons/runner.hpp"

#include <unistd.h>

#include <cinttypes>
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
    const auto guest = guests::find(lesson_.guest);
    if (!guest) throw LessonError(lesson_.file + ": guest: '" + lesson_.guest + "' is not built in");
    const std::string_view backend_name = o_.backend == backend::Kind::kKvm ? "kvm" : "sim";
    if (!lesson_.allows(backend_name))
      throw LessonError("lesson " + lesson_.id + " does not run on " + std::string(backend_name) +
                        " (backends: " + join(lesson_.backends) + ")");
    start();
    LessonResult result;
    if (!o_.check) {
      say("\n%s %d — %s\n", o_.lang == Lang::kEs ? "Lección" : "Lesson", lesson_.number,
          lesson_.title.in(o_.lang).c_str());
      say("%s\n", terminal_text(lesson_.summary.in(o_.lang)).c_str());
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
    if (o_.check)
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
    machine_->load(guest_image(lesson_));
    sink_.pending.clear();
    ended_ = false;
    end_detail_.clear();
    exits_ = 0;
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
        wait_enter("Enter: ejecutar y ver la respuesta", "Enter: run and see the answer");
      }
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
    if (o_.check) {
      say("lesson %s step %zu ok%s%s\n", lesson_.id.c_str(), i + 1, seen.empty() ? "" : ": ",
          seen.empty() ? "" : event_line(header(seen.back())).c_str());
      return {};
    }
    for (Show what : s.show) show(what, seen);
    if (s.expect || s.console || s.exits) say("✓ %s\n", lang == Lang::kEs ? "comprobado" : "checked");
    if (s.answer) say("\n→ %s\n", terminal_text(s.answer->in(lang)).c_str());
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

  void show(Show what, const std::vector<std::vector<uint8_t>>& seen) {
    const Lang lang = o_.lang;
    switch (what) {
      case Show::kEvents: {
        size_t shown = 0, total = 0;
        for (const auto& r : seen) {
          const EventHeader& e = header(r);
          ++total;
          if (shown < 16) {
            say("  %s\n", event_line(e).c_str());
            ++shown;
          }
        }
        if (total > shown)
          say("  … %zu %s\n", total - shown, lang == Lang::kEs ? "eventos más" : "more events");
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
        say("%s", stats_.table().c_str());
        break;
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
  uint64_t exits_ = 0;
};

}  // namespace

LessonResult run_lesson(const Lesson& lesson, const RunnerOptions& options) {
  return Session(lesson, options).run();
}

}  // namespace trapscope::lessons
