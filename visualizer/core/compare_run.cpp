#include "visualizer/core/compare_run.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

extern char** environ;

namespace trapscope::viz {
namespace {

std::string temp_json_path() {
  const char* dir = std::getenv("TMPDIR");
  std::string path = std::string(dir && *dir ? dir : "/tmp") + "/trapscope-compare-XXXXXX.json";
  const int fd = mkstemps(path.data(), 5);
  if (fd < 0) return "";
  close(fd);
  return path;
}

// The last non-empty line of `text`, lines ending in '\r' or '\n'.
std::string last_line(const std::string& text) {
  size_t end = text.size();
  while (end > 0) {
    while (end > 0 && (text[end - 1] == '\r' || text[end - 1] == '\n' || text[end - 1] == ' ')) {
      --end;
    }
    const size_t start = text.find_last_of("\r\n", end ? end - 1 : 0);
    const size_t from = start == std::string::npos ? 0 : start + 1;
    if (end > from) return text.substr(from, end - from);
    if (start == std::string::npos) break;
    end = start;
  }
  return "";
}

// "… 3/7 …": the first N/M in the status line, runs done of all.
void parse_progress(const std::string& s, int* done, int* total) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '/' || i == 0 || !std::isdigit(static_cast<unsigned char>(s[i - 1]))) continue;
    size_t a = i;
    while (a > 0 && std::isdigit(static_cast<unsigned char>(s[a - 1]))) --a;
    size_t b = i + 1;
    while (b < s.size() && std::isdigit(static_cast<unsigned char>(s[b]))) ++b;
    if (b == i + 1 || i - a > 6 || b - i > 7) continue;
    *done = std::stoi(s.substr(a, i - a));
    *total = std::stoi(s.substr(i + 1, b - i - 1));
    return;
  }
}

}  // namespace

CompareRun::CompareRun(std::string exe, std::string workload, std::string paging)
    : exe_(std::move(exe)),
      workload_(std::move(workload)),
      paging_(std::move(paging)),
      start_(std::chrono::steady_clock::now()) {
  thread_ = std::thread([this] { work(); });
}

CompareRun::~CompareRun() {
  cancel();
  if (thread_.joinable()) thread_.join();
}

void CompareRun::cancel() {
  cancelled_ = true;
  std::lock_guard<std::mutex> lock(mu_);
  if (pid_ > 0 && !finished_) kill(pid_, SIGKILL);  // the child this run started
}

CompareRun::Progress CompareRun::progress() const {
  std::lock_guard<std::mutex> lock(mu_);
  Progress p;
  p.status = status_;
  p.table_lines = table_lines_;
  p.done = done_;
  p.total = total_;
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

void CompareRun::work() {
  auto finish = [&](std::string error) {
    std::lock_guard<std::mutex> lock(mu_);
    error_ = std::move(error);
    elapsed_end_s_ =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    finished_ = true;
  };
  json_path_ = temp_json_path();
  if (json_path_.empty()) return finish("cannot create a temporary file for the result");
  // stdout: a pipe. stderr: a pseudo-terminal, because compare draws its progress bar only on
  // a terminal ("[####      ] 3/7 vt ptes").
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return finish("cannot create a pipe");
  if (openpty(&err[0], &err[1], nullptr, nullptr, nullptr) != 0) {
    close(out[0]);
    close(out[1]);
    return finish("cannot create a pseudo-terminal");
  }
  fcntl(err[0], F_SETFD, FD_CLOEXEC);
  fcntl(err[1], F_SETFD, FD_CLOEXEC);
  std::vector<std::string> args = {exe_, "compare", workload_, "--paging", paging_,
                                   "--json", json_path_};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid = -1;
  int rc;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rc = cancelled_ ? ECANCELED
                    : posix_spawn(&pid, exe_.c_str(), &fa, nullptr, argv.data(), environ);
    if (rc == 0) pid_ = pid;
  }
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  close(err[1]);
  if (rc != 0) {
    close(out[0]);
    close(err[0]);
    std::remove(json_path_.c_str());
    return finish(cancelled_ ? "cancelled" : "cannot start " + exe_);
  }
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  std::string errors;
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (pollfd& f : fds) {
      if (f.fd < 0 || !(f.revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      const ssize_t n = read(f.fd, buf, sizeof buf);  // the terminal: EIO once the child is gone
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        close(f.fd);
        f.fd = -1;
        --open_fds;
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      if (&f == &fds[0]) {
        for (ssize_t i = 0; i < n; ++i) table_lines_ += buf[i] == '\n';
      } else {
        stderr_.append(buf, static_cast<size_t>(n));
        if (stderr_.size() > 65536) stderr_.erase(0, stderr_.size() - 65536);
        status_ = last_line(stderr_);
        parse_progress(status_, &done_, &total_);
      }
    }
  }
  for (pollfd& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  // Wait for the child's end without reaping it, so that cancel() never signals a pid that
  // the system has given to another process; then forget the pid, then reap.
  siginfo_t info{};
  while (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    pid_ = -1;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::string why;
  auto r = cancelled_ ? std::nullopt : load_compare(json_path_, &why);
  std::remove(json_path_.c_str());
  const std::string said = last_line(stderr_);
  if (cancelled_) return finish("cancelled");
  if (!r) {
    const std::string how = WIFEXITED(status) ? "exited " + std::to_string(WEXITSTATUS(status))
                                              : "was killed by signal " +
                                                    std::to_string(WTERMSIG(status));
    return finish("trapscope compare " + workload_ + " " + how + " without a result" +
                  (said.empty() ? "" : ": " + said));
  }
  r->source = "trapscope compare " + workload_ + " --paging " + paging_;
  {
    std::lock_guard<std::mutex> lock(mu_);
    result_ = std::move(r);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      warning_ = "trapscope compare exited " + std::to_string(WEXITSTATUS(status)) +
                 " (a technique's run did not end cleanly; its row says how it ended)";
    }
  }
  finish("");
}

}  // namespace trapscope::viz
