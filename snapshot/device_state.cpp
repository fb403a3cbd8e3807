#include "snapshot/device_state.hpp"

#include "trace/limits.hpp"

namespace trapscope::snapshot {
namespace {

using State = platform::Devices::State;

void save_console(const State& s, Writer& out) {
  out.u64(s.console_dropped);
  out.text(s.console);
}
void load_console(Reader& in, State* s) {
  s->console_dropped = in.u64("console_dropped");
  const uint64_t at = in.offset();
  s->console = in.text("console");
  if (s->console.size() > trace::kConsoleLimitBytes + 256) {
    in.fail(at, "console", "longer than the console limit (trace/limits.hpp)");
  }
}

void save_uart(const State& s, Writer& out) {
  for (const uint8_t v : {s.uart.ier, s.uart.lcr, s.uart.mcr, s.uart.scr, s.uart.dll, s.uart.dlm}) {
    out.u8(v);
  }
}
void load_uart(Reader& in, State* s) {
  s->uart.ier = in.u8("ier");
  s->uart.lcr = in.u8("lcr");
  s->uart.mcr = in.u8("mcr");
  s->uart.scr = in.u8("scr");
  s->uart.dll = in.u8("dll");
  s->uart.dlm = in.u8("dlm");
}

void save_control(const State& s, Writer& out) {
  out.u8(s.exit_code.has_value());
  out.u32(s.exit_code.value_or(0));
}
void load_control(Reader& in, State* s) {
  const bool has = in.flag("has_exit_code");
  const uint32_t code = in.u32("exit_code");
  s->exit_code = has ? std::optional<uint32_t>(code) : std::nullopt;
}

void save_mmio_log(const State& s, Writer& out) {
  out.u64(s.mmio_writes_dropped);
  out.u64(s.mmio_writes.size());
  for (const auto& w : s.mmio_writes) {
    out.u64(w.gpa);
    out.u8(w.len);
    out.u64(w.data);
  }
}
void load_mmio_log(Reader& in, State* s) {
  s->mmio_writes_dropped = in.u64("dropped");
  const uint64_t at = in.offset();
  const uint64_t n = in.u64("count");
  if (n > trace::kMmioLogLimitEntries || n * 17 != in.left()) {
    in.fail(at, "count", std::to_string(n) + " entries do not fit the record");
  }
  s->mmio_writes.resize(n);
  for (auto& w : s->mmio_writes) {
    w.gpa = in.u64("gpa");
    w.len = in.u8("len");
    w.data = in.u64("data");
  }
}

void save_hypercall(const State& s, Writer& out) { out.u64(s.hypercall_shared_info); }
void load_hypercall(Reader& in, State* s) { s->hypercall_shared_info = in.u64("shared_info_gpa"); }

constexpr DeviceCodec kCodecs[] = {
    {"console", save_console, load_console},
    {"uart16550", save_uart, load_uart},
    {"control", save_control, load_control},
    {"mmio-log", save_mmio_log, load_mmio_log},
    {"hypercall", save_hypercall, load_hypercall},
};

}  // namespace

std::span<const DeviceCodec> device_codecs() { return kCodecs; }

}  // namespace trapscope::snapshot
