#!/usr/bin/env bash
# bench/run.sh - `make bench`: direct-to-mock vs nginx vs switchboard, side by side.
#
# Builds nothing (make bench already did). Starts the mock upstream, nginx (a
# plain reverse proxy) and switchboard, each pinned with taskset to one core,
# and runs every load generator (wrk, streamload) on that same core: at
# saturation the core is the only resource, so 1e6/(req/s) is the CPU in
# microseconds that one request costs the client, the mock and the proxy
# together, and the difference to the direct column is what the proxy adds
# (DESIGN.md section 7). The "translated" target is the same switchboard
# reached with models whose provider is `anthropic`-type on the same mock: the
# OpenAI client's request and answer are translated both ways, so its rows show
# what translation costs beside the pass-through rows.
#
# Switchboard runs the full path: every request carries a virtual key (made
# through /api/keys, not the admin token) with RPM/TPM limits, the providers
# have RPM/TPM limits too (all far above what the bench sends), every model
# name the client sends is a route with two targets (two providers on the
# mock), and usage logging is on (the usage writer's own CPU is reported).
# A failover phase sends requests through routes whose primary refuses
# connections and reports what one failover adds, beside nginx with a backup
# server. Prints one table, saves it to $BUILD/bench/results.txt, and stops
# every process it started, by PID, on any exit.
#
# Knobs (environment): BUILD (build: where the binaries are), BENCH_SB_BIN
# ($BUILD/switchboard), BENCH_CORE (1), BENCH_DURATION (2 s per run),
# BENCH_ROUNDS (3 runs per cell, median shown), BENCH_WARMUP (1 s), BENCH_STREAMS (10000), BENCH_TTFB_N (2000),
# BENCH_PACED_N (20), BENCH_FAILOVER_N (400), BENCH_TARGETS ("direct nginx switchboard translated"),
# BENCH_NICE (-10), BENCH_CELLS (the wrk cells to run, e.g. "ns1k_c64 rq100k_c64"; all when unset),
# BENCH_WORKERS (1: switchboard's --workers; with more, give BENCH_CORE a list such as
# "0,1", or the workers share one core and the scaling shown is nil).
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
SB_BIN=${BENCH_SB_BIN:-$BUILD/switchboard}
CORE=${BENCH_CORE:-1}
WORKERS=${BENCH_WORKERS:-1}
DUR=${BENCH_DURATION:-2}
ROUNDS=${BENCH_ROUNDS:-3}
WARM=${BENCH_WARMUP:-1}
STREAMS=${BENCH_STREAMS:-10000}
TTFB_N=${BENCH_TTFB_N:-2000}
PACED_N=${BENCH_PACED_N:-20}
FAILOVER_N=${BENCH_FAILOVER_N:-400}
FAILOVER_ROUTES=$(((FAILOVER_N + 3) / 4)) # each primary fails 4 times, under the breaker's 5
T_BEGIN=$(date +%s)
TARGETS=${BENCH_TARGETS:-"direct nginx switchboard translated"}
NICE=${BENCH_NICE:--10}
PACE_MS=10        # s-paced: one chunk every 10 ms ...
PACED_CHUNKS=20   # ... 20 chunks
HOLD_MS=5000      # s-hold: one chunk every 5 s, so held streams stay open and nearly idle
OUT=$BUILD/bench/results.txt
RAW=$BUILD/bench/raw.txt
mkdir -p "$BUILD/bench"

# A single core that does not exist falls back to 0; a list ("0,1", "0-1") is taskset's to check.
[[ $CORE =~ ^[0-9]+$ ]] && { [ "$CORE" -lt "$(nproc)" ] || CORE=0; }
# Everything we start runs on one core, at a raised priority when allowed, so
# that other work on a shared machine disturbs the comparison as little as possible.
PIN=(taskset -c "$CORE")
if [ "$(nice -n "$NICE" nice 2>/dev/null)" = "$(($(nice) + NICE))" ]; then
    PIN=(nice -n "$NICE" taskset -c "$CORE")
else
    NICE=0
fi
LOAD0=$(cut -d' ' -f1 /proc/loadavg)
for tool in "$BUILD/bench/mock_upstream" "$BUILD/bench/streamload"; do
    [ -x "$tool" ] || { echo "bench: $tool missing (run make bench)" >&2; exit 1; }
done
for cmd in wrk nginx curl python3 taskset; do
    command -v "$cmd" >/dev/null || { echo "bench: $cmd not installed (scripts/bootstrap.sh)" >&2; exit 1; }
done

# 10,000 streams through a proxy need two sockets each in the proxy.
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576
ulimit -n "$hard" 2>/dev/null
NOFILE=$(ulimit -n)
HOLD_N=$STREAMS
if [ $((2 * STREAMS + 200)) -gt "$NOFILE" ]; then
    HOLD_N=$(((NOFILE - 200) / 2))
    echo "bench: RLIMIT_NOFILE hard limit is $NOFILE: holding $HOLD_N streams, not $STREAMS" >&2
fi

tmp=$(mktemp -d /tmp/sb-bench.XXXXXX)
pids=()
# stop_pid PID: TERM, up to 5 s grace, then KILL; forgets the PID so it is never signalled again.
stop_pid() {
    local i
    kill -TERM "$1" 2>/dev/null
    for i in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    forget_pid "$1"
}
# forget_pid PID: after it was reaped, so that cleanup never signals a reused PID.
forget_pid() {
    local keep=() p
    for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    pids=("${keep[@]}")
}
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do stop_pid "$p"; done
    mkdir -p "$BUILD/bench/logs" && cp "$tmp"/*.log "$BUILD/bench/logs/" 2>/dev/null
    cp "$tmp/nginx/error.log" "$BUILD/bench/logs/nginx-error.log" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# poll_start PORT SECONDS, then spawn a server on PORT, then poll_wait PORT: waits
# until GET /health answers 200 (fails after SECONDS) and sets READY_MS to the
# milliseconds since the poller started, just before the server: its start-up time.
# (Not in $(...): a subshell cannot wait for the poller.)
poll_start() {
    "$BUILD/bench/streamload" --mode ready --port "$1" --path /health --timeout-s "$2" >"$tmp/ready.$1" &
    POLL=$!
    pids+=($POLL)
}
poll_wait() {
    local rc=0
    wait "$POLL" || rc=1
    forget_pid "$POLL"
    READY_MS=$(sed -n 's/.*ms=//p' "$tmp/ready.$1")
    return $rc
}

MOCK_PORT=$(free_port)
NGINX_PORT=$(free_port)
SB_PORT=$(free_port)
DEAD_PORT=$(free_port) # nothing listens here: the failover primary's connections are refused
TOKEN="sb-bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# The bearer each target's clients send: the mock ignores it; switchboard gets
# a virtual key once it runs (start_switchboard).
declare -A BEARER=([direct]=$TOKEN [nginx]=$TOKEN)
declare -A PORT=([direct]=$MOCK_PORT [nginx]=$NGINX_PORT [switchboard]=$SB_PORT [translated]=$SB_PORT)
# switchboard: routes "r-<name>" (a route's name is never its upstream model's, so the
# body's "model" is rewritten as in real use); translated: switchboard's own port,
# routes "a-<name>" over the anthropic-type providers.
declare -A PREFIX=([switchboard]=r- [translated]=a-)
TRANSLATED_SCENS=" ns1k_c1 ns1k_c64 sfast_c1 " # the cells the translated path is measured in
declare -A PID=() START_MS=()

# ---- start the three servers ----------------------------------------------

poll_start "$MOCK_PORT" 5
"${PIN[@]}" "$BUILD/bench/mock_upstream" --port "$MOCK_PORT" --paced-chunks "$PACED_CHUNKS" \
    --pace-ms "$PACE_MS" --hold-ms "$HOLD_MS" 2>"$tmp/mock.log" &
pids+=($!)
PID[direct]=$!
poll_wait "$MOCK_PORT" >/dev/null || { echo "bench: mock did not start" >&2; cat "$tmp/mock.log" >&2; exit 1; }

# start_nginx CONNS: worker_connections = CONNS. The wrk phase runs with 1024
# (its connection array is part of the RSS we compare); the stream phase restarts
# it with room for the held streams, two sockets each, plus 1/16: nginx starts
# closing idle connections once fewer than 1/16 of worker_connections are free.
start_nginx() {
    mkdir -p "$tmp/nginx"
    sed -e "s|@DIR@|$tmp/nginx|g" -e "s|@PORT@|$NGINX_PORT|g" -e "s|@MOCK_PORT@|$MOCK_PORT|g" \
        -e "s|@DEAD_PORT@|$DEAD_PORT|g" -e "s|@NOFILE@|$NOFILE|g" -e "s|@CONNS@|$1|g" \
        bench/nginx.conf.in >"$tmp/nginx/nginx.conf"
    poll_start "$NGINX_PORT" 5
    "${PIN[@]}" nginx -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" \
        2>>"$tmp/nginx.log" &
    pids+=($!)
    PID[nginx]=$!
    poll_wait "$NGINX_PORT" && START_MS[nginx]=$READY_MS
}

# sb_config: the full path. Every name a client sends (r-m1k, a-m1k ...) is a
# route over two models on two providers of the same mock, both with RPM/TPM
# limits far above the bench's rate; f-<i> are failover routes whose primary
# (provider "dead") refuses connections. Each f-<i> is used at most 4 times:
# 5 consecutive failures would open the primary's breaker and skip it.
sb_config() {
    local lim='    rate_limits: {rpm: 1000000000, tpm: 1000000000000}' m p i
    echo 'server: {max_body_bytes: 4194304, max_connections: 30000}'
    echo 'providers:'
    for p in mock mock-b; do
        printf '  - id: %s\n    type: openai\n    base_url: http://127.0.0.1:%s/v1\n    api_key: env:MOCK_KEY\n%s\n' \
            "$p" "$MOCK_PORT" "$lim"
    done
    for p in mock-anthropic mock-anthropic-b; do
        printf '  - id: %s\n    type: anthropic\n    base_url: http://127.0.0.1:%s\n    api_key: env:MOCK_KEY\n%s\n' \
            "$p" "$MOCK_PORT" "$lim"
    done
    printf '  - id: dead\n    type: openai\n    base_url: http://127.0.0.1:%s/v1\n    api_key: env:MOCK_KEY\n%s\n' \
        "$DEAD_PORT" "$lim"
    echo 'models:'
    for m in m1k m100k s-fast s-paced s-hold; do
        printf '  - {id: pa-%s, provider: mock, upstream_model: %s}\n' "$m" "$m"
        printf '  - {id: pb-%s, provider: mock-b, upstream_model: %s}\n' "$m" "$m"
    done
    for m in m1k s-fast s-paced; do
        printf '  - {id: aa-%s, provider: mock-anthropic, upstream_model: %s}\n' "$m" "$m"
        printf '  - {id: ab-%s, provider: mock-anthropic-b, upstream_model: %s}\n' "$m" "$m"
    done
    for i in $(seq "$FAILOVER_ROUTES"); do
        printf '  - {id: dead-%s, provider: dead, upstream_model: m1k}\n' "$i"
    done
    echo 'routes:'
    for m in m1k m100k s-fast s-paced s-hold; do
        printf '  - {id: r-%s, strategy: priority, targets: [pa-%s, pb-%s]}\n' "$m" "$m" "$m"
    done
    for m in m1k s-fast s-paced; do
        printf '  - {id: a-%s, strategy: priority, targets: [aa-%s, ab-%s]}\n' "$m" "$m" "$m"
    done
    for i in $(seq "$FAILOVER_ROUTES"); do
        printf '  - {id: f-%s, strategy: priority, targets: [dead-%s, pa-m1k]}\n' "$i" "$i"
    done
}

# make_key: a virtual key with RPM/TPM limits (far above the bench's rate),
# made by the admin through the control plane, as a user's key would be.
make_key() {
    local out
    out=$(curl -s --max-time 5 -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d '{"name":"bench","rpm":1000000000,"tpm":1000000000000}' "http://127.0.0.1:$SB_PORT/api/keys")
    python3 -c 'import json,sys; k=json.loads(sys.argv[1]).get("key",""); assert k.startswith("sk-"); print(k)' \
        "$out" 2>/dev/null
}

start_switchboard() {
    [ -x "$SB_BIN" ] || { WHY="not built ($SB_BIN missing)"; return 1; }
    sb_config >"$tmp/switchboard.yaml"
    # Made before the poller starts: a command substitution here (a subshell,
    # head and base64) added about 12 ms to the measured start-up.
    local master_key
    master_key=$(head -c 32 /dev/urandom | base64)
    poll_start "$SB_PORT" 10
    SWITCHBOARD_ADMIN_TOKEN=$TOKEN MOCK_KEY=mock-key SWITCHBOARD_MASTER_KEY=$master_key \
        "${PIN[@]}" "$SB_BIN" serve --config "$tmp/switchboard.yaml" \
        --listen "127.0.0.1:$SB_PORT" --db "sqlite:$tmp/switchboard.db" --workers "$WORKERS" \
        >"$tmp/switchboard.log" 2>&1 &
    pids+=($!)
    PID[switchboard]=$!
    poll_wait "$SB_PORT" ||
        { WHY="no answer on /health in 10 s: $(tail -3 "$tmp/switchboard.log" | tr '\n' ' ')"; return 1; }
    START_MS[switchboard]=$READY_MS
    SB_KEY=$(make_key) || { WHY="could not make a virtual key through /api/keys"; return 1; }
    BEARER[switchboard]=$SB_KEY
    BEARER[translated]=$SB_KEY
    # The usage writer thread (named sb-usage): its CPU is what logging costs.
    WRITER_TID=$(grep -lx sb-usage /proc/"${PID[switchboard]}"/task/*/comm 2>/dev/null | head -1 |
        cut -d/ -f5) || true
}

# smoke TARGET: one request of each kind must come back right before we time anything.
smoke() {
    local url="http://127.0.0.1:${PORT[$1]}/v1/chat/completions" auth=(-H "Authorization: Bearer ${BEARER[$1]}")
    local body pre=${PREFIX[$1]:-}
    body=$(curl -s --max-time 5 "${auth[@]}" -H 'Content-Type: application/json' \
        -d '{"model":"'"${pre}"'m1k","messages":[{"role":"user","content":"hi"}]}' "$url")
    [[ $body == *'"object":"chat.completion"'* && $body == *'"usage"'* ]] ||
        { echo "bad non-streaming answer: ${body:0:200}"; return 1; }
    body=$(curl -s -N --max-time 5 "${auth[@]}" -H 'Content-Type: application/json' \
        -d '{"model":"'"${pre}"'s-fast","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}' "$url")
    [[ $body == *'chat.completion.chunk'* && $body == *'data: [DONE]'* && $body == *'"usage"'* ]] ||
        { echo "bad streaming answer: ${body:0:200}"; return 1; }
}

active=()
: >"$tmp/notes"
for t in $TARGETS; do
    WHY=""
    case $t in
        direct) ;;
        nginx) start_nginx 1024 || WHY="nginx did not start: $(tail -3 "$tmp/nginx/error.log" 2>/dev/null | tr '\n' ' ')" ;;
        switchboard) start_switchboard || WHY=${WHY:-failed to start} ;;
        translated)
            # The same switchboard process: measured only when it runs.
            if [[ " ${active[*]} " == *" switchboard "* ]]; then PID[translated]=${PID[switchboard]}
            else WHY="needs the switchboard target"; fi ;;
        *) WHY="unknown target" ;;
    esac
    [ -z "$WHY" ] && { WHY=$(smoke "$t") || WHY=${WHY:-smoke test failed}; }
    if [ -n "$WHY" ]; then
        printf '%s\t%s\n' "$t" "$WHY" >>"$tmp/notes"
        echo "bench: $t skipped: $WHY" >&2
        [ -n "${PID[$t]:-}" ] && [ "$t" != direct ] && [ "$t" != translated ] && stop_pid "${PID[$t]}"
    else
        active+=("$t")
    fi
done
[[ " ${active[*]} " == *" direct "* ]] || { echo "bench: the direct column is required" >&2; exit 1; }

: >"$tmp/results"
rec() { echo "target=$1 scen=$2 ${*:3}" >>"$tmp/results"; }

# ---- throughput and latency: wrk ------------------------------------------

# cpu_ticks PID: user+system clock ticks of every thread of PID so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# writer_ns TARGET: nanoseconds on a CPU of switchboard's usage writer thread
# alone (schedstat: clock ticks are too coarse for it); 0 elsewhere.
writer_ns() {
    case $1 in switchboard | translated) ;; *) echo 0; return ;; esac
    [ -n "${WRITER_TID:-}" ] || { echo 0; return; }
    cut -d' ' -f1 "/proc/${PID[$1]}/task/$WRITER_TID/schedstat" 2>/dev/null || echo 0
}

# run_wrk TARGET SCEN CONNS MODEL STREAM BYTES SECONDS ROUND: one wrk run (BYTES:
# request body size, 0 = a short prompt), recorded with the server process's
# own CPU time and its usage writer's over the run (round 0 = warm-up, not recorded).
run_wrk() {
    local url="http://127.0.0.1:${PORT[$1]}/v1/chat/completions" line t0 t1 w0 w1
    export BENCH_MODEL=${PREFIX[$1]:-}$4 BENCH_STREAM=$5 BENCH_BODY_BYTES=$6 BENCH_TOKEN=${BEARER[$1]}
    t0=$(cpu_ticks "${PID[$1]}")
    w0=$(writer_ns "$1")
    line=$("${PIN[@]}" timeout $(($7 + 20)) wrk -t1 -c"$3" -d"$7s" --timeout 5s --latency \
        -s bench/chat.lua "$url" 2>&1 | grep '^WRK_RESULT')
    t1=$(cpu_ticks "${PID[$1]}")
    w1=$(writer_ns "$1")
    [ "$8" = 0 ] && return
    rec "$1" "$2" "round=$8 conns=$3 server_ticks=$((t1 - t0)) writer_ns=$((w1 - w0))" \
        "${line#WRK_RESULT }"
    printf '  %-12s %-11s r%s %s\n' "$1" "$2" "$8" "$(cut -d' ' -f2-5 <<<"$line")" >&2
}

# name conns model stream request-bytes. ns*: 1 KB and 100 KB answers to a
# short prompt; rq*: 1 KB, 100 KB and 1 MB prompts with a 1 KB answer.
scenarios=(
    "ns1k_c1 1 m1k 0 0" "ns1k_c16 16 m1k 0 0" "ns1k_c64 64 m1k 0 0"
    "ns100k_c1 1 m100k 0 0" "ns100k_c16 16 m100k 0 0" "ns100k_c64 64 m100k 0 0"
    "rq1k_c1 1 m1k 0 1000" "rq1k_c64 64 m1k 0 1000"
    "rq100k_c1 1 m1k 0 100000" "rq100k_c64 64 m1k 0 100000"
    "rq1m_c1 1 m1k 0 1000000" "rq1m_c64 64 m1k 0 1000000"
    "sfast_c1 1 s-fast 1 0" "sfast_c16 16 s-fast 1 0"
)
# Rounds interleave the targets (d n s d n s ...) so drift on the machine hits
# every column alike; the table shows the median over the rounds.
# in_cell TARGET SCEN: whether TARGET is measured in that cell (translated only in a few).
in_cell() { [ "$1" != translated ] || [[ $TRANSLATED_SCENS == *" $2 "* ]]; }
echo "bench: wrk, $ROUNDS x ${DUR} s per cell after ${WARM} s warm-up, everything on core $CORE, $WORKERS worker(s)" >&2
for s in "${scenarios[@]}"; do
    read -r scen conns model stream bytes <<<"$s"
    [ -z "${BENCH_CELLS:-}" ] || [[ " $BENCH_CELLS " == *" $scen "* ]] || continue
    cell=()
    for t in "${active[@]}"; do in_cell "$t" "$scen" && cell+=("$t"); done
    for t in "${cell[@]}"; do run_wrk "$t" "$scen" "$conns" "$model" "$stream" "$bytes" "$WARM" 0; done
    for r in $(seq "$ROUNDS"); do
        for t in "${cell[@]}"; do
            run_wrk "$t" "$scen" "$conns" "$model" "$stream" "$bytes" "$DUR" "$r"
        done
    done
    # Peak memory after the answer-size cells, before long prompts raise it.
    [ "$scen" = ns100k_c64 ] && for t in "${active[@]}"; do
        [ "$t" = nginx ] || [ "$t" = switchboard ] || continue
        rec "$t" mem_short "$(awk '/^VmHWM/ {print "vmhwm=" $2}' "/proc/${PID[$t]}/status")"
    done
done

# Peak memory under the load above, before the stream test inflates it.
for t in "${active[@]}"; do
    [ "$t" = direct ] || [ "$t" = translated ] && continue
    rec "$t" mem "start_ms=${START_MS[$t]:-} $(awk '/^VmHWM|^VmRSS/ {printf "%s=%s ", tolower(substr($1,1,length($1)-1)), $2}' "/proc/${PID[$t]}/status")"
done

# ---- streaming: TTFB, pacing, 10k open streams -----------------------------

echo "bench: streaming TTFB ($TTFB_N fast, $PACED_N paced per target)" >&2
for t in "${active[@]}"; do
    line=$("${PIN[@]}" "$BUILD/bench/streamload" --mode ttfb --port "${PORT[$t]}" --token "${BEARER[$t]}" \
        --model "${PREFIX[$t]:-}s-fast" -n "$TTFB_N" --warmup 100 --timeout-s 60 | grep '^RESULT')
    rec "$t" ttfb "${line#RESULT }"
    line=$("${PIN[@]}" "$BUILD/bench/streamload" --mode ttfb --port "${PORT[$t]}" --token "${BEARER[$t]}" \
        --model "${PREFIX[$t]:-}s-paced" -n "$PACED_N" --warmup 2 --pace-ms "$PACE_MS" --timeout-s 60 |
        grep '^RESULT')
    rec "$t" paced "${line#RESULT }"
done

# ---- failover: the route's primary refuses connections ----------------------

# Switchboard: routes f-<i> = [dead-<i>, pa-m1k]; nginx: an upstream whose
# primary is the same refusing port with the mock as backup. Both beside the
# healthy path on the same connection, alternating (bench/failover.py).
echo "bench: failover ($FAILOVER_N requests through a refusing primary, alternating with healthy ones)" >&2
for t in "${active[@]}"; do
    case $t in
        switchboard) fo=(--fo-model 'f-{i}' --routes "$FAILOVER_ROUTES") ;;
        nginx) fo=(--fo-path /failover/v1/chat/completions --fo-model m1k) ;;
        *) continue ;;
    esac
    line=$("${PIN[@]}" timeout 120 python3 bench/failover.py --port "${PORT[$t]}" \
        --token "${BEARER[$t]}" --ok-model "${PREFIX[$t]:-}m1k" -n "$FAILOVER_N" "${fo[@]}" |
        grep '^RESULT')
    rec "$t" failover "${line#RESULT }"
done

for t in "${active[@]}"; do
    [ "$t" = direct ] || [ "$t" = translated ] && continue # translated: the same process
    if [ "$t" = nginx ]; then
        stop_pid "${PID[nginx]}"
        start_nginx $(((2 * HOLD_N + 256) * 17 / 16 + 1024)) || { echo "bench: nginx restart failed" >&2; continue; }
    fi
    echo "bench: holding $HOLD_N streams through $t" >&2
    line=$("${PIN[@]}" "$BUILD/bench/streamload" --mode hold --port "${PORT[$t]}" --token "${BEARER[$t]}" \
        --model "${PREFIX[$t]:-}s-hold" -c "$HOLD_N" --ramp 256 --hold-s 3 --timeout-s 60 --watch-pid "${PID[$t]}" |
        grep '^RESULT')
    rec "$t" hold "${line#RESULT }"
    sleep 1 # let the proxy close its upstream sockets before the next target
done

# ---- the table ---------------------------------------------------------------

cp "$tmp/results" "$RAW"
python3 - "$tmp/results" "$tmp/notes" "$CORE" "$DUR" "$ROUNDS" "$STREAMS" "$PACE_MS" "$PACED_CHUNKS" \
    "$(getconf CLK_TCK)" "$NICE" "$LOAD0" <<'PY' | tee "$OUT"
import os, statistics, sys, time
path, notes, core, dur, rounds, streams, pace, chunks, hz, nice, load0 = sys.argv[1:]
pace, hz = int(pace), int(hz)
R = {}  # (target, scenario) -> [ {key: value} per round ]
for line in open(path):
    kv = dict(f.split("=", 1) for f in line.split() if "=" in f)
    R.setdefault((kv.pop("target"), kv.pop("scen")), []).append(kv)
T = ["direct", "nginx", "switchboard", "translated"]
SB = ("switchboard", "translated")  # rows with an x ratio vs nginx

def vals(t, s, k):
    out = []
    for kv in R.get((t, s), []):
        try:
            out.append(float(kv[k]))
        except (KeyError, ValueError):
            pass
    return out
def g(t, s, k):  # the median over rounds, None when never measured
    v = vals(t, s, k)
    return statistics.median(v) if v else None
def best(t, s, k):  # the lowest over rounds: tails, which other load on the core only raises
    v = vals(t, s, k)
    return min(v) if v else None
def f(v, w=9, d=0):
    return f"{'-':>{w}}" if v is None else f"{v:>{w}.{d}f}"
def sub(a, b):
    return None if a is None or b is None else a - b
def ratio(a, b):
    return None if a is None or b is None or b <= 0 else a / b
def srv_cpu(t, s):  # the server process's own CPU per request (all its threads), us
    v = [float(kv["server_ticks"]) * 1e6 / hz / float(kv["requests"])
         for kv in R.get((t, s), []) if kv.get("requests") not in (None, "0")]
    return statistics.median(v) if v else None

checks = []  # (what, switchboard, nginx, limit, unit, errors in the cells behind it)
errors = {}  # (target, scenario) -> failed requests over all rounds
out = []
p = out.append
p(f"switchboard bench  {time.strftime('%Y-%m-%d %H:%M')}  all on core {core} (nice {nice})  "
  f"switchboard --workers {os.environ.get('BENCH_WORKERS', '1')}  "
  f"wrk -t1, median of {rounds} x {dur} s runs per cell")
if float(load0) >= 0.5:
    p(f"WARNING: load average {load0} before the bench started: other work shares the cores, "
      "expect noise")
p("switchboard: full path (virtual key with RPM/TPM limits, provider limits, a route of two targets,")
p("usage logging). 1KB/100KB = answer size to a short prompt; req N = an N prompt with a 1 KB answer")
p("cpu/req = 1e6/(req/s): client+mock+proxy on one core at saturation; srv = the server process's own")
p("CPU per request; + = added vs direct; x = switchboard's added / nginx's added; req/s and p50 are")
p("medians over the rounds, p99 the lowest (other load on the core only ever raises a tail)")
if any(k[0] == "translated" for k in R):
    p("translated = switchboard, OpenAI client -> anthropic-type provider on the same mock (nginx cannot")
    p("translate: its x is only a scale, not a target; see 'translated vs pass-through' below)")
p("")
p(f"{'scenario':<13} {'target':<12} {'req/s':>8} {'p50us':>7} {'p99us':>7} {'+p50':>6} {'+p99':>6} "
  f"{'cpu/req':>7} {'+cpu':>6} {'srv':>6} {'x+cpu':>6} {'x+p50':>6} {'x+p99':>6}")
names = {"ns1k": "1KB", "ns100k": "100KB", "sfast": "stream",
         "rq1k": "req 1KB", "rq100k": "req 100KB", "rq1m": "req 1MB"}
CELLS = ["ns1k_c1", "ns1k_c16", "ns1k_c64", "ns100k_c1", "ns100k_c16", "ns100k_c64",
         "rq1k_c1", "rq1k_c64", "rq100k_c1", "rq100k_c64", "rq1m_c1", "rq1m_c64",
         "sfast_c1", "sfast_c16"]
for scen in CELLS:
    kind, c = scen.split("_")
    label = f"{names[kind]} {c}"
    add = {}
    drps = g("direct", scen, "rps")
    for t in T:
        if (t, scen) not in R:
            continue
        rps, p50, p99 = g(t, scen, "rps"), g(t, scen, "p50_us"), best(t, scen, "p99_us")
        cpu = 1e6 / rps if rps else None
        if t == "direct":
            add[t] = (None, None, None)
        else:
            add[t] = (sub(cpu, 1e6 / drps if drps else None),
                      sub(p50, g("direct", scen, "p50_us")), sub(p99, best("direct", scen, "p99_us")))
        rx = (None, None, None)
        if t in SB and "nginx" in add:
            rx = tuple(ratio(a, b) for a, b in zip(add[t], add["nginx"]))
        errs = errors[(t, scen)] = int(sum(sum(vals(t, scen, k)) for k in
                   ("err_connect", "err_read", "err_write", "err_status", "err_timeout")))
        p(f"{label:<13} {t:<12} {f(rps,8)} {f(p50,7)} {f(p99,7)} {f(add[t][1],6)} {f(add[t][2],6)} "
          f"{f(cpu,7,1)} {f(add[t][0],6,1)} {f(srv_cpu(t, scen),6,1)} "
          f"{f(rx[0],6,2)} {f(rx[1],6,2)} {f(rx[2],6,2)}" + (f"  ERRORS={errs}" if errs else ""))
        label = ""
    if "switchboard" in add and "nginx" in add:
        sb, ng = add["switchboard"], add["nginx"]
        bad = errors[("switchboard", scen)] + errors[("nginx", scen)] + errors[("direct", scen)]
        if c == "c64" and kind != "sfast":
            checks.append((f"CPU added per request, {names[kind]} c64", sb[0], ng[0], 1.25, "us", bad))
        if c == "c1" and kind != "sfast":
            checks.append((f"added p50 latency, {names[kind]} c1", sb[1], ng[1], 1.25, "us", bad))
            checks.append((f"added p99 latency, {names[kind]} c1", sb[2], ng[2], 2.0, "us", bad))

p("")
p(f"streaming on one connection: TTFB = send to first body byte over {int(g('direct','ttfb','n') or 0)} "
  f"s-fast streams; paced = s-paced, {chunks} chunks every {pace} ms")
p(f"{'':<13} {'target':<12} {'ttfb p50':>8} {'p99':>7} {'+p50':>6} {'+p99':>6} {'x+p50':>6}   "
  f"{'paced: ttfb':>11} {'gap p50':>8} {'gap p99':>8} {'unbuffered':>10}")
label = "TTFB"
add = {}
for t in T:
    if (t, "ttfb") not in R:
        continue
    a50, a99 = g(t, "ttfb", "ttfb_p50_us"), g(t, "ttfb", "ttfb_p99_us")
    d50 = sub(a50, g("direct", "ttfb", "ttfb_p50_us")) if t != "direct" else None
    d99 = sub(a99, g("direct", "ttfb", "ttfb_p99_us")) if t != "direct" else None
    add[t] = d50
    rx = ratio(d50, add.get("nginx")) if t in SB else None
    unb = (f"{int(g(t, 'paced', 'unbuffered') or 0)}/{int(g(t, 'paced', 'n') or 0)}"
           if (t, "paced") in R else "-")
    p(f"{label:<13} {t:<12} {f(a50,8)} {f(a99,7)} {f(d50,6)} {f(d99,6)} {f(rx,6,2)}   "
      f"{f(g(t, 'paced', 'ttfb_p50_us'),11)} {f(g(t, 'paced', 'gap_p50_us'),8)} "
      f"{f(g(t, 'paced', 'gap_p99_us'),8)} {unb:>10}")
    label = ""
if "switchboard" in add and "nginx" in add:
    bad = sum(int(g(t, "ttfb", "errors") or 0) for t in ("direct", "nginx", "switchboard"))
    checks.append(("added TTFB p50, s-fast c1", add["switchboard"], add["nginx"], 1.25, "us", bad))

p("")
p("peak RSS: after the short-prompt cells / after every wrk cell (1 MB prompts at c64 included)")
p(f"{'memory':<13} {'target':<12} {'peak RSS, wrk load':>21} {'streams open':>13} "
  f"{'RSS all open':>13} {'per stream':>11} {'start-up':>9}")
mem = {}
for t in ["nginx", "switchboard"]:
    if (t, "mem") not in R and (t, "hold") not in R:
        continue
    mem[t] = g(t, "mem", "vmhwm")
    short = g(t, "mem_short", "vmhwm")
    mem[t + "/short"] = short
    op, want = g(t, "hold", "open"), g(t, "hold", "want")
    opens = f"{int(op)}/{int(want)}" if op is not None and want is not None else "-"
    rss = g(t, "hold", "rss_open_kb")
    p(f"{'':<13} {t:<12} {f(short and short / 1024,7,1)} / {f(mem[t] and mem[t] / 1024,7,1)} MB {opens:>13} "
      f"{f(rss and rss / 1024,10,1)} MB {f(g(t, 'hold', 'bytes_per_stream'),9)} B "
      f"{f(g(t, 'mem', 'start_ms'),6,1)} ms")
if mem.get("switchboard/short") and mem.get("nginx/short"):
    checks.append(("peak RSS, short-prompt cells", mem["switchboard/short"] / 1024,
                   mem["nginx/short"] / 1024, 2.0, "MB", 0))
if mem.get("switchboard") and mem.get("nginx"):
    checks.append(("peak RSS, all wrk cells (1 MB prompts)", mem["switchboard"] / 1024,
                   mem["nginx"] / 1024, 2.0, "MB", 0))

p("")
p("targets (DESIGN.md section 7), switchboard vs nginx:")
for what, sb, ng, lim, unit, bad in checks:
    r = ratio(sb, ng)
    if bad:
        verdict = f"INVALID ({bad} failed requests)"
    elif sb is not None and sb <= 0:
        verdict = "PASS (adds nothing measurable)"
    elif r is None:
        verdict = "n/a (nginx's added value <= 0: noise)"
    else:
        verdict = "PASS" if r <= lim else "FAIL"
    p(f"  {what:<38} {f(sb,8,1)} / {f(ng,8,1)} {unit:<2} = {f(r,5,2)} (<= {lim:<4})  {verdict}")
st = g("switchboard", "mem", "start_ms")
if st is not None:
    p(f"  {'start-up to first /health 200':<38} {f(st,8,1)} ms (<= 50)  {'PASS' if st <= 50 else 'FAIL'}")
if ("switchboard", "hold") in R:
    rss, op = g("switchboard", "hold", "rss_max_kb"), g("switchboard", "hold", "open")
    want = int(g("switchboard", "hold", "want") or 0)
    ok = rss is not None and rss < 1024 * 1024 and op == want
    p(f"  {f'{want} open streams, RSS':<38} {f(rss and rss / 1024,8,1)} MB, {int(op or 0)} open "
      f"(< 1024 MB)  {'PASS' if ok else 'FAIL'}"
      + ("" if want >= int(streams) else f"  [{streams} asked; RLIMIT_NOFILE allows {want}]"))
if ("switchboard", "paced") in R:
    n, u = g("switchboard", "paced", "n"), g("switchboard", "paced", "unbuffered")
    gap = g("switchboard", "paced", "gap_p50_us")
    ok = bool(n) and u == n and gap is not None and abs(gap - pace * 1000) < pace * 500
    p(f"  {'paced streams not buffered':<38} {int(u or 0)}/{int(n or 0)} first chunk before the "
      f"second was sent, gap p50 {f(gap,0)} us vs {pace} ms  {'PASS' if ok else 'FAIL'}")


def writer_us(s):  # the usage writer thread's CPU per request (median over rounds), us
    v = [float(kv["writer_ns"]) / 1e3 / float(kv["requests"])
         for kv in R.get(("switchboard", s), [])
         if kv.get("requests") not in (None, "0") and "writer_ns" in kv]
    return statistics.median(v) if v else None
wcells = [s for s in CELLS if writer_us(s) is not None and ("switchboard", s) in R]
if wcells and any(writer_us(s) > 0 for s in wcells):
    p("")
    p("usage logging: the usage writer thread's own CPU per request, and its share of the core")
    p("(cpu/req) = the throughput it costs at saturation (DESIGN.md section 7: <= 5 %)")
    for s in wcells:
        kind, c = s.split("_")
        rps = g("switchboard", s, "rps")
        share = writer_us(s) * rps / 1e6 * 100 if rps else None
        p(f"  {names[kind] + ' ' + c:<13} {f(writer_us(s),6,2)} us per request  {f(share,5,2)} % of the core"
          + (f"  {'PASS' if share <= 5 else 'FAIL'}" if c == "c64" and share is not None else ""))

if any(("failover" == k[1]) for k in R):
    p("")
    p("failover: one request at a time on one keep-alive connection, alternating a healthy request")
    p("with one whose first target refuses the connection (switchboard: a route [dead, mock], under")
    p("the breaker's 5 failures; nginx: the same refusing server with the mock as backup)")
    p(f"{'':<13} {'target':<12} {'ok p50':>7} {'ok p99':>7} {'fo p50':>7} {'fo p99':>7} "
      f"{'+p50':>6} {'+p99':>6} {'x+p50':>6}  fell over / errors")
    fadd = {}
    for t in ["nginx", "switchboard"]:
        if (t, "failover") not in R:
            continue
        o50, o99 = g(t, "failover", "ok_p50_us"), g(t, "failover", "ok_p99_us")
        f50, f99 = g(t, "failover", "fo_p50_us"), g(t, "failover", "fo_p99_us")
        fadd[t] = sub(f50, o50)
        rx = ratio(fadd[t], fadd.get("nginx")) if t == "switchboard" else None
        fell = int(g(t, "failover", "fell_over") or 0)
        p(f"{'one failover' if t == 'nginx' or 'nginx' not in fadd else '':<13} {t:<12} {f(o50,7)} {f(o99,7)} "
          f"{f(f50,7)} {f(f99,7)} {f(fadd[t],6)} {f(sub(f99, o99),6)} {f(rx,6,2)}  "
          f"{fell if fell >= 0 else '-'} / {int(g(t, 'failover', 'errors') or 0)} of "
          f"{int(g(t, 'failover', 'n') or 0)}")

for line in open(notes):
    t, _, msg = line.rstrip("\n").partition("\t")
    p(f"  {t}: not measured: {msg}")

def cell(t, s):  # (cpu/req, srv, p50, p99) of one wrk cell
    rps = g(t, s, "rps")
    return (1e6 / rps if rps else None, srv_cpu(t, s), g(t, s, "p50_us"), best(t, s, "p99_us"))
def sg(v, d=1):  # a signed difference: "+12.3", "-0.8"; "-" when not measured
    return "-" if v is None else f"{v:+.{d}f}"
tr = [s for s in ["ns1k_c1", "ns1k_c64", "sfast_c1"] if ("translated", s) in R]
if tr or ("translated", "ttfb") in R:
    p("")
    p("translated vs pass-through: the same switchboard, anthropic-type vs openai-type provider on the mock")
    p("(informational, no DESIGN.md target; cpu/req includes the mock's own answer in each format)")
for s in tr:
    kind, c = s.split("_")
    d = [sub(a, b) for a, b in zip(cell("translated", s), cell("switchboard", s))]
    bad = sum(errors.get((t, s), 0) for t in SB)
    p(f"  {names[kind] + ' ' + c:<11} translated costs {sg(d[0])} us CPU per request vs pass-through "
      f"(server process {sg(d[1])} us), p50 {sg(d[2], 0)} us, p99 {sg(d[3], 0)} us"
      + (f"  INVALID ({bad} failed requests)" if bad else ""))
if ("translated", "ttfb") in R and ("switchboard", "ttfb") in R:
    d50 = sub(g("translated", "ttfb", "ttfb_p50_us"), g("switchboard", "ttfb", "ttfb_p50_us"))
    d99 = sub(g("translated", "ttfb", "ttfb_p99_us"), g("switchboard", "ttfb", "ttfb_p99_us"))
    p(f"  {'TTFB':<11} translated first byte vs pass-through: p50 {sg(d50, 0)} us, p99 {sg(d99, 0)} us")
if ("translated", "paced") in R:
    n, u = g("translated", "paced", "n"), g("translated", "paced", "unbuffered")
    gap = g("translated", "paced", "gap_p50_us")
    ok = bool(n) and u == n and gap is not None and abs(gap - pace * 1000) < pace * 500
    p(f"  {'paced':<11} translated streams not buffered: {int(u or 0)}/{int(n or 0)}, gap p50 "
      f"{f(gap,0)} us vs {pace} ms  {'PASS' if ok else 'FAIL'}")
print("\n".join(out))
PY
echo "bench: took $(($(date +%s) - T_BEGIN)) s" | tee -a "$OUT"
