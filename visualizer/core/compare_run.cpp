#include "visualizer/core/compare_run.hpp"

#include <exception>
#include <utility>

#include "compare/report.hpp"

namespace trapscope::viz {

CompareRun::CompareRun(compare::Options options)
    : options_(std::move(options)), start_(std::chrono::steady_clock::now()) {
  thread_ = std::jthread([this](std::stop_token stop) { work(std::move(stop)); });
}

CompareRun::~CompareRun() {
  thread_.request_stop();  // std::jthread's destructor then joins
}

void CompareRun::cancel() { thread_.request_stop(); }

bool CompareRun::finished() const {
  std::lock_guard<std::mutex> lock(mu_);
  return finished_;
}

CompareRun::Progress CompareRun::progress() const {
  std::lock_guard<std::mutex> lock(mu_);
  Progress p = progress_;
  p.elapsed_s = elapsed_end_s_ >= 0 ? elapsed_end_s_
                                    : std::chrono::duration<double>(
                                          std::chrono::steady_clock::now() - start_).count();
  return p;
}

std::optional<CompareResult> CompareRun::result(std::string* error, std::string* warning) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!finished_) {
    *error = "the compare run has not finished";
    return std::nullopt;
  }
  *error = error_;
  *warning = warning_;
  return result_;
}

void CompareRun::work(std::stop_token stop) {
  std::optional<CompareResult> result;
  std::string error, warning;
  try {
    const compare::Comparison c = compare::run_comparison(
        options_,
        [this](const compare::Progress& p) {
          std::lock_guard<std::mutex> lock(mu_);
          progress_.done = p.done;
          progress_.total = p.total;
          progress_.technique = p.technique;
          progress_.guest = p.guest;
          ++progress_.callbacks;
        },
        stop);
    switch (c.status) {
      case compare::Status::kCancelled: error = "cancelled"; break;
      case compare::Status::kBadInput: error = c.error; break;
      case compare::Status::kRunFailed:
        warning = "a technique's run did not end cleanly; its row says how it ended";
        [[fallthrough]];
      case compare::Status::kOk:
        // The document `trapscope compare --json` writes, read as a file of it is.
        result = parse_compare(compare::to_json(c).dump(), &error);
        if (result) {
          result->source =
              "trapscope compare " + options_.workload + " --paging " + options_.paging;
        }
        break;
    }
  } catch (const std::exception& e) {
    error = std::string("compare ") + options_.workload + ": " + e.what();
  }
  std::lock_guard<std::mutex> lock(mu_);
  result_ = std::move(result);
  error_ = std::move(error);
  warning_ = std::move(warning);
  elapsed_end_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  finished_ = true;
}

}  // namespace trapscope::viz
