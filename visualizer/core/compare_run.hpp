// visualizer/core/compare_run.hpp — a `trapscope compare` run started from the GUI, in the
// background: the compare panel's "Run" (visualizer/panels/compare.cpp) and the script's
// `compare-run`. No GUI.
//
// It runs the compare command itself — `EXE compare WORKLOAD --paging P --json TMP` as a child
// process (posix_spawn), EXE being this trapscope — and reads the JSON it writes with
// load_compare(), so the GUI shows exactly what the command computes and writes, fields it
// gains included, with no second copy of its run loop. A child process also means a guest that
// never stops, or a crash in a backend, cannot take the GUI with it, and Cancel is a signal.
// A thread reads the child's stdout (the table) and its stderr — a pseudo-terminal, since
// compare draws its progress bar ("[####      ] 3/7 vt ptes") only on a terminal — then waits
// for it. The bar's last line is the progress shown, its N/M the fraction.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "visualizer/core/compare_model.hpp"

namespace trapscope::viz {

class CompareRun {
 public:
  // Starts the run at once. `exe`: the trapscope executable ("/proc/self/exe" in the GUI).
  CompareRun(std::string exe, std::string workload, std::string paging);
  ~CompareRun();  // cancels a run still going, and waits for its thread
  CompareRun(const CompareRun&) = delete;
  CompareRun& operator=(const CompareRun&) = delete;

  struct Progress {
    std::string status;       // the child's last status line on stderr ("compare: vt …")
    int table_lines = 0;      // lines of the table printed (compare prints it at the end)
    int done = 0, total = 0;  // runs done of all, from the status line (total 0: not known yet)
    double elapsed_s = 0;
  };
  Progress progress() const;
  bool finished() const { return finished_; }
  void cancel();  // SIGKILL to the child; the run then finishes with an error

  // Once finished: the result (its `warning` set when compare exited non-zero but wrote its
  // JSON, e.g. a technique whose guest did not halt), or nullopt and *error.
  std::optional<CompareResult> result(std::string* error, std::string* warning) const;

  const std::string& workload() const { return workload_; }
  const std::string& paging() const { return paging_; }

 private:
  void work();

  std::string exe_, workload_, paging_, json_path_;
  std::chrono::steady_clock::time_point start_;
  mutable std::mutex mu_;
  std::string status_, stderr_;
  int table_lines_ = 0, done_ = 0, total_ = 0;
  double elapsed_end_s_ = -1;
  std::optional<CompareResult> result_;
  std::string error_, warning_;
  pid_t pid_ = -1;
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> finished_{false};
  std::thread thread_;
};

}  // namespace trapscope::viz
