// `trapscope show FILE`: print a saved trace.
//
// The file is read as a stream twice (trace::TraceReader): the first pass checks it whole
// (records, count, checksum) so that nothing is printed from a damaged file, the second prints.
// Memory stays one read buffer whatever the file's size. --salvage prints a damaged file's
// events up to the last whole one (a writer killed by SIGKILL) and says what was dropped.
#include <cstdio>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "trace/printer.hpp"
#include "trace/trace_file.hpp"

namespace trapscope::cli {

void add_show_command(CLI::App& app, int* status) {
  struct Options {
    std::string file;
    std::string format = "text";
    bool no_timing = false;
    bool salvage = false;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("show", "Print a trace file saved by `trapscope run --trace`");
  cmd->add_option("FILE", opt->file, "Trace file")->required();
  cmd->add_option("--format", opt->format, "Output format")
      ->check(CLI::IsMember({"text", "jsonl"}))
      ->capture_default_str();
  cmd->add_flag("--no-timing", opt->no_timing,
                "Leave out timestamps and handling times (deterministic output)");
  cmd->add_flag("--salvage", opt->salvage,
                "Print a damaged or cut-short trace (e.g. its writer was killed) up to its last "
                "whole event, and say on stderr how many bytes were dropped");
  cmd->footer("Exit status: 0 printed (with --salvage: also a salvaged file); 2 bad input "
              "(not a trace file, or damaged: the error names the byte offset).");
  cmd->callback([opt, status] {
    const trace::TraceReader::Options ro{opt->salvage};
    uint64_t events = 0;
    std::string note;
    try {
      trace::TraceReader check(opt->file, ro);
      while (check.next() != nullptr) {
      }
      events = check.events();
      note = check.salvage_note();
      trace::TraceReader r(opt->file, ro);
      const trace::Format format =
          opt->format == "jsonl" ? trace::Format::kJsonl : trace::Format::kText;
      if (format == trace::Format::kText) {
        const auto& m = r.metadata();
        std::printf("# trace of %s (%s mode, load 0x%llx, %llu MiB) on %s/%s, %s %s, %llu events\n",
                    m.guest.c_str(), m.mode.c_str(),
                    static_cast<unsigned long long>(m.load_address),
                    static_cast<unsigned long long>(m.memory_bytes >> 20), m.backend.c_str(),
                    m.host.c_str(), m.tool.c_str(), m.tool_version.c_str(),
                    static_cast<unsigned long long>(events));
      }
      trace::PrintSink printer(stdout, {format, !opt->no_timing});
      bool limited = false;
      for (uint64_t i = 0; i < events; ++i) {
        const trace::EventHeader* e = r.next();
        if (e == nullptr) throw trace::TraceError(opt->file + ": the file changed while read");
        limited |= e->type == trace::EventType::kRunEnd && (e->flags & trace::kRunEndTraceLimit);
        printer.on_event(*e);
      }
      std::fflush(stdout);
      if (limited) {
        std::fprintf(stderr, "trapscope show: %s: the recording reached its size limit (run "
                             "--trace-max-size): events before the run end are missing\n",
                     opt->file.c_str());
      }
    } catch (const trace::TraceError& e) {
      std::fflush(stdout);
      std::fprintf(stderr, "trapscope show: %s\n", e.what());
      *status = kBadInput;
      return;
    }
    if (!note.empty()) {
      std::fprintf(stderr, "trapscope show: %s: %s\n", opt->file.c_str(), note.c_str());
    }
    *status = kOk;
  });
}

}  // namespace trapscope::cli
