#!/usr/bin/env bash
# bench/soak.sh - `make soak`: is switchboard's memory flat under steady load?
#
# Starts the bench mock and switchboard on the full path (the same config as
# `make bench`: a virtual key with RPM/TPM limits, routes of two targets,
# usage logging), then drives a mix for SOAK_DURATION seconds (600: DESIGN.md
# section 7's 10-minute soak) in slices of SOAK_SLICE seconds, round robin:
# 1 KB answers at c64, 100 KB answers at c16, 100 KB prompts at c16, streams
# at c16. After each slice it samples switchboard's VmRSS and the usage rows
# written, and at the end prints RSS at the start (after the first round of
# the mix: each shape grows the working set once), at the end and its peak,
# the drift from start to end, and whether any request failed. Every process it starts is pinned to
# SOAK_CORES (default: all) and stopped by PID on any exit.
#
#   make soak                                # 10 minutes
#   SOAK_DURATION=60 make BUILD=build-perf soak
#
# Knobs (environment): BUILD (build), SOAK_DURATION (600 s), SOAK_SLICE (10 s),
# SOAK_CORES (taskset list, all cores when unset).
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
SB_BIN=${BENCH_SB_BIN:-$BUILD/switchboard}
DURATION=${SOAK_DURATION:-600}
SLICE=${SOAK_SLICE:-10}
PIN=()
[ -n "${SOAK_CORES:-}" ] && PIN=(taskset -c "$SOAK_CORES")
for tool in "$BUILD/bench/mock_upstream" "$SB_BIN"; do
    [ -x "$tool" ] || { echo "soak: $tool missing (make BUILD=$BUILD all)" >&2; exit 1; }
done
for cmd in wrk curl python3; do
    command -v "$cmd" >/dev/null || { echo "soak: $cmd not installed (scripts/bootstrap.sh)" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/sb-soak.XXXXXX)
pids=()
cleanup() {
    local p i
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do
        for i in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    mkdir -p "$BUILD/bench/logs" && cp "$tmp"/*.log "$BUILD/bench/logs/" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_health() { # PORT: up to 10 s
    local i
    for i in $(seq 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$1/health" && return 0
        sleep 0.1
    done
    return 1
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# Where the resident pages are: the heap and other anonymous memory, mapped
# files (the binary, libraries, SQLite's -shm), shared memory; in MB.
rss_parts() {
    awk '/^RssAnon|^RssFile|^RssShmem/ {printf "%s %.1f  ", substr($1, 4, length($1) - 4), $2 / 1024}' \
        "/proc/$1/status" 2>/dev/null
}

MOCK_PORT=$(free_port)
SB_PORT=$(free_port)
TOKEN="sb-soak-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"

"${PIN[@]}" "$BUILD/bench/mock_upstream" --port "$MOCK_PORT" 2>"$tmp/mock.log" &
pids+=($!)
wait_health "$MOCK_PORT" || { echo "soak: mock did not start" >&2; exit 1; }

cat >"$tmp/switchboard.yaml" <<EOF
server: {max_body_bytes: 4194304}
providers:
  - {id: mock, type: openai, base_url: "http://127.0.0.1:$MOCK_PORT/v1", api_key: "env:MOCK_KEY", rate_limits: {rpm: 1000000000, tpm: 1000000000000}}
  - {id: mock-b, type: openai, base_url: "http://127.0.0.1:$MOCK_PORT/v1", api_key: "env:MOCK_KEY", rate_limits: {rpm: 1000000000, tpm: 1000000000000}}
models:
EOF
for m in m1k m100k s-fast; do
    printf '  - {id: pa-%s, provider: mock, upstream_model: %s}\n  - {id: pb-%s, provider: mock-b, upstream_model: %s}\n' \
        "$m" "$m" "$m" "$m" >>"$tmp/switchboard.yaml"
done
echo "routes:" >>"$tmp/switchboard.yaml"
for m in m1k m100k s-fast; do
    printf '  - {id: %s, strategy: priority, targets: [pa-%s, pb-%s]}\n' "$m" "$m" "$m" >>"$tmp/switchboard.yaml"
done

SWITCHBOARD_ADMIN_TOKEN=$TOKEN MOCK_KEY=mock-key SWITCHBOARD_MASTER_KEY=$(head -c 32 /dev/urandom | base64) \
    "${PIN[@]}" "$SB_BIN" serve --config "$tmp/switchboard.yaml" --listen "127.0.0.1:$SB_PORT" \
    --db "sqlite:$tmp/switchboard.db" --workers 1 >"$tmp/switchboard.log" 2>&1 &
SB_PID=$!
pids+=($SB_PID)
wait_health "$SB_PORT" || { echo "soak: switchboard did not start" >&2; tail -3 "$tmp/switchboard.log" >&2; exit 1; }
KEY=$(curl -s --max-time 5 -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"name":"soak","rpm":1000000000,"tpm":1000000000000}' "http://127.0.0.1:$SB_PORT/api/keys" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])') ||
    { echo "soak: could not make a virtual key" >&2; exit 1; }

written() {
    curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$SB_PORT/metrics" |
        awk '/^switchboard_usage_rows_written_total/ {print $2}'
}

# name conns model stream request-bytes
mix=("1KB 64 m1k 0 0" "100KB 16 m100k 0 0" "req100KB 16 m1k 0 100000" "stream 16 s-fast 1 0")
rss0=$(rss_kb "$SB_PID")
echo "soak: ${DURATION} s in ${SLICE} s slices against pid $SB_PID (RSS at idle $((rss0 / 1024)) MB)" >&2
t_end=$(($(date +%s) + DURATION))
i=0
requests=0
errors=0
rss_first=""
rss_max=0
while [ "$(date +%s)" -lt "$t_end" ]; do
    read -r name conns model stream bytes <<<"${mix[$((i % ${#mix[@]}))]}"
    line=$(BENCH_MODEL=$model BENCH_STREAM=$stream BENCH_BODY_BYTES=$bytes BENCH_TOKEN=$KEY \
        "${PIN[@]}" timeout $((SLICE + 20)) wrk -t1 -c"$conns" -d"${SLICE}s" --timeout 5s \
        -s bench/chat.lua "http://127.0.0.1:$SB_PORT/v1/chat/completions" 2>&1 | grep '^WRK_RESULT')
    kv() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$line"; }
    n=$(kv requests)
    e=$(($(kv err_connect) + $(kv err_read) + $(kv err_write) + $(kv err_status) + $(kv err_timeout)))
    requests=$((requests + ${n:-0}))
    errors=$((errors + e))
    rss=$(rss_kb "$SB_PID")
    [ "$i" = $((${#mix[@]} - 1)) ] && rss_first=$rss # the warm start: one round of the mix done
    [ "$rss" -gt "$rss_max" ] && rss_max=$rss
    printf '  %5ds %-9s c%-3s %8s req %9s req/s  RSS %5s.%s MB  errors %s  (%s)\n' \
        "$(((i + 1) * SLICE))" "$name" "$conns" "${n:-0}" "$(kv rps)" "$((rss / 1024))" \
        "$((rss % 1024 * 10 / 1024))" "$e" "$(rss_parts "$SB_PID")" >&2
    i=$((i + 1))
done
sleep 1 # the usage writer's last round
rows=$(written)
python3 - "$rss0" "${rss_first:-$rss}" "$rss" "$rss_max" "$requests" "$errors" "${rows:-0}" "$DURATION" <<'PY'
import sys
idle, first, last, peak, reqs, errs, rows, dur = map(float, sys.argv[1:])
drift = (last - first) / first * 100 if first else 0
print(f"soak: {dur:.0f} s, {reqs:.0f} requests, {errs:.0f} failed, {rows:.0f} usage rows written "
      "(wrk counts only what completed in its window; requests cut off at a slice's end are logged too)")
print(f"  RSS idle {idle/1024:.1f} MB, after the first round of the mix {first/1024:.1f} MB, at the end {last/1024:.1f} MB, "
      f"peak {peak/1024:.1f} MB; start -> end {drift:+.1f} %")
# Flat: the end within 10 % of the warm start (DESIGN.md section 7 names no number).
print(f"  memory flat over the soak (end <= 1.10 x start, no failed request): "
      f"{'PASS' if last <= 1.10 * first and errs == 0 else 'FAIL'}")
PY
