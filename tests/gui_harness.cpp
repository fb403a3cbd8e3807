#include "tests/gui_harness.hpp"

#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stb_image.h>

namespace trapscope::test {

namespace {

std::string join(const std::vector<std::string>& words) {
  std::string s;
  for (const std::string& w : words) s += (s.empty() ? "" : " ") + w;
  return s;
}

// The script with each `dump @NAME` / `screenshot @NAME` argument replaced by a fresh path.
std::string fill_in_paths(const std::string& script, std::map<std::string, std::string>* files) {
  std::istringstream in(script);
  std::string out, line;
  while (std::getline(in, line)) {
    for (const auto& [command, ext] : {std::pair{"dump ", ".json"}, {"screenshot ", ".png"}}) {
      const std::string c = command;
      if (line.rfind(c + "@", 0) != 0) continue;
      const std::string file = line.substr(c.size() + 1) + ext;
      INFO("the script writes @" << file << " twice");
      REQUIRE(files->count(file) == 0);
      (*files)[file] = temp_path(file);
      line = c + (*files)[file];
    }
    out += line + "\n";
  }
  return out;
}

// The message of every failure about a run: what ran and what it said.
std::string describe(const GuiRun& g) {
  return "ran: " + join(g.command) + "\nexit status: " + std::to_string(g.exit_code) +
         "\nscript:\n" + g.script + "stderr:\n" + g.err;
}

}  // namespace

bool have_xvfb_run() {
  for (const char* dir : {"/usr/bin/", "/usr/local/bin/", "/bin/"}) {
    if (access((std::string(dir) + "xvfb-run").c_str(), X_OK) == 0) return true;
  }
  return false;
}

std::array<int, 3> Screenshot::pixel(int x, int y) const {
  REQUIRE((x >= 0 && y >= 0 && x < w && y < h));
  const size_t i = (static_cast<size_t>(y) * static_cast<size_t>(w) + static_cast<size_t>(x)) * 3;
  return {rgb[i], rgb[i + 1], rgb[i + 2]};
}

double Screenshot::stddev() const {
  double sum = 0, sum2 = 0;
  for (const unsigned char v : rgb) {
    sum += v;
    sum2 += static_cast<double>(v) * v;
  }
  const double n = static_cast<double>(rgb.size());
  const double mean = sum / n;
  return std::sqrt(std::max(0.0, sum2 / n - mean * mean));
}

int Screenshot::distinct_rows() const {
  const size_t row = static_cast<size_t>(w) * 3;
  int n = 0;
  for (int y = 1; y < h; ++y) {
    if (std::memcmp(rgb.data() + y * row, rgb.data() + (y - 1) * row, row) != 0) ++n;
  }
  return n;
}

const std::string& GuiRun::path(const std::string& file) const {
  INFO("the script writes no @" << file);
  REQUIRE(files.count(file) == 1);
  return files.at(file);
}

nlohmann::json GuiRun::dump(const std::string& name) const {
  const std::string& file = path(name + ".json");
  INFO("dump @" << name << " (" << file << ")\n" << describe(*this));
  std::ifstream in(file);
  REQUIRE(in);
  nlohmann::json j;
  REQUIRE_NOTHROW(j = nlohmann::json::parse(in));
  return j;
}

Screenshot GuiRun::screenshot(const std::string& name) const {
  const std::string& file = path(name + ".png");
  INFO("screenshot @" << name << " (" << file << ")\n" << describe(*this));
  Screenshot s;
  int channels = 0;
  unsigned char* px = stbi_load(file.c_str(), &s.w, &s.h, &channels, 3);
  INFO("stb_image: " << (px ? "" : stbi_failure_reason()));
  REQUIRE(px != nullptr);
  s.rgb.assign(px, px + static_cast<size_t>(s.w) * static_cast<size_t>(s.h) * 3);
  stbi_image_free(px);
  return s;
}

GuiRun run_gui(const std::vector<std::string>& args, const std::string& script, GuiExit expect,
               double timeout_s) {
  GuiRun g;
  g.script = fill_in_paths(script, &g.files);
  const std::string script_file = write_temp("gui.script", g.script);
  // A fresh X server per run; -n spreads parallel test processes apart, -a moves on from a
  // number in use.
  static int counter = 0;
  const int base = 200 + static_cast<int>((getpid() * 7 + counter++ * 13) % 700);
  g.command = {"xvfb-run", "-a", "-n", std::to_string(base), "-s", "-screen 0 1600x1000x24",
               TRAPSCOPE_EXE, "gui"};
  g.command.insert(g.command.end(), args.begin(), args.end());
  g.command.insert(g.command.end(), {"--script", script_file});
  // xvfb-run itself failing is tried again, on another display number: an X server that did
  // not start (the number taken meanwhile), or its clean-up of its temporary directory failing
  // (it then exits 5 in place of trapscope's status, seen once in 300 parallel runs).
  for (int attempt = 0; attempt < 3; ++attempt) {
    const CommandResult r = run_command(
        g.command, {"ASAN_OPTIONS=detect_leaks=0", "LIBGL_ALWAYS_SOFTWARE=1"}, timeout_s, true);
    g.exit_code = r.exit_code;
    g.out = r.out;
    g.err = r.err;
    const bool xvfb_run_failed =
        r.err.find("Xvfb failed to start") != std::string::npos ||
        r.err.find("server already active") != std::string::npos ||
        (r.exit_code == 5 && r.err.find("problem while cleaning up") != std::string::npos);
    if (!xvfb_run_failed) break;
    g.command[3] = std::to_string(200 + (std::stoi(g.command[3]) - 200 + 97) % 700);
  }
  if (expect == GuiExit::kSucceeds) {
    INFO(describe(g));
    REQUIRE(g.exit_code == 0);
  }
  return g;
}

std::string record_trace(const std::vector<std::string>& run_args) {
  REQUIRE_FALSE(run_args.empty());
  const std::string path = temp_path(run_args[0] + ".trace");
  std::vector<std::string> args{"run"};
  args.insert(args.end(), run_args.begin(), run_args.end());
  args.insert(args.end(), {"-q", "--trace", path});
  const CommandResult r = run_trapscope(args);
  INFO("ran: trapscope " << join(args) << "\nexit status: " << r.exit_code << "\nstderr:\n"
                         << r.err);
  REQUIRE(r.exit_code == 0);
  return path;
}

}  // namespace trapscope::test
