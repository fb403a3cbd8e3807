#include "lessons/params.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "lessons/lesson.hpp"

namespace trapscope::lessons {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Integer expressions: sum := term (('+'|'-') term)*; term := unary (('*'|'/'|'%') unary)*;
// unary := '-' unary | '(' sum ')' | number | name. Throws std::string on error.
class Expr {
 public:
  Expr(std::string_view s, const std::map<std::string, uint64_t>& values)
      : s_(s), values_(values) {}
  uint64_t eval() {
    const uint64_t v = sum();
    skip();
    if (i_ != s_.size()) throw "unexpected '" + std::string(s_.substr(i_, 1)) + "'";
    return v;
  }

 private:
  void skip() {
    while (i_ < s_.size() && s_[i_] == ' ') ++i_;
  }
  bool eat(char c) {
    skip();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  uint64_t sum() {
    uint64_t v = term();
    for (;;) {
      if (eat('+')) v += term();
      else if (eat('-')) v -= term();
      else return v;
    }
  }
  uint64_t term() {
    uint64_t v = unary();
    for (;;) {
      if (eat('*')) {
        v *= unary();
      } else if (eat('/') || eat('%')) {
        const char op = s_[i_ - 1];
        const uint64_t d = unary();
        if (d == 0) throw std::string("division by zero");
        v = op == '/' ? v / d : v % d;
      } else {
        return v;
      }
    }
  }
  uint64_t unary() {
    if (eat('-')) return 0 - unary();
    if (eat('(')) {
      const uint64_t v = sum();
      if (!eat(')')) throw std::string("missing ')'");
      return v;
    }
    skip();
    const size_t start = i_;
    while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_'))
      ++i_;
    const std::string word(s_.substr(start, i_ - start));
    if (word.empty()) throw std::string(i_ < s_.size() ? "unexpected '" + std::string(1, s_[i_]) + "'"
                                                        : "missing a value");
    if (std::isdigit(static_cast<unsigned char>(word[0]))) {
      const auto v = parse_value_number(word);
      if (!v) throw "'" + word + "' is not a number";
      return *v;
    }
    const auto it = values_.find(word);
    if (it == values_.end()) {
      std::string known;
      for (const auto& [name, v] : values_) known += (known.empty() ? "" : ", ") + name;
      throw "unknown parameter '" + word + "' (" + (known.empty() ? "the lesson declares none" : known) + ")";
    }
    return it->second;
  }

  std::string_view s_;
  const std::map<std::string, uint64_t>& values_;
  size_t i_ = 0;
};

}  // namespace

uint64_t choose(const Param& p, size_t index, uint64_t seed) {
  if (p.values.empty()) return p.fallback;
  const uint64_t h = splitmix64(seed ^ splitmix64(index + 1));
  return p.values[h % p.values.size()];
}

std::vector<uint8_t> params_block(const std::vector<Param>& params) {
  std::vector<uint8_t> b(8 + 8 * params.size());
  auto put = [&](size_t at, uint64_t v, size_t n) {
    for (size_t k = 0; k < n; ++k) b[at + k] = static_cast<uint8_t>(v >> (8 * k));
  };
  put(0, kParamsMagic, 4);
  put(4, params.size(), 4);
  for (size_t i = 0; i < params.size(); ++i) put(8 + 8 * i, params[i].value, 8);
  return b;
}

std::string substitute(std::string_view yaml, const std::map<std::string, uint64_t>& values,
                       const std::string& file) {
  std::string out;
  size_t i = 0;
  while (i < yaml.size()) {
    const size_t at = yaml.find('$', i);
    if (at == std::string_view::npos) break;
    out.append(yaml.substr(i, at - i));
    const bool hex = yaml.substr(at, 5) == "$hex(";
    if (!hex && yaml.substr(at, 2) != "$(") {
      out += '$';
      i = at + 1;
      continue;
    }
    const size_t open = at + (hex ? 4 : 1);
    size_t depth = 0, close = open;
    for (; close < yaml.size() && yaml[close] != '\n'; ++close) {
      if (yaml[close] == '(') ++depth;
      if (yaml[close] == ')' && --depth == 0) break;
    }
    const int line = 1 + static_cast<int>(std::count(yaml.begin(), yaml.begin() + at, '\n'));
    const std::string where = file + ":" + std::to_string(line) + ": ";
    if (close >= yaml.size() || yaml[close] != ')')
      throw LessonError(where + std::string(yaml.substr(at, close - at)) + ": missing ')'");
    const std::string_view expr = yaml.substr(open + 1, close - open - 1);
    uint64_t v = 0;
    try {
      v = Expr(expr, values).eval();
    } catch (const std::string& why) {
      throw LessonError(where + std::string(yaml.substr(at, close + 1 - at)) + ": " + why);
    }
    char text[32];
    std::snprintf(text, sizeof text, hex ? "0x%llx" : "%llu", static_cast<unsigned long long>(v));
    out += text;
    i = close + 1;
  }
  out.append(yaml.substr(std::min(i, yaml.size())));
  return out;
}

}  // namespace trapscope::lessons
