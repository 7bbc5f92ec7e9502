#!/bin/sh
# The backend contract suite against the CLI backend: the same program as
# integration/test_contract, run through tests/wrapper.sh so BERTH_VALGRIND
# applies to it too.
: "${BERTH_TOP_BUILDDIR:?run through make check}"
: "${BERTH_TOP_SRCDIR:?run through make check}"
BERTH_TEST_BACKEND=cli
export BERTH_TEST_BACKEND
exec "${SHELL:-/bin/sh}" "$BERTH_TOP_SRCDIR/tests/wrapper.sh" \
    "$BERTH_TOP_BUILDDIR/tests/integration/test_contract" "$@"
