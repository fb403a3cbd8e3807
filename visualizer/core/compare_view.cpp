#include "visualizer/core/compare_view.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "trace/input_file.hpp"
#include "visualizer/core/describe.hpp"

namespace trapscope::viz {
namespace {

// The file's order is the charts' order: nlohmann's ordered_json keeps it (json sorts keys).
using Json = nlohmann::ordered_json;

constexpr size_t kMaxFileBytes = 64u << 20;

std::string as_label(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  std::string s = v.dump();
  if (s.size() > 200) s = s.substr(0, 197) + "...";
  return s;
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

class Builder {
 public:
  Builder(CompareResult& r) : r_(r) {}

  // Field `key` of row `row`: a metric, a group of metrics, or a label.
  void field(size_t row, const std::string& key, const Json& v) {
    if (v.is_number() || v.is_null()) {
      value(row, key, "", v);
    } else if (v.is_object()) {
      group(row, key, "", v);
    } else {
      r_.rows[row].labels.emplace_back(key, as_label(v));
      if (key == "technique") r_.rows[row].technique = as_label(v);
    }
  }

 private:
  void group(size_t row, const std::string& key, const std::string& prefix, const Json& obj) {
    for (const auto& [name, v] : obj.items()) {
      const std::string member = prefix.empty() ? name : prefix + "." + name;
      if (v.is_number() || v.is_null()) {
        value(row, key, member, v);
      } else if (v.is_object()) {
        group(row, key, member, v);
      } else {
        r_.rows[row].labels.emplace_back(key + "." + member, as_label(v));
      }
    }
  }

  void value(size_t row, const std::string& key, const std::string& member, const Json& v) {
    CompareChart& c = chart(key);
    size_t cluster = 0;
    while (cluster < c.clusters.size() && c.clusters[cluster] != member) ++cluster;
    if (cluster == c.clusters.size()) {
      c.clusters.push_back(member);
      c.values.emplace_back(r_.rows.size());
    }
    if (v.is_number()) c.values[cluster][row] = v.get<double>();
  }

  CompareChart& chart(const std::string& key) {
    auto it = index_.find(key);
    if (it != index_.end()) return r_.charts[it->second];
    index_.emplace(key, r_.charts.size());
    CompareChart& c = r_.charts.emplace_back();
    c.key = key;
    c.title = metric_title(key);
    return c;
  }

  CompareResult& r_;
  std::map<std::string, size_t> index_;
};

// A top-level field: objects flatten to "a.b" entries (model.direct_instruction.source).
void flatten_header(CompareResult& r, const std::string& key, const Json& v, int depth = 0) {
  if (v.is_object() && depth < 8) {
    for (const auto& [k, m] : v.items()) flatten_header(r, key + "." + k, m, depth + 1);
  } else {
    r.header.emplace_back(key, as_label(v));
  }
}

// Where published figures come from: a header field named "published…", or else the "source"
// of the header object that holds the paper's figures (nanobenchmark.source beside
// nanobenchmark.paper.*).
std::string published_source(const CompareResult& r) {
  for (const auto& [k, v] : r.header) {
    if (contains(k, "published")) return v;
  }
  for (const auto& [k, v] : r.header) {
    const size_t dot = k.rfind('.');
    if (dot == std::string::npos || k.substr(dot + 1) != "source") continue;
    const std::string parent = k.substr(0, dot + 1);
    for (const auto& [k2, v2] : r.header) {
      if (k2.rfind(parent, 0) == 0 && contains(k2.substr(parent.size()), "paper")) return v;
    }
  }
  return "";
}

// The text of a header field whose name contains `word`, or "".
std::string header_with(const CompareResult& r, std::string_view word) {
  for (const auto& [k, v] : r.header) {
    if (contains(k, word)) return v;
  }
  return "";
}

constexpr std::string_view kTableOrder[] = {
    "instructions", "exits", "traps", "vt_exits", "hypercalls", "callouts", "translations",
    "page_walks", "tlb_misses", "wall_ms", "modelled_cycles", "published"};

size_t chart_rank(std::string_view key) {
  size_t best = std::size(kTableOrder) * 2, best_len = 0;
  for (size_t i = 0; i < std::size(kTableOrder); ++i) {
    // "exits" extends to "exits_by_cause", "page_walks" to "page_walk_refs".
    const std::string_view k = kTableOrder[i];
    const std::string_view stem = k.back() == 's' ? k.substr(0, k.size() - 1) : k;
    if (key.substr(0, stem.size()) == stem && k.size() > best_len) {
      best = i * 2 + (key.size() != k.size());
      best_len = k.size();
    }
  }
  return best;
}

}  // namespace

// [SECTION] Reading the JSON

std::string CompareRow::label() const {
  std::string guest;
  for (const auto& [k, v] : labels) {
    if (k == "guest") guest = v;
  }
  if (technique.empty()) return guest;
  if (guest.empty()) return technique;
  return technique + " (" + guest + ")";
}

double CompareChart::max_value() const {
  double m = 0;
  for (const auto& cluster : values) {
    for (const auto& v : cluster) {
      if (v && *v > m) m = *v;
    }
  }
  return m;
}

const CompareChart* CompareResult::chart(std::string_view key) const {
  for (const CompareChart& c : charts) {
    if (c.key == key) return &c;
  }
  return nullptr;
}

std::optional<CompareResult> parse_compare(std::string_view text, std::string* error) {
  Json j;
  try {
    j = Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    *error = "not JSON (" + std::string(e.what()) + ")";
    return std::nullopt;
  }
  if (!j.is_object()) {
    *error = "not a compare result: the top level is not a JSON object";
    return std::nullopt;
  }
  const auto rows = j.find("rows");
  if (rows == j.end() || !rows->is_array()) {
    *error = "not a compare result: no \"rows\" array (write one with `trapscope compare "
             "WORKLOAD --json FILE`)";
    return std::nullopt;
  }
  if (rows->empty()) {
    *error = "the compare result has no rows";
    return std::nullopt;
  }
  CompareResult r;
  for (const auto& [k, v] : j.items()) {
    if (k != "rows") flatten_header(r, k, v);
  }
  r.workload = header_with(r, "workload");
  r.paging = header_with(r, "paging");
  r.cycle_model = header_with(r, "cycle_model");
  r.rows.resize(rows->size());
  Builder b(r);
  for (size_t i = 0; i < rows->size(); ++i) {
    const Json& row = (*rows)[i];
    if (!row.is_object()) {
      *error = "row " + std::to_string(i + 1) + " is not a JSON object";
      return std::nullopt;
    }
    for (const auto& [k, v] : row.items()) b.field(i, k, v);
  }
  if (r.charts.empty()) {
    *error = "the compare result has no metrics (no number in any row)";
    return std::nullopt;
  }
  // `compare --json` writes its keys sorted by name: the charts go in the table's order (a
  // field that extends a known one, e.g. exits_by_cause, right after it), others after those
  // in the order the file names them.
  std::stable_sort(r.charts.begin(), r.charts.end(), [](const CompareChart& a, const CompareChart& b) {
    return chart_rank(a.key) < chart_rank(b.key);
  });
  // A modelled figure says so, with the model's source; a published one (the paper's
  // measurements), with the paper. Whole charts by their key, else members by their name.
  const std::string published = published_source(r);
  const std::string published_note =
      "published: " + (published.empty() ? std::string("the paper's measured figures, not ours")
                                         : published);
  const std::string model_note =
      "model: " + (r.cycle_model.empty() ? std::string("not a measurement") : r.cycle_model);
  auto note_for = [&](std::string_view name) -> std::string {
    if (contains(name, "published") || contains(name, "paper")) return published_note;
    if (contains(name, "model")) return model_note;
    return "";
  };
  for (CompareChart& c : r.charts) {
    c.note = note_for(c.key);
    c.modelled = c.note == model_note;
    c.cluster_notes.resize(c.clusters.size());
    for (size_t i = 0; i < c.clusters.size(); ++i) {
      c.cluster_notes[i] = c.note.empty() ? note_for(c.clusters[i]) : "";
    }
  }
  return r;
}

std::optional<CompareResult> load_compare(const std::string& path, std::string* error) {
  const auto text = trace::read_input_file(path, kMaxFileBytes, "a compare result", error);
  if (!text) {
    *error = "cannot read '" + path + "': " + *error;
    return std::nullopt;
  }
  std::string why;
  auto r = parse_compare(*text, &why);
  if (!r) {
    *error = path + ": " + why;
    return std::nullopt;
  }
  r->source = path;
  return r;
}

std::string metric_title(std::string_view key) {
  static const std::pair<std::string_view, std::string_view> kKnown[] = {
      {"instructions", "guest instructions"},
      {"exits", "exits to the VMM"},
      {"traps", "trap-and-emulate traps"},
      {"vt_exits", "VM exits (VT-x model)"},
      {"hypercalls", "hypercalls"},
      {"callouts", "BT callouts"},
      {"translations", "BT translations"},
      {"page_walks", "page walks"},
      {"tlb_misses", "TLB misses"},
      {"wall_ms", "host wall time (ms)"},
      {"modelled_cycles", "modelled cycles"},
  };
  for (const auto& [k, title] : kKnown) {
    if (k == key) return std::string(title);
  }
  static const std::pair<std::string_view, std::string_view> kWords[] = {
      {"tlb", "TLB"}, {"vt", "VT-x"}, {"vm", "VM"},   {"bt", "BT"},     {"pv", "PV"},
      {"kvm", "KVM"}, {"ms", "(ms)"}, {"ns", "(ns)"}, {"refs", "references"}, {"pte", "PTE"},
      {"ptes", "PTEs"}, {"io", "I/O"}, {"cpu", "CPU"}};
  std::string out;
  size_t i = 0;
  while (i <= key.size()) {
    const size_t end = std::min(key.find('_', i), key.size());
    std::string word(key.substr(i, end - i));
    for (const auto& [w, say] : kWords) {
      if (word == w) word = say;
    }
    if (!out.empty() && !word.empty()) out += ' ';
    out += word;
    i = end + 1;
  }
  return out;
}

// [SECTION] Geometry

ChartLayout layout_chart(const CompareChart& chart, float x, float y, float w, float h,
                         bool log_scale) {
  ChartLayout l;
  l.plot_y = y;
  l.plot_h = h;
  const size_t clusters = chart.clusters.size();
  const size_t rows = clusters ? chart.values[0].size() : 0;
  if (clusters == 0 || rows == 0 || w <= 0 || h <= 0) return l;
  double min_positive = 0;
  for (const auto& c : chart.values) {
    for (const auto& v : c) {
      if (v && *v > 0 && (min_positive == 0 || *v < min_positive)) min_positive = *v;
    }
  }
  const double max = chart.max_value();
  double lo = 0, hi = 1;  // the scale's ends (log: exponents of 10)
  if (log_scale) {
    // One decade under the smallest value, so that the smallest bar is seen; 0 has no bar.
    lo = min_positive > 0 ? std::floor(std::log10(min_positive)) - 1 : -1;
    hi = max > 0 ? std::max(std::ceil(std::log10(max)), lo + 1) : lo + 1;
    l.axis_min = std::pow(10.0, lo);
    l.axis_max = std::pow(10.0, hi);
  } else {
    hi = max > 0 ? max : 1;
    l.axis_min = 0;
    l.axis_max = hi;
  }
  const float slot = w / static_cast<float>(clusters);
  const float gap = clusters > 1 ? slot * 0.15f : slot * 0.06f;
  const float bar_w = (slot - 2 * gap) / static_cast<float>(rows);
  const float bottom = y + h;
  for (size_t c = 0; c < clusters; ++c) {
    for (size_t r = 0; r < rows; ++r) {
      ChartBar b;
      b.cluster = c;
      b.row = r;
      b.value = chart.values[c][r];
      b.x0 = x + slot * static_cast<float>(c) + gap + bar_w * static_cast<float>(r);
      b.x1 = b.x0 + std::max(1.0f, bar_w - (bar_w >= 6 ? 2.0f : 0.0f));
      b.y1 = bottom;
      double frac = 0;
      if (b.value && *b.value > 0) {
        frac = log_scale ? (std::log10(*b.value) - lo) / (hi - lo) : *b.value / hi;
      }
      b.y0 = bottom - static_cast<float>(std::clamp(frac, 0.0, 1.0) * h);
      l.bars.push_back(b);
    }
  }
  return l;
}

const ChartBar* bar_at(const ChartLayout& layout, float px, float py) {
  if (py < layout.plot_y || py > layout.plot_y + layout.plot_h) return nullptr;
  for (const ChartBar& b : layout.bars) {
    if (px >= b.x0 && px < b.x1) return &b;
  }
  return nullptr;
}

std::string format_value(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1.8e19) {
    const std::string s = with_commas(static_cast<uint64_t>(std::fabs(v)));
    return v < 0 ? "-" + s : s;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

std::string bar_tooltip(const CompareResult& result, const CompareChart& chart, const ChartBar& b) {
  const CompareRow& row = result.rows.at(b.row);
  std::string s = row.label() + "\n" + chart.title;
  if (!chart.clusters.at(b.cluster).empty()) s += ": " + chart.clusters[b.cluster];
  s += "\n";
  if (b.value) {
    s += format_value(*b.value);
  } else {
    s += "n/a: " + (row.technique.empty() ? std::string("this row") : row.technique) +
         " does not report it";
  }
  if (!chart.note.empty()) s += "\n" + chart.note;
  if (b.cluster < chart.cluster_notes.size() && !chart.cluster_notes[b.cluster].empty()) {
    s += "\n" + chart.cluster_notes[b.cluster];
  }
  return s;
}

}  // namespace trapscope::viz
