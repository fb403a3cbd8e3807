#include "visualizer/core/model.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>

namespace trapscope::viz {

using trace::EventType;

std::string_view to_string(RunState s) {
  switch (s) {
    case RunState::kStarting: return "starting";
    case RunState::kIdle: return "stopped";
    case RunState::kRunning: return "running";
    case RunState::kFinished: return "finished";
    case RunState::kError: return "error";
    case RunState::kTrace: return "trace";
  }
  return "?";
}

// [SECTION] Events

void Model::append(const trace::EventHeader& e) {
  if (add(e)) ++revision_;
}

bool Model::add(const trace::EventHeader& e) {
  if (store_.memory_bytes() >= limit_bytes_ && e.type != EventType::kRunEnd) [[unlikely]] {
    ++dropped_;
    return false;
  }
  const size_t i = store_.size();
  if (!store_.append(whole_run(e))) return false;
  index(i, e);
  return true;
}

// A live session is many backend runs (steps, slices, runs to a stop), and each run's RunEnd
// counts only its own VM exits; the one run end the GUI shows counts every exit before it.
const trace::EventHeader& Model::whole_run(const trace::EventHeader& e) {
  if (e.type != EventType::kRunEnd || e.size != sizeof(trace::RunEndEvent)) return e;
  std::memcpy(&run_end_, &e, sizeof run_end_);
  run_end_.exits = lanes_[static_cast<size_t>(EventType::kVmExit)].size();
  return run_end_.header;
}

void Model::append_records(std::span<const uint8_t> records) {
  size_t off = 0;
  while (off + sizeof(trace::EventHeader) <= records.size()) {
    const auto* h = reinterpret_cast<const trace::EventHeader*>(records.data() + off);
    if (h->size < sizeof(trace::EventHeader) || off + h->size > records.size()) break;
    add(*h);
    off += h->size;
  }
  ++revision_;
}

void Model::index(size_t i, const trace::EventHeader& e) {
  const auto t = static_cast<size_t>(e.type);
  // A hypercall record tells the doorbell's VM exit again (trace::is_vm_exit): it is kept and
  // listed, but no lane holds it, so no VM-exit count, step or timeline mark takes it for one.
  const bool record = e.type == EventType::kVmExit && !trace::is_vm_exit(e);
  // Likewise a VT-x model's VM entry: the VM-transition lane holds its VM exits only
  // (trace::is_vt_exit), so steps and counts take each exit once.
  const bool entry = e.type == EventType::kVmTransition && !trace::is_vt_exit(e);
  if (t < std::size(lanes_) && !record && !entry) lanes_[t].push_back(static_cast<uint32_t>(i));
  if (e.cpl <= 3 && (cpl_spans_.empty() || cpl_spans_.back().cpl != e.cpl)) {
    cpl_spans_.push_back({static_cast<uint32_t>(i), e.cpl});
  }
  if (trace::is_vm_exit(e) || trace::is_vt_exit(e)) stats_.on_event(e);
  if (e.type >= EventType::kBtTranslate && e.type <= EventType::kBtCounts) tcache_.on_event(i, e);
}

void Model::truncate(size_t n) {
  if (n >= store_.size()) return;
  dropped_ = 0;  // what was dropped came after event n: a re-run sends it again
  store_.truncate(n);
  for (auto& lane : lanes_) {
    lane.erase(std::lower_bound(lane.begin(), lane.end(), static_cast<uint32_t>(n)), lane.end());
  }
  while (!cpl_spans_.empty() && cpl_spans_.back().first >= n) cpl_spans_.pop_back();
  filtered_.erase(std::lower_bound(filtered_.begin(), filtered_.end(), static_cast<uint32_t>(n)),
                  filtered_.end());
  filter_next_ = std::min(filter_next_, n);
  if (selected_ >= static_cast<int64_t>(n)) select(static_cast<int64_t>(n) - 1);
  rebuild_stats();
  tcache_.rebuild(store_, n);
  ++revision_;
}

void Model::rebuild_stats() {
  stats_ = trace::ExitStats{};
  EventRecord r;
  for (EventType t : {EventType::kVmExit, EventType::kVmTransition}) {
    for (uint32_t i : lane(t)) {
      store_.load(i, &r);
      stats_.on_event(r.header);
    }
  }
}

void Model::apply(Update u) {
  if (auto* b = std::get_if<EventBatch>(&u)) {
    append_records(b->records);
  } else if (auto* t = std::get_if<Truncate>(&u)) {
    truncate(t->events);
  } else if (auto* s = std::get_if<MachineState>(&u)) {
    apply_state(std::move(*s));
  }
}

void Model::apply_state(MachineState&& s) {
  const auto real = status_.real;
  status_ = std::move(s.status);
  if (!s.stop && !s.reset) status_.real = real;  // the last stop's, until the next stop
  if (s.reset) {
    has_previous_ = false;
    has_registers_ = false;
    previous_memory_ = {};
  }
  if (s.stop) {
    if (s.has_registers) {
      if (has_registers_) {
        previous_ = registers_;
        has_previous_ = true;
      }
      registers_ = s.registers;
      has_registers_ = true;
    }
    code_ = std::move(s.code);
    if (memory_.address == s.memory.address && memory_.bytes.size() == s.memory.bytes.size() &&
        !s.reset) {
      previous_memory_ = std::move(memory_);
    } else {
      previous_memory_ = {};
    }
    memory_ = std::move(s.memory);
  }
  console_ = std::move(s.console);
  vmcs_ = std::move(s.vmcs);
  if (s.select && *s.select < store_.size()) select(static_cast<int64_t>(*s.select));
  ++revision_;
}

// [SECTION] Indexes

const std::vector<uint32_t>& Model::lane(EventType type) const {
  static const std::vector<uint32_t> kEmpty;
  const auto t = static_cast<size_t>(type);
  return t < std::size(lanes_) ? lanes_[t] : kEmpty;
}

std::optional<size_t> Model::find_next(StepKind kind, int64_t from) const {
  const size_t start = from < 0 ? 0 : static_cast<size_t>(from) + 1;
  if (kind == StepKind::kInstruction) {
    if (start < store_.size()) return start;
    return std::nullopt;
  }
  const uint32_t mask = event_mask(kind);
  std::optional<size_t> best;
  for (size_t t = 0; t < std::size(lanes_); ++t) {
    if (!(mask & (1u << t))) continue;
    const auto& l = lanes_[t];
    auto it = std::lower_bound(l.begin(), l.end(), static_cast<uint32_t>(start));
    if (it != l.end() && (!best || *it < *best)) best = *it;
  }
  return best;
}

std::optional<size_t> Model::find_prev(StepKind kind, int64_t from) const {
  if (from <= 0) return std::nullopt;
  const auto end = static_cast<uint32_t>(std::min<int64_t>(from, static_cast<int64_t>(store_.size())));
  if (kind == StepKind::kInstruction) return end - 1;
  const uint32_t mask = event_mask(kind);
  std::optional<size_t> best;
  for (size_t t = 0; t < std::size(lanes_); ++t) {
    if (!(mask & (1u << t))) continue;
    const auto& l = lanes_[t];
    auto it = std::lower_bound(l.begin(), l.end(), end);
    if (it != l.begin() && (!best || *(it - 1) > *best)) best = *(it - 1);
  }
  return best;
}

// [SECTION] Selection

void Model::select(int64_t event) {
  if (event >= static_cast<int64_t>(store_.size())) event = static_cast<int64_t>(store_.size()) - 1;
  if (event < -1) event = -1;
  selected_ = event;
  ++selection_serial_;
  ++revision_;
}

// [SECTION] Filter

bool Model::set_filter(std::string_view text, std::string* error) {
  if (!filter_.parse(text, error)) return false;
  filtered_.clear();
  filter_next_ = 0;
  ++revision_;
  return true;
}

void Model::advance_filter(size_t budget) {
  if (filter_.empty()) {
    filter_next_ = store_.size();
    return;
  }
  const size_t end = std::min(store_.size(), filter_next_ + budget);
  for (size_t i = filter_next_; i < end; ++i) {
    if (filter_.matches(store_, i)) filtered_.push_back(static_cast<uint32_t>(i));
  }
  if (end != filter_next_) ++revision_;
  filter_next_ = end;
}

void Model::advance_filter_for(double max_ms) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double, std::milli>(max_ms);
  do {
    advance_filter(filter_.slow() ? 256 : 16384);
  } while (filter_pending() && std::chrono::steady_clock::now() < end);
}

bool Model::filter_pending() const { return !filter_.empty() && filter_next_ < store_.size(); }

double Model::filter_progress() const {
  if (store_.empty()) return 1.0;
  return static_cast<double>(filter_next_) / static_cast<double>(store_.size());
}

size_t Model::visible_count() const { return filter_.empty() ? store_.size() : filtered_.size(); }

size_t Model::visible(size_t row) const { return filter_.empty() ? row : filtered_[row]; }

std::optional<size_t> Model::row_of(size_t event) const {
  if (event >= store_.size()) return std::nullopt;
  if (filter_.empty()) return event;
  auto it = std::lower_bound(filtered_.begin(), filtered_.end(), static_cast<uint32_t>(event));
  if (it == filtered_.end() || *it != event) return std::nullopt;
  return static_cast<size_t>(it - filtered_.begin());
}

// [SECTION] Machine state

std::optional<uint8_t> Model::shown_cpl() const {
  if (has_registers_) return registers_.cpl();
  if (selected_ >= 0 && store_.cpl(static_cast<size_t>(selected_)) <= 3) {
    return store_.cpl(static_cast<size_t>(selected_));
  }
  return std::nullopt;
}

std::optional<trace::CpuMode> Model::shown_mode() const {
  if (has_registers_) return registers_.mode();
  if (selected_ >= 0) {
    EventRecord r;
    store_.load(static_cast<size_t>(selected_), &r);
    if (r.header.cpu_mode != trace::CpuMode::kUnknown) return r.header.cpu_mode;
  }
  return std::nullopt;
}

size_t Model::memory_bytes() const {
  size_t n = store_.memory_bytes() + cpl_spans_.capacity() * sizeof(CplSpan) +
             filtered_.capacity() * sizeof(uint32_t);
  for (const auto& l : lanes_) n += l.capacity() * sizeof(uint32_t);
  return n;
}

void Model::reserve(size_t events, size_t payload_bytes) { store_.reserve(events, payload_bytes); }

}  // namespace trapscope::viz
