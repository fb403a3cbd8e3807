// cli/guest_file.hpp — turning a GUEST argument into an image: a built-in guest by name, or a
// flat binary file (any argument containing '/', or a name that is not built in).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace trapscope::cli {

struct LoadedGuest {
  std::string name;
  std::string default_mode;  // "real", "protected" or "long"
  std::vector<uint8_t> image;
};

// nullopt with *error set for a missing, unreadable, empty or too large (> mem_bytes) file.
std::optional<LoadedGuest> resolve_guest(const std::string& arg, uint64_t mem_bytes,
                                         std::string* error);

}  // namespace trapscope::cli
