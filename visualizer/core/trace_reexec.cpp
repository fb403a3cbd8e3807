#include "visualizer/core/trace_reexec.hpp"

#include "guests/guest_catalog.hpp"
#include "trace/input_file.hpp"
#include "visualizer/core/describe.hpp"

namespace trapscope::viz {

// Counts the re-executed events and compares each with the recording.
class TraceReexecution::Checker final : public trace::EventSink {
 public:
  Checker(TraceReexecution& r, const EventStore& recorded, uint64_t target)
      : r_(r), recorded_(recorded), target_(target) {}

  void on_event(const trace::EventHeader& e) override {
    // The run end of a run stopped here (after an event) is not part of the recording.
    if (e.type == trace::EventType::kRunEnd && e.size == sizeof(trace::RunEndEvent)) {
      const auto reason = reinterpret_cast<const trace::RunEndEvent&>(e).reason;
      if (reason == trace::RunEndReason::kEventMatched || reason == trace::RunEndReason::kStopped) {
        return;
      }
    }
    if (!mismatch.empty()) return;
    const uint64_t i = r_.produced_++;
    if (i >= recorded_.size()) {
      mismatch = "re-execution recorded more events than the trace holds (" +
                 with_commas(recorded_.size()) + ")";
    } else {
      EventRecord want;
      recorded_.load(static_cast<size_t>(i), &want);
      if (want.header.type != e.type || want.header.rip != e.rip) {
        mismatch = "re-execution diverged from the recording at event #" + with_commas(i) +
                   ": recorded " + std::string(trace::to_string(want.header.type)) + " at rip=" +
                   hex(want.header.rip) + ", re-executed " + std::string(trace::to_string(e.type)) +
                   " at rip=" + hex(e.rip);
      }
    }
  }
  bool done() const { return !mismatch.empty() || r_.produced_ > target_; }

  std::string mismatch;

 private:
  TraceReexecution& r_;
  const EventStore& recorded_;
  uint64_t target_;
};

TraceReexecution::TraceReexecution(std::vector<uint8_t> image, backend::Config config)
    : image_(std::move(image)), config_(std::move(config)) {
  restart();
}

TraceReexecution::~TraceReexecution() = default;

void TraceReexecution::restart() {
  machine_ = backend::make_backend(backend::Kind::kSim, config_);
  machine_->load(image_);
  produced_ = 0;
  step_first_ = 0;
}

void TraceReexecution::rewind() {
  if (!failed() && produced_ > 0) restart();
}

bool TraceReexecution::seek(size_t index, const EventStore& recorded, std::string* why) {
  if (failed()) {
    *why = failure_;
    return false;
  }
  // Events [step_first_, produced_) came from the machine's last step: it is already there.
  if (index < produced_ && index < step_first_) restart();
  if (index >= produced_) {
    // Stop after every step that records an event (the simulator checks a stop request only
    // every few thousand instructions: too late to land on an event).
    Checker checker(*this, recorded, index);
    backend::StopCondition stop;
    stop.timeout_s = 600;
    stop.stop_on = ~(1u << static_cast<unsigned>(trace::EventType::kRunEnd));
    backend::RunOutcome out;
    do {
      out = machine_->run(stop, &checker);
    } while (out.reason == trace::RunEndReason::kEventMatched && !checker.done());
    step_first_ = index;
    if (!checker.mismatch.empty()) {
      failure_ = checker.mismatch;
    } else if (produced_ <= index) {
      failure_ = "re-execution ended (" + std::string(trace::to_string(out.reason)) +
                 ") after " + with_commas(produced_) + " events, before event #" +
                 with_commas(index);
    }
  }
  if (failed()) {
    machine_.reset();
    *why = failure_;
    return false;
  }
  return true;
}

namespace {

// A built-in guest (a name without '/') or a flat binary file of at most mem_bytes.
std::optional<std::vector<uint8_t>> load_guest(const std::string& name, uint64_t mem_bytes,
                                               std::string* error) {
  if (name.find('/') == std::string::npos) {
    if (auto g = guests::find(name)) return std::vector<uint8_t>(g->image.begin(), g->image.end());
  }
  auto text = trace::read_input_file(name, mem_bytes, "a guest image in this guest memory", error);
  if (!text) return std::nullopt;
  if (text->empty()) {
    *error = "empty";
    return std::nullopt;
  }
  return std::vector<uint8_t>(text->begin(), text->end());
}

}  // namespace

std::unique_ptr<TraceReexecution> reexecution_for(const trace::TraceFile& t,
                                                  const std::string& guest_arg, std::string* why) {
  const trace::TraceMetadata& m = t.metadata;
  if (m.backend != "sim") {
    *why = "A KVM trace cannot be re-executed (KVM is not deterministic).";
    return nullptr;
  }
  const auto mode = platform::parse_boot_mode(m.mode);
  const auto technique = sim::virt::parse_technique(m.technique);
  const auto paging = sim::parse_vmm_paging(m.paging);
  if (!mode || m.memory_bytes == 0 || m.memory_bytes > kMaxReexecMemory || !technique ||
      !paging || (m.deprivilege != 1 && m.deprivilege != 3) ||
      m.tlb_entries > sim::kTlbMaxEntries || (m.tlb_entries & (m.tlb_entries - 1))) {
    *why = "The trace names a configuration this trapscope cannot run (mode '" + m.mode +
           "', " + std::to_string(m.memory_bytes) + " bytes of memory, technique '" +
           m.technique + "', paging '" + m.paging + "').";
    return nullptr;
  }
  std::string error;
  std::optional<std::vector<uint8_t>> image;
  if (!guest_arg.empty()) {
    image = load_guest(guest_arg, m.memory_bytes, &error);
    if (!image) {
      *why = "The guest given with --guest, '" + guest_arg + "', cannot be used: " + error + ".";
      return nullptr;
    }
  } else {
    const bool built_in = m.guest.find('/') == std::string::npos && guests::find(m.guest);
    if (m.guest_sha256.empty() && !built_in) {
      *why = "The trace records no checksum of its guest '" + m.guest +
             "' (it was written before trapscope stored one), so that file is not run: "
             "give the guest with --guest FILE to re-execute it.";
      return nullptr;
    }
    image = load_guest(m.guest, m.memory_bytes, &error);
    if (!image) {
      *why = "The recorded guest '" + m.guest + "' is not at hand to re-execute (" + error +
             "); --guest FILE names it.";
      return nullptr;
    }
    if (!m.guest_sha256.empty() && trace::sha256_hex(*image) != m.guest_sha256) {
      *why = "The guest '" + m.guest + "' does not match the SHA-256 recorded in the trace (" +
             m.guest_sha256.substr(0, 16) + "…): it is not the guest that ran, so it is not "
             "re-executed; --guest FILE runs a guest you name.";
      return nullptr;
    }
  }
  backend::Config cfg;
  cfg.mode = *mode;
  cfg.load_address = m.load_address;
  cfg.memory_bytes = m.memory_bytes;
  cfg.technique = *technique;
  cfg.deprivilege = static_cast<uint8_t>(m.deprivilege);
  cfg.paging = *paging;
  if (m.tlb_entries) cfg.tlb_entries = m.tlb_entries;
  // What the recording emitted beyond the metadata: instruction events, translation-cache
  // lookups (`run --bt-lookup-events`), the translator's adaptive threshold.
  for (size_t i = 0; i < t.events.size(); ++i) {
    const trace::EventHeader& e = t.events.at(i);
    cfg.record_instructions |= e.type == trace::EventType::kInstruction;
    cfg.bt_lookup_events |= e.type == trace::EventType::kBtLookup;
    if (e.type == trace::EventType::kBtTranslate && e.size == sizeof(trace::BtTranslateEvent)) {
      const auto& t = reinterpret_cast<const trace::BtTranslateEvent&>(e);
      cfg.bt_adaptive_threshold = t.adaptive_threshold;
    }
  }
  try {
    return std::make_unique<TraceReexecution>(std::move(*image), cfg);
  } catch (const std::exception& e) {  // the load (platform::LoadError: the image does not fit)
    *why = "The guest cannot be loaded for re-execution: " + std::string(e.what());
    return nullptr;
  }
}

}  // namespace trapscope::viz
