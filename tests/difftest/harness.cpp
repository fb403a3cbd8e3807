// tests/difftest/harness.cpp — see harness.hpp.
#include "tests/difftest/harness.hpp"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

namespace trapscope::difftest {
namespace {

using trace::RunEndReason;

constexpr uint64_t kGdtAddress = 0x600;
constexpr uint16_t kUserCode = 0x20 | 3, kUserData = 0x18 | 3;
constexpr uint64_t kMemoryBytes = 4ull << 20;
constexpr const char* kRegNames[16] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                       "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};

std::string hex(uint64_t v) { return fmt::format("{:#x}", v); }

uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

void write64(backend::Backend& b, uint64_t gpa, uint64_t v) {
  uint8_t bytes[8];
  std::memcpy(bytes, &v, 8);
  b.write_memory(gpa, bytes);
}

std::vector<uint8_t> copy(std::span<const uint8_t> mem, uint64_t gpa, uint64_t size) {
  return {mem.begin() + static_cast<ptrdiff_t>(gpa), mem.begin() + static_cast<ptrdiff_t>(gpa + size)};
}

x86::Segment flat(uint16_t selector, uint8_t type, bool code64) {
  x86::Segment s;
  s.selector = selector;
  s.base = 0;
  s.limit = 0xFFFFFFFF;
  s.type = type;
  s.s = 1;
  s.dpl = selector & 3;
  s.present = 1;
  s.l = code64;
  s.db = !code64;
  s.g = 1;
  return s;
}

// Memory differences of one region, summarised.
void diff_region(std::vector<std::string>& out, const char* name, uint64_t gpa,
                 const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  if (a == b) return;
  size_t count = 0, first = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (a[i] != b[i]) {
      if (count++ == 0) first = i;
    }
  }
  if (count == 0) return;
  std::string s = std::string(name) + ": " + std::to_string(count) + " byte(s) differ, first at " +
                  hex(gpa + first) + ":";
  const size_t from = first & ~size_t{7};
  const auto row = [from](const std::vector<uint8_t>& v) {
    const auto begin = v.begin() + static_cast<std::ptrdiff_t>(std::min(from, v.size()));
    const auto end = v.begin() + static_cast<std::ptrdiff_t>(std::min(from + 16, v.size()));
    return begin == end ? std::string() : fmt::format(" {:02x}", fmt::join(begin, end, " "));
  };
  s += "\n      kvm:" + row(a);
  s += "\n      sim:" + row(b);
  s += "   (from " + hex(gpa + from) + ")";
  out.push_back(std::move(s));
}

void diff_registers(std::vector<std::string>& out, const uint64_t* a, const uint64_t* b) {
  for (int i = 0; i < 16; ++i) {
    if (a[i] != b[i]) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "%s: kvm=%016" PRIx64 " sim=%016" PRIx64, kRegNames[i], a[i], b[i]);
      out.push_back(buf);
    }
  }
}

bool sim_stopped_delivering_exception(const SideResult& s) {
  return s.reason == RunEndReason::kUnsupported &&
         s.detail.find("exception delivery not implemented") != std::string::npos;
}

}  // namespace

std::string_view to_string(Verdict v) {
  switch (v) {
    case Verdict::kEqual: return "equal";
    case Verdict::kUndefinedFlagsOnly: return "undefined-flags-only";
    case Verdict::kDiverged: return "DIVERGED";
    case Verdict::kUnsupported: return "unsupported";
    case Verdict::kKvmProblem: return "kvm-problem";
  }
  return "?";
}

x86::CpuState user_state(const Program& p) {
  x86::CpuState s;
  for (int i = 0; i < 16; ++i) s.gpr[i] = p.gpr[i];
  s.rip = kCodeAddress;
  s.rflags = p.rflags;
  s.seg[x86::kCs] = flat(kUserCode, 0xB, true);
  for (auto r : {x86::kSs, x86::kDs, x86::kEs, x86::kFs, x86::kGs}) s.seg[r] = flat(kUserData, 0x3, false);
  s.tr = x86::Segment{};
  s.tr.type = 0xB;  // busy TSS, as the loader's state (never used: there is no IDT)
  s.tr.s = 0;
  s.ldtr = x86::Segment{};
  s.ldtr.type = 0x2;
  s.ldtr.s = 0;
  s.gdtr = {kGdtAddress, 5 * 8 - 1};
  s.idtr = {0, 0};
  s.cr0 = 0x80000011;  // PG | ET | PE, as platform::prepare_boot for long mode
  s.cr3 = platform::kPml4Address;
  s.cr4 = 0x20;        // PAE
  s.efer = 0x501;      // LMA | LME | SCE
  return s;
}

Runner::Runner(backend::Kind kind) {
  backend::Config cfg;
  cfg.memory_bytes = kMemoryBytes;
  cfg.mode = platform::BootMode::kLong;
  cfg.load_address = platform::kDefaultLoadAddress;
  backend_ = backend::make_backend(kind, cfg);
  const uint8_t image[] = {0xF4};
  backend_->load(image);
  // GDT: null, kernel code64, kernel data, user data (DPL 3), user code64 (DPL 3).
  const uint64_t gdt[5] = {0, 0x00AF9B000000FFFFull, 0x00CF93000000FFFFull, 0x00CFF3000000FFFFull,
                           0x00AFFB000000FFFFull};
  for (int i = 0; i < 5; ++i) write64(*backend_, kGdtAddress + 8 * i, gdt[i]);
  // U/S = 1 along the walk to the user 2 MiB page.
  const auto mem = backend_->memory();
  const uint64_t pml4e = platform::kPml4Address;
  const uint64_t pdpte = (load64(mem.data() + pml4e) & 0x000FFFFFFFFFF000ull);
  const uint64_t pde = (load64(mem.data() + pdpte) & 0x000FFFFFFFFFF000ull) + 8 * (kUserRegion >> 21);
  for (uint64_t entry : {pml4e, pdpte, pde}) write64(*backend_, entry, load64(mem.data() + entry) | 4);
}

SideResult Runner::run(const Program& p, double timeout_s) {
  const auto t0 = std::chrono::steady_clock::now();
  backend::Backend& b = *backend_;
  std::vector<uint8_t> code = p.code;
  if (code.size() < last_code_size_) code.resize(last_code_size_, 0);  // erase the previous one
  last_code_size_ = p.code.size();
  b.write_memory(kCodeAddress, code);
  b.write_memory(kScratchAddress, p.scratch);
  b.write_memory(kStackAddress, p.stack);
  const std::vector<uint8_t> zero(kResultsSize, 0);
  b.write_memory(kResultsAddress, zero);
  b.set_registers(user_state(p));

  backend::StopCondition stop;
  stop.timeout_s = timeout_s;
  stop.max_exits = 16;
  if (b.kind() == backend::Kind::kSim) stop.max_instructions = 100000;  // KVM: refused
  const backend::RunOutcome out = b.run(stop, nullptr);

  SideResult r;
  r.reason = out.reason;
  r.detail = out.detail;
  r.instructions = out.instructions;
  r.regs = b.registers();
  const auto mem = b.memory();
  r.scratch = copy(mem, kScratchAddress, kScratchSize);
  r.stack = copy(mem, kStackAddress, kStackSize);
  r.results = copy(mem, kResultsAddress, kResultsSize);
  uint32_t marker;
  std::memcpy(&marker, r.results.data() + kResultMarkerOffset, 4);
  r.completed = marker == kMarker;
  for (int i = 0; i < 16; ++i) r.gpr[i] = load64(r.results.data() + 8 * i);
  r.rflags = load64(r.results.data() + kResultFlagsOffset);
  r.host_ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now() - t0).count());
  return r;
}

HostProbe probe_kvm(Runner& kvm) {
  HostProbe probe;
  {
    // xor ecx, ecx; div ecx → #DE at CPL 3 → triple fault.
    const Program p = make_program(1, 0, {{0x31, 0xC9}, {0xF7, 0xF1}}, GenOptions{});
    const SideResult r = kvm.run(p);
    const uint64_t div_rip = kCodeAddress + 2;
    bool gprs = true;
    for (int i = 0; i < 16; ++i) {
      if (r.regs.gpr[i] != (i == 1 ? 0 : p.gpr[i])) gprs = false;
    }
    const bool rip = r.regs.rip == div_rip;
    const bool cpl3 = (r.regs.seg[x86::kCs].selector & 3) == 3;
    probe.registers_reliable = r.reason == RunEndReason::kTripleFault && gprs && rip && cpl3;
    probe.note = std::string("after KVM_EXIT_SHUTDOWN (a #DE at CPL 3): ") +
                 std::string(trace::to_string(r.reason)) + ", rip=" + hex(r.regs.rip) +
                 (rip ? " (the div)" : " (the div is at " + hex(div_rip) + ")") + ", cs=" +
                 hex(r.regs.seg[x86::kCs].selector) + ", GPRs " + (gprs ? "as at the fault" : "changed") +
                 ", rflags=" + hex(r.regs.rflags) + " → " +
                 (probe.registers_reliable ? "registers compared for faulting programs"
                                           : "faulting programs compared by memory only");
  }
  {
    // Only the epilogue, started with IF = 0: what does its pushfq see?
    GenOptions opt;
    opt.start_if = false;
    const Program p = make_program(1, 1, {}, opt);
    const SideResult r = kvm.run(p);
    probe.pushf_leaks_if = r.completed && (r.rflags & kFlagIF) != 0;
    probe.note += std::string("; pushfq at CPL 3 with the vCPU's IF = 0 reads ") +
                  (!r.completed ? "(no result)" : probe.pushf_leaks_if ? "IF = 1: the host's IF leaks" : "IF = 0");
  }
  {
    // mov eax, cs; mov ebx, ss; mov edx, 0x23; lar esi, edx
    const Program p = make_program(1, 2, {{0x8C, 0xC8}, {0x8C, 0xD3}, {0xBA, 0x23, 0, 0, 0}, {0x0F, 0x02, 0xF2}},
                                   GenOptions{});
    const SideResult r = kvm.run(p);
    const uint64_t lar_expect = 0x00A0FB00;  // the user code64 descriptor's access rights
    probe.segment_reads_leak = !r.completed || r.gpr[0] != kUserCode || r.gpr[3] != kUserData ||
                               r.gpr[6] != lar_expect;
    probe.note += "; mov r, cs/ss read " + hex(r.gpr[0]) + "/" + hex(r.gpr[3]) + " (guest: " + hex(kUserCode) +
                  "/" + hex(kUserData) + "), lar 0x23 → " +
                  (r.gpr[6] == lar_expect ? std::string("the guest's descriptor")
                                          : "not the guest's descriptor (esi=" + hex(r.gpr[6]) + ")");
  }
  {
    // pushfq; pop rax; or eax, AC; push rax; popfq; mov eax, [rbp+1]; pushfq; pop rax;
    // and eax, ~AC; push rax; popfq (RSP 8-aligned: the stack accesses themselves are aligned)
    Program p = make_program(1, 3, {{0x9C}, {0x58}, {0x0D, 0, 0, 4, 0}, {0x50}, {0x9D},
                                    {0x8B, 0x45, 0x01}, {0x9C}, {0x58}, {0x25, 0xFF, 0xFF, 0xFB, 0xFF},
                                    {0x50}, {0x9D}},
                             GenOptions{});
    p.gpr[4] &= ~uint64_t{7};
    const SideResult r = kvm.run(p);
    probe.ac_checks_alignment = !r.completed;
    probe.note += std::string("; with RFLAGS.AC = 1 (guest CR0.AM = 0) a misaligned load ") +
                  (r.completed ? "works" : "faults (#AC: the host's CR0.AM applies)");
  }
  return probe;
}

Harness::Harness() : kvm_(backend::Kind::kKvm), sim_(backend::Kind::kSim) {
  probe_ = probe_kvm(kvm_);
}

std::string Harness::memory_differences() {
  const auto a = kvm_.backend().memory();
  const auto b = sim_.backend().memory();
  if (a.size() != b.size()) return "memory sizes differ";
  std::string out;
  int reported = 0;
  for (uint64_t i = 0; i < a.size(); i += 8) {
    uint64_t x = load64(a.data() + i) ^ load64(b.data() + i);
    if (i >= platform::kPml4Address && i < platform::kBootTablesEnd) x &= ~uint64_t{0x60};  // A, D
    for (const uint64_t slot : {kResultsAddress + kResultFlagsOffset, last_flags_slot_}) {
      if (slot == 0 || slot + 8 <= i || slot >= i + 8) continue;  // the slot may be misaligned
      x &= ~(slot >= i ? last_undefined_ << (8 * (slot - i)) : last_undefined_ >> (8 * (i - slot)));
    }
    if (x == 0) continue;
    if (reported++ < 8) {
      out += "  guest memory differs at " + hex(i) + ": kvm=" + hex(load64(a.data() + i)) +
             " sim=" + hex(load64(b.data() + i)) + "\n";
    }
  }
  if (reported > 8) out += "  … " + std::to_string(reported - 8) + " more quadwords\n";
  return out;
}

Comparison Harness::check(const Program& p) {
  SideResult k = kvm_.run(p);
  SideResult s = sim_.run(p);
  last_undefined_ = test::compare_undefined() && p.flags_tracked ? 0 : p.undefined_flags;
  last_flags_slot_ = k.completed ? k.gpr[4] - 8 : 0;
  return compare(p, std::move(k), std::move(s), probe_.registers_reliable);
}

Comparison compare(const Program& p, SideResult kvm, SideResult sim, bool kvm_registers_reliable,
                   bool compare_undefined) {
  Comparison c;
  const bool mask_undefined = !compare_undefined || !p.flags_tracked;
  const uint64_t masked = mask_undefined ? p.undefined_flags : 0;
  c.kvm = std::move(kvm);
  c.sim = std::move(sim);
  const SideResult& k = c.kvm;
  const SideResult& s = c.sim;
  if (k.reason != RunEndReason::kTripleFault) {
    c.verdict = Verdict::kKvmProblem;
    c.differences.push_back("KVM ended with " + std::string(trace::to_string(k.reason)) +
                            ", not a triple fault: " + k.detail);
    return c;
  }
  c.faulted = !k.completed;
  // Did the simulator get as far as KVM?
  const bool sim_at_hlt = s.completed && s.regs.rip == p.hlt_address &&
                          (s.reason == RunEndReason::kTripleFault || s.reason == RunEndReason::kUnsupported);
  const bool sim_faulted = !s.completed && (s.reason == RunEndReason::kTripleFault ||
                                            sim_stopped_delivering_exception(s));
  if (s.reason == RunEndReason::kUnsupported && !sim_at_hlt && !sim_faulted) {
    c.verdict = Verdict::kUnsupported;
    c.unsupported = unsupported_key(s.detail);
    return c;
  }
  if (s.reason != RunEndReason::kTripleFault && !sim_at_hlt && !sim_faulted) {
    c.verdict = Verdict::kDiverged;
    c.differences.push_back("run end: kvm=triple-fault sim=" + std::string(trace::to_string(s.reason)) +
                            (s.detail.empty() ? "" : " (" + s.detail + ")"));
    return c;
  }
  if (k.completed != s.completed) {
    c.verdict = Verdict::kDiverged;
    c.differences.push_back(std::string("reached the epilogue: kvm=") + (k.completed ? "yes" : "no (faulted)") +
                            " sim=" + (s.completed ? "yes" : "no (faulted)"));
  }
  bool undefined_only = false;
  if (k.completed && s.completed) {
    diff_registers(c.differences, k.gpr, s.gpr);
    const uint64_t x = k.rflags ^ s.rflags;
    if (x & ~masked) {
      c.differences.push_back("rflags: kvm=" + flags_string(k.rflags) + " sim=" + flags_string(s.rflags) +
                              " differ in " + flags_string(x & ~masked));
    } else if (x) {
      undefined_only = true;
    }
  } else if (!k.completed && !s.completed && kvm_registers_reliable) {
    diff_registers(c.differences, k.regs.gpr, s.regs.gpr);
    // After a trap (int3: #BP) that could not be delivered, KVM's RIP is past the instruction
    // (the trap's return address) and the simulator's may be on it: the SDM leaves RIP undefined
    // once delivery ends in #DF/shutdown, so either is accepted there.
    const bool trap_rip = s.regs.rip + 1 == k.regs.rip && s.regs.rip >= kCodeAddress &&
                          s.regs.rip < kCodeAddress + p.code.size() &&
                          p.code[s.regs.rip - kCodeAddress] == 0xCC;
    if (k.regs.rip != s.regs.rip && !trap_rip) {
      c.differences.push_back("rip at the fault: kvm=" + hex(k.regs.rip) + " sim=" + hex(s.regs.rip));
    }
    // RF (bit 16) is masked: KVM reports RF = 1 after the fault (the value a fault's flags image
    // carries); whether a triple-faulted CPU "has" RF set is not architecturally visible.
    uint64_t undefined = 0;
    bool found = false;
    for (const Entry& e : p.entries) {
      const uint64_t at = kCodeAddress + e.offset;
      if (at == s.regs.rip || at == k.regs.rip) {
        if (mask_undefined) undefined |= e.undefined_before;
        found = true;
      }
    }
    if (!found) undefined = kStatusFlags;
    const uint64_t x = (k.regs.rflags ^ s.regs.rflags) & ~undefined & ~(1ull << 16);
    if (x) {
      c.differences.push_back("rflags at the fault: kvm=" + flags_string(k.regs.rflags) + " sim=" +
                              flags_string(s.regs.rflags));
    }
  }
  diff_region(c.differences, "scratch", kScratchAddress, k.scratch, s.scratch);
  if (k.completed && s.completed && k.gpr[4] == s.gpr[4] && k.gpr[4] - 8 >= kStackAddress &&
      k.gpr[4] <= kStackAddress + kStackSize) {
    // The epilogue's pushfq left RFLAGS (compared above, undefined flags masked) below RSP.
    std::vector<uint8_t> ks = k.stack, ss = s.stack;
    const uint64_t slot = k.gpr[4] - 8 - kStackAddress;
    std::fill_n(ks.begin() + static_cast<ptrdiff_t>(slot), 8, 0);
    std::fill_n(ss.begin() + static_cast<ptrdiff_t>(slot), 8, 0);
    diff_region(c.differences, "stack", kStackAddress, ks, ss);
  } else {
    diff_region(c.differences, "stack", kStackAddress, k.stack, s.stack);
  }
  if (k.completed == s.completed) {
    // The registers and flags themselves were compared above (with undefined flags masked).
    std::vector<uint8_t> kr = k.results, sr = s.results;
    for (uint64_t i = 0; i < kResultMarkerOffset + 4; ++i) kr[i] = sr[i] = 0;
    diff_region(c.differences, "results area (beyond the registers)", kResultsAddress, kr, sr);
  }
  if (!c.differences.empty()) {
    c.verdict = Verdict::kDiverged;
  } else {
    c.verdict = undefined_only ? Verdict::kUndefinedFlagsOnly : Verdict::kEqual;
  }
  return c;
}

std::string unsupported_key(const std::string& detail) {
  if (auto at = detail.find("(not implemented: "); at != std::string::npos) {
    const auto from = at + std::strlen("(not implemented: ");
    return detail.substr(from, detail.find(')', from) - from);
  }
  if (detail.find("exception delivery not implemented") != std::string::npos) return "exception delivery";
  if (auto at = detail.find("unsupported: "); at != std::string::npos) {
    const auto from = at + std::strlen("unsupported: ");
    return detail.substr(from, detail.find(' ', from) - from);
  }
  return detail.substr(0, 60);
}

std::string report(const Program& p, const Comparison& c, bool both_sides) {
  std::string s = std::string(to_string(c.verdict)) + (c.faulted ? " (the program faulted on KVM)" : "") +
                  ": seed " + std::to_string(p.seed) + " program " + std::to_string(p.index) + "\n";
  if (c.verdict == Verdict::kUnsupported) s += "  simulator stopped: " + c.sim.detail + "\n";
  for (const std::string& d : c.differences) s += "  - " + d + "\n";
  auto side = [&](const char* name, const SideResult& r) {
    s += std::string("  ") + name + ": " + std::string(trace::to_string(r.reason)) +
         (r.completed ? ", epilogue reached" : ", no epilogue") + ", rip=" + hex(r.regs.rip);
    if (r.instructions) s += ", " + std::to_string(r.instructions) + " instructions";
    s += "\n";
    const uint64_t* g = r.completed ? r.gpr : r.regs.gpr;
    char buf[64];
    for (int i = 0; i < 16; ++i) {
      std::snprintf(buf, sizeof buf, "%s %s=%016" PRIx64, i % 4 == 0 ? "\n   " : "", kRegNames[i], g[i]);
      s += buf;
    }
    s += "\n    rflags=" + flags_string(r.completed ? r.rflags : r.regs.rflags) + "\n";
  };
  if (c.verdict != Verdict::kEqual || both_sides) {
    side("kvm", c.kvm);
    side("sim", c.sim);
  }
  return s + describe(p);
}

}  // namespace trapscope::difftest
