// trace/event.hpp — the one event schema shared by the VMM, the simulator, the trace file and
// the visualizer.
//
// [SECTION] Shape
//   Every event is a packed plain struct that starts with an EventHeader. Records have a fixed
//   size per type (kEventSize[] below, checked by static_assert), so a recorder can keep them in
//   flat arrays and a trace file can check each record's length against the table.
//   Text that can be derived from recorded bytes is not stored: the disassembly of a VM exit's
//   instruction is produced from `insn`/`insn_len` and `cpu_mode` by the Zydis adapter
//   (x86/) when the event is printed.
//
// [SECTION] Units
//   time_ns, handle_ns: nanoseconds, host CLOCK_MONOTONIC. Addresses: bytes. CPL: 0..3.
//
// [SECTION] Compatibility
//   EventType values and struct layouts are part of the trace file format (trace/trace_file.hpp).
//   Change a layout → bump kTraceFormatVersion there. New types get new numbers; numbers are never
//   reused.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "trace/device_event.hpp"
#include "x86/mode.hpp"
#include "x86/vmx.hpp"

namespace trapscope::trace {

// The types, their numbers and names: trace/events.def.
enum class EventType : uint8_t {
#define TRAPSCOPE_EVENT(Id, number, Struct, name, label) Id = number,
#include "trace/events.def"
  kMax,  // sentinel
};

// The processor mode the guest was in when the event happened (decides how bytes disassemble):
// defined once in x86/mode.hpp.
using x86::CpuMode;
using x86::to_string;

std::string_view to_string(EventType type);     // "vm_exit", … (trace/events.def)
std::string_view event_label(EventType type);   // "VM exit", … (trace/events.def); "?"
std::optional<EventType> parse_event_type(std::string_view name);  // by to_string's name

#pragma pack(push, 1)

// 32 bytes at the start of every record.
struct EventHeader {
  EventType type;    // what follows
  uint8_t cpl;       // current privilege level 0..3 at the event; kCplUnknown if not known
  CpuMode cpu_mode;  // processor mode at the event
  uint8_t flags;     // type-specific flag bits
  uint16_t size;     // size of the whole record in bytes (== kEventSize[type])
  uint16_t reserved;
  uint64_t seq;      // sequence number, 0-based and dense within a run
  uint64_t time_ns;  // host CLOCK_MONOTONIC when the event happened
  uint64_t rip;      // guest RIP at the event (for exits: the exiting instruction, see VmExitEvent)
};
static_assert(sizeof(EventHeader) == 32);

inline constexpr uint8_t kCplUnknown = 0xFF;

// Exit reasons are KVM's numbers (KVM API, "struct kvm_run", exit_reason, <linux/kvm.h>
// KVM_EXIT_*). The simulator's VMM uses the same numbers for the same events so that views and
// tests work on either backend.
enum class ExitReason : uint32_t {
  kUnknown = 0,
  kException = 1,
  kIo = 2,
  kHypercall = 3,
  kDebug = 4,
  kHlt = 5,
  kMmio = 6,
  kIrqWindowOpen = 7,
  kShutdown = 8,
  kFailEntry = 9,
  kIntr = 10,
  kSetTpr = 11,
  kTprAccess = 12,
  kNmi = 16,
  kInternalError = 17,
  kSystemEvent = 24,
  kX86Rdmsr = 29,
  kX86Wrmsr = 30,
  kX86BusLock = 33,
  kNotify = 37,
};

// "IO", "HLT", … as KVM names them (KVM_EXIT_<name>); "UNKNOWN_<n>" style names are not
// returned: unknown numbers give "?" and callers print the number beside the name.
std::string_view exit_reason_name(uint32_t kvm_exit_reason);

// Payloads of a VM exit, one per reason that carries data (KVM API 5. "struct kvm_run").
struct ExitIoData {
  uint16_t port;
  uint8_t size;       // bytes per element: 1, 2 or 4
  uint8_t direction;  // 0 = in, 1 = out (KVM_EXIT_IO_IN / KVM_EXIT_IO_OUT)
  uint32_t count;     // elements (> 1 for rep ins/outs)
  uint64_t value;     // first element, zero-extended (for `in`: the value the VMM returned)
  uint8_t pad[8];
};
struct ExitMmioData {
  uint64_t gpa;     // guest-physical address of the access
  uint8_t len;      // 1..8 bytes
  uint8_t is_write;
  uint8_t pad[6];
  uint64_t data;    // little-endian bytes written, or returned to a read
};
struct ExitInternalErrorData {
  uint32_t suberror;  // KVM_INTERNAL_ERROR_* (1 = emulation failure)
  uint32_t ndata;     // number of valid data words in the kernel's report
  uint64_t data[2];   // first two data words
};
struct ExitFailEntryData {
  uint64_t hardware_entry_failure_reason;
  uint32_t cpu;
  uint8_t pad[12];
};
struct ExitDebugData {
  uint32_t exception;  // vector (1 = #DB, 3 = #BP)
  uint32_t pad;
  uint64_t dr6;
  uint64_t dr7;
};
// A hypercall (platform/hypercall.hpp), recorded right after the I/O exit of its doorbell with
// kExitFlagHypercallRecord set: it describes that exit, it is not a second one.
struct ExitHypercallData {
  uint32_t nr;      // call number
  int32_t result;   // what the guest got in eax: 0 or a negative error
  uint64_t arg1;
  uint64_t arg2;
};
struct ExitSystemEventData {
  uint32_t type;  // KVM_SYSTEM_EVENT_*
  uint32_t ndata;
  uint64_t data[2];
};
inline constexpr uint8_t kExitFlagRipAdvanced = 1 << 0;
inline constexpr uint8_t kExitFlagHypercallRecord = 1 << 1;

union ExitPayload {
  ExitIoData io;
  ExitMmioData mmio;
  ExitInternalErrorData internal;
  ExitFailEntryData fail_entry;
  ExitDebugData debug;
  ExitSystemEventData system_event;
  ExitHypercallData hypercall;
  uint8_t raw[24];
};
static_assert(sizeof(ExitPayload) == 24);

// One VM exit. header.rip is the RIP of the instruction that caused the exit, whatever the host:
// hardware-assisted KVM leaves RIP on an `in`/`out` until the next KVM_RUN completes it, a KVM
// that emulates the instruction (kvm_pvm, any emulated CPL 0 code) has already moved RIP past
// it, and every KVM moves RIP past `hlt`. When the VMM found RIP past the instruction it sets
// kExitFlagRipAdvanced in header.flags. insn holds the instruction's bytes, read through the
// guest's page tables from guest-linear address insn_addr.
struct VmExitEvent {
  EventHeader header;
  uint32_t reason;     // KVM exit reason number (ExitReason)
  uint32_t handle_ns;  // host time spent in the VMM handling this exit, ns
  uint64_t insn_addr;  // guest-linear address the instruction bytes were read from
  uint8_t insn_len;    // 0 when the bytes could not be read (address not mapped)
  uint8_t insn[15];    // up to 15 bytes (the x86 maximum instruction length)
  ExitPayload payload;
};
static_assert(sizeof(VmExitEvent) == 88);

// Why a run ended (also the meaning of `trapscope run`'s exit status, see cli/exit_codes.hpp).
enum class RunEndReason : uint8_t {
  kHalted = 1,           // guest executed `hlt` with interrupts it cannot receive
  kGuestExit = 2,        // guest wrote an exit code to the control port
  kTripleFault = 3,      // KVM_EXIT_SHUTDOWN
  kEmulationFailure = 4, // KVM_EXIT_INTERNAL_ERROR (the kernel could not emulate an instruction)
  kFailEntry = 5,        // KVM_EXIT_FAIL_ENTRY (the processor refused the guest state)
  kTimeLimit = 6,        // --timeout reached
  kExitLimit = 7,        // --max-exits reached
  kUnhandledExit = 8,    // an exit reason the VMM does not handle
  kDebug = 9,            // stopped at a debug exit (breakpoint, single step)
  kStopped = 10,         // stopped on request (e.g. Ctrl-C)
  kInternalError = 11,   // KVM_EXIT_INTERNAL_ERROR other than an emulation failure
  kInstructionLimit = 12,  // the simulator's instruction limit was reached
  kUnsupported = 13,     // the simulator met an instruction outside its subset
  kBreakpoint = 14,      // reached the address breakpoint (StopCondition::breakpoint)
  kStep = 15,            // one instruction executed (single-step)
  kEventMatched = 16,    // an event of a requested kind happened (StopCondition::stop_on)
  kConsoleLimit = 17,    // the console capture reached trace::kConsoleLimitBytes (limits.hpp)
  kEventLimit = 18,      // an in-memory event sink was full (trace::kRecorderLimitBytes)
  kMax,
};
std::string_view to_string(RunEndReason reason);
// True when a run that ended for `reason` ended the guest's run: the guest halted, exited or
// broke, or a capture limit (trace/limits.hpp) ended it; only a reset runs it again. False when
// the run only stopped and running on goes on from there: a single step, a breakpoint, an event
// asked for, the caller's instruction, exit-count or time limit, a stop request. The one
// definition the visualizer's live controller and the lesson runner both use.
bool ends_guest_run(RunEndReason reason);
// True for a VM exit; false for a hypercall record (kExitFlagHypercallRecord), which describes
// the doorbell's I/O exit just before it and is not a second exit, and for other event types.
inline bool is_vm_exit(const EventHeader& e) {
  return e.type == EventType::kVmExit && !(e.flags & kExitFlagHypercallRecord);
}

// True for a VM exit of the simulator's VT-x model (a kVmTransition that is not the VM entry
// after it): what `step to VM exit`, the `vt-exit` condition kind and the exit statistics take.
bool is_vt_exit(const EventHeader& e);

struct RunEndEvent {
  EventHeader header;
  RunEndReason reason;
  uint8_t pad[3];
  uint32_t exit_code;    // guest's exit code for kGuestExit, else 0
  uint64_t exits;        // VM exits during the run
  uint64_t duration_ns;  // run wall time, ns
};
static_assert(sizeof(RunEndEvent) == 56);
// RunEndEvent header.flags bit 0: the trace file reached its size limit (`run --trace-max-size`,
// trace/trace_file.hpp TraceWriter) and events after the last one before this were not recorded;
// the run went on. Set only in trace files (older readers ignore it: no format change).
inline constexpr uint8_t kRunEndTraceLimit = 1 << 0;

// One guest page walk (a TLB miss): each level's table entry, read from guest-physical memory.
// Sources: Intel SDM Vol. 3A 4.3 (32-bit), 4.4 (PAE), 4.5 (4-level paging).
// header.flags: bits 1:0 the paging structure (kWalk32Bit, kWalkPae, kWalk4Level: decides each
// reference's level name, index bits and entry size; trace/page_walk.hpp decodes them), bit 2
// kWalkByVmm: the walk was the shadow-paging VMM's software walk of the guest's tables (a hidden
// page fault), not the processor's. Each reference's level and index follow from its position
// and entry address; a fault is at the last reference (P = 0) or, for an access-rights fault,
// at the leaf.
inline constexpr uint8_t kWalk32Bit = 1, kWalkPae = 2, kWalk4Level = 3, kWalkStructureMask = 3;
inline constexpr uint8_t kWalkByVmm = 1 << 2;
struct PageWalkLevel {
  uint64_t entry_address;  // guest-physical address of the table entry
  uint64_t entry;          // its value (after the walk set A/D bits)
};
struct PageWalkEvent {
  EventHeader header;
  uint64_t linear;         // the guest-linear address translated
  uint64_t physical;       // the result (valid unless faulted)
  uint8_t levels;          // table entries read (0 with paging off)
  uint8_t access;          // 0 read, 1 write, 2 execute
  uint8_t user;            // 1: a CPL 3 access
  uint8_t faulted;         // 1: the walk ended in a page fault (error_code valid)
  uint32_t error_code;     // #PF error code (SDM Vol. 3A 4.7)
  PageWalkLevel level[4];  // root first
};
static_assert(sizeof(PageWalkEvent) == 120);

enum class RingCause : uint8_t {
  kException = 1, kInterrupt = 2, kSoftwareInt = 3, kSyscall = 4, kSysret = 5, kIret = 6,
  kFarCall = 7, kFarReturn = 8, kFarJump = 9, kSysenter = 10, kSysexit = 11,
};
std::string_view to_string(RingCause cause);

struct RingTransitionEvent {  // header.rip: where execution continues at the new CPL
  EventHeader header;
  uint8_t from_cpl;
  uint8_t to_cpl;
  RingCause cause;
  uint8_t vector;        // for exceptions and interrupts
  uint32_t pad;
  uint64_t from_rip;     // the instruction that caused the transition
};
static_assert(sizeof(RingTransitionEvent) == 48);

struct ExceptionEvent {  // header.rip: the faulting (or, for traps, the next) instruction
  EventHeader header;
  uint8_t vector;
  uint8_t has_error_code;
  uint8_t software;      // 1: `int n`, `int3`, `into`
  uint8_t pad;
  uint32_t error_code;
  uint64_t cr2;          // for #PF
};
static_assert(sizeof(ExceptionEvent) == 48);

// header.rip: the instruction; header.time_ns: host time sampled every 4096 instructions.
struct InstructionEvent {
  EventHeader header;
  uint8_t len;
  uint8_t bytes[15];
};
static_assert(sizeof(InstructionEvent) == 48);

// The virtualization techniques' events (sim/virt/monitor.hpp). header.rip: the instruction.
//   kVmmTrap:         exit_reason = the exception the deprivileged instruction raised (13 = #GP);
//                     cost_cycles = 0 (not modelled).
//   kSensitiveNoTrap: exit_reason = 0.
//   kVmTransition:    exit_reason = Intel's basic exit reason (SDM Vol. 3C Appendix C, e.g. 28 =
//                     control-register access, 30 = I/O instruction), qualification = the exit
//                     qualification (SDM Vol. 3C 28.2.1), interruption_info = the VM-exit
//                     interruption information for exception exits (bit 31 valid, bits 10:8
//                     type, 7:0 vector), and for the descriptor-table exits 46 and 47 the
//                     VM-exit instruction-information field (x86/vmx.hpp: bits 29:28 say which
//                     of SGDT … LTR); cost_cycles = the modelled cost of this transition
//                     (a model: sim/virt/monitor.hpp cites the source). The same fields are
//                     repeated on the matching VM entry.
inline constexpr uint8_t kVirtFlagEntry = 1 << 0;
// Intel VMX basic exit reasons (SDM Vol. 3C Appendix C): defined once in x86/vmx.hpp, with the
// decoding of the exit qualification.
using VmxExitReason = x86::VmxExit;
// "CR_ACCESS", "IO_INSTRUCTION", … (x86::vmx_exit_reason_name); "?" for others.
std::string_view vmx_exit_reason_name(uint32_t reason);
// VirtEvent::technique: the numbers are the trace format's (sim/virt/monitor.cpp maps its
// sim::virt::Technique to them); the names are sim::virt::to_string's.
enum class VirtTechnique : uint8_t { kTrapEmulate = 1, kVt = 2, kPv = 3 };
std::string_view to_string(VirtTechnique technique);  // "trap-emulate", "vt", "pv"; "?"
struct VirtEvent {
  EventHeader header;
  uint8_t technique;     // VirtTechnique: 1 = trap-and-emulate, 2 = VT-x model, 3 = paravirt.
  uint8_t real_cpl;      // the CPL the hardware really ran at (trap-and-emulate: 1 or 3)
  uint8_t insn_len;      // 0: no instruction (e.g. an interrupt-window exit)
  uint8_t insn[15];
  uint16_t pad;
  uint32_t exit_reason;
  uint32_t interruption_info;
  uint32_t cost_cycles;
  uint64_t qualification;
};
static_assert(sizeof(VirtEvent) == 72);
// Nested paging (EPT; Intel SDM Vol. 3C 29.3; Bhargava et al., ASPLOS 2008). Each guest
// paging-structure reference is itself a guest-physical address that the processor translates
// through the EPT (m = 4 levels) before reading it, and so is the final guest-physical address:
// an n-level guest walk makes n·m + n + m = (n+1)(m+1) − 1 references (24 for n = m = 4; 14 for
// a 2-level 32-bit guest; 19 for PAE's 3; 4 with guest paging off). ref[] lists them in the
// order the hardware makes them (the EPT walk for a guest entry's GPA, then that guest entry).
enum class NestedRefKind : uint8_t { kEpt = 0, kGuest = 1 };
struct NestedWalkRef {
  uint64_t gpa;    // kEpt: the guest-physical address being translated; kGuest: the entry's GPA
  uint64_t hpa;    // host-physical address of the entry read
  uint64_t entry;  // the entry's value
  NestedRefKind kind;
  uint8_t level;   // 4 = PML4 / EPT PML4 … 1 = PT / EPT PT (32-bit guest: 2 = PD, 1 = PT)
  uint16_t index;  // index of the entry in its table
  uint8_t step;    // kEpt: which guest reference it serves (0 = the root's, …; guest_levels =
                   // the final GPA)
  uint8_t fault;   // 1: this reference ended the walk (not present / EPT violation)
  uint8_t pad[2];
};
static_assert(sizeof(NestedWalkRef) == 32);
inline constexpr unsigned kMaxNestedRefs = 24;
struct NestedWalkEvent {
  EventHeader header;   // flags: the guest's paging structure as in PageWalkEvent (0: paging off)
  uint64_t linear;      // guest-virtual address
  uint64_t gpa;         // the guest-physical result (valid unless faulted)
  uint64_t hpa;         // the host-physical result (valid unless faulted)
  uint8_t nrefs;        // entries of ref[] used
  uint8_t guest_levels; // n: guest entries read (fewer than the structure's depth for a large
                        // page, or when the walk faulted)
  uint8_t access;       // 0 read, 1 write, 2 execute
  uint8_t faulted;      // 0 no, 1 guest #PF (error_code), 2 EPT violation (a kEptViolation event
                        // follows)
  uint32_t error_code;  // #PF error code when faulted == 1
  NestedWalkRef ref[kMaxNestedRefs];
};
static_assert(sizeof(NestedWalkEvent) == 32 + 32 + 24 * 32);

// What the shadow-paging VMM did (the exits it takes: Intel SDM Vol. 3C 25.6 VM-execution
// controls — exception bitmap, INVLPG exiting, CR3-load exiting; Adams & Agesen,
// ASPLOS 2006; Bugnion et al., TOCS 2012 for the technique). intel_exit_reason is the basic exit
// reason of SDM Vol. 3D Appendix C the action stands for: 0 exception (#PF), 14 INVLPG,
// 28 control-register access.
enum class ShadowAction : uint8_t {
  kHiddenFault = 1,   // the shadow lacked the entry (or the right): the VMM walked the guest's
                      // tables and filled the shadow; the guest never sees this fault
  kTrueFault = 2,     // the guest's own tables deny the access: #PF reflected to the guest
  kPtWrite = 3,       // a write to a write-protected guest page-table page: emulated, and the
                      // shadow entries built from that page dropped (resynchronized)
  kCr3Write = 4,      // MOV to CR3: the VMM switches to the shadow of the new address space
  kInvlpg = 5,        // INVLPG: the VMM drops the shadow entry of that page
  kWriteProtect = 6,  // a guest page became a page-table page: its shadow mappings lose write
  kFlushAll = 7,      // a paging-mode change (CR0/CR4/EFER): every shadow table dropped
  kVmmWrite = 8,      // the VMM wrote a shadowed guest page table for the guest (a hypercall's
                      // mmu_update, gpa = the entry, guest_entry = its new value): the shadow
                      // entries built from that page dropped, as after kPtWrite, but no trap of
                      // its own (intel_exit_reason 30: inside the doorbell's I/O exit)
};
std::string_view to_string(ShadowAction action);
struct ShadowPagingEvent {
  EventHeader header;
  ShadowAction action;
  uint8_t access;          // 0 read, 1 write, 2 execute (faults and page-table writes)
  uint8_t user;
  uint8_t pad;
  uint32_t intel_exit_reason;
  uint64_t linear;         // GVA (or the new CR3 for kCr3Write)
  uint64_t gpa;            // the guest-physical page concerned
  uint64_t guest_entry;    // the guest's leaf entry (faults)
  uint64_t shadow_entry;   // the shadow entry after the action (HPA | P RW US bits; 0 = none)
  uint32_t error_code;     // #PF error code (kTrueFault)
  uint32_t dropped;        // shadow entries dropped by this action
};
static_assert(sizeof(ShadowPagingEvent) == 32 + 48);

// An EPT violation VM exit (basic exit reason 48, SDM Vol. 3D Appendix C): the exit
// qualification's bits follow SDM Vol. 3C 27.2.1, table 27-7 "Exit Qualification for EPT
// Violations" (28.2.1 / table 28-7 in the editions that renumbered the VMX chapters): 0 data read, 1 data write, 2 instruction fetch, 3–5 the AND of the R/W/X bits
// of the EPT entries used (0 when an entry was not present), 7 guest linear address valid,
// 8 (with bit 7) 1 = the access was to the translated linear address, 0 = to a guest
// paging-structure entry.
enum class EptResolution : uint8_t {
  kMapped = 1,  // guest RAM touched for the first time: the VMM mapped the page (lazily)
  kMmio = 2,    // no RAM at that GPA: the VMM emulates the access (an MMIO exit follows)
};
struct EptViolationEvent {
  EventHeader header;
  uint64_t gpa;
  uint64_t linear;         // guest-linear address (valid when qualification bit 7 is set)
  uint64_t qualification;
  uint32_t intel_exit_reason;  // 48
  EptResolution resolution;
  uint8_t level;           // the EPT level whose entry was not present (4 … 1)
  uint8_t pad[2];
};
static_assert(sizeof(EptViolationEvent) == 32 + 32);

// Binary translation (sim/bt/translator.hpp; Adams & Agesen, ASPLOS 2006). Every record is fixed
// size: a translation unit holds at most kBtMaxUnitInsns guest instructions.
inline constexpr unsigned kBtMaxUnitInsns = 12;
// The most guest bytes a unit can cover: 12 instructions of at most 15 bytes (the x86 maximum).
inline constexpr unsigned kBtMaxUnitBytes = kBtMaxUnitInsns * 15;
// How one guest instruction was translated (BtTranslateEvent::kind[i]).
enum class BtKind : uint8_t {
  kIdent = 0,           // IDENT: copied unchanged (innocuous, no PC dependence)
  kPcRelative = 1,      // non-IDENT: RIP-relative operand rewritten to an absolute address
  kDirectBranch = 2,    // non-IDENT: direct control flow, re-targeted to the translated successor
  kIndirectBranch = 3,  // non-IDENT: indirect control flow, ends in a translation-cache lookup
  kInCache = 4,         // non-IDENT: sensitive, emulated by an in-cache sequence on the
                        //   virtual CPU (cli, sti, pushf, popf, sgdt, smsw, mov r/m Sreg, …)
  kCallout = 5,         // non-IDENT: privileged or sensitive, a callout to the VMM
  kAdaptive = 6,        // non-IDENT: retranslated into a callout because it trapped often
  kMax,
};
std::string_view to_string(BtKind kind);  // "IDENT", "pc-relative", "direct", …
// header.rip: the unit's first guest instruction (offset in CS).
struct BtTranslateEvent {
  EventHeader header;
  uint64_t guest_pa;     // guest-physical address of the unit's first byte
  uint32_t unit;         // unit id (dense from 0 within a run)
  uint16_t guest_bytes;  // the unit covers [rip, rip + guest_bytes)
  uint8_t count;         // guest instructions, 1..kBtMaxUnitInsns
  uint8_t generation;    // 0: first translation of this address, n: n-th retranslation
  uint8_t len[kBtMaxUnitInsns];   // each instruction's length in bytes (0 past count)
  uint8_t kind[kBtMaxUnitInsns];  // each instruction's BtKind
  uint8_t code[kBtMaxUnitBytes];  // the guest bytes translated, [0, guest_bytes) (0 past it):
                                  //   what the code was when translated, even if written since
  uint8_t adaptive_threshold;     // traps after which the translator retranslates an instruction
                                  //   into a callout (sim/bt/translator.hpp); 0: not recorded
                                  //   (a trace written before it was)
  uint8_t pad[3];                 // every record size is a multiple of 8, so records stored
                                  //   back to back keep their 8-byte fields aligned
};
static_assert(sizeof(BtTranslateEvent) == 72 + 180 + 4);
// header.rip: the successor's first guest instruction; flags bit 0: the taken branch (else the
// fall-through).
inline constexpr uint8_t kBtFlagTaken = 1 << 0;
struct BtChainEvent {
  EventHeader header;
  uint32_t from_unit;
  uint32_t to_unit;
};
static_assert(sizeof(BtChainEvent) == 40);
// header.rip: the looked-up guest RIP; flags bit 0: hit. Emitted only when asked for
// (SimConfig::bt_lookup_events): one per unit executed would cost more than the unit.
inline constexpr uint8_t kBtFlagHit = 1 << 0;
struct BtLookupEvent {
  EventHeader header;
  uint32_t unit;  // the unit found (hit) or translated (miss)
  uint32_t pad;
};
static_assert(sizeof(BtLookupEvent) == 40);
// header.rip: the instruction whose write (or the lookup that found the write) invalidated.
struct BtInvalidateEvent {
  EventHeader header;
  uint64_t page_pa;  // the guest-physical page (4 KiB aligned) whose units were dropped
  uint32_t units;    // units dropped
  uint32_t pad;
};
static_assert(sizeof(BtInvalidateEvent) == 48);
// header.rip: the instruction; flags bit 0: an adaptive callout (BtKind::kAdaptive).
inline constexpr uint8_t kBtFlagAdaptive = 1 << 0;
struct BtCalloutEvent {
  EventHeader header;
  uint32_t unit;
  uint8_t insn_len;
  uint8_t insn[15];
  uint32_t pad;
};
static_assert(sizeof(BtCalloutEvent) == 56);
// The translation cache's own counters of one unit (sim/bt/translator.hpp Unit::executions,
// Unit::instructions), cumulative since the unit was translated. Executions reached through a
// chain record no event (that is the point of chaining), so the counters are reported instead:
// one event per unit whose counters changed, at the end of each run (just before its kRunEnd;
// a pause on a breakpoint or a watched event reports them only when the visualizer asks) and
// just before an invalidated unit is freed or the full cache flushed (sim/bt/counts.hpp).
// header.rip: the unit's first guest instruction.
struct BtCountsEvent {
  EventHeader header;
  uint32_t unit;
  uint32_t traps;         // faults raised and code-page writes made by its instructions (the
                          //   adaptive retranslation counts them; 0 in traces written before)
  uint64_t executions;    // times the unit was entered (by chain or by lookup)
  uint64_t instructions;  // guest instructions executed from it (< executions × count when a
                          //   run, a fault or an exit stopped it part-way)
};
static_assert(sizeof(BtCountsEvent) == 56);

// A device model acted on a guest's request (trace/device_event.hpp says which field each action
// fills). header.rip: the instruction whose access caused it, when there is one (a register
// access); else the RIP at the time.
struct DeviceEvent {
  EventHeader header;
  DeviceKind device;
  uint8_t unit;           // ATA drive (0/1) or device index
  DeviceAction action;
  uint8_t status;         // the device's status after (ATA status register, virtio status byte)
  uint32_t command;       // opcode, request type, register offset or queue index
  uint64_t address;       // sector (LBA) or device address (IOVA / GPA), bytes
  uint32_t count;         // sectors, data-port accesses or descriptors
  uint32_t bytes;         // bytes moved
  uint64_t value;         // register value, used index, error code or the GPA a DMA reached
};
static_assert(sizeof(DeviceEvent) == 64);

#pragma pack(pop)

// The record type of each EventType (trace/events.def): EventStruct<EventType::kVmExit> is
// VmExitEvent.
template <EventType T>
struct EventStructOf;
#define TRAPSCOPE_EVENT(Id, number, Struct, name, label) \
  template <>                                           \
  struct EventStructOf<EventType::Id> {                 \
    using type = Struct;                                \
  };
#include "trace/events.def"
template <EventType T>
using EventStruct = typename EventStructOf<T>::type;

// Record size per EventType, indexed by the type's number; 0 = not a valid type.
inline constexpr auto kEventSize = [] {
  std::array<uint16_t, static_cast<size_t>(EventType::kMax)> size{};
#define TRAPSCOPE_EVENT(Id, number, Struct, name, label) \
  size[static_cast<size_t>(EventType::Id)] = sizeof(Struct);
#include "trace/events.def"
  return size;
}();

// Records are stored back to back (trace files, the recorder, the visualizer's batches): every
// size is a multiple of 8 so that each record's 8-byte fields stay aligned.
constexpr bool event_sizes_aligned() {
  for (uint16_t size : kEventSize) {
    if (size % 8) return false;
  }
  return true;
}
static_assert(event_sizes_aligned());

constexpr uint16_t event_size(EventType type) {
  auto i = static_cast<size_t>(type);
  return i < static_cast<size_t>(EventType::kMax) ? kEventSize[i] : 0;
}

// A filled header for a record of type T (size set from the table).
template <typename T>
constexpr EventHeader make_header(EventType type) {
  EventHeader h{};
  h.type = type;
  h.size = sizeof(T);
  h.cpl = kCplUnknown;
  return h;
}

// Any event record, big enough for every type (as Tracy's QueueItem beside its enum): a record
// read into one (size checked against kEventSize) is reached through the member of its type.
union AnyEvent {
  EventHeader header;
  VmExitEvent exit;
  RunEndEvent run_end;
  PageWalkEvent walk;
  RingTransitionEvent ring;
  ExceptionEvent exception;
  InstructionEvent insn;
  VirtEvent virt;  // kVmmTrap, kSensitiveNoTrap, kVmTransition
  NestedWalkEvent nested_walk;
  ShadowPagingEvent shadow;
  EptViolationEvent ept_violation;
  BtTranslateEvent bt_translate;
  BtChainEvent bt_chain;
  BtLookupEvent bt_lookup;
  BtInvalidateEvent bt_invalidate;
  BtCalloutEvent bt_callout;
  BtCountsEvent bt_counts;
  DeviceEvent device;
  uint8_t raw[sizeof(NestedWalkEvent)];
};
#define TRAPSCOPE_EVENT(Id, number, Struct, name, label) \
  static_assert(sizeof(Struct) <= sizeof(AnyEvent), "AnyEvent lacks a member for " #Struct);
#include "trace/events.def"

// Lambdas as one overload set, for visit: visit(h, Overloaded{[](const VmExitEvent&) {…},
// [](const auto&) {…}}) (the most specific overload is called).
template <typename... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <typename... F>
Overloaded(F...) -> Overloaded<F...>;

// The one dispatch over event types (Tracy's consumer: one switch calling process(const X&)):
// calls f(record) with the record as its struct when its size is its type's, else
// f(header) (an unknown type, or a size that does not match: a corrupt record).
template <typename F>
decltype(auto) visit(const EventHeader& h, F&& f) {
  switch (h.type) {
#define TRAPSCOPE_EVENT(Id, number, Struct, name, label)                  \
  case EventType::Id:                                                      \
    if (h.size == sizeof(Struct)) return f(reinterpret_cast<const Struct&>(h)); \
    break;
#include "trace/events.def"
    default: break;
  }
  return f(h);
}

}  // namespace trapscope::trace
