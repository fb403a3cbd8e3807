#include "tests/support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "guests/guest_catalog.hpp"
#include "trace/trace_file.hpp"
#include "platform/loader.hpp"

extern char** environ;

namespace trapscope::test {

CommandResult run_command(const std::vector<std::string>& args,
                          const std::vector<std::string>& env_changes, double timeout_s,
                          bool own_process_group) {
  if (args.empty()) throw std::invalid_argument("run_command: no program");
  auto name_of = [](const std::string& kv) { return kv.substr(0, kv.find('=') + 1); };
  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e) {
    const std::string kv = *e;
    bool replaced = false;
    for (const std::string& c : env_changes) replaced |= name_of(kv) == name_of(c);
    if (!replaced) env_s.push_back(kv);
  }
  for (const std::string& c : env_changes) {
    if (c.back() != '=') env_s.push_back(c);
  }
  std::vector<char*> envp, argv;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args_s = args;
  for (auto& a : args_s) argv.push_back(a.data());
  argv.push_back(nullptr);

  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe2 failed");
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  if (own_process_group) {
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
  }
  pid_t pid;
  const int rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (rc != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    throw std::runtime_error("posix_spawn " + args[0] + ": " + std::strerror(rc));
  }

  CommandResult res;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(timeout_s * 1000));
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  bool killed = false;
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 && !killed) {
      kill(own_process_group ? -pid : pid, SIGKILL);  // only what this call started
      killed = true;
    }
    if (poll(fds, 2, killed ? 1000 : static_cast<int>(left.count())) < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      const ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? res.out : res.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  int status = 0;
  struct rusage ru {};
  wait4(pid, &status, 0, &ru);
  res.max_rss_kib = ru.ru_maxrss;
  res.exit_code = (!killed && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  return res;
}

CommandResult run_trapscope(const std::vector<std::string>& args, double timeout_s) {
  std::vector<std::string> argv{TRAPSCOPE_EXE};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, {}, timeout_s);
}

std::string temp_path(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  static int counter = 0;
  return std::string(dir ? dir : "/tmp") + "/trapscope-test-" + std::to_string(getpid()) + "-" +
         std::to_string(counter++) + "-" + name;
}

void write_file(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string write_temp(const std::string& name, const std::string& text) {
  const std::string path = temp_path(name);
  write_file(path, {text.begin(), text.end()});
  return path;
}

std::vector<unsigned char> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::unique_ptr<backend::Backend> guest_backend(const std::string& guest, bool record_instructions,
                                                backend::Kind kind) {
  const auto g = guests::find(guest);
  if (!g) throw std::invalid_argument("no guest named " + guest);
  backend::Config cfg;
  cfg.mode = *platform::parse_boot_mode(g->mode);
  cfg.record_instructions = record_instructions;
  auto b = backend::make_backend(kind, cfg);
  b->load(g->image);
  return b;
}

void write_sim_trace(backend::Backend& b, const std::string& path, const std::string& guest) {
  trace::TraceMetadata meta;
  meta.backend = "sim";
  meta.guest = guest;
  trace::TraceWriter w(path, meta);
  b.run({}, &w);
  w.finish();
}

}  // namespace trapscope::test
