// platform/loader.hpp — loading a flat binary and the CPU state it is entered in.
//
// Backend-neutral: the loader writes guest memory and returns a BootState; the KVM backend turns
// it into KVM_SET_REGS/KVM_SET_SREGS (vmm/kvm_machine.cpp), the simulator will load it directly.
//
// Memory map of a trapscope guest (guest-physical; documented in docs/guests.md, "Guest contract"):
//   0x0500–0x051F  GDT built by the VMM (protected/long): 0x08 code, 0x10 data, flat 4 GiB
//   0x1000–0x6FFF  long mode page tables: PML4 0x1000, PDPT 0x2000, PDs 0x3000–0x6FFF; identity
//                  map of 0–4 GiB in 2 MiB pages, present + writable, supervisor only
//   load address   the image (default 0x8000); entry point = load address; stack top = load
//                  address (the stack grows down below the image)
// Real mode: CS = DS = ES = SS = 0 and IP = load when load < 64 KiB, else CS = load / 16 and
// IP = load % 16 (so the image must then be assembled with org 0 or org load % 16).
// Sources: Intel SDM Vol. 3A 3.4.5 (segment descriptors), 4.5 (4-level paging), 9.8–9.9
// (switching to protected and IA-32e mode); kvm-hello-world and Firecracker set up long mode the
// same way.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string_view>

#include "x86/state.hpp"

namespace trapscope::platform {

enum class BootMode : uint8_t { kReal, kProtected, kLong };

std::optional<BootMode> parse_boot_mode(std::string_view text);  // "real" | "protected" | "long"
std::string_view to_string(BootMode mode);

inline constexpr uint64_t kGdtAddress = 0x0500;
inline constexpr uint64_t kPml4Address = 0x1000;
inline constexpr uint64_t kBootTablesEnd = 0x7000;  // first byte after the VMM's tables
inline constexpr uint64_t kDefaultLoadAddress = 0x8000;

class LoadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct BootState {
  uint64_t rip = 0, rsp = 0, rflags = 0x2;
  x86::Segment cs, ds, es, fs, gs, ss;  // hidden parts as loaded (SDM Vol. 3A 3.4.3)
  uint64_t gdt_base = 0;
  uint16_t gdt_limit = 0xFFFF;
  uint64_t cr0 = 0x60000010, cr3 = 0, cr4 = 0, efer = 0;  // real mode: CD | NW | ET at reset
};

// Checks that the image fits (non-empty, inside memory, not over the VMM's tables for
// protected/long mode, real-mode entry reachable) and copies it to `load`. Throws LoadError
// with a message that says which rule was broken.
void load_image(std::span<uint8_t> memory, std::span<const uint8_t> image, uint64_t load,
                BootMode mode);

// Writes the GDT (protected, long) and page tables (long) into guest memory and returns the
// state to enter the guest at `entry`. Throws LoadError if memory is too small to hold them.
BootState prepare_boot(std::span<uint8_t> memory, BootMode mode, uint64_t entry);

}  // namespace trapscope::platform
