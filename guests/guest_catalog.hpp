// guests/guest_catalog.hpp — the teaching guests built into trapscope (assembled from guests/*.asm).
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

namespace trapscope::guests {

struct CatalogEntry {
  const char* name;         // e.g. "hello"
  const char* mode;         // the mode the VMM enters it in: "real", "protected" or "long"
  const char* description;  // one line for `trapscope guests`
  const unsigned char* begin;
  const unsigned char* end;
};

struct Guest {
  std::string_view name;
  std::string_view mode;
  std::string_view description;
  std::span<const unsigned char> image;  // the flat binary, loaded at the load address
};

std::span<const CatalogEntry> catalog();
std::optional<Guest> find(std::string_view name);

}  // namespace trapscope::guests
