// visualizer/core/compare_run.hpp — a comparison started from the GUI, in the background: the
// compare panel's "Run" (visualizer/panels/compare.cpp) and the script's `compare-run`. No GUI.
//
// It calls the compare library (compare/comparison.hpp) on a worker thread (std::jthread), in
// this process: the library's progress callback gives the runs done of all and the run going,
// and Cancel is a stop request on the thread's stop token, which ends the run under way
// (Backend::request_stop) and starts no other. The result goes through the same JSON document
// that `trapscope compare --json` writes (compare/report.hpp) into the panel's view model
// (compare_view.hpp), so the panel shows exactly what the command computes and writes, fields
// it gains included. Each run has its own machine and a 10 s time limit, as under the command.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "compare/comparison.hpp"
#include "visualizer/core/compare_view.hpp"

namespace trapscope::viz {

class CompareRun {
 public:
  // Starts the comparison at once on a worker thread. `options`: as `trapscope compare`'s.
  explicit CompareRun(compare::Options options);
  ~CompareRun();  // cancels a comparison still going, and waits for its thread
  CompareRun(const CompareRun&) = delete;
  CompareRun& operator=(const CompareRun&) = delete;

  struct Progress {
    size_t done = 0, total = 0;    // runs finished, runs in all (total 0: not known yet)
    std::string technique, guest;  // the run going ("" before the first and after the last)
    size_t callbacks = 0;          // progress callbacks received from the library
    double elapsed_s = 0;
  };
  Progress progress() const;
  bool finished() const;
  void cancel();  // the run then finishes with the error "cancelled"

  // Once finished: the result (its `warning` set when a technique's run did not end cleanly:
  // its row says how), or nullopt and *error ("cancelled", the library's reason for refusing
  // the options, an exception a backend threw).
  std::optional<CompareResult> result(std::string* error, std::string* warning) const;

  const std::string& workload() const { return options_.workload; }
  const std::string& paging() const { return options_.paging; }

 private:
  void work(std::stop_token stop);

  const compare::Options options_;
  const std::chrono::steady_clock::time_point start_;
  mutable std::mutex mu_;
  Progress progress_;
  double elapsed_end_s_ = -1;
  bool finished_ = false;
  std::optional<CompareResult> result_;
  std::string error_, warning_;
  std::jthread thread_;  // last: joined before the members it uses are destroyed
};

}  // namespace trapscope::viz
