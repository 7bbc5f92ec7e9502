#!/bin/sh
# Installs the MCP clients the tests in this directory drive (the official
# TypeScript SDK and the Inspector CLI) into tests/mcp/node_modules, exactly
# as package-lock.json pins them. Needs node >= 20 and npm; run it once after
# a checkout and whenever package-lock.json changes.
set -eu
cd "$(dirname "$0")"
# The Inspector declares node >= 22 but its CLI runs on node 20; npm only warns.
exec npm ci --no-audit --no-fund --loglevel=error
