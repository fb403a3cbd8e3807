// platform/disk_image.hpp — a virtual disk that is a file on the host (docs/disks.md): a raw
// image (the disk's bytes, sector N at offset N * 512) or a copy-on-write overlay over a raw base
// image (the idea of qcow2 backing files and VirtualBox differencing disks): reads of a sector
// the guest never wrote fall through to the base, writes go to the overlay, the base is never
// written. Both are platform::BlockBackend (platform/block.hpp), so a controller cannot tell.
//
// The overlay format (version 1, little-endian; docs/disks.md "The overlay format"):
//   [0, 4096)          header: magic "TSCOWOVL", version, header CRC, the disk's size in
//                      sectors, the base image's size, CRC-32 and absolute path, the offsets
//                      below, a commit-in-progress flag
//   [4096, data)       allocation bitmap: bit (lba % 8) of byte lba / 8 set = sector lba is in
//                      the overlay
//   [data, …)          sector lba at data + lba * 512 (a sparse file: unwritten sectors take no
//                      space on the host)
// Crash safety: a bit is only ever set after its sector's data is durable (flush: fdatasync the
// data, then write the bitmap, then fdatasync again), bits are only ever set between commits,
// and the header is written only by create and commit, so a torn write or a killed VMM leaves
// the overlay readable: it shows every flushed write and, for each sector written after the
// last flush, either the new data or the old. Commit marks the header first, so an interrupted
// commit is detected and can simply be run again.
//
// Checksums: CRC-32 (ISO-HDLC, zlib's crc32(); RFC 1952 §8) of the whole base file, recorded when
// the overlay is made and after each commit; an overlay whose base has changed since is refused.
//
// Errors: open_disk and the disk commands throw DiskError with a message that names the file and
// the reason (missing, empty, not a multiple of 512 bytes, a directory, not writable, not an
// overlay, base changed); the CLI prints it and exits 2. Once open, errors are BlockStatus
// values (platform/block.hpp): nothing the guest does can make a disk read or write outside its
// image (every access is checked against the disk's size before the file is touched).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "platform/block.hpp"

namespace trapscope::platform {

class DiskError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What a disk is made of, for `disk info` and snapshots (which record the overlay's name and
// the base's checksum so that a restore finds the same disk).
struct DiskIdentity {
  std::string format;        // "raw" or "overlay"
  std::string path;          // the image the guest's writes go to (the overlay, if any)
  std::string base;          // overlay: the base image's absolute path; raw: empty
  uint64_t sectors = 0;
  uint32_t base_crc32 = 0;   // overlay: the base's CRC-32 as recorded; raw: 0
  uint64_t allocated = 0;    // overlay: sectors held in the overlay
  bool read_only = false;
};

// A BlockBackend that is a file. flush() is fdatasync (and, for an overlay, the bitmap after its
// data); it is cheap when nothing was written since the last one.
class DiskImage : public BlockBackend {
 public:
  virtual DiskIdentity identity() const = 0;
};

inline constexpr char kOverlayMagic[8] = {'T', 'S', 'C', 'O', 'W', 'O', 'V', 'L'};
inline constexpr uint32_t kOverlayVersion = 1;
inline constexpr uint64_t kOverlayHeaderBytes = 4096;
inline constexpr size_t kOverlayMaxPath = 3072;

// Opens `spec` (platform/block.hpp DiskSpec): `path` a raw image or an overlay file; with
// `overlay`, `path` is the base and `overlay` the overlay (made if it does not exist yet; if it
// does, it must be an overlay of that base). Throws DiskError.
std::shared_ptr<DiskImage> open_disk(const DiskSpec& spec);

// `--disk FILE[,readonly][,overlay=OVERLAY]` as the user wrote it; nullopt and `error` for an
// unknown or repeated option or an empty name.
std::optional<DiskSpec> parse_disk_spec(const std::string& text, std::string* error);

// `trapscope disk create`: a raw image of `bytes` zero bytes (a multiple of 512, > 0) at a path
// that does not exist yet.
void create_raw_image(const std::string& path, uint64_t bytes);
// `trapscope disk create --overlay-of BASE`: an empty overlay at `path` (must not exist) over the
// raw image `base`.
void create_overlay(const std::string& path, const std::string& base);
// `trapscope disk info`: the file's identity; `base_matches` (overlay) whether the base's CRC-32
// is still the recorded one (info reports a changed base instead of refusing it).
DiskIdentity inspect_disk(const std::string& path, bool* base_matches = nullptr);
// `trapscope disk commit`: writes the overlay's sectors into its base, makes them durable,
// empties the overlay and records the base's new CRC-32. Returns the sectors merged.
uint64_t commit_overlay(const std::string& path);
// True if the file starts with kOverlayMagic.
bool is_overlay_file(const std::string& path);

}  // namespace trapscope::platform
