#!/usr/bin/env bash
# The main job: installs what is missing, builds the release preset and runs
# the quick benchmark suite, printing ntmm beside its peers (rates, ratios and
# the issue targets). Extra arguments go to ntmm-bench (e.g. a filter).
#   scripts/bench.sh [--benchmark_filter=REGEX]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh release
out=build/release/bench.json
build/release/bench/ntmm-bench --benchmark_repetitions=3 \
	--benchmark_report_aggregates_only=true --benchmark_min_time=0.2 \
	--benchmark_format=console --benchmark_out_format=json --benchmark_out="$out" "$@"
echo
python3 bench/report.py "$out" bench/targets.txt
