#!/usr/bin/env bash
# Install test (ctest install_consumer): installs the current build into a
# temporary prefix, then builds and runs test/install/consumer.c against it
# twice — through find_package(ntmm) (shared and static targets) and
# through pkg-config.
#   run.sh BUILD_DIR CONSUMER_SOURCE_DIR C_COMPILER
set -euo pipefail
build=$1
src=$2
cc=${3:-cc}
cmake=${CMAKE:-cmake}

work=$(mktemp -d "${NTMM_TEST_TMPDIR:-${TMPDIR:-/tmp}}/ntmm-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

echo "== cmake --install $build --prefix $prefix"
"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log" || {
	cat "$work/install.log"
	exit 1
}
libdir=$(dirname "$(find "$prefix" -name ntmmConfig.cmake -print -quit)")
libdir=${libdir%/cmake/ntmm}
test -f "$prefix/include/ntmm.h"
test -f "$prefix/include/ntmm/win32.h"
test -f "$libdir/pkgconfig/ntmm.pc"
# engine-internal headers are never installed
if find "$prefix/include" -name 'engine.h' -o -name 'thread.h' | grep -q .; then
	echo "internal headers were installed" >&2
	exit 1
fi

echo "== find_package(ntmm)"
"$cmake" -S "$src" -B "$work/cmake-build" -DCMAKE_C_COMPILER="$cc" \
	-DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >"$work/configure.log" || {
	cat "$work/configure.log"
	exit 1
}
"$cmake" --build "$work/cmake-build" -j2
"$work/cmake-build/consumer"
"$work/cmake-build/consumer_static"
# the shared consumer really uses the installed library
ldd "$work/cmake-build/consumer" | grep -F "$libdir/libntmm.so"

echo "== pkg-config ntmm"
export PKG_CONFIG_PATH=$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
pkg-config --exists --print-errors ntmm
# shellcheck disable=SC2046
"$cc" -std=c11 -Wall -Wextra -Werror -o "$work/consumer-pc" "$src/consumer.c" \
	$(pkg-config --cflags --libs ntmm)
LD_LIBRARY_PATH=$libdir "$work/consumer-pc"
LD_LIBRARY_PATH=$libdir ldd "$work/consumer-pc" | grep -F "$libdir/libntmm.so"
echo "install test passed"
