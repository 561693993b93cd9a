#!/usr/bin/env bash
# Installs the Debian packages ntmm needs that this machine lacks.
set -euo pipefail
pkgs=(cmake ninja-build pkg-config gcc g++ python3 clang-format
      liburcu-dev libhwloc-dev liburing-dev libjemalloc-dev libbenchmark-dev
      libcmocka-dev systemtap-sdt-dev libjson-c-dev)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "deps: installing ${missing[*]}"
	SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get install -y "${missing[@]}" >/dev/null 2>&1 || {
		$SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
	}
fi
