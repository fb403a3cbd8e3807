// tests/fuzz/fuzz_input.hpp — reads a fuzz input as a sequence of fields (the choices a target
// makes: a mode, an argument, a size) followed by the bytes that are left (the data). Reading
// past the end gives zeros, so every input, however short, is a valid choice of every field.
// (clang's FuzzedDataProvider does the same, but takes its integers from the input's end and
// exists only with clang; the targets also build with g++ for ctest's replay.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace trapscope::fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  // Little-endian, `bytes` (1..8) bytes wide.
  uint64_t uint(unsigned bytes) {
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; ++i) v |= uint64_t{u8()} << (8 * i);
    return v;
  }
  uint64_t u64() { return uint(8); }
  // One of `n` choices (n ≥ 1), from one byte.
  unsigned pick(unsigned n) { return u8() % n; }
  std::span<const uint8_t> rest() const {
    return pos_ < size_ ? std::span<const uint8_t>(data_ + pos_, size_ - pos_)
                        : std::span<const uint8_t>();
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// A broken invariant: prints what and aborts, which libFuzzer reports as a crash and the replay
// driver (driver_main.cpp) as a failed test.
[[noreturn]] void invariant_failed(const char* target, const char* what);

}  // namespace trapscope::fuzz

// The entry point every target defines (libFuzzer's; 0 = keep going).
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
