#include "lessons/lesson.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <set>
#include <sstream>

#include "guests/guest_catalog.hpp"
#include "sim/mmu.hpp"
#include "sim/virt/monitor.hpp"
#include "trace/input_file.hpp"

namespace trapscope::lessons {
namespace {

// Where a node is, for messages: "FILE:LINE: FIELD: ".
struct Where {
  const std::string& file;
  [[noreturn]] void fail(const YAML::Node& node, const std::string& field,
                         const std::string& problem) const {
    const int line = node.Mark().is_null() ? 0 : node.Mark().line + 1;
    throw LessonError(file + ":" + std::to_string(line) + ": " + field + ": " + problem);
  }
};

std::optional<uint64_t> parse_number(std::string_view s) { return parse_value_number(s); }

void only_keys(const Where& w, const YAML::Node& map, const std::string& what,
               std::initializer_list<std::string_view> allowed) {
  for (const auto& kv : map) {
    const std::string key = kv.first.as<std::string>();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string list;
      for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      w.fail(kv.first, what.empty() ? key : what + "." + key,
             "unknown field (allowed: " + list + ")");
    }
  }
}

std::string scalar(const Where& w, const YAML::Node& node, const std::string& field) {
  if (!node.IsScalar()) w.fail(node, field, "must be a single value");
  return node.Scalar();
}

Text text(const Where& w, const YAML::Node& node, const std::string& field) {
  if (!node.IsMap()) w.fail(node, field, "must give both languages: {es: …, en: …}");
  only_keys(w, node, field, {"es", "en"});
  Text t;
  for (const char* lang : {"es", "en"}) {
    const YAML::Node v = node[lang];
    if (!v) w.fail(node, field + "." + lang, "missing (every text comes in Spanish and English)");
    std::string s = scalar(w, v, field + "." + lang);
    if (s.empty()) w.fail(v, field + "." + lang, "is empty");
    (std::string_view(lang) == "es" ? t.es : t.en) = std::move(s);
  }
  return t;
}

Predicate predicate(const Where& w, const YAML::Node& node, const std::string& field,
                    std::optional<EventKind> kind_from) {
  if (!node.IsMap()) w.fail(node, field, "must be a map such as {event: vm_exit, reason: IO}");
  Predicate p;
  if (const YAML::Node ev = node["event"]) {
    const std::string name = scalar(w, ev, field + ".event");
    auto k = parse_event_kind(name);
    if (!k)
      w.fail(ev, field + ".event",
             "unknown event kind '" + name +
                 "' (vm_exit, ring_transition, exception, page_walk, instruction, run_end, any)");
    if (kind_from && *k != *kind_from)
      w.fail(ev, field + ".event", "expect checks the event run_until stopped at; leave it out");
    p.kind = *k;
  } else if (kind_from) {
    p.kind = *kind_from;
  } else {
    w.fail(node, field + ".event", "missing (which kind of event to run until)");
  }
  const auto allowed = fields_of(p.kind);
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    if (key == "event") continue;
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string list;
      for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      w.fail(kv.first, field + "." + key,
             "not a field of " + std::string(to_string(p.kind)) + " events (" + list + ")");
    }
    Condition c;
    c.field = key;
    c.text = scalar(w, kv.second, field + "." + key);
    if (const std::string problem = value_problem(p.kind, key, c.text); !problem.empty())
      w.fail(kv.second, field + "." + key, problem);
    c.number = parse_number(c.text);
    p.conditions.push_back(std::move(c));
  }
  return p;
}

std::string technique(const Where& w, const YAML::Node& node, const std::string& field) {
  const std::string t = scalar(w, node, field);
  if (!sim::virt::parse_technique(t))
    w.fail(node, field, "unknown technique '" + t + "' (emulation, trap-emulate, vt)");
  return t;
}

std::string paging(const Where& w, const YAML::Node& node, const std::string& field) {
  const std::string p = scalar(w, node, field);
  if (!sim::parse_vmm_paging(p)) w.fail(node, field, "unknown paging '" + p + "' (native, shadow, ept)");
  return p;
}

int deprivilege(const Where& w, const YAML::Node& node, const std::string& field) {
  const std::string d = scalar(w, node, field);
  if (d != "1" && d != "3") w.fail(node, field, "the guest kernel's real CPL: 1 or 3");
  return d[0] - '0';
}

Step step(const Where& w, const YAML::Node& node, const std::string& field) {
  if (!node.IsMap()) w.fail(node, field, "a step must be a map with at least `text`");
  only_keys(w, node, field,
            {"title", "text", "restart", "run_until", "expect", "console", "exits", "question",
             "answer", "show"});
  Step s;
  s.line = node.Mark().line + 1;
  if (node["title"]) s.title = text(w, node["title"], field + ".title");
  if (!node["text"]) w.fail(node, field + ".text", "missing");
  s.text = text(w, node["text"], field + ".text");
  if (const YAML::Node r = node["restart"]) {
    if (!r.IsMap()) w.fail(r, field + ".restart", "must be a map such as {technique: vt}");
    only_keys(w, r, field + ".restart", {"technique", "deprivilege", "paging"});
    Restart restart;
    if (r["technique"]) restart.technique = technique(w, r["technique"], field + ".restart.technique");
    if (r["paging"]) restart.paging = paging(w, r["paging"], field + ".restart.paging");
    if (r["deprivilege"]) restart.deprivilege = deprivilege(w, r["deprivilege"], field + ".restart.deprivilege");
    s.restart = restart;
  }
  if (node["run_until"]) s.run_until = predicate(w, node["run_until"], field + ".run_until", {});
  if (node["expect"]) {
    if (!s.run_until) w.fail(node["expect"], field + ".expect", "needs a run_until in the step");
    s.expect = predicate(w, node["expect"], field + ".expect", s.run_until->kind);
  }
  if (node["console"]) s.console = scalar(w, node["console"], field + ".console");
  if (node["exits"]) {
    s.exits = parse_number(scalar(w, node["exits"], field + ".exits"));
    if (!s.exits) w.fail(node["exits"], field + ".exits", "must be a number");
  }
  if (node["question"]) s.question = text(w, node["question"], field + ".question");
  if (node["answer"]) {
    if (!s.question) w.fail(node["answer"], field + ".answer", "an answer needs a question");
    s.answer = text(w, node["answer"], field + ".answer");
  }
  if (s.question && !s.answer) w.fail(node, field + ".answer", "a question needs its answer");
  if (const YAML::Node show = node["show"]) {
    if (!show.IsSequence()) w.fail(show, field + ".show", "must be a list");
    for (const auto& item : show) {
      const std::string v = scalar(w, item, field + ".show");
      if (v == "events") s.show.push_back(Show::kEvents);
      else if (v == "registers") s.show.push_back(Show::kRegisters);
      else if (v == "stats") s.show.push_back(Show::kStats);
      else if (v == "console") s.show.push_back(Show::kConsole);
      else w.fail(item, field + ".show", "unknown '" + v + "' (events, registers, stats, console)");
    }
  } else if (s.run_until) {
    s.show.push_back(Show::kEvents);
  }
  return s;
}

}  // namespace

std::optional<Lang> parse_lang(std::string_view t) {
  if (t == "es") return Lang::kEs;
  if (t == "en") return Lang::kEn;
  return std::nullopt;
}
std::string_view to_string(Lang lang) { return lang == Lang::kEs ? "es" : "en"; }

bool Lesson::allows(std::string_view backend) const {
  return std::find(backends.begin(), backends.end(), backend) != backends.end();
}

Lesson parse_lesson(std::string_view yaml, const std::string& file) {
  const Where w{file};
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    throw LessonError(file + ":" + std::to_string(e.mark.line + 1) + ": not valid YAML: " +
                      e.msg);
  }
  if (!root.IsMap()) w.fail(root, "(top)", "a lesson file is a map (id, title, guest, steps, …)");
  try {
    only_keys(w, root, "",
              {"id", "number", "title", "summary", "guest", "mode", "backends", "technique",
               "deprivilege", "paging", "timeout", "steps"});
    Lesson l;
    l.file = file;
    for (const char* req : {"id", "number", "title", "summary", "guest", "steps"})
      if (!root[req]) w.fail(root, req, "missing");
    l.id = scalar(w, root["id"], "id");
    if (l.id.empty() || !std::all_of(l.id.begin(), l.id.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
        }))
      w.fail(root["id"], "id", "use lower-case letters, digits and '-'");
    auto n = parse_number(scalar(w, root["number"], "number"));
    if (!n || *n > 999) w.fail(root["number"], "number", "must be a number 0..999");
    l.number = static_cast<int>(*n);
    l.title = text(w, root["title"], "title");
    l.summary = text(w, root["summary"], "summary");
    l.guest = scalar(w, root["guest"], "guest");
    if (!guests::find(l.guest)) {
      std::string known;
      for (const auto& g : guests::catalog()) known += (known.empty() ? "" : ", ") + std::string(g.name);
      w.fail(root["guest"], "guest", "'" + l.guest + "' is not a built-in guest (" + known + ")");
    }
    if (root["mode"]) {
      l.mode = scalar(w, root["mode"], "mode");
      if (l.mode != "real" && l.mode != "protected" && l.mode != "long")
        w.fail(root["mode"], "mode", "must be real, protected or long");
    }
    if (const YAML::Node b = root["backends"]) {
      if (!b.IsSequence() || b.size() == 0) w.fail(b, "backends", "a non-empty list of kvm, sim");
      for (const auto& item : b) {
        const std::string v = scalar(w, item, "backends");
        if (v != "kvm" && v != "sim") w.fail(item, "backends", "unknown backend '" + v + "'");
        l.backends.push_back(v);
      }
    } else {
      l.backends = {"kvm", "sim"};
    }
    if (root["technique"]) l.technique = technique(w, root["technique"], "technique");
    if (root["paging"]) l.paging = paging(w, root["paging"], "paging");
    if (root["deprivilege"]) l.deprivilege = deprivilege(w, root["deprivilege"], "deprivilege");
    if (root["timeout"]) {
      auto t = parse_number(scalar(w, root["timeout"], "timeout"));
      if (!t || *t == 0 || *t > 3600) w.fail(root["timeout"], "timeout", "seconds, 1..3600");
      l.timeout_s = static_cast<double>(*t);
    }
    const YAML::Node steps = root["steps"];
    if (!steps.IsSequence() || steps.size() == 0) w.fail(steps, "steps", "a non-empty list");
    for (size_t i = 0; i < steps.size(); ++i)
      l.steps.push_back(step(w, steps[i], "steps[" + std::to_string(i + 1) + "]"));
    const bool sim_only = l.backends.size() == 1 && l.backends[0] == "sim";
    // Paravirtualization runs on KVM too (its doorbell is a port-I/O exit); the other
    // techniques are the simulator's.
    if (!sim_only && l.technique != "emulation" && l.technique != "pv")
      w.fail(root["technique"], "technique",
             "a technique other than emulation or pv needs backends: [sim]");
    if (!sim_only && l.paging != "native")
      w.fail(root["paging"], "paging", "shadow or nested paging needs backends: [sim]");
    for (size_t i = 0; i < l.steps.size(); ++i)
      if (l.steps[i].restart && !sim_only)
        w.fail(steps[i]["restart"], "steps[" + std::to_string(i + 1) + "].restart",
               "restarting under a technique needs backends: [sim]");
    return l;
  } catch (const YAML::Exception& e) {
    throw LessonError(file + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

Lesson load_lesson_file(const std::string& path) {
  // Checked before reading: a FIFO or /dev/zero is refused, not read until memory runs out.
  std::string error;
  const auto text = trace::read_input_file(path, kMaxLessonFileBytes, "a lesson file", &error);
  if (!text) throw LessonError(path + ": cannot read the lesson file: " + error);
  return parse_lesson(*text, path);
}

}  // namespace trapscope::lessons
