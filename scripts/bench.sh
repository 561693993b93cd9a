#!/usr/bin/env bash
# The main job: installs what is missing, builds the release preset and runs
# the quick benchmark suite, then `ntmm demo` (10 s at 4x overcommit, every
# page verified), printing ntmm beside its peers (rates, ratios and the
# targets in bench/targets.txt). Extra arguments go to ntmm-bench (e.g. a
# filter); NTMM_BENCH_DEMO=0 leaves the demo out.
#   scripts/bench.sh [--benchmark_filter=REGEX]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh release
out=build/release/bench.json
build/release/bench/ntmm-bench --benchmark_repetitions=3 \
	--benchmark_report_aggregates_only=true --benchmark_min_time=0.2 \
	--benchmark_format=console --benchmark_out_format=json --benchmark_out="$out" "$@"
demo=build/release/demo.json
rm -f "$demo"
if [ "${NTMM_BENCH_DEMO:-1}" != 0 ]; then
	echo
	echo "ntmm demo --seconds=10 (4x overcommit; its latencies feed the table's demo row)"
	build/release/ntmm demo --seconds=10 --quiet --json >"$demo" ||
		echo "ntmm demo FAILED (exit $?): see $demo"
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
f = d["faults"]
print("  accesses %d, errors %d, pages verified %d, wrong %d, audit %s" % (d["accesses"],
      d["access_errors"], d["verified_pages"], d["bad_pages"], "ok" if d["audit"] == 0 else "FAILED"))
print("  %-12s %9s  (in-process latency of one access, by what it took)" % ("", "accesses"))
for k in ("valid", "soft", "demand_zero", "hard", "collided"):
    print("  %-12s %9d  p50 %8d ns  p99 %9d ns  p999 %10d ns" % (k, f[k]["count"],
          f[k]["p50_ns"], f[k]["p99_ns"], f[k]["p999_ns"]))
print("  hard faults %.0f/s, pages written %.0f/s" % (d["hard_faults_per_s"], d["pages_written_per_s"]))' "$demo"
fi
echo
if [ -s "$demo" ]; then
	python3 bench/report.py "$out" bench/targets.txt "$demo"
else
	python3 bench/report.py "$out" bench/targets.txt
fi
