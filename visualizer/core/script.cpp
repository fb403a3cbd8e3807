#include "visualizer/core/script.hpp"

#include <sstream>

namespace trapscope::viz {
namespace {

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
  return std::string(s.substr(b, e - b));
}

}  // namespace

std::optional<std::vector<ScriptCommand>> parse_script(std::string_view text, std::string* error) {
  using Op = ScriptCommand::Op;
  std::vector<ScriptCommand> out;
  int line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string line(text.substr(pos, nl - pos));
    pos = nl + 1;
    ++line_no;
    if (const size_t hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    line = trim(line);
    if (line.empty()) {
      if (nl == text.size()) break;
      continue;
    }
    std::istringstream in(line);
    std::string word;
    in >> word;
    std::string rest;
    std::getline(in, rest);
    rest = trim(rest);
    ScriptCommand c;
    c.line = line_no;
    c.source = line;
    auto fail = [&](const std::string& why) {
      *error = "line " + std::to_string(line_no) + ": " + why + " (in '" + line + "')";
      return std::nullopt;
    };
    auto number = [&](bool optional, uint64_t dflt) -> bool {
      if (rest.empty()) {
        c.number = dflt;
        return optional;
      }
      const auto n = parse_number(rest);
      if (!n) return false;
      c.number = *n;
      return true;
    };
    auto kind = [&]() -> bool {
      const auto k = parse_step_kind(rest);
      if (!k) return false;
      c.kind = *k;
      return true;
    };
    if (word == "step") {
      c.op = Op::kStep;
      if (!number(true, 1)) return fail("step takes an optional count");
    } else if (word == "step-to") {
      c.op = Op::kStepTo;
      if (!kind()) return fail("step-to takes exit, ring, exception, walk, translation, any or vt-exit");
    } else if (word == "step-back") {
      c.op = Op::kStepBack;
      if (!number(true, 1)) return fail("step-back takes an optional count");
    } else if (word == "run") {
      c.op = Op::kRun;
    } else if (word == "run-for") {
      c.op = Op::kRunFor;
      if (!number(false, 0) || c.number > kScriptMaxRunForMs)
        return fail("run-for takes milliseconds, at most " + std::to_string(kScriptMaxRunForMs));
    } else if (word == "pause") {
      c.op = Op::kPause;
    } else if (word == "reset") {
      c.op = Op::kReset;
    } else if (word == "wait-idle") {
      c.op = Op::kWaitIdle;
    } else if (word == "select") {
      c.op = Op::kSelect;
      if (!number(false, 0)) return fail("select takes an event number");
    } else if (word == "select-next") {
      c.op = Op::kSelectNext;
      if (!kind()) return fail("select-next takes an event kind");
    } else if (word == "break") {
      c.op = Op::kBreak;
      if (!number(false, 0)) return fail("break takes an address");
      c.breakpoint.kind = Breakpoint::Kind::kAddress;
      c.breakpoint.address = c.number;
    } else if (word == "break-event" || word == "assert-selected") {
      c.op = word == "break-event" ? Op::kBreakEvent : Op::kAssertSelected;
      std::string why;
      std::optional<Breakpoint> bp;
      if (c.op == Op::kAssertSelected && parse_step_kind(rest.substr(0, rest.find(' '))) ==
                                             StepKind::kInstruction) {
        bp = Breakpoint{};
        bp->kind = Breakpoint::Kind::kEvent;
        bp->event = StepKind::kInstruction;
      } else {
        bp = parse_event_breakpoint(rest, &why);
      }
      if (!bp) return fail(why);
      c.breakpoint = *bp;
    } else if (word == "clear-breaks") {
      c.op = Op::kClearBreaks;
    } else if (word == "filter") {
      c.op = Op::kFilter;
      c.text = rest;
    } else if (word == "memory") {
      c.op = Op::kMemory;
      if (!number(false, 0)) return fail("memory takes a guest-physical address");
    } else if (word == "speed") {
      c.op = Op::kSpeed;
      if (!number(false, 0)) return fail("speed takes instructions per second");
    } else if (word == "frames") {
      c.op = Op::kFrames;
      if (!number(true, 1) || c.number > kScriptMaxFrames)
        return fail("frames takes a count, at most " + std::to_string(kScriptMaxFrames));
    } else if (word == "screenshot" || word == "dump") {
      c.op = word == "screenshot" ? Op::kScreenshot : Op::kDump;
      if (rest.empty()) return fail(word + " takes a file name");
      c.text = rest;
    } else if (word == "assert-cpl") {
      c.op = Op::kAssertCpl;
      if (!number(false, 0) || c.number > 3) return fail("assert-cpl takes 0..3");
    } else if (word == "assert-console") {
      c.op = Op::kAssertConsole;
      c.text = rest;
    } else if (word == "timeline") {
      c.op = Op::kTimeline;
      if (rest == "fit") {
        c.number = 0;
        c.number2 = UINT64_MAX;
      } else {
        std::istringstream r(rest);
        std::string a, b;
        r >> a >> b;
        const auto first = parse_number(a), last = parse_number(b);
        if (!first || !last || *last <= *first || *last > kScriptMaxTimelineEvent)
          return fail("timeline takes FIRST LAST (FIRST < LAST <= 2^53) or fit");
        c.number = *first;
        c.number2 = *last;
      }
    } else if (word == "show" || word == "hide") {
      c.op = word == "show" ? Op::kShow : Op::kHide;
      if (rest != "breakpoints" && rest != "help" && rest != "page walk" &&
          rest != "translation cache" && rest != "compare" && rest != "vmcs" &&
          rest != "devices") {
        return fail(word + " takes breakpoints, help, page walk, translation cache, compare, "
                           "vmcs or devices");
      }
      c.text = rest;
    } else if (word == "tcache-select") {
      c.op = Op::kTcacheSelect;
      if (!number(false, 0)) return fail("tcache-select takes a guest RIP");
    } else if (word == "lesson-step") {
      c.op = Op::kLessonStep;
    } else if (word == "lesson-next" || word == "lesson-prev") {
      c.op = word == "lesson-next" ? Op::kLessonNext : Op::kLessonPrev;
    } else if (word == "lesson-lang") {
      c.op = Op::kLessonLang;
      if (rest != "es" && rest != "en") return fail("lesson-lang takes es or en");
      c.text = rest;
    } else if (word == "lesson-answer") {
      c.op = Op::kLessonAnswer;
      if (rest.empty()) return fail("lesson-answer takes an answer (or @selected)");
      c.text = rest;
    } else if (word == "assert-lesson") {
      c.op = Op::kAssertLesson;
      if (rest != "passed" && rest != "failed" && rest != "not-run")
        return fail("assert-lesson takes passed, failed or not-run");
      c.text = rest;
    } else if (word == "compare-open") {
      c.op = Op::kCompareOpen;
      if (rest.empty()) return fail("compare-open takes a file name");
      c.text = rest;
    } else if (word == "compare-run") {
      c.op = Op::kCompareRun;
      std::istringstream r(rest);
      std::string extra;
      r >> c.text >> c.text2 >> extra;
      if (c.text2.empty()) c.text2 = "native";
      if (c.text.empty() || !extra.empty() ||
          (c.text2 != "native" && c.text2 != "shadow" && c.text2 != "ept")) {
        return fail("compare-run takes a workload and native, shadow or ept");
      }
    } else if (word == "compare-log") {
      c.op = Op::kCompareLog;
      if (rest != "on" && rest != "off") return fail("compare-log takes on or off");
      c.number = rest == "on";
    } else if (word == "vmcs") {
      c.op = Op::kVmcs;
      if (rest.empty()) return fail("vmcs takes a list such as +descriptor-table-exiting,-hlt-exiting");
      c.text = rest;
    } else if (word == "quit") {
      c.op = Op::kQuit;
    } else {
      return fail("unknown command '" + word + "'");
    }
    out.push_back(std::move(c));
    if (nl == text.size()) break;
  }
  return out;
}

}  // namespace trapscope::viz
