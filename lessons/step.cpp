#include "lessons/step.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "guests/guest_catalog.hpp"
#include "sim/mmu.hpp"
#include "trace/printer.hpp"

namespace trapscope::lessons {

Setup initial_setup(const Lesson& l) { return {l.technique, l.deprivilege, l.paging}; }

Setup after_restart(const Setup& now, const Restart& r) {
  return {r.technique.empty() ? now.technique : r.technique, r.deprivilege,
          r.paging.empty() ? now.paging : r.paging};
}

std::span<const uint8_t> guest_image(const Lesson& l) {
  if (l.guest_bytes) return *l.guest_bytes;
  const auto guest = guests::find(l.guest);
  if (!guest) throw LessonError(l.file + ": guest: '" + l.guest + "' is not built in");
  return guest->image;
}

backend::Config machine_config(const Lesson& l, const Setup& s) {
  std::string mode = l.mode;
  if (!l.guest_bytes) {
    const auto guest = guests::find(l.guest);
    if (!guest) throw LessonError(l.file + ": guest: '" + l.guest + "' is not built in");
    if (mode.empty()) mode = guest->mode;
  }
  backend::Config cfg;
  cfg.mode = *platform::parse_boot_mode(mode);
  cfg.technique = *sim::virt::parse_technique(s.technique);
  cfg.deprivilege = static_cast<uint8_t>(s.deprivilege);
  cfg.paging = *sim::parse_vmm_paging(s.paging);
  return cfg;
}

bool load_guest(const Lesson& l, backend::Backend& machine) {
  machine.load(guest_image(l));
  if (l.params.empty()) return true;
  const std::vector<uint8_t> block = params_block(l.params);
  return machine.write_memory(kParamsAddress, block);
}

std::string stop_mask_on(const Predicate& p, backend::Kind backend, uint32_t* mask) {
  *mask = p.stop_mask();
  if (backend != backend::Kind::kKvm) return {};
  const uint32_t exits = 1u << static_cast<unsigned>(trace::EventType::kVmExit);
  if (p.kind == EventKind::kAny) *mask = exits;
  else if (*mask & ~exits)
    return "KVM reports only VM exits; this step (" + p.describe() + ") needs --backend sim";
  return {};
}

std::string check_step(const Step& s, const trace::EventHeader* e, uint64_t exits,
                       const std::string& console) {
  if (e && s.expect) {
    if (std::string m = s.expect->mismatch(*e); !m.empty())
      return "expected " + s.expect->describe() + ": " + m + " (event: " + event_line(*e) + ")";
  }
  if (s.exits && *s.exits != exits)
    return "expected " + std::to_string(*s.exits) +
           " VM exits since the lesson started; there were " + std::to_string(exits);
  if (s.console && console.find(*s.console) == std::string::npos)
    return "expected the console to contain \"" + *s.console + "\"; it holds \"" + console + "\"";
  return {};
}

std::string ended_before(const trace::EventHeader& e, const std::string& detail,
                         const Predicate& until) {
  const auto& end = reinterpret_cast<const trace::RunEndEvent&>(e);
  return "the guest's run ended (" + std::string(trace::to_string(end.reason)) +
         (detail.empty() ? "" : ": " + detail) + ") before " + until.describe();
}

Efficiency efficiency(const std::string& technique, uint64_t instructions, uint64_t exits,
                      uint64_t traps, uint64_t callouts) {
  Efficiency e;
  e.instructions = instructions;
  e.by_vmm = technique == "bt" ? callouts : exits + traps;
  e.direct = technique == "emulation" || e.by_vmm > instructions ? 0 : instructions - e.by_vmm;
  e.percent = instructions ? 100.0 * static_cast<double>(e.direct) / static_cast<double>(instructions) : 0;
  return e;
}

std::string efficiency_line(const Efficiency& e, const std::string& technique, Lang lang) {
  const bool es = lang == Lang::kEs;
  char percent[32];
  std::snprintf(percent, sizeof percent, "%.3f", e.percent);
  if (es) *std::strchr(percent, '.') = ',';  // a decimal comma in Spanish
  std::string s = std::string(es ? "ejecutadas directamente: " : "run directly: ") +
                  std::to_string(e.direct) + (es ? " de " : " of ") +
                  std::to_string(e.instructions) + (es ? " instrucciones (" : " instructions (") +
                  percent + " %); " + (es ? "el VMM atendió " : "the VMM handled ") +
                  std::to_string(e.by_vmm) + " (" + technique + ")";
  if (technique == "emulation")
    s += es ? "; con emulación el software ejecuta todas" : "; under emulation software runs every one";
  return s;
}

std::string step_failure(const Lesson& l, size_t i, const std::string& failure) {
  return "step " + std::to_string(i + 1) + " (" + l.file + ":" + std::to_string(l.steps[i].line) +
         "): " + failure;
}

std::string event_line(const trace::EventHeader& e) {
  trace::EventFormatter f({trace::Format::kText, false});
  return f.format(e);
}

Lang lang_from_environment() {
  for (const char* var : {"LC_ALL", "LC_MESSAGES", "LANG"}) {
    const char* v = std::getenv(var);
    if (v && *v) return std::string_view(v).starts_with("es") ? Lang::kEs : Lang::kEn;
  }
  return Lang::kEn;
}

}  // namespace trapscope::lessons
