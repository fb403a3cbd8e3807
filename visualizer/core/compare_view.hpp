// visualizer/core/compare_view.hpp — the compare panel's view model, without ImGui: a
// `trapscope compare WORKLOAD --json FILE` result (or the same document from a comparison run
// in the GUI, compare_run.hpp) read generically and turned into bar charts, and the
// geometry of those charts (where each bar goes), so both are unit-tested without a window.
//
// [SECTION] Reading the JSON
//   {"workload", "paging", "cycle_model", …, "rows": [{"technique", "guest", <metrics>…}]}
//   (compare/report.hpp makes it). Nothing but "rows" is required, and nothing about a row is
//   known in advance, so fields that `compare` adds appear without a change here:
//     - a string is a label of the row (technique, guest, end, a cycle source, …);
//     - a number is a metric: one chart, one bar per row;
//     - null is a metric the row lacks (KVM cannot count guest instructions or TLB misses):
//       its bar is drawn as "n/a", never as 0;
//     - an object is a group of metrics (e.g. VM exits by cause): one grouped chart, a cluster
//       per member, one bar per row in each cluster; nested objects flatten to "a.b";
//     - booleans and arrays are shown as labels (their JSON text).
//   The top level's other strings and numbers (workload, paging, cycle_model, …) are the
//   header. Charts follow the compare table's columns (instructions, exits, traps, vt_exits,
//   hypercalls, callouts, translations, page_walks, tlb_misses, wall_ms, modelled_cycles); a
//   field that extends one of those (exits_by_cause) comes right after it, and any other after
//   them in the order the file first names it.
// [SECTION] Charts
//   A metric whose name says it is modelled (contains "model") is labelled "model" with the
//   result's cycle_model text as its source; one that says "published" or "paper" is labelled
//   as the paper's figures, with the header's source for them (a "published…" field, or the
//   "source" beside the paper's figures: nanobenchmark.source). In a group, each member is
//   labelled so by its own name (per_iteration.modelled_cycles, per_iteration.paper_cycles).
//   Header objects flatten to "a.b" entries (model.direct_instruction.cycles). Counts differ by orders of magnitude across techniques (BT's callouts vs
//   the emulator's instructions), so a chart can be drawn on a log10 scale.
// [SECTION] Geometry
//   layout_chart() places bars in a plot rectangle (screen pixels, y down): linear or log10
//   scale from 0 (log: from 1, a value of 0 or less has no bar), a bar per row per cluster.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace trapscope::viz {

// [SECTION] Reading the JSON

struct CompareRow {
  std::string technique;                                   // "" if the row has none
  std::vector<std::pair<std::string, std::string>> labels;  // every non-number field, in order
  std::string label() const;  // "technique (guest)" — or the technique, or "row N"
};

// One bar chart: one cluster per member (a single cluster for a plain metric), one value per
// row in each cluster (nullopt: the row lacks it, "n/a").
struct CompareChart {
  std::string key;        // the JSON field ("exits", "exits_by_cause")
  std::string title;      // for people ("VM exits to the VMM")
  std::string note;       // "model: …" or "published: …" (shown under the title), or ""
  bool modelled = false;  // the values come from a cycle model, not a measurement
  std::vector<std::string> clusters;                        // member names ("" for a plain metric)
  std::vector<std::string> cluster_notes;  // per member, as `note` (per_iteration.paper_cycles)
  std::vector<std::vector<std::optional<double>>> values;  // [cluster][row]
  double max_value() const;  // the largest value present (0 if none)
};

struct CompareResult {
  std::string source;  // the file it was read from, or "" for text
  std::vector<std::pair<std::string, std::string>> header;  // top-level fields but "rows"
  std::string workload, paging, cycle_model;                // from the header, "" if absent
  std::vector<CompareRow> rows;
  std::vector<CompareChart> charts;
  const CompareChart* chart(std::string_view key) const;  // nullptr if absent
};

// Parses a compare result. nullopt with *error saying what is wrong (not JSON, with the byte
// offset; not an object; no "rows" array; no rows; a row that is not an object; a row with
// nothing to chart) — never an exception.
std::optional<CompareResult> parse_compare(std::string_view text, std::string* error);
// Reads and parses a file (at most 64 MiB); the error names the file.
std::optional<CompareResult> load_compare(const std::string& path, std::string* error);

// The title for a field name: the known metrics of `compare` in words, any other with its
// underscores as spaces.
std::string metric_title(std::string_view key);

// [SECTION] Geometry

struct ChartBar {
  size_t cluster = 0, row = 0;
  std::optional<double> value;  // nullopt: n/a (the rectangle is the full-height slot)
  float x0 = 0, y0 = 0, x1 = 0, y1 = 0;  // y0 top, y1 bottom (the baseline); y0 == y1: no bar
};

struct ChartLayout {
  std::vector<ChartBar> bars;
  float plot_y = 0, plot_h = 0;
  // The values at the bottom and top of the plot. Linear: 0 and the largest value. Log: powers
  // of 10, one decade under the smallest positive value and at or over the largest.
  double axis_min = 0, axis_max = 0;
};

// The bars of `chart` in the plot rectangle (x, y) .. (x + w, y + h), y down. Each cluster gets
// an equal slot, and each row an equal bar inside it with a gap between clusters.
ChartLayout layout_chart(const CompareChart& chart, float x, float y, float w, float h,
                         bool log_scale);

// The bar under a point, if any (n/a bars count: their slot).
const ChartBar* bar_at(const ChartLayout& layout, float px, float py);

// The tooltip of a bar: row label, chart (and cluster), the value with thousands separators
// (or "n/a: <technique> does not report it"), and the chart's note.
std::string bar_tooltip(const CompareResult& result, const CompareChart& chart, const ChartBar& bar);

// A value as the charts print it: integers with thousands separators, others to 3 decimals.
std::string format_value(double v);

}  // namespace trapscope::viz
