#include "visualizer/core/state_dump.hpp"

#include "trace/fields.hpp"
#include "visualizer/core/describe.hpp"
#include "visualizer/core/lesson_driver.hpp"

namespace trapscope::viz {

nlohmann::json dump_lesson(const LessonDriver& d) {
  nlohmann::json j;
  j["id"] = d.lesson().id;
  j["file"] = d.lesson().file;
  j["lang"] = std::string(lessons::to_string(d.lang()));
  j["step"] = d.current() + 1;
  j["steps"] = d.count();
  j["next_to_run"] = d.next_to_run() + 1;
  j["technique"] = d.setup().technique;
  j["paging"] = d.setup().paging;
  j["results"] = nlohmann::json::array();
  for (size_t i = 0; i < d.count(); ++i) {
    const StepResult& r = d.result(i);
    const AnswerState& a = d.answer_state(i);
    j["results"].push_back({{"step", i + 1},
                            {"verdict", std::string(to_string(r.verdict))},
                            {"failure", r.failure},
                            {"event", r.event},
                            {"event_line", r.event_line},
                            {"efficiency", r.efficiency ? r.efficiency->percent : -1.0},
                            {"answer", {{"tries", a.tries}, {"right", a.right},
                                        {"done", a.done()}, {"message", a.message}}}});
  }
  j["questions"] = d.questions();
  j["right"] = d.right();
  return j;
}

using nlohmann::json;
using trace::EventType;

json dump_registers(const x86::CpuState& r) {
  static constexpr const char* kGpr[] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                         "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
  static constexpr const char* kSeg[] = {"es", "cs", "ss", "ds", "fs", "gs"};
  json j;
  for (int i = 0; i < 16; ++i) j[kGpr[i]] = r.gpr[i];
  j["rip"] = r.rip;
  j["rflags"] = r.rflags;
  j["cr0"] = r.cr0;
  j["cr2"] = r.cr2;
  j["cr3"] = r.cr3;
  j["cr4"] = r.cr4;
  j["efer"] = r.efer;
  auto segment = [](const x86::Segment& s) {
    return json{{"selector", s.selector}, {"base", s.base}, {"limit", s.limit},
                {"type", s.type},         {"s", s.s},       {"dpl", s.dpl},
                {"present", s.present},   {"l", s.l},       {"db", s.db},
                {"g", s.g}};
  };
  for (int i = 0; i < x86::kSegCount; ++i) j[kSeg[i]] = segment(r.seg[i]);
  j["ldtr"] = segment(r.ldtr);
  j["tr"] = segment(r.tr);
  j["cpl"] = r.cpl();
  return j;
}

json dump_event(const EventRecord& e) {
  const trace::EventHeader& h = e.header;
  json j{{"index", h.seq},
         {"type", std::string(type_label(h.type))},
         {"summary", event_summary(e)},
         {"rip", h.rip},
         {"mode", std::string(trace::to_string(h.cpu_mode))}};
  j["cpl"] = h.cpl <= 3 ? json(h.cpl) : json(nullptr);
  // The type's fields (trace/events.def): numbers as numbers, names and text as strings.
  for (const trace::Field* f : trace::fields_of(h.type)) {
    if (f->header_only()) continue;
    if (f->format == trace::FieldFormat::kText || f->format == trace::FieldFormat::kName) {
      if (auto v = trace::field_text(*f, h)) j[std::string(f->name)] = *v;
      continue;
    }
    uint64_t v = 0;
    if (!f->get(h, &v)) continue;
    if (f->format == trace::FieldFormat::kSigned) j[std::string(f->name)] = static_cast<int64_t>(v);
    else j[std::string(f->name)] = v;
  }
  // What the details pane shows (describe.hpp), in English.
  j["explain"] = explain(e);
  json details = json::array();
  for (const Field& f : event_fields(e)) {
    details.push_back({{"name", f.name}, {"value", f.value}, {"note", f.note}});
  }
  j["details"] = details;
  if (h.type == EventType::kVmExit) {  // the names scripts have used since before the table
    j["exit_reason"] = std::string(trace::exit_reason_name(e.exit.reason));
    j["kvm_exit_reason"] = e.exit.reason;
  }
  return j;
}

json dump_state(const Model& m) {
  const Status& st = m.status();
  json j;
  j["source"] = st.source;
  j["backend"] = st.backend;
  j["state"] = std::string(to_string(st.state));
  j["message"] = st.message;
  j["message_is_error"] = st.message_is_error;
  // KVM: the CPL lane shows the CPL only at VM exits ("not observed" between them).
  j["cpl_only_at_exits"] = st.cpl_only_at_exits;
  if (st.real) {  // trap-and-emulate, BT: the real privilege beside the registers' virtual one
    j["real_privilege"] = {{"cpl", st.real->cpl}, {"if", st.real->interrupts}, {"iopl", st.real->iopl}};
  } else {
    j["real_privilege"] = nullptr;
  }
  j["events"] = m.events().size();
  j["lanes"] = {{"vm_exit", m.lane(EventType::kVmExit).size()},
                {"exception", m.lane(EventType::kException).size()},
                {"page_walk", m.lane(EventType::kPageWalk).size()},
                {"ring_transition", m.lane(EventType::kRingTransition).size()},
                {"vt_exit", m.lane(EventType::kVmTransition).size()},
                {"instruction", m.lane(EventType::kInstruction).size()},
                {"run_end", m.lane(EventType::kRunEnd).size()}};
  if (m.selected() >= 0) {
    EventRecord r;
    m.events().load(static_cast<size_t>(m.selected()), &r);
    j["selected"] = dump_event(r);
  } else {
    j["selected"] = nullptr;
  }
  const auto cpl = m.shown_cpl();
  j["cpl_shown"] = cpl ? json(*cpl) : json(nullptr);
  const auto mode = m.shown_mode();
  j["mode_shown"] = mode ? json(std::string(cpu_mode_name(*mode))) : json(nullptr);
  j["registers"] = m.has_registers() ? dump_registers(m.registers()) : json(nullptr);
  j["instructions"] = st.instructions_known ? json(st.instructions) : json(nullptr);
  j["console"] = m.console();
  j["end"] = st.end ? json(std::string(trace::to_string(*st.end))) : json(nullptr);
  j["exit_code"] = st.exit_code;
  json stats = json::array();
  for (const auto& [reason, s] : m.exit_stats().by_reason()) {
    stats.push_back({{"reason", std::string(trace::exit_reason_name(reason))},
                     {"kvm_exit_reason", reason},
                     {"count", s.count},
                     {"total_ns", s.total_ns},
                     {"min_ns", s.count ? s.min_ns : 0},
                     {"max_ns", s.max_ns}});
  }
  j["exit_stats"] = stats;
  json vmx = json::array();  // the VT-x model's exits by basic exit reason
  for (const auto& [reason, n] : m.exit_stats().by_vmx_reason()) {
    vmx.push_back({{"reason", std::string(x86::vmx_exit_reason_name(reason))},
                   {"vmx_exit_reason", reason},
                   {"count", n}});
  }
  j["vmx_exit_stats"] = vmx;
  j["filter"] = {{"text", m.filter().text()}, {"visible", m.visible_count()}};
  json bps = json::array();
  for (const Breakpoint& b : m.breakpoints()) {
    bps.push_back({{"id", b.id}, {"enabled", b.enabled}, {"what", to_string(b)}});
  }
  j["breakpoints"] = bps;
  j["tcache"] = dump_tcache(m);
  if (const auto& v = m.vmcs()) {  // the VT-x model's VMCS (sim/virt/vmcs.hpp)
    json f;
    for (int i = 0; i < static_cast<int>(sim::virt::VmcsField::kCount); ++i) {
      const auto field = static_cast<sim::virt::VmcsField>(i);
      f[std::string(sim::virt::to_string(field))] = sim::virt::field_word(*v, field);
    }
    j["vmcs"] = {{"spec", sim::virt::vmcs_spec_of(*v)},
                 {"controls", f},
                 {"exception_bitmap", v->exception_bitmap},
                 {"io_bitmap_exiting_ports", v->io_bitmap.count()}};
  } else {
    j["vmcs"] = nullptr;
  }
  return j;
}

json dump_tcache(const Model& m) {
  const TranslationCacheView& tc = m.tcache();
  const TcTotals& t = tc.totals();
  json j{{"blocks", tc.blocks().size()},         {"units", tc.units().size()},
         {"translations", t.translations},        {"translated_insns", t.translated_insns},
         {"ident", t.ident},                      {"non_ident", t.non_ident},
         {"chains", t.chains},                    {"callouts", t.callouts},
         {"adaptive_callouts", t.adaptive_callouts},
         {"invalidated_units", t.invalidated_units},
         {"executions", t.executions},            {"instructions", t.instructions},
         {"count_reports", t.count_reports}};
  auto block = [&](uint32_t b) {
    const TcBlock& x = tc.blocks()[b];
    return json{{"rip", x.rip},
                {"pa", x.pa},
                {"insns", x.count},
                {"translations", x.translations},
                {"executions", x.executions},
                {"instructions", x.instructions},
                {"callouts", x.callouts},
                {"live", x.live}};
  };
  json rows = json::array();
  for (uint32_t b : sorted_blocks(tc, TcColumn::kExecutions, true)) {
    if (rows.size() == 200) break;
    rows.push_back(block(b));
  }
  j["hot"] = rows;  // by executions, at most 200
  json inval = json::array();
  for (const TcInvalidation& v : tc.invalidations()) {
    inval.push_back({{"event", v.event}, {"page_pa", v.page_pa}, {"units", v.units}, {"rip", v.rip}});
  }
  j["invalidations"] = inval;
  if (const auto sel = tc.selected()) {
    json s = block(*sel);
    const uint32_t u = tc.blocks()[*sel].newest;
    s["unit"] = tc.units()[u].id;
    json lines = json::array();
    for (const TcLine& l : tc.lines(u, m.events())) {
      lines.push_back({{"rip", l.rip}, {"bytes", l.bytes}, {"guest", l.guest},
                       {"kind", l.kind_name}, {"translated", l.translated}, {"why", l.why}});
    }
    s["lines"] = lines;
    json succ = json::array(), pred = json::array();
    for (const auto& n : tc.successors(*sel)) {
      succ.push_back({{"rip", tc.blocks()[n.block].rip}, {"taken", n.taken}});
    }
    for (const auto& n : tc.predecessors(*sel)) {
      pred.push_back({{"rip", tc.blocks()[n.block].rip}, {"taken", n.taken}});
    }
    s["successors"] = succ;
    s["predecessors"] = pred;
    j["selected"] = s;
  } else {
    j["selected"] = nullptr;
  }
  return j;
}

}  // namespace trapscope::viz
