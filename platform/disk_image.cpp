#include "platform/disk_image.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

namespace trapscope::platform {
namespace {

// [SECTION] Files — an owned descriptor and whole-buffer pread/pwrite.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

// The whole buffer or false: pread/pwrite until done (short transfers and EINTR retried).
template <typename Byte, typename Io>
bool transfer_all(Io io, int fd, Byte* p, size_t n, uint64_t off) {
  while (n > 0) {
    const ssize_t r = io(fd, p, n, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
    off += static_cast<uint64_t>(r);
  }
  return true;
}
bool pread_all(int fd, uint8_t* p, size_t n, uint64_t off) {
  return transfer_all(::pread, fd, p, n, off);
}
bool pwrite_all(int fd, const uint8_t* p, size_t n, uint64_t off) {
  return transfer_all(::pwrite, fd, p, n, off);
}

std::string quoted(const std::string& path) { return "'" + path + "'"; }
std::string errno_text() { return std::strerror(errno); }

// Checks that `path` can be a disk image (`role`: "disk image", "overlay", "base image") and
// opens it; throws DiskError with the reason.
Fd open_image_file(const std::string& path, const char* role, bool writable, uint64_t* bytes) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw DiskError(std::string(role) + " " + quoted(path) + ": " + errno_text());
  }
  if (S_ISDIR(st.st_mode)) {
    throw DiskError(std::string(role) + " " + quoted(path) + " is a directory, not a file");
  }
  if (!S_ISREG(st.st_mode)) {
    throw DiskError(std::string(role) + " " + quoted(path) + " is not a regular file");
  }
  if (st.st_size == 0) {
    throw DiskError(std::string(role) + " " + quoted(path) +
                    " is empty: a disk holds at least one 512-byte sector");
  }
  if (st.st_size % kSectorBytes != 0) {
    throw DiskError(std::string(role) + " " + quoted(path) + " is " +
                    std::to_string(st.st_size) +
                    " bytes, not a multiple of the 512-byte sector size");
  }
  // No write permission bit for anyone: the owner made it read-only on purpose (root could
  // still open it for writing, so the bits are checked, not only open()).
  const bool no_write_bits = (st.st_mode & (S_IWUSR | S_IWGRP | S_IWOTH)) == 0;
  if (writable && no_write_bits) {
    throw DiskError(std::string(role) + " " + quoted(path) +
                    " is not writable (no write permission): attach it with ,readonly or "
                    "with ,overlay=FILE");
  }
  const int fd = ::open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) {
    if (writable && (errno == EACCES || errno == EROFS || errno == EPERM)) {
      throw DiskError(std::string(role) + " " + quoted(path) + " is not writable (" +
                      errno_text() + "): attach it with ,readonly or with ,overlay=FILE");
    }
    throw DiskError(std::string(role) + " " + quoted(path) + ": cannot open: " + errno_text());
  }
  *bytes = static_cast<uint64_t>(st.st_size);
  return Fd(fd);
}

uint32_t crc32_of_file(int fd, uint64_t bytes, const std::string& path) {
  std::vector<uint8_t> buf(1 << 20);
  uLong crc = ::crc32(0L, Z_NULL, 0);
  for (uint64_t off = 0; off < bytes;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), bytes - off));
    if (!pread_all(fd, buf.data(), n, off)) {
      throw DiskError("cannot read " + quoted(path) + ": " + errno_text());
    }
    crc = ::crc32(crc, buf.data(), static_cast<uInt>(n));
    off += n;
  }
  return static_cast<uint32_t>(crc);
}

std::string absolute_path(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) {
    throw DiskError(quoted(path) + ": " + errno_text());
  }
  return buf;
}

// [SECTION] The overlay header (docs/disks.md "The overlay format"). The fields that commit
// changes (flags, base CRC, header CRC) lie in the first 512 bytes, written as one sector.
struct OverlayHeader {
  uint64_t sectors = 0;
  uint64_t base_bytes = 0;
  uint32_t base_crc32 = 0;
  uint32_t flags = 0;  // kCommitting
  uint64_t bitmap_offset = kOverlayHeaderBytes;
  uint64_t bitmap_bytes = 0;
  uint64_t data_offset = 0;
  std::string base_path;
};
constexpr uint32_t kCommitting = 1;  // a commit began and has not finished

template <typename T>
void put(std::vector<uint8_t>& b, size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof v);  // x86-64: little-endian, as the format says
}
template <typename T>
T get(const std::vector<uint8_t>& b, size_t at) {
  T v;
  std::memcpy(&v, b.data() + at, sizeof v);
  return v;
}

// Offsets in the header.
enum : size_t {
  kAtMagic = 0, kAtVersion = 8, kAtHeaderCrc = 12, kAtSectors = 16, kAtBaseBytes = 24,
  kAtBaseCrc = 32, kAtFlags = 36, kAtBitmapOffset = 40, kAtBitmapBytes = 48, kAtDataOffset = 56,
  kAtPathLength = 64, kAtPath = 68,
};

uint32_t header_crc(std::vector<uint8_t> b) {
  put<uint32_t>(b, kAtHeaderCrc, 0);
  return static_cast<uint32_t>(::crc32(::crc32(0L, Z_NULL, 0), b.data(), static_cast<uInt>(b.size())));
}

std::vector<uint8_t> encode(const OverlayHeader& h) {
  std::vector<uint8_t> b(kOverlayHeaderBytes, 0);
  std::memcpy(b.data() + kAtMagic, kOverlayMagic, sizeof kOverlayMagic);
  put<uint32_t>(b, kAtVersion, kOverlayVersion);
  put<uint64_t>(b, kAtSectors, h.sectors);
  put<uint64_t>(b, kAtBaseBytes, h.base_bytes);
  put<uint32_t>(b, kAtBaseCrc, h.base_crc32);
  put<uint32_t>(b, kAtFlags, h.flags);
  put<uint64_t>(b, kAtBitmapOffset, h.bitmap_offset);
  put<uint64_t>(b, kAtBitmapBytes, h.bitmap_bytes);
  put<uint64_t>(b, kAtDataOffset, h.data_offset);
  put<uint32_t>(b, kAtPathLength, static_cast<uint32_t>(h.base_path.size()));
  std::memcpy(b.data() + kAtPath, h.base_path.data(), h.base_path.size());
  put<uint32_t>(b, kAtHeaderCrc, header_crc(b));
  return b;
}

OverlayHeader layout(uint64_t sectors) {
  OverlayHeader h;
  h.sectors = sectors;
  h.bitmap_bytes = (sectors + 7) / 8;
  h.data_offset = (h.bitmap_offset + h.bitmap_bytes + 4095) / 4096 * 4096;
  return h;
}

OverlayHeader decode(const std::vector<uint8_t>& b, uint64_t file_bytes, const std::string& path) {
  const std::string what = "overlay " + quoted(path);
  if (b.size() < kOverlayHeaderBytes || std::memcmp(b.data(), kOverlayMagic, 8) != 0) {
    throw DiskError(what + " is not a trapscope overlay (no TSCOWOVL magic)");
  }
  if (get<uint32_t>(b, kAtVersion) != kOverlayVersion) {
    throw DiskError(what + " has format version " + std::to_string(get<uint32_t>(b, kAtVersion)) +
                    "; this trapscope reads version 1");
  }
  if (get<uint32_t>(b, kAtHeaderCrc) != header_crc(b)) {
    throw DiskError(what + ": header checksum mismatch (the header is damaged)");
  }
  OverlayHeader h = layout(get<uint64_t>(b, kAtSectors));
  h.base_bytes = get<uint64_t>(b, kAtBaseBytes);
  h.base_crc32 = get<uint32_t>(b, kAtBaseCrc);
  h.flags = get<uint32_t>(b, kAtFlags);
  const uint32_t path_len = get<uint32_t>(b, kAtPathLength);
  if (h.sectors == 0 || h.sectors > (uint64_t{1} << 40) || h.base_bytes != h.sectors * kSectorBytes ||
      get<uint64_t>(b, kAtBitmapOffset) != h.bitmap_offset ||
      get<uint64_t>(b, kAtBitmapBytes) != h.bitmap_bytes ||
      get<uint64_t>(b, kAtDataOffset) != h.data_offset || path_len == 0 ||
      path_len > kOverlayMaxPath || file_bytes < h.data_offset + h.sectors * kSectorBytes) {
    throw DiskError(what + ": inconsistent header (sizes or offsets do not fit the file)");
  }
  h.base_path.assign(reinterpret_cast<const char*>(b.data() + kAtPath), path_len);
  return h;
}

void write_header(int fd, const OverlayHeader& h, const std::string& path) {
  const auto b = encode(h);
  if (!pwrite_all(fd, b.data(), b.size(), 0) || ::fdatasync(fd) != 0) {
    throw DiskError("cannot write overlay " + quoted(path) + ": " + errno_text());
  }
}

struct OpenOverlay {
  Fd fd;
  OverlayHeader header;
  std::vector<uint8_t> bitmap;
};

OpenOverlay read_overlay(const std::string& path, bool writable) {
  OpenOverlay o;
  uint64_t bytes = 0;
  o.fd = open_image_file(path, "overlay", writable, &bytes);
  std::vector<uint8_t> b(kOverlayHeaderBytes);
  if (bytes < kOverlayHeaderBytes || !pread_all(o.fd.get(), b.data(), b.size(), 0)) {
    throw DiskError("overlay " + quoted(path) + " is not a trapscope overlay (too short)");
  }
  o.header = decode(b, bytes, path);
  o.bitmap.resize(o.header.bitmap_bytes);
  if (!pread_all(o.fd.get(), o.bitmap.data(), o.bitmap.size(), o.header.bitmap_offset)) {
    throw DiskError("cannot read overlay " + quoted(path) + ": " + errno_text());
  }
  return o;
}

bool bit(const std::vector<uint8_t>& bitmap, uint64_t lba) {
  return (bitmap[lba / 8] >> (lba % 8)) & 1;
}

uint64_t count_bits(const std::vector<uint8_t>& bitmap) {
  uint64_t n = 0;
  for (uint8_t b : bitmap) n += static_cast<uint64_t>(__builtin_popcount(b));
  return n;
}

// [SECTION] Raw images.
class RawImage final : public DiskImage {
 public:
  RawImage(std::string path, Fd fd, uint64_t bytes, bool read_only)
      : path_(std::move(path)), fd_(std::move(fd)), sectors_(bytes / kSectorBytes),
        read_only_(read_only) {}
  std::string_view name() const override { return path_; }
  uint64_t sectors() const override { return sectors_; }
  bool read_only() const override { return read_only_; }
  BlockStatus read(uint64_t lba, std::span<uint8_t> data) override {
    if (!in_range(lba, data.size())) return BlockStatus::kOutOfRange;
    return pread_all(fd_.get(), data.data(), data.size(), lba * kSectorBytes)
               ? BlockStatus::kOk
               : BlockStatus::kIoError;
  }
  BlockStatus write(uint64_t lba, std::span<const uint8_t> data) override {
    if (read_only_) return BlockStatus::kReadOnly;
    if (!in_range(lba, data.size())) return BlockStatus::kOutOfRange;
    dirty_ = true;
    return pwrite_all(fd_.get(), data.data(), data.size(), lba * kSectorBytes)
               ? BlockStatus::kOk
               : BlockStatus::kIoError;
  }
  BlockStatus flush() override {
    if (!dirty_) return BlockStatus::kOk;
    if (::fdatasync(fd_.get()) != 0) return BlockStatus::kIoError;
    dirty_ = false;
    return BlockStatus::kOk;
  }
  DiskIdentity identity() const override {
    return {"raw", path_, "", sectors_, 0, 0, read_only_};
  }

 private:
  std::string path_;
  Fd fd_;
  uint64_t sectors_;
  bool read_only_;
  bool dirty_ = false;
};

// [SECTION] Overlays.
class OverlayImage final : public DiskImage {
 public:
  OverlayImage(std::string path, OpenOverlay o, Fd base, bool read_only)
      : path_(std::move(path)), fd_(std::move(o.fd)), h_(std::move(o.header)),
        bitmap_(std::move(o.bitmap)), base_(std::move(base)), read_only_(read_only) {}
  std::string_view name() const override { return path_; }
  uint64_t sectors() const override { return h_.sectors; }
  bool read_only() const override { return read_only_; }
  BlockStatus read(uint64_t lba, std::span<uint8_t> data) override {
    if (!in_range(lba, data.size())) return BlockStatus::kOutOfRange;
    for (size_t i = 0; i < data.size() / kSectorBytes; ++i) {
      const uint64_t s = lba + i;
      const bool mine = bit(bitmap_, s);
      if (!pread_all(mine ? fd_.get() : base_.get(), data.data() + i * kSectorBytes,
                     kSectorBytes, (mine ? h_.data_offset : 0) + s * kSectorBytes)) {
        return BlockStatus::kIoError;
      }
    }
    return BlockStatus::kOk;
  }
  BlockStatus write(uint64_t lba, std::span<const uint8_t> data) override {
    if (read_only_) return BlockStatus::kReadOnly;
    if (!in_range(lba, data.size())) return BlockStatus::kOutOfRange;
    dirty_ = true;
    if (!pwrite_all(fd_.get(), data.data(), data.size(), h_.data_offset + lba * kSectorBytes)) {
      return BlockStatus::kIoError;
    }
    // The bits reach the file at the next flush, after the data (crash safety, header comment).
    for (size_t i = 0; i < data.size() / kSectorBytes; ++i) {
      bitmap_[(lba + i) / 8] |= static_cast<uint8_t>(1u << ((lba + i) % 8));
    }
    return BlockStatus::kOk;
  }
  BlockStatus flush() override {
    if (!dirty_) return BlockStatus::kOk;
    if (::fdatasync(fd_.get()) != 0 ||
        !pwrite_all(fd_.get(), bitmap_.data(), bitmap_.size(), h_.bitmap_offset) ||
        ::fdatasync(fd_.get()) != 0) {
      return BlockStatus::kIoError;
    }
    dirty_ = false;
    return BlockStatus::kOk;
  }
  DiskIdentity identity() const override {
    return {"overlay", path_, h_.base_path, h_.sectors, h_.base_crc32, count_bits(bitmap_),
            read_only_};
  }

 private:
  std::string path_;
  Fd fd_;
  OverlayHeader h_;
  std::vector<uint8_t> bitmap_;
  Fd base_;
  bool read_only_;
  bool dirty_ = false;
};

void refuse_interrupted_commit(const OverlayHeader& h, const std::string& path) {
  if (h.flags & kCommitting) {
    throw DiskError("overlay " + quoted(path) +
                    ": a commit into its base was interrupted; run `trapscope disk commit " +
                    path + "` again to finish it");
  }
}

// Opens the overlay's base read-only and checks it is the one the overlay was made over.
Fd open_base(const OverlayHeader& h, const std::string& path) {
  uint64_t bytes = 0;
  Fd base = open_image_file(h.base_path, "base image", false, &bytes);
  if (bytes != h.base_bytes || crc32_of_file(base.get(), bytes, h.base_path) != h.base_crc32) {
    throw DiskError("base image " + quoted(h.base_path) + " of overlay " + quoted(path) +
                    " has changed since the overlay was made (size or CRC-32 differs): the "
                    "overlay's sectors no longer fit it");
  }
  return base;
}

std::shared_ptr<DiskImage> open_overlay(const std::string& path, const std::string& expected_base,
                                        bool read_only) {
  OpenOverlay o = read_overlay(path, !read_only);
  refuse_interrupted_commit(o.header, path);
  if (!expected_base.empty() && absolute_path(expected_base) != o.header.base_path) {
    throw DiskError("overlay " + quoted(path) + " is an overlay of " +
                    quoted(o.header.base_path) + ", not of " + quoted(expected_base));
  }
  Fd base = open_base(o.header, path);
  return std::make_shared<OverlayImage>(path, std::move(o), std::move(base), read_only);
}

}  // namespace

bool is_overlay_file(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  char magic[8];
  return fd.get() >= 0 && pread_all(fd.get(), reinterpret_cast<uint8_t*>(magic), 8, 0) &&
         std::memcmp(magic, kOverlayMagic, 8) == 0;
}

std::shared_ptr<DiskImage> open_disk(const DiskSpec& spec) {
  if (spec.overlay.empty()) {
    if (is_overlay_file(spec.path)) return open_overlay(spec.path, "", spec.read_only);
    uint64_t bytes = 0;
    Fd fd = open_image_file(spec.path, "disk image", !spec.read_only, &bytes);
    return std::make_shared<RawImage>(spec.path, std::move(fd), bytes, spec.read_only);
  }
  if (is_overlay_file(spec.path)) {
    throw DiskError("base image " + quoted(spec.path) +
                    " is itself an overlay: an overlay's base must be a raw image");
  }
  struct stat st {};
  if (::stat(spec.overlay.c_str(), &st) != 0 && errno == ENOENT) {
    create_overlay(spec.overlay, spec.path);
  }
  return open_overlay(spec.overlay, spec.path, spec.read_only);
}

std::optional<DiskSpec> parse_disk_spec(const std::string& text, std::string* error) {
  DiskSpec spec;
  size_t at = text.find(',');
  spec.path = text.substr(0, at);
  bool seen_ro = false, seen_overlay = false;
  while (at != std::string::npos) {
    const size_t next = text.find(',', at + 1);
    const std::string opt = text.substr(at + 1, next == std::string::npos ? next : next - at - 1);
    at = next;
    if (opt == "readonly" && !seen_ro) {
      spec.read_only = seen_ro = true;
    } else if (opt.rfind("overlay=", 0) == 0 && !seen_overlay && opt.size() > 8) {
      spec.overlay = opt.substr(8);
      seen_overlay = true;
    } else {
      *error = "--disk '" + text + "': '" + opt +
               "' is not an option (FILE[,readonly][,overlay=FILE], each at most once)";
      return std::nullopt;
    }
  }
  if (spec.path.empty()) {
    *error = "--disk '" + text + "': no image file named (FILE[,readonly][,overlay=FILE])";
    return std::nullopt;
  }
  return spec;
}

void create_raw_image(const std::string& path, uint64_t bytes) {
  if (bytes == 0 || bytes % kSectorBytes != 0) {
    throw DiskError("a disk's size must be a positive multiple of 512 bytes, not " +
                    std::to_string(bytes));
  }
  Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (fd.get() < 0) throw DiskError("cannot create " + quoted(path) + ": " + errno_text());
  if (::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0 || ::fsync(fd.get()) != 0) {
    const std::string why = errno_text();
    ::unlink(path.c_str());
    throw DiskError("cannot create " + quoted(path) + ": " + why);
  }
}

void create_overlay(const std::string& path, const std::string& base) {
  if (is_overlay_file(base)) {
    throw DiskError("base image " + quoted(base) +
                    " is itself an overlay: an overlay's base must be a raw image");
  }
  uint64_t bytes = 0;
  Fd b = open_image_file(base, "base image", false, &bytes);
  OverlayHeader h = layout(bytes / kSectorBytes);
  h.base_bytes = bytes;
  h.base_crc32 = crc32_of_file(b.get(), bytes, base);
  h.base_path = absolute_path(base);
  if (h.base_path.size() > kOverlayMaxPath) {
    throw DiskError("base image path " + quoted(h.base_path) + " is longer than " +
                    std::to_string(kOverlayMaxPath) + " bytes");
  }
  Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (fd.get() < 0) throw DiskError("cannot create overlay " + quoted(path) + ": " + errno_text());
  try {
    // Sparse: the bitmap and data regions read as zeros until written.
    if (::ftruncate(fd.get(), static_cast<off_t>(h.data_offset + bytes)) != 0) {
      throw DiskError("cannot create overlay " + quoted(path) + ": " + errno_text());
    }
    write_header(fd.get(), h, path);
  } catch (...) {
    ::unlink(path.c_str());
    throw;
  }
}

DiskIdentity inspect_disk(const std::string& path, bool* base_matches) {
  if (!is_overlay_file(path)) {
    uint64_t bytes = 0;
    Fd fd = open_image_file(path, "disk image", false, &bytes);
    if (base_matches) *base_matches = true;
    return {"raw", path, "", bytes / kSectorBytes, 0, 0, false};
  }
  OpenOverlay o = read_overlay(path, false);
  if (base_matches) {
    try {
      open_base(o.header, path);
      *base_matches = true;
    } catch (const DiskError&) {
      *base_matches = false;
    }
  }
  return {"overlay", path, o.header.base_path, o.header.sectors, o.header.base_crc32,
          count_bits(o.bitmap), false};
}

uint64_t commit_overlay(const std::string& path) {
  if (!is_overlay_file(path)) {
    throw DiskError(quoted(path) + " is not a trapscope overlay: nothing to commit");
  }
  OpenOverlay o = read_overlay(path, true);
  OverlayHeader& h = o.header;
  uint64_t bytes = 0;
  Fd base;
  if (h.flags & kCommitting) {
    // Finishing an interrupted commit: the base holds some of the sectors already, so its CRC
    // no longer matches; copying every sector again gives the same result.
    base = open_image_file(h.base_path, "base image", true, &bytes);
    if (bytes != h.base_bytes) throw DiskError("base image " + quoted(h.base_path) + " changed size");
  } else {
    open_base(h, path);  // the CRC check
    base = open_image_file(h.base_path, "base image", true, &bytes);
    h.flags |= kCommitting;
    write_header(o.fd.get(), h, path);
  }
  uint64_t merged = 0;
  std::vector<uint8_t> sector(kSectorBytes);
  for (uint64_t s = 0; s < h.sectors; ++s) {
    if (!bit(o.bitmap, s)) continue;
    if (!pread_all(o.fd.get(), sector.data(), kSectorBytes, h.data_offset + s * kSectorBytes) ||
        !pwrite_all(base.get(), sector.data(), kSectorBytes, s * kSectorBytes)) {
      throw DiskError("commit of " + quoted(path) + " failed: " + errno_text() +
                      " (run it again to finish)");
    }
    ++merged;
  }
  if (::fdatasync(base.get()) != 0) {
    throw DiskError("commit of " + quoted(path) + " failed: " + errno_text());
  }
  // Empty the overlay: bitmap first (durable), then the header that ends the commit; then give
  // the data blocks back (the file stays as long, sparse).
  std::fill(o.bitmap.begin(), o.bitmap.end(), 0);
  if (!pwrite_all(o.fd.get(), o.bitmap.data(), o.bitmap.size(), h.bitmap_offset) ||
      ::fdatasync(o.fd.get()) != 0) {
    throw DiskError("commit of " + quoted(path) + " failed: " + errno_text());
  }
  h.base_crc32 = crc32_of_file(base.get(), bytes, h.base_path);
  h.flags &= ~kCommitting;
  write_header(o.fd.get(), h, path);
  if (::ftruncate(o.fd.get(), static_cast<off_t>(h.data_offset)) != 0 ||
      ::ftruncate(o.fd.get(), static_cast<off_t>(h.data_offset + bytes)) != 0) {
    throw DiskError("commit of " + quoted(path) + ": cannot trim: " + errno_text());
  }
  return merged;
}

}  // namespace trapscope::platform
