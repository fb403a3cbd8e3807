#include "gdbstub/session.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <stdexcept>

#include "platform/guest_paging.hpp"
#include "sim/bt/translator.hpp"
#include "trace/page_walk.hpp"
#include "vmm/doctor.hpp"
#include "trace/printer.hpp"
#include "x86/address.hpp"
#include "x86/decoder.hpp"

namespace trapscope::gdbstub {

using trace::RunEndReason;

// Forwards events to the run's sink, leaving out the ends of the stub's short runs; remembers
// DR6 of the last KVM_EXIT_DEBUG and the last kKeptEvents events (`monitor events`).
class Session::Sink final : public trace::EventSink {
 public:
  static constexpr size_t kKeptEvents = 1024;
  explicit Sink(trace::EventSink* next) : next_(next) {}
  void on_event(const trace::EventHeader& e) override {
    if (e.type == trace::EventType::kRunEnd) {
      const auto& end = reinterpret_cast<const trace::RunEndEvent&>(e);
      if (!trace::ends_guest_run(end.reason)) return;
    }
    if (e.type == trace::EventType::kVmExit) {
      ++exits;
      const auto& x = reinterpret_cast<const trace::VmExitEvent&>(e);
      if (x.reason == static_cast<uint32_t>(trace::ExitReason::kDebug)) dr6 = x.payload.debug.dr6;
    }
    const auto* p = reinterpret_cast<const uint8_t*>(&e);
    kept.emplace_back(p, p + e.size);
    if (kept.size() > kKeptEvents) kept.pop_front();
    if (next_) next_->on_event(e);
  }
  bool full() const override { return next_ && next_->full(); }
  uint64_t dr6 = 0;
  uint64_t exits = 0;  // VM exits seen (the replays of reverse execution are not seen)
  std::deque<std::vector<uint8_t>> kept;

 private:
  trace::EventSink* next_;
};

namespace {

constexpr double kChunkSeconds = 0.1;          // KVM: a continue polls gdb this often
constexpr uint64_t kChunkInstructions = 1 << 16;  // simulator: … or after this many instructions
constexpr int kSigInt = 2, kSigTrap = 5, kSigIll = 4, kSigSegv = 11;

// "addr,len" (hex) as in m, M, Z.
bool parse_addr_len(std::string_view s, uint64_t* addr, uint64_t* len) {
  const size_t comma = s.find(',');
  if (comma == std::string_view::npos) return false;
  return parse_hex_u64(s.substr(0, comma), addr) && parse_hex_u64(s.substr(comma + 1), len);
}

std::string hex_number(uint64_t v) {
  char buf[17];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, 16);
  return std::string(buf, r.ptr);
}

std::string console_packet(std::string_view text) {
  std::string out = "O";
  out += to_hex(text);
  return out;
}

bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) {
  return a < b + blen && b < a + alen;
}

}  // namespace

Session::Session(backend::Backend& machine, trace::EventSink* sink,
                 const std::atomic<bool>* quit)
    : machine_(machine), quit_(quit), sink_(std::make_unique<Sink>(sink)) {
  if (machine_.kind() == backend::Kind::kSim) start_ = machine_.snapshot();
  layout_ = layout_for(machine_.registers());
}

Session::~Session() = default;

void Session::send(Channel& channel, std::string_view data) {
  last_reply_ = frame(data);
  channel.write(last_reply_);
}

SessionEnd Session::serve(Channel& channel) {
  // A new connection: gdb starts from scratch (acks, breakpoints, the layout it will read).
  no_ack_ = false;
  parser_ = PacketParser();
  breakpoints_.clear();
  sw_breakpoints_.clear();
  watches_.clear();
  layout_ = layout_for(machine_.registers());
  shown_ = layout_;
  std::string buf;
  for (;;) {
    buf.clear();
    if (quitting()) {
      outcome_.reason = RunEndReason::kStopped;
      return SessionEnd::kKilled;
    }
    if (channel.read(&buf, -1) == Channel::Read::kClosed) return SessionEnd::kDisconnected;
    inputs_.clear();
    parser_.feed(buf, inputs_);
    for (size_t i = 0; i < inputs_.size(); ++i) {
      const Input in = inputs_[i];  // a copy: handle() may feed the parser (a 0x03 while running)
      switch (in.kind) {
        case Input::Kind::kAck:
        case Input::Kind::kInterrupt:  // stopped already: nothing to interrupt
          break;
        case Input::Kind::kNack:
          if (!no_ack_ && !last_reply_.empty()) channel.write(last_reply_);
          break;
        case Input::Kind::kBadChecksum:
          if (!no_ack_) channel.write("-");
          break;
        case Input::Kind::kOverflow:
          if (!no_ack_) channel.write("+");
          send(channel, "E01");
          break;
        case Input::Kind::kPacket: {
          if (!no_ack_) channel.write("+");
          std::optional<SessionEnd> end;
          const std::string reply = handle(in.data, channel, &end);
          if (!no_reply_) send(channel, reply);
          no_reply_ = false;
          if (enter_no_ack_) no_ack_ = true;
          enter_no_ack_ = false;
          if (end) return *end;
          break;
        }
      }
    }
  }
}

std::string Session::stop_reply(const Stop& s) const {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02x", s.signal & 0xFF);
  if (s.kind == Stop::kEnded) {
    if (outcome_.reason == RunEndReason::kGuestExit) {
      return std::string("W") + hex_number(outcome_.exit_code & 0xFF);
    }
    if (outcome_.reason == RunEndReason::kHalted) return "W00";
    return std::string("X") + buf;
  }
  std::string r = std::string("T") + buf + "thread:1;";
  switch (s.kind) {
    case Stop::kSwBreak: r += "swbreak:;"; break;
    case Stop::kHwBreak: r += "hwbreak:;"; break;
    case Stop::kWatch:
      r += std::string(s.watch == '2' ? "watch" : s.watch == '3' ? "rwatch" : "awatch") + ":" +
           hex_number(s.addr) + ";";
      break;
    case Stop::kReplayBegin: r += "replaylog:begin;"; break;
    default: break;
  }
  return r;
}

std::optional<uint64_t> Session::physical(uint64_t linear) {
  const x86::CpuState s = machine_.registers();
  return platform::guest_linear_to_physical(machine_.memory(), {s.cr0, s.cr3, s.cr4, s.efer},
                                            linear);
}

std::string Session::read_memory(uint64_t addr, uint64_t len) {
  const auto mem = machine_.memory();
  std::vector<uint8_t> out;
  while (out.size() < len) {
    const uint64_t linear = addr + out.size();
    const auto gpa = physical(linear);
    if (!gpa || *gpa >= mem.size()) break;
    const uint64_t in_page = 0x1000 - (linear & 0xFFF);
    const uint64_t n = std::min({len - out.size(), in_page, mem.size() - *gpa});
    out.insert(out.end(), mem.begin() + static_cast<ptrdiff_t>(*gpa),
               mem.begin() + static_cast<ptrdiff_t>(*gpa + n));
  }
  if (out.empty() && len > 0) return "E14";  // EFAULT
  return to_hex(out);
}

bool Session::write_memory(uint64_t addr, std::span<const uint8_t> bytes) {
  // All pages first, so that a write that is refused writes nothing.
  std::vector<std::pair<uint64_t, std::span<const uint8_t>>> pieces;
  for (size_t done = 0; done < bytes.size();) {
    const uint64_t linear = addr + done;
    const auto gpa = physical(linear);
    if (!gpa) return false;
    const size_t n = std::min<size_t>(bytes.size() - done, 0x1000 - (linear & 0xFFF));
    if (*gpa > machine_.memory().size() || machine_.memory().size() - *gpa < n) return false;
    pieces.emplace_back(*gpa, bytes.subspan(done, n));
    done += n;
  }
  for (const auto& [gpa, piece] : pieces) {
    if (!machine_.write_memory(gpa, piece)) return false;
  }
  return true;
}

std::vector<std::vector<uint8_t>> Session::watched_bytes() {
  std::vector<std::vector<uint8_t>> out;
  for (const Watch& w : watches_) {
    std::vector<uint8_t> b;
    from_hex(read_memory(w.addr, w.len), &b);  // "E14" fails: empty
    out.push_back(std::move(b));
  }
  return out;
}

std::optional<Session::Stop> Session::check_watches(const std::vector<std::vector<uint8_t>>& before,
                                                    const x86::CpuState& regs_before) {
  const auto after = watched_bytes();
  // The explicit memory operands of the instruction that just ran (decoded again at its RIP).
  std::vector<std::pair<uint64_t, uint64_t>> operands;
  bool decoded = false;
  for (size_t i = 0; i < watches_.size(); ++i) {
    const Watch& w = watches_[i];
    if (w.kind != '2' && !decoded) {
      decoded = true;
      const uint64_t ip = x86::linear_address(regs_before, x86::kCs, regs_before.rip);
      std::vector<uint8_t> code;
      if (from_hex(read_memory(ip, 15), &code) && !code.empty()) {
        x86::Instruction insn;
        if (x86::decode(code, regs_before.mode(), &insn) == x86::DecodeStatus::kOk) {
          x86::CpuState next = regs_before;
          next.rip += insn.length;
          for (unsigned k = 0; k < insn.operand_count; ++k) {
            const x86::Operand& op = insn.ops[k];
            if (op.kind != x86::OperandKind::kMem || insn.op == x86::Op::kLea) continue;
            const uint64_t ea = x86::effective_address(insn, op, next);
            operands.emplace_back(
                x86::linear_address(regs_before, static_cast<x86::SegReg>(op.seg), ea),
                std::max<uint64_t>(op.size, 1));
          }
        }
      }
    }
    const bool changed = before[i] != after[i];
    bool touched = false;
    for (const auto& [a, n] : operands) touched = touched || overlaps(a, n, w.addr, w.len);
    const bool hit = w.kind == '2' ? changed : w.kind == '3' ? (touched && !changed) : (changed || touched);
    if (hit) {
      Stop s;
      s.kind = Stop::kWatch;
      s.addr = w.addr;
      s.watch = w.kind;
      return s;
    }
  }
  return std::nullopt;
}

bool Session::interrupted(Channel& channel) {
  if (quitting()) return true;
  std::string buf;
  const Channel::Read got_read = channel.read(&buf, 0);
  if (got_read == Channel::Read::kClosed) return true;  // gdb is gone: stop and wait for it
  if (got_read != Channel::Read::kData) return false;
  std::vector<Input> got;
  parser_.feed(buf, got);
  for (const Input& in : got) {
    if (in.kind == Input::Kind::kInterrupt) return true;
  }
  return false;
}

backend::RunOutcome Session::outcome() const {
  backend::RunOutcome r = outcome_;
  r.exits = sink_->exits;
  r.instructions = icount_;
  return r;
}

Session::Stop Session::ended(const backend::RunOutcome& r) {
  outcome_ = r;
  run_ended_ = true;
  Stop s;
  s.kind = Stop::kEnded;
  switch (r.reason) {
    case RunEndReason::kHalted: case RunEndReason::kGuestExit: s.signal = 0; break;
    case RunEndReason::kTripleFault: s.signal = kSigSegv; break;
    default: s.signal = kSigIll; break;
  }
  return s;
}

Session::Stop Session::resume_sim(bool step, Channel& channel) {
  const bool per_instruction = step || !watches_.empty() || breakpoints_.size() > 1;
  Stop s;
  for (uint64_t n = 0;; ++n) {
    const uint64_t rip = machine_.registers().rip;
    if (n > 0 && std::find(breakpoints_.begin(), breakpoints_.end(), rip) != breakpoints_.end()) {
      const bool sw = std::find(sw_breakpoints_.begin(), sw_breakpoints_.end(), rip) !=
                      sw_breakpoints_.end();
      s.kind = sw ? Stop::kSwBreak : Stop::kHwBreak;
      return s;
    }
    if (n > 0 && (per_instruction ? (n & 0xFFF) == 0 : true) && interrupted(channel)) {
      s.signal = kSigInt;
      return s;
    }
    backend::RunOutcome r;
    if (per_instruction) {
      const auto before = watched_bytes();
      const x86::CpuState regs = machine_.registers();
      r = machine_.step(sink_.get());
      icount_ += r.instructions;
      if (r.reason != RunEndReason::kStep) return trace::ends_guest_run(r.reason) ? ended(r) : s;
      if (auto w = check_watches(before, regs)) return *w;
      if (step) return s;
    } else {
      backend::StopCondition c;
      c.timeout_s = 3600;
      c.max_instructions = kChunkInstructions;
      c.has_breakpoint = breakpoints_.size() == 1;
      c.breakpoint = c.has_breakpoint ? breakpoints_[0] : 0;
      r = machine_.run(c, sink_.get());
      icount_ += r.instructions;
      if (r.reason == RunEndReason::kBreakpoint) {
        s.kind = sw_breakpoints_.empty() ? Stop::kHwBreak : Stop::kSwBreak;
        return s;
      }
      if (r.reason != RunEndReason::kInstructionLimit) {
        return trace::ends_guest_run(r.reason) ? ended(r) : s;
      }
    }
  }
}

Session::Stop Session::resume_kvm(bool step, Channel& channel) {
  Stop s;
  if (step) {
    const backend::RunOutcome r = machine_.step(sink_.get());
    if (r.reason == RunEndReason::kStep) return s;
    if (trace::ends_guest_run(r.reason)) return ended(r);
    return s;
  }
  backend::StopCondition c;
  c.timeout_s = kChunkSeconds;
  for (const uint64_t b : breakpoints_) c.debug_slots.push_back({b, 0, 1});
  for (const Watch& w : watches_) {
    c.debug_slots.push_back({w.addr, static_cast<uint8_t>(w.kind == '2' ? 1 : 3),
                             static_cast<uint8_t>(w.len)});
  }
  for (;;) {
    sink_->dr6 = 0;
    const backend::RunOutcome r = machine_.run(c, sink_.get());
    if (r.reason == RunEndReason::kTimeLimit) {
      if (interrupted(channel)) {
        s.signal = kSigInt;
        return s;
      }
      continue;
    }
    if (r.reason == RunEndReason::kBreakpoint) {
      for (size_t i = 0; i < c.debug_slots.size(); ++i) {
        if (!(sink_->dr6 & (1ull << i))) continue;
        if (i < breakpoints_.size()) {
          const bool sw = std::find(sw_breakpoints_.begin(), sw_breakpoints_.end(),
                                    breakpoints_[i]) != sw_breakpoints_.end();
          s.kind = sw ? Stop::kSwBreak : Stop::kHwBreak;
        } else {
          const Watch& w = watches_[i - breakpoints_.size()];
          s.kind = Stop::kWatch;
          s.addr = w.addr;
          s.watch = w.kind;
        }
        return s;
      }
      return s;  // a debug exit without a slot bit: a plain SIGTRAP
    }
    if (trace::ends_guest_run(r.reason)) return ended(r);
    return s;  // stopped (SIGINT to trapscope) or another pause
  }
}

Session::Stop Session::resume(bool step, Channel& channel) {
  if (run_ended_) return ended(outcome_);
  return machine_.kind() == backend::Kind::kSim ? resume_sim(step, channel)
                                                : resume_kvm(step, channel);
}

// Simulator: back to the session's first state, then forward to `target` instructions (reverse-
// stepi: one before now; reverse-continue: the last breakpoint or watchpoint hit before now).
Session::Stop Session::reverse(bool step) {
  Stop s;
  const uint64_t now = icount_;
  auto replay_to = [&](uint64_t target) {
    machine_.restore(*start_);
    icount_ = 0;
    if (target > 0) {
      backend::StopCondition c;
      c.timeout_s = 3600;
      c.max_instructions = target;
      icount_ = machine_.run(c, nullptr).instructions;
    }
  };
  if (step) {
    if (now == 0) {
      s.kind = Stop::kReplayBegin;
      return s;
    }
    replay_to(now - 1);
    return s;
  }
  // Find the last hit before `now`, stepping from the start with no events.
  machine_.restore(*start_);
  icount_ = 0;
  std::optional<std::pair<uint64_t, Stop>> last;
  while (icount_ + 1 < now) {
    const auto before = watched_bytes();
    const x86::CpuState regs = machine_.registers();
    const backend::RunOutcome r = machine_.step(nullptr);
    if (r.reason != RunEndReason::kStep) break;
    icount_ += r.instructions;
    const uint64_t rip = machine_.registers().rip;
    if (std::find(breakpoints_.begin(), breakpoints_.end(), rip) != breakpoints_.end()) {
      Stop b;
      b.kind = std::find(sw_breakpoints_.begin(), sw_breakpoints_.end(), rip) != sw_breakpoints_.end()
                   ? Stop::kSwBreak : Stop::kHwBreak;
      last = {icount_, b};
    } else if (auto w = check_watches(before, regs)) {
      last = {icount_, *w};
    }
  }
  if (!last) {
    replay_to(0);
    s.kind = Stop::kReplayBegin;
    return s;
  }
  replay_to(last->first);
  return last->second;
}

std::string Session::insert(std::string_view args, bool remove) {
  // type,addr,kind
  if (args.size() < 2 || args[1] != ',') return "E01";
  const char type = args[0];
  const std::string_view rest = args.substr(2);
  const size_t comma = rest.find(',');
  uint64_t addr = 0, kind = 0;
  if (comma == std::string_view::npos || !parse_hex_u64(rest.substr(0, comma), &addr)) return "E01";
  const std::string_view kind_text = rest.substr(comma + 1, rest.find(';', comma + 1) - comma - 1);
  if (!parse_hex_u64(kind_text, &kind)) return "E01";
  const bool kvm = machine_.kind() == backend::Kind::kKvm;
  if (type == '0' || type == '1') {
    auto it = std::find(breakpoints_.begin(), breakpoints_.end(), addr);
    if (remove) {
      if (it != breakpoints_.end()) breakpoints_.erase(it);
      auto sw = std::find(sw_breakpoints_.begin(), sw_breakpoints_.end(), addr);
      if (sw != sw_breakpoints_.end()) sw_breakpoints_.erase(sw);
      return "OK";
    }
    if (it == breakpoints_.end()) {
      if (kvm && breakpoints_.size() + watches_.size() >= 4) return "E28";  // ENOSPC
      breakpoints_.push_back(addr);
    }
    if (type == '0') sw_breakpoints_.push_back(addr);
    return "OK";
  }
  if (type == '2' || type == '3' || type == '4') {
    if (remove) {
      std::erase_if(watches_, [&](const Watch& w) { return w.addr == addr && w.kind == type; });
      return "OK";
    }
    if (kind == 0 || kind > 4096) return "E16";  // EINVAL
    if (kvm) {
      // Debug registers: 1, 2, 4 or 8 bytes, aligned to their length (SDM Vol. 3B 18.2.5);
      // no read-only watch.
      if (type == '3') return "E16";
      if ((kind != 1 && kind != 2 && kind != 4 && kind != 8) || addr % kind != 0) return "E16";
      if (breakpoints_.size() + watches_.size() >= 4) return "E28";
      // A host whose KVM does not report data breakpoints (kvm_pvm emulates CPL 0 and real-mode
      // code without checking them): refused, not silently never hit (`trapscope doctor`).
      static const bool reported =
          vmm::probe_debug(vmm::DebugProbe::kWriteWatch) == "reported";
      if (!reported) return "E95";  // EOPNOTSUPP
    }
    watches_.push_back({addr, kind, type});
    return "OK";
  }
  return "";  // other types: not supported
}

std::string Session::monitor(std::string_view command) {
  auto words_after = [&](std::string_view name) -> std::optional<std::string_view> {
    if (command.substr(0, name.size()) != name) return std::nullopt;
    std::string_view rest = command.substr(name.size());
    if (!rest.empty() && rest[0] != ' ') return std::nullopt;
    while (!rest.empty() && rest[0] == ' ') rest.remove_prefix(1);
    return rest;
  };
  std::string out;
  if (auto arg = words_after("events")) {
    uint64_t n = 10;
    if (!arg->empty()) {
      const auto r = std::from_chars(arg->data(), arg->data() + arg->size(), n);
      if (r.ec != std::errc() || r.ptr != arg->data() + arg->size()) {
        return "usage: monitor events [N]\n";
      }
    }
    n = std::min<uint64_t>(n, sink_->kept.size());
    trace::EventFormatter f({trace::Format::kText, false});
    for (size_t i = sink_->kept.size() - n; i < sink_->kept.size(); ++i) {
      out += f.format(*reinterpret_cast<const trace::EventHeader*>(sink_->kept[i].data())) + "\n";
    }
    if (out.empty()) out = "no events yet\n";
    return out;
  }
  if (auto arg = words_after("walk")) {
    std::string_view a = *arg;
    if (a.substr(0, 2) == "0x" || a.substr(0, 2) == "0X") a.remove_prefix(2);
    uint64_t gva = 0;
    if (!parse_hex_u64(a, &gva)) return "usage: monitor walk GVA (hexadecimal)\n";
    const x86::CpuState s = machine_.registers();
    if (!(s.cr0 & x86::kCr0Pg)) {
      return std::string("paging is off (CR0.PG = 0): linear 0x") + hex_number(gva) +
             " is physical\n";
    }
    const trace::PageWalkEvent w = platform::guest_walk(machine_.memory(), {s.cr0, s.cr3, s.cr4, s.efer}, gva);
    out = std::string("walk of 0x") + hex_number(gva) + " (" +
          std::string(trace::walk_structure_name(w.header.flags)) + std::string(", CR3 0x") +
          hex_number(s.cr3) + ")\n";
    for (const trace::WalkRef& r : trace::decode_walk(w)) {
      out += std::string("  ") + std::string(r.level_name) + std::string("[") +
             std::to_string(r.index) + "] @0x" +
             hex_number(r.entry_address) + std::string(" = 0x") + hex_number(r.entry) + "  " + r.flags +
             (r.fault ? "  (not present: the walk faults here)" : "") + "\n";
    }
    const auto gpa = physical(gva);
    out += gpa ? std::string("  -> guest-physical 0x") + hex_number(*gpa) + "\n" : "  -> not mapped\n";
    return out;
  }
  if (command == "tcache") {
    if (const sim::bt::BtStats* bt = machine_.bt_stats()) return bt->summary();
    return "no translation cache: it exists under --technique bt on the simulator\n";
  }
  if (command == "vmcs") {
    return "the VT-x model's VMCS is not reachable through the backend interface yet "
           "(docs/gdb.md, limits)\n";
  }
  return "trapscope monitor commands: events [N], walk GVA, tcache, vmcs\n";
}

void Session::announce_mode(Channel& channel) {
  const Layout now = layout_for(machine_.registers());
  if (now == shown_) return;
  shown_ = now;
  std::string text = "trapscope: the guest is now in ";
  text += now == Layout::kI8086 ? "real mode" : now == Layout::kI386 ? "protected mode (or long "
          "mode's compatibility sub-mode)" : "64-bit mode";
  if (now == layout_ || (now != Layout::kX86_64 && layout_ != Layout::kX86_64)) {
    text += ": `set architecture " + std::string(architecture_name(now)) +
            "` disassembles its code (docs/gdb.md)\n";
  } else {
    text += "; this connection keeps the " + std::string(architecture_name(layout_)) +
            " register layout: `disconnect`, `set architecture auto` and `target remote` again "
            "for the " + std::string(architecture_name(now)) + " one (docs/gdb.md)\n";
  }
  channel.write(frame(console_packet(text)));
}

std::string Session::handle(std::string_view p, Channel& channel, std::optional<SessionEnd>* end) {
  if (p.empty()) return "";
  const char c = p[0];
  const std::string_view args = p.substr(1);
  switch (c) {
    case '?':
      return stop_reply(last_stop_);
    case 'g':
      return to_hex(read_all(layout_, machine_.registers()));
    case 'G': {
      std::vector<uint8_t> bytes;
      x86::CpuState s = machine_.registers();
      if (!from_hex(args, &bytes) || !write_all(layout_, &s, bytes)) return "E16";
      machine_.set_registers(s);
      return "OK";
    }
    case 'p': {
      uint64_t n = 0;
      if (!parse_hex_u64(args, &n) || n >= register_count(layout_)) return "E16";
      return to_hex(read_one(layout_, machine_.registers(), n));
    }
    case 'P': {
      const size_t eq = args.find('=');
      uint64_t n = 0;
      std::vector<uint8_t> bytes;
      if (eq == std::string_view::npos || !parse_hex_u64(args.substr(0, eq), &n) ||
          !from_hex(args.substr(eq + 1), &bytes)) {
        return "E16";
      }
      x86::CpuState s = machine_.registers();
      if (!write_one(layout_, &s, n, bytes)) return "E16";
      machine_.set_registers(s);
      return "OK";
    }
    case 'm': {
      uint64_t addr = 0, len = 0;
      if (!parse_addr_len(args, &addr, &len)) return "E16";
      return read_memory(addr, std::min<uint64_t>(len, kMaxPacketBytes / 2 - 8));
    }
    case 'M': {
      const size_t colon = args.find(':');
      uint64_t addr = 0, len = 0;
      std::vector<uint8_t> bytes;
      if (colon == std::string_view::npos || !parse_addr_len(args.substr(0, colon), &addr, &len) ||
          !from_hex(args.substr(colon + 1), &bytes) || bytes.size() != len) {
        return "E16";
      }
      return write_memory(addr, bytes) ? "OK" : "E14";
    }
    case 'c':
    case 's':
    case 'C':
    case 'S':
      if ((c == 'c' || c == 's') && !args.empty()) {  // resume at an address
        uint64_t addr = 0;
        if (!parse_hex_u64(args, &addr)) return "E16";
        x86::CpuState s = machine_.registers();
        s.rip = addr;
        machine_.set_registers(s);
      }
      last_stop_ = resume(c == 's' || c == 'S', channel);
      if (last_stop_.kind == Stop::kEnded) *end = SessionEnd::kRunEnded;
      else announce_mode(channel);
      return stop_reply(last_stop_);
    case 'b':
      if (args != "s" && args != "c") return "";
      if (!start_) return "E01";  // KVM: no reverse execution
      last_stop_ = reverse(args == "s");
      announce_mode(channel);
      return stop_reply(last_stop_);
    case 'v':
      if (p == "vCont?") return "vCont;c;C;s;S";
      if (p.substr(0, 6) == "vCont;") {
        const char action = p.size() > 6 ? p[6] : '?';
        if (action != 'c' && action != 's' && action != 'C' && action != 'S') return "E16";
        last_stop_ = resume(action == 's' || action == 'S', channel);
        if (last_stop_.kind == Stop::kEnded) *end = SessionEnd::kRunEnded;
        else announce_mode(channel);
        return stop_reply(last_stop_);
      }
      if (p.substr(0, 5) == "vKill") {
        outcome_.reason = RunEndReason::kStopped;
        *end = SessionEnd::kKilled;
        return "OK";
      }
      return "";
    case 'D':
      *end = SessionEnd::kDetached;
      return "OK";
    case 'k':  // no reply (E.3)
      outcome_.reason = RunEndReason::kStopped;
      *end = SessionEnd::kKilled;
      no_reply_ = true;
      return "";
    case 'H':
    case 'T':
      return "OK";
    case 'Z':
    case 'z':
      return insert(args, c == 'z');
    case 'q':
    case 'Q':
      break;
    default:
      return "";
  }
  // Queries (E.5).
  if (p.substr(0, 10) == "qSupported") {
    std::string r = std::string("PacketSize=") + hex_number(kMaxPacketBytes) +
                    ";qXfer:features:read+;QStartNoAckMode+;swbreak+;hwbreak+;vContSupported+";
    if (start_) r += ";ReverseStep+;ReverseContinue+";
    return r;
  }
  if (p == "QStartNoAckMode") {
    // This packet was acknowledged and so is its OK; from the next packet on nothing is (E.11).
    enter_no_ack_ = true;
    return "OK";
  }
  constexpr std::string_view kXfer = "qXfer:features:read:";
  if (p.substr(0, kXfer.size()) == kXfer) {
    const std::string_view rest = p.substr(kXfer.size());
    const size_t colon = rest.find(':');
    uint64_t offset = 0, len = 0;
    if (colon == std::string_view::npos || !parse_addr_len(rest.substr(colon + 1), &offset, &len)) {
      return "E16";
    }
    if (rest.substr(0, colon) != "target.xml") return "E00";
    // gdb reads the document from offset 0 first: that is when it learns the layout.
    if (offset == 0) shown_ = layout_ = layout_for(machine_.registers());
    const std::string& xml = target_xml(layout_);
    if (offset >= xml.size()) return "l";
    const size_t n = std::min<uint64_t>(len, kMaxPacketBytes / 2);
    const std::string part = xml.substr(offset, n);
    return (offset + part.size() >= xml.size() ? "l" : "m") + part;
  }
  if (p == "qAttached") return "1";  // gdb detaches (not kills) when it quits
  if (p == "qC") return "QC1";
  if (p == "qfThreadInfo") return "m1";
  if (p == "qsThreadInfo") return "l";
  if (p.substr(0, 6) == "qRcmd,") {
    std::vector<uint8_t> bytes;
    if (!from_hex(p.substr(6), &bytes)) return "E16";
    const std::string text =
        monitor(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    channel.write(frame(console_packet(text)));
    return "OK";
  }
  return "";
}

}  // namespace trapscope::gdbstub
