#include "trace/trace_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "trace/input_file.hpp"

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

std::string at_byte(uint64_t offset) { return " at byte " + std::to_string(offset); }

bool is_hex_sha256(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

std::string sha256_hex(const uint8_t* bytes, size_t size) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes, size, digest, &len, EVP_sha256(), nullptr) != 1 || len != 32) {
    throw TraceError("SHA-256 failed (OpenSSL EVP_Digest)");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

std::string metadata_json(const TraceMetadata& m) {
  nlohmann::json j{{"tool", m.tool},
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
                   {"tlb_entries", m.tlb_entries}};
  if (!m.guest_sha256.empty()) j["guest_sha256"] = m.guest_sha256;
  return j.dump();
}

TraceWriter::TraceWriter(const std::string& path, const TraceMetadata& m, uint64_t max_bytes)
    : path_(path), hash_(kFnvOffset), max_bytes_(max_bytes) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw TraceError(path + ": cannot create trace file: " + errno_text());
  const std::string json = metadata_json(m);
  buffer_.reserve(kBufferBytes + 4096);
  buffer_.insert(buffer_.end(), kMagic, kMagic + 8);
  put<uint16_t>(buffer_, kTraceFormatVersion);
  put<uint16_t>(buffer_, kHeaderSize);
  put<uint32_t>(buffer_, static_cast<uint32_t>(json.size()));
  buffer_.resize(buffer_.size() + 16, 0);
  buffer_.insert(buffer_.end(), json.begin(), json.end());
  bytes_ = buffer_.size();
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
  const bool run_end = event.type == EventType::kRunEnd && event.size == sizeof(RunEndEvent);
  if (limit_reached_) {
    if (!run_end) {
      ++dropped_;
      return;
    }
    // The run's end, marked, numbered after the last recorded event (seq stays dense).
    RunEndEvent e;
    std::memcpy(&e, &event, sizeof e);
    e.header.flags |= kRunEndTraceLimit;
    e.header.seq = next_seq_;
    append(e.header);
    return;
  }
  if (max_bytes_ != 0 && !run_end &&
      bytes_ + event.size + sizeof(RunEndEvent) + kTrailerSize > max_bytes_) {
    limit_reached_ = true;
    ++dropped_;
    return;
  }
  append(event);
}

void TraceWriter::append(const EventHeader& event) {
  const auto* p = reinterpret_cast<const uint8_t*>(&event);
  buffer_.insert(buffer_.end(), p, p + event.size);
  hash_ = fnv1a(hash_, p, event.size);
  bytes_ += event.size;
  next_seq_ = event.seq + 1;
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

// [SECTION] Reader

TraceReader::TraceReader(const std::string& path, Options options)
    : name_(path), options_(options) {
  std::string error;
  fd_ = open_regular_file(path, &size_, &error);
  if (fd_ < 0) throw TraceError(path + ": " + error);  // cannot open / not a regular file
  try {
    read_header();
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
}

TraceReader::TraceReader(const uint8_t* bytes, size_t size, std::string name, Options options)
    : name_(std::move(name)), options_(options), mem_(bytes), size_(size) {
  read_header();
}

TraceReader::~TraceReader() {
  if (fd_ >= 0) ::close(fd_);
}

void TraceReader::fail(const std::string& what) const { throw TraceError(name_ + ": " + what); }

size_t TraceReader::fill(size_t want) {
  if (end_ - begin_ >= want) return want;
  if (buf_.size() < kReadBufferBytes) buf_.resize(kReadBufferBytes);
  if (begin_ > 0) {
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  // Read only up to the size the file had when opened (a file still being written is read
  // as it was then).
  while (end_ < want && read_ < size_) {
    const size_t room = static_cast<size_t>(std::min<uint64_t>(buf_.size() - end_, size_ - read_));
    if (mem_ != nullptr) {
      std::memcpy(buf_.data() + end_, mem_ + read_, room);
      end_ += room;
      read_ += room;
      continue;
    }
    const ssize_t n = ::read(fd_, buf_.data() + end_, room);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("read failed" + at_byte(read_) + ": " + errno_text());
    }
    if (n == 0) {
      size_ = read_;  // the file shrank since it was opened
      break;
    }
    end_ += static_cast<size_t>(n);
    read_ += static_cast<uint64_t>(n);
  }
  return std::min(want, end_ - begin_);
}

void TraceReader::read_header() {
  const size_t n = fill(kHeaderSize);
  const uint8_t* b = at();
  if (n < 8 || std::memcmp(b, kMagic, 8) != 0) {
    fail("not a trapscope trace file (no \"TRAPSCOP\" magic at byte 0)");
  }
  if (n < kHeaderSize) {
    fail("truncated inside the file header" + at_byte(n) + " (" + std::to_string(n) + " of " +
         std::to_string(kHeaderSize) + " bytes)");
  }
  const auto version = get<uint16_t>(b + 8);
  if (version != kTraceFormatVersion) {
    fail("trace format version " + std::to_string(version) + " is not supported (the version" +
         at_byte(8) + "; this trapscope reads version " + std::to_string(kTraceFormatVersion) +
         ")");
  }
  const auto header_size = get<uint16_t>(b + 10);
  const auto meta_len = get<uint32_t>(b + 12);
  if (header_size != kHeaderSize) {
    fail("corrupt header: header size " + std::to_string(header_size) + at_byte(10) +
         " (expected " + std::to_string(kHeaderSize) + ")");
  }
  if (meta_len > kMaxMetadataBytes) {
    fail("corrupt header: metadata length " + std::to_string(meta_len) + at_byte(12) +
         " is over the limit of " + std::to_string(kMaxMetadataBytes) + " bytes");
  }
  if (kHeaderSize + meta_len > size_) {
    fail("truncated header: metadata length " + std::to_string(meta_len) + at_byte(12) +
         " runs past the end of the file (file size " + std::to_string(size_) + ")");
  }
  begin_ += kHeaderSize;
  pos_ = kHeaderSize;
  if (fill(meta_len) < meta_len) {
    fail("truncated header: metadata length " + std::to_string(meta_len) + at_byte(12) +
         " runs past the end of the file (file size " + std::to_string(size_) + ")");
  }
  b = at();
  try {
    auto j = nlohmann::json::parse(b, b + meta_len);
    TraceMetadata& m = metadata_;
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
    m.guest_sha256 = j.value("guest_sha256", m.guest_sha256);
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte: 1-based position of the offending character within the metadata.
    const uint64_t off = kHeaderSize + (e.byte > 0 ? e.byte - 1 : 0);
    fail("corrupt metadata" + at_byte(std::min<uint64_t>(off, kHeaderSize + meta_len)) +
         ": " + e.what());
  } catch (const nlohmann::json::exception& e) {
    fail("corrupt metadata (the JSON object" + at_byte(kHeaderSize) + ", " +
         std::to_string(meta_len) + " bytes): " + e.what());
  }
  if (!metadata_.guest_sha256.empty() && !is_hex_sha256(metadata_.guest_sha256)) {
    fail("corrupt metadata (the JSON object" + at_byte(kHeaderSize) +
         "): guest_sha256 is not 64 lowercase hex digits");
  }
  begin_ += meta_len;
  pos_ += meta_len;
  hash_ = kFnvOffset;
}

const EventHeader* TraceReader::stop(const std::string& what) {
  if (!options_.salvage) fail(what);
  done_ = true;
  dropped_bytes_ = size_ - pos_;
  salvage_note_ = "salvaged " + std::to_string(count_) + " events; dropped " +
                  std::to_string(dropped_bytes_) + " bytes from byte " + std::to_string(pos_) +
                  " (" + what + ")";
  return nullptr;
}

const EventHeader* TraceReader::next() {
  if (done_) return nullptr;
  const size_t have = fill(sizeof(EventHeader));
  const uint64_t left = size_ - pos_;  // after fill(), which notices a file that shrank
  const uint8_t* b = at();
  if (have >= 8 && std::memcmp(b, kTrailerMagic, 8) == 0) {
    if (left != kTrailerSize) {
      return stop("corrupt trailer" + at_byte(pos_) + " (" + std::to_string(left) +
                  " bytes, expected " + std::to_string(kTrailerSize) + ")");
    }
    fill(kTrailerSize);
    b = at();
    const auto want_count = get<uint64_t>(b + 8);
    const auto want_hash = get<uint64_t>(b + 16);
    if (want_count != count_) {
      return stop("corrupt: the trailer counts " + std::to_string(want_count) +
                  " events, the file holds " + std::to_string(count_) + " (the trailer" +
                  at_byte(pos_) + ")");
    }
    if (want_hash != hash_) {
      return stop("corrupt: checksum mismatch in the trailer" + at_byte(pos_) +
                  " (the event records were modified)");
    }
    done_ = true;
    return nullptr;
  }
  if (left < sizeof(EventHeader)) {
    return stop("truncated after " + std::to_string(count_) + " events" + at_byte(pos_) +
                " (no trailer; was the writing process stopped?)");
  }
  EventHeader h;
  std::memcpy(&h, b, sizeof h);
  const uint16_t want = event_size(h.type);
  if (want == 0) {
    return stop("corrupt record " + std::to_string(count_) + at_byte(pos_) +
                ": unknown event type " + std::to_string(static_cast<unsigned>(h.type)));
  }
  if (h.size != want) {
    return stop("corrupt record " + std::to_string(count_) + at_byte(pos_) + ": size " +
                std::to_string(h.size) + ", a " + std::string(to_string(h.type)) +
                " record is " + std::to_string(want));
  }
  if (left < want) {
    return stop("truncated in record " + std::to_string(count_) + at_byte(pos_) +
                ": it needs " + std::to_string(want) + " bytes, " + std::to_string(left) +
                " remain");
  }
  fill(want);
  b = at();
  hash_ = fnv1a(hash_, b, want);
  // Records start at any offset in the file (the metadata has any length); the copy is 8-byte
  // aligned, as a Recorder's are, for consumers that read 8-byte fields through references.
  record_.resize((want + 7) / 8);
  std::memcpy(record_.data(), b, want);
  begin_ += want;
  pos_ += want;
  ++count_;
  return reinterpret_cast<const EventHeader*>(record_.data());
}

namespace {

TraceFile read_all(TraceReader& r) {
  TraceFile out;
  out.metadata = r.metadata();
  while (const EventHeader* e = r.next()) {
    out.events.on_event(*e);
    if (out.events.full()) {  // the Recorder's cap (trace/limits.hpp): refuse, never truncate
      throw TraceError(r.name() + ": record " + std::to_string(r.events() - 1) + " at byte " +
                       std::to_string(r.offset() - e->size) + ": more events than fit in memory (" +
                       std::to_string(out.events.limit_bytes() >> 20) + " MiB)");
    }
  }
  return out;
}

}  // namespace

TraceFile parse_trace(const std::vector<uint8_t>& bytes, const std::string& name) {
  TraceReader r(bytes.data(), bytes.size(), name);
  return read_all(r);
}

TraceFile read_trace(const std::string& path) {
  TraceReader r(path);
  return read_all(r);
}

}  // namespace trapscope::trace
