// cli/commands.hpp — one function pair per subcommand: add_* declares its options on the
// CLI11 app, and the callback it installs stores the command's exit status in `*status`.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "lessons/lesson.hpp"

namespace trapscope::cli {

void add_run_command(CLI::App& app, int* status);
void add_show_command(CLI::App& app, int* status);
void add_doctor_command(CLI::App& app, int* status);
void add_guests_command(CLI::App& app, int* status);
void add_cosim_command(CLI::App& app, int* status);
void add_gui_command(CLI::App& app, int* status);
// `trapscope lesson run ID --gui`: the lesson in the visualizer's lesson pane (backend "" = the
// lesson's first choice). Returns the exit status.
int run_lesson_gui(const std::string& lesson, const std::string& backend, lessons::Lang lang);
void add_classify_command(CLI::App& app, int* status);
void add_demo_command(CLI::App& app, int* status);
void add_lesson_command(CLI::App& app, int* status);
void add_walk_command(CLI::App& app, int* status);
void add_compare_command(CLI::App& app, int* status);  // cmd_compare.cpp
void add_export_command(CLI::App& app, int* status);   // cmd_export.cpp
void add_disk_command(CLI::App& app, int* status);     // cmd_disk.cpp
void add_restore_command(CLI::App& app, int* status);   // cmd_snapshot.cpp
void add_snapshot_command(CLI::App& app, int* status);  // cmd_snapshot.cpp

}  // namespace trapscope::cli
