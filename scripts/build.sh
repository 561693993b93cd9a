#!/usr/bin/env bash
# scripts/build.sh PRESET — configure (once) and build one CMake preset.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-release}
[ -f "build/$preset/build.ninja" ] || cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
