#include "sim/cpu.hpp"

#include <time.h>

#include <bit>

#include "platform/exit_event.hpp"
#include "sim/mmu.hpp"

namespace trapscope::sim {

uint64_t Cpu::event_time() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void raise(uint8_t vector) { throw CpuFault{vector, false, 0}; }
void raise(uint8_t vector, uint32_t error_code) { throw CpuFault{vector, true, error_code}; }

// [SECTION] Registers

uint64_t Cpu::gpr(unsigned index, unsigned size) const { return s.gpr[index] & mask(size); }

void Cpu::set_gpr(unsigned index, unsigned size, uint64_t value) {
  uint64_t& r = s.gpr[index];
  switch (size) {
    case 1: r = (r & ~0xFFull) | (value & 0xFF); break;
    case 2: r = (r & ~0xFFFFull) | (value & 0xFFFF); break;
    case 4: r = value & 0xFFFFFFFFull; break;
    default: r = value; break;
  }
}

// [SECTION] Operands

uint64_t Cpu::read_op(const Instruction& insn, unsigned i) {
  const Operand& op = insn.ops[i];
  switch (op.kind) {
    case OperandKind::kReg:
      switch (op.reg_class) {
        case RegClass::kGpr: return gpr(op.reg, op.size);
        case RegClass::kGprHigh: return (s.gpr[op.reg] >> 8) & 0xFF;
        case RegClass::kSeg: return s.seg[op.reg].selector;
        case RegClass::kCr:
          switch (op.reg) {
            case 0: return s.cr0;
            case 2: return s.cr2;
            case 3: return s.cr3;
            case 4: return s.cr4;
            case 8: return s.cr8;
            default: raise(vec::kUD);
          }
        case RegClass::kDr: return s.dr[op.reg & 7];
        case RegClass::kOther: break;
      }
      throw Unsupported("register operand");
    case OperandKind::kMem:
      return read(static_cast<SegReg>(op.seg), effective_address(insn, op), op.size);
    case OperandKind::kImm: return op.imm & mask(insn.operand_size >= 8 ? insn.operand_size / 8 : 8);
    case OperandKind::kFarPtr: return op.imm;
    case OperandKind::kNone: break;
  }
  throw Unsupported("operand kind");
}

void Cpu::write_op(const Instruction& insn, unsigned i, uint64_t value) {
  const Operand& op = insn.ops[i];
  switch (op.kind) {
    case OperandKind::kReg:
      if (op.reg_class == RegClass::kGpr) return set_gpr(op.reg, op.size, value);
      if (op.reg_class == RegClass::kGprHigh) {
        s.gpr[op.reg] = (s.gpr[op.reg] & ~0xFF00ull) | ((value & 0xFF) << 8);
        return;
      }
      throw Unsupported("write to a special register through write_op");
    case OperandKind::kMem:
      return write(static_cast<SegReg>(op.seg), effective_address(insn, op), op.size, value);
    default: throw Unsupported("write to a non-writable operand");
  }
}

// [SECTION] Segmentation (SDM Vol. 3A 5.3 limit checking, 5.4 type checking; 3.3.7.1
// canonical addressing in 64-bit mode)

uint64_t Cpu::linear_address(SegReg seg, uint64_t offset, unsigned size, Access access) {
  const Segment& sg = s.seg[seg];
  if (mode64()) {
    const uint64_t base = (seg == kFs || seg == kGs) ? sg.base : 0;
    const uint64_t la = base + offset;
    const auto canonical = [](uint64_t a) {
      return static_cast<uint64_t>(static_cast<int64_t>(a << 16) >> 16) == a;
    };
    if (!canonical(la) || !canonical(la + size - 1)) raise(seg == kSs ? vec::kSS : vec::kGP, 0);
    return la;
  }
  const uint8_t fault = seg == kSs ? vec::kSS : vec::kGP;
  if (protected_mode() && !(s.rflags & kVM)) {
    if (sg.unusable || (sg.selector < 4 && seg != kCs && seg != kSs && sg.s == 1 && !sg.present)) {
      raise(fault, 0);
    }
    const bool code = sg.type & 0x8;
    if (access == Access::kWrite && (code || !(sg.type & 0x2))) raise(fault, 0);
    if (access == Access::kRead && code && !(sg.type & 0x2)) raise(fault, 0);
    const bool expand_down = !code && (sg.type & 0x4);
    const uint64_t last = offset + size - 1;
    if (expand_down) {
      const uint64_t upper = sg.db ? 0xFFFFFFFFull : 0xFFFFull;
      if (offset <= sg.limit || last > upper) raise(fault, 0);
    } else if (last > sg.limit || last < offset) {
      raise(fault, 0);
    }
  } else {
    if (offset + size - 1 > sg.limit) raise(fault, 0);
  }
  return (sg.base + offset) & 0xFFFFFFFFull;
}

// [SECTION] Memory

uint64_t Cpu::physical_read(uint64_t gpa, unsigned size) {
  uint64_t v = 0;
  if (mem_.contains(gpa, size)) {
    std::memcpy(&v, mem_.data() + gpa, size);
    return v;
  }
  if (platform::PassthroughDevice* pt = mapped_passthrough(gpa, size)) {
    std::memcpy(&v, pt->window().data() + (gpa - platform::kPassthroughBase), size);
    return v;  // host memory mapped into guest-physical space: no exit
  }
  // Unbacked: an MMIO exit, handled by the platform as on the KVM engine (all ones today).
  uint8_t buf[8] = {};
  take(platform::handle_exit(devices_, platform::ExitMmioRead{gpa, {buf, size}}));
  std::memcpy(&v, buf, size);
  record_exit_mmio(gpa, size, false, v);
  return v;
}

void Cpu::physical_write(uint64_t gpa, unsigned size, uint64_t value) {
  if (mem_.contains(gpa, size)) {
    std::memcpy(mem_.data() + gpa, &value, size);
    note_write(gpa, size);
    return;
  }
  if (platform::PassthroughDevice* pt = mapped_passthrough(gpa, size)) {
    std::memcpy(pt->window().data() + (gpa - platform::kPassthroughBase), &value, size);
    passthrough_turn(*pt);
    return;
  }
  uint8_t buf[8];
  std::memcpy(buf, &value, sizeof buf);
  take(platform::handle_exit(devices_, platform::ExitMmioWrite{gpa, {buf, size}}));
  record_exit_mmio(gpa, size, true, value);
}

platform::PassthroughDevice* Cpu::mapped_passthrough(uint64_t gpa, unsigned size) {
  platform::PassthroughDevice* pt = devices_.passthrough.get();
  return pt != nullptr && pt->mapped() && pt->contains(gpa, size) ? pt : nullptr;
}

// The mapped passthrough device's turn after a guest store to its window: it polls its doorbell
// as its host thread would (platform/passthrough.hpp), in lock-step so runs are deterministic.
// No VM exit: its DMA and IOMMU events are emitted at the storing instruction.
void Cpu::passthrough_turn(platform::PassthroughDevice& pt) {
  if (!pt.service()) return;
  for (const trace::DeviceEvent& e : pt.take_events()) devices_.emit(e);
  trace::EventHeader at{};
  at.time_ns = event_time();
  at.rip = fault_rip;
  at.cpl = cpl();
  at.cpu_mode = s.mode();
  platform::emit_device_events(devices_, sink_, at, [this] { return next_seq(); });
}

namespace {
// Little-endian loads and stores of 1, 2, 4 or 8 bytes at a host address (fixed-size copies).
uint64_t load_host(const uint8_t* p, unsigned size) {
  switch (size) {
    case 1: return *p;
    case 2: { uint16_t v; std::memcpy(&v, p, 2); return v; }
    case 4: { uint32_t v; std::memcpy(&v, p, 4); return v; }
    default: { uint64_t v; std::memcpy(&v, p, 8); return v; }
  }
}
void store_host(uint8_t* p, unsigned size, uint64_t value) {
  switch (size) {
    case 1: *p = static_cast<uint8_t>(value); break;
    case 2: { const auto v = static_cast<uint16_t>(value); std::memcpy(p, &v, 2); break; }
    case 4: { const auto v = static_cast<uint32_t>(value); std::memcpy(p, &v, 4); break; }
    default: std::memcpy(p, &value, 8); break;
  }
}
bool host_size(unsigned size) { return size == 1 || size == 2 || size == 4 || size == 8; }
}  // namespace

// Both go through the host-pointer fast path first (host_data): same checks, TLB hits and
// bytes as the full path below, which takes everything else (and raises the faults).
uint64_t Cpu::read(SegReg seg, uint64_t offset, unsigned size, Access access) {
  if (access == Access::kRead && host_size(size)) {
    if (const uint8_t* p = host_data<false>(seg, offset, size, addr_mode(), cpl() == 3, 1)) {
      return load_host(p, size);
    }
  }
  const uint64_t la = linear_address(seg, offset, size, access);
  const bool user = cpl() == 3;
  const uint64_t pa = translate(la, access, user);
  if ((la & 0xFFF) + size <= 0x1000) return physical_read(pa, size);
  // Crosses a page: translate both pages before reading.
  const unsigned first = static_cast<unsigned>(0x1000 - (la & 0xFFF));
  const uint64_t pa2 = translate(la + first, access, user);
  const uint64_t lo = physical_read(pa, first);
  const uint64_t hi = physical_read(pa2, size - first);
  return lo | (hi << (8 * first));
}

void Cpu::write(SegReg seg, uint64_t offset, unsigned size, uint64_t value) {
  if (host_size(size)) {
    if (uint8_t* p = host_data<true>(seg, offset, size, addr_mode(), cpl() == 3, 1)) {
      return store_host(p, size, value);
    }
  }
  const uint64_t la = linear_address(seg, offset, size, Access::kWrite);
  const bool user = cpl() == 3;
  const uint64_t pa = translate(la, Access::kWrite, user);
  if ((la & 0xFFF) + size <= 0x1000) return physical_write(pa, size, value);
  const unsigned first = static_cast<unsigned>(0x1000 - (la & 0xFFF));
  const uint64_t pa2 = translate(la + first, Access::kWrite, user);
  physical_write(pa, first, value);
  physical_write(pa2, size - first, value >> (8 * first));
}

uint64_t Cpu::read_system(uint64_t linear, unsigned size) {
  const uint64_t pa = translate(linear, Access::kRead, false);
  if ((linear & 0xFFF) + size <= 0x1000) return physical_read(pa, size);
  const unsigned first = static_cast<unsigned>(0x1000 - (linear & 0xFFF));
  const uint64_t pa2 = translate(linear + first, Access::kRead, false);
  return physical_read(pa, first) | (physical_read(pa2, size - first) << (8 * first));
}

void Cpu::write_system(uint64_t linear, unsigned size, uint64_t value) {
  const uint64_t pa = translate(linear, Access::kWrite, false);
  if ((linear & 0xFFF) + size <= 0x1000) return physical_write(pa, size, value);
  const unsigned first = static_cast<unsigned>(0x1000 - (linear & 0xFFF));
  const uint64_t pa2 = translate(linear + first, Access::kWrite, false);
  physical_write(pa, first, value);
  physical_write(pa2, size - first, value >> (8 * first));
}

unsigned Cpu::fetch(uint8_t* out, unsigned max) {
  const Segment& cs = s.seg[kCs];
  uint64_t la = mode64() ? s.rip : ((cs.base + s.rip) & 0xFFFFFFFFull);
  if (!mode64() && s.rip > cs.limit) raise(vec::kGP, 0);
  if (!mode64()) max = static_cast<unsigned>(std::min<uint64_t>(max, uint64_t{cs.limit} - s.rip + 1));
  const bool user = cpl() == 3;
  unsigned n = 0;
  while (n < max) {
    uint64_t pa;
    if (n == 0) {
      pa = translate(la, Access::kExecute, user);
    } else {
      const uint64_t cr2 = s.cr2;
      try {
        pa = translate(la + n, Access::kExecute, user);
      } catch (const CpuFault&) {
        s.cr2 = cr2;  // no #PF is delivered for this look-ahead
        // The next page is not fetchable: decode what we have; if the instruction needs it,
        // the step loop re-raises the fault for that address.
        break;
      }
    }
    const unsigned chunk = std::min<unsigned>(max - n, static_cast<unsigned>(0x1000 - ((la + n) & 0xFFF)));
    for (unsigned i = 0; i < chunk; ++i) out[n + i] = static_cast<uint8_t>(physical_read(pa + i, 1));
    n += chunk;
  }
  return n;
}

// [SECTION] Stack

unsigned Cpu::stack_address_size() const {
  if (mode64()) return 8;
  return s.seg[kSs].db ? 4 : 2;
}

void Cpu::push(uint64_t value, unsigned size) {
  const unsigned as = stack_address_size();
  const uint64_t rsp = (s.gpr[kRsp] - size) & mask(as);
  write(kSs, rsp, size, value);
  set_gpr(kRsp, as == 4 && !mode64() ? 4 : as, rsp);
  if (as == 2) s.gpr[kRsp] = (s.gpr[kRsp] & ~0xFFFFull) | rsp;
}

uint64_t Cpu::pop(unsigned size) {
  const unsigned as = stack_address_size();
  const uint64_t rsp = s.gpr[kRsp] & mask(as);
  const uint64_t v = read(kSs, rsp, size);
  const uint64_t next = (rsp + size) & mask(as);
  if (as == 2) s.gpr[kRsp] = (s.gpr[kRsp] & ~0xFFFFull) | next;
  else set_gpr(kRsp, as, next);
  return v;
}

// [SECTION] Flags (SDM Vol. 1 3.4.3.1, Appendix A)

bool Cpu::cond(uint8_t cc) const {
  const uint64_t f = s.rflags;
  bool r;
  switch (cc >> 1) {
    case 0: r = f & kOF; break;                                   // O
    case 1: r = f & kCF; break;                                   // B/C
    case 2: r = f & kZF; break;                                   // E/Z
    case 3: r = (f & kCF) || (f & kZF); break;                    // BE
    case 4: r = f & kSF; break;                                   // S
    case 5: r = f & kPF; break;                                   // P
    case 6: r = !(f & kSF) != !(f & kOF); break;                  // L
    default: r = (f & kZF) || (!(f & kSF) != !(f & kOF)); break;  // LE
  }
  return (cc & 1) ? !r : r;
}

void Cpu::flags_szp(uint64_t result, unsigned size) {
  result &= mask(size);
  uint64_t f = s.rflags & ~(kSF | kZF | kPF);
  if (result == 0) f |= kZF;
  if (result & sign_bit(size)) f |= kSF;
  if (!(std::popcount(static_cast<uint8_t>(result)) & 1)) f |= kPF;
  s.rflags = f;
}

void Cpu::flags_logic(uint64_t result, unsigned size) {
  s.rflags &= ~(kCF | kOF | kAF);
  flags_szp(result, size);
}

void Cpu::flags_add(uint64_t a, uint64_t b, uint64_t carry, uint64_t result, unsigned size) {
  const uint64_t m = mask(size);
  a &= m;
  b &= m;
  result &= m;
  flags_szp(result, size);
  uint64_t f = s.rflags & ~(kCF | kOF | kAF);
  const bool cf = carry ? result <= a : result < a;
  if (cf) f |= kCF;
  if (((a ^ result) & (b ^ result)) & sign_bit(size)) f |= kOF;
  if ((a ^ b ^ result) & 0x10) f |= kAF;
  s.rflags = f;
}

void Cpu::flags_sub(uint64_t a, uint64_t b, uint64_t borrow, uint64_t result, unsigned size) {
  const uint64_t m = mask(size);
  a &= m;
  b &= m;
  result &= m;
  flags_szp(result, size);
  uint64_t f = s.rflags & ~(kCF | kOF | kAF);
  const bool cf = borrow ? a <= b : a < b;
  if (cf) f |= kCF;
  if (((a ^ b) & (a ^ result)) & sign_bit(size)) f |= kOF;
  if ((a ^ b ^ result) & 0x10) f |= kAF;
  s.rflags = f;
}

// [SECTION] Port I/O (SDM Vol. 1 19.5: IOPL, then the TSS I/O permission bitmap)

bool Cpu::io_allowed(uint16_t port, unsigned size) {
  if (!protected_mode()) return true;
  const unsigned iopl = (s.rflags & kIOPL) >> 12;
  if (!(s.rflags & kVM) && cpl() <= iopl) return true;
  // The TSS must be a 32/64-bit TSS (type 9 or 11) with a bitmap covering the bits.
  const Segment& tr = s.tr;
  if (tr.unusable || (tr.type & 0xD) != 0x9 || tr.limit < 103) return false;
  const uint64_t map_base = read_system(tr.base + 102, 2);
  const uint64_t byte = map_base + port / 8;
  if (byte + 1 > tr.limit) return false;
  const uint64_t bits = read_system(tr.base + byte, 2);
  const uint64_t want = ((1ull << size) - 1) << (port & 7);  // one bit per port accessed
  return (bits & want) == 0;
}

uint64_t Cpu::port_in(uint16_t port, unsigned size) {
  if (!io_allowed(port, size)) raise(vec::kGP, 0);
  uint8_t buf[8] = {};
  take(platform::handle_exit(devices_,
                             platform::ExitIoIn{port, static_cast<uint8_t>(size), 1, {buf, size}}));
  uint64_t v = 0;
  std::memcpy(&v, buf, size);
  return v;
}

void Cpu::port_out(uint16_t port, unsigned size, uint64_t value) {
  if (!io_allowed(port, size)) raise(vec::kGP, 0);
  uint8_t buf[8];
  std::memcpy(buf, &value, 8);
  take(platform::handle_exit(devices_,
                             platform::ExitIoOut{port, static_cast<uint8_t>(size), 1, {buf, size}}));
}

// What the platform's exit handler decided (platform/handle_exit.hpp), as the step loop's
// requests: the guest's exit code ends the run after this instruction, a halt after it, a
// device cap at once (LimitReached).
void Cpu::take(const platform::ExitAction& action) {
  if (!action.stop) return;
  switch (action.reason) {
    case trace::RunEndReason::kGuestExit: exit_requested = true; break;
    case trace::RunEndReason::kHalted: halted = true; break;
    default: throw LimitReached{action.reason};
  }
}

// [SECTION] VM-exit-equivalent events (built by platform/exit_event.hpp, as on KVM)

namespace {
platform::ExitSite exit_site(Cpu& cpu) {
  platform::ExitSite site;
  site.seq = cpu.next_seq();
  site.time_ns = Cpu::event_time();
  site.rip = cpu.fault_rip;
  site.cpl = cpu.cpl();
  site.mode = cpu.s.mode();
  site.insn_addr = linear_address(cpu.s, kCs, cpu.fault_rip);
  if (cpu.insn_bytes) site.insn = {cpu.insn_bytes, cpu.insn_len};
  return site;
}
}  // namespace

void Cpu::record_exit_io(uint16_t port, unsigned size, bool out, uint32_t count, uint64_t value) {
  ++exits;
  if (!sink_) {
    platform::HypercallRecord hc;
    devices_.hypercall.take_record(&hc);
    devices_.device_events.clear();
    return;
  }
  uint8_t first[8];
  std::memcpy(first, &value, sizeof first);
  const auto sz = static_cast<uint8_t>(size);
  const std::span<uint8_t> data{first, size};
  const trace::VmExitEvent e =
      out ? platform::exit_event(platform::ExitIoOut{port, sz, count, data}, exit_site(*this))
          : platform::exit_event(platform::ExitIoIn{port, sz, count, data}, exit_site(*this));
  sink_->on_event(e.header);
  if (platform::HypercallRecord hc; devices_.hypercall.take_record(&hc)) {
    const trace::VmExitEvent h = platform::hypercall_event(hc, e, next_seq());
    sink_->on_event(h.header);
  }
  platform::emit_device_events(devices_, sink_, e.header, [this] { return next_seq(); });
}

void Cpu::record_exit_mmio(uint64_t gpa, unsigned size, bool write, uint64_t value) {
  ++exits;
  if (!sink_) {
    devices_.device_events.clear();
    return;
  }
  uint8_t bytes[8];
  std::memcpy(bytes, &value, sizeof bytes);
  const std::span<uint8_t> data{bytes, size};
  const trace::VmExitEvent e =
      write ? platform::exit_event(platform::ExitMmioWrite{gpa, data}, exit_site(*this))
            : platform::exit_event(platform::ExitMmioRead{gpa, data}, exit_site(*this));
  sink_->on_event(e.header);
  platform::emit_device_events(devices_, sink_, e.header, [this] { return next_seq(); });
  // One rep movs/stos at unbacked memory makes an exit per element: stop inside it.
  if (sink_->full()) [[unlikely]] throw LimitReached{trace::RunEndReason::kEventLimit};
}

void Cpu::record_exit_hlt() {
  ++exits;
  take(platform::handle_exit(devices_, platform::ExitHlt{}));
  if (!sink_) return;
  const trace::VmExitEvent e = platform::exit_event(platform::ExitHlt{}, exit_site(*this));
  sink_->on_event(e.header);
}

}  // namespace trapscope::sim
