// bench/command_line.hpp — how the bench programs read their command lines (CLI11, Debian's
// libcli11-dev, as the trapscope CLI does): `--help` lists the options; a bad option or value
// is refused with CLI11's message naming it and the benches' usage-error status 1.
#pragma once

#include <optional>

#include <CLI/CLI.hpp>

namespace trapscope::bench {

// Parses argv into `app`. nullopt: go on; else the status main() returns (0 after --help).
inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;
  }
  return std::nullopt;
}

}  // namespace trapscope::bench
