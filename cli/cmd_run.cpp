// `trapscope run GUEST`: run a guest under KVM, print its console output and every VM exit.
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/guest_file.hpp"
#include "cli/exit_codes.hpp"
#include "cli/gdb_run.hpp"
#include "cli/options.hpp"
#include "cli/snapshot_run.hpp"
#include "cli/technique_counter.hpp"
#include "guests/guest_catalog.hpp"
#include "trace/exit_stats.hpp"
#include "trace/export_chrome.hpp"
#include "trace/printer.hpp"
#include "trace/trace_file.hpp"
#include "vmm/doctor.hpp"
#include "backend/backend.hpp"
#include "backend/cosim.hpp"
#include "sim/bt/translator.hpp"
#include "vmm/kvm_machine.hpp"

namespace trapscope::cli {
namespace {

struct RunOptions {
  std::string guest;
  std::string mode;  // empty: the guest's own mode (built-in) or real (file)
  uint64_t load = platform::kDefaultLoadAddress;
  uint64_t mem_mib = 16;
  std::string trace_file;
  uint64_t trace_max_mib = 1024;  // --trace-max-size (0: no limit)
  std::string trace_format = "binary";  // --trace-format: binary or chrome
  std::string format = "text";
  double timeout_s = 10.0;
  uint64_t max_exits = 0;
  bool quiet = false;
  bool no_timing = false;
  bool stats = false;
  std::string backend;  // empty: kvm where usable, else sim
  std::string technique = "emulation";
  uint64_t max_instructions = 0;
  bool record_instructions = false;
  unsigned deprivilege = 1;
  std::string paging = "native";
  unsigned tlb_entries = sim::kTlbDefaultEntries;
  bool bt_lookup_events = false;
  bool check_equivalence = false;
  std::vector<std::string> disks;  // --disk
  std::string vmcs;  // --vmcs: VT-x model controls (sim/virt/vmcs.hpp)
  std::string passthrough = "none";  // --passthrough (platform/passthrough.hpp)
  std::string save_at, save_file;  // --save-at exit:N|insn:N --save FILE (cli/snapshot_run.hpp)
  MigrateRequest migrate;          // --migrate-to / --migrate-listen (cli/snapshot_run.hpp)
  std::string guest_arg;           // --guest-arg N[,M]: RDI, RSI at entry
  std::string gdb;  // --gdb HOST:PORT (cli/gdb_run.hpp)
};

// What the passthrough device did, and what the VMM saw of it (docs/passthrough.md).
std::string passthrough_summary(const platform::PassthroughDevice& pt) {
  const bool mapped = pt.mapped();
  return fmt::format(
      "passthrough ({}): {} commands ({} refused), {} bytes of DMA; {}\n",
      platform::to_string(pt.mode()), pt.commands(), pt.errors(), pt.dma_bytes(),
      mapped ? "its registers and buffer are memory mapped into the guest: the guest's accesses "
               "caused no VM exit and the VMM could not trace them"
             : "every access to its registers and buffer was an MMIO exit");
}

// Basic exit reasons of the simulator's VMM-internal exits (SDM Vol. 3D Appendix C).
const char* intel_exit_name(uint32_t reason) {
  switch (reason) {
    case 0: return "exception or NMI (#PF)";
    case 14: return "INVLPG";
    case 28: return "control-register access (MOV to CR3)";
    case 48: return "EPT violation";
    default: return "?";
  }
}

std::string paging_table(const backend::PagingCounters& c, const std::string& mode) {
  const sim::PagingStats& p = c.stats;
  std::string t;
  char buf[200];
  auto line = [&](const char* name, uint64_t v, const char* note) {
    std::snprintf(buf, sizeof buf, *note ? "  %-34s %12llu  %s\n" : "  %-34s %12llu%s\n", name,
                  static_cast<unsigned long long>(v), note);
    t += buf;
  };
  t += "memory virtualization (simulator, --paging " + mode + "):\n";
  std::snprintf(buf, sizeof buf, "  TLB: %u entries, direct-mapped\n", c.tlb_entries);
  t += buf;
  line("TLB hits", c.tlb_hits, "");
  line("TLB misses", c.tlb_misses, "");
  line("TLB flushes", c.tlb_flushes, "CR3 writes keep global entries (SDM 4.10.4.1)");
  line("page walks", p.walks, "TLB misses that walked");
  line("page-walk references", p.walk_refs(), "entries the hardware read, all tables");
  line("  guest-table references", p.guest_refs, "native, EPT");
  line("  EPT references", p.nested_refs, "EPT: n*m + n + m per 2D walk");
  line("  shadow-table references", p.shadow_refs, "shadow: 4 per walk (4-level shadow)");
  line("guest-table reads by the VMM", p.vmm_guest_refs, "shadow: software walks");
  line("true page faults", p.guest_page_faults, "#PF delivered to the guest");
  line("hidden page faults", p.hidden_faults, "shadow: resolved by the VMM, guest never sees");
  line("page-table writes trapped", p.pt_write_traps, "shadow: emulated + resynchronized");
  line("page-table writes by hypercall", p.vmm_table_writes, "shadow: resynchronized, no trap");
  line("shadow entries dropped", p.shadow_dropped, "shadow: resynchronization");
  t += "  VM exits inside the VMM, by Intel basic exit reason (SDM Vol. 3D Appendix C):\n";
  const auto exits = p.exits_by_reason();
  if (exits.empty()) t += "    none\n";
  for (const auto& [reason, n] : exits) {
    std::snprintf(buf, sizeof buf, "    %2u %-38s %12llu\n", reason, intel_exit_name(reason),
                  static_cast<unsigned long long>(n));
    t += buf;
  }
  return t;
}

}  // namespace

std::optional<LoadedGuest> resolve_guest(const std::string& arg, uint64_t mem_bytes,
                                         std::string* error) {
  if (arg.find('/') == std::string::npos) {
    if (auto g = guests::find(arg)) {
      return LoadedGuest{arg, std::string(g->mode), {g->image.begin(), g->image.end()}};
    }
  }
  struct stat st {};
  if (::stat(arg.c_str(), &st) != 0) {
    std::string names;
    for (const auto& e : guests::catalog()) names += std::string(names.empty() ? "" : ", ") + e.name;
    *error = "no guest file or built-in guest named '" + arg + "': " + std::strerror(errno) +
             " (built-in guests: " + names + ")";
    return std::nullopt;
  }
  if (!S_ISREG(st.st_mode)) {
    *error = "'" + arg + "' is not a regular file";
    return std::nullopt;
  }
  if (static_cast<uint64_t>(st.st_size) > mem_bytes) {
    *error = "'" + arg + "' (" + std::to_string(st.st_size) +
             " bytes) is larger than guest memory (" + std::to_string(mem_bytes) +
             " bytes); use a larger --mem";
    return std::nullopt;
  }
  std::ifstream in(arg, std::ios::binary);
  std::vector<uint8_t> image((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) {
    *error = "cannot read '" + arg + "'";
    return std::nullopt;
  }
  if (image.empty()) {
    *error = "'" + arg + "' is empty: a guest must contain at least one instruction";
    return std::nullopt;
  }
  return LoadedGuest{arg, "real", std::move(image)};
}

namespace {

std::atomic<backend::Backend*> g_running{nullptr};
std::atomic<bool> g_interrupted{false};

// SIGINT, SIGTERM and SIGHUP: the run stops, the trace file gets its trailer (exit 130).
void on_stop_signal(int) {
  g_interrupted.store(true);
  if (backend::Backend* m = g_running.load()) m->request_stop();
}

// Installs on_stop_signal for the run and puts the old handlers back when it goes.
class StopSignals {
 public:
  StopSignals() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < std::size(kSignals); ++i) sigaction(kSignals[i], &sa, &old_[i]);
  }
  ~StopSignals() {
    for (size_t i = 0; i < std::size(kSignals); ++i) sigaction(kSignals[i], &old_[i], nullptr);
    g_running.store(nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  static constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};
  struct sigaction old_[std::size(kSignals)] {};
};

int run(const RunOptions& o) {
  const auto started = std::chrono::steady_clock::now();
  const uint64_t mem_bytes = o.mem_mib << 20;
  std::string error;
  auto guest = resolve_guest(o.guest, mem_bytes, &error);
  if (!guest) {
    std::fprintf(stderr, "trapscope run: %s\n", error.c_str());
    return kBadInput;
  }
  const std::string mode_name = o.mode.empty() ? guest->default_mode : o.mode;
  backend::Config cfg;
  cfg.memory_bytes = mem_bytes;
  cfg.mode = *platform::parse_boot_mode(mode_name);
  cfg.load_address = o.load;
  cfg.record_instructions = o.record_instructions;
  cfg.technique = *sim::virt::parse_technique(o.technique);
  cfg.deprivilege = static_cast<uint8_t>(o.deprivilege);
  cfg.paging = *sim::parse_vmm_paging(o.paging);
  cfg.tlb_entries = o.tlb_entries;
  cfg.bt_lookup_events = o.bt_lookup_events;
  if (!disk_specs(o.disks, &cfg.disks, &error)) {
    std::fprintf(stderr, "trapscope run: %s\n", error.c_str());
    return kBadInput;
  }
  if (!o.gdb.empty() && (!o.save_at.empty() || !o.save_file.empty() || !o.migrate.to.empty() ||
                         !o.migrate.listen.empty())) {
    std::fprintf(stderr, "trapscope run: --gdb cannot be combined with --save-at/--save or live "
                         "migration\n");
    return kBadInput;
  }
  if (!o.vmcs.empty()) {
    if (o.technique != "vt" && o.technique != "pv") {
      std::fprintf(stderr, "trapscope run: --vmcs sets the VT-x model's controls: it needs "
                           "--technique vt or pv\n");
      return kBadInput;
    }
    if (o.backend == "kvm") {
      std::fprintf(stderr, "trapscope run: --vmcs applies to the simulator's VT-x model "
                           "(--backend sim); KVM's own VMCS is not reachable from user space\n");
      return kBadInput;
    }
    if (!sim::virt::apply_vmcs_spec(cfg.vmcs, o.vmcs, &error)) {
      std::fprintf(stderr, "trapscope run: --vmcs %s\n", error.c_str());
      return kBadInput;
    }
  }
  cfg.passthrough = *platform::parse_passthrough_mode(o.passthrough);

  backend::Kind kind = backend::Kind::kKvm;
  std::string why_no_kvm;
  if (o.backend == "sim") {
    kind = backend::Kind::kSim;
  } else if (o.backend.empty() && !backend::kvm_usable(&why_no_kvm)) {
    kind = backend::Kind::kSim;
    std::fprintf(stderr, "trapscope run: KVM is not usable here (%s); using the simulator\n",
                 why_no_kvm.c_str());
  }
  const bool paging_options =
      o.paging != "native" || o.tlb_entries != sim::kTlbDefaultEntries;
  // pv runs on either backend: on KVM a hypercall is an ordinary KVM_EXIT_IO (platform/hypercall.hpp).
  if (((o.technique != "emulation" && o.technique != "pv") || paging_options || !o.vmcs.empty()) &&
      o.backend.empty()) {
    kind = backend::Kind::kSim;  // a technique or a memory-virtualization mode implies the simulator
  }
  if (o.trace_format != "binary" && o.trace_file.empty()) {
    std::fprintf(stderr, "trapscope run: --trace-format %s needs --trace FILE\n",
                 o.trace_format.c_str());
    return kBadInput;
  }
  if (kind == backend::Kind::kKvm && (o.max_instructions || o.record_instructions)) {
    std::fprintf(stderr, "trapscope run: --max-instructions and --record-instructions need "
                         "--backend sim (KVM does not report retired instructions)\n");
    return kBadInput;
  }
  if (kind == backend::Kind::kKvm && paging_options) {
    std::fprintf(stderr, "trapscope run: --paging and --tlb-entries need --backend sim (KVM's "
                         "own memory virtualization is not selectable from user space)\n");
    return kBadInput;
  }
  if (o.tlb_entries == 0 || o.tlb_entries > sim::kTlbMaxEntries ||
      (o.tlb_entries & (o.tlb_entries - 1))) {
    std::fprintf(stderr, "trapscope run: --tlb-entries must be a power of two from 1 to %u\n",
                 sim::kTlbMaxEntries);
    return kBadInput;
  }
  if (kind == backend::Kind::kKvm && o.technique != "emulation" && o.technique != "pv") {
    std::fprintf(stderr, "trapscope run: --technique %s applies to --backend sim (KVM runs "
                         "emulation-free; pv works on both)\n", o.technique.c_str());
    return kBadInput;
  }

  std::string save_error;
  const auto save = parse_save_request(o.save_at, o.save_file, kind, &save_error);
  if (!save && !save_error.empty()) {
    std::fprintf(stderr, "trapscope run: %s\n", save_error.c_str());
    return kBadInput;
  }
  bool saved = false, migrated = false;
  if (!o.migrate.to.empty() && (!o.migrate.listen.empty() || save)) {
    std::fprintf(stderr, "trapscope run: --migrate-to goes without --migrate-listen and --save\n");
    return kBadInput;
  }

  std::unique_ptr<backend::Backend> machine;
  try {
    machine = backend::make_backend(kind, cfg);
  } catch (const platform::DiskError& e) {
    std::fprintf(stderr, "trapscope run: %s\n", e.what());
    return kBadInput;
  } catch (const std::exception& e) {
    struct stat st {};
    std::fprintf(stderr, "trapscope run: KVM is not usable: %s\n", e.what());
    if (::stat("/dev/kvm", &st) != 0) {
      std::fprintf(stderr, "  /dev/kvm does not exist on this host: use --backend sim (the "
                           "software simulator); `trapscope doctor` says more.\n");
    } else {
      std::fprintf(stderr, "  `trapscope doctor` says more; --backend sim runs without KVM.\n");
    }
    return kNoKvm;
  }
  try {
    machine->load(guest->image);
  } catch (const platform::LoadError& e) {
    std::fprintf(stderr, "trapscope run: cannot load '%s': %s\n", guest->name.c_str(), e.what());
    return kBadInput;
  }
  if (!set_guest_arg(*machine, o.guest_arg, &save_error)) {
    std::fprintf(stderr, "trapscope run: %s\n", save_error.c_str());
    return kBadInput;
  }
  if (!o.migrate.listen.empty() &&
      !receive_incoming(*machine, o.migrate.listen, o.timeout_s,
                        o.format == "jsonl" ? stderr : stdout)) {
    return kBadInput;
  }

  const trace::Format format = o.format == "jsonl" ? trace::Format::kJsonl : trace::Format::kText;
  std::FILE* info = format == trace::Format::kJsonl ? stderr : stdout;
  trace::TeeSink tee;
  std::optional<trace::PrintSink> printer;
  if (!o.quiet) {
    printer.emplace(stdout, trace::PrintOptions{format, !o.no_timing});
    tee.add(&*printer);
  }
  trace::ExitStats stats;
  if (o.stats) tee.add(&stats);
  TechniqueCounter virt_counts;
  if (cfg.technique != sim::virt::Technique::kEmulation) tee.add(&virt_counts);
  std::unique_ptr<trace::TraceWriter> writer;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> chrome_file(nullptr, std::fclose);
  std::unique_ptr<trace::ChromeTraceWriter> chrome;  // --trace-format chrome
  if (!o.trace_file.empty()) {
    trace::TraceMetadata meta;
    meta.tool_version = TRAPSCOPE_VERSION;
    meta.backend = std::string(backend::to_string(kind));
    meta.guest = guest->name;
    meta.mode = mode_name;
    meta.load_address = o.load;
    meta.memory_bytes = mem_bytes;
    meta.host = kind == backend::Kind::kKvm ? vmm::host_kvm_module() : "simulator";
    meta.technique = o.technique;
    meta.deprivilege = o.deprivilege;
    meta.paging = o.paging;
    meta.tlb_entries = o.tlb_entries;
    meta.guest_sha256 = trace::sha256_hex(guest->image);  // re-execution checks it
    try {
      if (o.trace_format == "chrome") {  // trace/export_chrome.hpp
        chrome_file.reset(std::fopen(o.trace_file.c_str(), "wb"));
        if (!chrome_file) {
          throw trace::TraceError(o.trace_file + ": cannot create: " + std::strerror(errno));
        }
        chrome = std::make_unique<trace::ChromeTraceWriter>(
            chrome_file.get(), o.trace_file, meta,
            kind == backend::Kind::kSim && o.record_instructions ? trace::ChromeClock::kInstructions
                                                                 : trace::ChromeClock::kHost,
            o.trace_max_mib << 20);
        tee.add(chrome.get());
      } else {
        writer = std::make_unique<trace::TraceWriter>(o.trace_file, meta, o.trace_max_mib << 20);
        tee.add(writer.get());
      }
    } catch (const trace::TraceError& e) {
      std::fprintf(stderr, "trapscope run: %s\n", e.what());
      return kBadInput;
    }
  }
  const bool tracing =
      !o.quiet || o.stats || writer || chrome || cfg.technique != sim::virt::Technique::kEmulation;
  if (o.quiet) machine->devices().console.set_echo(info);

  if (kind == backend::Kind::kKvm && !o.quiet) {
    // Once, before the events: what this engine cannot show, and where to see it.
    std::fprintf(stderr, "trapscope run: KVM reports only VM exits; ring transitions, "
                         "exceptions, page walks and retired instructions happen inside the "
                         "guest without an exit and are not seen here: `--backend sim` (the "
                         "simulator) shows every one of them\n");
  }
  StopSignals signals;
  g_interrupted.store(false);
  g_running.store(machine.get());
  backend::RunOutcome r;
  try {
    const backend::StopCondition stop{o.timeout_s, o.max_exits, o.max_instructions};
    if (!o.gdb.empty()) {
      const GdbRun under_gdb =
          run_under_gdb(*machine, o.gdb, tracing ? &tee : nullptr, g_interrupted, stderr);
      r = under_gdb.outcome;
      if (under_gdb.detached) {  // the guest runs on to its end
        r = machine->run(stop, tracing ? &tee : nullptr);
        r.exits += under_gdb.outcome.exits;
        r.instructions += under_gdb.outcome.instructions;
      }
    } else if (!o.migrate.to.empty()) {
      r = run_migrating(*machine, stop, tracing ? &tee : nullptr, o.migrate,
                        run_metadata(guest->name, guest->image, cfg), info, &migrated);
    } else {
      r = save ? run_saving(*machine, stop, tracing ? &tee : nullptr, *save,
                            run_metadata(guest->name, guest->image, cfg), &saved)
               : machine->run(stop, tracing ? &tee : nullptr);
    }
    if (writer) writer->finish();
    if (chrome) {
      chrome->finish();
      if (std::fclose(chrome_file.release()) != 0) {
        throw trace::TraceError(o.trace_file + ": write error: " + std::strerror(errno));
      }
    }
  } catch (const std::exception& e) {
    // Guest faults end a run with a reason; an exception is the host's: a trace write that
    // failed, out of memory, an ioctl KVM refused.
    std::fprintf(stderr, "trapscope run: host error: %s\n", e.what());
    return kHostError;
  }
  g_running.store(nullptr);
  std::fflush(stdout);
  if (writer && writer->limit_reached()) {
    std::fprintf(stderr, "trapscope run: trace limit reached: %s > %llu MiB (--trace-max-size); "
                         "%llu events were not recorded, the file ends with the run end\n",
                 o.trace_file.c_str(), static_cast<unsigned long long>(o.trace_max_mib),
                 static_cast<unsigned long long>(writer->dropped_events()));
  }
  if (chrome && chrome->limit_reached()) {
    std::fprintf(stderr, "trapscope run: trace limit reached: %s > %llu MiB (--trace-max-size); "
                         "%llu events were not written, the JSON is complete\n",
                 o.trace_file.c_str(), static_cast<unsigned long long>(o.trace_max_mib),
                 static_cast<unsigned long long>(chrome->counts().dropped));
  }

  const std::string& console = machine->devices().console.text();
  if (!o.quiet) {
    std::fprintf(info, "--- guest console (%zu bytes) ---\n%s", console.size(), console.c_str());
    if (!console.empty() && console.back() != '\n') std::fputc('\n', info);
    std::fprintf(info, "---\n");
  }
  if (o.stats) std::fprintf(info, "%s", stats.table().c_str());
  if (o.stats) {
    if (const auto pc = machine->paging_counters()) {
      std::fprintf(info, "%s", paging_table(*pc, o.paging).c_str());
    }
  }
  std::fprintf(info, "run ended: %s", std::string(trace::to_string(r.reason)).c_str());
  if (r.reason == trace::RunEndReason::kGuestExit) std::fprintf(info, " %u", r.exit_code);
  const x86::CpuState regs = machine->registers();
  std::fprintf(info, " after %llu VM exits", static_cast<unsigned long long>(r.exits));
  if (kind == backend::Kind::kSim) {
    std::fprintf(info, " and %llu instructions", static_cast<unsigned long long>(r.instructions));
  }
  std::fprintf(info, " in %.3f ms (rip=0x%llx, %s)\n", static_cast<double>(r.duration_ns) / 1e6,
               static_cast<unsigned long long>(regs.rip),
               kind == backend::Kind::kKvm ? "KVM" : "simulator");
  if (!r.detail.empty()) std::fprintf(info, "%s", r.detail.c_str());
  if (cfg.technique == sim::virt::Technique::kPv && kind == backend::Kind::kKvm) {
    const auto& hc = machine->devices().hypercall;
    std::fprintf(info, "paravirtualization on KVM: %llu hypercalls (%llu refused), each one "
                       "KVM_EXIT_IO on port 0x%x\n",
                 static_cast<unsigned long long>(hc.calls()),
                 static_cast<unsigned long long>(hc.errors()), platform::kHypercallPort);
  } else if (cfg.technique != sim::virt::Technique::kEmulation) {
    if (const sim::bt::BtStats* bt = machine->bt_stats()) {
      std::fprintf(info, "%s", bt->summary().c_str());
    } else {
      std::fprintf(info, "%s", virt_counts.summary(cfg).c_str());
    }
  }
  if (const platform::PassthroughDevice* pt = machine->devices().passthrough.get()) {
    std::fprintf(info, "%s", passthrough_summary(*pt).c_str());
  }
  if (o.check_equivalence) {
    if (kind == backend::Kind::kSim && cfg.technique != sim::virt::Technique::kEmulation) {
      // The check's runs get what is left of --timeout (backend/cosim.hpp [SECTION] Bounds).
      std::fflush(info);  // the run's result first: the check may take as long again
      const double used =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      const auto eq = backend::compare_with_native(
          guest->image, cfg, {o.timeout_s - used, o.max_exits, o.max_instructions},
          &g_interrupted);
      std::fprintf(info, "equivalence with the native simulator run: %s\n", eq.report.c_str());
    } else {
      std::fprintf(info, "equivalence with the native simulator run: nothing to compare (it "
                         "compares a technique other than emulation on the simulator)\n");
    }
  }
  if (o.stats) {
    std::fprintf(info, "machines run: %llu\n",
                 static_cast<unsigned long long>(backend::machines_made()));
  }
  if (const auto& d = machine->devices(); !d.mmio_writes.empty()) {
    std::fprintf(info, "%llu writes to unbacked guest-physical memory were ignored",
                 static_cast<unsigned long long>(d.mmio_writes.size() + d.mmio_writes_dropped));
    if (d.mmio_writes_dropped) std::fprintf(info, " (the first %zu logged)", d.mmio_writes.size());
    std::fputc('\n', info);
  }
  if (g_interrupted.load()) return kInterrupted;
  if (save && !saved) return kBadInput;  // the run ended before --save-at
  if (migrated) return kOk;              // the guest runs on at the destination
  return exit_code_for(r.reason, r.exit_code);
}

}  // namespace

void add_run_command(CLI::App& app, int* status) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand(
      "run", "Run a guest under KVM and print every VM exit and its console output");
  cmd->add_option("GUEST", o->guest,
                  "A built-in guest (see `trapscope guests`) or a flat binary file")
      ->required();
  cmd->add_option("--mode", o->mode,
                  "CPU mode the VMM enters the guest in (default: the guest's own; files: real)")
      ->check(CLI::IsMember({"real", "protected", "long"}));
  add_load_option(cmd, &o->load, "Guest-physical load address = entry point (e.g. 0x8000)");
  cmd->add_option("--mem", o->mem_mib, "Guest memory in MiB")
      ->check(CLI::Range(uint64_t{1}, uint64_t{3584}))
      ->capture_default_str();
  cmd->add_option("--passthrough", o->passthrough,
                  "Attach the passthrough device (docs/passthrough.md): mapped (host memory "
                  "mapped into the guest, no VM exits) or emulated (an MMIO exit per access)")
      ->check(CLI::IsMember({"none", "mapped", "emulated"}))
      ->capture_default_str();
  cmd->add_option("--trace", o->trace_file, "Also record every event to this trace file");
  cmd->add_option("--trace-format", o->trace_format,
                  "Format of --trace: binary (trapscope's trace file, for show, gui, export) or "
                  "chrome (trace-event JSON for ui.perfetto.dev and chrome://tracing)")
      ->check(CLI::IsMember({"binary", "chrome"}))
      ->capture_default_str();
  cmd->add_option("--trace-max-size", o->trace_max_mib,
                  "Stop recording to the trace file at this size in MiB (0: no limit); the run "
                  "goes on and the file ends with the run end and its trailer")
      ->check(CLI::Range(uint64_t{0}, uint64_t{1} << 30))
      ->capture_default_str();
  cmd->add_option("--format", o->format, "Event output format")
      ->check(CLI::IsMember({"text", "jsonl"}))
      ->capture_default_str();
  add_seconds_option(cmd, "--timeout", &o->timeout_s,
                     "Stop after this many seconds (the run and --check-equivalence together)");
  add_count_option(cmd, "--max-exits", &o->max_exits, "Stop after this many VM exits (0: no limit)");
  cmd->add_flag("-q,--quiet", o->quiet,
                "Do not print events; echo the guest console live (fastest: tracing off)");
  cmd->add_flag("--stats", o->stats, "Print VM exit statistics per exit reason at the end");
  cmd->add_option("--backend", o->backend,
                  "kvm (the KVM VMM) or sim (the software simulator); default: kvm where usable")
      ->check(CLI::IsMember({"kvm", "sim"}));
  cmd->add_option("--technique", o->technique,
                  "Simulator technique: emulation (the interpreter), trap-emulate (ring "
                  "compression on classic x86), vt (the VT-x model), bt (binary translation: "
                  "guest kernel code runs from a translation cache); these imply --backend sim; "
                  "or pv (a paravirtualized guest's hypercalls, on either backend)")
      ->check(CLI::IsMember({"emulation", "trap-emulate", "vt", "bt", "pv"}))
      ->capture_default_str();
  cmd->add_option("--deprivilege", o->deprivilege,
                  "trap-emulate: the real CPL the guest kernel runs at (1 or 3)")
      ->check(CLI::IsMember({1u, 3u}))
      ->capture_default_str();
  cmd->add_option("--vmcs", o->vmcs,
                  "vt, pv: change the VT-x model's VMCS controls, e.g. "
                  "+descriptor-table-exiting,-hlt-exiting,+exception:#UD,-io:0xe9 (docs/vmcs.md)");
  cmd->add_option("--paging", o->paging,
                  "Simulator: how its VMM virtualizes memory: native (the guest's tables only), "
                  "shadow (shadow page tables), ept (nested paging)")
      ->check(CLI::IsMember({"native", "shadow", "ept"}))
      ->capture_default_str();
  cmd->add_option("--tlb-entries", o->tlb_entries,
                  "Simulator: TLB entries (a power of two, 1-4096; direct-mapped)")
      ->capture_default_str();
  cmd->add_flag("--bt-lookup-events", o->bt_lookup_events,
                "bt: an event for every translation-cache lookup (hit or miss; slow)");
  add_count_option(cmd, "--max-instructions", &o->max_instructions,
                   "Simulator: stop after this many instructions (0: no limit)");
  cmd->add_flag("--check-equivalence", o->check_equivalence,
                "A technique other than emulation: run the guest again natively and under the "
                "technique and compare (VM exits, run end, console, registers, memory)");
  cmd->add_flag("--record-instructions", o->record_instructions,
                "Simulator: an event for every retired instruction");
  add_disk_option(cmd, &o->disks);
  cmd->add_flag("--no-timing", o->no_timing,
                "Leave out timestamps and handling times (deterministic output)");
  cmd->add_option("--save-at", o->save_at,
                  "With --save: take a snapshot after the N-th VM exit (exit:N) or after N "
                  "retired instructions (insn:N, simulator only); the run then goes on");
  cmd->add_option("--save", o->save_file, "With --save-at: the snapshot file to write "
                                          "(`trapscope restore FILE`, docs/snapshots.md)");
  cmd->add_option("--guest-arg", o->guest_arg,
                  "N[,M]: RDI = N and RSI = M at the guest's entry (the dirty guest: working-set "
                  "pages, passes)");
  cmd->add_option("--migrate-listen", o->migrate.listen,
                  "ADDR:PORT: wait for a machine migrated live from another trapscope and run "
                  "it here (docs/snapshots.md)");
  cmd->add_option("--migrate-to", o->migrate.to,
                  "ADDR:PORT: migrate the running guest live (pre-copy) to a trapscope waiting "
                  "with --migrate-listen");
  cmd->add_option("--max-downtime", o->migrate.max_downtime_ms,
                  "--migrate-to: stop-and-copy once the rest fits in this many ms")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  cmd->add_option("--max-rounds", o->migrate.max_rounds,
                  "--migrate-to: pre-copy rounds at most, then stop-and-copy of the rest")
      ->check(CLI::Range(1u, 1000u))
      ->capture_default_str();
  cmd->add_option("--bandwidth", o->migrate.bandwidth_mb_s,
                  "--migrate-to: the link's rate in MB/s (0: as fast as the socket goes)")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  cmd->add_option("--gdb", o->gdb,
                  "Wait for gdb on HOST:PORT (e.g. 127.0.0.1:1234; port 0: any free port, "
                  "printed) before the first instruction (docs/gdb.md)")
      ->check(CLI::Validator(check_gdb_address, "HOST:PORT"));
  cmd->footer(
      "Exit status: 0 guest halted or exit code 0; 1 guest exit code != 0; 2 bad input;\n"
      "3 guest fault (triple fault, emulation failure, ...); 4 time/exit limit; 5 no KVM;\n"
      "6 host error (a trace write failed, out of memory, ...); 130 interrupted (SIGINT,\n"
      "SIGTERM or SIGHUP: the trace file is still completed).");
  cmd->callback([o, status] { *status = run(*o); });
}

}  // namespace trapscope::cli
