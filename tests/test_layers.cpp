// The layers of docs/architecture.md ("Layers"), checked on the sources: every `#include "…"`
// of a layer's files names a file of that layer or of a layer below it. x86/ is the bottom;
// sim/ and vmm/ are siblings that never include each other.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

// What each layer may include, besides itself.
const std::map<std::string, std::set<std::string>> kMayInclude = {
    {"x86", {}},
    {"trace", {"x86"}},
    {"platform", {"x86", "trace"}},
    {"sim", {"x86", "trace", "platform"}},
    {"vmm", {"x86", "trace", "platform"}},
    {"backend", {"x86", "trace", "platform", "sim", "vmm"}},
    {"compare", {"x86", "trace", "platform", "sim", "vmm", "backend"}},
    {"snapshot", {"x86", "trace", "platform", "sim", "vmm", "backend"}},
    {"gdbstub", {"x86", "trace", "platform", "sim", "vmm", "backend"}},
};

// The project-relative `#include "dir/…"` targets of a file, as "dir".
std::vector<std::pair<int, std::string>> included_dirs(const fs::path& file) {
  static const std::regex kInclude(R"re(^\s*#\s*include\s+"([^"/]+)/[^"]*")re");
  std::vector<std::pair<int, std::string>> out;
  std::ifstream in(file);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    std::smatch m;
    if (std::regex_search(line, m, kInclude)) out.emplace_back(n, m[1].str());
  }
  return out;
}

// Include violations of `layer` under `root`: "file:line includes dir/".
std::vector<std::string> violations(const fs::path& root, const std::string& layer,
                                    const std::set<std::string>& allowed) {
  std::set<std::string> layers;
  for (const auto& [name, below] : kMayInclude) layers.insert(name);
  std::vector<std::string> out;
  if (!fs::exists(root / layer)) return out;
  for (const auto& entry : fs::recursive_directory_iterator(root / layer)) {
    const auto ext = entry.path().extension();
    if (ext != ".cpp" && ext != ".hpp" && ext != ".def") continue;
    for (const auto& [line, dir] : included_dirs(entry.path())) {
      if (dir == layer || allowed.count(dir)) continue;
      // Directories that are not layers (e.g. a sub-folder named like a file) are not checked,
      // except the upper parts of the tree, which no layer below them may include.
      if (!layers.count(dir) && dir != "visualizer" && dir != "cli" && dir != "lessons") continue;
      out.push_back(fs::relative(entry.path(), root).string() + ":" + std::to_string(line) +
                    " includes " + dir + "/");
    }
  }
  return out;
}

}  // namespace

TEST_CASE("every layer includes only itself and the layers below it", "[layers]") {
  const fs::path root = TRAPSCOPE_SOURCE_DIR;
  for (const auto& [layer, allowed] : kMayInclude) {
    INFO("layer " << layer << "/");
    const auto bad = violations(root, layer, allowed);
    for (const auto& b : bad) UNSCOPED_INFO(b);
    CHECK(bad.empty());
  }
}

TEST_CASE("the layer check finds an include that goes up", "[layers]") {
  // A scratch tree: x86/a.hpp including sim/, sim/b.cpp including vmm/.
  const fs::path root = fs::temp_directory_path() / ("trapscope-layers-" + std::to_string(getpid()));
  fs::create_directories(root / "x86");
  fs::create_directories(root / "sim");
  std::ofstream(root / "x86" / "a.hpp") << "#include <cstdint>\n#include \"x86/b.hpp\"\n"
                                           "#include \"sim/cpu.hpp\"\n";
  std::ofstream(root / "sim" / "b.cpp") << "  #  include \"vmm/kvm.hpp\"\n#include \"platform/exit.hpp\"\n";
  const auto x86 = violations(root, "x86", kMayInclude.at("x86"));
  const auto sim = violations(root, "sim", kMayInclude.at("sim"));
  fs::remove_all(root);
  REQUIRE(x86.size() == 1);
  CHECK(x86[0] == "x86/a.hpp:3 includes sim/");
  REQUIRE(sim.size() == 1);
  CHECK(sim[0] == "sim/b.cpp:1 includes vmm/");
}

TEST_CASE("no two source files share a name", "[layers]") {
  // A file's name says what it is, wherever it is opened (an editor tab, a compiler message).
  const fs::path root = TRAPSCOPE_SOURCE_DIR;
  std::map<std::string, std::vector<std::string>> by_name;
  for (const char* top : {"x86", "trace", "platform", "sim", "vmm", "backend", "snapshot",
                          "gdbstub", "compare", "cli", "visualizer", "lessons", "guests", "tests",
                          "bench"}) {
    if (!fs::exists(root / top)) continue;
    for (const auto& entry : fs::recursive_directory_iterator(root / top)) {
      const auto ext = entry.path().extension();
      if (ext != ".cpp" && ext != ".hpp" && ext != ".def") continue;
      by_name[entry.path().filename().string()].push_back(
          fs::relative(entry.path(), root).string());
    }
  }
  REQUIRE(by_name.size() > 100);
  for (const auto& [name, paths] : by_name) {
    INFO(name);
    for (const auto& p : paths) UNSCOPED_INFO(p);
    CHECK(paths.size() == 1);
  }
}

TEST_CASE("no test name has a character ctest splits or reads as an option", "[layers]") {
  // catch_discover_tests hands each name to ctest as a list element: a ';' splits one test into
  // two that both fail, and a name that starts with '-' is read by Catch as an option.
  const fs::path root = TRAPSCOPE_SOURCE_DIR;
  size_t names = 0;
  for (const auto& entry : fs::directory_iterator(root / "tests")) {
    if (entry.path().extension() != ".cpp") continue;
    std::ifstream in(entry.path());
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      const size_t at = line.find("TEST_CASE(\"");
      if (at == std::string::npos) continue;
      const size_t begin = at + 11, end = line.find('"', begin);
      if (end == std::string::npos) continue;
      const std::string name = line.substr(begin, end - begin);
      ++names;
      INFO(entry.path().filename().string() << ":" << n << ": " << name);
      CHECK(name.find(';') == std::string::npos);
      CHECK((name.empty() || name[0] != '-'));
    }
  }
  CHECK(names > 100);
}
