// `trapscope show FILE`: print a saved trace.
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
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("show", "Print a trace file saved by `trapscope run --trace`");
  cmd->add_option("FILE", opt->file, "Trace file")->required();
  cmd->add_option("--format", opt->format, "Output format")
      ->check(CLI::IsMember({"text", "jsonl"}))
      ->capture_default_str();
  cmd->add_flag("--no-timing", opt->no_timing,
                "Leave out timestamps and handling times (deterministic output)");
  cmd->callback([opt, status] {
    trace::TraceFile tf;
    try {
      tf = trace::read_trace(opt->file);
    } catch (const trace::TraceError& e) {
      std::fprintf(stderr, "trapscope show: %s\n", e.what());
      *status = kBadInput;
      return;
    }
    const trace::Format format =
        opt->format == "jsonl" ? trace::Format::kJsonl : trace::Format::kText;
    if (format == trace::Format::kText) {
      const auto& m = tf.metadata;
      std::printf("# trace of %s (%s mode, load 0x%llx, %llu MiB) on %s/%s, %s %s, %zu events\n",
                  m.guest.c_str(), m.mode.c_str(),
                  static_cast<unsigned long long>(m.load_address),
                  static_cast<unsigned long long>(m.memory_bytes >> 20), m.backend.c_str(),
                  m.host.c_str(), m.tool.c_str(), m.tool_version.c_str(), tf.events.size());
    }
    trace::PrintSink printer(stdout, {format, !opt->no_timing});
    for (size_t i = 0; i < tf.events.size(); ++i) printer.on_event(tf.events.at(i));
    *status = kOk;
  });
}

}  // namespace trapscope::cli
