#!/bin/sh
# Runs one test program. BERTH_VALGRIND=1 runs it under valgrind (memcheck,
# leaks are errors) through libtool so the real binary is checked, not the
# libtool wrapper script. BERTH_KEEP_PLUGINS=1 reaches the host so plugins stay
# loaded at exit and leak reports can name their frames.
# Each test gets BERTH_TEST_TIMEOUT seconds (default 900), then TERM, then
# KILL: a test that hangs fails by its own name instead of stalling the run.
test="$1"; shift
limit=${BERTH_TEST_TIMEOUT:-900}
[ "${BERTH_VALGRIND:-0}" = 1 ] && limit=$((limit * 4))
guard="timeout -k 10 $limit"
# The node-based tests need npm packages (tests/mcp/setup.sh) that a release
# tarball does not ship, in a tree that distcheck makes read-only. There,
# run the checkout's copy of the same test file, which has them, against
# the binaries this build made (BERTH_BIN and the plugin paths).
case "$test" in
*/mcp/*)
  if [ ! -d "$(dirname "$test")/node_modules" ] && [ -n "${BERTH_NODE_TESTS_DIR:-}" ]; then
    twin="$BERTH_NODE_TESTS_DIR/${test##*/tests/}"
    [ -f "$twin" ] && test="$twin"
  fi ;;
esac
case "$test" in
*.js|*.mjs) exec $guard node "$test" "$@" ;;
*.sh) exec $guard "${SHELL:-/bin/sh}" "$test" "$@" ;;
esac
if [ "${BERTH_VALGRIND:-0}" = 1 ]; then
  BERTH_KEEP_PLUGINS=1; export BERTH_KEEP_PLUGINS
  exec $guard ${LIBTOOL:-libtool} --mode=execute valgrind --quiet --error-exitcode=97 \
    --leak-check=full --errors-for-leak-kinds=definite --track-fds=no \
    "$test" "$@"
fi
exec $guard "$test" "$@"
