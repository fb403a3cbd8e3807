#include "trace/recorder.hpp"

namespace trapscope::trace {

void Recorder::on_event(const EventHeader& event) {
  const size_t size = event.size;
  const size_t rounded = (size + 7) & ~size_t{7};
  const size_t need = used_ + rounded;
  if (need > storage_.size() * sizeof(std::max_align_t)) {
    size_t cap = storage_.size() * sizeof(std::max_align_t);
    cap = cap < 4096 ? 4096 : cap;
    while (cap < need) cap *= 2;
    storage_.resize(cap / sizeof(std::max_align_t));
  }
  std::memcpy(reinterpret_cast<std::byte*>(storage_.data()) + used_, &event, size);
  offsets_.push_back(used_);
  used_ = need;
}

void Recorder::clear() {
  used_ = 0;
  offsets_.clear();
}

const EventHeader& Recorder::at(size_t i) const {
  return *reinterpret_cast<const EventHeader*>(
      reinterpret_cast<const std::byte*>(storage_.data()) + offsets_.at(i));
}

}  // namespace trapscope::trace
