#!/bin/sh
# Builds berth's libFuzzer harnesses with clang (-fsanitize=fuzzer,address,undefined)
# straight from the sources, and runs each for a while on a scratch copy of its
# seed corpus. Findings (crash-*, leak-*, timeout-*) land in the work directory;
# copy a minimised one into tests/fuzz/corpus/<harness>/ so `make check` replays it.
#
#   tests/fuzz/run-libfuzzer.sh [-t SECONDS] [-b BUILDDIR] [-w WORKDIR] [-k] [HARNESS...]
#     -t  seconds per harness (default 60)
#     -b  a configured build directory, for its config.h (default: an empty one)
#     -w  where binaries, corpora and findings go (default: a new temp directory)
#     -k  keep new corpus entries: merge them into the committed corpus
#   HARNESS: fuzz_shell_split fuzz_image_ref ... (default: every tests/fuzz/fuzz_*.c)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
secs=60 build= work= keep=0
while getopts t:b:w:k opt; do
  case $opt in
  t) secs=$OPTARG ;;
  b) build=$OPTARG ;;
  w) work=$OPTARG ;;
  k) keep=1 ;;
  *) sed -n '2,14p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
CC=${CC:-clang}
command -v "$CC" >/dev/null || { echo "run-libfuzzer: $CC not found (install clang)" >&2; exit 2; }
[ -n "$work" ] || work=$(mktemp -d "${TMPDIR:-/tmp}/berth-fuzz.XXXXXX")
mkdir -p "$work/include"
if [ -n "$build" ] && [ -f "$build/config.h" ]; then
  cp "$build/config.h" "$work/include/config.h"
else
  : > "$work/include/config.h"
fi
if [ $# -eq 0 ]; then
  set --
  for f in "$here"/fuzz_*.c; do set -- "$@" "$(basename "$f" .c)"; done
fi
flags="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
  -fno-sanitize-recover=undefined -I$work/include -I$top/sdk -I$here
  $(pkg-config --cflags jansson libarchive libcurl)"
libs="$(pkg-config --libs jansson libarchive libcurl) -lm -pthread"
# Every SDK source, so any harness links; the linker keeps what it needs.
srcs=$(ls "$top"/sdk/*.c)
status=0
for h in "$@"; do
  src="$here/$h.c"
  [ -f "$src" ] || { echo "run-libfuzzer: no harness $src" >&2; status=1; continue; }
  echo "== $h: building"
  # shellcheck disable=SC2086
  $CC $flags -o "$work/$h" "$src" $srcs $libs
  mkdir -p "$work/corpus-$h" "$work/findings-$h"
  [ -d "$here/corpus/$h" ] && cp -n "$here/corpus/$h"/* "$work/corpus-$h/" 2>/dev/null || true
  echo "== $h: fuzzing for ${secs}s (findings in $work/findings-$h)"
  if ! (cd "$work/findings-$h" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "$work/$h" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
        -print_final_stats=1 "$work/corpus-$h" >"$work/$h.log" 2>&1); then
    echo "== $h: FOUND SOMETHING, see $work/$h.log and $work/findings-$h" >&2
    tail -40 "$work/$h.log" >&2
    status=1
  else
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+.*DONE)' "$work/$h.log" || true
  fi
  if [ "$keep" = 1 ] && [ -d "$here/corpus/$h" ]; then
    "$work/$h" -merge=1 "$here/corpus/$h" "$work/corpus-$h" >>"$work/$h.log" 2>&1 || true
  fi
done
echo "work directory: $work"
exit $status
