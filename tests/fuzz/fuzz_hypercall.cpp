// Fuzz target: every hypercall (platform/hypercall.hpp execute_hypercall) with random arguments over
// a random guest memory, through a fake HypercallHost that records what the call did to it.
//
// Input: byte 0 the call number (0..7: the six calls and two unknown numbers), 24 bytes arg1,
// arg2, arg3 (little-endian u64), one byte the memory size (1..16 pages of 4 KiB), then the
// memory's contents (zeros past the input's end).
//
// Checked besides ASan/UBSan (the memory is a heap block of exactly its size): the result is
// one of the documented codes; a refused call touches nothing (memory, TLB, CR3, console);
// every byte that changed lies in an 8-byte PTE the call reported through pte_written, which is
// 8-byte aligned and inside memory; set_cr3 gets a page-aligned page inside memory;
// console_write writes exactly its length.
#include <algorithm>
#include <vector>

#include "tests/fuzz/fuzz_input.hpp"
#include "platform/devices.hpp"
#include "platform/hypercall.hpp"

using namespace trapscope;

namespace {

constexpr const char* kTarget = "fuzz_hypercall";
constexpr uint64_t kPage = 4096;

struct FakeHost final : platform::HypercallHost {
  platform::HypercallArgs a;
  std::vector<uint8_t> memory;
  std::vector<uint64_t> ptes_written;
  unsigned flushes = 0;
  unsigned cr3_loads = 0;

  platform::HypercallArgs args() override { return a; }
  std::span<uint8_t> guest_memory() override { return memory; }
  void pte_written(uint64_t gpa) override {
    if (gpa % 8 != 0 || gpa > memory.size() || memory.size() - gpa < 8) {
      fuzz::invariant_failed(kTarget, "pte_written outside guest memory or unaligned");
    }
    ptes_written.push_back(gpa);
  }
  void flush_tlb() override { ++flushes; }
  void set_cr3(uint64_t value) override {
    if (value % kPage != 0 || value > memory.size() || memory.size() - value < kPage) {
      fuzz::invariant_failed(kTarget, "set_cr3 to a page outside guest memory or unaligned");
    }
    ++cr3_loads;
  }
};

bool written(const std::vector<uint64_t>& ptes, uint64_t offset) {
  for (uint64_t p : ptes) {
    if (offset >= p && offset < p + 8) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  FakeHost host;
  host.a.nr = in.pick(8);
  host.a.arg1 = in.u64();
  host.a.arg2 = in.u64();
  host.a.arg3 = in.u64();
  host.memory.assign((1 + in.pick(16)) * kPage, 0);
  const auto contents = in.rest();
  std::copy_n(contents.begin(), std::min(contents.size(), host.memory.size()),
              host.memory.begin());
  const std::vector<uint8_t> before = host.memory;

  platform::ConsoleOutput console;
  uint64_t shared_info = ~uint64_t{0};
  const platform::HypercallRecord r = platform::execute_hypercall(host, console, &shared_info);

  switch (r.result) {
    case platform::kHcOk: case platform::kHcE2big: case platform::kHcEfault: case platform::kHcEinval:
    case platform::kHcEnosys: break;
    default: fuzz::invariant_failed(kTarget, "a result that is not a documented code");
  }
  for (uint64_t i = 0; i < host.memory.size(); ++i) {
    if (host.memory[i] != before[i] && !written(host.ptes_written, i)) {
      fuzz::invariant_failed(kTarget, "a byte changed outside the PTEs the call reported");
    }
  }
  if (r.result != platform::kHcOk) {
    if (host.memory != before || host.flushes || host.cr3_loads || !console.text().empty() ||
        shared_info != ~uint64_t{0}) {
      fuzz::invariant_failed(kTarget, "a refused call changed the machine");
    }
    return 0;
  }
  const auto nr = static_cast<platform::Hypercall>(host.a.nr);
  if (nr == platform::Hypercall::kConsoleWrite && console.text().size() != host.a.arg2) {
    fuzz::invariant_failed(kTarget, "console_write wrote another length than asked");
  }
  if (nr == platform::Hypercall::kMmuUpdate && host.ptes_written.size() != host.a.arg2) {
    fuzz::invariant_failed(kTarget, "mmu_update reported another number of PTEs than asked");
  }
  if (nr == platform::Hypercall::kSetSharedInfo &&
      (shared_info % kPage != 0 || shared_info + kPage > host.memory.size())) {
    fuzz::invariant_failed(kTarget, "shared info page outside guest memory or unaligned");
  }
  return 0;
}
