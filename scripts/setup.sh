#!/usr/bin/env bash
# trapscope set-up: install the Debian packages that are missing, configure and build with
# CMake, then do one job:
#   scripts/setup.sh run    the main job: the visualizer when a display is present, otherwise
#                           the terminal trace of the teaching guests
#   scripts/setup.sh test   every test (ctest), including real-KVM tests, in the Release build and
#                           then in an ASan/UBSan build (both always run; exit 1 if either failed)
#   scripts/setup.sh bench  the benchmarks (also installs Bochs and QEMU, the interpreter's peers)
#   scripts/setup.sh fuzz [SECONDS]  build the fuzz targets with clang + libFuzzer in build-fuzz
#                           and run each for SECONDS (default 60); fails if any crashed
#                           (docs/fuzzing.md; also installs clang and its runtime libraries)
#   scripts/setup.sh build  only install and build
# Environment: BUILD_DIR (default: build), BUILD_TYPE (default: Release), JOBS (default: nproc).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
job="${1:-build}"
build_dir="${BUILD_DIR:-$here/build}"
build_type="${BUILD_TYPE:-Release}"
jobs="${JOBS:-$(nproc)}"

packages=(
  cmake g++ make nasm pkg-config
  libzydis-dev catch2 libcli11-dev nlohmann-json3-dev libyaml-cpp-dev  # yaml-cpp: lesson files
  libssl-dev  # OpenSSL libcrypto: SHA-256 of the guest image in trace metadata
  libfmt-dev  # {fmt}: hex and padded numbers in printed text
  zlib1g-dev  # zlib: CRC-32 of disk images and overlays (platform/disk_image.hpp)
  # the visualizer: GLFW, Dear ImGui 1.86 (+ backends), glad (loader generated at build time),
  # stb (PNG screenshots), DejaVu fonts; Xvfb + Mesa + xauth run it without a screen (tests)
  libglfw3-dev libimgui-dev python3-glad libstb-dev fonts-dejavu-core
  xvfb xauth libgl1-mesa-dri
  time  # /usr/bin/time: a child's own peak memory in the export test (test_export_chrome.cpp)
  gdb  # the real gdb in batch mode against `run --gdb` (tests/test_gdbstub.cpp)
)

install_missing() {
  local missing=()
  for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    local sudo=""
    [[ $(id -u) -ne 0 ]] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

build() {
  cmake -S "$here" -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type"
  cmake --build "$build_dir" -j "$jobs"
}

# ctest in build directory $1 (never stops the script: returns ctest's status). Then the tests
# that did not run here (ctest: "Skipped"; the test printed "SKIPPED: why", tests/support.hpp)
# and what differential tests did not compare ("NOT COMPARED: why", tests/host_cpu.hpp), each
# reason once with how many tests gave it (Catch2 wraps a message over indented lines).
run_ctest() {
  local dir=$1 status=0
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 300) || status=$?
  local log="$dir/Testing/Temporary/LastTest.log"
  if [[ -f $log ]]; then
    local skipped
    skipped=$(grep -c '^Skip regular expression found in output' "$log" || true)
    if [[ $skipped == 0 ]]; then
      echo "setup: no test skipped in $dir"
    else
      echo "setup: $skipped tests skipped in $dir (they cannot run on this host):"
    fi
    awk '/^  (SKIPPED|NOT COMPARED): / { if (msg) print msg; msg = substr($0, 3); next }
         msg != "" && /^  [^ ]/ { msg = msg " " substr($0, 3); next }
         { if (msg) print msg; msg = "" }
         END { if (msg) print msg }' "$log" | sort | uniq -c | sort -rn | sed 's/^/  /'
  fi
  return "$status"
}

install_missing
[[ $job == fuzz ]] || build
case "$job" in
  build) ;;
  run)
    exe="$build_dir/cli/trapscope"
    if [[ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]]; then
      # A display: step through the rings guest in the visualizer (the simulator backend).
      exec "$exe" gui rings
    fi
    "$exe" doctor || { echo "setup: KVM is not usable here (see above)"; exit 5; }
    for guest in hello rings; do
      echo
      echo "=== trapscope run $guest ==="
      "$exe" run "$guest" --stats
    done
    ;;
  test)
    # Two halves: the Release build's ctest, then the same tests built with AddressSanitizer +
    # UndefinedBehaviorSanitizer. The second half runs whatever the first gave; the summary at
    # the end names the half that failed, and the script then exits 1.
    release="passed"
    run_ctest "$build_dir" || release="FAILED (ctest in $build_dir)"
    asan_dir="${ASAN_BUILD_DIR:-$here/build-asan}"
    asan="passed"
    if ! cmake -S "$here" -B "$asan_dir" -DCMAKE_BUILD_TYPE=Debug -DTRAPSCOPE_SANITIZE=ON \
               -DTRAPSCOPE_BUILD_BENCH=OFF ||
       ! cmake --build "$asan_dir" -j "$jobs"; then
      asan="FAILED (the sanitizer build in $asan_dir did not build)"
    elif ! run_ctest "$asan_dir"; then
      asan="FAILED (ctest in $asan_dir)"
    fi
    echo
    echo "setup: test summary"
    echo "  Release tests:            $release"
    echo "  ASan/UBSan tests:         $asan"
    [[ $release == passed && $asan == passed ]] || exit 1
    ;;
  bench)
    packages=(bochs bochs-sdl bochsbios vgabios qemu-system-x86)
    install_missing
    "$build_dir/bench/exit_roundtrip"
    "$build_dir/bench/interp_mips"
    # Binary translation against the interpreter on a compute and a kernel-heavy guest.
    "$build_dir/bench/bt_speed"
    # Both engines against Bochs and QEMU-TCG on compute and compute64, ratios per round.
    "$build_dir/bench/engine_ratios"
    # The visualizer's work per frame and memory per event with 1,000,000 events (headless).
    "$build_dir/visualizer/bench_gui_frame"
    ;;
  fuzz)
    packages=(clang libclang-rt-14-dev)  # Debian 12's clang 14; libFuzzer is in the runtime
    install_missing
    seconds="${2:-60}"
    fuzz_dir="${FUZZ_BUILD_DIR:-$here/build-fuzz}"
    CC=clang CXX=clang++ cmake -S "$here" -B "$fuzz_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DTRAPSCOPE_FUZZ=ON -DTRAPSCOPE_BUILD_TESTS=OFF -DTRAPSCOPE_BUILD_BENCH=OFF
    cmake --build "$fuzz_dir" -j "$jobs" --target fuzz-targets
    crashed=()
    for t in fuzz_trace fuzz_lesson fuzz_script fuzz_hypercall fuzz_sim fuzz_decode; do
      # New inputs go to the first (scratch) corpus; the committed seeds are read only.
      work="$fuzz_dir/fuzz-corpus/$t" crashes="$fuzz_dir/fuzz-crashes/$t"
      mkdir -p "$work" "$crashes"
      seeds=("$here/tests/fuzz/corpus/$t" "$here/tests/fuzz/regressions/$t")
      [[ $t == fuzz_lesson ]] && cp "$here"/lessons/*.yaml "$work/"
      [[ $t == fuzz_script ]] && cp "$here"/docs/*.script "$work/"
      echo "=== $t: $seconds s (crashes to $crashes, log $fuzz_dir/fuzz-$t.log) ==="
      if ! "$fuzz_dir/tests/fuzz/$t" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
           -print_final_stats=1 -artifact_prefix="$crashes/" "$work" "${seeds[@]}" \
           >"$fuzz_dir/fuzz-$t.log" 2>&1; then
        crashed+=("$t")
      fi
      grep -E "^(stat::number_of_executed_units|stat::new_units_added)|^==[0-9]+==ERROR|SUMMARY" \
        "$fuzz_dir/fuzz-$t.log" || true
    done
    if ((${#crashed[@]})); then
      echo "setup: fuzz targets that crashed: ${crashed[*]} (inputs in $fuzz_dir/fuzz-crashes/)" >&2
      exit 1
    fi
    ;;
  *)
    echo "usage: scripts/setup.sh [build|run|test|bench|fuzz [SECONDS]]" >&2
    exit 2
    ;;
esac
