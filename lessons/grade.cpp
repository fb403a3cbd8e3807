#include "lessons/grade.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "lessons/lesson.hpp"

namespace trapscope::lessons {
namespace {

// Lower case, Spanish accents dropped, surrounding spaces trimmed: "Sí " -> "si".
std::string normalized(std::string_view s) {
  static const struct { const char* from; char to; } kAccents[] = {
      {"á", 'a'}, {"é", 'e'}, {"í", 'i'}, {"ó", 'o'}, {"ú", 'u'}, {"ü", 'u'},
      {"Á", 'a'}, {"É", 'e'}, {"Í", 'i'}, {"Ó", 'o'}, {"Ú", 'u'}};
  std::string out;
  for (size_t i = 0; i < s.size();) {
    bool done = false;
    for (const auto& a : kAccents) {
      const std::string_view from(a.from);
      if (s.substr(i, from.size()) == from) {
        out += a.to;
        i += from.size();
        done = true;
        break;
      }
    }
    if (done) continue;
    const char c = s[i++];
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  const size_t b = out.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  return out.substr(b, out.find_last_not_of(" \t\r\n") - b + 1);
}

std::optional<size_t> option_of(const Grade& g, std::string_view typed) {
  const std::string t = normalized(typed);
  if (t.empty()) return std::nullopt;
  for (size_t i = 0; i < g.options.size(); ++i) {
    const Option& o = g.options[i];
    if (t == o.id || t == normalized(o.es) || t == normalized(o.en) || t == std::to_string(i + 1))
      return i;
  }
  return std::nullopt;
}

std::optional<uint64_t> typed_event(std::string_view typed) {
  std::string t = normalized(typed);
  if (!t.empty() && t[0] == '#') t.erase(0, 1);
  const auto v = parse_typed_number(t);
  if (!v || *v < 0 || *v != std::floor(*v)) return std::nullopt;
  return static_cast<uint64_t>(*v);
}

}  // namespace

std::optional<double> parse_typed_number(std::string_view text) {
  std::string t;
  for (char c : text)
    if (c != ' ' && c != '_' && c != '\t' && c != '\r' && c != '\n') t += c;
  if (t.empty()) return std::nullopt;
  bool negative = false;
  std::string body = t;
  if (body[0] == '-' || body[0] == '+') {
    negative = body[0] == '-';
    body.erase(0, 1);
  }
  if (body.size() > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X')) {
    uint64_t v = 0;
    for (size_t i = 2; i < body.size(); ++i) {
      const char c = body[i];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                   : c >= 'A' && c <= 'F'           ? c - 'A' + 10
                                                                    : -1;
      if (d < 0 || v > (UINT64_MAX >> 4)) return std::nullopt;
      v = v << 4 | static_cast<uint64_t>(d);
    }
    return negative ? -static_cast<double>(v) : static_cast<double>(v);
  }
  // A decimal comma (Spanish) is a decimal point, when it is the only separator.
  if (body.find(',') != std::string::npos) {
    if (body.find('.') != std::string::npos || body.find(',') != body.rfind(','))
      return std::nullopt;
    body[body.find(',')] = '.';
  }
  for (char c : body)
    if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+'))
      return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(body.c_str(), &end);
  if (end != body.c_str() + body.size() || !std::isfinite(v)) return std::nullopt;
  return negative ? -v : v;
}

bool accepts(const Grade& g, std::string_view typed, std::optional<uint64_t> event) {
  switch (g.kind) {
    case Grade::Kind::kNumber: {
      const auto v = parse_typed_number(typed);
      if (!v) return false;
      const double tol = g.relative ? g.tolerance * std::fabs(g.number) : g.tolerance;
      return std::fabs(*v - g.number) <= tol;
    }
    case Grade::Kind::kChoice: {
      const auto i = option_of(g, typed);
      return i && g.options[*i].id == g.choice;
    }
    case Grade::Kind::kEvent: {
      const auto e = typed_event(typed);
      return e && event && *e == *event;
    }
  }
  return false;
}

std::string unreadable(const Grade& g, std::string_view typed, Lang lang) {
  const bool es = lang == Lang::kEs;
  switch (g.kind) {
    case Grade::Kind::kNumber:
      if (!parse_typed_number(typed))
        return es ? "no es un número (decimal o 0x…)" : "not a number (decimal or 0x…)";
      return {};
    case Grade::Kind::kChoice:
      if (!option_of(g, typed))
        return std::string(es ? "no es ninguna de las opciones: " : "not one of the options: ") +
               options_text(g, lang);
      return {};
    case Grade::Kind::kEvent:
      if (!typed_event(typed))
        return es ? "escribe el número de un evento (#N)" : "type an event's number (#N)";
      return {};
  }
  return {};
}

std::string expected_text(const Grade& g, Lang lang, std::optional<uint64_t> event) {
  switch (g.kind) {
    case Grade::Kind::kNumber: {
      std::string s = g.number_text;
      if (g.tolerance > 0) {
        char t[64];
        if (g.relative) std::snprintf(t, sizeof t, " ± %g%%", g.tolerance * 100);
        else std::snprintf(t, sizeof t, " ± %g", g.tolerance);
        s += t;
      }
      return s;
    }
    case Grade::Kind::kChoice:
      for (const Option& o : g.options)
        if (o.id == g.choice) return lang == Lang::kEs ? o.es : o.en;
      return g.choice;
    case Grade::Kind::kEvent:
      if (event) {
        std::string s = "#";
        s += std::to_string(*event);
        return s;
      }
      return lang == Lang::kEs ? "el evento donde se detiene el paso" : "the event the step stops at";
  }
  return {};
}

std::string options_text(const Grade& g, Lang lang) {
  std::string s;
  for (size_t i = 0; i < g.options.size(); ++i)
    s += (i ? "  " : "") + std::to_string(i + 1) + ") " +
         (lang == Lang::kEs ? g.options[i].es : g.options[i].en);
  return s;
}

}  // namespace trapscope::lessons
