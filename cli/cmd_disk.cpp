// `trapscope disk create|info|commit`: make, inspect and merge disk images (docs/disks.md;
// platform/disk_image.hpp). Errors are exit status 2 with the reason.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/options.hpp"
#include "platform/disk_image.hpp"

namespace trapscope::cli {
namespace {

struct DiskOptions {
  std::string file;
  std::string size;        // create: 4M, 512K, 1G, or bytes
  std::string overlay_of;  // create --overlay-of BASE
};

// "4M" → 4 MiB; K, M, G (powers of 1024) or plain bytes.
bool parse_size(const std::string& text, uint64_t* bytes) {
  if (text.empty()) return false;
  uint64_t unit = 1;
  std::string digits = text;
  switch (text.back()) {
    case 'K': case 'k': unit = uint64_t{1} << 10; break;
    case 'M': case 'm': unit = uint64_t{1} << 20; break;
    case 'G': case 'g': unit = uint64_t{1} << 30; break;
    default: break;
  }
  if (unit != 1) digits.pop_back();
  uint64_t n = 0;
  if (!parse_u64(digits, &n) || n == 0 || n > (uint64_t{1} << 40) / unit) return false;
  *bytes = n * unit;
  return true;
}

int create(const DiskOptions& o) {
  try {
    if (!o.overlay_of.empty()) {
      if (!o.size.empty()) {
        std::fprintf(stderr, "trapscope disk create: --size and --overlay-of exclude each other "
                             "(an overlay has its base's size)\n");
        return kBadInput;
      }
      platform::create_overlay(o.file, o.overlay_of);
      std::printf("created overlay %s over %s\n", o.file.c_str(), o.overlay_of.c_str());
      return kOk;
    }
    uint64_t bytes = 0;
    if (!parse_size(o.size, &bytes) || bytes % platform::kSectorBytes != 0) {
      std::fprintf(stderr, "trapscope disk create: --size '%s' is not a size: a positive "
                           "multiple of 512 bytes, e.g. 4M, 512K or 1048576 (at most 1 TiB)\n",
                   o.size.c_str());
      return kBadInput;
    }
    platform::create_raw_image(o.file, bytes);
    std::printf("created raw image %s: %llu bytes (%llu sectors)\n", o.file.c_str(),
                static_cast<unsigned long long>(bytes),
                static_cast<unsigned long long>(bytes / platform::kSectorBytes));
    return kOk;
  } catch (const platform::DiskError& e) {
    std::fprintf(stderr, "trapscope disk create: %s\n", e.what());
    return kBadInput;
  }
}

int info(const DiskOptions& o) {
  try {
    bool base_ok = true;
    const platform::DiskIdentity d = platform::inspect_disk(o.file, &base_ok);
    std::printf("file:     %s\nformat:   %s\nsize:     %llu bytes (%llu sectors of 512)\n",
                d.path.c_str(), d.format.c_str(),
                static_cast<unsigned long long>(d.sectors * platform::kSectorBytes),
                static_cast<unsigned long long>(d.sectors));
    if (d.format == "overlay") {
      std::printf("base:     %s\nbase CRC-32 recorded: %08x (%s)\nallocated: %llu sectors in "
                  "the overlay\n",
                  d.base.c_str(), d.base_crc32,
                  base_ok ? "the base matches" : "THE BASE HAS CHANGED: the overlay is refused",
                  static_cast<unsigned long long>(d.allocated));
    }
    return kOk;
  } catch (const platform::DiskError& e) {
    std::fprintf(stderr, "trapscope disk info: %s\n", e.what());
    return kBadInput;
  }
}

int commit(const DiskOptions& o) {
  try {
    const uint64_t n = platform::commit_overlay(o.file);
    const platform::DiskIdentity d = platform::inspect_disk(o.file);
    std::printf("committed %llu sectors of %s into %s (base CRC-32 now %08x)\n",
                static_cast<unsigned long long>(n), o.file.c_str(), d.base.c_str(), d.base_crc32);
    return kOk;
  } catch (const platform::DiskError& e) {
    std::fprintf(stderr, "trapscope disk commit: %s\n", e.what());
    return kBadInput;
  }
}

}  // namespace

void add_disk_command(CLI::App& app, int* status) {
  CLI::App* disk = app.add_subcommand(
      "disk", "Make, inspect and commit disk images and copy-on-write overlays (docs/disks.md)");
  disk->require_subcommand(1);
  auto o = std::make_shared<DiskOptions>();
  CLI::App* c = disk->add_subcommand("create", "Create a raw image of zeros, or an overlay");
  c->add_option("FILE", o->file, "The new file (must not exist)")->required();
  c->add_option("--size", o->size, "Size of a raw image: bytes, or with K, M, G (e.g. 4M)");
  c->add_option("--overlay-of", o->overlay_of,
                "Make FILE a copy-on-write overlay over this raw base image");
  c->callback([o, status] {
    if (o->size.empty() && o->overlay_of.empty()) {
      std::fprintf(stderr, "trapscope disk create: give --size (a raw image) or --overlay-of "
                           "BASE (an overlay)\n");
      *status = kBadInput;
      return;
    }
    *status = create(*o);
  });
  CLI::App* i = disk->add_subcommand("info", "Format, size and (overlay) base of a disk image");
  i->add_option("FILE", o->file, "A raw image or an overlay")->required();
  i->callback([o, status] { *status = info(*o); });
  CLI::App* m = disk->add_subcommand(
      "commit", "Merge an overlay's sectors into its base image and empty the overlay");
  m->add_option("OVERLAY", o->file, "The overlay file")->required();
  m->callback([o, status] { *status = commit(*o); });
  disk->footer("Exit status: 0 done; 2 bad input (a missing, empty, misaligned or unwritable "
               "file, a changed base, ...).");
}

}  // namespace trapscope::cli
