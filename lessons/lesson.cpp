#include "lessons/lesson.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <map>
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

// Every event kind a step may run until, for messages.
std::string all_kinds() {
  std::string list;
  for (int k = 0; k <= static_cast<int>(EventKind::kBtCounts); ++k)
    list += (list.empty() ? "" : ", ") + std::string(to_string(static_cast<EventKind>(k)));
  return list;
}

// The kinds KVM reports (backend: VM exits only; the end of the run; any = the next exit).
bool kvm_reports(EventKind k) {
  return k == EventKind::kVmExit || k == EventKind::kRunEnd || k == EventKind::kAny;
}

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

Text text_of(const Where& w, const YAML::Node& node, const std::string& field) {
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
    if (!k) w.fail(ev, field + ".event", "unknown event kind '" + name + "' (" + all_kinds() + ")");
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
    w.fail(node, field, "unknown technique '" + t + "' (emulation, trap-emulate, vt, bt, pv)");
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

bool valid_id(const std::string& id) {
  return !id.empty() && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

// grade: {number: 31} | {number: 3800000, tolerance: 50%} | event |
//        {choice: no, options: [{id: yes, es: sí, en: yes}, {id: no, es: no, en: no}]}
Grade grade(const Where& w, const YAML::Node& node, const std::string& field) {
  const std::string usage =
      "a number {number: 31, tolerance: 10%}, a choice {choice: ID, options: [{id: ID, es: …, "
      "en: …}, …]} or event (the event the step stops at)";
  Grade g;
  if (node.IsScalar()) {
    if (node.Scalar() != "event") w.fail(node, field, "must be " + usage);
    g.kind = Grade::Kind::kEvent;
    return g;
  }
  if (!node.IsMap()) w.fail(node, field, "must be " + usage);
  only_keys(w, node, field, {"number", "tolerance", "choice", "options"});
  if (node["number"]) {
    if (node["choice"] || node["options"])
      w.fail(node, field, "a number or a choice, not both");
    g.kind = Grade::Kind::kNumber;
    g.number_text = scalar(w, node["number"], field + ".number");
    if (const auto v = parse_number(g.number_text)) {
      g.number = static_cast<double>(*v);
    } else if (const auto d = parse_typed_number(g.number_text);
               d && g.number_text.find(',') == std::string::npos) {
      g.number = *d;
    } else {
      w.fail(node["number"], field + ".number", "must be a number (decimal, 0x-hexadecimal or 3.8e6)");
    }
    if (const YAML::Node t = node["tolerance"]) {
      std::string text = scalar(w, t, field + ".tolerance");
      g.relative = !text.empty() && text.back() == '%';
      if (g.relative) text.pop_back();
      const auto v = parse_typed_number(text);
      if (!v || *v < 0 || (g.relative && *v > 100))
        w.fail(t, field + ".tolerance", "an absolute amount (5) or a percentage (10%)");
      g.tolerance = g.relative ? *v / 100 : *v;
    }
    return g;
  }
  if (!node["choice"] || !node["options"]) w.fail(node, field, "must be " + usage);
  g.kind = Grade::Kind::kChoice;
  g.choice = scalar(w, node["choice"], field + ".choice");
  const YAML::Node opts = node["options"];
  if (!opts.IsSequence() || opts.size() < 2)
    w.fail(opts, field + ".options", "a list of at least two {id: …, es: …, en: …}");
  for (size_t i = 0; i < opts.size(); ++i) {
    const std::string f = field + ".options[" + std::to_string(i + 1) + "]";
    const YAML::Node o = opts[i];
    if (!o.IsMap()) w.fail(o, f, "must be {id: …, es: …, en: …}");
    only_keys(w, o, f, {"id", "es", "en"});
    for (const char* k : {"id", "es", "en"})
      if (!o[k]) w.fail(o, f + "." + k, "missing");
    Option opt{scalar(w, o["id"], f + ".id"), scalar(w, o["es"], f + ".es"),
               scalar(w, o["en"], f + ".en")};
    if (!valid_id(opt.id)) w.fail(o["id"], f + ".id", "use lower-case letters, digits and '-'");
    for (const Option& before : g.options)
      if (before.id == opt.id) w.fail(o["id"], f + ".id", "duplicate option id '" + opt.id + "'");
    g.options.push_back(std::move(opt));
  }
  if (std::none_of(g.options.begin(), g.options.end(),
                   [&](const Option& o) { return o.id == g.choice; })) {
    std::string ids;
    for (const Option& o : g.options) ids += (ids.empty() ? "" : ", ") + o.id;
    w.fail(node["choice"], field + ".choice", "'" + g.choice + "' is not an option's id (" + ids + ")");
  }
  return g;
}

Step step(const Where& w, const YAML::Node& node, const std::string& field) {
  if (!node.IsMap()) w.fail(node, field, "a step must be a map with at least `text`");
  only_keys(w, node, field,
            {"title", "text", "restart", "run_until", "expect", "console", "exits", "question",
             "answer", "grade", "hint", "show"});
  Step s;
  s.line = node.Mark().line + 1;
  if (node["title"]) s.title = text_of(w, node["title"], field + ".title");
  if (!node["text"]) w.fail(node, field + ".text", "missing");
  s.text = text_of(w, node["text"], field + ".text");
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
  if (node["question"]) s.question = text_of(w, node["question"], field + ".question");
  if (node["answer"]) {
    if (!s.question) w.fail(node["answer"], field + ".answer", "an answer needs a question");
    s.answer = text_of(w, node["answer"], field + ".answer");
  }
  if (s.question && !s.answer) w.fail(node, field + ".answer", "a question needs its answer");
  if (node["grade"]) {
    if (!s.question) w.fail(node["grade"], field + ".grade", "a grade needs a question");
    s.grade = grade(w, node["grade"], field + ".grade");
    if (s.grade->kind == Grade::Kind::kEvent && !s.run_until)
      w.fail(node["grade"], field + ".grade", "event: needs a run_until in the step");
  }
  if (s.question && !s.grade)
    w.fail(node, field + ".grade",
           "a question needs a checkable answer: grade: {number: …}, {choice: …, options: […]} "
           "or event");
  if (node["hint"]) {
    if (!s.question) w.fail(node["hint"], field + ".hint", "a hint needs a question");
    s.hint = text_of(w, node["hint"], field + ".hint");
  }
  if (const YAML::Node show = node["show"]) {
    if (!show.IsSequence()) w.fail(show, field + ".show", "must be a list");
    for (const auto& item : show) {
      const std::string v = scalar(w, item, field + ".show");
      if (v == "events") s.show.push_back(Show::kEvents);
      else if (v == "registers") s.show.push_back(Show::kRegisters);
      else if (v == "stats") s.show.push_back(Show::kStats);
      else if (v == "console") s.show.push_back(Show::kConsole);
      else if (v == "efficiency") s.show.push_back(Show::kEfficiency);
      else w.fail(item, field + ".show", "unknown '" + v + "' (events, registers, stats, console, efficiency)");
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

std::vector<std::string> trailing_comments(std::string_view yaml) {
  std::vector<std::string> found;
  int block_indent = -1;  // inside a block scalar (| or >) started on a line of this indent
  bool in_double = false;  // a double-quoted scalar continues from the line before
  size_t number = 0;
  for (size_t start = 0; start <= yaml.size(); ++number) {
    size_t end = yaml.find('\n', start);
    if (end == std::string_view::npos) end = yaml.size();
    const std::string_view line = yaml.substr(start, end - start);
    start = end + 1;
    const size_t first = line.find_first_not_of(' ');
    const int indent = first == std::string_view::npos ? -1 : static_cast<int>(first);
    if (block_indent >= 0) {
      if (indent < 0 || indent > block_indent) continue;  // the block's own text
      block_indent = -1;
    }
    if (indent < 0) continue;
    bool in_single = false;
    bool scalar_start = !in_double;  // where a quoted scalar may begin
    char last = 0;                   // the last character outside a comment, not a space
    for (size_t i = first; i < line.size(); ++i) {
      const char c = line[i];
      if (in_double) {
        if (c == '\\') ++i;
        else if (c == '"') in_double = false;
        last = c;
        continue;
      }
      if (in_single) {
        if (c == '\'' && i + 1 < line.size() && line[i + 1] == '\'') ++i;
        else if (c == '\'') in_single = false;
        last = c;
        continue;
      }
      if (c == ' ') {
        continue;
      }
      if (c == '#' && (i == first || line[i - 1] == ' ')) {
        // A comment. After a plain scalar it cut the text short.
        if (i != first && last != 0 && std::string_view(":]}\"'|>-,[{").find(last) == std::string_view::npos)
          found.push_back(std::to_string(number + 1) + ": " + std::string(line.substr(first)));
        break;
      }
      if (scalar_start && c == '"') {
        in_double = true;
      } else if (scalar_start && c == '\'') {
        in_single = true;
      } else if (scalar_start && (c == '|' || c == '>')) {
        // A block scalar, when only its indicators (and a comment) follow.
        const std::string_view rest = line.substr(i + 1);
        const size_t hash = rest.find(" #");
        const std::string_view ind = rest.substr(0, hash);
        if (ind.find_first_not_of("+-0123456789 ") == std::string_view::npos)
          block_indent = static_cast<int>(first);
      }
      scalar_start = c == '[' || c == '{' || c == ',' || c == '-' || c == '?' ||
                     (c == ':' && (i + 1 == line.size() || line[i + 1] == ' '));
      if (block_indent >= 0) break;
      last = c;
    }
  }
  return found;
}

Lesson parse_lesson(std::string_view yaml_text, const std::string& file,
                    std::optional<uint64_t> seed) {
  const Where w{file};
  // YAML reads " #" in an unquoted text as the start of a comment: the text is cut there.
  if (const auto cut = trailing_comments(yaml_text); !cut.empty()) {
    std::string list;
    for (const std::string& c : cut) list += "\n  " + file + ":" + c;
    throw LessonError(file + ":" + cut[0].substr(0, cut[0].find(':')) +
                      ": ' #' in unquoted text starts a YAML comment and cuts the text there; "
                      "quote the text (\"…\") or put the comment on a line of its own:" + list);
  }
  auto load = [&](const std::string& text) {
    try {
      return YAML::Load(text);
    } catch (const YAML::Exception& e) {
      throw LessonError(file + ":" + std::to_string(e.mark.line + 1) + ": not valid YAML: " +
                        e.msg);
    }
  };
  YAML::Node root = load(std::string(yaml_text));
  if (!root.IsMap()) w.fail(root, "(top)", "a lesson file is a map (id, title, guest, steps, …)");
  try {
    // Parameters first: their values go into the text ($(expr)) before the rest is read.
    std::vector<Param> params;
    if (const YAML::Node ps = root["params"]) {
      if (!ps.IsSequence() || ps.size() == 0 || ps.size() > kMaxParams)
        w.fail(ps, "params", "a list of 1.." + std::to_string(kMaxParams) +
                                 " {name: …, default: …, values: […]} or {name, default, min, max, step}");
      for (size_t i = 0; i < ps.size(); ++i) {
        const std::string f = "params[" + std::to_string(i + 1) + "]";
        const YAML::Node n = ps[i];
        if (!n.IsMap()) w.fail(n, f, "must be a map {name: …, default: …, values: […]}");
        only_keys(w, n, f, {"name", "default", "values", "min", "max", "step"});
        Param p;
        if (!n["name"]) w.fail(n, f + ".name", "missing");
        p.name = scalar(w, n["name"], f + ".name");
        if (p.name.empty() || !(std::islower(static_cast<unsigned char>(p.name[0])) || p.name[0] == '_') ||
            !std::all_of(p.name.begin(), p.name.end(), [](char c) {
              return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
            }))
          w.fail(n["name"], f + ".name", "lower-case letters, digits and '_', not starting with a digit");
        for (const Param& q : params)
          if (q.name == p.name) w.fail(n["name"], f + ".name", "duplicate parameter '" + p.name + "'");
        auto number = [&](const char* key) {
          const auto v = parse_number(scalar(w, n[key], f + "." + key));
          if (!v) w.fail(n[key], f + "." + key, "must be a number (decimal or 0x-hexadecimal)");
          return *v;
        };
        if (!n["default"]) w.fail(n, f + ".default", "missing (the value without a seed)");
        p.fallback = number("default");
        if (n["values"]) {
          if (n["min"] || n["max"] || n["step"]) w.fail(n, f, "values or min/max/step, not both");
          if (!n["values"].IsSequence() || n["values"].size() == 0)
            w.fail(n["values"], f + ".values", "a non-empty list of numbers");
          for (const auto& v : n["values"]) {
            const auto x = parse_number(scalar(w, v, f + ".values"));
            if (!x) w.fail(v, f + ".values", "must be a number (decimal or 0x-hexadecimal)");
            p.values.push_back(*x);
          }
        } else if (n["min"] || n["max"]) {
          if (!n["min"] || !n["max"]) w.fail(n, f, "min and max go together");
          const uint64_t lo = number("min"), hi = number("max");
          const uint64_t step = n["step"] ? number("step") : 1;
          if (lo > hi || step == 0 || (hi - lo) / step >= 65536)
            w.fail(n, f, "min <= max, step > 0, at most 65536 values");
          for (uint64_t v = lo; v <= hi; v += step) p.values.push_back(v);
        } else {
          w.fail(n, f + ".values", "missing: the values a seed chooses from (values, or min/max/step)");
        }
        params.push_back(std::move(p));
      }
    }
    std::map<std::string, uint64_t> values;
    for (size_t i = 0; i < params.size(); ++i) {
      params[i].value = seed ? choose(params[i], i, *seed) : params[i].fallback;
      values[params[i].name] = params[i].value;
    }
    const std::string text = substitute(yaml_text, values, file);
    if (text != yaml_text) root = load(text);

    only_keys(w, root, "",
              {"id", "number", "title", "summary", "topic", "guest", "mode", "backends",
               "technique", "deprivilege", "paging", "timeout", "params", "sources", "steps"});
    Lesson l;
    l.file = file;
    l.params = std::move(params);
    l.seed = l.params.empty() ? std::nullopt : seed;
    for (const char* req : {"id", "number", "title", "summary", "guest", "steps"})
      if (!root[req]) w.fail(root, req, "missing");
    l.id = scalar(w, root["id"], "id");
    if (!valid_id(l.id)) w.fail(root["id"], "id", "use lower-case letters, digits and '-'");
    auto n = parse_number(scalar(w, root["number"], "number"));
    if (!n || *n > 999) w.fail(root["number"], "number", "must be a number 0..999");
    l.number = static_cast<int>(*n);
    l.title = text_of(w, root["title"], "title");
    l.summary = text_of(w, root["summary"], "summary");
    if (root["topic"]) l.topic = text_of(w, root["topic"], "topic");
    if (const YAML::Node src = root["sources"]) {
      if (!src.IsSequence() || src.size() == 0) w.fail(src, "sources", "a non-empty list of citations");
      for (const auto& item : src) l.sources.push_back(scalar(w, item, "sources"));
    }
    if (root["mode"]) {
      l.mode = scalar(w, root["mode"], "mode");
      if (l.mode != "real" && l.mode != "protected" && l.mode != "long")
        w.fail(root["mode"], "mode", "must be real, protected or long");
    }
    l.guest = scalar(w, root["guest"], "guest");
    const bool guest_is_file = l.guest.find('/') != std::string::npos ||
                               (l.guest.size() > 4 && l.guest.ends_with(".bin"));
    if (guest_is_file) {
      // A guest image beside the lesson: its path is relative to the lesson file's folder.
      namespace fs = std::filesystem;
      const fs::path base = fs::path(file).parent_path();
      l.guest_file = (fs::path(l.guest).is_absolute() ? fs::path(l.guest) : base / l.guest).string();
      std::string error;
      const auto bytes = trace::read_input_file(l.guest_file, kMaxGuestFileBytes, "a guest image", &error);
      if (!bytes) w.fail(root["guest"], "guest", "cannot read '" + l.guest_file + "': " + error);
      if (bytes->empty()) w.fail(root["guest"], "guest", "'" + l.guest_file + "' is empty");
      if (l.mode.empty()) w.fail(root["guest"], "mode", "a guest file needs its boot mode (mode: real, protected or long)");
      l.guest_bytes = std::make_shared<const std::vector<uint8_t>>(bytes->begin(), bytes->end());
    } else if (!guests::find(l.guest)) {
      std::string known;
      for (const auto& g : guests::catalog()) known += (known.empty() ? "" : ", ") + std::string(g.name);
      w.fail(root["guest"], "guest",
             "'" + l.guest + "' is not a built-in guest (" + known + "; or a path to an image file)");
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
    for (size_t i = 0; i < l.steps.size(); ++i) {
      const std::string f = "steps[" + std::to_string(i + 1) + "]";
      if (l.steps[i].restart && !sim_only)
        w.fail(steps[i]["restart"], f + ".restart",
               "restarting under a technique needs backends: [sim]");
      // Valid on every engine the lesson names: KVM reports VM exits and the end of the run.
      if (l.steps[i].run_until && l.allows("kvm") && !kvm_reports(l.steps[i].run_until->kind))
        w.fail(steps[i]["run_until"]["event"], f + ".run_until.event",
               std::string(to_string(l.steps[i].run_until->kind)) +
                   " events are the simulator's: KVM reports only vm_exit, run_end (and any, "
                   "the next VM exit); use backends: [sim]");
    }
    return l;
  } catch (const YAML::Exception& e) {
    throw LessonError(file + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

Lesson load_lesson_file(const std::string& path, std::optional<uint64_t> seed) {
  // Checked before reading: a FIFO or /dev/zero is refused, not read until memory runs out.
  std::string error;
  const auto text = trace::read_input_file(path, kMaxLessonFileBytes, "a lesson file", &error);
  if (!text) throw LessonError(path + ": cannot read the lesson file: " + error);
  return parse_lesson(*text, path, seed);
}

}  // namespace trapscope::lessons
