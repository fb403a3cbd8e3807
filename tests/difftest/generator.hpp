// tests/difftest/generator.hpp — the random-program generator of the differential tester.
//
// A program is a start state (all 16 GPRs, RFLAGS, an 8 KiB scratch buffer and the stack pages
// filled with random bytes) plus forward-only 64-bit machine code that runs at CPL 3, followed
// by an epilogue that stores the 16 GPRs and RFLAGS into a results area and then executes `hlt`
// (which #GPs at CPL 3 and, with no IDT, ends in a triple fault on both backends; see
// harness.hpp). The same (seed, index) always gives the same program, so a divergence is
// replayed with `difftest --seed S --only I`.
//
// [SECTION] The subset (machine code from templates; register fields random)
//   S = operand sizes 8/16/32/64 (66 prefix for 16, REX.W for 64; 8-bit forms use either the
//   legacy registers AL..BL + AH..BH without REX, or AL..R15B incl. SPL/BPL/SIL/DIL with REX).
//   m = a memory operand: [rbp + disp8] or [rbp + disp32] inside the 8 KiB scratch buffer (RBP
//   sits on its 4 KiB page boundary); [rbp + index*scale + disp8] with a guard `movzx idx32,
//   idx8` first; [rsp + disp8] inside the stack page (so `pop [rsp+d]` computes its address after
//   the increment); now and then a 67 prefix (32-bit address) or a segment-override prefix (all
//   bases are 0); locked read-modify-writes (F0) now and then.
//
//   family            forms                                             flags written (SDM)
//   ----------------  ------------------------------------------------  --------------------------
//   add or adc sbb    r/m,r  r,r/m  acc,imm  r/m,imm (80/81/83)  S       all 6 (logic: AF undef.)
//   and sub xor cmp
//   test              r/m,r  acc,imm  r/m,imm  S                         CF=OF=0, AF undefined
//   inc dec           r/m  S                                            all but CF
//   not neg           r/m  S                                            neg: all 6
//   mul imul          r/m  S (one operand: rDX:rAX)                     CF OF; SF ZF AF PF undef.
//   imul              r,r/m  r,r/m,imm8  r,r/m,imm  (16/32/64)          as above
//   div idiv          r/m  S; guarded (high half cleared / sign-         all 6 undefined
//                     extended, divisor |d| >= 1 or 2) except ~1 in 16
//                     unguarded ones that may raise #DE
//   rol ror rcl rcr   r/m by 1, by imm8 (0..255), by CL  S               per SDM: OF only for
//   shl shr sar                                                          count 1, AF undefined,
//                                                                        CF undef. for SHL/SHR
//                                                                        count >= width (8/16)
//   shld shrd         r/m,r,imm8  r/m,r,CL  (16/32/64; 16-bit counts     CF SF ZF PF; OF count 1
//                     kept <= 16: CL masked by a guard `and cl, 15`)
//   bt bts btr btc    r,r  r,imm8  m,imm8  m,r (the bit offset register  CF; OF SF AF PF undef.
//                     masked to 0..1023 by a guard first)  (16/32/64)
//   bsf bsr           r,r/m (16/32/64), often with a zero source        ZF; others undefined
//   cmovcc setcc      all 16 conditions; cmov 16/32/64, setcc r/m8      reads flags
//   xchg              r/m,r  S;  90+r (rAX, r)  16/32/64                —
//   xadd cmpxchg      r/m,r  S                                          all 6
//   movzx movsx       r16/32/64 ← r/m8, r32/64 ← r/m16; movsxd r64 ← r/m32
//   lea               r16/32/64 ← [base + index*scale + disp], RIP-relative, 67 (32-bit addr.)
//   mov               r/m,r  r,r/m  r,imm (B0/B8, imm64)  r/m,imm  S
//   bswap             r32 r64
//   cbw cwde cdqe cwd cdq cqo
//   push pop          r64 (incl. RSP) r16, imm8 imm32, [m]; never pops above the start RSP,
//                     at most 512 bytes pushed
//   pushfq popfq      pushfq; pop r; xor r, imm32 (random CF..OF DF, IF, IOPL, NT, RF, VM,
//                     VIF, VIP, ID, reserved bits; never TF; AC only with --popf-ac); push r;
//                     popfq  — at CPL 3 IF and IOPL must not change (Popek–Goldberg)
//   clc stc cmc cld std lahf sahf nop (90, 66 90, 0F 1F /0)
//   jcc jmp           rel8 forward over one unit (jmp: over random bytes never executed)
//   movs stos lods    S, none/rep (cmps scas: repe/repne), RSI/RDI pointed into the scratch
//   cmps scas         buffer and ECX = 0..40 by guards first; DF as it is; 67 and segment
//                     prefixes now and then                             cmps scas: all 6
//   call ret jmp      call rel32 + pop; lea r,[rip+k] + push r + ret / ret 8; lea + jmp r;
//                     lea + call r + pop (each landing past itself or past skipped bytes)
//   mov moffs         A0-A3 with a 64-bit (or with 67, 32-bit) absolute address
//   self-modifying    mov byte [rip+1], imm8 into the immediate of the next `add al, imm8`
//   faults            1 program in 32 (unless --no-faults): ud2, int3, hlt, cli, a load from a
//                     non-canonical address (#GP), a load/store to the VMM's page tables (#PF)
//
//   Left out on purpose: instructions whose result depends on the host, not the architecture
//   (cpuid, rdtsc, rdrand), and the sensitive-but-unprivileged ones that this host's KVM runs
//   natively against the host's state (mov r, Sreg; lar/lsl/verr/verw; see HostProbe).
//
// [SECTION] Restrictions that keep the result defined
//   - RSP and RBP (the scratch base) are never destinations: RSP is changed only by push/pop/
//     call/ret, RBP keeps pointing at the middle of the scratch buffer.
//   - div/idiv guards, bt offsets, shld counts, index registers, string pointers and counts: see
//     the table; a guard is an ordinary instruction of the program (marked "; guard").
//   - Flags the SDM leaves undefined (sim::undefined_flags, sim/interp/undefined.hpp) are
//     tracked: before an instruction that reads a flag that is currently undefined (adc sbb rcl
//     rcr cmc cmovcc setcc jcc lahf pushfq), a `cmp` (which writes no register) is inserted to
//     define all six. The flags still undefined at the end are recorded in
//     Program::undefined_flags. On the CPU the simulator models the harness compares them too;
//     on any other host it reports a difference only in those as "undefined-flags only", not as
//     a divergence (tests/host_cpu.hpp).
//   - Memory operands stay in the scratch buffer and the stack pages (or fault on purpose).
//   - BSF/BSR with a zero source leave the destination unchanged: AMD documents that (APM Vol. 3,
//     and the model CPU does it, 32-bit forms included); Intel's SDM says "undefined" (Intel
//     processors clear bits 63:32 of a 32-bit destination). Zero sources are generated only with
//     GenOptions::undefined_results (the model CPU); otherwise a guard makes the source non-zero.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace trapscope::difftest {

// Guest layout (guest-physical = guest-linear: the VMM's identity map). The 2 MiB page at
// kUserRegion is made user-accessible by the harness.
inline constexpr uint64_t kUserRegion = 0x200000;
inline constexpr uint64_t kCodeAddress = 0x200000;
inline constexpr uint64_t kCodeCapacity = 0x8000;
inline constexpr uint64_t kScratchAddress = 0x210000;
inline constexpr uint64_t kScratchSize = 0x2000;
// RBP: on the boundary of the scratch buffer's two 4 KiB pages, so that accesses near it cross
// pages (separate translations in the simulator's TLB).
inline constexpr uint64_t kScratchBase = kScratchAddress + kScratchSize / 2;
inline constexpr uint64_t kResultsAddress = 0x212000;
inline constexpr uint64_t kResultsSize = 0x100;
inline constexpr uint64_t kResultFlagsOffset = 16 * 8;
inline constexpr uint64_t kResultMarkerOffset = 17 * 8;
inline constexpr uint32_t kMarker = 0x600DF00D;  // written last, just before `hlt`
inline constexpr uint64_t kStackAddress = 0x214000;
inline constexpr uint64_t kStackSize = 0x2000;
inline constexpr unsigned kBaseRegister = 5;  // RBP
inline constexpr unsigned kMaxStackBytes = 0x200;

// RFLAGS bits (SDM Vol. 1 3.4.3).
inline constexpr uint64_t kFlagCF = 1 << 0, kFlagPF = 1 << 2, kFlagAF = 1 << 4,
                          kFlagZF = 1 << 6, kFlagSF = 1 << 7, kFlagTF = 1 << 8,
                          kFlagIF = 1 << 9, kFlagDF = 1 << 10, kFlagOF = 1 << 11,
                          kFlagAC = 1 << 18;
inline constexpr uint64_t kStatusFlags = kFlagCF | kFlagPF | kFlagAF | kFlagZF | kFlagSF | kFlagOF;

struct GenOptions {
  unsigned length = 24;        // templates per program (guards and inserted cmps come extra)
  bool allow_faults = true;    // unguarded div/idiv (#DE) and 1 in 32 programs with a fault
  bool popf_ac = false;        // let popfq toggle RFLAGS.AC (off: this host then #ACs, harness.hpp)
  bool branches = true;        // jcc/jmp rel8 forward over one unit
  // RFLAGS.IF at the start. 1 by default: nothing can interrupt the guest (no in-kernel irqchip,
  // the VMM injects nothing), and on this host IF = 0 cannot be observed faithfully: kvm_pvm runs
  // CPL 3 code natively in host user mode, so `pushfq` reads the real IF = 1 whatever the vCPU's
  // IF (harness.hpp: HostProbe::pushf_leaks_if). Hardware-assisted KVM honours IF = 0 (--if0).
  bool start_if = true;
  // Instructions whose RESULT the SDM leaves undefined (bsf/bsr with a zero source): only where
  // the host is the CPU the simulator models (test::compare_undefined(), tests/host_cpu.hpp).
  bool undefined_results = true;
};

struct Entry {
  enum Kind : uint8_t { kBody, kGuard, kDefiner, kSkipped, kEpilogue };
  std::vector<uint8_t> bytes;
  Kind kind = kBody;
  uint32_t offset = 0;  // from kCodeAddress (set when the code is laid out)
  uint64_t undefined_before = 0;  // status flags undefined when it starts (masked at a fault)
};

struct Program {
  uint64_t seed = 0, index = 0;
  uint64_t gpr[16] = {};
  uint64_t rflags = 0x2;
  std::vector<uint8_t> scratch;  // kScratchSize bytes at kScratchAddress
  std::vector<uint8_t> stack;    // kStackSize bytes at kStackAddress
  std::vector<Entry> entries;    // body then epilogue
  std::vector<uint8_t> code;     // at kCodeAddress
  uint64_t hlt_address = 0;      // the epilogue's final `hlt`
  uint64_t epilogue_address = 0;
  uint64_t undefined_flags = 0;  // status flags undefined at the end (see compare())
  bool flags_tracked = true;     // false (make_program): undefined_flags = all, not known
  int64_t stack_delta = 0;       // RSP at the epilogue minus RSP at the start
  bool may_fault = false;        // holds an unguarded div/idiv
};

// The program with this index in the stream of `seed` (independent of the other indices).
Program generate(uint64_t seed, uint64_t index, const GenOptions& options);

// A program of `body` instructions (already encoded) with the standard start state of
// (seed, index) — for hand-written known-answer tests.
Program make_program(uint64_t seed, uint64_t index, const std::vector<std::vector<uint8_t>>& body,
                     const GenOptions& options);

// Lays out entries into code (offsets, hlt_address, epilogue). Used by generate/make_program.
void finish(Program& program);

// "rflags=0x246 [ZF PF IF]" style.
std::string flags_string(uint64_t rflags);
// The start state and the disassembled code, one instruction a line.
std::string describe(const Program& program);

}  // namespace trapscope::difftest
