#include "platform/loader.hpp"

#include <cstring>
#include <string>

#include <fmt/format.h>

namespace trapscope::platform {
namespace {

void put64(std::span<uint8_t> memory, uint64_t gpa, uint64_t value) {
  std::memcpy(memory.data() + gpa, &value, 8);
}

// A flat GDT descriptor (Intel SDM Vol. 3A 3.4.5): base 0, limit 4 GiB (G = 1).
constexpr uint64_t descriptor(uint8_t type, bool l, bool db) {
  return 0x0000'0000'0000'FFFFull              // limit 15:0
         | (uint64_t{type} << 40)              // type
         | (1ull << 44)                        // S = code/data
         | (1ull << 47)                        // P
         | (0xFull << 48)                      // limit 19:16
         | (uint64_t{l} << 53) | (uint64_t{db} << 54) | (1ull << 55);  // L, D/B, G
}

}  // namespace

std::optional<BootMode> parse_boot_mode(std::string_view text) {
  if (text == "real") return BootMode::kReal;
  if (text == "protected") return BootMode::kProtected;
  if (text == "long") return BootMode::kLong;
  return std::nullopt;
}

std::string_view to_string(BootMode mode) {
  switch (mode) {
    case BootMode::kReal: return "real";
    case BootMode::kProtected: return "protected";
    case BootMode::kLong: return "long";
  }
  return "?";
}

void load_image(std::span<uint8_t> memory, std::span<const uint8_t> image, uint64_t load,
                BootMode mode) {
  if (image.empty()) throw LoadError("the guest image is empty");
  if (load >= memory.size() || image.size() > memory.size() - load) {
    throw LoadError(fmt::format("the guest image ({} bytes at {:#x}) does not fit in guest "
                                "memory ({} bytes); use a larger --mem",
                                image.size(), load, memory.size()));
  }
  if (mode != BootMode::kReal && load < kBootTablesEnd) {
    throw LoadError(fmt::format("load address {:#x} overlaps the VMM's GDT and page tables at "
                                "{:#x}-{:#x}; use --load {:#x} or higher",
                                load, kGdtAddress, kBootTablesEnd - 1, kBootTablesEnd));
  }
  if (mode == BootMode::kReal && load >= 0x10000 && (load % 16 != 0 || load >= 0x100000)) {
    throw LoadError(fmt::format("a real-mode load address at or above 64 KiB must be 16-byte "
                                "aligned and below 1 MiB (got {:#x})",
                                load));
  }
  if (mode != BootMode::kReal && load + image.size() > (4ull << 30)) {
    throw LoadError("the guest image must lie below 4 GiB");
  }
  std::memcpy(memory.data() + load, image.data(), image.size());
}

BootState prepare_boot(std::span<uint8_t> memory, BootMode mode, uint64_t entry) {
  BootState s;
  s.rip = entry;
  s.rsp = entry;
  if (mode == BootMode::kReal) {
    x86::Segment seg;  // selector 0, base 0, limit 64 KiB, read/write data
    seg.type = 0x3;
    s.ds = s.es = s.fs = s.gs = s.ss = seg;
    s.cs = seg;
    s.cs.type = 0xB;
    if (entry >= 0x10000) {
      s.cs.selector = static_cast<uint16_t>(entry >> 4);
      s.cs.base = entry & ~uint64_t{0xF};
      s.rip = entry & 0xF;
    }
    s.rsp = entry < 0x10000 ? entry : 0xFFFE;
    return s;
  }

  const bool long_mode = mode == BootMode::kLong;
  // The tables below go at fixed addresses: memory must hold them (load_image checks this
  // too, but prepare_boot is also called on its own).
  const uint64_t tables_end = long_mode ? kBootTablesEnd : kGdtAddress + 3 * 8;
  if (memory.size() < tables_end) {
    throw LoadError(fmt::format("guest memory ({} bytes) cannot hold the VMM's GDT and page "
                                "tables (up to {:#x})",
                                memory.size(), tables_end));
  }
  // GDT: null, 0x08 code, 0x10 data.
  put64(memory, kGdtAddress + 0, 0);
  put64(memory, kGdtAddress + 8, descriptor(0xB, long_mode, !long_mode));
  put64(memory, kGdtAddress + 16, descriptor(0x3, false, true));
  s.gdt_base = kGdtAddress;
  s.gdt_limit = 3 * 8 - 1;

  x86::Segment code;
  code.selector = 0x08;
  code.limit = 0xFFFFFFFF;
  code.type = 0xB;
  code.g = 1;
  code.l = long_mode;
  code.db = !long_mode;
  x86::Segment data = code;
  data.selector = 0x10;
  data.type = 0x3;
  data.l = 0;
  data.db = 1;
  s.cs = code;
  s.ds = s.es = s.fs = s.gs = s.ss = data;
  s.cr0 = 0x11;  // PE | ET
  if (long_mode) {
    // PML4[0] -> PDPT; PDPT[0..3] -> four PDs; each PD maps 1 GiB in 2 MiB pages.
    constexpr uint64_t kPdpt = kPml4Address + 0x1000;
    constexpr uint64_t kPd = kPml4Address + 0x2000;
    constexpr uint64_t kPresentWritable = 0x3;
    std::memset(memory.data() + kPml4Address, 0, kBootTablesEnd - kPml4Address);
    put64(memory, kPml4Address, kPdpt | kPresentWritable);
    for (uint64_t i = 0; i < 4; ++i) {
      put64(memory, kPdpt + 8 * i, (kPd + 0x1000 * i) | kPresentWritable);
      for (uint64_t j = 0; j < 512; ++j) {
        const uint64_t frame = (i << 30) | (j << 21);
        put64(memory, kPd + 0x1000 * i + 8 * j, frame | kPresentWritable | 0x80);  // PS
      }
    }
    s.cr3 = kPml4Address;
    s.cr4 = 0x20;                    // PAE
    s.cr0 = 0x80000011;              // PG | ET | PE
    s.efer = 0x500 | 0x1;            // LMA | LME | SCE
  }
  return s;
}

}  // namespace trapscope::platform
