#include "sim/bt/translator.hpp"

#include <time.h>

#include <cstring>

#include "sim/bt/counts.hpp"
#include "x86/decoder.hpp"
#include "x86/classify.hpp"

namespace trapscope::sim::bt {
namespace {

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

bool is_direct(const Instruction& insn) {
  switch (insn.op) {
    case Op::kJcc: case Op::kJcxz: case Op::kLoop: case Op::kLoope: case Op::kLoopne: return true;
    case Op::kJmp: case Op::kCall: return insn.ops[0].kind == OperandKind::kImm;
    default: return false;
  }
}

// Sensitive instructions whose emulation on the virtual CPU is short enough to stay in the
// cache (Adams & Agesen 2006 section 3.2: "cli → vcpu.flags.IF = 0"); the rest call out.
bool in_cache(const Instruction& insn) {
  switch (insn.op) {
    case Op::kCli: case Op::kSti: case Op::kPushf: case Op::kPopf: case Op::kSgdt:
    case Op::kSidt: case Op::kSldt: case Op::kStr: case Op::kSmsw: case Op::kLar:
    case Op::kLsl: case Op::kVerr: case Op::kVerw: case Op::kMovFromSeg:
      return true;
    case Op::kPush: return true;  // push Sreg (the only sensitive push)
    default: return false;
  }
}

template <typename E>
E make_event(Cpu& cpu, trace::EventType type, uint64_t rip) {
  E e{};
  e.header = trace::make_header<E>(type);
  e.header.seq = cpu.next_seq();
  e.header.time_ns = Cpu::event_time();
  e.header.rip = rip;
  e.header.cpl = cpu.cpl();
  e.header.cpu_mode = cpu.s.mode();
  return e;
}

// Flag liveness, then one micro-op per instruction ([SECTION] Micro-ops, [SECTION] Flag
// liveness in translator.hpp).
void build_micro_ops(Unit& u) {
  const size_t n = u.code.size();
  bool need[kBtMaxUnitInsns] = {};
  uint64_t live = kArithFlags;  // at the unit's exit anyone may read them
  for (size_t i = n; i-- > 0;) {
    const FlagUse f = flag_use(u.code[i]);
    need[i] = (f.may_write & live) != 0;
    live = (live & ~f.must_write) | f.read;
  }
  u.micro.clear();
  u.micro.reserve(n + 1);
  int acc = kNoReg;  // the register in the micro-ops' accumulator (microops.cpp)
  for (size_t i = 0; i < n; ++i) {
    u.micro.push_back(make_micro_op(u.code[i], u.mode, need[i], acc));
    if (u.micro.back().generic) u.refresh_context = true;
    acc = u.micro.back().acc_out;
  }
  const BtKind last = u.code.back().kind;
  const bool callout = last == BtKind::kCallout || last == BtKind::kAdaptive;
  // A last instruction after which IP wrapped to 0 also runs on the generic loop, which stores
  // its next RIP: fast_next_rip = 0 means that the micro-ops store RIP themselves.
  const bool wraps = !u.micro.back().sets_rip && u.code.back().next_rip == 0;
  u.insns = static_cast<uint8_t>(n);
  u.fast = static_cast<uint8_t>(callout || wraps ? n - 1 : n);
  if (callout) u.refresh_context = true;
  u.micro.resize(u.fast);  // a trailing callout runs on the executor's generic loop
  u.chainable = u.fast == n && !u.refresh_context;
  u.fast_next_rip = u.fast > 0 && !u.micro.back().sets_rip ? u.micro.back().next : 0;
  u.micro.push_back(end_micro_op(u.chainable ? &u : nullptr));
}

}  // namespace

bool is_control_flow(Op op) {
  switch (op) {
    case Op::kJmp: case Op::kJcc: case Op::kCall: case Op::kRet: case Op::kJcxz:
    case Op::kLoop: case Op::kLoope: case Op::kLoopne: case Op::kJmpFar: case Op::kCallFar:
    case Op::kRetFar: case Op::kIret: case Op::kInt: case Op::kInt3: case Op::kInto:
    case Op::kSyscall: case Op::kSysret: case Op::kUd: case Op::kHlt:
      return true;
    default: return false;
  }
}

std::string_view kind_reason(BtKind kind) {
  switch (kind) {
    case BtKind::kPcRelative:
      return "PC-relative addressing: the operand depends on where the code runs, and the "
             "translated code runs elsewhere, so it is rewritten to an absolute address";
    case BtKind::kDirectBranch:
      return "direct control flow: both possible next RIPs are known at translation time; "
             "each exit is patched to its successor unit once it exists";
    case BtKind::kIndirectBranch:
      return "indirect control flow: the target is known only when it runs, so the exit "
             "looks it up in the translation cache's hash table";
    case BtKind::kAdaptive:
      return "adaptive: it trapped (a fault, or a write to a page holding translated code) as "
             "often as the adaptive threshold, so its unit was retranslated with it as a callout";
    case BtKind::kIdent: case BtKind::kInCache: case BtKind::kCallout: case BtKind::kMax:
      break;
  }
  return "";
}

BtKind translate_insn(Instruction& insn, std::span<const uint8_t> bytes, uint64_t next_rip,
                      std::string_view* reason) {
  const x86::Classification c = x86::classify(insn, bytes);
  if (c.cls != x86::PgClass::kInnocuous) {
    *reason = c.reason;
    return in_cache(insn) ? BtKind::kInCache : BtKind::kCallout;
  }
  if (is_direct(insn)) {
    *reason = kind_reason(BtKind::kDirectBranch);
    return BtKind::kDirectBranch;
  }
  if (is_control_flow(insn.op)) {
    *reason = kind_reason(BtKind::kIndirectBranch);
    return BtKind::kIndirectBranch;
  }
  for (unsigned i = 0; i < insn.operand_count; ++i) {
    Operand& op = insn.ops[i];
    if (op.kind == OperandKind::kMem && op.base == kRipBase) {
      // While the handler runs s.rip is next_rip (sim/cpu.hpp [SECTION] RIP): the same sum,
      // made at translation time.
      op.base = kNoReg;
      op.disp = static_cast<int64_t>(next_rip + static_cast<uint64_t>(op.disp));
      *reason = kind_reason(BtKind::kPcRelative);
      return BtKind::kPcRelative;
    }
  }
  *reason = "";
  return BtKind::kIdent;
}

std::string BtStats::summary() const {
  char buf[1024];
  const uint64_t entries = lookups + chained;
  std::snprintf(
      buf, sizeof buf,
      "binary translation: %llu units in the cache, %llu translations (%llu guest "
      "instructions: %llu IDENT, %llu non-IDENT), %.0f ns per translated instruction\n"
      "  unit entries %llu: %llu by chain, %llu by hash lookup (%llu hits, lookup hit rate "
      "%.2f%%); cache hit rate %.2f%% (entries that needed no translation)\n"
      "  %llu chains patched, %llu callouts (%llu adaptive retranslations), %llu invalidations "
      "(%llu units freed), %llu flushes\n"
      "  guest instructions: %llu from the cache, %llu directly (CPL 3 and fall-backs)\n",
      static_cast<unsigned long long>(units), static_cast<unsigned long long>(translations),
      static_cast<unsigned long long>(translated_insns), static_cast<unsigned long long>(ident),
      static_cast<unsigned long long>(non_ident),
      translated_insns ? static_cast<double>(translate_ns) / static_cast<double>(translated_insns)
                       : 0.0,
      static_cast<unsigned long long>(entries), static_cast<unsigned long long>(chained),
      static_cast<unsigned long long>(lookups), static_cast<unsigned long long>(hits),
      lookups ? 100.0 * static_cast<double>(hits) / static_cast<double>(lookups) : 0.0,
      entries ? 100.0 * static_cast<double>(entries - (lookups - hits)) /
                    static_cast<double>(entries)
              : 0.0,
      static_cast<unsigned long long>(chains), static_cast<unsigned long long>(callouts),
      static_cast<unsigned long long>(adaptive), static_cast<unsigned long long>(invalidations),
      static_cast<unsigned long long>(freed), static_cast<unsigned long long>(flushes),
      static_cast<unsigned long long>(cache_insns),
      static_cast<unsigned long long>(direct_insns));
  return buf;
}

Unit* Cache::find(Cpu& cpu, uint64_t rip, uint64_t cs_base, uint64_t pa, trace::CpuMode mode) {
  ++stats_.lookups;
  const Key key{rip, cs_base, pa, mode};
  // A direct-mapped table in front of the hash map (the "hash lookup" of indirect control
  // flow should cost a few loads, as VMware's did).
  Unit*& front = front_slot(key);
  Unit* u = front;
  if (u == nullptr || !u->valid || u->rip != rip || u->pa != pa || u->cs_base != cs_base ||
      u->mode != mode) {
    const auto it = map_.find(key);
    if (it == map_.end()) return nullptr;
    u = it->second;
    front = u;
  }
  if (u->generation != cpu.code_generation(pa)) {
    invalidate_page(cpu, pa >> 12, rip);
    return nullptr;
  }
  ++stats_.hits;
  if (lookup_events && cpu.sink()) {
    auto e = make_event<trace::BtLookupEvent>(cpu, trace::EventType::kBtLookup, rip);
    e.header.flags = trace::kBtFlagHit;
    e.unit = u->id;
    cpu.sink()->on_event(e.header);
  }
  return u;
}

void Cache::invalidate_page(Cpu& cpu, uint64_t page, uint64_t rip) {
  auto it = by_page_.find(page);
  if (it == by_page_.end()) return;
  uint32_t n = 0;
  for (Unit* u : it->second) {
    if (!u->valid) continue;  // not reached: by_page_ holds live units only
    retire(*u);
    ++n;
  }
  by_page_.erase(it);
  stats_.invalidations += n;
  if (n && cpu.sink()) {
    auto e = make_event<trace::BtInvalidateEvent>(cpu, trace::EventType::kBtInvalidate, rip);
    e.page_pa = page << 12;
    e.units = n;
    cpu.sink()->on_event(e.header);
  }
}

void Cache::retire(Unit& u) {
  u.valid = false;
  const Key key{u.rip, u.cs_base, u.pa, u.mode};
  if (auto it = map_.find(key); it != map_.end() && it->second == &u) map_.erase(it);
  if (Unit*& front = front_slot(key); front == &u) front = nullptr;
  ++retired_;
  --stats_.units;
}

void Cache::free_retired(Cpu& cpu) {
  // [SECTION] Freeing invalidated units in translator.hpp. No live unit's exit may lead to a
  // retired one: null such links (retired units are still allocated here, so `valid` is
  // readable); report each retired unit's counters before it goes.
  trace::EventSink* sink = cpu.sink();
  for (const auto& u : units_) {
    if (u->valid) {
      for (Unit*& next : u->chain) {
        if (next && !next->valid) next = nullptr;
      }
    } else if (sink) {
      report_counts(*u, cpu, *sink);
    }
  }
  if (resume.unit && !resume.unit->valid) resume = {};  // it would not be resumed nor linked
  std::erase_if(units_, [](const std::unique_ptr<Unit>& u) { return !u->valid; });
  stats_.freed += retired_;
  retired_ = 0;
}

size_t Cache::bytes() const {
  size_t n = 0;
  for (const auto& u : units_) {
    n += sizeof(Unit) + u->code.capacity() * sizeof(TransInsn) +
         u->micro.capacity() * sizeof(MicroOp);
  }
  return n;
}

void Cache::flush() {
  if (!units_.empty()) ++stats_.flushes;
  map_.clear();
  by_page_.clear();
  front_.fill(nullptr);
  units_.clear();
  retired_ = 0;
  trap_counts_.clear();
  adaptive_.clear();
  retranslations_.clear();
  resume = {};
  stats_.units = 0;
}

std::shared_ptr<const Cache::State> Cache::save(const Cpu& cpu) const {
  // [SECTION] Snapshots in translator.hpp.
  auto st = std::make_shared<State>();
  std::unordered_map<const Unit*, uint32_t> index;
  index.reserve(units_.size());
  for (const auto& u : units_) index.emplace(u.get(), static_cast<uint32_t>(index.size()));
  const auto index_of = [&](const Unit* u) -> int32_t {
    if (u == nullptr) return -1;
    const auto it = index.find(u);
    return it == index.end() ? -1 : static_cast<int32_t>(it->second);
  };
  st->units.reserve(units_.size());
  for (const auto& u : units_) {
    State::SavedUnit& s = st->units.emplace_back();
    s.unit = *u;
    s.unit.micro = std::vector<MicroOp>();  // rebuilt by restore()
    for (int k = 0; k < 2; ++k) {
      s.chain[k] = index_of(u->chain[k]);
      s.unit.chain[k] = nullptr;
    }
    s.unit.generation_counter = nullptr;
    s.current = u->generation == cpu.code_generation(u->pa);
  }
  st->map.reserve(map_.size());
  for (const auto& [key, u] : map_) st->map.emplace_back(key, static_cast<uint32_t>(index.at(u)));
  st->by_page.reserve(by_page_.size());
  for (const auto& [page, list] : by_page_) {
    std::vector<uint32_t> ids;
    ids.reserve(list.size());
    for (const Unit* u : list) ids.push_back(index.at(u));
    st->by_page.emplace_back(page, std::move(ids));
  }
  st->retranslations = retranslations_;
  st->trap_counts = trap_counts_;
  st->adaptive = adaptive_;
  st->retired = retired_;
  st->next_id = next_id_;
  st->stats = stats_;
  st->resume = resume;
  st->resume.unit = nullptr;
  st->resume_unit = index_of(resume.unit);
  return st;
}

void Cache::restore(const State& st, const Cpu& cpu) {
  map_.clear();
  by_page_.clear();
  front_.fill(nullptr);  // a memo of map_: find() falls back to map_
  units_.clear();
  units_.reserve(st.units.size());
  for (const State::SavedUnit& s : st.units) {
    auto u = std::make_unique<Unit>(s.unit);
    u->generation_counter = cpu.code_generation_counter(u->pa);
    // restore_state bumped every page's generation: current stays current, stale stays stale.
    const uint32_t now = cpu.code_generation(u->pa);
    u->generation = s.current ? now : now - 1;
    build_micro_ops(*u);  // MicroOp::t and ::unit point into this unit
    units_.push_back(std::move(u));
  }
  for (size_t i = 0; i < st.units.size(); ++i) {
    for (int k = 0; k < 2; ++k) {
      const int32_t to = st.units[i].chain[k];
      units_[i]->chain[k] = to >= 0 ? units_[static_cast<size_t>(to)].get() : nullptr;
    }
  }
  for (const auto& [key, i] : st.map) map_.emplace(key, units_[i].get());
  for (const auto& [page, ids] : st.by_page) {
    std::vector<Unit*>& list = by_page_[page];
    for (const uint32_t i : ids) list.push_back(units_[i].get());
  }
  retranslations_ = st.retranslations;
  trap_counts_ = st.trap_counts;
  adaptive_ = st.adaptive;
  retired_ = st.retired;
  next_id_ = st.next_id;
  stats_ = st.stats;
  resume = st.resume;
  resume.unit = st.resume_unit >= 0 ? units_[static_cast<size_t>(st.resume_unit)].get() : nullptr;
}

size_t Cache::State::bytes() const {
  size_t n = sizeof(State) + units.capacity() * sizeof(SavedUnit) +
             map.capacity() * sizeof(map[0]) + by_page.capacity() * sizeof(by_page[0]);
  for (const SavedUnit& s : units) n += s.unit.code.capacity() * sizeof(TransInsn);
  for (const auto& p : by_page) n += p.second.capacity() * sizeof(uint32_t);
  // The hash tables: a node (key, value, next pointer, cached hash) and a bucket pointer each.
  n += (retranslations.size() + trap_counts.size() + adaptive.size()) * 40 +
       (retranslations.bucket_count() + trap_counts.bucket_count() + adaptive.bucket_count()) *
           sizeof(void*);
  return n;
}

Unit* Cache::translate(Cpu& cpu, uint64_t rip, uint64_t cs_base, uint64_t pa,
                       trace::CpuMode mode) {
  collect(cpu);  // before the cache grows: at the same point of the guest's run however it stops
  if (units_.size() >= kBtMaxUnits) {
    // A full cache is flushed; the units' counters go out first (sim/bt/counts.hpp).
    if (cpu.sink()) {
      for (const auto& held : units_) report_counts(*held, cpu, *cpu.sink());
    }
    flush();
  }
  const uint64_t start = now_ns();
  const uint8_t* mem = cpu.memory().data();
  // The end of the page, or of guest memory if that comes first (its size need not be a
  // multiple of 4 KiB: a trace's metadata names it); the caller checked pa lies inside.
  const uint64_t page_end = std::min<uint64_t>((pa | 0xFFF) + 1, cpu.memory().size());
  const uint64_t ip_mask =
      mode == trace::CpuMode::kLong64 ? ~0ull
      : cpu.s.seg[kCs].db              ? 0xFFFFFFFFull
                                       : 0xFFFFull;
  auto u = std::make_unique<Unit>();
  u->rip = rip;
  u->cs_base = cs_base;
  u->pa = pa;
  u->mode = mode;
  u->generation = cpu.code_generation(pa);
  uint64_t at = pa, ip = rip;
  while (u->code.size() < kBtMaxUnitInsns && at < page_end) {
    TransInsn t;
    uint8_t* bytes = t.code + 1;
    const unsigned avail = static_cast<unsigned>(std::min<uint64_t>(15, page_end - at));
    std::memcpy(bytes, mem + at, avail);
    if (x86::decode({bytes, avail}, mode, &t.insn) != x86::DecodeStatus::kOk ||
        t.insn.op == Op::kUnsupported) {
      break;  // the interpreter raises #UD/#GP/#PF or reports it when RIP gets there
    }
    const uint64_t next = (ip + t.insn.length) & ip_mask;
    t.code[0] = t.insn.length;
    std::memset(bytes + t.insn.length, 0, 15 - t.insn.length);
    t.rip = ip;
    t.next_rip = next;
    t.kind = translate_insn(t.insn, {bytes, t.insn.length}, next, &t.reason);
    if (adaptive_.count(at)) {
      t.kind = BtKind::kAdaptive;
      t.reason = kind_reason(BtKind::kAdaptive);
    }
    t.handler = select_handler(t.insn);
    const BtKind kind = t.kind;
    const Instruction insn = t.insn;
    u->code.push_back(t);
    at += insn.length;
    ip = next;
    if (kind == BtKind::kCallout || kind == BtKind::kAdaptive) break;
    if (kind == BtKind::kDirectBranch) {
      u->has_exit[0] = insn.op != Op::kJmp;  // jmp and call rel always take the branch
      u->next_rip[0] = next;
      u->has_exit[1] = true;
      u->next_rip[1] = (next + insn.ops[0].imm) & mask(insn.operand_size / 8);
      break;
    }
    if (is_control_flow(insn.op)) break;
    // IP wrapped (16-bit code past 0xFFFF, 32-bit past 0xFFFFFFFF): the next instruction is at
    // CS:0, not at the next byte of the page; the unit falls through to it.
    if (next != at - pa + rip) break;
  }
  if (u->code.empty()) return nullptr;
  if (u->code.back().kind != BtKind::kDirectBranch && !is_control_flow(u->code.back().insn.op)) {
    u->has_exit[0] = true;  // falls through to the next unit (also after a callout)
    u->next_rip[0] = ip;
  }
  u->guest_bytes = static_cast<uint16_t>(at - pa);
  u->last_rip = rip + u->guest_bytes - 1;
  u->generation_counter = cpu.code_generation_counter(pa);
  build_micro_ops(*u);
  u->id = next_id_++;
  const uint32_t times = retranslations_[pa]++;
  u->translations = times + 1;
  cpu.mark_code_page(pa);
  Unit* raw = u.get();
  units_.push_back(std::move(u));
  map_[Key{rip, cs_base, pa, mode}] = raw;
  by_page_[pa >> 12].push_back(raw);
  ++stats_.units;
  ++stats_.translations;
  stats_.translated_insns += raw->code.size();
  for (const TransInsn& t : raw->code) {
    ++(t.kind == BtKind::kIdent ? stats_.ident : stats_.non_ident);
  }
  // The translator's own time: what the sink does with the event (printing it, say) is not
  // translation cost.
  stats_.translate_ns += now_ns() - start;
  if (cpu.sink()) {
    auto e = make_event<trace::BtTranslateEvent>(cpu, trace::EventType::kBtTranslate, rip);
    e.guest_pa = pa;
    e.unit = raw->id;
    e.guest_bytes = raw->guest_bytes;
    e.count = static_cast<uint8_t>(raw->code.size());
    e.generation = static_cast<uint8_t>(std::min<uint32_t>(times, 255));
    e.adaptive_threshold = static_cast<uint8_t>(adaptive_threshold);
    for (size_t i = 0, at = 0; i < raw->code.size(); at += e.len[i], ++i) {
      e.len[i] = raw->code[i].insn.length;
      e.kind[i] = static_cast<uint8_t>(raw->code[i].kind);
      std::memcpy(e.code + at, raw->code[i].code + 1, e.len[i]);
    }
    cpu.sink()->on_event(e.header);
    if (lookup_events) {
      auto l = make_event<trace::BtLookupEvent>(cpu, trace::EventType::kBtLookup, rip);
      l.unit = raw->id;
      cpu.sink()->on_event(l.header);
    }
  }
  return raw;
}

bool Cache::note_trap(Cpu& cpu, Unit& u, size_t i) {
  TransInsn& t = u.code[i];
  if (t.kind == BtKind::kAdaptive || t.kind == BtKind::kCallout) return false;
  ++t.traps;
  ++u.traps;
  // Counted by guest-physical address: the unit itself may be dropped and retranslated (a
  // write to its own page) between two traps.
  uint64_t at = u.pa;
  for (size_t k = 0; k < i; ++k) at += u.code[k].insn.length;
  if (++trap_counts_[at] < adaptive_threshold) return false;
  adaptive_[at] = true;
  ++stats_.adaptive;
  // Drop the unit (only it: the page was not written) so that the next lookup retranslates.
  if (u.valid) {
    retire(u);
    if (auto page = by_page_.find(u.pa >> 12); page != by_page_.end()) {
      std::erase(page->second, &u);
    }
  }
  (void)cpu;
  return true;
}

void Cache::report_callout(Cpu& cpu, const Unit& u, const TransInsn& t) {
  auto e = make_event<trace::BtCalloutEvent>(cpu, trace::EventType::kBtCallout, cpu.fault_rip);
  e.header.flags = t.kind == BtKind::kAdaptive ? trace::kBtFlagAdaptive : 0;
  e.unit = u.id;
  e.insn_len = t.insn.length;
  std::memcpy(e.insn, t.code + 1, sizeof e.insn);
  cpu.sink()->on_event(e.header);
}

void Cache::link(Cpu& cpu, Unit& from, int slot, Unit& to) {
  from.chain[slot] = &to;
  ++stats_.chains;
  if (cpu.sink()) {
    auto e = make_event<trace::BtChainEvent>(cpu, trace::EventType::kBtChain, to.rip);
    e.header.flags = slot == 1 ? trace::kBtFlagTaken : 0;
    e.from_unit = from.id;
    e.to_unit = to.id;
    cpu.sink()->on_event(e.header);
  }
}

}  // namespace trapscope::sim::bt
