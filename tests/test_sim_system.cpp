// tests/test_sim_system.cpp — the simulator's system instructions and x86 protection model
// (sim/interp/system.cpp): exception and interrupt delivery (IVT, 32-bit and 64-bit gates, TSS
// stack switches, IST, #DF, triple fault), segment loads, far transfers and call gates, iret,
// syscall/sysret, privileged vs. sensitive instructions, LAR/LSL/VERR/VERW, and the guests
// `boot` and `rings` on SimMachine. No KVM needed.
//
// The snippets are machine-code bytes (checked with nasm/ndisasm), each commented with its
// assembly. Addresses are guest-physical = linear (no paging, or identity paging).
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "guests/guest_catalog.hpp"
#include "sim/cpu.hpp"
#include "sim/interp/protection.hpp"
#include "sim/sim_machine.hpp"
#include "trace/recorder.hpp"

using namespace trapscope;
using x86::CpuState;
using x86::Segment;
using sim::StepStatus;
using platform::BootMode;
namespace vec = sim::vec;

namespace {

// [SECTION] Memory layout of the tests

constexpr uint64_t kCode = 0x8000;            // load address: kernel-mode code under test
constexpr uint64_t kGdt = 0x20000;
constexpr uint64_t kIdt = 0x21000;
constexpr uint64_t kTss = 0x22000;
constexpr uint64_t kKernelStack = 0x28000;    // CPL 0 stack of the set-ups (RSP before a test)
constexpr uint64_t kRsp0 = 0x30000;           // TSS.RSP0 / SS0:ESP0
constexpr uint64_t kIst1 = 0x38000;           // TSS.IST1
constexpr uint64_t kUserStack = 0x40000;      // CPL 3 stack top
constexpr uint64_t kHandlers = 0x50000;       // the handler of vector v is at kHandlers + 16 v
constexpr uint64_t kUser = 0x60000;           // CPL 3 code
constexpr uint64_t kNotPresent = 0x400000;    // 2 MiB page made not present (long mode)

// Selectors of the test GDT (same numbers in the 32-bit and the 64-bit set-ups).
constexpr uint16_t kKernelCs = 0x08, kKernelDs = 0x10, kUserDs = 0x18 | 3, kUserCs = 0x20 | 3,
                   kTssSel = 0x28;
// 32-bit set-up only:
constexpr uint16_t kCallGate = 0x30;      // call gate, DPL 3 -> 0x08:kGateTarget, 2 parameters
constexpr uint16_t kAbsentData = 0x38;    // data, DPL 0, not present
constexpr uint16_t kReadOnly3 = 0x40;     // read-only data, DPL 3
constexpr uint16_t kExecOnly = 0x48;      // execute-only code, DPL 0
constexpr uint16_t kConforming = 0x50;    // conforming readable code, DPL 0
constexpr uint16_t kData1 = 0x58;         // data, DPL 1
constexpr uint16_t kLdtSel = 0x60;        // LDT at kLdt, 2 entries
constexpr uint16_t kSmallData = 0x68;     // data, base 0x12345, byte-granular limit 0x1234
constexpr uint64_t kGateTarget = 0x9800;
constexpr uint64_t kLdt = 0x23000;

// A code/data or system descriptor (SDM Vol. 3A 3.4.5).
constexpr uint64_t descriptor(uint32_t base, uint32_t limit, uint8_t type, uint8_t dpl,
                              bool s = true, bool present = true, bool l = false, bool db = true,
                              bool g = true) {
  return (limit & 0xFFFF) | (uint64_t{base & 0xFFFFFF} << 16) | (uint64_t{type} << 40) |
         (uint64_t{s} << 44) | (uint64_t{dpl} << 45) | (uint64_t{present} << 47) |
         (uint64_t{(limit >> 16) & 0xF} << 48) | (uint64_t{l} << 53) | (uint64_t{db} << 54) |
         (uint64_t{g} << 55) | (uint64_t{base >> 24} << 56);
}

// A gate's low 8 bytes (SDM 5.8.3, 6.11): offset 31:0, selector, type, DPL, P, count/IST.
constexpr uint64_t gate(uint64_t offset, uint16_t selector, uint8_t type, uint8_t dpl,
                        uint8_t count_or_ist = 0, bool present = true) {
  return (offset & 0xFFFF) | (uint64_t{selector} << 16) | (uint64_t{count_or_ist} << 32) |
         (uint64_t{type} << 40) | (uint64_t{dpl} << 45) | (uint64_t{present} << 47) |
         (((offset >> 16) & 0xFFFF) << 48);
}

Segment code_segment(uint16_t selector, uint8_t dpl, bool long_mode) {
  Segment s;
  s.selector = selector;
  s.base = 0;
  s.limit = 0xFFFFFFFF;
  s.type = 0xB;
  s.s = 1;
  s.dpl = dpl;
  s.present = 1;
  s.l = long_mode;
  s.db = !long_mode;
  s.g = 1;
  return s;
}

Segment data_segment(uint16_t selector, uint8_t dpl) {
  Segment s = code_segment(selector, dpl, false);
  s.type = 0x3;
  return s;
}

// [SECTION] The rig: a SimMachine, a Recorder, and helpers to poke memory and state.

struct Rig {
  explicit Rig(BootMode mode, const std::vector<uint8_t>& code = {0xF4}) : m(config(mode)) {
    m.load(code);
    m.cpu().set_sink(&rec);
  }
  static sim::SimConfig config(BootMode mode) {
    sim::SimConfig c;
    c.memory_bytes = 8ull << 20;
    c.mode = mode;
    c.load_address = kCode;
    return c;
  }

  sim::SimMachine m;
  trace::Recorder rec;

  sim::Cpu& cpu() { return m.cpu(); }
  CpuState& s() { return m.cpu().s; }
  // Host-side writes tell the CPU (its decode cache keys instructions by physical page).
  void put(uint64_t gpa, const std::vector<uint8_t>& bytes) {
    std::memcpy(m.memory().data() + gpa, bytes.data(), bytes.size());
    m.cpu().note_write(gpa, static_cast<unsigned>(bytes.size()));
  }
  template <typename T>
  void poke(uint64_t gpa, T v) {
    std::memcpy(m.memory().data() + gpa, &v, sizeof v);
    m.cpu().note_write(gpa, sizeof v);
  }
  template <typename T = uint64_t>
  T peek(uint64_t gpa) {
    T v;
    std::memcpy(&v, m.memory().data() + gpa, sizeof v);
    return v;
  }
  uint64_t stack(unsigned i, unsigned size = 8) {
    const uint64_t a = s().seg[x86::kSs].base + s().gpr[x86::kRsp] + i * size;
    uint64_t v = 0;
    std::memcpy(&v, m.memory().data() + a, size);
    return v;
  }
  StepStatus step() { return m.step(); }
  // Runs `bytes` at `at` (one instruction) and returns the step status.
  StepStatus exec(uint64_t at, const std::vector<uint8_t>& bytes) {
    put(at, bytes);
    s().rip = at;
    return step();
  }

  template <typename T>
  std::vector<T> events(trace::EventType type) {
    std::vector<T> out;
    for (size_t i = 0; i < rec.size(); ++i) {
      if (const T* e = rec.get<T>(i, type)) out.push_back(*e);
    }
    return out;
  }
  std::vector<trace::ExceptionEvent> exceptions() {
    return events<trace::ExceptionEvent>(trace::EventType::kException);
  }
  std::vector<trace::RingTransitionEvent> rings() {
    return events<trace::RingTransitionEvent>(trace::EventType::kRingTransition);
  }
};

// TR as `ltr kTssSel` leaves it (the busy TSS at kTss, 0x68 bytes, in both GDTs below), and
// RSP at the kernel stack.
void load_tr_and_kernel_stack(Rig& r) {
  Segment tr;
  tr.selector = kTssSel;
  tr.base = kTss;
  tr.limit = 0x67;
  tr.type = 0xB;
  tr.s = 0;
  r.s().tr = tr;
  r.s().gpr[x86::kRsp] = kKernelStack;
}

// Long mode as a small kernel sets it up: the VMM's identity page tables made user-accessible
// (U/S=1 at every level) except a not-present 2 MiB page at kNotPresent; our GDT (kernel and
// user code/data, a 64-bit TSS with RSP0 and IST1), and an IDT whose 256 interrupt gates (DPL 0)
// lead to `hlt` stubs at kHandlers + 16 v; gate 0x80 has DPL 3.
void setup_long(Rig& r) {
  for (uint64_t a = 0x1000; a < 0x1008; a += 8) r.poke(a, r.peek(a) | 4);        // PML4[0]
  for (uint64_t a = 0x2000; a < 0x2020; a += 8) r.poke(a, r.peek(a) | 4);        // PDPT[0..3]
  for (uint64_t a = 0x3000; a < 0x7000; a += 8) r.poke(a, r.peek(a) | 4);        // PDs
  r.poke<uint64_t>(0x3000 + 8 * (kNotPresent >> 21), 0);                         // not present
  r.poke(kGdt + 0x00, uint64_t{0});
  r.poke(kGdt + 0x08, descriptor(0, 0xFFFFF, 0xB, 0, true, true, true, false));  // kernel code
  r.poke(kGdt + 0x10, descriptor(0, 0xFFFFF, 0x3, 0));                          // kernel data
  r.poke(kGdt + 0x18, descriptor(0, 0xFFFFF, 0x3, 3));                          // user data
  r.poke(kGdt + 0x20, descriptor(0, 0xFFFFF, 0xB, 3, true, true, true, false));  // user code
  r.poke(kGdt + 0x28, descriptor(static_cast<uint32_t>(kTss), 0x67, 0xB, 0, false, true, false,
                                 false, false));                                // busy TSS
  r.poke(kGdt + 0x30, uint64_t{0});                                              // (its top)
  r.s().gdtr = {kGdt, 0x37};
  r.poke<uint64_t>(kTss + 4, kRsp0);   // RSP0
  r.poke<uint64_t>(kTss + 0x24, kIst1);  // IST1
  for (unsigned v = 0; v < 256; ++v) {
    const uint8_t dpl = v == 0x80 ? 3 : 0;
    r.poke(kIdt + 16 * v, gate(kHandlers + 16 * v, kKernelCs, 0xE, dpl));
    r.poke(kIdt + 16 * v + 8, uint64_t{0});
    r.put(kHandlers + 16 * v, {0xF4});  // hlt
  }
  r.s().idtr = {kIdt, 256 * 16 - 1};
  load_tr_and_kernel_stack(r);
  r.cpu().flush_tlb();
}

// Enters CPL 3 at `rip` the way a kernel does: with an `iretq` (48 CF) from CPL 0.
void enter_user(Rig& r, uint64_t rip, uint64_t rflags = 0x2, uint64_t rsp = kUserStack) {
  const uint64_t frame = kKernelStack - 40;
  r.poke(frame + 0, rip);
  r.poke(frame + 8, uint64_t{kUserCs});
  r.poke(frame + 16, rflags);
  r.poke(frame + 24, rsp);
  r.poke(frame + 32, uint64_t{kUserDs});
  r.s().gpr[x86::kRsp] = frame;
  REQUIRE(r.exec(kCode + 0x800, {0x48, 0xCF}) == StepStatus::kOk);  // iretq
  REQUIRE(r.cpu().cpl() == 3);
  REQUIRE(r.s().rip == rip);
  r.rec.clear();
}

// 32-bit protected mode (no paging) with the test GDT, a 32-bit TSS (SS0:ESP0 = 0x10:kRsp0) and
// an IDT of 32-bit interrupt gates to hlt stubs at kHandlers + 16 v.
void setup_protected(Rig& r) {
  r.poke(kGdt + 0x00, uint64_t{0});
  r.poke(kGdt + 0x08, descriptor(0, 0xFFFFF, 0xB, 0));                // code32, DPL 0
  r.poke(kGdt + 0x10, descriptor(0, 0xFFFFF, 0x2, 0));                // data, DPL 0 (not accessed)
  r.poke(kGdt + 0x18, descriptor(0, 0xFFFFF, 0x3, 3));                // data, DPL 3
  r.poke(kGdt + 0x20, descriptor(0, 0xFFFFF, 0xB, 3));                // code32, DPL 3
  r.poke(kGdt + 0x28, descriptor(static_cast<uint32_t>(kTss), 0x67, 0xB, 0, false, true, false,
                                 false, false));                      // busy 32-bit TSS
  r.poke(kGdt + 0x30, gate(kGateTarget, kKernelCs, 0xC, 3, 2));       // call gate, 2 params
  r.poke(kGdt + 0x38, descriptor(0, 0xFFFFF, 0x3, 0, true, false));   // data, not present
  r.poke(kGdt + 0x40, descriptor(0, 0xFFFFF, 0x1, 3));                // read-only data, DPL 3
  r.poke(kGdt + 0x48, descriptor(0, 0xFFFFF, 0x9, 0));                // execute-only code
  r.poke(kGdt + 0x50, descriptor(0, 0xFFFFF, 0xF, 0));                // conforming code, DPL 0
  r.poke(kGdt + 0x58, descriptor(0, 0xFFFFF, 0x3, 1));                // data, DPL 1
  r.poke(kGdt + 0x60, descriptor(static_cast<uint32_t>(kLdt), 15, 0x2, 0, false, true, false,
                                 false, false));                      // LDT
  r.poke(kGdt + 0x68, descriptor(0x12345, 0x1234, 0x3, 0, true, true, false, true, false));
  r.s().gdtr = {kGdt, 0x6F};
  r.poke(kLdt + 0, uint64_t{0});
  r.poke(kLdt + 8, descriptor(0x70000, 0xFFFF, 0x3, 3, true, true, false, true, false));
  r.poke<uint32_t>(kTss + 4, kRsp0);  // ESP0
  r.poke<uint32_t>(kTss + 8, kKernelDs);  // SS0
  for (unsigned v = 0; v < 256; ++v) {
    r.poke(kIdt + 8 * v, gate(kHandlers + 16 * v, kKernelCs, 0xE, v == 0x40 ? 3 : 0));
    r.put(kHandlers + 16 * v, {0xF4});
  }
  r.s().idtr = {kIdt, 256 * 8 - 1};
  load_tr_and_kernel_stack(r);
}

void set_cpl3_protected(Rig& r) {
  r.s().seg[x86::kCs] = code_segment(kUserCs, 3, false);
  r.s().seg[x86::kSs] = data_segment(kUserDs, 3);
  r.s().gpr[x86::kRsp] = kUserStack;
}

// Runs f and returns the fault it raised, if any.
std::optional<sim::CpuFault> fault_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const sim::CpuFault& fault) {
    return fault;
  }
  return std::nullopt;
}

#define REQUIRE_FAULT(expr, want_vector, want_error)                \
  do {                                                             \
    const auto f_ = fault_of([&] { expr; });                       \
    REQUIRE(f_.has_value());                                       \
    CHECK(int{f_->vector} == int{want_vector});                    \
    CHECK(f_->has_error_code);                                     \
    CHECK(f_->error_code == uint32_t{want_error});                 \
  } while (0)

#define REQUIRE_NO_FAULT(expr) REQUIRE_FALSE(fault_of([&] { expr; }).has_value())

// The vector a 64-bit handler stub was entered for (rip = kHandlers + 16 v).
int handler_vector(Rig& r) {
  const uint64_t rip = r.s().rip;
  if (rip < kHandlers || rip >= kHandlers + 16 * 256 || (rip - kHandlers) % 16) return -1;
  return static_cast<int>((rip - kHandlers) / 16);
}

}  // namespace

// [SECTION] Real mode

TEST_CASE("real mode: int n goes through the IVT and iret comes back", "[sim][unit][system]") {
  Rig r(BootMode::kReal, {
      0xFB,        // 8000: sti
      0xCD, 0x21,  // 8001: int 0x21
      0xF4,        // 8003: hlt
  });
  r.poke<uint16_t>(0x21 * 4, 0x1000);      // IVT[0x21] = 0800:1000 (linear 0x9000)
  r.poke<uint16_t>(0x21 * 4 + 2, 0x0800);
  r.put(0x9000, {0xCF});                   // 9000: iret
  REQUIRE(r.step() == StepStatus::kOk);    // sti
  REQUIRE(r.cpu().flag(x86::kIF));
  REQUIRE(r.step() == StepStatus::kOk);    // int 0x21
  CHECK(r.s().seg[x86::kCs].selector == 0x0800);
  CHECK(r.s().seg[x86::kCs].base == 0x8000);
  CHECK(r.s().rip == 0x1000);
  CHECK_FALSE(r.cpu().flag(x86::kIF));
  REQUIRE(r.s().gpr[x86::kRsp] == 0x8000 - 6);
  CHECK(r.stack(0, 2) == 0x8003);          // IP: the next instruction
  CHECK(r.stack(1, 2) == 0x0000);          // CS
  CHECK(r.stack(2, 2) == 0x0202);          // FLAGS with IF
  const auto ex = r.exceptions();
  REQUIRE(ex.size() == 1);
  CHECK(ex[0].vector == 0x21);
  CHECK(ex[0].software == 1);
  CHECK(ex[0].has_error_code == 0);
  CHECK(ex[0].header.rip == 0x8003);
  CHECK(r.rings().empty());
  REQUIRE(r.step() == StepStatus::kOk);    // iret
  CHECK(r.s().seg[x86::kCs].selector == 0);
  CHECK(r.s().rip == 0x8003);
  CHECK(r.cpu().flag(x86::kIF));
  CHECK(r.s().gpr[x86::kRsp] == 0x8000);
  CHECK(r.step() == StepStatus::kHalted);
}

TEST_CASE("real mode: far jmp, far call and retf load CS as selector << 4",
          "[sim][unit][system]") {
  Rig r(BootMode::kReal, {
      0x9A, 0x00, 0x01, 0x00, 0x09,  // 8000: call 0x0900:0x0100 (linear 0x9100)
      0xF4,                          // 8005: hlt
  });
  r.put(0x9100, {0xEA, 0x00, 0x02, 0x00, 0x09});  // 9100: jmp 0x0900:0x0200
  r.put(0x9200, {0xCB});                          // 9200: retf
  REQUIRE(r.step() == StepStatus::kOk);
  CHECK(r.s().seg[x86::kCs].base == 0x9000);
  CHECK(r.s().rip == 0x100);
  CHECK(r.stack(0, 2) == 0x8005);
  CHECK(r.stack(1, 2) == 0);
  REQUIRE(r.step() == StepStatus::kOk);
  CHECK(r.s().rip == 0x200);
  REQUIRE(r.step() == StepStatus::kOk);
  CHECK(r.s().seg[x86::kCs].selector == 0);
  CHECK(r.s().rip == 0x8005);
  CHECK(r.step() == StepStatus::kHalted);
}

TEST_CASE("real mode: an IVT too short for a fault ends in a triple fault",
          "[sim][unit][system]") {
  Rig r(BootMode::kReal, {
      0x0F, 0x01, 0x1E, 0x00, 0x91,  // 8000: lidt [0x9100]   (limit 0)
      0xCC,                          // 8005: int3  -> #GP -> #GP -> #DF -> shutdown
  });
  r.poke<uint16_t>(0x9100, 0);
  r.poke<uint32_t>(0x9102, 0);
  REQUIRE(r.step() == StepStatus::kOk);
  CHECK(r.s().idtr.limit == 0);
  REQUIRE(r.step() == StepStatus::kTripleFault);
  CHECK_THAT(r.m.stop_detail(), Catch::Contains("#DF"));
  CHECK_THAT(r.m.stop_detail(), Catch::Contains("IDTR limit"));
}

TEST_CASE("real mode: far jmp right after setting CR0.PE loads CS from the GDT",
          "[sim][unit][system]") {
  Rig r(BootMode::kReal, {
      0x0F, 0x01, 0x16, 0x00, 0x91,                    // 8000: lgdt [0x9100]
      0x0F, 0x22, 0xC0,                                // 8005: mov cr0, eax   (eax = 0x11)
      0x66, 0xEA, 0x00, 0x90, 0x00, 0x00, 0x08, 0x00,  // 8008: jmp dword 0x08:0x9000
  });
  r.poke<uint16_t>(0x9100, 0x0F);  // GDT pseudo-descriptor: limit 15, base 0x9200
  r.poke<uint32_t>(0x9102, 0x9200);
  r.poke<uint64_t>(0x9200, 0);
  r.poke<uint64_t>(0x9208, 0x00CF9A000000FFFF);  // flat 32-bit code, DPL 0 (not accessed)
  r.put(0x9000, {0xF4});
  r.s().gpr[x86::kRax] = 0x11;
  REQUIRE(r.step() == StepStatus::kOk);
  CHECK(r.s().gdtr.base == 0x9200);
  CHECK(r.s().gdtr.limit == 0x0F);
  REQUIRE(r.step() == StepStatus::kOk);
  CHECK(r.cpu().protected_mode());
  CHECK(r.s().mode() == trace::CpuMode::kProtected16);  // CS still holds the real-mode cache
  REQUIRE(r.step() == StepStatus::kOk);
  const Segment& cs = r.s().seg[x86::kCs];
  CHECK(cs.selector == 0x08);
  CHECK(cs.base == 0);
  CHECK(cs.limit == 0xFFFFFFFF);
  CHECK(cs.db == 1);
  CHECK(r.s().mode() == trace::CpuMode::kProtected32);
  CHECK(r.s().rip == 0x9000);
  CHECK(r.peek<uint8_t>(0x9208 + 5) == 0x9B);  // the accessed bit is set in the GDT
  CHECK(r.step() == StepStatus::kHalted);
}

// [SECTION] 64-bit delivery

TEST_CASE("64-bit: #GP from CPL 3 goes through a 64-bit interrupt gate on the RSP0 stack",
          "[sim][unit][system]") {
  Rig r(BootMode::kLong);
  setup_long(r);
  r.put(kUser, {0xFA});  // cli: #GP(0) at CPL 3 with IOPL 0
  enter_user(r, kUser, 0x2, kUserStack - 8);
  REQUIRE(r.step() == StepStatus::kOk);
  CHECK(handler_vector(r) == vec::kGP);
  CHECK(r.cpu().cpl() == 0);
  CHECK(r.s().seg[x86::kCs].selector == kKernelCs);
  CHECK(r.s().seg[x86::kSs].selector == 0);  // NULL SS with RPL = new CPL (SDM 6.14.4)
  REQUIRE(r.s().gpr[x86::kRsp] == kRsp0 - 48);
  CHECK(r.stack(0) == 0);                    // error code
  CHECK(r.stack(1) == kUser);                // RIP: the faulting instruction
  CHECK(r.stack(2) == kUserCs);
  CHECK(r.stack(3) == (0x2 | x86::kRF));     // RFLAGS image: RF=1 for a fault (SDM 17.3.1.1)
  CHECK(r.stack(4) == kUserStack - 8);       // RSP
  CHECK(r.stack(5) == kUserDs);              // SS
  CHECK_FALSE(r.cpu().flag(x86::kIF));
  const auto ex = r.exceptions();
  REQUIRE(ex.size() == 1);
  CHECK(ex[0].vector == vec::kGP);
  CHECK(ex[0].has_error_code == 1);
  CHECK(ex[0].error_code == 0);
  CHECK(ex[0].software == 0);
  CHECK(ex[0].header.cpl == 3);
  CHECK(ex[0].header.rip == kUser);
  const auto rings = r.rings();
  REQUIRE(rings.size() == 1);
  CHECK(rings[0].from_cpl == 3);
  CHECK(rings[0].to_cpl == 0);
  CHECK(rings[0].cause == trace::RingCause::kException);
  CHECK(rings[0].vector == vec::kGP);
  CHECK(rings[0].from_rip == kUser);
  CHECK(rings[0].header.rip == kHandlers + 16 * vec::kGP);

  // The handler returns with iretq to the next instruction: CPL 3 again, user stack back.
  r.poke(r.s().gpr[x86::kRsp] + 8, kUser + 1);
  r.s().gpr[x86::kRsp] += 8;  // drop the error code
  r.put(kUser + 1, {0xF4});
  r.rec.clear();
  REQUIRE(r.exec(kHandlers + 0x1000, {0x48, 0xCF}) == StepStatus::kOk);  // iretq
  CHECK(r.cpu().cpl() == 3);
  CHECK(r.s().rip == kUser + 1);
  CHECK(r.s().gpr[x86::kRsp] == kUserStack - 8);
  CHECK(r.s().seg[x86::kSs].selector == kUserDs);
  const auto back = r.rings();
  REQUIRE(back.size() == 1);
  CHECK(back[0].cause == trace::RingCause::kIret);
  CHECK(back[0].to_cpl == 3);
}

TEST_CASE("64-bit: iretq to CPL 3 nulls the data segments CPL 3 may not use",
          "[sim][unit][system]") {
  Rig r(BootMode::kLong);
  setup_long(r);
  r.s().seg[x86::kDs] = data_segment(kKernelDs, 0);
  r.s().seg[x86::kEs] = data_segment(kUserDs, 3);
  r.s().seg[x86::kFs] = data_segment(kKernelDs, 0);
  r.s().seg[x86::kFs].base = 0x1234000;
  enter_user(r, kUser);
  CHECK(r.s().seg[x86::kDs].selector == 0);
  CHECK(r.s().seg[x86::kDs].unusable);
  CHECK(r.s().seg[x86::kEs].selector == kUserDs);
  CHECK(r.s().seg[x86::kFs].selector == 0);
}

TEST_CASE("64-bit: privileged instructions at CPL 3 raise #GP(0)", "[sim][unit][system]") {
  const std::vector<std::pair<const char*, std::vector<uint8_t>>> privileged = {
      {"hlt", {0xF4}},
      {"cli", {0xFA}},
      {"sti", {0xFB}},
      {"mov cr3, rax", {0x0F, 0x22, 0xD8}},
      {"mov rax, cr0", {0x0F, 0x20, 0xC0}},
      {"lgdt [rbx]", {0x0F, 0x01, 0x13}},
      {"lidt [rbx]", {0x0F, 0x01, 0x1B}},
      {"ltr ax", {0x0F, 0x00, 0xD8}},
      {"lldt ax", {0x0F, 0x00, 0xD0}},
      {"lmsw ax", {0x0F, 0x01, 0xF0}},
      {"clts", {0x0F, 0x06}},
      {"invlpg [rbx]", {0x0F, 0x01, 0x3B}},
      {"mov rax, dr7", {0x0F, 0x21, 0xF8}},
      {"rdmsr", {0x0F, 0x32}},
      {"wrmsr", {0x0F, 0x30}},
      {"swapgs", {0x0F, 0x01, 0xF8}},
      {"o64 sysret", {0x48, 0x0F, 0x07}},
  };
  for (const auto& [name, bytes] : privileged) {
    DYNAMIC_SECTION(name) {
      Rig r(BootMode::kLong);
      setup_long(r);
      r.put(kUser, bytes);
      enter_user(r, kUser);
      r.s().gpr[x86::kRbx] = kUserStack - 0x100;
      r.s().gpr[x86::kRax] = 0x28;
      REQUIRE(r.step() == StepStatus::kOk);
      CHECK(handler_vector(r) == vec::kGP);
      CHECK(r.stack(0) == 0);       // error code 0
      CHECK(r.stack(1) == kUser);   // at the instruction
      CHECK(r.s().gdtr.base == kGdt);
      CHECK(r.s().cr3 == platform::kPml4Address);
    }
  }
}

TEST_CASE("64-bit: sgdt, sidt, sldt, str, smsw at CPL 3 do not trap (unless CR4.UMIP)",
          "[sim][unit][system]") {
  Rig r(BootMode::kLong);
  setup_long(r);
  r.put(kUser, {
      0x0F, 0x01, 0x03,  // 60000: sgdt [rbx]
      0x0F, 0x01, 0x0B,  // 60003: sidt [rbx]
  });
  enter_user(r, kUser);
  const uint64_t buf = kUserStack - 0x100;
  r.s().gpr[x86::kRbx] = buf;
  REQUIRE(r.step() == StepStatus::kOk);
  CHECK(r.cpu().cpl() == 3);  // no trap: the "sensitive but unprivileged" instructions
  CHECK(r.peek<uint16_t>(buf) == 0x37);
  CHECK(r.peek<uint64_t>(buf + 2) == kGdt);
  r.s().gpr[x86::kRbx] = buf + 0x10;
  REQUIRE(r.step() == StepStatus::kOk);
  CHECK(r.peek<uint16_t>(buf + 0x10) == 256 * 16 - 1);
  CHECK(r.peek<uint64_t>(buf + 0x12) == kIdt);
  REQUIRE(r.exec(kUser + 0x10, {0x0F, 0x00, 0xC8}) == StepStatus::kOk);  // str eax
  CHECK(r.s().gpr[x86::kRax] == kTssSel);
  r.s().gpr[x86::kRax] = ~0ull;
  REQUIRE(r.exec(kUser + 0x10, {0x0F, 0x00, 0xC0}) == StepStatus::kOk);  // sldt eax
  CHECK(r.s().gpr[x86::kRax] == 0);
  REQUIRE(r.exec(kUser + 0x10, {0x0F, 0x01, 0xE0}) == StepStatus::kOk);  // smsw eax
  CHECK(r.s().gpr[x86::kRax] == (r.s().cr0 & 0xFFFFFFFF));
  CHECK(r.cpu().cpl() == 3);
  CHECK(r.exceptions().empty());

  // With CR4.UMIP they become #GP(0) at CPL > 0.
  r.s().cr4 |= x86::kCr4Umip;
  REQUIRE(r.exec(kUser + 0x10, {0x0F, 0x01, 0xE0}) == StepStatus::kOk);  // smsw eax
  CHECK(handler_vector(r) == vec::kGP);
  CHECK(r.stack(0) == 0);
}

TEST_CASE("64-bit: #PF pushes its error code and CR2 holds the address", "[sim][unit][system]") {
  Rig r(BootMode::kLong);
  setup_long(r);
  r.put(kUser, {0x0F, 0x01, 0x03});  // sgdt [rbx]: a write at CPL 3 to a not-present page
  enter_user(r, kUser);
  r.s().gpr[x86::kRbx] = kNotPresent + 0x10;
  REQUIRE(r.step() == StepStatus::kOk);
  CHECK(handler_vector(r) == vec::kPF);
  CHECK(r.stack(0) == 0x6);  // W/R=1 (write), U/S=1 (CPL 3), P=0
  CHECK(r.stack(1) == kUser);
  CHECK(r.s().cr2 == kNotPresent + 0x10);
  const auto ex = r.exceptions();
  REQUIRE(ex.size() == 1);
  CHECK(ex[0].vector == vec::kPF);
  CHECK(ex[0].error_code == 0x6);
  CHECK(ex[0].cr2 == kNotPresent + 0x10);
}

TEST_CASE("64-bit: #PF on a user read (mov) has error code 4", "[sim][unit][system]") {
  Rig r(BootMode::kLong);
  setup_long(r);
  r.put(kUser, {0x48, 0x8B, 0x03});  // mov rax, [rbx]
  enter_user(r, kUser);
  r.s().gpr[x86::kRbx] = kNotPresent;
  REQUIRE(r.step() == StepStatus::kOk);
  CHECK(handler_vector(r) == vec::kPF);
  CHECK(r.stack(0) == 0x4);
  CHECK(r.s().cr2 == kNotPresent);
}

TEST_CASE("64-bit: int n checks the gate DPL, the frame has the next RIP and no error code",
          "[sim][unit][system]") {
  Rig r(BootMode::kLong);
  setup_long(r);
  SECTION("int 0x80 through a DPL 3 gate") {
    r.put(kUser, {0xCD, 0x80});  // int 0x80
    enter_user(r, kUser);
    REQUIRE(r.step() == StepStatus::kOk);
    CHECK(handler_vector(r) == 0x80);
    CHECK(r.s().gpr[x86::kRsp] == kRsp0 - 40);
    CHECK(r.stack(0) == kUser + 2);  // return address: the next instruction
    CHECK(r.stack(1) == kUserCs);
    CHECK(r.stack(2) == 0x2);        // no RF for software interrupts
    const auto ex = r.exceptions();
    REQUIRE(ex.size() == 1);
    CHECK(ex[0].software == 1);
    const auto rings = r.rings();
    REQUIRE(rings.size() == 1);
    CHECK(rings[0].cause == trace::RingCause::kSoftwareInt);
  }
  SECTION("int 0x81 through a DPL 0 gate: #GP(0x81 * 8 + 2)") {
    r.put(kUser, {0xCD, 0x81});  // int 0x81
    enter_user(r, kUser);
    REQUIRE(r.step() == StepStatus::kOk);
    CHECK(handler_vector(r) == vec::kGP);
    CHECK(r.stack(0) == 0x81 * 8 + 2);
    CHECK(r.stack(1) == kUser);  // the fault is at the int instruction
  }
  SECTION("int3 through a DPL 0 gate: #GP(3 * 8 + 2)") {
    r.put(kUser, {0xCC});  // int3
    enter_user(r, kUser);
    REQUIRE(r.step() == StepStatus::kOk);
    CHECK(handler_vector(r) == vec::kGP);
    CHECK(r.stack(0) == 3 * 8 + 2);
  }
  SECTION("a hardware exception ignores the gate DPL") {
    r.put(kUser, {0x0F, 0x0B});  // ud2
    enter_user(r, kUser);
    REQUIRE(r.step() == StepStatus::kOk);
    CHECK(handler_vector(r) == vec::kUD);
    CHECK(r.s().gpr[x86::kRsp] == kRsp0 - 40);  // no error code for #UD
    CHECK(r.stack(0) == kUser);
  }
}

TEST_CASE("64-bit: same-privilege delivery aligns RSP to 16 and pushes SS:RSP",
          "[sim][unit][system]") {
  Rig r(BootMode::kLong);
  setup_long(r);
  r.s().gpr[x86::kRsp] = kKernelStack + 8;
  REQUIRE(r.exec(kCode, {0x0F, 0x0B}) == StepStatus::kOk);  // ud2 at CPL 0
  CHECK(handler_vector(r) == vec::kUD);
  REQUIRE(r.s().gpr[x86::kRsp] == kKernelStack - 40);
  CHECK(r.stack(0) == kCode);
  CHECK(r.stack(1) == kKernelCs);
  CHECK(r.stack(3) == kKernelStack + 8);  // the old RSP
  CHECK(r.stack(4) == kKernelDs);          // SS (the loader's data selector)
  CHECK(r.rings().empty());
}

TEST_CASE("64-bit: a gate with IST 1 switches to TSS.IST1 even without a privilege change",
          "[sim][unit][system]") {
  Rig r(BootMode::kLong);
  setup_long(r);
  r.poke(kIdt + 16 * vec::kUD, gate(kHandlers + 16 * vec::kUD, kKernelCs, 0xE, 0, 1));
  REQUIRE(r.exec(kCode, {0x0F, 0x0B}) == StepStatus::kOk);  // ud2 at CPL 0
  CHECK(r.s().gpr[x86::kRsp] == kIst1 - 40);
  CHECK(r.stack(3) == kKernelStack);
}

TEST_CASE("#DF: a contributory fault while delivering a contributory fault",
          "[sim][unit][system]") {
  Rig r(BootMode::kLong);
  setup_long(r);
  r.poke(kIdt + 16 * vec::kGP, gate(kHandlers + 16 * vec::kGP, kKernelCs, 0xE, 0, 0, false));
  r.s().gpr[x86::kRcx] = 0x12345678;                         // no such MSR
  REQUIRE(r.exec(kCode, {0x0F, 0x30}) == StepStatus::kOk);  // wrmsr: #GP(0), gate 13 absent
  CHECK(handler_vector(r) == vec::kDF);
  CHECK(r.stack(0) == 0);      // #DF's error code is 0
  CHECK(r.stack(1) == kCode);  // at the faulting instruction
  const auto ex = r.exceptions();
  REQUIRE(ex.size() == 2);
  CHECK(ex[0].vector == vec::kGP);
  CHECK(ex[1].vector == vec::kDF);
}

TEST_CASE("#DF: #PF while delivering #PF, on the IST stack of the #DF gate",
          "[sim][unit][system]") {
  Rig r(BootMode::kLong);
  setup_long(r);
  r.poke<uint64_t>(kTss + 4, kNotPresent + 0x1000);  // RSP0 on a not-present page
  r.poke(kIdt + 16 * vec::kDF, gate(kHandlers + 16 * vec::kDF, kKernelCs, 0xE, 0, 1));
  r.put(kUser, {0x0F, 0x0B});  // ud2: #UD -> #PF pushing its frame -> #PF again -> #DF
  enter_user(r, kUser);
  REQUIRE(r.step() == StepStatus::kOk);
  CHECK(handler_vector(r) == vec::kDF);
  CHECK(r.s().gpr[x86::kRsp] == kIst1 - 48);
  CHECK(r.stack(0) == 0);
  CHECK(r.stack(1) == kUser);
  CHECK(r.stack(2) == kUserCs);
  CHECK(r.s().cr2 == kNotPresent + 0x1000 - 8);
  std::vector<int> vectors;
  for (const auto& e : r.exceptions()) vectors.push_back(e.vector);
  CHECK(vectors == std::vector<int>{vec::kUD, vec::kPF, vec::kDF});
}

TEST_CASE("no IDT: an exception in long mode ends the run in a triple fault",
          "[sim][unit][system]") {
  Rig r(BootMode::kLong, {0x0F, 0x0B});  // ud2 with the VMM's boot state: no IDT
  sim::SimLimits limits;
  limits.max_instructions = 100;
  trace::Recorder rec;
  const sim::SimResult res = r.m.run(limits, &rec);
  CHECK(res.reason == trace::RunEndReason::kTripleFault);
  CHECK_THAT(res.detail, Catch::Contains("while delivering #DF"));
  CHECK_THAT(res.detail, Catch::Contains("#UD"));
}

// [SECTION] Flags: IF and IOPL by privilege

TEST_CASE("iretq and popfq change IF and IOPL only with enough privilege",
          "[sim][unit][system]") {
  Rig r(BootMode::kLong);
  setup_long(r);
  auto iretq_same_level = [&](uint64_t image) {
    const bool user = r.cpu().cpl() == 3;
    const uint64_t frame = (user ? kUserStack : kKernelStack) - 0x80;
    r.poke(frame + 0, uint64_t{kUser + 0x100});
    r.poke(frame + 8, uint64_t{user ? kUserCs : kKernelCs});
    r.poke(frame + 16, image);
    r.poke(frame + 24, frame + 0x40);
    r.poke(frame + 32, uint64_t{user ? kUserDs : kKernelDs});
    r.s().gpr[x86::kRsp] = frame;
    REQUIRE(r.exec(user ? kUser : kCode, {0x48, 0xCF}) == StepStatus::kOk);  // iretq
    REQUIRE(r.s().rip == kUser + 0x100);
  };
  SECTION("iretq at CPL 0 sets IF and IOPL") {
    iretq_same_level(0x3202);
    CHECK(r.cpu().flag(x86::kIF));
    CHECK((r.s().rflags & x86::kIOPL) == x86::kIOPL);
  }
  SECTION("iretq at CPL 3 with IOPL 0 changes neither") {
    enter_user(r, kUser);
    iretq_same_level(0x3202 | x86::kCF);
    CHECK_FALSE(r.cpu().flag(x86::kIF));
    CHECK((r.s().rflags & x86::kIOPL) == 0);
    CHECK(r.cpu().flag(x86::kCF));  // the arithmetic flags do change
  }
  SECTION("iretq at CPL 3 with IOPL 3 changes IF but not IOPL") {
    enter_user(r, kUser, 0x3002);
    iretq_same_level(0x0202);
    CHECK(r.cpu().flag(x86::kIF));
    CHECK((r.s().rflags & x86::kIOPL) == x86::kIOPL);
  }
  SECTION("popfq at CPL 3 with IOPL 0 changes neither IF nor IOPL") {
    enter_user(r, kUser);
    r.s().gpr[x86::kRsp] = kUserStack - 8;
    r.poke(kUserStack - 8, uint64_t{0x3202 | x86::kCF});
    REQUIRE(r.exec(kUser, {0x9D}) == StepStatus::kOk);  // popfq
    CHECK_FALSE(r.cpu().flag(x86::kIF));
    CHECK((r.s().rflags & x86::kIOPL) == 0);
    CHECK(r.cpu().flag(x86::kCF));
  }
  SECTION("popfq at CPL 0 changes both") {
    r.s().gpr[x86::kRsp] = kKernelStack - 8;
    r.poke(kKernelStack - 8, uint64_t{0x3202});
    REQUIRE(r.exec(kCode, {0x9D}) == StepStatus::kOk);  // popfq
    CHECK(r.cpu().flag(x86::kIF));
    CHECK((r.s().rflags & x86::kIOPL) == x86::kIOPL);
  }
  SECTION("cli at CPL 3 works when IOPL is 3") {
    enter_user(r, kUser, 0x3202);
    REQUIRE(r.exec(kUser, {0xFA}) == StepStatus::kOk);  // cli
    CHECK(r.cpu().cpl() == 3);
    CHECK_FALSE(r.cpu().flag(x86::kIF));
  }
}

// [SECTION] SYSCALL / SYSRET / SWAPGS

TEST_CASE("syscall and sysretq make a round trip between CPL 3 and CPL 0",
          "[sim][unit][system]") {
  Rig r(BootMode::kLong);
  setup_long(r);
  r.s().star = (uint64_t{0x10} << 48) | (uint64_t{kKernelCs} << 32);  // sysret 0x10+16|3, +8|3
  r.s().lstar = kHandlers + 0x1000;
  r.s().fmask = x86::kIF;
  r.put(kHandlers + 0x1000, {0x48, 0x0F, 0x07});  // sysretq
  r.put(kUser, {0x0F, 0x05});                      // syscall
  enter_user(r, kUser, 0x202);
  REQUIRE(r.step() == StepStatus::kOk);
  CHECK(r.cpu().cpl() == 0);
  CHECK(r.s().seg[x86::kCs].selector == kKernelCs);
  CHECK(r.s().seg[x86::kSs].selector == kKernelDs);
  CHECK(r.s().rip == kHandlers + 0x1000);
  CHECK(r.s().gpr[x86::kRcx] == kUser + 2);
  CHECK(r.s().gpr[x86::kR11] == 0x202);
  CHECK_FALSE(r.cpu().flag(x86::kIF));  // masked by FMASK
  REQUIRE(r.step() == StepStatus::kOk);
  CHECK(r.cpu().cpl() == 3);
  CHECK(r.s().seg[x86::kCs].selector == kUserCs);
  CHECK(r.s().seg[x86::kSs].selector == kUserDs);
  CHECK(r.s().rip == kUser + 2);
  CHECK(r.cpu().flag(x86::kIF));
  CHECK(r.cpu().mode64());
  const auto rings = r.rings();
  REQUIRE(rings.size() == 2);
  CHECK(rings[0].cause == trace::RingCause::kSyscall);
  CHECK(rings[0].from_cpl == 3);
  CHECK(rings[1].cause == trace::RingCause::kSysret);
  CHECK(rings[1].to_cpl == 3);
}

TEST_CASE("syscall is #UD with EFER.SCE = 0, swapgs swaps the GS bases at CPL 0",
          "[sim][unit][system]") {
  Rig r(BootMode::kLong);
  setup_long(r);
  r.s().efer &= ~x86::kEferSce;
  REQUIRE(r.exec(kCode, {0x0F, 0x05}) == StepStatus::kOk);  // syscall
  CHECK(handler_vector(r) == vec::kUD);
  r.s().gpr[x86::kRsp] = kKernelStack;
  r.s().seg[x86::kGs].base = 0x1111;
  r.s().kernel_gs_base = 0x2222;
  REQUIRE(r.exec(kCode, {0x0F, 0x01, 0xF8}) == StepStatus::kOk);  // swapgs
  CHECK(r.s().seg[x86::kGs].base == 0x2222);
  CHECK(r.s().kernel_gs_base == 0x1111);
}

// [SECTION] Segment loads

TEST_CASE("load_segment: null, limit, type, privilege and present checks",
          "[sim][unit][system]") {
  Rig r(BootMode::kProtected);
  setup_protected(r);
  sim::Cpu& cpu = r.cpu();
  using x86::kDs;
  using x86::kSs;
  using sim::load_segment;

  SECTION("null selectors: fine for DS, #GP(0) for SS") {
    REQUIRE_NO_FAULT(load_segment(cpu, kDs, 0));
    CHECK(r.s().seg[kDs].unusable);
    REQUIRE_FAULT(load_segment(cpu, kSs, 0), vec::kGP, 0);
    REQUIRE_FAULT(load_segment(cpu, kSs, 3), vec::kGP, 0);
    // A later use of the null DS faults with #GP(0).
    REQUIRE_FAULT(cpu.read(kDs, 0, 4), vec::kGP, 0);
  }
  SECTION("beyond the GDT limit: #GP(selector)") {
    REQUIRE_FAULT(load_segment(cpu, kDs, 0x100), vec::kGP, 0x100);
    REQUIRE_FAULT(load_segment(cpu, kDs, 0x103), vec::kGP, 0x100);  // RPL is not in the code
    REQUIRE_FAULT(load_segment(cpu, kDs, 0x70), vec::kGP, 0x70);    // just past the limit
  }
  SECTION("an LDT selector without an LDT, then with one") {
    REQUIRE_FAULT(load_segment(cpu, kDs, 0x0F), vec::kGP, 0x0C);
    r.s().gpr[x86::kRax] = kLdtSel;
    REQUIRE(r.exec(kCode, {0x0F, 0x00, 0xD0}) == StepStatus::kOk);  // lldt ax
    CHECK(r.s().ldtr.base == kLdt);
    CHECK(r.s().ldtr.selector == kLdtSel);
    REQUIRE_NO_FAULT(load_segment(cpu, kDs, 0x0F));  // LDT entry 1, RPL 3, DPL 3
    CHECK(r.s().seg[kDs].base == 0x70000);
    REQUIRE_FAULT(load_segment(cpu, kDs, 0x14), vec::kGP, 0x14);  // past the LDT limit
  }
  SECTION("types: DS takes data or readable code, SS only writable data") {
    REQUIRE_FAULT(load_segment(cpu, kDs, kExecOnly), vec::kGP, kExecOnly);
    REQUIRE_NO_FAULT(load_segment(cpu, kDs, kKernelCs));  // readable code
    REQUIRE_FAULT(load_segment(cpu, kSs, kKernelCs), vec::kGP, kKernelCs);
    REQUIRE_FAULT(load_segment(cpu, kDs, kTssSel), vec::kGP, kTssSel);  // a system segment
  }
  SECTION("privilege: DPL >= max(CPL, RPL) for data; SS needs RPL = DPL = CPL") {
    REQUIRE_FAULT(load_segment(cpu, kDs, kData1 | 3), vec::kGP, kData1);  // DPL 1 < RPL 3
    REQUIRE_NO_FAULT(load_segment(cpu, kDs, kData1 | 1));
    REQUIRE_FAULT(load_segment(cpu, kSs, kUserDs), vec::kGP, kUserDs & 0xFFFC);  // RPL 3 != 0
    REQUIRE_FAULT(load_segment(cpu, kSs, kData1 | 0), vec::kGP, kData1);        // DPL 1 != 0
    set_cpl3_protected(r);
    REQUIRE_FAULT(load_segment(cpu, kDs, kKernelDs | 3), vec::kGP, kKernelDs);  // DPL 0 < CPL
    REQUIRE_NO_FAULT(load_segment(cpu, kDs, kConforming | 3));  // conforming code: no check
    REQUIRE_NO_FAULT(load_segment(cpu, kDs, kUserDs));
    REQUIRE_FAULT(load_segment(cpu, kSs, kReadOnly3 | 3), vec::kGP, kReadOnly3);
    REQUIRE_NO_FAULT(load_segment(cpu, kSs, kUserDs));
  }
  SECTION("not present: #NP for DS, #SS for SS") {
    REQUIRE_FAULT(load_segment(cpu, kDs, kAbsentData), vec::kNP, kAbsentData);
    REQUIRE_FAULT(load_segment(cpu, kSs, kAbsentData), vec::kSS, kAbsentData);
  }
  SECTION("a load sets the accessed bit and fills the hidden part") {
    CHECK(r.peek<uint8_t>(kGdt + 0x10 + 5) == 0x92);
    REQUIRE_NO_FAULT(load_segment(cpu, kDs, kKernelDs));
    CHECK(r.peek<uint8_t>(kGdt + 0x10 + 5) == 0x93);
    CHECK(r.s().seg[kDs].type == 0x3);
    CHECK(r.s().seg[kDs].limit == 0xFFFFFFFF);  // 0xFFFFF pages of 4 KiB (G = 1)
    REQUIRE_NO_FAULT(load_segment(cpu, x86::kEs, kSmallData));
    const Segment& es = r.s().seg[x86::kEs];
    CHECK(es.base == 0x12345);
    CHECK(es.limit == 0x1234);
    CHECK(es.g == 0);
    CHECK(es.db == 1);
    CHECK(es.dpl == 0);
    REQUIRE_FAULT(cpu.read(x86::kEs, 0x1233, 4), vec::kGP, 0);  // beyond the limit
  }
  SECTION("a fault leaves the segment register unchanged") {
    const Segment before = r.s().seg[kDs];
    REQUIRE_FAULT(load_segment(cpu, kDs, kAbsentData), vec::kNP, kAbsentData);
    CHECK(r.s().seg[kDs].selector == before.selector);
    CHECK(r.s().seg[kDs].base == before.base);
  }
}

TEST_CASE("load_segment: real mode and 64-bit mode rules", "[sim][unit][system]") {
  SECTION("real mode: base = selector << 4, the limit stays") {
    Rig r(BootMode::kReal);
    REQUIRE_NO_FAULT(sim::load_segment(r.cpu(), x86::kDs, 0x1234));
    CHECK(r.s().seg[x86::kDs].base == 0x12340);
    CHECK(r.s().seg[x86::kDs].limit == 0xFFFF);
  }
  SECTION("64-bit mode: a null SS at CPL 0 is allowed, not at CPL 3") {
    Rig r(BootMode::kLong);
    setup_long(r);
    REQUIRE_NO_FAULT(sim::load_segment(r.cpu(), x86::kSs, 0));
    r.s().seg[x86::kCs] = code_segment(kUserCs, 3, true);
    REQUIRE_FAULT(sim::load_segment(r.cpu(), x86::kSs, 3), vec::kGP, 0);
  }
}

TEST_CASE("mov Sreg, lss and mov r, Sreg go through the same checks", "[sim][unit][system]") {
  Rig r(BootMode::kProtected);
  setup_protected(r);
  r.s().gpr[x86::kRax] = kAbsentData;
  REQUIRE(r.exec(kCode, {0x8E, 0xD8}) == StepStatus::kOk);  // mov ds, ax: #NP(0x38)
  CHECK(r.s().rip == kHandlers + 16 * vec::kNP);
  CHECK(r.stack(0, 4) == kAbsentData);
  r.s().gpr[x86::kRsp] = kKernelStack;
  // lss esp, [ebx]: m16:32 = 0x10:0x12340
  r.poke<uint32_t>(0x9000, 0x12340);
  r.poke<uint16_t>(0x9004, kKernelDs);
  r.s().gpr[x86::kRbx] = 0x9000;
  REQUIRE(r.exec(kCode, {0x0F, 0xB2, 0x23}) == StepStatus::kOk);
  CHECK(r.s().seg[x86::kSs].selector == kKernelDs);
  CHECK(r.s().gpr[x86::kRsp] == 0x12340);
  r.s().gpr[x86::kRax] = 0xFFFFFFFF;
  REQUIRE(r.exec(kCode, {0x8C, 0xD0}) == StepStatus::kOk);  // mov eax, ss
  CHECK(r.s().gpr[x86::kRax] == kKernelDs);
}

// [SECTION] Far transfers and call gates (32-bit protected mode)

TEST_CASE("call gate from CPL 3 to CPL 0 with parameters, retf 8 back to CPL 3",
          "[sim][unit][system]") {
  Rig r(BootMode::kProtected);
  setup_protected(r);
  set_cpl3_protected(r);
  r.s().seg[x86::kDs] = data_segment(kKernelDs, 0);  // will be nulled by the return to CPL 3
  r.s().seg[x86::kEs] = data_segment(kUserDs, 3);
  const uint64_t user_sp = kUserStack - 8;
  r.poke<uint32_t>(user_sp, 0x2222);      // the parameters: [esp] = last pushed
  r.poke<uint32_t>(user_sp + 4, 0x1111);
  r.s().gpr[x86::kRsp] = user_sp;
  r.put(kUser, {0x9A, 0x00, 0x00, 0x00, 0x00, kCallGate | 3, 0x00});  // call 0x33:0
  r.put(kGateTarget, {0xCA, 0x08, 0x00});                            // retf 8
  r.s().rip = kUser;
  REQUIRE(r.step() == StepStatus::kOk);
  CHECK(r.cpu().cpl() == 0);
  CHECK(r.s().seg[x86::kCs].selector == kKernelCs);
  CHECK(r.s().seg[x86::kSs].selector == kKernelDs);  // SS0 from the TSS
  CHECK(r.s().rip == kGateTarget);
  REQUIRE(r.s().gpr[x86::kRsp] == kRsp0 - 24);        // ESP0 from the TSS
  CHECK(r.stack(0, 4) == kUser + 7);
  CHECK(r.stack(1, 4) == kUserCs);
  CHECK(r.stack(2, 4) == 0x2222);  // parameters copied in the same order
  CHECK(r.stack(3, 4) == 0x1111);
  CHECK(r.stack(4, 4) == user_sp);
  CHECK(r.stack(5, 4) == kUserDs);
  REQUIRE(r.rings().size() == 1);
  CHECK(r.rings()[0].cause == trace::RingCause::kFarCall);

  REQUIRE(r.step() == StepStatus::kOk);  // retf 8
  CHECK(r.cpu().cpl() == 3);
  CHECK(r.s().rip == kUser + 7);
  CHECK(r.s().seg[x86::kSs].selector == kUserDs);
  CHECK(r.s().gpr[x86::kRsp] == user_sp + 8);  // the parameters are released
  CHECK(r.s().seg[x86::kDs].selector == 0);     // DPL 0 data: not usable at CPL 3
  CHECK(r.s().seg[x86::kEs].selector == kUserDs);
  REQUIRE(r.rings().size() == 2);
  CHECK(r.rings()[1].cause == trace::RingCause::kFarReturn);
}

TEST_CASE("far jmp/call privilege rules for code segments and gates", "[sim][unit][system]") {
  Rig r(BootMode::kProtected);
  setup_protected(r);
  set_cpl3_protected(r);
  SECTION("jmp to a non-conforming DPL 0 segment from CPL 3: #GP(selector)") {
    REQUIRE(r.exec(kUser, {0xEA, 0x00, 0x90, 0x00, 0x00, 0x08, 0x00}) == StepStatus::kOk);
    CHECK(r.s().rip == kHandlers + 16 * vec::kGP);
    CHECK(r.stack(0, 4) == kKernelCs);
  }
  SECTION("jmp to a conforming DPL 0 segment from CPL 3 keeps CPL 3") {
    REQUIRE(r.exec(kUser, {0xEA, 0x00, 0x90, 0x00, 0x00, kConforming, 0x00}) ==
            StepStatus::kOk);
    CHECK(r.s().rip == 0x9000);
    CHECK(r.s().seg[x86::kCs].selector == (kConforming | 3));
    CHECK(r.cpu().cpl() == 3);
  }
  SECTION("jmp through a call gate to a more privileged segment: #GP(code selector)") {
    REQUIRE(r.exec(kUser, {0xEA, 0x00, 0x00, 0x00, 0x00, kCallGate | 3, 0x00}) ==
            StepStatus::kOk);
    CHECK(r.s().rip == kHandlers + 16 * vec::kGP);
    CHECK(r.stack(0, 4) == kKernelCs);
  }
  SECTION("a null selector: #GP(0); a data segment: #GP(selector)") {
    REQUIRE(r.exec(kUser, {0xEA, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00}) == StepStatus::kOk);
    CHECK(r.stack(0, 4) == 0);
    r.s().gpr[x86::kRsp] = kRsp0;
    set_cpl3_protected(r);
    REQUIRE(r.exec(kUser, {0xEA, 0x00, 0x00, 0x00, 0x00, kUserDs, 0x00}) == StepStatus::kOk);
    CHECK(r.stack(0, 4) == (kUserDs & 0xFFFC));
  }
}

TEST_CASE("32-bit: int through a DPL 3 gate from CPL 3 switches to SS0:ESP0, iretd returns",
          "[sim][unit][system]") {
  Rig r(BootMode::kProtected);
  setup_protected(r);
  set_cpl3_protected(r);
  r.put(kUser, {0xCD, 0x40});                   // int 0x40
  r.put(kHandlers + 16 * 0x40, {0xCF});         // iretd
  r.s().rip = kUser;
  REQUIRE(r.step() == StepStatus::kOk);
  CHECK(r.cpu().cpl() == 0);
  CHECK(r.s().seg[x86::kSs].selector == kKernelDs);
  REQUIRE(r.s().gpr[x86::kRsp] == kRsp0 - 20);
  CHECK(r.stack(0, 4) == kUser + 2);
  CHECK(r.stack(1, 4) == kUserCs);
  CHECK(r.stack(3, 4) == kUserStack);
  CHECK(r.stack(4, 4) == kUserDs);
  REQUIRE(r.step() == StepStatus::kOk);  // iretd: back to CPL 3 with SS:ESP popped
  CHECK(r.cpu().cpl() == 3);
  CHECK(r.s().rip == kUser + 2);
  CHECK(r.s().gpr[x86::kRsp] == kUserStack);
  CHECK(r.s().seg[x86::kSs].selector == kUserDs);
}

TEST_CASE("64-bit call gate from CPL 3 to CPL 0 on RSP0, retfq back", "[sim][unit][system]") {
  Rig r(BootMode::kLong);
  setup_long(r);
  constexpr uint16_t kGate64 = 0x38;  // 16-byte 64-bit call gate, DPL 3 -> 0x08:target
  const uint64_t target = kHandlers + 0x2000;
  r.poke(kGdt + kGate64, gate(target, kKernelCs, 0xC, 3));
  r.poke(kGdt + kGate64 + 8, target >> 32);
  r.s().gdtr.limit = 0x47;
  r.put(target, {0x48, 0xCB});  // retfq
  const uint64_t ptr = kUserStack - 0x100;
  r.poke<uint32_t>(ptr, 0xDEAD);  // the offset is ignored for a gate
  r.poke<uint16_t>(ptr + 4, kGate64 | 3);
  r.put(kUser, {0xFF, 0x1B});  // call far [rbx]   (m16:32)
  enter_user(r, kUser, 0x2, kUserStack - 8);
  r.s().gpr[x86::kRbx] = ptr;
  REQUIRE(r.step() == StepStatus::kOk);
  CHECK(r.cpu().cpl() == 0);
  CHECK(r.s().rip == target);
  CHECK(r.s().seg[x86::kSs].selector == 0);  // NULL SS, RPL 0
  REQUIRE(r.s().gpr[x86::kRsp] == kRsp0 - 32);
  CHECK(r.stack(0) == kUser + 2);  // 8-byte pushes whatever the operand size (64-bit gate)
  CHECK(r.stack(1) == kUserCs);
  CHECK(r.stack(2) == kUserStack - 8);
  CHECK(r.stack(3) == kUserDs);
  REQUIRE(r.step() == StepStatus::kOk);  // retfq: back to CPL 3, SS:RSP popped
  CHECK(r.cpu().cpl() == 3);
  CHECK(r.s().rip == kUser + 2);
  CHECK(r.s().gpr[x86::kRsp] == kUserStack - 8);
  CHECK(r.s().seg[x86::kSs].selector == kUserDs);
  const auto rings = r.rings();
  REQUIRE(rings.size() == 2);
  CHECK(rings[0].cause == trace::RingCause::kFarCall);
  CHECK(rings[1].cause == trace::RingCause::kFarReturn);
}

// [SECTION] System registers

TEST_CASE("ltr marks the TSS busy, str and sldt read TR and LDTR", "[sim][unit][system]") {
  Rig r(BootMode::kLong);
  setup_long(r);
  r.poke(kGdt + 0x28, descriptor(static_cast<uint32_t>(kTss), 0x67, 0x9, 0, false, true, false,
                                 false, false));  // available 64-bit TSS
  r.s().tr = Segment{};
  r.s().gpr[x86::kRax] = kTssSel;
  REQUIRE(r.exec(kCode, {0x0F, 0x00, 0xD8}) == StepStatus::kOk);  // ltr ax
  CHECK(r.s().tr.selector == kTssSel);
  CHECK(r.s().tr.base == kTss);
  CHECK(r.s().tr.limit == 0x67);
  CHECK(r.s().tr.type == 0xB);
  CHECK(r.peek<uint8_t>(kGdt + 0x28 + 5) == 0x8B);  // busy in the GDT
  // Loading a busy TSS again: #GP(selector).
  REQUIRE(r.exec(kCode, {0x0F, 0x00, 0xD8}) == StepStatus::kOk);
  CHECK(handler_vector(r) == vec::kGP);
  CHECK(r.stack(0) == kTssSel);
}

TEST_CASE("control registers: CR0.PG with EFER.LME activates long mode, reserved bits fault",
          "[sim][unit][system]") {
  Rig r(BootMode::kProtected);
  setup_protected(r);
  const std::vector<uint8_t> mov_cr0_eax = {0x0F, 0x22, 0xC0};
  const std::vector<uint8_t> mov_cr4_eax = {0x0F, 0x22, 0xE0};
  SECTION("PG without PE: #GP(0)") {
    r.s().gpr[x86::kRax] = 0x80000010;
    REQUIRE(r.exec(kCode, mov_cr0_eax) == StepStatus::kOk);
    CHECK(r.s().rip == kHandlers + 16 * vec::kGP);
    CHECK(r.s().cr0 == 0x11);
  }
  SECTION("LME without PAE: #GP(0); with PAE: LMA = 1, compatibility mode") {
    r.s().gpr[x86::kRcx] = x86::kMsrEfer;
    r.s().gpr[x86::kRax] = x86::kEferLme;
    r.s().gpr[x86::kRdx] = 0;
    REQUIRE(r.exec(kCode, {0x0F, 0x30}) == StepStatus::kOk);  // wrmsr
    CHECK(r.s().efer == x86::kEferLme);
    r.s().gpr[x86::kRax] = 0x80000011;
    REQUIRE(r.exec(kCode, mov_cr0_eax) == StepStatus::kOk);
    CHECK(r.s().rip == kHandlers + 16 * vec::kGP);
    r.s().gpr[x86::kRsp] = kKernelStack;
    r.s().gpr[x86::kRax] = x86::kCr4Pae;
    REQUIRE(r.exec(kCode, mov_cr4_eax) == StepStatus::kOk);
    r.s().cr3 = 0x1000;
    r.s().gpr[x86::kRax] = 0x80000011;
    REQUIRE(r.exec(kCode, mov_cr0_eax) == StepStatus::kOk);
    CHECK(r.s().rip == kCode + 3);
    CHECK(r.s().efer == (x86::kEferLme | x86::kEferLma));
    CHECK(r.s().mode() == trace::CpuMode::kCompat32);
    // (No page tables at 0x1000: the test stops here.)
  }
  SECTION("an unimplemented CR4 bit (OSFXSR) and an unknown MSR: #GP(0)") {
    r.s().gpr[x86::kRax] = x86::kCr4Osfxsr;
    REQUIRE(r.exec(kCode, mov_cr4_eax) == StepStatus::kOk);
    CHECK(r.s().rip == kHandlers + 16 * vec::kGP);
    CHECK(r.s().cr4 == 0);
    r.s().gpr[x86::kRsp] = kKernelStack;
    r.s().gpr[x86::kRcx] = 0x1B;  // IA32_APIC_BASE: not modelled
    REQUIRE(r.exec(kCode, {0x0F, 0x32}) == StepStatus::kOk);  // rdmsr
    CHECK(r.s().rip == kHandlers + 16 * vec::kGP);
  }
  SECTION("lmsw sets PE bits but cannot clear PE") {
    r.s().gpr[x86::kRax] = 0x0E;  // MP | EM | TS, PE = 0
    REQUIRE(r.exec(kCode, {0x0F, 0x01, 0xF0}) == StepStatus::kOk);  // lmsw ax
    CHECK((r.s().cr0 & 0xF) == 0xF);
    REQUIRE(r.exec(kCode, {0x0F, 0x06}) == StepStatus::kOk);  // clts
    CHECK((r.s().cr0 & x86::kCr0Ts) == 0);
  }
  SECTION("wrmsr FS_BASE sets the hidden FS base; rdmsr reads it") {
    r.s().gpr[x86::kRcx] = x86::kMsrFsBase;
    r.s().gpr[x86::kRax] = 0x5000;
    r.s().gpr[x86::kRdx] = 0x1;
    REQUIRE(r.exec(kCode, {0x0F, 0x30}) == StepStatus::kOk);
    CHECK(r.s().seg[x86::kFs].base == 0x100005000);
    r.s().gpr[x86::kRax] = r.s().gpr[x86::kRdx] = 0;
    REQUIRE(r.exec(kCode, {0x0F, 0x32}) == StepStatus::kOk);
    CHECK(r.s().gpr[x86::kRax] == 0x5000);
    CHECK(r.s().gpr[x86::kRdx] == 0x1);
  }
}

TEST_CASE("EFER: LME is fixed while paging is on, LMA is read-only", "[sim][unit][system]") {
  Rig r(BootMode::kLong);
  setup_long(r);
  const uint64_t efer = r.s().efer;  // SCE | LME | LMA from the loader
  auto wrmsr_efer = [&](uint64_t v) {
    r.s().gpr[x86::kRsp] = kKernelStack;
    r.s().gpr[x86::kRcx] = x86::kMsrEfer;
    r.s().gpr[x86::kRax] = v & 0xFFFFFFFF;
    r.s().gpr[x86::kRdx] = v >> 32;
    REQUIRE(r.exec(kCode, {0x0F, 0x30}) == StepStatus::kOk);  // wrmsr
  };
  wrmsr_efer(x86::kEferSce);  // clear LME with CR0.PG = 1: #GP(0)
  CHECK(handler_vector(r) == vec::kGP);
  CHECK(r.s().efer == efer);
  wrmsr_efer(x86::kEferSce | x86::kEferLme | x86::kEferNxe);  // LMA written as 0: ignored
  CHECK(r.s().rip == kCode + 2);
  CHECK(r.s().efer == (efer | x86::kEferNxe));
  wrmsr_efer(efer | (1ull << 2));  // a reserved bit
  CHECK(handler_vector(r) == vec::kGP);
}

TEST_CASE("cpuid is a fixed table, rdtsc honours CR4.TSD", "[sim][unit][system]") {
  Rig r(BootMode::kLong);
  setup_long(r);
  r.s().gpr[x86::kRax] = 0;
  REQUIRE(r.exec(kCode, {0x0F, 0xA2}) == StepStatus::kOk);
  char vendor[13] = {};
  std::memcpy(vendor + 0, &r.s().gpr[x86::kRbx], 4);
  std::memcpy(vendor + 4, &r.s().gpr[x86::kRdx], 4);
  std::memcpy(vendor + 8, &r.s().gpr[x86::kRcx], 4);
  CHECK(std::string(vendor) == "TrapScopeSim");
  r.s().gpr[x86::kRax] = 0x80000001;
  REQUIRE(r.exec(kCode, {0x0F, 0xA2}) == StepStatus::kOk);
  CHECK((r.s().gpr[x86::kRdx] & (1u << 29)) != 0);  // LM
  CHECK((r.s().gpr[x86::kRdx] & (1u << 11)) != 0);  // SYSCALL
  r.s().gpr[x86::kRax] = 1;
  REQUIRE(r.exec(kCode, {0x0F, 0xA2}) == StepStatus::kOk);
  CHECK(((r.s().gpr[x86::kRax] >> 8) & 0xF) == 6);  // family 6
  CHECK((r.s().gpr[x86::kRdx] & 1) == 0);          // no FPU

  r.s().tsc = 0x123456789;
  REQUIRE(r.exec(kCode, {0x0F, 0x31}) == StepStatus::kOk);  // rdtsc
  CHECK(r.s().gpr[x86::kRax] == 0x23456789);
  CHECK(r.s().gpr[x86::kRdx] == 0x1);
  r.s().cr4 |= x86::kCr4Tsd;
  r.put(kUser, {0x0F, 0x31});
  enter_user(r, kUser);
  REQUIRE(r.step() == StepStatus::kOk);
  CHECK(handler_vector(r) == vec::kGP);
}

// [SECTION] LAR, LSL, VERR, VERW

TEST_CASE("lar, lsl, verr, verw set ZF by visibility at the CPL and RPL", "[sim][unit][system]") {
  Rig r(BootMode::kProtected);
  setup_protected(r);
  const std::vector<uint8_t> lar = {0x0F, 0x02, 0xC1};   // lar eax, ecx
  const std::vector<uint8_t> lsl = {0x0F, 0x03, 0xC1};   // lsl eax, ecx
  const std::vector<uint8_t> verr = {0x0F, 0x00, 0xE1};  // verr cx
  const std::vector<uint8_t> verw = {0x0F, 0x00, 0xE9};  // verw cx
  const uint64_t at = kUser;
  auto run = [&](const std::vector<uint8_t>& insn, uint16_t selector) {
    r.s().gpr[x86::kRcx] = selector;
    r.s().gpr[x86::kRax] = 0xDEADBEEF;
    REQUIRE(r.exec(at, insn) == StepStatus::kOk);
    REQUIRE(r.s().rip == at + insn.size());  // never a fault
    return r.cpu().flag(x86::kZF);
  };
  SECTION("at CPL 0") {
    CHECK(run(lar, kUserDs));
    CHECK(r.s().gpr[x86::kRax] == 0x00C0F300);  // G, D/B | P, DPL 3, S, type 3 (SDM LAR)
    CHECK(run(lar, kKernelDs));
    CHECK(run(lar, kTssSel));        // a busy TSS is visible to lar
    CHECK(run(lsl, kTssSel));
    CHECK(r.s().gpr[x86::kRax] == 0x67);
    CHECK(run(lsl, kUserDs));
    CHECK(r.s().gpr[x86::kRax] == 0xFFFFFFFF);
    CHECK_FALSE(run(lsl, kCallGate));  // gates have no limit
    CHECK(r.s().gpr[x86::kRax] == 0xDEADBEEF);
    CHECK_FALSE(run(lar, 0));        // null
    CHECK_FALSE(run(lar, 0x1000));   // beyond the GDT limit
    CHECK(run(verw, kKernelDs));
    CHECK_FALSE(run(verr, kExecOnly));
    CHECK(run(verr, kKernelCs));     // readable code
    CHECK_FALSE(run(verw, kKernelCs));
    CHECK_FALSE(run(verr, kTssSel));
  }
  SECTION("at CPL 3") {
    set_cpl3_protected(r);
    CHECK_FALSE(run(lar, kKernelDs | 3));  // DPL 0 < CPL 3: invisible
    CHECK(r.s().gpr[x86::kRax] == 0xDEADBEEF);
    CHECK_FALSE(run(lsl, kTssSel | 3));
    CHECK(run(lar, kCallGate | 3));        // the DPL 3 call gate
    CHECK(run(lar, kConforming | 3));      // conforming code: always visible
    CHECK(run(verr, kConforming | 3));
    CHECK(run(verr, kReadOnly3 | 3));
    CHECK_FALSE(run(verw, kReadOnly3 | 3));
    CHECK(run(verw, kUserDs));
    CHECK_FALSE(run(verw, kKernelDs | 3));
  }
}

// [SECTION] The guests: the same console output as on KVM (tests/golden/*.golden)

namespace {

// The console text from a golden trace's `console: "..."` line.
std::string golden_console(const std::string& name) {
  std::ifstream in(std::string(TRAPSCOPE_GOLDEN_DIR) + "/" + name + ".golden");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("console: \"", 0) != 0) continue;
    std::string out;
    for (size_t i = 10; i < line.size() && line[i] != '"'; ++i) {
      if (line[i] != '\\') {
        out += line[i];
        continue;
      }
      const char c = line[++i];
      if (c == 'n') out += '\n';
      else if (c == 't') out += '\t';
      else if (c == 'x') {
        out += static_cast<char>(std::stoi(line.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else out += c;
    }
    return out;
  }
  FAIL("no console line in " << name << ".golden");
  return {};
}

struct GuestRun {
  sim::SimResult result;
  std::string console;
  CpuState state;
};

GuestRun run_guest(const std::string& name) {
  const auto g = guests::find(name);
  REQUIRE(g.has_value());
  sim::SimConfig c;
  c.mode = *platform::parse_boot_mode(g->mode);
  sim::SimMachine m(c);
  m.load(g->image);
  sim::SimLimits limits;
  limits.max_instructions = 20'000'000;
  GuestRun run;
  run.result = m.run(limits, nullptr);
  run.console = m.devices().console.text();
  run.state = m.cpu().s;
  return run;
}

}  // namespace

TEST_CASE("guest boot runs on SimMachine as on KVM", "[sim][unit][system][guests]") {
  const GuestRun run = run_guest("boot");
  INFO(run.result.detail);
  CHECK(run.result.reason == trace::RunEndReason::kHalted);
  CHECK(run.console == golden_console("boot"));
  // As the golden's final state: cr0=e0000011 cr3=20000 cr4=20 efer=500 cs=18 ss=10 cpl=0.
  CHECK(run.state.cr0 == 0xE0000011);
  CHECK(run.state.cr3 == 0x20000);
  CHECK(run.state.cr4 == 0x20);
  CHECK(run.state.efer == 0x500);
  CHECK(run.state.seg[x86::kCs].selector == 0x18);
  CHECK(run.state.seg[x86::kSs].selector == 0x10);
}

TEST_CASE("guest rings runs on SimMachine as on KVM", "[sim][unit][system][guests]") {
  const GuestRun run = run_guest("rings");
  INFO(run.result.detail);
  CHECK(run.result.reason == trace::RunEndReason::kGuestExit);
  CHECK(run.result.exit_code == 0);
  CHECK(run.console == golden_console("rings"));
  // As the golden's final state: cr0=80000011 cr3=20000 cr4=20 efer=501 cs=8 ss=0 cpl=0.
  CHECK(run.state.cr0 == 0x80000011);
  CHECK(run.state.cr3 == 0x20000);
  CHECK(run.state.efer == 0x501);
  CHECK(run.state.seg[x86::kCs].selector == 0x08);
  CHECK(run.state.seg[x86::kSs].selector == 0);
}
