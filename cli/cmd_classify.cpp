// `trapscope classify GUEST | --bytes HEX`: the Popek–Goldberg class of each instruction
// (x86/classify.hpp) and whether Theorems 1 and 3 hold for that code.
//
// For a guest, the instructions are the ones it EXECUTES: the guest runs on the simulator with
// an event per retired instruction, and each distinct address is classified once, with the CPLs
// and mode it ran in. That follows every mode switch and tells kernel code (CPL 0) from user code
// (CPL 3), which a linear decode from the entry point cannot.
#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "backend/backend.hpp"
#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/guest_file.hpp"
#include "cli/options.hpp"
#include "x86/classify.hpp"

namespace trapscope::cli {
namespace {

struct Row {
  uint64_t address = 0;
  std::vector<uint8_t> bytes;
  trace::CpuMode mode = trace::CpuMode::kUnknown;
  uint8_t cpls = 0;  // bit n: executed at CPL n (0 for --bytes: unknown)
  x86::ClassifiedInstruction ci;
};

// Collects each distinct instruction the guest retired.
class Collector final : public trace::EventSink {
 public:
  void on_event(const trace::EventHeader& h) override {
    if (h.type != trace::EventType::kInstruction) return;
    const auto& e = reinterpret_cast<const trace::InstructionEvent&>(h);
    auto [it, fresh] = rows.try_emplace({h.rip, h.cpu_mode});
    if (fresh) {
      it->second.address = h.rip;
      it->second.mode = h.cpu_mode;
      it->second.bytes.assign(e.bytes, e.bytes + e.len);
    }
    if (h.cpl < 4) it->second.cpls |= static_cast<uint8_t>(1u << h.cpl);
  }
  std::map<std::pair<uint64_t, trace::CpuMode>, Row> rows;
};

bool parse_hex(const std::string& text, std::vector<uint8_t>* out, std::string* error) {
  std::string digits;
  for (char ch : text) {
    if (std::isspace(static_cast<unsigned char>(ch)) || ch == ',') continue;
    if (!std::isxdigit(static_cast<unsigned char>(ch))) {
      *error = std::string("'") + ch + "' is not a hex digit";
      return false;
    }
    digits += ch;
  }
  if (digits.empty()) {
    *error = "no bytes given";
    return false;
  }
  if (digits.size() % 2) {
    *error = "an odd number of hex digits";
    return false;
  }
  for (size_t i = 0; i < digits.size(); i += 2) {
    out->push_back(static_cast<uint8_t>(std::stoul(digits.substr(i, 2), nullptr, 16)));
  }
  return true;
}

std::string cpl_text(uint8_t cpls) {
  if (!cpls) return "-";
  std::string s;
  for (int i = 0; i < 4; ++i) {
    if (cpls & (1u << i)) s += (s.empty() ? "" : ",") + std::to_string(i);
  }
  return s;
}

void print_table(const std::vector<Row>& rows, bool with_cpl) {
  std::printf("%-18s %-24s %-32s %-11s %s%s\n", "address", "bytes", "disassembly", "class",
              with_cpl ? "cpl  " : "", "reason");
  for (const Row& r : rows) {
    std::printf("0x%-16" PRIx64 " %-24s %-32s %-11s ", r.address,
                fmt::format("{:02x}", fmt::join(r.bytes, "")).c_str(), r.ci.text.c_str(),
                std::string(x86::to_string(r.ci.c.cls)).c_str());
    if (with_cpl) std::printf("%-4s ", cpl_text(r.cpls).c_str());
    std::printf("%s\n", std::string(r.ci.c.reason).c_str());
  }
}

// The summary: Theorem 1 over every row; Theorem 3 over the user-mode rows (CPL 3), or over
// every row when the CPL is not known (--bytes).
void print_summary(const std::vector<Row>& rows, bool cpl_known) {
  size_t counts[3] = {0, 0, 0};
  std::vector<const Row*> holes, user_holes;
  bool any_user = false;
  for (const Row& r : rows) {
    ++counts[static_cast<int>(r.ci.c.cls)];
    if (r.ci.c.cls == x86::PgClass::kSensitive) holes.push_back(&r);
    const bool user = !cpl_known || (r.cpls & 0x8);
    any_user |= user;
    if (user && r.ci.c.user_sensitive && !r.ci.c.privileged) user_holes.push_back(&r);
  }
  auto names = [](const std::vector<const Row*>& v) {
    std::set<std::string> seen;
    std::string s;
    for (const Row* r : v) {
      if (seen.insert(r->ci.text).second) s += (s.empty() ? "" : "; ") + r->ci.text;
    }
    return s;
  };
  std::printf("\n%zu instructions: %zu privileged, %zu sensitive but unprivileged, %zu innocuous\n",
              rows.size(), counts[2], counts[1], counts[0]);
  if (holes.empty()) {
    std::printf("Theorem 1 (sensitive ⊆ privileged): holds for this code — every sensitive "
                "instruction traps, so trap-and-emulate can virtualize it\n");
  } else {
    std::printf("Theorem 1 (sensitive ⊆ privileged): FAILS — %zu sensitive instructions do not "
                "trap (%s)\n",
                holes.size(), names(holes).c_str());
  }
  const char* scope = cpl_known ? "its user-mode (CPL 3) code" : "this code taken as user code";
  if (cpl_known && !any_user) {
    std::printf("Theorem 3 (user-sensitive ⊆ privileged) for %s: holds (no code ran at CPL 3)\n",
                scope);
  } else if (user_holes.empty()) {
    std::printf("Theorem 3 (user-sensitive ⊆ privileged) for %s: holds — a hybrid VMM could "
                "run it directly\n",
                scope);
  } else {
    std::printf("Theorem 3 (user-sensitive ⊆ privileged) for %s: FAILS — %zu user-sensitive "
                "instructions do not trap (%s)\n",
                scope, user_holes.size(), names(user_holes).c_str());
  }
}

trace::CpuMode code_mode(const std::string& mode) {
  if (mode == "real") return trace::CpuMode::kReal16;
  if (mode == "long") return trace::CpuMode::kLong64;
  return trace::CpuMode::kProtected32;
}

struct Options {
  std::string guest;
  std::string bytes;
  bool bytes_given = false;
  std::string mode;
  uint64_t max_instructions = 1'000'000;
};

int classify_bytes(const Options& o) {
  std::vector<uint8_t> bytes;
  std::string error;
  if (!parse_hex(o.bytes, &bytes, &error)) {
    std::fprintf(stderr, "trapscope classify: --bytes: %s\n", error.c_str());
    return kBadInput;
  }
  const std::string mode_name = o.mode.empty() ? "protected" : o.mode;
  const trace::CpuMode mode = code_mode(mode_name);
  std::vector<Row> rows;
  size_t offset = 0;
  int status = kOk;
  while (offset < bytes.size()) {
    Row r;
    r.address = offset;
    r.mode = mode;
    r.ci = x86::classify_bytes(std::span(bytes).subspan(offset), mode, offset);
    if (!r.ci.ok) {
      std::fprintf(stderr, "trapscope classify: the bytes at offset %zu are not a valid "
                   "instruction in %s mode\n", offset, mode_name.c_str());
      status = kBadInput;
      break;
    }
    r.bytes.assign(bytes.begin() + offset, bytes.begin() + offset + r.ci.length);
    offset += r.ci.length;
    rows.push_back(std::move(r));
  }
  if (rows.empty()) return status;
  std::printf("mode: %s (classes on classic x86: no CR4.UMIP; IOPL 0 and CR4.TSD set by a VMM)\n",
              mode_name.c_str());
  if (mode == trace::CpuMode::kReal16) {
    std::printf("note: real mode has no CPL, so nothing traps for privilege there; the classes "
                "are those the instructions have in protected mode\n");
  }
  print_table(rows, false);
  print_summary(rows, false);
  return status;
}

int classify_guest(const Options& o) {
  std::string error;
  auto guest = resolve_guest(o.guest, 16ull << 20, &error);
  if (!guest) {
    std::fprintf(stderr, "trapscope classify: %s\n", error.c_str());
    return kBadInput;
  }
  backend::Config cfg;
  cfg.mode = *platform::parse_boot_mode(o.mode.empty() ? guest->default_mode : o.mode);
  cfg.record_instructions = true;
  auto sim = backend::make_backend(backend::Kind::kSim, cfg);
  try {
    sim->load(guest->image);
  } catch (const platform::LoadError& e) {
    std::fprintf(stderr, "trapscope classify: cannot load '%s': %s\n", guest->name.c_str(),
                 e.what());
    return kBadInput;
  }
  Collector collect;
  const backend::RunOutcome r = sim->run({30.0, 0, o.max_instructions}, &collect);
  std::vector<Row> rows;
  for (auto& [key, row] : collect.rows) {
    row.ci = x86::classify_bytes(row.bytes, row.mode, row.address);
    rows.push_back(std::move(row));
  }
  std::printf("guest %s: %zu distinct instructions executed on the simulator (run ended: %s "
              "after %" PRIu64 " instructions)\n",
              guest->name.c_str(), rows.size(), std::string(trace::to_string(r.reason)).c_str(),
              r.instructions);
  if (rows.empty()) return kGuestFault;
  print_table(rows, true);
  print_summary(rows, true);
  return kOk;
}

}  // namespace

void add_classify_command(CLI::App& app, int* status) {
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "classify",
      "Popek-Goldberg class (privileged / sensitive / innocuous) of each instruction, and why");
  cmd->add_option("GUEST", o->guest,
                  "A built-in guest or flat binary: classifies every instruction it executes "
                  "on the simulator");
  auto* b = cmd->add_option("--bytes", o->bytes,
                            "Hex bytes of one or more instructions (e.g. 9c9d0f0100), decoded "
                            "one after another");
  cmd->add_option("--mode", o->mode,
                  "CPU mode: for --bytes the decoding mode (default protected, 32-bit code); for "
                  "a guest the mode it is entered in")
      ->check(CLI::IsMember({"real", "protected", "long"}));
  add_count_option(cmd, "--max-instructions", &o->max_instructions,
                   "Guest: stop the simulator run after this many instructions");
  cmd->footer("Exit status: 0 classified; 2 bad input (no guest or bytes, bad hex, an invalid "
              "instruction).");
  cmd->callback([o, b, status] {
    const bool has_bytes = b->count() > 0;
    if (has_bytes == !o->guest.empty()) {
      std::fprintf(stderr, "trapscope classify: give either a GUEST or --bytes HEX\n");
      *status = kBadInput;
      return;
    }
    *status = has_bytes ? classify_bytes(*o) : classify_guest(*o);
  });
}

}  // namespace trapscope::cli
