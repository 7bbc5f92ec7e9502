#!/bin/sh
# A third party's plugin: built against the installed SDK with pkg-config and
# nothing else, dropped into a directory, listed and called by the unchanged
# berth binary.
set -eu
: "${BERTH_TOP_BUILDDIR:?run me from make check}" "${BERTH_TOP_SRCDIR:?}" "${BERTH_BIN:?}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/berth-oot-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Install the SDK (headers, libberth, berth.pc) into a staging root.
make -s -C "$BERTH_TOP_BUILDDIR/sdk" install DESTDIR="$tmp/root" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; exit 1; }
pc=$(find "$tmp/root" -name berth.pc | head -n 1)
[ -n "$pc" ] || { echo "FAIL: make install put no berth.pc"; exit 1; }
PKG_CONFIG_PATH=$(dirname "$pc"); export PKG_CONFIG_PATH
PKG_CONFIG_SYSROOT_DIR="$tmp/root"; export PKG_CONFIG_SYSROOT_DIR
flags=$(pkg-config --cflags --libs berth)
echo "pkg-config --cflags --libs berth: $flags"

mkdir "$tmp/plugins"
cp "$BERTH_TOP_SRCDIR/tests/plugins/good/hello.c" "$tmp/hello.c"
# shellcheck disable=SC2086 # the flags are words
${CC:-cc} -shared -fPIC -Wall -Werror -o "$tmp/plugins/hello.so" "$tmp/hello.c" $flags

BERTH_PLUGIN_PATH=; export BERTH_PLUGIN_PATH
"$BERTH_BIN" --plugin-dir "$tmp/plugins" tools >"$tmp/tools.out"
grep -q '^hello ' "$tmp/tools.out" || { echo "FAIL: hello not listed"; cat "$tmp/tools.out"; exit 1; }
"$BERTH_BIN" --plugin-dir "$tmp/plugins" call hello name=third-party >"$tmp/call.out"
grep -q '"hello, third-party"' "$tmp/call.out" || { echo "FAIL: call"; cat "$tmp/call.out"; exit 1; }
echo "PASS: out-of-tree plugin listed and called"
