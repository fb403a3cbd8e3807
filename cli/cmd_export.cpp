// `trapscope export TRACE --format chrome -o FILE.json`: a saved trace as a Chrome trace-event
// JSON file for ui.perfetto.dev and chrome://tracing (trace/export_chrome.hpp; docs/perfetto.md).
//
// The trace is checked whole before the output is touched (a damaged trace writes nothing);
// the export then streams, so memory does not grow with the trace. `--format perfetto` (the
// native protobuf format) is refused with a pointer to `chrome`: docs/perfetto.md says why.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "trace/export_chrome.hpp"

namespace trapscope::cli {

void add_export_command(CLI::App& app, int* status) {
  struct Options {
    std::string trace;
    std::string format;
    std::string output;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "export", "Convert a trace file for other tools: chrome (trace-event JSON for "
                "ui.perfetto.dev and chrome://tracing)");
  cmd->add_option("TRACE", opt->trace, "Trace file saved by `trapscope run --trace`")->required();
  cmd->add_option("--format", opt->format, "Output format: chrome (perfetto: see docs/perfetto.md)")
      ->check(CLI::IsMember({"chrome", "perfetto"}))
      ->required();
  cmd->add_option("-o,--output", opt->output, "Output file ('-': standard output)")->required();
  cmd->footer("Exit status: 0 written; 2 bad input (not a trace file, or damaged: nothing is "
              "written), or --format perfetto; 6 the output could not be written.");
  cmd->callback([opt, status] {
    if (opt->format == "perfetto") {
      std::fprintf(stderr,
                   "trapscope export: --format perfetto (Perfetto's protobuf TrackEvent) is not "
                   "written: Debian packages neither the Perfetto SDK nor its .proto schema. Use "
                   "--format chrome: ui.perfetto.dev opens that JSON with the same tracks, "
                   "slices, counters and flows (docs/perfetto.md)\n");
      *status = kBadInput;
      return;
    }
    // A regular file (or a new one) is written under a temporary name in its directory and
    // renamed when complete: a failed export leaves an existing file as it was and no partial
    // one. Anything else (a device, a FIFO, '-') is written directly and never removed.
    const bool to_stdout = opt->output == "-";
    struct stat st {};
    const bool direct = to_stdout || (::stat(opt->output.c_str(), &st) == 0 && !S_ISREG(st.st_mode));
    std::string temp;
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(nullptr, std::fclose);
    try {
      // The whole trace is checked before the output is touched: a bad trace writes nothing.
      const trace::ChromeClock clock = trace::chrome_clock_for(opt->trace);
      if (!direct) {
        temp = opt->output + ".XXXXXX";
        const int fd = ::mkstemp(temp.data());
        if (fd < 0) {
          temp.clear();
          throw trace::ExportWriteError(opt->output + ": cannot create: " +
                                        std::strerror(errno));
        }
        ::fchmod(fd, 0644);
        file.reset(::fdopen(fd, "wb"));
        if (!file) ::close(fd);
      } else if (!to_stdout) {
        file.reset(std::fopen(opt->output.c_str(), "wb"));
      }
      if (!to_stdout && !file) {
        throw trace::ExportWriteError(opt->output + ": cannot create: " + std::strerror(errno));
      }
      const trace::ChromeExportCounts c =
          trace::export_chrome(opt->trace, clock, to_stdout ? stdout : file.get(), opt->output);
      if (file && std::fclose(file.release()) != 0) {
        throw trace::ExportWriteError(opt->output + ": write error: " + std::strerror(errno));
      }
      if (!temp.empty() && ::rename(temp.c_str(), opt->output.c_str()) != 0) {
        throw trace::ExportWriteError(opt->output + ": cannot rename " + temp + " to it: " +
                                      std::strerror(errno));
      }
      temp.clear();
      std::fprintf(direct ? stderr : stdout,  // not into a stream the JSON goes to
                   "%s: %llu events -> %llu slices, %llu instants, %llu CPL/mode slices, "
                   "%llu counter values, %llu flows (%llu bytes)\n",
                   opt->output.c_str(), static_cast<unsigned long long>(c.events),
                   static_cast<unsigned long long>(c.complete),
                   static_cast<unsigned long long>(c.instants),
                   static_cast<unsigned long long>(c.begins),
                   static_cast<unsigned long long>(c.counters),
                   static_cast<unsigned long long>(c.flows),
                   static_cast<unsigned long long>(c.bytes));
      *status = kOk;
    } catch (const trace::ExportWriteError& e) {
      std::fprintf(stderr, "trapscope export: %s\n", e.what());
      *status = kHostError;
    } catch (const trace::TraceError& e) {
      std::fprintf(stderr, "trapscope export: %s\n", e.what());
      *status = kBadInput;
    }
    if (!temp.empty()) {  // the export failed: its temporary file goes
      file.reset();
      ::unlink(temp.c_str());
    }
  });
}

}  // namespace trapscope::cli
