#!/usr/bin/env bash
# The test command: installs what is missing, builds and runs every test.
#   scripts/test.sh            debug build (assertions and expensive checks on)
#   scripts/test.sh asan tsan  the sanitizer builds
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
presets=("$@")
((${#presets[@]})) || presets=(debug)
for p in "${presets[@]}"; do
	echo "=== tests: $p"
	scripts/build.sh "$p"
	ctest --preset "$p" -j 2 --timeout 900
done
