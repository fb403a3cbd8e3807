// `trapscope gui [GUEST | TRACE_FILE | --lesson ID]`: the visualizer (visualizer/). A guest runs
// live on a backend behind the views; a trace file (`trapscope run --trace`) opens the same
// views over the recorded events.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sstream>

#include "backend/backend.hpp"
#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/guest_file.hpp"
#include "cli/options.hpp"
#include "guests/guest_catalog.hpp"
#include "lessons/step.hpp"
#include "trace/input_file.hpp"
#include "trace/trace_file.hpp"
#include "visualizer/core/live_controller.hpp"
#include "visualizer/core/script.hpp"
#include "visualizer/core/trace_replay.hpp"
#include "visualizer/gui_main.hpp"
#include "vmm/doctor.hpp"

namespace trapscope::cli {
namespace {

constexpr uint64_t kMaxScriptBytes = uint64_t{1} << 20;  // `--script FILE`: 1 MiB

struct GuiCommandOptions {
  std::string source = "hello";
  std::string lesson;
  std::string lang;                          // --lang: the lesson's language ("": from LANG)
  lessons::Lang lesson_lang = lessons::lang_from_environment();
  std::string backend = "sim";
  bool backend_set = false;                  // --backend given (a lesson picks its own)
  std::string mode;
  std::string technique = "emulation";
  std::string paging = "native";  // --paging: the simulator's memory virtualization
  std::string vmcs;               // --vmcs: the VT-x model's controls (sim/virt/vmcs.hpp)
  uint64_t load = platform::kDefaultLoadAddress;
  uint64_t mem_mib = 16;
  bool no_instructions = false;
  uint64_t max_events = 20'000'000;
  std::string script;
  std::string dump_state;
  double script_timeout = 120;
  std::string size = "1600x900";
  float font_scale = 1.0f;
  std::string layout;   // --layout FILE|none (default: layout_file_default())
  std::string compare;  // --compare FILE.json
  std::string guest;    // --guest: the guest to re-execute a trace with
  bool source_set = false;
  std::vector<std::string> disks;  // --disk
};

// Whether `path` is a regular file that starts with the trace magic (a FIFO or device is not
// opened for reading: trace/input_file.hpp).
// Where the window layout is kept (docs/visualizer.md, "Layout"): --layout FILE, else
// $TRAPSCOPE_GUI_LAYOUT, else none under --script (scripts and tests never write the user's
// files), else $XDG_CONFIG_HOME/trapscope/imgui.ini ($HOME/.config when XDG_CONFIG_HOME is
// unset, the XDG Base Directory default). "none": not kept.
std::string layout_file(const GuiCommandOptions& o) {
  std::string f = o.layout;
  if (f.empty()) {
    if (const char* env = std::getenv("TRAPSCOPE_GUI_LAYOUT")) f = env;
  }
  if (f.empty() && o.script.empty()) {
    const char* xdg = std::getenv("XDG_CONFIG_HOME");
    const char* home = std::getenv("HOME");
    if (xdg && *xdg) f = std::string(xdg) + "/trapscope/imgui.ini";
    else if (home && *home) f = std::string(home) + "/.config/trapscope/imgui.ini";
  }
  return f == "none" ? "" : f;
}

bool is_trace_file(const std::string& path) {
  uint64_t size = 0;
  std::string error;
  const int fd = trace::open_regular_file(path, &size, &error);
  if (fd < 0) return false;
  char magic[8] = {};
  const bool yes = ::read(fd, magic, sizeof magic) == sizeof magic &&
                   std::string(magic, 8) == "TRAPSCOP";
  ::close(fd);
  return yes;
}

// The lesson's machine behind the views, and the lesson driving it (`gui --lesson ID`).
int lesson_gui(const GuiCommandOptions& o, viz::GuiOptions g) {
  try {
    lessons::Lesson l = lessons::find_lesson(o.lesson);
    std::string backend = o.backend_set ? o.backend : l.backends.front();
    if (!o.backend_set && backend == "kvm" && !backend::kvm_usable() && l.allows("sim")) backend = "sim";
    if (!l.allows(backend)) {
      std::fprintf(stderr, "trapscope gui: lesson %s does not run on %s\n", l.id.c_str(),
                   backend.c_str());
      return kBadInput;
    }
    const auto kind = backend == "kvm" ? backend::Kind::kKvm : backend::Kind::kSim;
    viz::LiveSource src = viz::LessonDriver::live_source(l, kind);
    if (kind == backend::Kind::kKvm) {
      std::string why;
      if (!backend::kvm_usable(&why)) {
        std::fprintf(stderr, "trapscope gui: KVM is not usable here (%s)\n", why.c_str());
        return kNoKvm;
      }
      src.host = vmm::host_kvm_module();
    }
    src.max_events = o.max_events;
    g.title = "trapscope — lesson " + std::to_string(l.number) + ": " + l.title.in(o.lesson_lang) + " (" +
              (kind == backend::Kind::kSim ? "simulator" : "KVM") + ")";
    auto controller = std::make_unique<viz::LiveController>(std::move(src));
    g.lesson = std::make_unique<viz::LessonDriver>(std::move(l), *controller, kind, o.lesson_lang);
    g.driver = std::move(controller);
  } catch (const lessons::LessonError& e) {
    std::fprintf(stderr, "trapscope gui: %s\n", e.what());
    return kBadInput;
  }
  return viz::run_gui(std::move(g));
}

int machine_gui(const GuiCommandOptions& o, viz::GuiOptions g);

int gui(const GuiCommandOptions& o) {
  viz::GuiOptions g;
  int w = 0, h = 0;
  char x = 0;
  std::istringstream size(o.size);
  if (!(size >> w >> x >> h) || x != 'x' || w < 320 || h < 240 || w > 8192 || h > 8192) {
    std::fprintf(stderr, "trapscope gui: --size takes WIDTHxHEIGHT, e.g. 1600x900\n");
    return kBadInput;
  }
  g.width = w;
  g.height = h;
  g.font_scale = o.font_scale;
  g.layout_file = layout_file(o);
  g.lang = o.lesson_lang;
  g.dump_path = o.dump_state;
  g.script_timeout_s = o.script_timeout;
  if (!o.script.empty()) {
    std::string error;
    const auto text = trace::read_input_file(o.script, kMaxScriptBytes, "a GUI script", &error);
    if (!text) {
      std::fprintf(stderr, "trapscope gui: cannot read the script '%s': %s\n", o.script.c_str(),
                   error.c_str());
      return kBadInput;
    }
    auto commands = viz::parse_script(*text, &error);
    if (!commands) {
      std::fprintf(stderr, "trapscope gui: %s: %s\n", o.script.c_str(), error.c_str());
      return kBadInput;
    }
    g.has_script = true;
    g.script_path = o.script;
    g.script = std::move(*commands);
  }
  for (const guests::CatalogEntry& e : guests::catalog()) g.compare_workloads.emplace_back(e.name);
  GuiCommandOptions with_guest = o;
  if (!o.compare.empty()) {
    std::string error;
    g.compare = viz::load_compare(o.compare, &error);
    if (!g.compare) {
      std::fprintf(stderr, "trapscope gui: %s\n", error.c_str());
      return kBadInput;
    }
    // The machine behind the panel runs the compared workload, unless a SOURCE was given.
    if (!o.source_set && guests::find(g.compare->workload)) with_guest.source = g.compare->workload;
  }
  return machine_gui(with_guest, std::move(g));
}

int machine_gui(const GuiCommandOptions& o, viz::GuiOptions g) {
  if (!o.lesson.empty()) return lesson_gui(o, std::move(g));

  if (o.source.find('/') != std::string::npos || is_trace_file(o.source)) {
    if (is_trace_file(o.source)) {
      try {
        trace::TraceFile t = trace::read_trace(o.source);
        g.title = "trapscope — " + o.source;
        std::string why;
        auto reexec = viz::reexecution_for(t, o.guest, &why);
        if (!reexec && t.metadata.backend == "sim") {
          std::fprintf(stderr, "trapscope gui: registers and memory are not shown: %s\n",
                       why.c_str());
        }
        g.driver = std::make_unique<viz::TraceReplay>(std::move(t), o.source, std::move(reexec),
                                                      why);
        return viz::run_gui(std::move(g));
      } catch (const trace::TraceError& e) {
        std::fprintf(stderr, "trapscope gui: %s\n", e.what());
        return kBadInput;
      }
    }
  }
  if (!o.guest.empty()) {
    std::fprintf(stderr, "trapscope gui: --guest applies to a trace file ('%s' is not one)\n",
                 o.source.c_str());
    return kBadInput;
  }

  const uint64_t mem_bytes = o.mem_mib << 20;
  std::string error;
  auto guest = resolve_guest(o.source, mem_bytes, &error);
  if (!guest) {
    std::fprintf(stderr, "trapscope gui: %s\n", error.c_str());
    return kBadInput;
  }
  viz::LiveSource src;
  src.kind = o.backend == "kvm" ? backend::Kind::kKvm : backend::Kind::kSim;
  if (o.technique != "emulation" && o.technique != "pv" && src.kind == backend::Kind::kKvm) {
    std::fprintf(stderr, "trapscope gui: --technique %s applies to --backend sim (KVM runs "
                         "emulation-free; pv works on both)\n", o.technique.c_str());
    return kBadInput;
  }
  if (src.kind == backend::Kind::kKvm) {
    std::string why;
    if (!backend::kvm_usable(&why)) {
      std::fprintf(stderr, "trapscope gui: KVM is not usable here (%s); --backend sim runs the "
                           "simulator (`trapscope doctor` says more)\n", why.c_str());
      return kNoKvm;
    }
    src.host = vmm::host_kvm_module();
  }
  const std::string mode = o.mode.empty() ? guest->default_mode : o.mode;
  src.config.memory_bytes = mem_bytes;
  src.config.mode = *platform::parse_boot_mode(mode);
  src.config.load_address = o.load;
  src.config.record_instructions = src.kind == backend::Kind::kSim && !o.no_instructions;
  src.config.technique = *sim::virt::parse_technique(o.technique);
  if (!disk_specs(o.disks, &src.config.disks, &error)) {
    std::fprintf(stderr, "trapscope gui: %s\n", error.c_str());
    return kBadInput;
  }
  try {  // bad image files are refused here (exit 2), not when the window is up
    for (const platform::DiskSpec& d : src.config.disks) platform::open_disk(d);
  } catch (const platform::DiskError& e) {
    std::fprintf(stderr, "trapscope gui: %s\n", e.what());
    return kBadInput;
  }
  src.config.paging = *sim::parse_vmm_paging(o.paging);
  if (o.paging != "native" && src.kind == backend::Kind::kKvm) {
    std::fprintf(stderr, "trapscope gui: --paging %s needs --backend sim (KVM's own memory "
                         "virtualization is not selectable from user space)\n", o.paging.c_str());
    return kBadInput;
  }
  if (!o.vmcs.empty()) {
    std::string why;
    if (o.technique != "vt" && o.technique != "pv") {
      std::fprintf(stderr, "trapscope gui: --vmcs sets the VT-x model's controls: it needs "
                           "--technique vt or pv\n");
      return kBadInput;
    }
    if (src.kind == backend::Kind::kKvm) {
      std::fprintf(stderr, "trapscope gui: --vmcs applies to the simulator's VT-x model "
                           "(--backend sim)\n");
      return kBadInput;
    }
    if (!sim::virt::apply_vmcs_spec(src.config.vmcs, o.vmcs, &why)) {
      std::fprintf(stderr, "trapscope gui: --vmcs %s\n", why.c_str());
      return kBadInput;
    }
  }
  src.image = std::move(guest->image);
  src.name = guest->name;
  src.max_events = o.max_events;
  src.memory_address = o.load & ~0xFull;
  g.title = "trapscope — " + guest->name + " (" +
            (src.kind == backend::Kind::kSim ? "simulator" : "KVM") + ")";
  g.driver = std::make_unique<viz::LiveController>(std::move(src));
  return viz::run_gui(std::move(g));
}

}  // namespace

int run_lesson_gui(const std::string& lesson, const std::string& backend, lessons::Lang lang) {
  GuiCommandOptions o;
  o.lesson = lesson;
  o.backend = backend;
  o.backend_set = !backend.empty();
  o.lesson_lang = lang;
  return gui(o);
}

void add_gui_command(CLI::App& app, int* status) {
  auto o = std::make_shared<GuiCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "gui", "Step through a guest in the visualizer (Dear ImGui), or open a trace file");
  cmd->add_option("SOURCE", o->source,
                  "A built-in guest (see `trapscope guests`), a flat binary, or a trace file "
                  "written by `trapscope run --trace`")
      ->capture_default_str();
  cmd->add_option("--lesson", o->lesson,
                  "Open a lesson (id, number or file; `trapscope lesson list`) in the lesson "
                  "pane, on the lesson's guest and backend");
  cmd->add_option("--lang", o->lang, "The language of the lesson and of the visualizer's VT-x texts, es or en (default: from LANG)")
      ->check(CLI::IsMember({"es", "en"}));
  cmd->add_option("--backend", o->backend,
                  "sim (default): the simulator, which can step, stop at any event and step "
                  "back; kvm: the KVM VMM, which reports only VM exits (and on kvm_pvm hosts "
                  "single-steps only CPL 0 and real-mode code)")
      ->check(CLI::IsMember({"kvm", "sim"}))
      ->capture_default_str();
  cmd->add_option("--mode", o->mode,
                  "CPU mode the VMM enters the guest in (default: the guest's own; files: real)")
      ->check(CLI::IsMember({"real", "protected", "long"}));
  cmd->add_option("--technique", o->technique,
                  "Simulator technique, as for `trapscope run`: emulation (the interpreter), "
                  "trap-emulate, vt, bt (binary translation: the Translation cache panel shows "
                  "its units), or pv")
      ->check(CLI::IsMember({"emulation", "trap-emulate", "vt", "bt", "pv"}))
      ->capture_default_str();
  cmd->add_option("--paging", o->paging,
                  "Simulator: how its VMM virtualizes memory, as for `trapscope run`: native, "
                  "shadow (shadow page tables) or ept (nested paging); the Page walk window "
                  "shows the walks live")
      ->check(CLI::IsMember({"native", "shadow", "ept"}))
      ->capture_default_str();
  cmd->add_option("--vmcs", o->vmcs,
                  "vt, pv: the VT-x model's VMCS controls at the start, e.g. "
                  "+descriptor-table-exiting,-hlt-exiting (docs/vmcs.md); the VMCS panel "
                  "changes them live");
  add_load_option(cmd, &o->load, "Guest-physical load address = entry point");
  cmd->add_option("--mem", o->mem_mib, "Guest memory in MiB")
      ->check(CLI::Range(uint64_t{1}, uint64_t{3584}))
      ->capture_default_str();
  cmd->add_flag("--no-instructions", o->no_instructions,
                "Simulator: do not record an event per retired instruction");
  add_count_option(cmd, "--max-events", &o->max_events,
                   "Stop a run when this many events are held");
  cmd->add_option("--script", o->script,
                  "Run the commands in FILE (step, step-to exit, screenshot out.png, dump "
                  "state.json, assert-cpl 3, …; see visualizer/core/script.hpp), then quit");
  cmd->add_option("--dump-state", o->dump_state,
                  "At exit, write the GUI's state (selection, CPL shown, registers, …) as JSON");
  add_seconds_option(cmd, "--script-timeout", &o->script_timeout,
                     "Give up on a script after SECONDS");
  cmd->add_option("--compare", o->compare,
                  "Open the compare panel on a result written by `trapscope compare WORKLOAD "
                  "--json FILE` (the machine runs WORKLOAD unless SOURCE is given)");
  cmd->add_option("--guest", o->guest,
                  "With a trace file: re-execute it with this guest (a built-in name or a flat "
                  "binary) for registers and memory; needed when the trace holds no checksum "
                  "of its guest or the guest file it names has changed");
  add_disk_option(cmd, &o->disks);
  cmd->add_option("--size", o->size, "Window size WIDTHxHEIGHT")->capture_default_str();
  cmd->add_option("--layout", o->layout,
                  "Keep the window layout in this Dear ImGui .ini file, or none (default: "
                  "$TRAPSCOPE_GUI_LAYOUT, else ~/.config/trapscope/imgui.ini; none under "
                  "--script)");
  cmd->add_option("--font-scale", o->font_scale,
                  "Scale the fonts: 1.5–2 is a presentation mode for a classroom projector "
                  "(1.25 on large screens)")
      ->check(CLI::Range(0.5f, 3.0f))
      ->capture_default_str();
  cmd->footer(
      "The simulator is the default: on it the visualizer can single-step every instruction,\n"
      "stop at ring transitions, exceptions and page walks, and step back. KVM shows only VM\n"
      "exits, and on kvm_pvm hosts it single-steps only emulated code (CPL 0, real mode).\n"
      "No display? Run it under Xvfb: xvfb-run -a trapscope gui hello --script s.txt\n"
      "Exit status: 0 ok; 1 a script assertion failed; 2 bad input, or no window could be\n"
      "opened; 4 the script timed out; 5 KVM is not usable.");
  cmd->callback([o, cmd, status] {
    o->backend_set = cmd->count("--backend") > 0;
    o->source_set = cmd->count("SOURCE") > 0;
    if (!o->lang.empty()) o->lesson_lang = *lessons::parse_lang(o->lang);
    *status = gui(*o);
  });
}

}  // namespace trapscope::cli
