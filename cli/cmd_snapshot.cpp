// `trapscope run --save-at … --save FILE`, `trapscope restore FILE` and `trapscope snapshot info
// FILE`: snapshot files (snapshot/format.hpp, docs/snapshots.md).
#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <cstdio>
#include <memory>
#include <optional>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/options.hpp"
#include "cli/snapshot_run.hpp"
#include "snapshot/machine.hpp"
#include "snapshot/migration.hpp"
#include "trace/printer.hpp"
#include "trace/trace_file.hpp"

namespace trapscope::cli {

std::optional<SaveRequest> parse_save_request(const std::string& at, const std::string& file,
                                              backend::Kind kind, std::string* error) {
  if (at.empty() && file.empty()) return std::nullopt;
  if (at.empty() || file.empty()) {
    *error = "--save-at and --save go together (where to take the snapshot, and the file)";
    return std::nullopt;
  }
  SaveRequest r;
  r.file = file;
  const auto colon = at.find(':');
  const std::string what = at.substr(0, colon);
  if (colon == std::string::npos || (what != "exit" && what != "insn") ||
      !parse_u64(at.substr(colon + 1), &r.n) || r.n == 0) {
    *error = "--save-at '" + at + "': use exit:N (after the N-th VM exit) or insn:N (after N "
             "retired instructions, simulator only), N >= 1";
    return std::nullopt;
  }
  r.at_instruction = what == "insn";
  if (r.at_instruction && kind == backend::Kind::kKvm) {
    *error = "--save-at insn:N needs --backend sim (KVM does not report retired instructions); "
             "use exit:N on KVM";
    return std::nullopt;
  }
  return r;
}

snapshot::Metadata run_metadata(const std::string& guest, const std::vector<uint8_t>& image,
                                const backend::Config& config) {
  snapshot::Metadata m;
  m.guest = guest;
  m.guest_sha256 = trace::sha256_hex(image);
  m.technique = std::string(sim::virt::to_string(config.technique));
  m.paging = std::string(sim::to_string(config.paging));
  return m;
}

backend::RunOutcome run_saving(backend::Backend& machine, const backend::StopCondition& stop,
                               trace::EventSink* sink, const SaveRequest& save,
                               snapshot::Metadata meta, bool* saved) {
  using R = trace::RunEndReason;
  *saved = false;
  const auto started = std::chrono::steady_clock::now();
  backend::StopCondition first = stop;
  uint64_t& limit = save.at_instruction ? first.max_instructions : first.max_exits;
  const R at_point = save.at_instruction ? R::kInstructionLimit : R::kExitLimit;
  const bool user_limit_first = limit != 0 && limit < save.n;
  const bool user_limit_at_point = limit == save.n;
  if (!user_limit_first) limit = save.n;
  std::optional<snapshot::HoldRunEnd> hold;
  if (sink) hold.emplace(sink);
  const backend::RunOutcome a = machine.run(first, hold ? &*hold : nullptr);
  const uint64_t done = save.at_instruction ? a.instructions : a.exits;
  if (a.reason != at_point || done != save.n || user_limit_first) {
    std::fprintf(stderr, "trapscope run: the run ended (%s) after %llu %s, before %s:%llu: "
                         "nothing saved to %s\n",
                 std::string(trace::to_string(a.reason)).c_str(),
                 static_cast<unsigned long long>(done),
                 save.at_instruction ? "instructions" : "VM exits",
                 save.at_instruction ? "insn" : "exit", static_cast<unsigned long long>(save.n),
                 save.file.c_str());
    if (hold) hold->release();
    return a;
  }
  meta.point = (save.at_instruction ? "insn:" : "exit:") + std::to_string(save.n);
  meta.exits = a.exits;
  meta.instructions = a.instructions;
  snapshot::write_file(save.file, snapshot::capture(machine, meta));
  *saved = true;
  if (user_limit_at_point) {  // --max-exits/--max-instructions end the run here
    if (hold) hold->release();
    return a;
  }
  backend::StopCondition rest = stop;
  const double used =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  rest.timeout_s = std::max(0.001, stop.timeout_s - used);
  if (rest.max_exits) rest.max_exits -= std::min(rest.max_exits - 1, a.exits);
  if (rest.max_instructions) rest.max_instructions -= std::min(rest.max_instructions - 1, a.instructions);
  std::optional<snapshot::HoldRunEnd> hold_rest;  // its run end counts the whole run's exits
  if (sink) hold_rest.emplace(sink);
  backend::RunOutcome b = machine.run(rest, hold_rest ? &*hold_rest : nullptr);
  if (hold_rest) hold_rest->release(a.exits, a.duration_ns);
  b.exits += a.exits;
  b.instructions += a.instructions;
  b.duration_ns += a.duration_ns;
  return b;
}

bool set_guest_arg(backend::Backend& machine, const std::string& arg, std::string* error) {
  if (arg.empty()) return true;
  const auto comma = arg.find(',');
  uint64_t a = 0, b = 0;
  if (!parse_u64(arg.substr(0, comma), &a) ||
      (comma != std::string::npos && !parse_u64(arg.substr(comma + 1), &b))) {
    *error = "--guest-arg '" + arg + "': use N or N,M (decimal or 0x-hexadecimal)";
    return false;
  }
  x86::CpuState c = machine.registers();
  c.gpr[x86::kRdi] = a;
  c.gpr[x86::kRsi] = b;
  machine.set_registers(c);
  return true;
}

bool receive_incoming(backend::Backend& machine, const std::string& address, double timeout_s,
                      std::FILE* info) {
  std::fprintf(info, "waiting for an incoming machine on %s\n", address.c_str());
  std::fflush(info);
  try {
    const snapshot::Metadata m = snapshot::receive_migration(machine, address, timeout_s);
    std::fprintf(info, "received %s from %s (%llu VM exits there); it runs here now\n",
                 m.guest.c_str(), m.engine.c_str(), static_cast<unsigned long long>(m.exits));
    return true;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "trapscope run: --migrate-listen: %s\n", e.what());
    return false;
  }
}

backend::RunOutcome run_migrating(backend::Backend& machine, const backend::StopCondition& stop,
                                  trace::EventSink* sink, const MigrateRequest& request,
                                  snapshot::Metadata meta, std::FILE* info, bool* migrated) {
  snapshot::MigrationOptions o;
  o.max_downtime_ms = request.max_downtime_ms;
  o.max_rounds = request.max_rounds;
  o.bandwidth_mb_s = request.bandwidth_mb_s;
  snapshot::MigrationResult res;
  const backend::RunOutcome r =
      snapshot::run_migrating(machine, stop, sink, request.to, o, std::move(meta), &res);
  std::fflush(stdout);
  std::fprintf(info, "%s", res.text().c_str());
  *migrated = res.migrated;
  return r;
}

namespace {

int print_format_error(const char* cmd, const std::string& path, const std::exception& e) {
  std::fprintf(stderr, "trapscope %s: %s: %s\n", cmd, path.c_str(), e.what());
  return kBadInput;
}

struct RestoreOptions {
  std::string file;
  std::string backend;    // empty: the snapshot's engine (kvm where usable)
  std::string technique;  // empty: the snapshot's on the simulator, else emulation
  unsigned deprivilege = 1;
  std::string paging;     // empty: the snapshot's on the simulator, else native
  uint64_t mem_mib = 0;   // 0: the snapshot's
  std::string format = "text";
  double timeout_s = 10.0;
  uint64_t max_exits = 0;
  uint64_t max_instructions = 0;
  bool quiet = false;
  bool no_timing = false;
};

int restore(const RestoreOptions& o) {
  snapshot::File f;
  try {
    f = snapshot::read_file(o.file);
  } catch (const std::exception& e) {
    return print_format_error("restore", o.file, e);
  }
  backend::Config cfg;
  cfg.memory_bytes = o.mem_mib ? o.mem_mib << 20 : f.memory.bytes;
  if (cfg.memory_bytes != f.memory.bytes) {
    std::fprintf(stderr, "trapscope restore: %s: the snapshot's memory (META.memory_bytes: %llu "
                         "MiB) does not fit --mem %llu\n",
                 o.file.c_str(), static_cast<unsigned long long>(f.memory.bytes >> 20),
                 static_cast<unsigned long long>(o.mem_mib));
    return kBadInput;
  }
  backend::Kind kind = f.state.kind;
  if (o.backend == "sim" || (o.backend.empty() && !o.technique.empty() && o.technique != "pv" &&
                             o.technique != "emulation")) {
    kind = backend::Kind::kSim;
  } else if (o.backend == "kvm") {
    kind = backend::Kind::kKvm;
  }
  std::string why;
  if (kind == backend::Kind::kKvm && o.backend.empty() && !backend::kvm_usable(&why)) {
    std::fprintf(stderr, "trapscope restore: KVM is not usable here (%s); using the simulator\n",
                 why.c_str());
    kind = backend::Kind::kSim;
  }
  const bool same_engine_sim = kind == backend::Kind::kSim && f.state.kind == backend::Kind::kSim;
  const std::string technique =
      !o.technique.empty() ? o.technique : same_engine_sim ? f.meta.technique : "emulation";
  const std::string paging = !o.paging.empty() ? o.paging : same_engine_sim ? f.meta.paging : "native";
  const auto t = sim::virt::parse_technique(technique);
  const auto p = sim::parse_vmm_paging(paging);
  if (!t || !p) {
    std::fprintf(stderr, "trapscope restore: %s: technique '%s' or paging '%s' unknown (META)\n",
                 o.file.c_str(), technique.c_str(), paging.c_str());
    return kBadInput;
  }
  if (kind == backend::Kind::kKvm && ((*t != sim::virt::Technique::kEmulation &&
                                       *t != sim::virt::Technique::kPv) ||
                                      *p != sim::VmmPaging::kNative || o.max_instructions)) {
    std::fprintf(stderr, "trapscope restore: --technique %s, --paging %s and --max-instructions "
                         "need --backend sim\n", technique.c_str(), paging.c_str());
    return kBadInput;
  }
  cfg.technique = *t;
  cfg.paging = *p;
  cfg.deprivilege = static_cast<uint8_t>(o.deprivilege);
  std::unique_ptr<backend::Backend> machine;
  try {
    machine = backend::make_backend(kind, cfg);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "trapscope restore: KVM is not usable: %s (--backend sim runs without "
                         "KVM)\n", e.what());
    return kNoKvm;
  }
  try {
    snapshot::apply(f, *machine);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "trapscope restore: %s: %s\n", o.file.c_str(), e.what());
    return kBadInput;
  }
  const trace::Format format = o.format == "jsonl" ? trace::Format::kJsonl : trace::Format::kText;
  std::FILE* info = format == trace::Format::kJsonl ? stderr : stdout;
  std::fprintf(info, "restored %s (taken on %s at %s, %s) on the %s%s\n", o.file.c_str(),
               f.meta.engine.c_str(), f.meta.point.c_str(), f.meta.guest.c_str(),
               kind == backend::Kind::kKvm ? "KVM backend" : "simulator",
               kind == backend::Kind::kSim ? (", technique " + technique + ", paging " + paging).c_str()
                                           : "");
  std::optional<trace::PrintSink> printer;
  if (!o.quiet) printer.emplace(stdout, trace::PrintOptions{format, !o.no_timing});
  if (o.quiet) machine->devices().console.set_echo(info);
  backend::RunOutcome r;
  try {
    r = machine->run({o.timeout_s, o.max_exits, o.max_instructions}, printer ? &*printer : nullptr);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "trapscope restore: host error: %s\n", e.what());
    return kHostError;
  }
  std::fflush(stdout);
  const std::string& console = machine->devices().console.text();
  if (!o.quiet) {
    std::fprintf(info, "--- guest console (%zu bytes, from the start of the run) ---\n%s",
                 console.size(), console.c_str());
    if (!console.empty() && console.back() != '\n') std::fputc('\n', info);
    std::fprintf(info, "---\n");
  }
  std::fprintf(info, "run ended: %s", std::string(trace::to_string(r.reason)).c_str());
  if (r.reason == trace::RunEndReason::kGuestExit) std::fprintf(info, " %u", r.exit_code);
  std::fprintf(info, " after %llu more VM exits (rip=0x%llx, %s)\n",
               static_cast<unsigned long long>(r.exits),
               static_cast<unsigned long long>(machine->registers().rip),
               kind == backend::Kind::kKvm ? "KVM" : "simulator");
  if (!r.detail.empty()) std::fprintf(info, "%s", r.detail.c_str());
  return exit_code_for(r.reason, r.exit_code);
}

}  // namespace

void add_restore_command(CLI::App& app, int* status) {
  auto o = std::make_shared<RestoreOptions>();
  CLI::App* cmd = app.add_subcommand(
      "restore", "Restore a snapshot file (run --save) on either engine and run on from there");
  cmd->add_option("FILE", o->file, "A snapshot file written by `trapscope run --save`")->required();
  cmd->add_option("--backend", o->backend,
                  "kvm or sim (default: the snapshot's engine; a snapshot of either engine "
                  "restores on both)")
      ->check(CLI::IsMember({"kvm", "sim"}));
  cmd->add_option("--technique", o->technique,
                  "Simulator technique (default: the snapshot's if taken on the simulator, else "
                  "emulation): emulation, trap-emulate, vt, bt, pv")
      ->check(CLI::IsMember({"emulation", "trap-emulate", "vt", "bt", "pv"}));
  cmd->add_option("--deprivilege", o->deprivilege, "trap-emulate: the guest kernel's real CPL")
      ->check(CLI::IsMember({1u, 3u}))
      ->capture_default_str();
  cmd->add_option("--paging", o->paging,
                  "Simulator memory virtualization: native, shadow, ept (default: the snapshot's)")
      ->check(CLI::IsMember({"native", "shadow", "ept"}));
  cmd->add_option("--mem", o->mem_mib,
                  "Guest memory in MiB; must be the snapshot's (default: the snapshot's)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{3584}));
  cmd->add_option("--format", o->format, "Event output format")
      ->check(CLI::IsMember({"text", "jsonl"}))
      ->capture_default_str();
  add_seconds_option(cmd, "--timeout", &o->timeout_s, "Stop after this many seconds");
  add_count_option(cmd, "--max-exits", &o->max_exits, "Stop after this many more VM exits (0: no limit)");
  add_count_option(cmd, "--max-instructions", &o->max_instructions,
                   "Simulator: stop after this many more instructions (0: no limit)");
  cmd->add_flag("-q,--quiet", o->quiet, "Do not print events; echo the guest console live");
  cmd->add_flag("--no-timing", o->no_timing, "Leave out timestamps (deterministic output)");
  cmd->footer("Exit status as for `trapscope run`; 2 also for a file that is not a readable "
              "snapshot (the message names the byte offset and the field) or that cannot be "
              "restored on the chosen engine.");
  cmd->callback([o, status] { *status = restore(*o); });
}

void add_snapshot_command(CLI::App& app, int* status) {
  CLI::App* cmd = app.add_subcommand("snapshot", "Snapshot files: `snapshot info FILE`");
  cmd->require_subcommand(1);
  auto file = std::make_shared<std::string>();
  CLI::App* info = cmd->add_subcommand(
      "info", "Print what a snapshot file holds (guest, engine, point, vCPU, devices, memory, "
              "the state its engine could not give)");
  info->add_option("FILE", *file, "A snapshot file")->required();
  info->callback([file, status] {
    struct stat st {};
    try {
      const snapshot::File f = snapshot::read_file(*file);
      ::stat(file->c_str(), &st);
      std::printf("%s", snapshot::describe(f, static_cast<uint64_t>(st.st_size)).c_str());
      *status = kOk;
    } catch (const std::exception& e) {
      *status = print_format_error("snapshot info", *file, e);
    }
  });
}

}  // namespace trapscope::cli
