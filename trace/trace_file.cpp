#include "trace/trace_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

namespace trapscope::trace {
namespace {

constexpr char kMagic[8] = {'T', 'R', 'A', 'P', 'S', 'C', 'O', 'P'};
constexpr char kTrailerMagic[8] = {'T', 'S', 'T', 'R', 'A', 'I', 'L', 'R'};
constexpr size_t kHeaderSize = 32;
constexpr size_t kTrailerSize = 24;
constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
constexpr uint64_t kFnvPrime = 0x100000001b3ull;
constexpr size_t kBufferBytes = 1 << 16;

// FNV-1a over 64-bit little-endian words (records are multiples of 8 bytes; a tail is padded
// with zeros), which is 8x fewer multiplications than the byte-wise hash.
uint64_t fnv1a(uint64_t h, const uint8_t* p, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * kFnvPrime;
  }
  if (i < n) {
    uint64_t w = 0;
    std::memcpy(&w, p + i, n - i);
    h = (h ^ w) * kFnvPrime;
  }
  return h;
}

template <typename T>
void put(std::vector<uint8_t>& out, T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), p, p + sizeof v);
}

template <typename T>
T get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

TraceWriter::TraceWriter(const std::string& path, const TraceMetadata& m)
    : path_(path), hash_(kFnvOffset) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw TraceError(path + ": cannot create trace file: " + errno_text());
  const std::string json = nlohmann::json{{"tool", m.tool},
                                          {"tool_version", m.tool_version},
                                          {"backend", m.backend},
                                          {"guest", m.guest},
                                          {"mode", m.mode},
                                          {"load_address", m.load_address},
                                          {"memory_bytes", m.memory_bytes},
                                          {"host", m.host},
                                          {"technique", m.technique},
                                          {"deprivilege", m.deprivilege},
                                          {"paging", m.paging},
                                          {"tlb_entries", m.tlb_entries}}
                               .dump();
  buffer_.reserve(kBufferBytes + 4096);
  buffer_.insert(buffer_.end(), kMagic, kMagic + 8);
  put<uint16_t>(buffer_, kTraceFormatVersion);
  put<uint16_t>(buffer_, kHeaderSize);
  put<uint32_t>(buffer_, static_cast<uint32_t>(json.size()));
  buffer_.resize(buffer_.size() + 16, 0);
  buffer_.insert(buffer_.end(), json.begin(), json.end());
}

TraceWriter::~TraceWriter() {
  if (fd_ >= 0) {
    try {
      flush();
    } catch (const TraceError&) {
      // Destructors do not throw; the missing trailer marks the file as incomplete.
    }
    ::close(fd_);
  }
}

void TraceWriter::on_event(const EventHeader& event) {
  const auto* p = reinterpret_cast<const uint8_t*>(&event);
  buffer_.insert(buffer_.end(), p, p + event.size);
  hash_ = fnv1a(hash_, p, event.size);
  ++count_;
  if (buffer_.size() >= kBufferBytes) flush();
}

void TraceWriter::flush() {
  size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      buffer_.clear();
      throw TraceError(path_ + ": write failed: " + errno_text());
    }
    done += static_cast<size_t>(n);
  }
  buffer_.clear();
}

void TraceWriter::finish() {
  if (fd_ < 0) return;
  buffer_.insert(buffer_.end(), kTrailerMagic, kTrailerMagic + 8);
  put<uint64_t>(buffer_, count_);
  put<uint64_t>(buffer_, hash_);
  flush();
  if (::close(fd_) != 0) {
    fd_ = -1;
    throw TraceError(path_ + ": close failed: " + errno_text());
  }
  fd_ = -1;
}

TraceFile parse_trace(const std::vector<uint8_t>& bytes, const std::string& name) {
  const size_t n = bytes.size();
  const uint8_t* b = bytes.data();
  if (n < 8 || std::memcmp(b, kMagic, 8) != 0) {
    throw TraceError(name + ": not a trapscope trace file (missing \"TRAPSCOP\" magic)");
  }
  if (n < kHeaderSize) {
    throw TraceError(name + ": truncated inside the file header (" + std::to_string(n) +
                     " of " + std::to_string(kHeaderSize) + " bytes)");
  }
  const auto version = get<uint16_t>(b + 8);
  if (version != kTraceFormatVersion) {
    throw TraceError(name + ": trace format version " + std::to_string(version) +
                     " is not supported (this trapscope reads version " +
                     std::to_string(kTraceFormatVersion) + ")");
  }
  const auto header_size = get<uint16_t>(b + 10);
  const auto meta_len = get<uint32_t>(b + 12);
  if (header_size != kHeaderSize || meta_len > kMaxMetadataBytes ||
      kHeaderSize + meta_len > n) {
    throw TraceError(name + ": corrupt or truncated header (header size " +
                     std::to_string(header_size) + ", metadata length " +
                     std::to_string(meta_len) + ", file size " + std::to_string(n) + ")");
  }
  TraceFile out;
  try {
    auto j = nlohmann::json::parse(b + kHeaderSize, b + kHeaderSize + meta_len);
    TraceMetadata& m = out.metadata;
    m.tool = j.at("tool").get<std::string>();
    m.tool_version = j.at("tool_version").get<std::string>();
    m.backend = j.at("backend").get<std::string>();
    m.guest = j.at("guest").get<std::string>();
    m.mode = j.at("mode").get<std::string>();
    m.load_address = j.at("load_address").get<uint64_t>();
    m.memory_bytes = j.at("memory_bytes").get<uint64_t>();
    m.host = j.at("host").get<std::string>();
    m.technique = j.value("technique", m.technique);
    m.deprivilege = j.value("deprivilege", m.deprivilege);
    m.paging = j.value("paging", m.paging);
    m.tlb_entries = j.value("tlb_entries", m.tlb_entries);
  } catch (const nlohmann::json::exception& e) {
    throw TraceError(name + ": corrupt metadata: " + e.what());
  }

  size_t pos = kHeaderSize + meta_len;
  uint64_t hash = kFnvOffset;
  uint64_t count = 0;
  while (true) {
    const size_t left = n - pos;
    if (left >= 8 && std::memcmp(b + pos, kTrailerMagic, 8) == 0) break;
    if (left < sizeof(EventHeader)) {
      throw TraceError(name + ": truncated after " + std::to_string(count) +
                       " events at byte " + std::to_string(pos) +
                       " (no trailer; was the writing process stopped?)");
    }
    EventHeader h;
    std::memcpy(&h, b + pos, sizeof h);
    const uint16_t want = event_size(h.type);
    if (want == 0) {
      throw TraceError(name + ": corrupt record " + std::to_string(count) + " at byte " +
                       std::to_string(pos) + ": unknown event type " +
                       std::to_string(static_cast<unsigned>(h.type)));
    }
    if (h.size != want) {
      throw TraceError(name + ": corrupt record " + std::to_string(count) + " at byte " +
                       std::to_string(pos) + ": size " + std::to_string(h.size) + ", a " +
                       std::string(to_string(h.type)) + " record is " + std::to_string(want));
    }
    if (left < want) {
      throw TraceError(name + ": truncated in record " + std::to_string(count) + " at byte " +
                       std::to_string(pos) + ": it needs " + std::to_string(want) +
                       " bytes, " + std::to_string(left) + " remain");
    }
    hash = fnv1a(hash, b + pos, want);
    out.events.on_event(*reinterpret_cast<const EventHeader*>(b + pos));
    if (out.events.full()) {  // trace/limits.hpp
      throw TraceError(name + ": record " + std::to_string(count) + " at byte " +
                       std::to_string(pos) + ": more events than fit in memory (" +
                       std::to_string(out.events.limit_bytes() >> 20) + " MiB)");
    }
    pos += want;
    ++count;
  }
  if (n - pos != kTrailerSize) {
    throw TraceError(name + ": corrupt trailer at byte " + std::to_string(pos) + " (" +
                     std::to_string(n - pos) + " bytes, expected " +
                     std::to_string(kTrailerSize) + ")");
  }
  const auto want_count = get<uint64_t>(b + pos + 8);
  const auto want_hash = get<uint64_t>(b + pos + 16);
  if (want_count != count) {
    throw TraceError(name + ": corrupt: the trailer counts " + std::to_string(want_count) +
                     " events, the file holds " + std::to_string(count));
  }
  if (want_hash != hash) {
    throw TraceError(name + ": corrupt: checksum mismatch (the event records were modified)");
  }
  return out;
}

TraceFile read_trace(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw TraceError(path + ": cannot open trace file: " + errno_text());
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  while (true) {
    ssize_t r = ::read(fd, chunk, sizeof chunk);
    if (r < 0) {
      if (errno == EINTR) continue;
      std::string err = errno_text();
      ::close(fd);
      throw TraceError(path + ": read failed: " + err);
    }
    if (r == 0) break;
    bytes.insert(bytes.end(), chunk, chunk + r);
  }
  ::close(fd);
  return parse_trace(bytes, path);
}

}  // namespace trapscope::trace
