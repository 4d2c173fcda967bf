#!/usr/bin/env bash
# Chapter 1's measurements in one run: the staircase (phase0 → threads →
# pool → craft1) at 1, 10 and 64 connections beside loadgen's null-server
# ceiling; slow clients; batches per protocol.
#
# Usage: bash docs/scripts/ch01-measure.sh [seconds-per-run]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_RUN="${1:-5}"
cargo build --release -q -p platform -p loadgen
PLATFORM="$PWD/target/release/platform"
LOADGEN="$PWD/target/release/loadgen"
WORK="$(mktemp -d)"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
section() { printf '\n===== %s =====\n' "$*"; }

section "the staircase: single-metric POSTs, keep-alive offered"
for c in 1 10 64; do
    for step in phase0 threads pool craft1; do
        printf '%-8s c=%-3s ' "$step" "$c"
        "$LOADGEN" compare --baseline "$PLATFORM --port {port} --host 127.0.0.1 --data-dir $WORK/$step-$c --ingestion $step" \
            --candidate "$LOADGEN null-server --port {port}" -c "$c" -d "${SECONDS_PER_RUN}s" --json \
            | python3 -c 'import json,sys; r=json.load(sys.stdin); b=r["baseline"]; n=r["candidate"]; print("req/s %9.0f  p50 %6.2f ms  p99 %7.2f ms  errors %d   | null-server %9.0f req/s  -> %.0f%% of ceiling" % (b["rps"], b["latency_ms"]["p50"] or 0, b["latency_ms"]["p99"] or 0, b["not_accepted"], n["rps"], 100*b["rps"]/max(n["rps"],1)))'
    done
done

section "slow clients: 64 connections, every client --slow-body 10"
"$LOADGEN" compare --baseline "$PLATFORM --port {port} --host 127.0.0.1 --data-dir $WORK/slow-p0 --ingestion phase0" \
    --candidate "$PLATFORM --port {port} --host 127.0.0.1 --data-dir $WORK/slow-c1" -c 64 -d "${SECONDS_PER_RUN}s" --slow-body 10

section "slow clients: 64 connections, 4 of them --slow-body 10"
"$LOADGEN" compare --baseline "$PLATFORM --port {port} --host 127.0.0.1 --data-dir $WORK/mix-p0 --ingestion phase0" \
    --candidate "$PLATFORM --port {port} --host 127.0.0.1 --data-dir $WORK/mix-c1" -c 64 -d "${SECONDS_PER_RUN}s" --slow-body 10 --slow-clients 4

for format in json ndjson lp remote-write; do
    section "batches: --format $format --batch 1000 (10,000 for lp), 16 connections, craft1"
    batch=1000; [ "$format" = lp ] && batch=10000
    "$LOADGEN" compare --baseline "$LOADGEN null-server --port {port}" \
        --candidate "$PLATFORM --port {port} --host 127.0.0.1 --data-dir $WORK/batch-$format --queue-capacity 5000000" \
        -c 16 -d "${SECONDS_PER_RUN}s" --format "$format" --batch "$batch"
done
rm -rf "$WORK"
