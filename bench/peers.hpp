// bench/peers.hpp — the compute guests on the outside reference emulators (Bochs, QEMU-TCG),
// shared by bench/interp_mips, bench/bt_speed and bench/engine_ratios.
//
// Two workloads (Workload), each a boot sector with the same conventions: kCompute
// (guests/compute.asm, real mode, no paging) and kCompute64 (guests/compute64.asm: long mode with
// paging, an 8-instruction loop with `add [base + index*8], reg`). What follows says `compute`;
// the other is the same with its own model, line prefix and instructions per iteration.
//
// The guest is guests/compute.asm: a 512-byte boot sector running a 32-bit integer loop in real
// mode; its iteration count N is a dword the bench patches at offset 504 (after the magic "ITER"
// at 500). A peer boots it from a 1.44 MB floppy image as a child process:
//   Bochs   `bochs -q -f <generated bochsrc>` (Debian's Bochs 2.7: sdl2 display with
//           SDL_VIDEODRIVER=dummy, else rfb; no log file; port 0xE9 console; the guest ends it
//           through the shutdown port)
//   QEMU    `qemu-system-x86_64 -accel tcg -display none -nodefaults ... -debugcon stdio`
//           (the guest ends it through isa-debug-exit: exit status 1)
// A run is timed by the wall clock from spawn to reaping (process start-up and firmware
// included) and by the child's CPU time (rusage, all threads). A peer reports no instruction
// count: the guest retires a + b * N instructions on every machine (no interrupts, no
// data-dependent counts), so MIPS = b * (N2 - N1) / (t(N2) - t(N1)) from two runs
// (measure_pair), where start-up and firmware cancel. b = 3844 (kInsnsPerIterationFromSource);
// trapscope's simulator measures it in both benches.
// Every run's console line ("compute: n=XXXXXXXX checksum=XXXXXXXX") is checked against a C++
// model of the guest (model_checksum), so a machine that computes wrongly is reported, not
// timed.
//
// Usage:
//   bench::TempDir dir("bt_speed");                 // floppy images, bochsrc, child output
//   bench::ComputeImage image;
//   auto bochs = bench::make_bochs(image, dir.path, "bochs");  // never null
//   if (!bochs->available) puts(bochs->unavailable_reason.c_str());  // e.g. not installed
//   bench::Calibration c = bench::calibrate(*bochs, 1, 1.5, 0.15);
//   bench::PairResult p = bench::measure_pair(*bochs, 1, c.n2, 3844);  // p.mips, p.cpu_mips
#pragma once

#include <sys/resource.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace trapscope::bench {

// [SECTION] The guests: guests/compute.asm and guests/compute64.asm.

constexpr size_t kImageSize = 512;
constexpr size_t kMagicOffset = 500;  // "ITER"
constexpr size_t kCountOffset = 504;  // dword: iterations
constexpr uint64_t kLoad = 0x7C00;    // where a BIOS puts a boot sector
constexpr size_t kFloppyBytes = 1474560;
constexpr uint64_t kTableSteps = 256;
// Per iteration: 15 instructions per step (both paths of the jcc), 256 steps, and
// xor di / mov cx / dec ebp / jnz around them.
constexpr uint64_t kInsnsPerIterationFromSource = 15 * kTableSteps + 4;

// The guests' computations, step for step (see guests/compute.asm, guests/compute64.asm): the
// checksum after N iterations.
uint32_t model_checksum(uint32_t iterations);
uint32_t model_checksum64(uint32_t iterations);

// A compute guest: its catalog name (also its console line's prefix, with ':'), the
// instructions per iteration its source gives, and its model.
struct Workload {
  const char* guest;
  uint64_t insns_per_iteration_from_source;
  uint32_t (*model)(uint32_t iterations);
};
// compute64: 8 instructions per step, STEPS = 256 steps, mov ecx / dec r8d / jnz around them.
constexpr uint64_t kInsnsPerIteration64FromSource = 8 * 256 + 3;
inline constexpr Workload kCompute{"compute", kInsnsPerIterationFromSource, &model_checksum};
inline constexpr Workload kCompute64{"compute64", kInsnsPerIteration64FromSource,
                                     &model_checksum64};

// The console line the guest prints after N iterations: "compute: n=%08x checksum=%08x".
std::string expected_line(uint32_t iterations, const Workload& w = kCompute);
// The first line of `text` that starts with "compute:" (without its newline or CR), or "".
std::string console_line(const std::string& text, const Workload& w = kCompute);

// The built-in guest of a workload (guests/guest_catalog.hpp), checked for its shape; throws
// std::runtime_error if it is missing or not the expected boot sector.
class ComputeImage {
 public:
  explicit ComputeImage(const Workload& w = kCompute);
  std::vector<uint8_t> with(uint32_t iterations) const;  // the image with N patched in
  uint32_t iterations() const;                           // N as built (the catalog's image)
  const Workload& workload() const { return *workload_; }

 private:
  const Workload* workload_;
  std::vector<uint8_t> base_;
};

// [SECTION] Helpers: time, files, child processes.

double now_s();          // steady clock, seconds
double process_cpu_s();  // CPU time of this process (CLOCK_PROCESS_CPUTIME_ID), seconds
double median(std::vector<double> v);  // of an even count: the mean of the middle two
std::optional<std::string> find_in_path(const std::string& name);  // an executable, or nullopt
std::string debian_version(const std::string& dir, const std::string& pkg);  // or ""

// A new directory $TMPDIR/PROGRAM.XXXXXX, removed with its (flat) contents on destruction.
struct TempDir {
  explicit TempDir(const std::string& program);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string program, path;
};

// [SECTION] Machines.

struct RunResult {
  bool ok = false;
  double seconds = 0;         // wall clock: what the targets are judged on
  double cpu_seconds = 0;     // CPU time (a cross-check that a busy host disturbs less)
  uint64_t instructions = 0;  // simulator only (a peer reports none: 0)
  std::string line;           // the console line
  std::string error;          // !ok: what went wrong
  bool wrong_checksum = false;
};

// Something that runs the compute guest with N iterations to its end.
class Machine {
 public:
  virtual ~Machine() = default;
  virtual std::string name() const = 0;  // short, for tables
  virtual RunResult run(uint32_t iterations) = 0;
  bool available = true;
  bool installed = true;  // false: the executable was not found (available is false too)
  std::string unavailable_reason;
  std::string description;  // how it is run, for the header
  std::string version;
};

// Checks the console line of a run against the model: on a mismatch sets ok = false and the
// error (wrong_checksum if a line was printed).
void check_line(RunResult* r, uint32_t iterations, const Workload& w = kCompute);

// Bochs and QEMU-TCG, looked up in PATH (or `exe` given as a path). Never null: a peer that is
// not installed, or (Bochs) has no headless display that works, comes back with
// available = false and the reason (installed = false: "'bochs' not found (Debian: ...)").
// `dir` holds the floppy images and child output and must outlive the machine.
std::unique_ptr<Machine> make_bochs(const ComputeImage& image, const std::string& dir,
                                    const std::string& exe);
std::unique_ptr<Machine> make_qemu(const ComputeImage& image, const std::string& dir,
                                   const std::string& exe);

// [SECTION] Measurement.

// Calibration: t(n1) (also a warm-up and a check of the result), then N grown 8x from 64 until
// t(N) - t(n1) >= probe_s; n2 = N * seconds / (t(N) - t(n1)), for about `seconds` of guest
// work per measurement (unclamped: see clamp_n2).
struct Calibration {
  bool ok = false;
  uint32_t failed_n = 0;  // !ok: the N whose run failed
  std::string error;
  bool wrong_checksum = false;
  double t1 = 0;          // t(n1), seconds
  uint32_t n_probe = 0;   // the last N run
  double dt = 0;          // t(n_probe) - t(n1), seconds
  double n2 = 0;
};
Calibration calibrate(Machine& m, uint32_t n1, double seconds, double probe_s);
uint32_t clamp_n2(double n2);  // to [16, 4e9]

// One measurement: t(n1) then t(n2); MIPS = per_iteration * (n2 - n1) / (t(n2) - t(n1)).
struct PairResult {
  bool ok = false;
  std::string error;
  bool wrong_checksum = false;
  bool valid = false;  // ok and both differences positive (else a start-up hiccup: skip it)
  double mips = 0, cpu_mips = 0;  // by the wall clock and by CPU time
  double cpu_use = 0;             // CPU time / wall time of the difference
  double t1 = 0;                  // t(n1), seconds
};
PairResult measure_pair(Machine& m, uint32_t n1, uint32_t n2, uint64_t per_iteration);

}  // namespace trapscope::bench
