// Lessons (lessons/): the format's validation, the predicates, and every built-in lesson
// checked on every backend it allows, as `trapscope lesson check` does.
#include <catch2/catch.hpp>

#include <cstdio>
#include <set>
#include <sstream>

#include "lessons/runner.hpp"
#include "tests/support.hpp"

using namespace trapscope;
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
