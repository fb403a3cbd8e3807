// tests/difftest/harness.hpp — runs a generated program (generator.hpp) on KVM and on the
// simulator from the same start state and compares what it left behind.
//
// [SECTION] Start state (the same bytes and registers on both backends)
//   Each backend is made once (4 MiB, long mode) and loaded with a 1-byte image, so the VMM's
//   loader writes its GDT and identity page tables (platform/loader.hpp). The harness then, once:
//     - writes its own GDT at 0x600: null, 0x08 kernel code64, 0x10 kernel data, 0x18 user data
//       (DPL 3), 0x20 user code64 (DPL 3);
//     - sets U/S = 1 in PML4[0], PDPT[0] and PD[1] (the 2 MiB page 0x200000–0x3FFFFF that holds
//       code, scratch buffer, results area and stack: generator.hpp), so CPL 3 may use it.
//   The page tables are never written again: on a KVM with shadow paging (this host's kvm_pvm) a
//   write from user space to a guest page table behind KVM's back could leave stale shadow
//   entries. Per program the harness writes the code (zeroing the previous one's tail), the
//   scratch buffer, the stack pages and a zeroed results area, then set_registers(): CPL 3
//   straight away (CS = 0x23 64-bit, SS = DS = ES = FS = GS = 0x1B, GDTR = 0x600, IDTR limit 0,
//   CR0/CR3/CR4/EFER as the loader's long mode) with the program's GPRs and RFLAGS (IF = 1 by
//   default: GenOptions::start_if). No CPL 0 prologue runs: on this host CPL 0 code goes through
//   the kernel's instruction emulator (the reference would not be the CPU), and set_registers()
//   gives the same state without depending on the simulator's lgdt/iretq. One backend pair is
//   reused for every program (make_backend costs a VM; a program costs ~0.1–0.2 ms per side).
//
// [SECTION] End of a run
//   The epilogue stores the GPRs and RFLAGS (pushfq) and a marker, then `hlt` → #GP at CPL 3 →
//   no IDT → #DF → triple fault: KVM_EXIT_SHUTDOWN on KVM, RunEndReason::kTripleFault on the
//   simulator. A program that faults earlier (an unguarded div raising #DE) also ends in a
//   triple fault, without the marker.
//   - Completed on both: compare the 16 GPRs and RFLAGS from the results area, the scratch
//     buffer and the stack page. RFLAGS bits listed in Program::undefined_flags (flags the SDM
//     leaves undefined) are compared like the others when the host is the CPU the simulator
//     models (test::compare_undefined(), tests/host_cpu.hpp); elsewhere a difference only there
//     is Verdict::kUndefinedFlagsOnly (not a divergence).
//   - Faulted on both: compare memory (scratch, stack, results). Registers are compared only if
//     the probe (probe_kvm) found that KVM's registers after KVM_EXIT_SHUTDOWN are those at the
//     fault. They are on this host (kvm_pvm: RIP = the faulting instruction, GPRs and CPL 3
//     intact, RFLAGS with RF = 1, which is masked). Hardware-assisted KVM on AMD (SVM)
//     re-initialises the vCPU on a shutdown intercept, so there they would not be: the probe
//     decides at run time. RIP must be the faulting instruction on both, except after `int3`
//     (a trap), where KVM reports the RIP past it and the SDM leaves it undefined once the #BP
//     could not be delivered: either is accepted. The status flags undefined before the
//     faulting instruction are masked (unless the host is the model CPU).
//   - Every 1000 programs (and at the end) `difftest` compares all of guest memory of the two
//     backends (Harness::memory_differences): a stray write anywhere shows up there.
//   - The simulator stopping with kUnsupported is Verdict::kUnsupported (reported apart, with
//     what it stopped at) — unless it stopped at the final `hlt` or while delivering the
//     exception of a faulting instruction, with everything before it executed: then the
//     comparison above still applies.
//   - KVM ending any other way (time limit, emulation failure) is Verdict::kKvmProblem.
//
// [SECTION] What this host's KVM (kvm_pvm, no hardware virtualization) shows — HostProbe
//   CPL 3 code runs natively in host user mode, so the sensitive-but-unprivileged instructions
//   of Popek and Goldberg see the host, not the virtual CPU: pushfq reads IF = 1 whatever the
//   vCPU's IF; mov r, cs/ss reads 0x33/0x2b (Linux's user selectors) and DS..GS read 0; lar
//   checks selectors against the host's GDT; RFLAGS.AC makes misaligned accesses #AC although
//   the guest's CR0.AM = 0 (the host's CR0.AM = 1 applies). smsw/sgdt/sidt/str/sldt show the
//   guest's values (UMIP traps them to KVM). The generated subset avoids all of these; the
//   probes run in the tests (tests/test_difftest.cpp) so a change of host shows up.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.hpp"
#include "tests/difftest/generator.hpp"
#include "tests/host_cpu.hpp"

namespace trapscope::difftest {

enum class Verdict : uint8_t { kEqual, kUndefinedFlagsOnly, kDiverged, kUnsupported, kKvmProblem };
std::string_view to_string(Verdict verdict);

struct SideResult {
  trace::RunEndReason reason = trace::RunEndReason::kStopped;
  std::string detail;            // the backend's run detail (fault state, unsupported insn)
  bool completed = false;        // the epilogue wrote the marker
  uint64_t gpr[16] = {};         // from the results area
  uint64_t rflags = 0;           // from the results area (pushfq)
  x86::CpuState regs;            // the backend's registers after the run
  std::vector<uint8_t> scratch, stack, results;
  uint64_t instructions = 0;     // simulator only
  uint64_t host_ns = 0;          // host time of Runner::run (set-up, run, collecting)
};

struct Comparison {
  Verdict verdict = Verdict::kEqual;
  bool faulted = false;              // KVM ended before the epilogue (a fault in the sequence)
  std::string unsupported;           // kUnsupported: what the simulator stopped at
  std::vector<std::string> differences;
  SideResult kvm, sim;
};

// The CPL 3 start state of a program (both backends).
x86::CpuState user_state(const Program& program);

// One backend, prepared once (GDT, user pages) and reused for many programs.
class Runner {
 public:
  explicit Runner(backend::Kind kind);  // throws (vmm::KvmError…) if the backend is unusable
  SideResult run(const Program& program, double timeout_s = 2.0);
  backend::Backend& backend() { return *backend_; }

 private:
  std::unique_ptr<backend::Backend> backend_;
  size_t last_code_size_ = 0;
};

// Facts about this host's KVM that the comparison depends on, measured at start-up.
struct HostProbe {
  // After KVM_EXIT_SHUTDOWN, RIP, GPRs and CPL are those of the faulting instruction (probe: a
  // program that divides by zero).
  bool registers_reliable = false;
  // `pushfq` at CPL 3 shows IF = 1 although the vCPU runs with IF = 0: the CPU's real IF leaks
  // to the guest (kvm_pvm runs CPL 3 guest code natively in host user mode, where IF is always
  // 1; pushf is the textbook sensitive-but-unprivileged instruction of Popek and Goldberg).
  bool pushf_leaks_if = false;
  // `mov r, cs/ss` at CPL 3 reads the host's selectors (Linux's 0x33/0x2b) and `lar` checks a
  // selector against the host's GDT: more sensitive-but-unprivileged instructions run natively.
  // (smsw/sgdt/sidt/str/sldt show the guest's values here: the host's UMIP makes them trap.)
  // Neither is in the generated subset.
  bool segment_reads_leak = false;
  // With RFLAGS.AC = 1 a misaligned load at CPL 3 raises #AC although the guest's CR0.AM = 0
  // (on kvm_pvm the host's CR0.AM = 1 governs the natively run code). Architecturally AC has no
  // effect then; hence GenOptions::popf_ac is off by default.
  bool ac_checks_alignment = false;
  std::string note;  // what was seen
};
HostProbe probe_kvm(Runner& kvm);

class Harness {
 public:
  Harness();  // both backends; throws if KVM is unusable
  Comparison check(const Program& program);
  const HostProbe& host() const { return probe_; }
  // Compares all of guest memory of the two backends (both have received the same writes from
  // the harness, so a difference is a stray write by one of them in some program since the last
  // call). The VMM's page tables are compared without their accessed/dirty bits. "" if equal.
  std::string memory_differences();
  Runner& kvm() { return kvm_; }
  Runner& sim() { return sim_; }

 private:
  Runner kvm_, sim_;
  HostProbe probe_;
  // The last program's flags images (results area, below the final RSP) may differ in its
  // undefined flags.
  uint64_t last_undefined_ = 0, last_flags_slot_ = 0;
};

// Compares the two sides' results of `program` (see the header comment). With
// `compare_undefined` (default: this host is the model CPU) flags the SDM leaves undefined are
// compared too, where the program tracked them (Program::flags_tracked).
Comparison compare(const Program& program, SideResult kvm, SideResult sim,
                   bool kvm_registers_reliable, bool compare_undefined = test::compare_undefined());

// A readable report: verdict, differences, both results (unless equal and !both_sides), the
// program disassembled.
std::string report(const Program& program, const Comparison& comparison, bool both_sides = false);

// "kAdd", "exception delivery", "cpuid"…: the key of an unsupported stop in a summary.
std::string unsupported_key(const std::string& detail);

}  // namespace trapscope::difftest
