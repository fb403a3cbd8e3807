// The documentation's links: every relative link and image in README.md, docs/*.md and
// lessons/README.md names a file of the repository, and every #anchor a heading of that file
// (GitHub's rule: lower case, spaces to '-', punctuation other than '-' and '_' dropped).
#include <catch2/catch.hpp>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string slug(const std::string& heading) {
  std::string s;
  for (unsigned char c : heading) {
    if (std::isalnum(c)) s += static_cast<char>(std::tolower(c));
    else if (c == ' ' || c == '-') s += '-';
    else if (c == '_') s += '_';
    else if (c >= 0x80) s += static_cast<char>(c);  // UTF-8 letters stay
  }
  return s;
}

// The anchors of a Markdown file's headings (outside code fences).
std::set<std::string> anchors(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in(text);
  bool fence = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("```", 0) == 0) fence = !fence;
    if (fence || line.empty() || line[0] != '#') continue;
    const size_t start = line.find_first_not_of('#');
    if (start == std::string::npos || line[start] != ' ') continue;
    out.insert(slug(line.substr(start + 1)));
  }
  return out;
}

std::vector<fs::path> documents(const fs::path& root) {
  std::vector<fs::path> docs{root / "README.md", root / "lessons" / "README.md"};
  for (const auto& e : fs::directory_iterator(root / "docs")) {
    if (e.path().extension() == ".md") docs.push_back(e.path());
  }
  return docs;
}

}  // namespace

TEST_CASE("docs: every relative link and image names a file and a heading that exist", "[docs]") {
  const fs::path root = TRAPSCOPE_SOURCE_DIR;
  const std::regex link(R"(!?\[[^\]]*\]\(([^)\s]+)\))");
  size_t checked = 0;
  for (const fs::path& doc : documents(root)) {
    INFO("in " << fs::relative(doc, root).string());
    REQUIRE(fs::exists(doc));
    const std::string text = read_file(doc);
    for (auto it = std::sregex_iterator(text.begin(), text.end(), link);
         it != std::sregex_iterator(); ++it) {
      const std::string target = (*it)[1];
      if (target.rfind("http://", 0) == 0 || target.rfind("https://", 0) == 0 ||
          target.rfind("mailto:", 0) == 0) {
        continue;
      }
      INFO("link " << target);
      const size_t hash = target.find('#');
      const std::string file = target.substr(0, hash);
      const fs::path resolved = file.empty() ? doc : doc.parent_path() / file;
      CHECK(fs::exists(resolved));
      if (hash != std::string::npos && fs::exists(resolved) && resolved.extension() == ".md") {
        CHECK(anchors(read_file(resolved)).count(target.substr(hash + 1)) == 1);
      }
      ++checked;
    }
  }
  CHECK(checked > 20);  // the README alone links every guide
}

TEST_CASE("docs: the README is a front door of at most 250 lines", "[docs]") {
  const std::string text = read_file(fs::path(TRAPSCOPE_SOURCE_DIR) / "README.md");
  size_t lines = 0;
  for (char c : text) lines += c == '\n';
  CHECK(lines <= 250);
}
