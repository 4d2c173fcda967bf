#!/usr/bin/env bash
# Chapter 0's measurements, in one run so the ratios are comparable:
# the 100-request burst, sustained load at 1/10/64 connections, slow clients,
# loadgen's own ceiling (null-server), query latency against file size over
# HTTP, and the alert detection delay.
#
# Usage: bash docs/scripts/ch00-measure.sh [seconds-per-run]   (default 10)
# Needs: curl, awk. Prints loadgen's text reports; paste the figures into
# docs/src/ch00-phase0.md with the date and the machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_RUN="${1:-10}"
cargo build --release -q -p phase0 -p loadgen
PHASE0="$PWD/target/release/phase0"
LOADGEN="$PWD/target/release/loadgen"
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

# Starts a server whose stdout goes to $1.log, waits for its listening line,
# and sets PORT. (Not called in $(...): the PIDS it records must reach the
# cleanup trap of this shell.)
start() {
    local name="$1"; shift
    "$@" > "$WORK/$name.log" 2>&1 &
    PIDS+=("$!")
    PORT=""
    for _ in $(seq 1 200); do
        PORT="$(grep -oE '(listening on|Server listening on) [0-9.]+:[0-9]+' "$WORK/$name.log" | head -1 | grep -oE '[0-9]+$' || true)"
        if [ -n "$PORT" ]; then return; fi
        sleep 0.05
    done
    echo "server $name did not start" >&2; cat "$WORK/$name.log" >&2; exit 1
}

section() { printf '\n===== %s =====\n' "$*"; }

mkdir -p "$WORK/p0"
start phase0 "$PHASE0" 0 --host 127.0.0.1 --quiet --data-dir "$WORK/p0"; P0="$PORT"
start null "$LOADGEN" null-server --port 0; NULL="$PORT"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "phase0 on :$P0, null-server on :$NULL, $SECONDS_PER_RUN s per run"

section "burst: 100 concurrent one-shot POSTs (the seed's test)"
"$LOADGEN" burst --url "http://127.0.0.1:$P0/metrics" -n 100

for c in 1 10 64; do
    section "phase0, sustained, $c connections"
    "$LOADGEN" run --url "http://127.0.0.1:$P0/metrics" -c "$c" -d "${SECONDS_PER_RUN}s"
done
section "null-server (loadgen's ceiling on this machine), 64 connections"
"$LOADGEN" run --url "http://127.0.0.1:$NULL/metrics" -c 64 -d "${SECONDS_PER_RUN}s" --no-health
section "null-server without keep-alive (a connection per request, as phase0 forces), 64 connections"
"$LOADGEN" run --url "http://127.0.0.1:$NULL/metrics" -c 64 -d "${SECONDS_PER_RUN}s" --no-health --no-keep-alive

for c in 10 64; do
    section "phase0, $c connections, every client slow (--slow-body 10)"
    "$LOADGEN" run --url "http://127.0.0.1:$P0/metrics" -c "$c" -d "${SECONDS_PER_RUN}s" --slow-body 10
done
section "phase0, 64 connections, 4 of them slow (--slow-body 10 --slow-clients 4)"
"$LOADGEN" run --url "http://127.0.0.1:$P0/metrics" -c 64 -d "${SECONDS_PER_RUN}s" --slow-body 10 --slow-clients 4
section "null-server, 64 connections, 4 of them slow (a concurrent server for contrast)"
"$LOADGEN" run --url "http://127.0.0.1:$NULL/metrics" -c 64 -d "${SECONDS_PER_RUN}s" --slow-body 10 --slow-clients 4 --no-health

section "query latency against file size (GET /query over HTTP, median of 5)"
for lines in 1000 100000 1000000; do
    dir="$WORK/q$lines"; mkdir -p "$dir"
    awk -v n="$lines" 'BEGIN { split("cpu_usage memory_usage disk_io network_latency error_rate", names, " ");
        t = 1764000000000; for (i = 0; i < n; i++) printf "{\"name\":\"%s\",\"value\":%d.5,\"timestamp\":%d}\n", names[i % 5 + 1], i % 100, t + i * 2000 }' \
        > "$dir/phase0_metrics.jsonl"
    start "q$lines" "$PHASE0" 0 --host 127.0.0.1 --quiet --data-dir "$dir"; port="$PORT"
    end=$((1764000000000 + lines * 2000)); start_ms=$((end - 300000))
    times=()
    for _ in 1 2 3 4 5; do
        times+=("$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$port/query?name=cpu_usage&start=$start_ms&end=$end")")
    done
    median="$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)"
    printf '%8d lines (%s): median %.1f ms\n' "$lines" "$(du -h "$dir/phase0_metrics.jsonl" | cut -f1)" "$(awk -v s="$median" 'BEGIN { print s * 1000 }')"
done

section "alert detection delay (default 10 s interval; 5 trials, fresh server each)"
for trial in 1 2 3 4 5; do
    dir="$WORK/a$trial"; mkdir -p "$dir"
    start "alert$trial" "$PHASE0" 0 --host 127.0.0.1 --quiet --data-dir "$dir"; port="$PORT"
    # Land the burst at a different point of the 10 s cycle each trial.
    sleep "$(awk -v t="$trial" 'BEGIN { print (t * 1.7) % 10 }')"
    sent="$(date +%s%N)"
    for _ in $(seq 1 10); do
        curl -s -o /dev/null -X POST "http://127.0.0.1:$port/metrics" -d '{"name":"cpu_usage","value":92}'
    done
    until grep -q '\[ALERT\]' "$WORK/alert$trial.log"; do sleep 0.01; done
    fired="$(date +%s%N)"
    printf 'trial %d: alert printed %.2f s after the burst\n' "$trial" "$(awk -v a="$sent" -v b="$fired" 'BEGIN { print (b - a) / 1e9 }')"
done
