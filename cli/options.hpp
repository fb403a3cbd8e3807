// cli/options.hpp — the numeric options that several commands share (--timeout, --max-exits,
// --max-instructions, --load, ...), declared and checked in one place so that every command
// refuses the same bad values with the same message (exit status 2, cli/exit_codes.hpp):
//   seconds: a finite decimal number in [0.001, 86400] (not nan, inf or negative);
//   counts and addresses: decimal or 0x-hexadecimal digits, no sign, below 2^64.
// CLI11's own conversions let nan through a Range and wrap or saturate out-of-range integers,
// so these validators read the text themselves and hand CLI11 a normalized decimal.
#pragma once

#include <CLI/CLI.hpp>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "platform/disk_image.hpp"

namespace trapscope::cli {

// Parses decimal or 0x-hexadecimal digits into a uint64_t; false for anything else (a sign,
// spaces, other characters, a value of 2^64 or more).
inline bool parse_u64(const std::string& text, uint64_t* out) {
  const bool hex = text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
  const char* first = text.data() + (hex ? 2 : 0);
  const char* last = text.data() + text.size();
  if (first == last) return false;
  const auto [end, ec] = std::from_chars(first, last, *out, hex ? 16 : 10);
  return ec == std::errc() && end == last;
}

// `what`: "a count" or "an address", for the message.
inline CLI::Validator u64_validator(const std::string& what) {
  return CLI::Validator(
      [what](std::string& text) -> std::string {
        uint64_t v = 0;
        if (!parse_u64(text, &v)) {
          return "'" + text + "' is not " + what +
                 ": use decimal or 0x-hexadecimal digits, no sign, below 2^64";
        }
        text = std::to_string(v);
        return {};
      },
      "UINT64");
}

inline constexpr double kMinSeconds = 0.001, kMaxSeconds = 86400.0;

inline CLI::Validator seconds_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        char* end = nullptr;
        errno = 0;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size() || errno != 0 ||
            !std::isfinite(v) || v < kMinSeconds || v > kMaxSeconds) {
          return "'" + text + "' is not a number of seconds from 0.001 to 86400";
        }
        return {};
      },
      "SECONDS");
}

// --timeout and the like: seconds as above.
inline CLI::Option* add_seconds_option(CLI::App* cmd, const std::string& name, double* seconds,
                                       const std::string& help) {
  return cmd->add_option(name, *seconds, help)->check(seconds_validator())->capture_default_str();
}

// --max-exits, --max-instructions and the like: a count (0 usually means no limit).
inline CLI::Option* add_count_option(CLI::App* cmd, const std::string& name, uint64_t* count,
                                     const std::string& help) {
  return cmd->add_option(name, *count, help)->transform(u64_validator("a count"))
      ->capture_default_str();
}

// --load: a guest-physical address (whether the image fits there is the loader's check,
// platform/loader.hpp: "does not fit in guest memory").
inline CLI::Option* add_load_option(CLI::App* cmd, uint64_t* address, const std::string& help) {
  return cmd->add_option("--load", *address, help)->transform(u64_validator("an address"))
      ->capture_default_str();
}

// --disk FILE[,readonly][,overlay=FILE], repeatable (at most 2: ATA drives 0 and 1); the text
// is checked here, the file when the machine is made (platform/disk_image.hpp open_disk).
inline constexpr size_t kMaxDisks = 2;
inline CLI::Option* add_disk_option(CLI::App* cmd, std::vector<std::string>* disks) {
  return cmd
      ->add_option("--disk", *disks,
                   "Attach a disk image: FILE[,readonly][,overlay=OVERLAY] (repeat for drive 1; "
                   "docs/disks.md)")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            std::string error;
            return platform::parse_disk_spec(text, &error) ? std::string() : error;
          },
          "DISK"));
}
// The parsed --disk values; false and `error` for more than kMaxDisks.
inline bool disk_specs(const std::vector<std::string>& texts,
                       std::vector<platform::DiskSpec>* out, std::string* error) {
  if (texts.size() > kMaxDisks) {
    *error = "at most 2 --disk options (ATA drives 0 and 1); " + std::to_string(texts.size()) +
             " given";
    return false;
  }
  for (const std::string& t : texts) {
    auto spec = platform::parse_disk_spec(t, error);
    if (!spec) return false;
    out->push_back(*spec);
  }
  return true;
}

}  // namespace trapscope::cli
