// trapscope — run teaching guests under KVM and show every VM exit.
#include <cstdio>
#include <exception>
#include <new>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "trapscope " TRAPSCOPE_VERSION
      " — an educational virtualization tracer: runs small teaching guests under KVM and\n"
      "shows every VM exit. Exit status: 0 ok, 1 guest reported failure, 2 bad input or usage,\n"
      "3 guest fault, 4 limit reached, 5 KVM unusable, 6 host error, 130 interrupted.",
      "trapscope"};
  app.require_subcommand(1);
  app.set_version_flag("--version", TRAPSCOPE_VERSION);
  int status = trapscope::cli::kOk;
  trapscope::cli::add_run_command(app, &status);
  trapscope::cli::add_compare_command(app, &status);
  trapscope::cli::add_show_command(app, &status);
  trapscope::cli::add_export_command(app, &status);
  trapscope::cli::add_doctor_command(app, &status);
  trapscope::cli::add_guests_command(app, &status);
  trapscope::cli::add_cosim_command(app, &status);
  trapscope::cli::add_gui_command(app, &status);
  trapscope::cli::add_classify_command(app, &status);
  trapscope::cli::add_demo_command(app, &status);
  trapscope::cli::add_lesson_command(app, &status);
  trapscope::cli::add_walk_command(app, &status);
  trapscope::cli::add_disk_command(app, &status);
  trapscope::cli::add_restore_command(app, &status);
  trapscope::cli::add_snapshot_command(app, &status);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : trapscope::cli::kBadInput;
  } catch (const std::bad_alloc& e) {
    std::fprintf(stderr, "trapscope: out of memory (%s)\n", e.what());
    return trapscope::cli::kHostError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "trapscope: %s\n", e.what());
    return trapscope::cli::kBadInput;
  }
  return status;
}
