// compare/report.hpp — a comparison (compare/comparison.hpp) as the JSON document and the CSV
// table that docs/compare.md ("compare's JSON and CSV") documents: what `trapscope compare
// --json/--csv` writes and the visualizer's compare panel reads. Fields are only ever added.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "compare/comparison.hpp"

namespace trapscope::compare {

// The JSON document: workload, paging, cycle_model, model, rows (run rows only), skipped (if a
// row was skipped), nanobenchmark (one nanobenchmark) or nanobenchmarks (`nano`).
nlohmann::json to_json(const Comparison& c);

// The CSV table of a document from to_json(): a header line, then one line per row — the scalar
// fields, then one column per cause (cause_io, …) and per model term (cycles_instructions, …);
// an empty cell is null.
std::string to_csv(const nlohmann::json& document);

}  // namespace trapscope::compare
