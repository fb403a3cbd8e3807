#include "guests/guest_catalog.hpp"

namespace trapscope::guests {

extern const CatalogEntry kCatalogData[];
extern const size_t kCatalogSize;

std::span<const CatalogEntry> catalog() { return {kCatalogData, kCatalogSize}; }

std::optional<Guest> find(std::string_view name) {
  for (const CatalogEntry& e : catalog()) {
    if (name == e.name) {
      return Guest{e.name, e.mode, e.description,
                   {e.begin, static_cast<size_t>(e.end - e.begin)}};
    }
  }
  return std::nullopt;
}

}  // namespace trapscope::guests
