// Lessons (lessons/): the format's validation, the predicates, and every built-in lesson
// checked on every backend it allows, as `trapscope lesson check` does; then what the graded lessons added:
// the answering event always shown, graded questions (lessons/grade.hpp), seeded variants
// (lessons/params.hpp), the authoring checks (`lesson check FILE`), and the content fixes, each
// with the text it guards.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>

#include "guests/guest_catalog.hpp"
#include "lessons/runner.hpp"
#include "lessons/step.hpp"
#include "tests/support.hpp"

using namespace trapscope;
using lessons::Lang;
using lessons::LessonError;
using lessons::parse_lesson;

namespace {

const char* kMinimal = R"(id: tiny
number: 50
title: {es: Pequeña, en: Tiny}
summary: {es: Un resumen, en: A summary}
guest: hello
backends: [sim]
steps:
  - text: {es: Primer paso, en: First step}
    run_until: {event: vm_exit, reason: IO}
    expect: {port: 0xe9, value: 0x48}
)";

// The error for `yaml`, or "" if it parses.
std::string error_of(const std::string& yaml) {
  try {
    parse_lesson(yaml, "t.yaml");
  } catch (const LessonError& e) {
    return e.what();
  }
  return "";
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  REQUIRE(at != std::string::npos);
  return s.replace(at, from.size(), to);
}

lessons::LessonResult check(const lessons::Lesson& l, backend::Kind kind) {
  lessons::RunnerOptions o;
  o.check = true;
  o.backend = kind;
  o.out = std::tmpfile();
  auto r = lessons::run_lesson(l, o);
  std::fclose(o.out);
  return r;
}

}  // namespace

TEST_CASE("every built-in lesson parses, in both languages, with unique ids and numbers",
          "[lessons]") {
  const auto all = lessons::builtin_lessons();
  REQUIRE(all.size() >= 6);
  std::set<std::string> ids;
  std::set<int> numbers;
  for (const auto& l : all) {
    CHECK(ids.insert(l.id).second);
    CHECK(numbers.insert(l.number).second);
    CHECK(!l.title.es.empty());
    CHECK(l.title.es != l.title.en);  // a translation, not a copy
    for (const auto& s : l.steps) CHECK(s.text.es != s.text.en);
  }
}

TEST_CASE("every built-in lesson passes its own checks on the simulator", "[lessons]") {
  for (const auto& l : lessons::builtin_lessons()) {
    if (!l.allows("sim")) continue;
    INFO("lesson " << l.id);
    const auto r = check(l, backend::Kind::kSim);
    INFO(r.failure);
    CHECK(r.passed);
    CHECK(r.steps_done == l.steps.size());
  }
}

TEST_CASE("every built-in lesson passes its own checks on KVM", "[lessons][kvm]") {
  REQUIRE_KVM_OR_SKIP();
  for (const auto& l : lessons::builtin_lessons()) {
    if (!l.allows("kvm")) continue;
    INFO("lesson " << l.id);
    const auto r = check(l, backend::Kind::kKvm);
    INFO(r.failure);
    CHECK(r.passed);
  }
}

TEST_CASE("a lesson whose expectation does not hold fails at that step, naming it",
          "[lessons]") {
  auto l = parse_lesson(replace(kMinimal, "value: 0x48", "value: 0x49"), "t.yaml");
  auto r = check(l, backend::Kind::kSim);
  CHECK_FALSE(r.passed);
  CHECK(r.steps_done == 0);
  CHECK_THAT(r.failure, Catch::Contains("step 1 (t.yaml:8)") &&
                            Catch::Contains("value is 0x48, expected 0x49"));

  // Running past the end of the guest's run fails too, and says how the run ended.
  l = parse_lesson(replace(kMinimal, "reason: IO}", "reason: MMIO}"), "t.yaml");
  r = check(l, backend::Kind::kSim);
  CHECK_FALSE(r.passed);
  CHECK_THAT(r.failure, Catch::Contains("run ended (guest halted)"));

  // The console and exit-count expectations.
  l = parse_lesson(std::string(kMinimal) + "    exits: 2\n", "t.yaml");
  r = check(l, backend::Kind::kSim);
  CHECK_THAT(r.failure, Catch::Contains("expected 2 VM exits since the lesson started; there were 1"));
  l = parse_lesson(std::string(kMinimal) + "    console: Hx\n", "t.yaml");
  CHECK_THAT(check(l, backend::Kind::kSim).failure, Catch::Contains("console to contain \"Hx\""));
}

TEST_CASE("a malformed lesson gets an error naming the file, line and field", "[lessons]") {
  CHECK(error_of(kMinimal).empty());
  CHECK(error_of("id: [unclosed\n").find("t.yaml:") == 0);
  CHECK_THAT(error_of("- a list\n"), Catch::Contains("a lesson file is a map"));
  CHECK(error_of(replace(kMinimal, "id: tiny\n", "")) == "t.yaml:1: id: missing");
  CHECK(error_of(replace(kMinimal, "id: tiny", "id: Tiny Lesson")) ==
        "t.yaml:1: id: use lower-case letters, digits and '-'");
  CHECK(error_of(replace(kMinimal, "title: {es: Pequeña, en: Tiny}", "title: {en: Tiny}")) ==
        "t.yaml:3: title.es: missing (every text comes in Spanish and English)");
  CHECK_THAT(error_of(replace(kMinimal, "guest: hello", "guest: nothere")),
             Catch::StartsWith("t.yaml:5: guest: 'nothere' is not a built-in guest"));
  CHECK_THAT(error_of(replace(kMinimal, "backends: [sim]", "backends: [vmware]")),
             Catch::StartsWith("t.yaml:6: backends: unknown backend 'vmware'"));
  CHECK_THAT(error_of(replace(kMinimal, "event: vm_exit", "event: vmexot")),
             Catch::StartsWith("t.yaml:9: steps[1].run_until.event: unknown event kind 'vmexot'"));
  CHECK_THAT(error_of(replace(kMinimal, "reason: IO", "vector: 3")),
             Catch::StartsWith("t.yaml:9: steps[1].run_until.vector: not a field of vm_exit"));
  CHECK_THAT(error_of(replace(kMinimal, "    run_until: {event: vm_exit, reason: IO}\n", "")),
             Catch::StartsWith("t.yaml:9: steps[1].expect: needs a run_until"));
  CHECK_THAT(error_of(std::string(kMinimal) + "    question: {es: \"¿Sí?\", en: \"Yes?\"}\n"),
             Catch::StartsWith("t.yaml:8: steps[1].answer: a question needs its answer"));
  CHECK_THAT(error_of(std::string(kMinimal) + "    colour: red\n"),
             Catch::StartsWith("t.yaml:11: steps[1].colour: unknown field"));
  CHECK_THAT(error_of(std::string(kMinimal) + "    show: [everything]\n"),
             Catch::StartsWith("t.yaml:11: steps[1].show: unknown 'everything'"));
  // Values are checked when the file is read, not when the step runs.
  CHECK(error_of(replace(kMinimal, "port: 0xe9", "port: abc")) ==
        "t.yaml:10: steps[1].expect.port: must be a number 0..0xffff (decimal or 0x-hexadecimal)");
  CHECK_THAT(error_of(replace(kMinimal, "port: 0xe9", "port: 0x10000")),
             Catch::StartsWith("t.yaml:10: steps[1].expect.port: must be a number 0..0xffff"));
  CHECK_THAT(error_of(replace(kMinimal, "reason: IO", "reason: IOO")),
             Catch::StartsWith("t.yaml:9: steps[1].run_until.reason: unknown 'IOO' (EXCEPTION, IO,"));
  CHECK_THAT(error_of(replace(kMinimal, "reason: IO}", "reason: io, direction: sideways}")),
             Catch::StartsWith("t.yaml:9: steps[1].run_until.direction: unknown 'sideways' (in, out)"));
  CHECK_THAT(error_of(replace(kMinimal, "reason: IO}", "cpl: 4}")),
             Catch::StartsWith("t.yaml:9: steps[1].run_until.cpl: must be a number 0..3"));
  CHECK_THAT(error_of(replace(kMinimal, "reason: IO}", "mnemonic: out dx}")),
             Catch::StartsWith("t.yaml:9: steps[1].run_until.mnemonic: must be one instruction"));
  CHECK(error_of(replace(kMinimal, "reason: IO}", "reason: HYPERCALL, result: -22}")).empty());
  CHECK(error_of(replace(replace(kMinimal, "    expect: {port: 0xe9, value: 0x48}\n", ""),
                         "{event: vm_exit, reason: IO}", "{event: run_end, reason: Triple Fault}"))
            .empty());
  const std::string kMinimal_head(kMinimal, std::string_view(kMinimal).find("steps:"));
  CHECK_THAT(error_of(kMinimal_head + "steps: []\n"),
             Catch::Contains("steps: a non-empty list"));
}

TEST_CASE("lessons restart the guest under another technique, its events are predicates",
          "[lessons]") {
  // Validation: techniques other than emulation, and restarts, need the simulator only.
  CHECK_THAT(error_of(replace(kMinimal, "backends: [sim]", "backends: [sim]\ntechnique: binary")),
             Catch::StartsWith("t.yaml:7: technique: unknown technique 'binary'"));
  CHECK_THAT(error_of(replace(kMinimal, "backends: [sim]", "backends: [kvm, sim]\ntechnique: vt")),
             Catch::Contains("technique: a technique other than emulation or pv needs backends: [sim]"));
  CHECK_THAT(error_of(std::string(kMinimal) + "    restart: {technique: vt, deprivilege: 2}\n"),
             Catch::StartsWith("t.yaml:11: steps[1].restart.deprivilege: the guest kernel's real CPL"));
  CHECK_THAT(error_of(replace(kMinimal, "backends: [sim]", "backends: [kvm]") +
                      "    restart: {technique: vt}\n"),
             Catch::Contains("steps[1].restart: restarting under a technique needs backends: [sim]"));

  CHECK_THAT(error_of(replace(kMinimal, "backends: [sim]", "backends: [sim]\npaging: npt")),
             Catch::StartsWith("t.yaml:7: paging: unknown paging 'npt'"));
  CHECK_THAT(error_of(replace(kMinimal, "backends: [sim]", "backends: [kvm, sim]\npaging: ept")),
             Catch::Contains("paging: shadow or nested paging needs backends: [sim]"));

  // The popek guest: a privileged instruction traps under trap-and-emulate (real CPL 3 here),
  // then the same guest restarted under the VT-x model exits on its first `out`.
  const std::string popek = R"(id: p
number: 51
title: {es: P, en: P}
summary: {es: P, en: P}
guest: popek
backends: [sim]
technique: trap-emulate
deprivilege: 3
steps:
  - text: {es: uno, en: one}
    run_until: {event: vmm_trap, mnemonic: lgdt}
    expect: {real_cpl: 3, cpl: 0}
  - text: {es: dos, en: two}
    run_until: {event: sensitive_no_trap, mnemonic: smsw}
  - text: {es: tres, en: three}
    restart: {technique: vt}
    run_until: {event: vm_transition}
    expect: {exit_reason: 30, entry: 0, mnemonic: out, qualification: 0xe90000}
    exits: 0
  - text: {es: cuatro, en: four}
    run_until: {event: vm_transition, entry: 1}
    expect: {exit_reason: 30}
    exits: 1
)";
  auto r = check(parse_lesson(popek, "p.yaml"), backend::Kind::kSim);
  INFO(r.failure);
  CHECK(r.passed);
  // Under emulation there are no VMM traps: the run ends first.
  r = check(parse_lesson(replace(popek, "technique: trap-emulate", "technique: emulation"), "p.yaml"),
            backend::Kind::kSim);
  CHECK_THAT(r.failure, Catch::Contains("step 1") && Catch::Contains("run ended (guest halted)"));
}

TEST_CASE("lessons restart the guest under shadow and nested paging", "[lessons]") {
  const std::string paging = R"(id: m
number: 52
title: {es: M, en: M}
summary: {es: M, en: M}
guest: paging
backends: [sim]
steps:
  - text: {es: uno, en: one}
    run_until: {event: exception, vector: 14}
    expect: {error_code: 0x2, cr2: 0x200000}
  - text: {es: dos, en: two}
    restart: {paging: shadow}
    run_until: {event: shadow, action: true page fault}
    expect: {linear: 0x200000, access: write, error_code: 0x2}
  - text: {es: tres, en: three}
    restart: {paging: ept}
    run_until: {event: ept_violation}
    expect: {exit_reason: 48, resolution: mapped}
  - text: {es: cuatro, en: four}
    run_until: {event: nested_walk, references: 24}
    expect: {guest_levels: 4}
)";
  auto r = check(parse_lesson(paging, "m.yaml"), backend::Kind::kSim);
  INFO(r.failure);
  CHECK(r.passed);
  // Natively there are no shadow-paging events: the run ends first.
  r = check(parse_lesson(replace(paging, "restart: {paging: shadow}", "restart: {paging: native}"),
                         "m.yaml"),
            backend::Kind::kSim);
  CHECK_THAT(r.failure, Catch::Contains("step 2") && Catch::Contains("run ended (guest exit code)"));
}

TEST_CASE("predicates match an event's fields, a paused run is not a run end", "[lessons]") {
  trace::VmExitEvent io{};
  io.header.type = trace::EventType::kVmExit;
  io.header.size = sizeof io;
  io.header.cpl = 3;
  io.reason = static_cast<uint32_t>(trace::ExitReason::kIo);
  io.payload.io = {0x3f8, 1, 1, 1, 0x41, {}};
  lessons::Predicate p{lessons::EventKind::kVmExit,
                       {{"reason", "io", std::nullopt}, {"port", "0x3f8", 0x3f8},
                        {"direction", "out", std::nullopt}, {"cpl", "3", 3}}};
  CHECK(p.matches(io.header));
  p.conditions.push_back({"value", "0x42", 0x42});
  CHECK_FALSE(p.matches(io.header));
  CHECK(p.mismatch(io.header) == "value is 0x41, expected 0x42");
  CHECK(p.describe() == "vm_exit reason=io port=0x3f8 direction=out cpl=3 value=0x42");

  trace::RunEndEvent end{};
  end.header.type = trace::EventType::kRunEnd;
  end.header.size = sizeof end;
  end.reason = trace::RunEndReason::kEventMatched;
  const lessons::Predicate any_end{lessons::EventKind::kRunEnd, {}};
  CHECK_FALSE(any_end.matches(end.header));
  end.reason = trace::RunEndReason::kGuestExit;
  CHECK(any_end.matches(end.header));
  CHECK_FALSE(p.matches(end.header));
  CHECK(*lessons::field_value(end.header, "reason") == "guest exit code");
}

TEST_CASE("a run that only stopped is no run_end: a time, exit or stop limit is not the end",
          "[lessons]") {
  // One definition (trace::ends_guest_run) for the lesson runner and the live controller, which
  // shows a run end only when the guest's run is over and can run on after the others.
  const lessons::Predicate any_end{lessons::EventKind::kRunEnd, {}};
  trace::RunEndEvent end{};
  end.header.type = trace::EventType::kRunEnd;
  end.header.size = sizeof end;
  for (auto r : {trace::RunEndReason::kTimeLimit, trace::RunEndReason::kExitLimit,
                 trace::RunEndReason::kStopped}) {
    INFO(trace::to_string(r));
    end.reason = r;
    CHECK_FALSE(trace::ends_guest_run(r));
    CHECK_FALSE(any_end.matches(end.header));
  }
  for (auto r : {trace::RunEndReason::kHalted, trace::RunEndReason::kGuestExit,
                 trace::RunEndReason::kTripleFault, trace::RunEndReason::kConsoleLimit,
                 trace::RunEndReason::kEventLimit}) {
    INFO(trace::to_string(r));
    end.reason = r;
    CHECK(trace::ends_guest_run(r));
    CHECK(any_end.matches(end.header));
  }

  // A step that waits for the run's end but whose action reaches the lesson's timeout first
  // fails, saying so; it does not pass as if the guest had ended. (A timeout of 0 s ends the
  // simulator's run at its first clock check, before the first instruction.)
  auto l = parse_lesson(replace(kMinimal, "run_until: {event: vm_exit, reason: IO}\n"
                                          "    expect: {port: 0xe9, value: 0x48}",
                                "run_until: {event: run_end}"),
                        "t.yaml");
  l.timeout_s = 0;
  const auto r = check(l, backend::Kind::kSim);
  CHECK_FALSE(r.passed);
  CHECK_THAT(r.failure, Catch::Contains("the run stopped (time limit: the lesson's timeout is 0 s "
                                        "an action) before run_end"));
}

TEST_CASE("trapscope lesson: list, run in both languages, check, bad input", "[lessons][cli]") {
  auto r = test::run_trapscope({"lesson", "list", "--lang", "es"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("Anillos y traps"));

  // Interactive mode with no terminal input runs through (stdin at EOF: no waiting).
  r = test::run_trapscope({"lesson", "run", "vm-exit", "--backend", "sim", "--lang", "es"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("Paso 2/4: La primera salida") &&
                        Catch::Contains("value=0x48 'H'") && Catch::Contains("→ 0x48"));
  r = test::run_trapscope({"lesson", "run", "1", "--backend", "sim", "--lang", "en", "--check"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("lesson vm-exit on sim: all 4 steps passed"));

  r = test::run_trapscope({"lesson", "run", "no-such-lesson"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("no lesson 'no-such-lesson'"));
  r = test::run_trapscope({"lesson", "run", "rings", "--backend", "kvm"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("does not run on kvm"));

  const std::string bad = test::temp_path("bad-lesson.yaml");
  const std::string text = replace(kMinimal, "event: vm_exit", "event: vmexot");
  test::write_file(bad, {text.begin(), text.end()});
  r = test::run_trapscope({"lesson", "run", bad, "--check"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains(bad + ":9: steps[1].run_until.event"));

  const std::string failing = test::temp_path("failing-lesson.yaml");
  const std::string text2 = replace(kMinimal, "value: 0x48", "value: 0x49");
  test::write_file(failing, {text2.begin(), text2.end()});
  r = test::run_trapscope({"lesson", "run", failing, "--check"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.out, Catch::Contains("FAIL step 1"));
}

namespace {

// kMinimal with a graded question (a number, a hint, the answer): what the grading tests run.
const std::string kTiny = [] {
  std::string s = kMinimal;
  const std::string question =
      "    question: {es: \"¿Qué byte?\", en: \"Which byte?\"}\n"
      "    grade: {number: 0x48}\n"
      "    hint: {es: \"Es la H\", en: \"It is the H\"}\n";
  s.insert(s.find("    run_until:"), question);
  return s + "    answer: {es: \"0x48\", en: \"0x48\"}\n";
}();

struct Run {
  lessons::LessonResult result;
  std::string out;
};

// Runs `l` on the simulator as a terminal would, with `typed` as the student's input.
Run run_with(const lessons::Lesson& l, Lang lang, const std::string& typed, bool check = false,
             const std::map<size_t, std::string>* answers = nullptr, bool reveal = false) {
  std::istringstream in(typed);
  lessons::RunnerOptions o;
  o.lang = lang;
  o.backend = backend::Kind::kSim;
  o.out = std::tmpfile();
  o.in = &in;
  o.check = check;
  o.answers = answers;
  o.reveal = reveal;
  Run r;
  r.result = lessons::run_lesson(l, o);
  std::fflush(o.out);
  std::rewind(o.out);
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, o.out)) > 0;) r.out.append(buf, n);
  std::fclose(o.out);
  return r;
}

const lessons::Lesson& builtin(const std::vector<lessons::Lesson>& all, const std::string& id) {
  for (const auto& l : all)
    if (l.id == id) return l;
  FAIL("no built-in lesson " << id);
  throw 0;
}

// Every Spanish text of a lesson, joined.
std::string spanish(const lessons::Lesson& l) {
  std::string s = l.title.es + "\n" + l.summary.es + "\n";
  for (const auto& st : l.steps) {
    if (st.title) s += st.title->es + "\n";
    s += st.text.es + "\n";
    if (st.question) s += st.question->es + "\n";
    if (st.answer) s += st.answer->es + "\n";
    if (st.hint) s += st.hint->es + "\n";
  }
  return s;
}

}  // namespace

TEST_CASE("grading: numbers with tolerance, choices by id, text or position, events", "[lessons]") {
  lessons::Grade n;
  n.kind = lessons::Grade::Kind::kNumber;
  n.number = 0x48;
  n.number_text = "0x48";
  CHECK(lessons::accepts(n, "0x48", std::nullopt));
  CHECK(lessons::accepts(n, " 72 ", std::nullopt));
  CHECK(lessons::accepts(n, "0X48", std::nullopt));
  CHECK_FALSE(lessons::accepts(n, "0x41", std::nullopt));
  CHECK_FALSE(lessons::accepts(n, "42", std::nullopt));
  CHECK_FALSE(lessons::accepts(n, "H", std::nullopt));
  CHECK(lessons::unreadable(n, "H", Lang::kEn) == "not a number (decimal or 0x…)");
  CHECK(lessons::unreadable(n, "0x41", Lang::kEn).empty());

  n.number = 3800000;
  n.number_text = "3800000";
  n.tolerance = 0.5;
  n.relative = true;
  CHECK(lessons::accepts(n, "3.8e6", std::nullopt));
  CHECK(lessons::accepts(n, "2000000", std::nullopt));
  CHECK(lessons::accepts(n, "3,8e6", std::nullopt));  // a decimal comma
  CHECK(lessons::accepts(n, "3_800_000", std::nullopt));
  CHECK_FALSE(lessons::accepts(n, "1000000", std::nullopt));
  CHECK_FALSE(lessons::accepts(n, "38000000", std::nullopt));
  CHECK(lessons::expected_text(n, Lang::kEs, std::nullopt) == "3800000 ± 50%");

  lessons::Grade c;
  c.kind = lessons::Grade::Kind::kChoice;
  c.choice = "yes";
  c.options = {{"yes", "sí", "yes"}, {"no", "no", "no"}};
  CHECK(lessons::accepts(c, "Sí", std::nullopt));
  CHECK(lessons::accepts(c, "si", std::nullopt));  // accents are optional
  CHECK(lessons::accepts(c, "YES", std::nullopt));
  CHECK(lessons::accepts(c, "1", std::nullopt));
  CHECK_FALSE(lessons::accepts(c, "2", std::nullopt));
  CHECK_FALSE(lessons::accepts(c, "no", std::nullopt));
  CHECK(lessons::unreadable(c, "quizá", Lang::kEs) == "no es ninguna de las opciones: 1) sí  2) no");
  CHECK(lessons::expected_text(c, Lang::kEs, std::nullopt) == "sí");

  lessons::Grade e;
  e.kind = lessons::Grade::Kind::kEvent;
  CHECK(lessons::accepts(e, "#12", 12));
  CHECK(lessons::accepts(e, "12", 12));
  CHECK_FALSE(lessons::accepts(e, "#11", 12));
  CHECK(lessons::expected_text(e, Lang::kEn, 12) == "#12");
}

TEST_CASE("a wrong typed answer is not accepted: the hint, another try, then the reveal",
          "[lessons]") {
  const auto l = lessons::parse_lesson(kTiny, "t.yaml");
  // Wrong, then right: the hint between them, one right answer (not at the first try).
  auto r = run_with(l, Lang::kEs, "0x41\n0x48\n");
  CHECK(r.result.passed);
  CHECK_THAT(r.out, Catch::Contains("Tu respuesta: ") && Catch::Contains("✗ No.") &&
                        Catch::Contains("Pista: Es la H") && Catch::Contains("Prueba otra vez.") &&
                        Catch::Contains("✓ ¡Correcto!") &&
                        Catch::Contains("Puntuación: 1/1 (0 a la primera)"));
  CHECK(r.result.right == 1);
  CHECK(r.result.first_try == 0);
  // Wrong twice: no third try, the answer is revealed, the score says so.
  r = run_with(l, Lang::kEn, "42\n0x41\n0x48\n");
  CHECK(r.result.right == 0);
  REQUIRE(r.result.wrong.size() == 1);
  CHECK_THAT(r.result.wrong[0], Catch::Contains("expected 0x48"));
  CHECK_THAT(r.out, Catch::Contains("Hint: It is the H") && Catch::Contains("→ 0x48. 0x48") &&
                        Catch::Contains("Score: 0/1 (0 at the first try)"));
  // Something that is no answer at all is said so.
  r = run_with(l, Lang::kEn, "H\n0x48\n");
  CHECK_THAT(r.out, Catch::Contains("✗ No: not a number (decimal or 0x…)"));
  // Right at once.
  r = run_with(l, Lang::kEn, "72\n");
  CHECK(r.result.first_try == 1);
  CHECK_THAT(r.out, Catch::Contains("Score: 1/1 (1 at the first try)"));
  // --reveal: the answer, nothing asked.
  r = run_with(l, Lang::kEn, "", false, nullptr, true);
  CHECK_THAT(r.out, Catch::Contains("  = 0x48\n"));
  CHECK_THAT(r.out, !Catch::Contains("Your answer"));
}

TEST_CASE("an answers file grades without asking: the wrong ones are listed", "[lessons]") {
  const auto l = lessons::parse_lesson(kTiny, "t.yaml");
  std::map<size_t, std::string> right{{1, "0x48"}}, wrong{{1, "0x41"}}, none;
  auto r = run_with(l, Lang::kEn, "", true, &right);
  CHECK(r.result.wrong.empty());
  CHECK_THAT(r.out, Catch::Contains("step 1: right") && Catch::Contains("score: 1/1 right"));
  r = run_with(l, Lang::kEn, "", true, &wrong);
  REQUIRE(r.result.wrong.size() == 1);
  CHECK(r.result.wrong[0] == "step 1 (t.yaml:8): '0x41', expected 0x48");
  r = run_with(l, Lang::kEn, "", true, &none);
  REQUIRE(r.result.wrong.size() == 1);
  CHECK(r.result.wrong[0] == "step 1 (t.yaml:8): no answer, expected 0x48");

  const auto a = lessons::parse_answers("# lesson tiny\nseed: 7\n\n1: 0x48 \n 4 : sí\n", "a.txt");
  CHECK(a.seed == 7u);
  CHECK(a.by_step.at(1) == "0x48");
  CHECK(a.by_step.at(4) == "sí");
  CHECK_THROWS_WITH(lessons::parse_answers("1: a\n1: b\n", "a.txt"),
                    "a.txt:2: a second answer for step 1");
  CHECK_THROWS_WITH(lessons::parse_answers("x: a\n", "a.txt"),
                    "a.txt:1: 'x' is not a step number (1, 2, …)");
  CHECK_THROWS_WITH(lessons::parse_answers("just text\n", "a.txt"),
                    Catch::StartsWith("a.txt:1: expected 'STEP: ANSWER'"));
}

TEST_CASE("trapscope lesson run --answers exits 0 or 1, --reveal tells the answers",
          "[lessons][cli]") {
  const std::string ok = test::write_temp("answers-ok.txt", "2: 0x48\n4: 31\n");
  const std::string bad = test::write_temp("answers-bad.txt", "# a student\n2: 0x41\n4: 31\n");
  auto r = test::run_trapscope({"lesson", "run", "vm-exit", "--backend", "sim", "--answers", ok});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("score: 2/2 right"));
  r = test::run_trapscope({"lesson", "run", "vm-exit", "--backend", "sim", "--answers", bad});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("1 of 2 answers wrong") &&
                        Catch::Contains("step 2 (lessons/01-vm-exit.yaml:") &&
                        Catch::Contains("'0x41', expected 0x48"));
  r = test::run_trapscope({"lesson", "run", "vm-exit", "--backend", "sim", "--reveal", "--lang", "es"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("  = 0x48") && Catch::Contains("  = 31"));
  const std::string junk = test::write_temp("answers-junk.txt", "two: 0x48\n");
  r = test::run_trapscope({"lesson", "run", "vm-exit", "--backend", "sim", "--answers", junk});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("'two' is not a step number"));
}

TEST_CASE("seeded variants: the same seed the same problem, other seeds other answers",
          "[lessons]") {
  for (const std::string id : {"vm-exit", "cost"}) {
    INFO("lesson " << id);
    const auto plain = lessons::find_lesson(id);
    REQUIRE(!plain.params.empty());
    // Two seeds whose parameters differ (the choice is splitmix64's, fixed: see params.hpp).
    uint64_t a = 1, b = 2;
    while (lessons::find_lesson(id, b).params[0].value == lessons::find_lesson(id, a).params[0].value)
      ++b;
    const auto la = lessons::find_lesson(id, a), lb = lessons::find_lesson(id, b);
    CHECK(lessons::find_lesson(id, a).params[0].value == la.params[0].value);
    // The expected answers follow the seed.
    std::vector<std::string> ea, eb;
    for (const auto& s : la.steps)
      if (s.grade) ea.push_back(lessons::expected_text(*s.grade, Lang::kEn, std::nullopt));
    for (const auto& s : lb.steps)
      if (s.grade) eb.push_back(lessons::expected_text(*s.grade, Lang::kEn, std::nullopt));
    CHECK(ea != eb);
    // And both variants pass their own checks: the guest got its parameters.
    for (const auto* l : {&la, &lb}) {
      auto r = run_with(*l, Lang::kEn, "", true);
      INFO(r.result.failure);
      CHECK(r.result.passed);
    }
  }
  // Lesson 1 with 3 repeats: 91 exits, the message three times.
  auto l = lessons::find_lesson("vm-exit");
  uint64_t seed = 0;
  while (lessons::find_lesson("vm-exit", seed).params[0].value != 3) ++seed;
  l = lessons::find_lesson("vm-exit", seed);
  auto r = run_with(l, Lang::kEn, "", false, nullptr, true);
  CHECK_THAT(r.out, Catch::Contains("variant of seed " + std::to_string(seed) + ": repeat = 3") &&
                        Catch::Contains("  = 91"));
  const std::string ans = test::write_temp("answers-seed.txt",
                                           "seed: " + std::to_string(seed) + "\n2: 0x48\n4: 91\n");
  auto c = test::run_trapscope({"lesson", "run", "vm-exit", "--backend", "sim", "--answers", ans});
  CHECK(c.exit_code == 0);
}

TEST_CASE("parameters: declared, chosen, substituted, and bad expressions refused", "[lessons]") {
  const std::string with = replace(kTiny, "steps:", "params:\n  - {name: n, default: 2, min: 1, max: 9}\nsteps:");
  CHECK(error_of(replace(with, "value: 0x48}", "value: $(0x46 + n)}")).empty());
  CHECK_THAT(error_of(replace(with, "value: 0x48}", "value: $(0x46 + m)}")),
             Catch::StartsWith("t.yaml:15: $(0x46 + m): unknown parameter 'm' (n)"));
  CHECK_THAT(error_of(replace(with, "value: 0x48}", "value: $(n / 0)}")),
             Catch::Contains("division by zero"));
  CHECK_THAT(error_of(replace(with, "value: 0x48}", "value: $(n + }")),
             Catch::Contains("missing ')'"));
  CHECK_THAT(error_of(replace(with, "min: 1, max: 9", "values: []")),
             Catch::Contains("params[1].values: a non-empty list"));
  CHECK_THAT(error_of(replace(with, "name: n,", "name: N,")),
             Catch::Contains("params[1].name: lower-case"));
  const auto l = lessons::parse_lesson(replace(with, "value: 0x48}", "value: $hex(0x46 + n)}"), "t.yaml");
  CHECK(l.steps[0].expect->conditions[1].text == "0x48");
  CHECK(l.params[0].value == 2);  // no seed: the default
  const auto block = lessons::params_block(l.params);
  REQUIRE(block.size() == 16);
  CHECK(block[0] == 'T');
  CHECK(block[3] == 'B');
  CHECK(block[4] == 1);
  CHECK(block[8] == 2);
}

TEST_CASE("authoring: values checked when read, full lists, duplicates, '#' in plain text, "
          "guests beside the lesson", "[lessons]") {
  // Every event kind and technique is listed.
  CHECK_THAT(error_of(replace(kTiny, "event: vm_exit", "event: vmexot")),
             Catch::Contains("(vm_exit, ring_transition, exception, page_walk, instruction, "
                             "run_end, any, vmm_trap") &&
                 Catch::Contains("bt_counts)"));
  CHECK_THAT(error_of(replace(kTiny, "backends: [sim]", "backends: [sim]\ntechnique: binary")),
             Catch::Contains("(emulation, trap-emulate, vt, bt, pv)"));
  // An event kind KVM never reports, in a lesson that names KVM, is refused when read.
  CHECK_THAT(error_of(replace(replace(kTiny, "backends: [sim]", "backends: [kvm, sim]"),
                              "{event: vm_exit, reason: IO}\n    expect: {port: 0xe9, value: 0x48}",
                              "{event: exception, vector: 13}")),
             Catch::StartsWith("t.yaml:12: steps[1].run_until.event: exception events are the "
                               "simulator's: KVM reports only vm_exit, run_end"));
  // A question needs a checkable answer; a choice names one of its options, ids unique.
  CHECK_THAT(error_of(replace(kTiny, "    grade: {number: 0x48}\n", "")),
             Catch::Contains("steps[1].grade: a question needs a checkable answer"));
  CHECK_THAT(error_of(replace(kTiny, "grade: {number: 0x48}",
                              "grade: {choice: c, options: [{id: a, es: a, en: a}, {id: b, es: b, en: b}]}")),
             Catch::Contains("steps[1].grade.choice: 'c' is not an option's id (a, b)"));
  CHECK_THAT(error_of(replace(kTiny, "grade: {number: 0x48}",
                              "grade: {choice: a, options: [{id: a, es: a, en: a}, {id: a, es: b, en: b}]}")),
             Catch::Contains("steps[1].grade.options[2].id: duplicate option id 'a'"));
  CHECK_THAT(error_of(replace(kTiny, "grade: {number: 0x48}", "grade: {number: 12, tolerance: x}")),
             Catch::Contains("tolerance: an absolute amount (5) or a percentage (10%)"));
  // A '#' after a space in unquoted text is a YAML comment: the text would be cut. Reported,
  // with every such line; quoted text, block scalars and comment lines are fine.
  CHECK(lessons::trailing_comments("a: |\n  text # not a comment\nb: \"q #x\"\n# c\nd: 'e #'\n").empty());
  const std::string cut = replace(kTiny, "question: {es: \"¿Qué byte?\", en: \"Which byte?\"}",
                                  "question:\n      es: ¿Qué byte? #PF\n      en: Which #PF?");
  CHECK_THAT(error_of(cut), Catch::StartsWith("t.yaml:10: ' #' in unquoted text starts a YAML comment") &&
                                Catch::Contains("t.yaml:10: es: ¿Qué byte? #PF") &&
                                Catch::Contains("t.yaml:11: en: Which #PF?"));
  // Built-in lessons share no id or number (a repeated one would throw here).
  CHECK_NOTHROW(lessons::builtin_lessons());

  // A guest given as a path is read relative to the lesson file.
  namespace fs = std::filesystem;
  const fs::path dir = test::temp_path("lesson-dir");
  fs::create_directories(dir / "images");
  const auto hello = guests::find("hello");
  REQUIRE(hello);
  test::write_file((dir / "images" / "my-hello.bin").string(),
                   {hello->image.begin(), hello->image.end()});
  const std::string file = (dir / "mine.yaml").string();
  const std::string text = replace(replace(kTiny, "guest: hello", "guest: images/my-hello.bin\nmode: real"),
                                   "id: tiny", "id: mine");
  test::write_file(file, {text.begin(), text.end()});
  const auto mine = lessons::load_lesson_file(file);
  CHECK(mine.guest_file == (dir / "images" / "my-hello.bin").string());
  CHECK(run_with(mine, Lang::kEn, "", true).result.passed);
  CHECK_THAT(error_of(replace(kTiny, "guest: hello", "guest: nothere.bin\nmode: real")),
             Catch::Contains("guest: cannot read 'nothere.bin'"));
  CHECK_THAT(error_of(replace(kTiny, "guest: hello", "guest: ./g.bin")), Catch::Contains("cannot read"));

  // `lesson check FILE` runs it on every engine it names; a file that takes a built-in's id is
  // refused.
  auto r = test::run_trapscope({"lesson", "check", file});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("lesson mine on sim: all 1 steps passed"));
  const std::string clash = (dir / "clash.yaml").string();
  const std::string clash_text = replace(text, "id: mine", "id: rings");
  test::write_file(clash, {clash_text.begin(), clash_text.end()});
  r = test::run_trapscope({"lesson", "check", clash});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("id: 'rings' is the built-in lesson 2's"));
}

TEST_CASE("every built-in lesson: a topic, its sources, every question graded", "[lessons]") {
  for (const auto& l : lessons::builtin_lessons()) {
    INFO("lesson " << l.id);
    CHECK(l.topic.has_value());
    CHECK(!l.sources.empty());
    for (const auto& s : l.steps) {
      if (s.question) CHECK(s.grade.has_value());
    }
  }
  auto r = test::run_trapscope({"lesson", "list", "--lang", "es"});
  CHECK_THAT(r.out, Catch::Contains("tema: Requisitos de virtualización de Popek y Goldberg"));
}

TEST_CASE("the lessons' content fixes stay fixed", "[lessons]") {
  const auto all = lessons::builtin_lessons();
  // Lesson 2 step 5: the question was cut at "#PF" (a YAML comment) in both languages.
  const auto& rings = builtin(all, "rings");
  CHECK(rings.steps[4].question->es == "¿Qué código de error tendrá el #PF? (CR2 tendrá la dirección que falló.)");
  CHECK(rings.steps[4].question->en == "Which error code will the #PF have? (CR2 will hold the address that faulted.)");
  // Lesson 2: the first user instruction is `lea r15, …` at 0xa000, `cli` at 0xa007.
  CHECK_THAT(rings.steps[2].text.en, Catch::Contains("starts at 0xa000 with `lea r15, […]`") &&
                                         Catch::Contains("at 0xa007, is `cli`"));
  CHECK_THAT(rings.steps[2].text.es, !Catch::Contains("La primera instrucción del usuario es `cli`"));
  // Lesson 3: descriptor-table exiting exists (exit reasons 46/47); exit reasons are in Vol. 3D.
  const auto& popek = builtin(all, "popek-goldberg");
  for (const std::string& a : {popek.steps[5].answer->es, popek.steps[5].answer->en}) {
    CHECK_THAT(a, Catch::Contains("descriptor-table exiting") && Catch::Contains("46") &&
                      Catch::Contains("47") && Catch::Contains("Vol. 3D"));
    CHECK_THAT(a, !Catch::Contains("not among the VMCS controls") &&
                      !Catch::Contains("no está entre los controles"));
  }
  // Lesson 4: the measured 115 host instructions, and the run time it divides is shown.
  const auto& emu = builtin(all, "emulation");
  CHECK_THAT(emu.summary.en, Catch::Contains("about 115 host instructions") && !Catch::Contains("tens of"));
  CHECK_THAT(emu.summary.es, Catch::Contains("115") && !Catch::Contains("decenas"));
  auto r = run_with(emu, Lang::kEs, "");
  CHECK_THAT(r.out, Catch::Contains("tiempo del anfitrión en las acciones hasta ahora: "));
  // Lesson 6: no hard-coded "no nested VT-x", and the question does not give the count away.
  const auto& hw = builtin(all, "hardware-assist");
  CHECK_THAT(hw.steps[0].text.en, !Catch::Contains("On this course's machines KVM has no nested"));
  CHECK_THAT(hw.steps[0].text.en, Catch::Contains("`trapscope doctor` tells which case is yours"));
  CHECK_THAT(hw.steps[2].question->en, !Catch::Contains("749"));
  CHECK_THAT(hw.steps[2].question->es, !Catch::Contains("749"));
  // Lesson 7: one VM exit, two events printed: said so.
  const auto& pv = builtin(all, "paravirtualization");
  CHECK_THAT(pv.steps[1].answer->en, Catch::Contains("You see two events of that exit"));
  // Lesson 10: an interpreter is no VMM (efficiency), not "the purest type 2".
  const auto& types = builtin(all, "hypervisor-types");
  CHECK_THAT(types.steps[1].text.en, !Catch::Contains("purest type 2") && Catch::Contains("efficiency property"));
  CHECK_THAT(types.steps[1].text.es, !Catch::Contains("tipo 2 más puro"));
  // Spanish calques: none left in any lesson.
  for (const auto& l : all) {
    INFO("lesson " << l.id);
    const std::string es = spanish(l);
    for (const char* calque : {"empuja", "captura", "la puerta", "trap-and-emulate", "también sale",
                               "no salen", "toca la puerta"})
      CHECK_THAT(es, !Catch::Contains(calque));
  }
  CHECK_THAT(builtin(all, "paravirtualization").steps[1].text.es, Catch::Contains("toca el timbre"));
  CHECK_THAT(spanish(popek), Catch::Contains("atrapar y emular"));
}

TEST_CASE("the event a step stops on is printed and marked in every step of every lesson",
          "[lessons]") {
  for (const auto& l : lessons::builtin_lessons()) {
    if (!l.allows("sim")) continue;
    INFO("lesson " << l.id);
    // --check prints the answering event of each step: "lesson ID step N ok: EVENT".
    const std::string checked = run_with(l, Lang::kEn, "", true).out;
    const std::string shown = run_with(l, Lang::kEs, "").out;
    size_t steps_with_event = 0;
    std::istringstream lines(checked);
    for (std::string line; std::getline(lines, line);) {
      const size_t at = line.find(" ok: ");
      if (at == std::string::npos) continue;
      const std::string event = line.substr(at + 5);
      INFO(line);
      CHECK_THAT(shown, Catch::Contains("▶ " + event + "\n"));
      ++steps_with_event;
    }
    size_t actions = 0;
    for (const auto& s : l.steps) actions += s.run_until.has_value();
    CHECK(steps_with_event == actions);
  }
}

TEST_CASE("an event question is asked after the step runs, and the event's number answers it",
          "[lessons]") {
  const auto l = lessons::parse_lesson(
      replace(kTiny, "grade: {number: 0x48}", "grade: event"), "t.yaml");
  // The answering event (#0, the first exit) is printed unmarked, asked for, then marked.
  auto r = run_with(l, Lang::kEn, "#3\n#0\n");
  CHECK(r.result.right == 1);
  const size_t plain = r.out.find("  #0     VM exit IO");
  const size_t asked = r.out.find("Your answer:");
  const size_t marked = r.out.find("▶ #0     VM exit IO");
  REQUIRE(plain != std::string::npos);
  REQUIRE(asked != std::string::npos);
  REQUIRE(marked != std::string::npos);
  CHECK(plain < asked);
  CHECK(asked < marked);
  std::map<size_t, std::string> answers{{1, "0"}};
  CHECK(run_with(l, Lang::kEn, "", true, &answers).result.wrong.empty());
  CHECK_THAT(error_of(replace(replace(kTiny, "grade: {number: 0x48}", "grade: event"),
                              "    run_until: {event: vm_exit, reason: IO}\n"
                              "    expect: {port: 0xe9, value: 0x48}\n", "")),
             Catch::Contains("steps[1].grade: event: needs a run_until in the step"));
}

TEST_CASE("efficiency: the share of instructions run directly under each technique",
          "[lessons]") {
  // kernelops: 380,091 instructions; 17 VM exits under VT-x; 140,017 callouts under BT.
  const auto l = lessons::find_lesson("efficiency");
  const auto r = run_with(l, Lang::kEn, "");
  CHECK(r.result.passed);
  CHECK_THAT(r.out, Catch::Contains("run directly: 380074 of 380091 instructions (99.996 %); "
                                    "the VMM handled 17 (vt)") &&
                        Catch::Contains("run directly: 240074 of 380091 instructions (63.162 %); "
                                        "the VMM handled 140017 (bt)") &&
                        Catch::Contains("run directly: 0 of 380091 instructions (0.000 %)"));
  const auto e = lessons::efficiency("trap-emulate", 100, 2, 14, 0);
  CHECK(e.by_vmm == 16);
  CHECK(e.direct == 84);
  CHECK(lessons::efficiency_line(e, "trap-emulate", Lang::kEs) ==
        "ejecutadas directamente: 84 de 100 instrucciones (84,000 %); el VMM atendió 16 "
        "(trap-emulate)");
}
