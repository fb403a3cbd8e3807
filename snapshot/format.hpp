// snapshot/format.hpp — a VM's state as a file: the trapscope snapshot format (docs/snapshots.md
// has the byte layout and the versioning rules).
//
// A file is a 32-byte header (magic "TRAPSNAP", version, header size, section count, file
// size), then sections (a 16-byte header each: tag, flags, payload length), the last of which,
// "END ", holds a CRC-32 (zlib's crc32, ISO 3309 / ITU-T V.42) of every byte before it. The
// sections: "META" JSON metadata (nlohmann-json), "CPU " the registers of x86::CpuState, "FPU "
// and "EVNT" the x87/SSE state and pending events when the engine has them, "DEVS" each
// device's state as a named record (snapshot/device_state.hpp), "MEM " guest memory in 4 KiB
// pages with zero pages left out and the rest in one zstd frame (libzstd, RFC 8878). Numbers
// are little-endian.
//
// Reading never trusts the file: every read is bounds-checked and an error names the byte
// offset and the field (FormatError); the memory size is checked against a limit before
// anything is allocated, and the decompressed size must match the page count exactly.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/backend.hpp"

namespace trapscope::snapshot {

inline constexpr char kMagic[8] = {'T', 'R', 'A', 'P', 'S', 'N', 'A', 'P'};
inline constexpr uint16_t kVersionMajor = 1;  // a reader refuses any other major version
inline constexpr uint16_t kVersionMinor = 0;  // newer minors only add skippable sections
inline constexpr uint32_t kHeaderBytes = 32;
inline constexpr uint64_t kPageBytes = 4096;
// The largest guest memory a file may declare (trapscope run --mem's limit, 3584 MiB).
inline constexpr uint64_t kMaxMemoryBytes = 3584ull << 20;

// A file that is not a readable snapshot: where (byte offset from the start of the file) and
// what (the field being read, e.g. "CPU .rip" or "header.version").
class FormatError : public std::runtime_error {
 public:
  FormatError(uint64_t offset, std::string field, const std::string& what);
  uint64_t offset() const { return offset_; }
  const std::string& field() const { return field_; }

 private:
  uint64_t offset_;
  std::string field_;
};

// What the "META" section says (JSON; unknown keys are kept in `extra` and ignored).
struct Metadata {
  std::string tool_version;
  std::string guest;         // the name or path given to `run`
  std::string guest_sha256;  // of the guest image (hex), empty if unknown
  std::string engine;        // "kvm" or "sim"
  std::string technique;     // the simulator's technique ("emulation" on KVM)
  std::string paging;        // the simulator's --paging ("native" on KVM)
  std::string host;          // KVM's module (vmm::host_kvm_module) or "simulator"
  std::string time;          // when it was taken, ISO 8601 UTC
  std::string point;         // where in the run: "exit:N", "insn:N", "end", "migration", …
  uint64_t memory_bytes = 0;
  uint64_t exits = 0;         // VM exits before the point
  uint64_t instructions = 0;  // retired instructions before it (simulator; 0 on KVM)
  // State the taking engine could not give (docs/snapshots.md "What each engine gives").
  std::vector<std::string> not_captured;
};

// Guest memory with its zero pages left out: `pages` lists the non-zero pages in ascending
// order, `data` holds their bytes (pages.size() * kPageBytes).
struct MemoryImage {
  uint64_t bytes = 0;
  std::vector<uint64_t> pages;
  std::vector<uint8_t> data;
  static MemoryImage from(std::span<const uint8_t> memory);
  // Writes the image into `memory` (same size): every zero page too.
  void copy_to(std::span<uint8_t> memory) const;
};

struct File {
  Metadata meta;
  backend::Snapshot state;  // state.memory is empty: the memory is in `memory`
  MemoryImage memory;
  uint16_t version_minor = kVersionMinor;  // as read
  std::vector<std::string> skipped_sections;  // unknown optional sections (newer minor)
};

struct ReadLimits {
  uint64_t max_memory_bytes = kMaxMemoryBytes;
};

// The file's bytes. zstd level 3 (its default).
std::vector<uint8_t> encode(const File& file);
// Throws FormatError.
File decode(std::span<const uint8_t> bytes, const ReadLimits& limits = {});

// Throws std::runtime_error ("cannot create/write PATH: reason") / FormatError (reading).
void write_file(const std::string& path, const File& file);
File read_file(const std::string& path, const ReadLimits& limits = {});

// The text of `trapscope snapshot info`.
std::string describe(const File& file, uint64_t file_bytes);

}  // namespace trapscope::snapshot
