#!/usr/bin/env bash
# Chapter 1's measurements in one run: the staircase (phase0 → threads →
# pool → craft1) at 1, 10 and 64 connections beside loadgen's null-server
# ceiling; craft1 against the null-server in back-to-back pairs; slow
# clients; batches per protocol.
#
# Every platform runs with phase0's in-memory queue (the default moved to
# craft 2's durable log, which is chapter 2's measurement, not this one's)
# and no alert rules, so phase0's alert loop (a full file scan every 10 s)
# does not take CPU from the server being measured.
#
# Usage: bash docs/scripts/ch01-measure.sh [seconds-per-run] [pairs]   (default 5, 7)
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_RUN="${1:-5}"
PAIRS="${2:-7}"
cargo build --release -q -p platform -p loadgen
PLATFORM="$PWD/target/release/platform"
LOADGEN="$PWD/target/release/loadgen"
WORK="$(mktemp -d)"
echo '[]' > "$WORK/no-rules.json"
OPTS="--queue phase0 --rules $WORK/no-rules.json --alert-interval 1h"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
section() { printf '\n===== %s =====\n' "$*"; }

section "the staircase: single-metric POSTs, keep-alive offered"
for c in 1 10 64; do
    for step in phase0 threads pool craft1; do
        printf '%-8s c=%-3s ' "$step" "$c"
        "$LOADGEN" compare --baseline "$PLATFORM --port {port} --host 127.0.0.1 --data-dir $WORK/$step-$c --ingestion $step $OPTS" \
            --candidate "$LOADGEN null-server --port {port}" -c "$c" -d "${SECONDS_PER_RUN}s" --json \
            | python3 -c 'import json,sys; r=json.load(sys.stdin); b=r["baseline"]; n=r["candidate"]; print("req/s %9.0f  p50 %6.2f ms  p99 %7.2f ms  errors %d   | null-server %9.0f req/s  -> %.0f%% of ceiling" % (b["rps"], b["latency_ms"]["p50"] or 0, b["latency_ms"]["p99"] or 0, b["not_accepted"], n["rps"], 100*b["rps"]/max(n["rps"],1)))'
    done
done

section "craft1 against the null-server: $PAIRS back-to-back pairs, single-metric POSTs, 64 connections"
for i in $(seq 1 "$PAIRS"); do
    "$LOADGEN" compare --baseline "$LOADGEN null-server --port {port}" \
        --candidate "$PLATFORM --port {port} --host 127.0.0.1 --data-dir $WORK/pair-$i $OPTS" \
        -c 64 -d "${SECONDS_PER_RUN}s" --json \
        | python3 -c 'import json,sys; r=json.load(sys.stdin); n=r["baseline"]; c=r["candidate"]; print("%.4f null-server %9.0f req/s  craft1 %9.0f req/s  p99 %6.2f ms  errors %d" % (c["rps"]/max(n["rps"],1), n["rps"], c["rps"], c["latency_ms"]["p99"] or 0, c["not_accepted"]))'
done | tee "$WORK/pairs.txt" | cut -d' ' -f2-
python3 -c 'import statistics,sys; r=sorted(float(l.split()[0]) for l in open(sys.argv[1])); print("ratios %s -> median %.0f%%" % (" ".join("%.0f%%" % (100*x) for x in r), 100*statistics.median(r)))' "$WORK/pairs.txt"

section "slow clients: 64 connections, every client --slow-body 10"
"$LOADGEN" compare --baseline "$PLATFORM --port {port} --host 127.0.0.1 --data-dir $WORK/slow-p0 --ingestion phase0 $OPTS" \
    --candidate "$PLATFORM --port {port} --host 127.0.0.1 --data-dir $WORK/slow-c1 $OPTS" -c 64 -d "${SECONDS_PER_RUN}s" --slow-body 10

section "slow clients: 64 connections, 4 of them --slow-body 10"
"$LOADGEN" compare --baseline "$PLATFORM --port {port} --host 127.0.0.1 --data-dir $WORK/mix-p0 --ingestion phase0 $OPTS" \
    --candidate "$PLATFORM --port {port} --host 127.0.0.1 --data-dir $WORK/mix-c1 $OPTS" -c 64 -d "${SECONDS_PER_RUN}s" --slow-body 10 --slow-clients 4

for format in json ndjson lp remote-write; do
    section "batches: --format $format --batch 1000 (10,000 for lp), 16 connections, craft1"
    batch=1000; [ "$format" = lp ] && batch=10000
    "$LOADGEN" compare --baseline "$LOADGEN null-server --port {port}" \
        --candidate "$PLATFORM --port {port} --host 127.0.0.1 --data-dir $WORK/batch-$format --queue-capacity 5000000 $OPTS" \
        -c 16 -d "${SECONDS_PER_RUN}s" --format "$format" --batch "$batch"
done
rm -rf "$WORK"
