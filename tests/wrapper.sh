#!/bin/sh
# Runs one test program. BERTH_VALGRIND=1 runs it under valgrind (memcheck,
# leaks are errors) through libtool so the real binary is checked, not the
# libtool wrapper script. BERTH_KEEP_PLUGINS=1 reaches the host so plugins stay
# loaded at exit and leak reports can name their frames.
test="$1"; shift
case "$test" in
*.js|*.mjs) exec node "$test" "$@" ;;
*.sh) exec "${SHELL:-/bin/sh}" "$test" "$@" ;;
esac
if [ "${BERTH_VALGRIND:-0}" = 1 ]; then
  BERTH_KEEP_PLUGINS=1; export BERTH_KEEP_PLUGINS
  exec ${LIBTOOL:-libtool} --mode=execute valgrind --quiet --error-exitcode=97 \
    --leak-check=full --errors-for-leak-kinds=definite --track-fds=no \
    "$test" "$@"
fi
exec "$test" "$@"
