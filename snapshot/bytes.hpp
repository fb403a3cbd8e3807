// snapshot/bytes.hpp — little-endian fields into and out of a byte buffer, for the snapshot
// format (snapshot/format.hpp). The reader checks every read against the end of its span and
// throws FormatError with the absolute byte offset and the field's name.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "snapshot/format.hpp"

namespace trapscope::snapshot {

class Writer {
 public:
  explicit Writer(std::vector<uint8_t>& out) : out_(out) {}
  void u8(uint8_t v) { out_.push_back(v); }
  void u16(uint16_t v) { put(v, 2); }
  void u32(uint32_t v) { put(v, 4); }
  void u64(uint64_t v) { put(v, 8); }
  void bytes(std::span<const uint8_t> b) { out_.insert(out_.end(), b.begin(), b.end()); }
  // A u64 length, then the bytes.
  void text(std::string_view s) {
    u64(s.size());
    out_.insert(out_.end(), s.begin(), s.end());
  }
  size_t size() const { return out_.size(); }
  // Overwrites 8 bytes at `at` (a length written once it is known).
  void patch_u64(size_t at, uint64_t v) {
    for (int i = 0; i < 8; ++i) out_[at + i] = static_cast<uint8_t>(v >> (8 * i));
  }

 private:
  void put(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  std::vector<uint8_t>& out_;
};

class Reader {
 public:
  // `base`: the offset of data[0] in the file (for messages).
  Reader(std::span<const uint8_t> data, uint64_t base, std::string prefix)
      : d_(data), base_(base), prefix_(std::move(prefix)) {}
  uint8_t u8(std::string_view field) { return static_cast<uint8_t>(get(field, 1)); }
  uint16_t u16(std::string_view field) { return static_cast<uint16_t>(get(field, 2)); }
  uint32_t u32(std::string_view field) { return static_cast<uint32_t>(get(field, 4)); }
  uint64_t u64(std::string_view field) { return get(field, 8); }
  bool flag(std::string_view field) {
    const uint64_t at = offset();
    const uint8_t v = u8(field);
    if (v > 1) fail(at, field, "must be 0 or 1, is " + std::to_string(v));
    return v;
  }
  std::span<const uint8_t> bytes(std::string_view field, uint64_t n) {
    need(field, n);
    const auto out = d_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  std::string text(std::string_view field) {
    const uint64_t n = u64(field);
    const auto b = bytes(field, n);
    return std::string(b.begin(), b.end());
  }
  uint64_t offset() const { return base_ + pos_; }  // in the file
  uint64_t left() const { return d_.size() - pos_; }
  [[noreturn]] void fail(uint64_t at, std::string_view field, const std::string& what) const {
    throw FormatError(at, prefix_ + std::string(field), what);
  }
  // The reader must have used every byte (a record or section of the wrong length is refused).
  void expect_end(std::string_view what) const {
    if (pos_ != d_.size()) {
      fail(offset(), what, std::to_string(left()) + " bytes more than its fields");
    }
  }

 private:
  void need(std::string_view field, uint64_t n) {
    if (n > left()) {
      fail(offset(), field, "truncated: needs " + std::to_string(n) + " bytes, " +
                                std::to_string(left()) + " left");
    }
  }
  uint64_t get(std::string_view field, int n) {
    need(field, n);
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t{d_[pos_ + i]} << (8 * i);
    pos_ += n;
    return v;
  }
  std::span<const uint8_t> d_;
  uint64_t base_;
  std::string prefix_;
  size_t pos_ = 0;
};

}  // namespace trapscope::snapshot
