// tests/test_loader.cpp — platform::load_image, platform::prepare_boot, and the VMM's guest page walk
// (platform::guest_linear_to_physical) and mode decoder (vmm::cpu_mode). No KVM needed.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "trace/event.hpp"
#include "platform/guest_paging.hpp"
#include "platform/loader.hpp"

using namespace trapscope;
using platform::BootMode;
using platform::LoadError;

namespace {

std::vector<uint8_t> image_of(size_t n, uint8_t first = 0x90) {
  std::vector<uint8_t> img(n);
  for (size_t i = 0; i < n; ++i) img[i] = static_cast<uint8_t>(first + i);
  return img;
}

uint64_t get64(const std::vector<uint8_t>& mem, uint64_t gpa) {
  uint64_t v;
  std::memcpy(&v, mem.data() + gpa, 8);
  return v;
}

void put32(std::vector<uint8_t>& mem, uint64_t gpa, uint32_t v) { std::memcpy(&mem[gpa], &v, 4); }
void put64(std::vector<uint8_t>& mem, uint64_t gpa, uint64_t v) { std::memcpy(&mem[gpa], &v, 8); }

platform::PagingRegs regs_of(const platform::BootState& b) { return {b.cr0, b.cr3, b.cr4, b.efer}; }

}  // namespace

// [SECTION] load_image

TEST_CASE("load_image copies the image to the load address and nothing else",
          "[unit][loader]") {
  std::vector<uint8_t> mem(64 * 1024, 0);
  const auto img = image_of(100);
  platform::load_image(mem, img, 0x8000, BootMode::kReal);
  REQUIRE(std::equal(img.begin(), img.end(), mem.begin() + 0x8000));
  REQUIRE(std::all_of(mem.begin(), mem.begin() + 0x8000, [](uint8_t b) { return b == 0; }));
  REQUIRE(std::all_of(mem.begin() + 0x8000 + 100, mem.end(), [](uint8_t b) { return b == 0; }));

  // An image that ends exactly at the end of memory fits.
  std::vector<uint8_t> mem2(0x9000, 0);
  const auto img2 = image_of(0x1000);
  REQUIRE_NOTHROW(platform::load_image(mem2, img2, 0x8000, BootMode::kLong));
  REQUIRE(mem2.back() == img2.back());
}

TEST_CASE("load_image rejects an empty image", "[unit][loader]") {
  std::vector<uint8_t> mem(64 * 1024);
  const std::vector<uint8_t> empty;
  REQUIRE_THROWS_AS(platform::load_image(mem, empty, 0x8000, BootMode::kReal), LoadError);
  REQUIRE_THROWS_WITH(platform::load_image(mem, empty, 0x8000, BootMode::kLong),
                      Catch::Contains("empty"));
}

TEST_CASE("load_image rejects an image larger than memory, suggesting --mem", "[unit][loader]") {
  std::vector<uint8_t> mem(64 * 1024, 0);
  const auto big = image_of(0x8001);  // one byte too many at 0x8000
  REQUIRE_THROWS_AS(platform::load_image(mem, big, 0x8000, BootMode::kReal), LoadError);
  REQUIRE_THROWS_WITH(platform::load_image(mem, big, 0x8000, BootMode::kLong),
                      Catch::Contains("--mem") && Catch::Contains("32769 bytes at 0x8000") &&
                          Catch::Contains("65536 bytes"));
  // Load address at or past the end of memory; a huge one must not wrap around.
  const auto small = image_of(16);
  REQUIRE_THROWS_WITH(platform::load_image(mem, small, 0x10000, BootMode::kLong),
                      Catch::Contains("--mem"));
  REQUIRE_THROWS_WITH(platform::load_image(mem, small, ~uint64_t{0} - 8, BootMode::kLong),
                      Catch::Contains("--mem"));
  // Nothing was written by the failed loads.
  REQUIRE(std::all_of(mem.begin(), mem.end(), [](uint8_t b) { return b == 0; }));
}

TEST_CASE("load_image: protected/long mode images may not overlap the VMM's tables",
          "[unit][loader]") {
  std::vector<uint8_t> mem(64 * 1024);
  const auto img = image_of(16);
  for (BootMode mode : {BootMode::kProtected, BootMode::kLong}) {
    REQUIRE_THROWS_AS(platform::load_image(mem, img, 0x6FFF, mode), LoadError);
    REQUIRE_THROWS_WITH(platform::load_image(mem, img, 0x1000, mode),
                        Catch::Contains("0x1000") && Catch::Contains("--load 0x7000"));
    REQUIRE_THROWS_AS(platform::load_image(mem, img, 0x0, mode), LoadError);
    REQUIRE_NOTHROW(platform::load_image(mem, img, 0x7000, mode));
  }
  // Real mode has no tables: anywhere goes.
  REQUIRE_NOTHROW(platform::load_image(mem, img, 0x1000, BootMode::kReal));
  REQUIRE_NOTHROW(platform::load_image(mem, img, 0x7C00, BootMode::kReal));
  REQUIRE_NOTHROW(platform::load_image(mem, img, 0x7C01, BootMode::kReal));  // below 64 KiB: IP = load
}

TEST_CASE("load_image: real-mode loads at or above 64 KiB must be paragraph aligned, below 1 MiB",
          "[unit][loader]") {
  std::vector<uint8_t> mem(2 << 20);
  const auto img = image_of(16);
  REQUIRE_THROWS_AS(platform::load_image(mem, img, 0x10001, BootMode::kReal), LoadError);
  REQUIRE_THROWS_WITH(platform::load_image(mem, img, 0x12348, BootMode::kReal),
                      Catch::Contains("16-byte aligned") && Catch::Contains("0x12348"));
  REQUIRE_THROWS_WITH(platform::load_image(mem, img, 0x100000, BootMode::kReal),
                      Catch::Contains("below 1 MiB"));
  REQUIRE_NOTHROW(platform::load_image(mem, img, 0x10000, BootMode::kReal));
  REQUIRE_NOTHROW(platform::load_image(mem, img, 0x12340, BootMode::kReal));
  REQUIRE_NOTHROW(platform::load_image(mem, img, 0xFFFF0, BootMode::kReal));
  // Protected mode does not have the real-mode rule.
  REQUIRE_NOTHROW(platform::load_image(mem, img, 0x100001, BootMode::kProtected));
}

TEST_CASE("parse_boot_mode / to_string", "[unit][loader]") {
  CHECK(platform::parse_boot_mode("real") == BootMode::kReal);
  CHECK(platform::parse_boot_mode("protected") == BootMode::kProtected);
  CHECK(platform::parse_boot_mode("long") == BootMode::kLong);
  CHECK_FALSE(platform::parse_boot_mode("Long").has_value());
  CHECK_FALSE(platform::parse_boot_mode("").has_value());
  CHECK(platform::to_string(BootMode::kReal) == "real");
  CHECK(platform::to_string(BootMode::kProtected) == "protected");
  CHECK(platform::to_string(BootMode::kLong) == "long");
}

// [SECTION] prepare_boot

TEST_CASE("prepare_boot (long): GDT with a 64-bit code segment, identity-mapped 4 GiB",
          "[unit][loader]") {
  std::vector<uint8_t> mem(1 << 20, 0xCC);
  const platform::BootState b = platform::prepare_boot(mem, BootMode::kLong, 0x8000);

  // GDT at 0x500: null, code (0x08), data (0x10).
  CHECK(b.gdt_base == 0x500u);
  CHECK(b.gdt_limit == 23);
  CHECK(get64(mem, 0x500) == 0);
  const uint64_t code = get64(mem, 0x508);
  const uint64_t data = get64(mem, 0x510);
  CHECK(code == 0x00AF9B000000FFFFull);  // P, DPL 0, S, type B, G, L = 1, D = 0
  CHECK(((code >> 53) & 1) == 1);         // L
  CHECK(((code >> 54) & 1) == 0);         // D must be 0 with L = 1
  CHECK(data == 0x00CF93000000FFFFull);
  // Bytes right after the GDT are untouched.
  CHECK(mem[0x518] == 0xCC);

  // Segment state matches the descriptors.
  CHECK(b.cs.selector == 0x08);
  CHECK(b.cs.l == 1);
  CHECK(b.cs.db == 0);
  CHECK(b.cs.type == 0xB);
  CHECK(b.cs.g == 1);
  CHECK(b.cs.limit == 0xFFFFFFFFu);
  for (const x86::Segment* s : {&b.ds, &b.es, &b.fs, &b.gs, &b.ss}) {
    CHECK(s->selector == 0x10);
    CHECK(s->type == 0x3);
    CHECK(s->db == 1);
    CHECK(s->l == 0);
  }
  CHECK(b.rip == 0x8000u);
  CHECK(b.rsp == 0x8000u);
  CHECK(b.rflags == 0x2u);
  CHECK(b.cr0 == 0x80000011u);
  CHECK(b.cr3 == 0x1000u);
  CHECK(b.cr4 == 0x20u);
  CHECK(b.efer == 0x501u);

  // Page tables.
  CHECK(get64(mem, 0x1000) == (0x2000 | 0x3));
  CHECK(get64(mem, 0x1008) == 0);
  for (uint64_t i = 0; i < 4; ++i) CHECK(get64(mem, 0x2000 + 8 * i) == ((0x3000 + 0x1000 * i) | 3));
  CHECK(get64(mem, 0x2020) == 0);
  CHECK(get64(mem, 0x3000) == 0x83);
  CHECK(get64(mem, 0x6FF8) == (0xFFE00000ull | 0x83));
  CHECK(mem[0x7000] == 0xCC);

  const auto r = regs_of(b);
  CHECK(platform::guest_linear_to_physical(mem, r, 0x12345678) == 0x12345678u);
  CHECK(platform::guest_linear_to_physical(mem, r, 0xFFFFF000) == 0xFFFFF000u);
  CHECK(platform::guest_linear_to_physical(mem, r, 0xFFFFFFFF) == 0xFFFFFFFFu);
  CHECK(platform::guest_linear_to_physical(mem, r, 0) == 0u);
  CHECK(platform::guest_linear_to_physical(mem, r, 0x8000) == 0x8000u);
  // Beyond 4 GiB nothing is mapped (PDPT[4] and PML4[1] are not present).
  CHECK_FALSE(platform::guest_linear_to_physical(mem, r, 0x100000000ull).has_value());
  CHECK_FALSE(platform::guest_linear_to_physical(mem, r, 0x8000000000ull).has_value());
  CHECK_FALSE(platform::guest_linear_to_physical(mem, r, 0xFFFFFFFF80000000ull).has_value());
}

// Audit: prepare_boot wrote the GDT and page tables at fixed addresses without
// checking that memory holds them.
TEST_CASE("prepare_boot refuses memory too small for the VMM's tables", "[unit][loader][hostile]") {
  std::vector<uint8_t> mem(0x1000, 0xEE);  // holds the GDT, not the page tables
  REQUIRE_THROWS_AS(platform::prepare_boot(std::span<uint8_t>(mem), BootMode::kLong, 0x8000),
                    LoadError);
  CHECK(std::all_of(mem.begin(), mem.end(), [](uint8_t b) { return b == 0xEE; }));
  std::vector<uint8_t> tiny(0x400);
  REQUIRE_THROWS_AS(platform::prepare_boot(std::span<uint8_t>(tiny), BootMode::kProtected, 0x100),
                    LoadError);
  CHECK_NOTHROW(platform::prepare_boot(std::span<uint8_t>(mem), BootMode::kProtected, 0x800));
  CHECK_NOTHROW(platform::prepare_boot(std::span<uint8_t>(tiny), BootMode::kReal, 0x100));
}

TEST_CASE("prepare_boot (protected): flat 32-bit GDT, no paging, no page tables",
          "[unit][loader]") {
  std::vector<uint8_t> mem(1 << 20, 0xCC);
  const platform::BootState b = platform::prepare_boot(mem, BootMode::kProtected, 0x9000);
  CHECK(get64(mem, 0x500) == 0);
  CHECK(get64(mem, 0x508) == 0x00CF9B000000FFFFull);  // D = 1, L = 0
  CHECK(get64(mem, 0x510) == 0x00CF93000000FFFFull);
  CHECK(b.cs.selector == 0x08);
  CHECK(b.cs.db == 1);
  CHECK(b.cs.l == 0);
  CHECK(b.ss.selector == 0x10);
  CHECK(b.cr0 == 0x11u);
  CHECK(b.cr3 == 0u);
  CHECK(b.cr4 == 0u);
  CHECK(b.efer == 0u);
  CHECK(b.rip == 0x9000u);
  CHECK(b.rsp == 0x9000u);
  CHECK(std::all_of(mem.begin() + 0x1000, mem.begin() + 0x7000, [](uint8_t v) { return v == 0xCC; }));
  // Paging off: linear = physical.
  CHECK(platform::guest_linear_to_physical(mem, regs_of(b), 0xDEADBEEF) == 0xDEADBEEFu);
  CHECK(x86::mode_of(b.cr0, b.efer, b.rflags, b.cs.l, b.cs.db) == trace::CpuMode::kProtected32);
}

TEST_CASE("prepare_boot (real): segments and IP for loads below and above 64 KiB",
          "[unit][loader]") {
  std::vector<uint8_t> mem(1 << 20, 0xCC);
  SECTION("below 64 KiB: CS = 0, IP = load") {
    const platform::BootState b = platform::prepare_boot(mem, BootMode::kReal, 0x7C00);
    CHECK(b.cs.selector == 0);
    CHECK(b.cs.base == 0u);
    CHECK(b.cs.limit == 0xFFFFu);
    CHECK(b.cs.type == 0xB);
    CHECK(b.ds.type == 0x3);
    CHECK(b.rip == 0x7C00u);
    CHECK(b.rsp == 0x7C00u);
    CHECK(b.cr0 == 0x60000010u);
    CHECK(b.efer == 0u);
  }
  SECTION("at or above 64 KiB: CS = load / 16, IP = load % 16") {
    const platform::BootState b = platform::prepare_boot(mem, BootMode::kReal, 0x12340);
    CHECK(b.cs.selector == 0x1234);
    CHECK(b.cs.base == 0x12340u);
    CHECK(b.rip == 0u);
    CHECK(b.rsp == 0xFFFEu);
    CHECK(b.ds.selector == 0);
  }
  // Real mode writes nothing into guest memory.
  CHECK(std::all_of(mem.begin(), mem.end(), [](uint8_t v) { return v == 0xCC; }));
}

// [SECTION] Guest page walks over hand-built tables

TEST_CASE("guest_linear_to_physical: 32-bit paging", "[unit][loader]") {
  std::vector<uint8_t> mem(256 * 1024, 0);
  // Page directory at 0x10000, one page table at 0x11000.
  platform::PagingRegs r{0x80000011, 0x10000, 0, 0};
  const uint32_t la = 0x12345678;              // PDE 0x48, PTE 0x345, offset 0x678
  put32(mem, 0x10000 + 4 * 0x48, 0x11000 | 0x3);
  put32(mem, 0x11000 + 4 * 0x345, 0x00ABC000 | 0x3);
  CHECK(platform::guest_linear_to_physical(mem, r, la) == 0x00ABC678u);
  CHECK(platform::guest_linear_to_physical(mem, r, 0x12345000) == 0x00ABC000u);
  CHECK(platform::guest_linear_to_physical(mem, r, 0x12345FFF) == 0x00ABCFFFu);

  SECTION("not-present PTE and PDE") {
    CHECK_FALSE(platform::guest_linear_to_physical(mem, r, 0x12346000).has_value());  // PTE 0x346
    CHECK_FALSE(platform::guest_linear_to_physical(mem, r, 0x00400000).has_value());  // PDE 1
    put32(mem, 0x11000 + 4 * 0x346, 0x00DEF000);  // address but P = 0
    CHECK_FALSE(platform::guest_linear_to_physical(mem, r, 0x12346000).has_value());
  }
  SECTION("4 MiB page needs CR4.PSE") {
    put32(mem, 0x10000 + 4 * 1, 0x00C00000 | 0x83);  // PS
    r.cr4 = 0x10;                                    // PSE
    CHECK(platform::guest_linear_to_physical(mem, r, 0x00412345) == 0x00C12345u);
    CHECK(platform::guest_linear_to_physical(mem, r, 0x007FFFFF) == 0x00FFFFFFu);
    // Without PSE the PS bit is ignored: the entry points at a "page table" at 0xC00000,
    // which is outside this 256 KiB guest memory.
    r.cr4 = 0;
    CHECK_FALSE(platform::guest_linear_to_physical(mem, r, 0x00412345).has_value());
  }
  SECTION("PSE-36: PDE bits 20:13 give physical address bits 39:32") {
    put32(mem, 0x10000 + 4 * 2, 0x00C00000 | (0x5u << 13) | 0x83);
    r.cr4 = 0x10;
    CHECK(platform::guest_linear_to_physical(mem, r, 0x00801234) == 0x500C01234ull);
  }
  SECTION("page directory outside guest memory") {
    r.cr3 = 0x80000000;
    CHECK_FALSE(platform::guest_linear_to_physical(mem, r, la).has_value());
  }
  SECTION("CR0.PG = 0 returns the address as is") {
    r.cr0 = 0x11;
    CHECK(platform::guest_linear_to_physical(mem, r, la) == la);
  }
}

TEST_CASE("guest_linear_to_physical: PAE paging", "[unit][loader]") {
  std::vector<uint8_t> mem(256 * 1024, 0);
  // PDPT (32 bytes) at 0x20020, PD at 0x21000, PT at 0x22000.
  platform::PagingRegs r{0x80000011, 0x20020, 0x20, 0};
  put64(mem, 0x20020 + 8 * 0, 0x21000 | 0x1);
  // 0x12345678: PDPTE 0, PDE 0x91, PTE 0x145, offset 0x678.
  put64(mem, 0x21000 + 8 * 0x91, 0x22000 | 0x3);
  put64(mem, 0x22000 + 8 * 0x145, 0x8000000123456000ull | 0x3);  // NX set, frame above 4 GiB
  CHECK(platform::guest_linear_to_physical(mem, r, 0x12345678) == 0x123456678ull);

  // A 2 MiB page (PDE 1).
  put64(mem, 0x21000 + 8 * 1, 0x40000000 | 0x83);
  CHECK(platform::guest_linear_to_physical(mem, r, 0x00201234) == 0x40001234u);
  CHECK(platform::guest_linear_to_physical(mem, r, 0x003FFFFF) == 0x401FFFFFu);

  // Not present: PDPTE 1 (1-2 GiB), PDE 2, PTE 0x146.
  CHECK_FALSE(platform::guest_linear_to_physical(mem, r, 0x40000000).has_value());
  CHECK_FALSE(platform::guest_linear_to_physical(mem, r, 0x00400000).has_value());
  CHECK_FALSE(platform::guest_linear_to_physical(mem, r, 0x12346000).has_value());
  // PDPTE 3 present too: the index comes from bits 31:30.
  put64(mem, 0x20020 + 8 * 3, 0x21000 | 0x1);
  CHECK(platform::guest_linear_to_physical(mem, r, 0xC0201234) == 0x40001234u);
}

TEST_CASE("guest_linear_to_physical: 4-level paging with 4 KiB and 1 GiB pages",
          "[unit][loader]") {
  std::vector<uint8_t> mem(512 * 1024, 0);
  platform::PagingRegs r{0x80000011, 0x30000, 0x20, 0x500};
  put64(mem, 0x30000 + 8 * 0, 0x31000 | 0x3);          // PML4[0] -> PDPT
  put64(mem, 0x31000 + 8 * 0, 0x40000000 | 0x83);      // PDPT[0]: 1 GiB page at 1 GiB
  put64(mem, 0x31000 + 8 * 1, 0x32000 | 0x3);          // PDPT[1] -> PD
  put64(mem, 0x32000 + 8 * 0, 0x33000 | 0x3);          // PD[0] -> PT
  put64(mem, 0x33000 + 8 * 5, 0x7000 | 0x3);           // PT[5] -> 0x7000
  CHECK(platform::guest_linear_to_physical(mem, r, 0x12345678) == 0x52345678u);
  CHECK(platform::guest_linear_to_physical(mem, r, 0x40005ABC) == 0x7ABCu);
  CHECK_FALSE(platform::guest_linear_to_physical(mem, r, 0x40006000).has_value());
  // Higher half (PML4 511): not present.
  CHECK_FALSE(platform::guest_linear_to_physical(mem, r, 0xFFFF800000000000ull).has_value());
}

// [SECTION] mode_of (x86/mode.hpp)

TEST_CASE("x86::mode_of from CR0, EFER, CS.L/D and RFLAGS.VM", "[unit][loader]") {
  using trace::CpuMode;
  CHECK(x86::mode_of(0x60000010, 0, 0x2, false, false) == CpuMode::kReal16);
  CHECK(x86::mode_of(0x10, 0, 0x2, false, true) == CpuMode::kReal16);  // PE = 0 wins
  CHECK(x86::mode_of(0x11, 0, 0x2, false, false) == CpuMode::kProtected16);
  CHECK(x86::mode_of(0x11, 0, 0x2, false, true) == CpuMode::kProtected32);
  CHECK(x86::mode_of(0x80000011, 0x501, 0x2, true, false) == CpuMode::kLong64);
  CHECK(x86::mode_of(0x80000011, 0x501, 0x2, false, true) == CpuMode::kCompat32);
  CHECK(x86::mode_of(0x80000011, 0x501, 0x2, false, false) == CpuMode::kCompat16);
  // EFER.LME without LMA (paging not yet on) is still legacy protected mode.
  CHECK(x86::mode_of(0x11, 0x100, 0x2, false, true) == CpuMode::kProtected32);
  // Virtual-8086 mode decodes as 16-bit real.
  CHECK(x86::mode_of(0x11, 0, 0x2 | (1u << 17), false, false) == CpuMode::kReal16);
  CHECK(trace::to_string(CpuMode::kLong64) == "long64");
  CHECK(trace::to_string(CpuMode::kReal16) == "real");
}
