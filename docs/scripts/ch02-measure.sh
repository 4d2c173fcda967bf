#!/usr/bin/env bash
# Chapter 2's end-to-end measurements in one run: the platform with each
# queue (phase0, crossbeam, the log under each fsync policy) under the same
# load, as `loadgen compare` ratios against the crossbeam configuration.
# The criterion side is `cargo bench -p craft2-queue --bench queues`.
#
# Usage: bash docs/scripts/ch02-measure.sh [seconds-per-run]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_RUN="${1:-5}"
cargo build --release -q -p platform -p loadgen
PLATFORM="$PWD/target/release/platform"
LOADGEN="$PWD/target/release/loadgen"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
section() { printf '\n===== %s =====\n' "$*"; }
n=0
server() { echo "$PLATFORM --port {port} --host 127.0.0.1 --alert-interval 1h --queue-capacity 50000000 --data-dir $WORK/$1 ${*:2}"; }

for load in "-c 64" "-c 16 --batch 100" "-c 16 --batch 1000"; do
    for candidate in "--queue phase0" "--queue log --fsync never" "--queue log --fsync 10ms" "--queue log --fsync every-batch"; do
        n=$((n + 1))
        section "load: $load | baseline: --queue crossbeam | candidate: $candidate"
        "$LOADGEN" compare --baseline "$(server "b$n" --queue crossbeam)" --candidate "$(server "c$n" $candidate)" \
            $load -d "${SECONDS_PER_RUN}s"
    done
done
