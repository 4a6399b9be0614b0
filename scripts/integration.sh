#!/usr/bin/env bash
# Integration suite: the real gateway binary between the official openai SDK
# (and raw sockets) and a fake OpenAI upstream, all on 127.0.0.1.
#
#   scripts/integration.sh                 # against build/switchboard
#   scripts/integration.sh build-asan/switchboard
#   SWITCHBOARD_BIN=build-asan/switchboard scripts/integration.sh
#   scripts/integration.sh --test-name-pattern=stream   # extra args go to node --test
#
# Exit code: 0 when every test passed. SB_KEEP_TMP=1 keeps each gateway's
# temporary folder (config, SQLite db) for a post-mortem.
set -euo pipefail
cd "$(dirname "$0")/.."

# The binary: a first argument that is not an option, else $SWITCHBOARD_BIN.
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  SWITCHBOARD_BIN=$1; shift
fi
export SWITCHBOARD_BIN="${SWITCHBOARD_BIN:-build/switchboard}"
if [ ! -x "$SWITCHBOARD_BIN" ]; then
  echo "integration: $SWITCHBOARD_BIN is missing or not executable (run make first)" >&2
  exit 1
fi
if [ ! -d tests/integration/node_modules/openai ]; then
  echo "integration: installing the test dependencies (npm ci)"
  (cd tests/integration && npm ci --no-audit --no-fund --silent)
fi

# Files run one at a time: several tests measure timing (pacing, timeouts),
# and an ASan build on a small machine needs the CPU to itself.
exec node --test --test-concurrency=1 --test-timeout=90000 --test-reporter=spec "$@" tests/integration/
