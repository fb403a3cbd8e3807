// Fuzz target: the snapshot-file reader (snapshot/format.hpp decode, what `trapscope restore`
// and `trapscope snapshot info` read). A snapshot file is untrusted input: the reader must
// refuse it with a FormatError, or return a File that describe() prints and that encodes to a
// file which reads back to the same state.
//
// Input: byte 0, then the file. When byte 0 is odd, the header's file size and the CRC-32 at
// the end are first rewritten to match the bytes, so that mutated sections reach their parsers
// instead of stopping at the checksum, as a crafted file would. Memory is limited to 4 MiB.
#include <zlib.h>

#include <cstring>
#include <vector>

#include "snapshot/format.hpp"
#include "tests/fuzz/fuzz_input.hpp"

using namespace trapscope;

namespace {

void reseal(std::vector<uint8_t>& b) {
  if (b.size() < 36) return;
  const uint64_t size = b.size();
  for (int i = 0; i < 8; ++i) b[24 + i] = static_cast<uint8_t>(size >> (8 * i));
  const uint32_t crc = static_cast<uint32_t>(
      crc32(crc32(0, nullptr, 0), b.data(), static_cast<uInt>(b.size() - 4)));
  for (int i = 0; i < 4; ++i) b[b.size() - 4 + i] = static_cast<uint8_t>(crc >> (8 * i));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  const bool fix = in.u8() & 1;
  const auto rest = in.rest();
  std::vector<uint8_t> bytes(rest.begin(), rest.end());
  if (fix) reseal(bytes);
  const snapshot::ReadLimits limits{4ull << 20};
  snapshot::File f;
  try {
    f = snapshot::decode(bytes, limits);
  } catch (const snapshot::FormatError& e) {
    if (e.offset() > bytes.size()) fuzz::invariant_failed("fuzz_snapshot", "offset past the end");
    return 0;
  }
  if (snapshot::describe(f, bytes.size()).empty()) {
    fuzz::invariant_failed("fuzz_snapshot", "empty description");
  }
  if (f.memory.data.size() != f.memory.pages.size() * snapshot::kPageBytes) {
    fuzz::invariant_failed("fuzz_snapshot", "page data does not match the page list");
  }
  const snapshot::File g = snapshot::decode(snapshot::encode(f), limits);
  if (!(g.state.registers == f.state.registers) || g.memory.pages != f.memory.pages ||
      g.memory.data != f.memory.data || g.state.devices.console != f.state.devices.console ||
      g.state.fpu != f.state.fpu || g.state.events != f.state.events ||
      g.meta.guest != f.meta.guest) {
    fuzz::invariant_failed("fuzz_snapshot", "encode(decode(file)) reads back differently");
  }
  return 0;
}
