// The compare panel's view model (visualizer/core/compare_view.hpp) on real `trapscope compare
// --json` output and on malformed files, its chart geometry, and a compare run started as the
// GUI starts it (visualizer/core/compare_run.hpp: the compare library on a worker thread). No
// window: the panel under Xvfb is in test_gui_xvfb.cpp.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "backend/backend.hpp"
#include "tests/support.hpp"
#include "visualizer/core/compare_view.hpp"
#include "visualizer/core/compare_run.hpp"

using namespace trapscope;
using namespace trapscope::viz;

namespace {

std::optional<CompareResult> parse(const std::string& text, std::string* error) {
  return parse_compare(text, error);
}

size_t row_of(const CompareResult& r, const std::string& technique) {
  for (size_t i = 0; i < r.rows.size(); ++i) {
    if (r.rows[i].technique == technique) return i;
  }
  FAIL("no row " << technique);
  return 0;
}

std::optional<double> value(const CompareResult& r, const std::string& key, const std::string& technique,
                            const std::string& member = "") {
  const CompareChart* c = r.chart(key);
  REQUIRE(c != nullptr);
  for (size_t i = 0; i < c->clusters.size(); ++i) {
    if (c->clusters[i] == member) return c->values[i][row_of(r, technique)];
  }
  FAIL("no member " << member << " in " << key);
  return std::nullopt;
}

}  // namespace

TEST_CASE("compare panel model: a real `trapscope compare ptes --json` result", "[gui][compare]") {
  const std::string path = test::temp_path("compare-ptes.json");
  const auto run = test::run_trapscope({"compare", "ptes", "--json", path}, 120);
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  std::string error;
  const auto r = load_compare(path, &error);
  INFO(error);
  REQUIRE(r.has_value());
  CHECK(r->source == path);
  CHECK(r->workload == "ptes");
  CHECK(r->paging == "native");
  CHECK(r->cycle_model.find("Adams & Agesen") != std::string::npos);
  REQUIRE(r->rows.size() >= 5);
  for (const char* t : {"emulation", "trap-emulate", "vt", "bt", "pv"}) (void)row_of(*r, t);
  CHECK(r->rows[row_of(*r, "pv")].label() == "pv (pv-ptes)");

  // The charts follow the table's columns, whatever order the file's keys are in.
  REQUIRE(!r->charts.empty());
  CHECK(r->charts.front().key == "instructions");
  CHECK(r->charts.front().title == "guest instructions");
  for (const char* key : {"exits", "callouts", "translations", "page_walks", "tlb_misses",
                          "wall_ms", "modelled_cycles"}) {
    INFO(key);
    CHECK(r->chart(key) != nullptr);
  }
  CHECK(r->chart("technique") == nullptr);  // strings are labels, not charts
  CHECK(r->chart("end") == nullptr);

  // The values are the file's: every simulator technique retires the same guest
  // instructions; the VT-x model's modelled cycles are its VM exits times 1186 + 937.
  const auto insns = value(*r, "instructions", "emulation");
  REQUIRE(insns.has_value());
  CHECK(*insns > 1000);
  for (const char* t : {"trap-emulate", "vt", "bt"}) CHECK(value(*r, "instructions", t) == insns);
  const auto vt_exits = value(*r, "vt_exits", "vt");
  REQUIRE(vt_exits.has_value());
  CHECK(*vt_exits > 0);
  CHECK(value(*r, "modelled_cycles_by_part", "vt", "vm_transitions") == *vt_exits * (1186 + 937));
  // A row's modelled cycles are the sum of the model's parts (docs/compare.md: cost model).
  const CompareChart& parts = *r->chart("modelled_cycles_by_part");
  for (size_t row = 0; row < r->rows.size(); ++row) {
    double sum = 0;
    for (const auto& member : parts.values) sum += member[row].value_or(0);
    INFO(r->rows[row].label());
    CHECK(r->chart("modelled_cycles")->values[0][row] == sum);
  }
  const CompareChart& cycles = *r->chart("modelled_cycles");
  CHECK(cycles.modelled);
  CHECK(cycles.note.rfind("model: ", 0) == 0);
  CHECK(cycles.note.find("Adams & Agesen") != std::string::npos);
  CHECK_FALSE(r->chart("exits")->modelled);

  // KVM cannot count guest instructions or TLB misses: n/a, not 0.
  bool kvm = false;
  for (const CompareRow& row : r->rows) kvm |= row.technique == "kvm";
  if (kvm) {
    CHECK_FALSE(value(*r, "instructions", "kvm").has_value());
    CHECK_FALSE(value(*r, "tlb_misses", "kvm").has_value());
    CHECK(value(*r, "exits", "kvm").has_value());
  } else {
    WARN("no kvm row (KVM not usable here): its n/a cells are not checked");
  }
}

TEST_CASE("compare panel model: fields it does not know become charts by their shape",
          "[gui][compare]") {
  const std::string text = R"({
    "workload": "syscall", "paging": "ept", "cycle_model": "a model of ours",
    "published_source": "Adams & Agesen 2006, Table 2",
    "rows": [
      {"technique": "vt", "guest": "syscall", "instructions": 100, "exits": 12,
       "exits_by_cause": {"IO": 3, "HLT": 1, "EPT": {"read": 2, "write": null}},
       "page_walk_refs": 24, "published_cycles": 2409, "kvm_only": false, "tags": [1, 2]},
      {"technique": "kvm", "guest": "syscall", "instructions": null, "exits": 10,
       "exits_by_cause": {"IO": 3, "MSR": 7}}
    ]})";
  std::string error;
  const auto r = parse(text, &error);
  INFO(error);
  REQUIRE(r.has_value());
  CHECK(r->workload == "syscall");
  CHECK(r->paging == "ept");
  // A group extends "exits" and comes right after it; unknown keys follow the known ones.
  std::vector<std::string> keys;
  for (const auto& c : r->charts) keys.push_back(c.key);
  CHECK(keys == std::vector<std::string>{"instructions", "exits", "exits_by_cause",
                                         "page_walk_refs", "published_cycles"});
  const CompareChart& by_cause = *r->chart("exits_by_cause");
  CHECK(by_cause.title == "exits by cause");
  CHECK(by_cause.clusters == std::vector<std::string>{"IO", "HLT", "EPT.read", "EPT.write", "MSR"});
  CHECK(value(*r, "exits_by_cause", "vt", "IO") == 3.0);
  CHECK(value(*r, "exits_by_cause", "kvm", "MSR") == 7.0);
  CHECK_FALSE(value(*r, "exits_by_cause", "kvm", "HLT").has_value());    // absent: n/a
  CHECK_FALSE(value(*r, "exits_by_cause", "vt", "EPT.write").has_value());  // null: n/a
  CHECK_FALSE(value(*r, "exits_by_cause", "vt", "MSR").has_value());
  CHECK_FALSE(value(*r, "instructions", "kvm").has_value());
  CHECK_FALSE(value(*r, "page_walk_refs", "kvm").has_value());
  CHECK(r->chart("page_walk_refs")->title == "page walk references");
  CHECK(r->chart("published_cycles")->note == "published: Adams & Agesen 2006, Table 2");
  CHECK_FALSE(r->chart("published_cycles")->modelled);
  // Booleans and arrays are labels.
  const auto& labels = r->rows[0].labels;
  CHECK(std::find(labels.begin(), labels.end(), std::pair<std::string, std::string>{"kvm_only", "false"}) !=
        labels.end());
  CHECK(std::find(labels.begin(), labels.end(), std::pair<std::string, std::string>{"tags", "[1,2]"}) !=
        labels.end());
  CHECK(r->chart("kvm_only") == nullptr);
}

TEST_CASE("compare panel model: compare's documented schema (docs/compare.md), models and the paper",
          "[gui][compare]") {
  // The shape docs/compare.md's "compare's JSON and CSV" documents, with a nanobenchmark.
  const std::string text = R"json({
    "workload": "in", "paging": "native", "cycle_model": "Σ of the model's terms (a MODEL)",
    "model": {"direct_instruction": {"cycles": 1, "source": "one per instruction"}},
    "rows": [
      {"technique": "vt", "guest": "in", "backend": "sim", "instructions": 4000, "exits": 1000,
       "exits_by_cause": {"io": 1000, "hlt": 0},
       "modelled_cycles_by_part": {"instructions": 4000, "vm_transitions": 2123000},
       "per_iteration": {"iterations": 1000, "modelled_cycles": 2125, "paper_cycles": 15826}},
      {"technique": "kvm", "guest": "in", "backend": "kvm", "instructions": null, "exits": 1001,
       "exits_by_cause": {"io": 1000, "hlt": 1},
       "modelled_cycles_by_part": {"instructions": null, "vm_transitions": 0},
       "per_iteration": {"iterations": 1000, "modelled_cycles": null, "paper_cycles": null}}],
    "nanobenchmark": {"name": "in", "paper": {"native": 3209, "hardware_vmm": 15826},
                      "source": "Adams & Agesen, ASPLOS 2006, 3.8 GHz Pentium 4"}})json";
  std::string error;
  const auto r = parse(text, &error);
  INFO(error);
  REQUIRE(r.has_value());
  const auto header_has = [&](const std::string& k, const std::string& v) {
    return std::find(r->header.begin(), r->header.end(), std::pair{k, v}) != r->header.end();
  };
  CHECK(header_has("model.direct_instruction.source", "one per instruction"));
  CHECK(header_has("nanobenchmark.paper.hardware_vmm", "15826"));
  CHECK(r->rows[1].label() == "kvm (in)");
  const CompareChart& parts = *r->chart("modelled_cycles_by_part");
  CHECK(parts.modelled);
  CHECK(parts.note == "model: Σ of the model's terms (a MODEL)");
  const CompareChart& per = *r->chart("per_iteration");
  CHECK_FALSE(per.modelled);
  CHECK(per.note.empty());
  CHECK(per.clusters == std::vector<std::string>{"iterations", "modelled_cycles", "paper_cycles"});
  CHECK(per.cluster_notes[0].empty());
  CHECK(per.cluster_notes[1] == "model: Σ of the model's terms (a MODEL)");
  CHECK(per.cluster_notes[2] == "published: Adams & Agesen, ASPLOS 2006, 3.8 GHz Pentium 4");
  CHECK(value(*r, "per_iteration", "vt", "paper_cycles") == 15826.0);
  CHECK_FALSE(value(*r, "per_iteration", "kvm", "paper_cycles").has_value());
  const ChartLayout l = layout_chart(per, 0, 0, 600, 100, true);
  const ChartBar& paper_vt = l.bars[2 * 2 + 0];
  REQUIRE(paper_vt.cluster == 2);
  CHECK(bar_tooltip(*r, per, paper_vt) ==
        "vt (in)\nper iteration: paper_cycles\n15,826\n"
        "published: Adams & Agesen, ASPLOS 2006, 3.8 GHz Pentium 4");
  CHECK(value(*r, "exits_by_cause", "kvm", "hlt") == 1.0);
}

TEST_CASE("compare panel model: malformed input is an error, never a crash", "[gui][compare]") {
  const std::pair<const char*, const char*> cases[] = {
      {"", "not JSON"},
      {"{\"rows\": [", "not JSON"},
      {"[1, 2]", "not a JSON object"},
      {"{\"workload\": \"x\"}", "no \"rows\" array"},
      {"{\"rows\": {\"a\": 1}}", "no \"rows\" array"},
      {"{\"rows\": []}", "no rows"},
      {"{\"rows\": [{\"exits\": 1}, 7]}", "row 2 is not a JSON object"},
      {"{\"rows\": [{\"technique\": \"vt\"}]}", "no metrics"},
      {"\xff\xfe{}", "not JSON"},
  };
  for (const auto& [text, why] : cases) {
    INFO(text);
    std::string error;
    CHECK_FALSE(parse(text, &error).has_value());
    CHECK(error.find(why) != std::string::npos);
  }
  std::string error;
  CHECK_FALSE(load_compare("/nonexistent/compare.json", &error).has_value());
  CHECK(error.find("cannot read '/nonexistent/compare.json'") != std::string::npos);
  const std::string bad = test::temp_path("compare-bad.json");
  std::ofstream(bad) << "{\"rows\": [1]}";
  CHECK_FALSE(load_compare(bad, &error).has_value());
  CHECK(error == bad + ": row 1 is not a JSON object");
}

TEST_CASE("compare panel model: bar geometry, log scale, n/a, hover", "[gui][compare]") {
  std::string error;
  const auto r = parse(R"({"cycle_model": "m", "rows": [
      {"technique": "a", "x": 10, "modelled_cycles": 5},
      {"technique": "b", "x": 1000, "modelled_cycles": null},
      {"technique": "c", "x": 0, "modelled_cycles": 0}]})", &error);
  REQUIRE(r.has_value());
  const CompareChart& x = *r->chart("x");
  // Linear: heights proportional to the values, on the baseline y = 100.
  ChartLayout lin = layout_chart(x, 0, 0, 300, 100, false);
  REQUIRE(lin.bars.size() == 3);
  CHECK(lin.axis_max == 1000);
  CHECK(lin.bars[1].y0 == Approx(0));
  CHECK(lin.bars[0].y0 == Approx(99));
  CHECK(lin.bars[2].y0 == Approx(100));
  for (const ChartBar& b : lin.bars) CHECK(b.y1 == 100);
  CHECK(lin.bars[0].x1 <= lin.bars[1].x0);
  CHECK(lin.bars[1].x1 <= lin.bars[2].x0);
  // Log: from one decade under the smallest value (1) to 1000, 10 is a third of the way.
  ChartLayout log = layout_chart(x, 0, 0, 300, 100, true);
  CHECK(log.axis_min == Approx(1));
  CHECK(log.axis_max == Approx(1000));
  CHECK(log.bars[0].y0 == Approx(100 - 100.0 / 3).margin(0.01));
  CHECK(log.bars[1].y0 == Approx(0));
  CHECK(log.bars[2].y0 == Approx(100));  // 0 has no bar
  // n/a is not zero.
  const CompareChart& cycles = *r->chart("modelled_cycles");
  ChartLayout cl = layout_chart(cycles, 0, 0, 300, 100, false);
  CHECK(cl.bars[1].value == std::nullopt);
  CHECK(cl.bars[2].value == 0.0);
  // The bar under a point, and its tooltip.
  const ChartBar* b = bar_at(cl, (cl.bars[1].x0 + cl.bars[1].x1) / 2, 50);
  REQUIRE(b != nullptr);
  CHECK(b->row == 1);
  CHECK(bar_at(cl, -5, 50) == nullptr);
  CHECK(bar_at(cl, cl.bars[1].x0 + 1, 150) == nullptr);
  CHECK(bar_tooltip(*r, cycles, *b) == "b\nmodelled cycles\nn/a: b does not report it\nmodel: m");
  CHECK(bar_tooltip(*r, x, lin.bars[1]) == "b\nx\n1,000");
  CHECK(format_value(24563) == "24,563");
  CHECK(format_value(0.956083) == "0.956");
}

namespace {

// Waits (at most 120 s: a bound against a hang, not a time asserted) for the run to finish.
void wait_for(const CompareRun& run) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!run.finished() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(run.finished());
}

compare::Options options(const std::string& workload, const std::string& paging) {
  compare::Options o;
  o.workload = workload;
  o.paging = paging;
  return o;
}

// The children of this process (every thread's /proc/self/task/TID/children, Linux 3.5 with
// CONFIG_PROC_CHILDREN); nullopt if the kernel does not offer the file.
std::optional<std::string> children() {
  std::string all;
  bool any = false;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream f(task.path() / "children");
    if (!f) continue;
    any = true;
    all += std::string(std::istreambuf_iterator<char>(f), {});
  }
  if (!any) return std::nullopt;
  return all;
}

}  // namespace

TEST_CASE("compare run from the GUI: the compare library in the background", "[gui][compare]") {
  SECTION("a workload: its rows, as the command writes them") {
    CompareRun run(options("hello", "shadow"));
    wait_for(run);
    std::string error, warning;
    const auto r = run.result(&error, &warning);
    INFO(error);
    REQUIRE(r.has_value());
    CHECK(error.empty());
    CHECK(r->workload == "hello");
    CHECK(r->paging == "shadow");
    CHECK(r->source == "trapscope compare hello --paging shadow");
    CHECK(r->rows.size() >= 5);
    CHECK(r->cycle_model.find("Adams & Agesen") != std::string::npos);
    // The library's progress: runs done of all, the last call at the end.
    const auto p = run.progress();
    CHECK(p.total >= 5);
    CHECK(p.done == p.total);
    CHECK(p.technique.empty());
    CHECK(p.callbacks == p.total + 1);
  }
  SECTION("a workload the library refuses: its message, no result") {
    CompareRun run(options("no-such-guest", "native"));
    wait_for(run);
    std::string error, warning;
    CHECK_FALSE(run.result(&error, &warning).has_value());
    CHECK(error == "no built-in guest 'no-such-guest' (see `trapscope guests`)");
    CompareRun bad_paging(options("hello", "nested"));
    wait_for(bad_paging);
    CHECK_FALSE(bad_paging.result(&error, &warning).has_value());
    CHECK(error.find("no paging 'nested'") != std::string::npos);
  }
  SECTION("cancel at once") {
    CompareRun run(options("compute", "ept"));
    run.cancel();
    wait_for(run);
    std::string error, warning;
    CHECK_FALSE(run.result(&error, &warning).has_value());
    CHECK(error == "cancelled");
    CHECK(run.progress().callbacks <= 1);  // the first run, if it had started: no other
  }
  SECTION("cancel during a run: the run under way stops, no other starts") {
    // nano-in with a million iterations: each simulator run takes long enough that the cancel
    // lands inside one (the first progress call comes just before the first run starts).
    compare::Options o = options("nano-in", "native");
    o.iterations = 1000000;
    o.no_kvm = true;
    CompareRun run(o);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (run.progress().callbacks == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    run.cancel();
    wait_for(run);
    std::string error, warning;
    CHECK_FALSE(run.result(&error, &warning).has_value());
    CHECK(error == "cancelled");
    const auto p = run.progress();
    CHECK(p.total == 10);
    CHECK(p.done <= 2);  // the run going when Cancel came, at most: the others never started
    CHECK(p.callbacks <= 3);
  }
}

// The panel's run goes through the compare library in this process: the machines it makes are
// made here (backend::machines_made counts them), its progress comes from the library's
// callback, and no child process is started (with the old design, a `trapscope compare`
// child on a pseudo-terminal, none of these held).
TEST_CASE("compare run from the GUI: in this process, no child process", "[gui][compare]") {
  const uint64_t machines_before = backend::machines_made();
  compare::Options o = options("hello", "native");
  o.no_kvm = true;
  CompareRun run(o);
  bool child_seen = false;
  bool children_known = true;
  while (!run.finished()) {
    const auto c = children();
    if (!c) children_known = false;
    else if (c->find_first_not_of(" \n") != std::string::npos) child_seen = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK_FALSE(child_seen);
  if (!children_known) WARN("no /proc/self/task/*/children here: children not checked");
  std::string error, warning;
  const auto r = run.result(&error, &warning);
  INFO(error);
  REQUIRE(r.has_value());
  // hello under the five simulator techniques: five machines, made by this process.
  CHECK(r->rows.size() == 5);
  CHECK(backend::machines_made() - machines_before == 5);
  const auto p = run.progress();
  CHECK(p.total == 5);
  CHECK(p.done == 5);
  CHECK(p.callbacks == 6);
}
