#!/usr/bin/env bash
# trapscope set-up: install the Debian packages that are missing, configure and build with
# CMake, then do one job:
#   scripts/setup.sh run    the main job: the visualizer when a display is present, otherwise
#                           the terminal trace of the teaching guests
#   scripts/setup.sh test   every test (ctest), including real-KVM tests
#   scripts/setup.sh bench  the benchmarks (also installs Bochs and QEMU, the interpreter's peers)
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
  # the visualizer: GLFW, Dear ImGui 1.86 (+ backends), glad (loader generated at build time),
  # stb (PNG screenshots), DejaVu fonts; Xvfb + Mesa + xauth run it without a screen (tests)
  libglfw3-dev libimgui-dev python3-glad libstb-dev fonts-dejavu-core
  xvfb xauth libgl1-mesa-dri
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

install_missing
build
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
    (cd "$build_dir" && ctest --output-on-failure -j "$jobs" --timeout 300)
    # The same tests built with AddressSanitizer + UndefinedBehaviorSanitizer.
    asan_dir="${ASAN_BUILD_DIR:-$here/build-asan}"
    cmake -S "$here" -B "$asan_dir" -DCMAKE_BUILD_TYPE=Debug -DTRAPSCOPE_SANITIZE=ON \
          -DTRAPSCOPE_BUILD_BENCH=OFF
    cmake --build "$asan_dir" -j "$jobs"
    (cd "$asan_dir" && ctest --output-on-failure -j "$jobs" --timeout 300)
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
  *)
    echo "usage: scripts/setup.sh [build|run|test|bench]" >&2
    exit 2
    ;;
esac
