#!/usr/bin/env bash
# `make run`: start the gateway on the example config and the embedded
# defaults (SQLite ./switchboard.db, key file ./switchboard.key). The first
# start prints the admin token once, with a curl command that uses it.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "switchboard: starting on ${SWITCHBOARD_LISTEN:-127.0.0.1:8080} (Ctrl-C stops it)"
echo "switchboard: web console at http://${SWITCHBOARD_LISTEN:-127.0.0.1:8080}/ui/ (first start: use the admin token there)"
if [ -f switchboard.db ] && [ -z "${SWITCHBOARD_ADMIN_TOKEN:-}" ]; then
  echo "switchboard: the admin token was printed on the first start; to set a new one:"
  echo "             SWITCHBOARD_ADMIN_TOKEN=your-token make run"
fi
exec build/switchboard serve --config examples/switchboard.yaml \
  --listen "${SWITCHBOARD_LISTEN:-127.0.0.1:8080}" "$@"
