#!/usr/bin/env bash
# Console suite: Debian's chromium (headless, launched by path through
# playwright-core) drives the web console of the real gateway binary, with a
# real SQLite file and the fake upstreams of tests/integration/lib.
#
#   scripts/console-tests.sh                      # against build/switchboard
#   scripts/console-tests.sh build-ui/switchboard
#   scripts/console-tests.sh --test-name-pattern=playground
#
# Screenshots of every page land in build/ui-screenshots/ (SB_UI_SHOTS picks
# another folder). The chromium binary is /usr/bin/chromium (SB_CHROMIUM).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  SWITCHBOARD_BIN=$1; shift
fi
export SWITCHBOARD_BIN="${SWITCHBOARD_BIN:-build/switchboard}"
if [ ! -x "$SWITCHBOARD_BIN" ]; then
  echo "console: $SWITCHBOARD_BIN is missing or not executable (run make first)" >&2
  exit 1
fi
for d in tests/ui tests/integration; do
  if [ ! -d "$d/node_modules" ]; then
    echo "console: installing the test dependencies in $d (npm ci)"
    (cd "$d" && npm ci --no-audit --no-fund --silent)
  fi
done
exec node --test --test-concurrency=1 --test-timeout=180000 --test-reporter=spec "$@" tests/ui/
