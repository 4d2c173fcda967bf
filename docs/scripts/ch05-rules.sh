#!/usr/bin/env bash
# Chapter 5's "10,000 rules on one server": the platform (crafted slots,
# in-memory queue) with 10,000 streaming rules over the series `loadgen run` sends, against
# the same platform with no rules (alerting off), under the same load, in
# one `loadgen compare` run. The rules (`loadgen gen-rules --shape traffic`)
# each watch one series through a host matcher and never fire, so every
# matching sample is real work (window update, state step) and no page
# goes out. Rule checks/s = stored samples/s × the mean rules per sample
# that gen-rules prints (10,000 over 6 × 50 series: 33.33).
#
# Usage: bash docs/scripts/ch05-rules.sh [seconds] [rules] [hosts]   (default 20, 10000, 50)
# NO_BUILD=1 uses the binaries already in target/release.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_RUN="${1:-20}"
RULES="${2:-10000}"
HOSTS="${3:-50}"
[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p platform -p loadgen
PLATFORM="$PWD/target/release/platform"
LOADGEN="$PWD/target/release/loadgen"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$LOADGEN" gen-rules --shape traffic --count "$RULES" --hosts "$HOSTS" -o "$WORK/rules.yml" 2> "$WORK/summary.txt"
cat "$WORK/summary.txt"
PER_SAMPLE=$(python3 -c "print($RULES / (6 * $HOSTS))")
printf 'groups: []\n' > "$WORK/none.yml"
# The in-memory queue, small: the alerting slot is what is measured, its
# /health queue_size counts samples, and with room for only 20,000 the
# backlog cannot flatter the accepted rate (a 1M-sample queue filled in the
# first seconds would read as 50K samples/s over 20 s). A full queue answers
# 503 — backpressure, counted apart — and after the load loadgen waits for
# the backlog to be stored (the catch-up).
OPTS="--host 127.0.0.1 --alert-interval 1s --queue crossbeam --queue-capacity 20000"
for batch in 100 1000; do
    printf '\n===== alerting off (0 rules) vs on (%s rules): -c 8 --batch %s, %ss =====\n' "$RULES" "$batch" "$SECONDS_PER_RUN"
    "$LOADGEN" compare \
        --baseline "$PLATFORM --port {port} $OPTS --data-dir $WORK/off-$batch --rules $WORK/none.yml" \
        --candidate "$PLATFORM --port {port} $OPTS --data-dir $WORK/on-$batch --rules $WORK/rules.yml" \
        -c 8 --batch "$batch" --hosts "$HOSTS" -d "${SECONDS_PER_RUN}s" --startup-timeout 120s --drain-timeout 120s --json \
        | python3 -c '
import json, sys
per_sample = float(sys.argv[1])
r = json.load(sys.stdin)
# Accepted = answered 202; a 503 (queue full: the storage consumer, which
# also runs the rules, is behind) is backpressure, counted apart. Stored
# = accepted over the load plus the queue catch-up after it.
def stored(x):
    accepted = x["metrics_per_s"] * x["duration_s"]
    if x["catch_up_s"] is not None:
        return accepted / (x["duration_s"] + x["catch_up_s"])
    # Not drained within --drain-timeout: count only what left the queue.
    return (accepted - x["queue_size_after_drain"]) / (x["duration_s"] + x["drain_waited_s"])
for name in ("baseline", "candidate"):
    x = r[name]
    catch_up = "%.2f s" % x["catch_up_s"] if x["catch_up_s"] is not None else "not drained: %s left" % x["queue_size_after_drain"]
    print("%-9s accepted %9.0f samples/s  stored %9.0f samples/s (catch-up %s)  503s %6d  p99 %7.2f ms" % (
        name, x["metrics_per_s"], stored(x), catch_up, x["statuses"].get("503", 0), x["latency_ms"]["p99"] or 0))
on = stored(r["candidate"])
print("alerting on / off, stored samples/s: %.3f" % (on / stored(r["baseline"])))
print("rule checks/s with alerting on: %.0f (%.0f samples/s x %.2f matching rules per sample)" % (on * per_sample, on, per_sample))
' "$PER_SAMPLE"
done
