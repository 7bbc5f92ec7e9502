# shellcheck shell=bash
# Sourced by the scripts in this folder: where things live, which docker
# client to use, and small helpers for daemons started in the background.
# Every path can be overridden from the environment (the scripts' own tests
# start a second engine and registry this way without touching the real ones).

set -euo pipefail

BERTH_SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Pidfiles of the daemons start-engine started: stop-engine stops only these.
BERTH_RUN_DIR=${BERTH_RUN_DIR:-/run/berth-env}
BERTH_DOCKERD_LOG=${BERTH_DOCKERD_LOG:-/var/log/berth-dockerd.log}
BERTH_DOCKERD_ARGS=${BERTH_DOCKERD_ARGS:-}
BERTH_REGISTRY_LOG=${BERTH_REGISTRY_LOG:-/var/log/berth-registry.log}
# Exported: the pull tests push and pull there.
export BERTH_REGISTRY_ADDR=${BERTH_REGISTRY_ADDR:-127.0.0.1:5000}
BERTH_REGISTRY_ROOT=${BERTH_REGISTRY_ROOT:-/var/lib/berth-registry}
BERTH_REGISTRY_CONFIG=${BERTH_REGISTRY_CONFIG:-$BERTH_SRCDIR/tests/env/registry.yml}
BERTH_TEST_IMAGE_REF=${BERTH_TEST_IMAGE_REF:-berth-test/busybox:latest}

# The Debian client matches the Debian engine (20.10, API 1.41); a newer client
# may come first in PATH (/usr/local/bin/docker) and defaults to BuildKit.
if [ -n "${BERTH_DOCKER_CLI:-}" ]; then
    DOCKER=$BERTH_DOCKER_CLI
elif [ -x /usr/bin/docker ]; then
    DOCKER=/usr/bin/docker
else
    DOCKER=$(command -v docker || true)
fi

say() { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

require_root() {
    [ "$(id -u)" = 0 ] || die "$(basename "$0") must run as root (it installs packages and starts daemons); try: sudo $0"
}

dk() { "$DOCKER" "$@"; }

# True when the engine answers; quiet.
engine_up() {
    [ -n "$DOCKER" ] || return 1
    timeout 15 "$DOCKER" version --format '{{.Server.Version}}' >/dev/null 2>&1
}

engine_version() { timeout 15 "$DOCKER" version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null; }

# True when a Docker registry (API v2) answers at $BERTH_REGISTRY_ADDR.
registry_up() {
    curl -fsS -m 3 -o /dev/null -D - "http://$BERTH_REGISTRY_ADDR/v2/" 2>/dev/null |
        grep -qi '^docker-distribution-api-version: *registry/2'
}

# pidfile_alive FILE NAME: the pid in FILE runs and its command is NAME (guards
# against a reused pid). Prints the pid.
pidfile_alive() {
    local file=$1 name=$2 pid
    [ -r "$file" ] || return 1
    pid=$(cat "$file" 2>/dev/null) || return 1
    case $pid in '' | *[!0-9]*) return 1 ;; esac
    [ -r "/proc/$pid/comm" ] || return 1
    [ "$(cat "/proc/$pid/comm")" = "$name" ] || return 1
    printf '%s\n' "$pid"
}

# start_daemon PIDFILE LOG CMD...: start CMD in its own session, detached from
# this script's stdin/stdout and from its signals, and record its pid.
start_daemon() {
    local pidfile=$1 log=$2
    shift 2
    mkdir -p "$(dirname "$pidfile")" "$(dirname "$log")"
    printf '\n--- %s: %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" "$*" >>"$log"
    # Not a process-group leader here, so setsid execs in place and $! is the daemon.
    setsid "$@" >>"$log" 2>&1 </dev/null &
    printf '%s\n' "$!" >"$pidfile"
}

# stop_daemon PIDFILE NAME SECONDS: TERM the daemon, KILL it after SECONDS.
stop_daemon() {
    local pidfile=$1 name=$2 secs=$3 pid i
    if ! pid=$(pidfile_alive "$pidfile" "$name"); then
        rm -f "$pidfile"
        return 1
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < secs * 4; i++)); do
        [ -d "/proc/$pid" ] || break
        sleep 0.25
    done
    if [ -d "/proc/$pid" ]; then
        warn "$name (pid $pid) did not stop within ${secs}s: killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    return 0
}

# wait_for SECONDS PIDFILE NAME CHECK...: poll CHECK every half second until it
# succeeds; give up early when the daemon from PIDFILE is gone.
wait_for() {
    local secs=$1 pidfile=$2 name=$3 i
    shift 3
    for ((i = 0; i < secs * 2; i++)); do
        "$@" && return 0
        if [ -n "$pidfile" ] && ! pidfile_alive "$pidfile" "$name" >/dev/null; then
            "$@" && return 0
            return 2
        fi
        sleep 0.5
    done
    return 1
}

# IDs of containers carrying a label (any state), one per line.
containers_with() { dk ps -aq --no-trunc --filter "label=$1"; }
# IDs of images carrying a label, one per line, each once.
images_with() { dk images -q --no-trunc --filter "label=$1" | sort -u; }
