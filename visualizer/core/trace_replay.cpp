#include "visualizer/core/trace_replay.hpp"

#include <algorithm>

#include "visualizer/core/describe.hpp"
#include "visualizer/core/guest_view.hpp"

namespace trapscope::viz {

TraceReplay::TraceReplay(trace::TraceFile trace, std::string path,
                         std::unique_ptr<TraceReexecution> reexec, std::string no_reexec_why)
    : metadata_(std::move(trace.metadata)),
      events_(std::move(trace.events)),
      path_(std::move(path)),
      reexec_(std::move(reexec)) {
  caps_.live = false;
  caps_.step_back = true;  // moving the cursor back is always possible in a recording
  caps_.step_kinds = (1u << static_cast<int>(StepKind::kCount)) - 1;
  caps_.address_breakpoints = true;
  caps_.limits = "A recorded trace (" + (metadata_.backend.empty() ? "?" : metadata_.backend) +
                 " backend, guest " + metadata_.guest +
                 "): stepping moves through the recorded events and stops at the recorded "
                 "end. Registers and memory are not recorded in trace files";
  if (reexec_) {
    caps_.limits += ": they come from re-executing the guest on the simulator (checked event "
                    "by event against the recording).";
  } else {
    caps_.limits += ". ";
    caps_.limits += no_reexec_why;
  }
  memory_address_ = metadata_.load_address;
  if (metadata_.backend == "kvm") {
    caps_.limits += " KVM traces hold only VM exits.";
  }
}

void TraceReplay::send(Command c) {
  if (c.op == Command::Op::kPause) {
    commands_.clear();
    return;
  }
  if (c.op == Command::Op::kSetBreakpoints) {
    breakpoints_ = std::move(c.breakpoints);
    return;
  }
  if (c.op == Command::Op::kSetMemoryWindow) {
    memory_address_ = c.address;
    memory_length_ = c.length;
  }
  commands_.push_back(std::move(c));
}

bool TraceReplay::poll(Model& model) {
  bool changed = false;
  if (!loaded_) {
    loaded_ = true;
    model.truncate(0);
    model.reserve(events_.size(), 0);
    for (size_t i = 0; i < events_.size(); ++i) model.append(events_.at(i));
    events_.clear();  // the model holds them now
    publish(model, "opened " + path_ + ": " + with_commas(model.events().size()) +
                       " recorded events; step to move through them",
            false);
    changed = true;
  }
  while (!commands_.empty()) {
    Command c = std::move(commands_.front());
    commands_.pop_front();
    execute(c, model);
    changed = true;
  }
  return changed;
}

void TraceReplay::execute(const Command& c, Model& model) {
  const size_t n = model.events().size();
  const int64_t cur = model.selected();
  std::string msg;
  bool error = false;
  auto move_to = [&](std::optional<size_t> i, std::string_view what) {
    if (i) {
      model.select(static_cast<int64_t>(*i));
      EventRecord r;
      model.events().load(*i, &r);
      msg = "at " + std::string(what) + " #" + with_commas(*i) + ": " + event_summary(r);
    } else {
      msg = "no further " + std::string(what) +
            " in the recording: a trace cannot be stepped past its recorded end";
      error = true;
    }
  };
  switch (c.op) {
    case Command::Op::kReset:
      model.select(-1);
      msg = "back to the start of the recording";
      break;
    case Command::Op::kStep: {
      const int64_t to = cur + static_cast<int64_t>(std::max<uint64_t>(c.count, 1));
      move_to(to < static_cast<int64_t>(n) ? std::optional<size_t>(to) : std::nullopt, "event");
      break;
    }
    case Command::Op::kStepTo:
      move_to(model.find_next(c.kind, cur), describe(c.kind));
      break;
    case Command::Op::kRun: {
      std::optional<size_t> stop;
      for (size_t i = static_cast<size_t>(cur + 1); i < n && !stop; ++i) {
        EventRecord r;
        model.events().load(i, &r);
        for (const Breakpoint& bp : breakpoints_) {
          if (!bp.enabled) continue;
          if ((bp.kind == Breakpoint::Kind::kAddress && r.header.rip == bp.address) ||
              matches(bp, r)) {
            stop = i;
            msg = "breakpoint " + std::to_string(bp.id) + " (" + to_string(bp) + ") at event #" +
                  with_commas(i);
            break;
          }
        }
      }
      if (stop) {
        model.select(static_cast<int64_t>(*stop));
      } else if (n > 0) {
        model.select(static_cast<int64_t>(n) - 1);
        msg = "at the recorded end (event #" + with_commas(n - 1) + ")";
      }
      break;
    }
    case Command::Op::kStepBack: {
      const int64_t to = cur - static_cast<int64_t>(std::max<uint64_t>(c.count, 1));
      model.select(std::max<int64_t>(to, -1));
      msg = to >= 0 ? "back at event #" + with_commas(static_cast<uint64_t>(to))
                    : "back at the start of the recording";
      break;
    }
    case Command::Op::kSetMemoryWindow:  // a new memory window: the same stop, re-published
      msg = model.status().message;
      error = model.status().message_is_error;
      break;
    default:
      break;
  }
  ++commands_done_;
  publish(model, msg, error);
}

void TraceReplay::publish(Model& model, std::string message, bool error) {
  MachineState s;
  s.status.state = RunState::kTrace;
  s.status.backend = "trace file (" + (metadata_.backend.empty() ? "?" : metadata_.backend) + ")";
  s.status.source = path_;
  s.status.cpl_only_at_exits = metadata_.backend == "kvm";
  s.status.message = std::move(message);
  s.status.message_is_error = error;
  s.status.commands_done = commands_done_;
  // The console as it was at the cursor: the output bytes of the recorded I/O exits.
  const int64_t cur = model.selected();
  EventRecord r;
  for (uint32_t i : model.lane(trace::EventType::kVmExit)) {
    if (static_cast<int64_t>(i) > cur) break;
    model.events().load(i, &r);
    const auto& io = r.exit.payload.io;
    if (r.exit.reason == static_cast<uint32_t>(trace::ExitReason::kIo) && io.direction == 1 &&
        io.size == 1 && (io.port == 0xE9 || io.port == 0x3F8)) {
      s.console.push_back(static_cast<char>(io.value));
    }
  }
  if (cur >= 0) {
    model.events().load(static_cast<size_t>(cur), &r);
    if (r.header.type == trace::EventType::kRunEnd) {
      s.status.end = r.run_end.reason;
      s.status.exit_code = r.run_end.exit_code;
    }
  }
  if (reexec_ && !reexec_->failed()) {
    std::string why;
    bool ok = true;
    if (cur < 0) {
      reexec_->rewind();
    } else {
      ok = reexec_->seek(static_cast<size_t>(cur), model.events(), &why);
    }
    if (ok) {
      backend::Backend& b = reexec_->machine();
      s.stop = true;
      s.has_registers = true;
      s.registers = b.registers();
      s.code = code_window(b.memory(), s.registers);
      s.memory = memory_window(b.memory(), memory_address_, memory_length_);
    } else {
      s.reset = true;  // forget the registers shown so far
      s.status.message += (s.status.message.empty() ? "" : "; ") + why +
                          ": registers and memory are no longer shown";
      s.status.message_is_error = true;
    }
  }
  model.apply(std::move(s));
}

}  // namespace trapscope::viz
