#!/usr/bin/env bash
# Chapter 5's detection latency: a sample that crosses a threshold is
# accepted (202) → how long until the notification reaches the receiver,
# for phase0's polling engine and craft 5's streaming one, on the same
# rules (`loadgen gen-rules --shape probes --format json`: one seed rule per
# probe metric, which both engines read).
#
# phase0's only channel is stdout, so loadgen starts the platform and reads
# its stdout for the seed's console block. craft 5 is timed the same way
# (its console receiver prints the same block) and then through a webhook
# — loadgen's own receiver, which timestamps the POST once its body is
# read — on disk, with the data directory on tmpfs (fsync free: where the
# tail goes), and under background load. Routing: every alert its own
# group, group_wait 0s (Alertmanager's default of 30 s would be measured
# otherwise), resolved notifications off.
#
# Usage: bash docs/scripts/ch05-latency.sh [probes] [every]   (default 100, 200ms)
# NO_BUILD=1 uses the binaries already in target/release.
set -euo pipefail
cd "$(dirname "$0")/../.."
PROBES="${1:-100}"
EVERY="${2:-200ms}"
[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p platform -p loadgen
PLATFORM="$PWD/target/release/platform"
LOADGEN="$PWD/target/release/loadgen"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
RECEIVER_PORT="${RECEIVER_PORT:-19094}"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
section() { printf '\n===== %s =====\n' "$*"; }

"$LOADGEN" gen-rules --shape probes --count "$PROBES" --format json -o "$WORK/probes.json"
ROUTE="route:
  group_by: ['...']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 4h"
cat > "$WORK/am-console.yml" <<YAML
$ROUTE
  receiver: console
receivers:
  - name: console
    console_configs: [{ send_resolved: false }]
YAML
cat > "$WORK/am-webhook.yml" <<YAML
$ROUTE
  receiver: latency
receivers:
  - name: latency
    generic_webhook_configs:
      - url: http://127.0.0.1:$RECEIVER_PORT/hook
        send_resolved: false
YAML
COMMON="--host 127.0.0.1 --rules $WORK/probes.json"
LATENCY="$LOADGEN alert-latency --probes $PROBES --every $EVERY --timeout 30s"

section "phase0 (polling every 10 s), stdout"
$LATENCY --watch stdout --server "$PLATFORM --port {port} $COMMON --data-dir $WORK/p0 --alerting phase0"

section "craft5 (streaming), console receiver, stdout"
$LATENCY --watch stdout --server "$PLATFORM --port {port} $COMMON --data-dir $WORK/c5-console --alertmanager-config $WORK/am-console.yml"

section "craft5 (streaming), generic webhook"
$LATENCY --watch webhook --receiver-port "$RECEIVER_PORT" \
    --server "$PLATFORM --port {port} $COMMON --data-dir $WORK/c5-webhook --alertmanager-config $WORK/am-webhook.yml"

# Where the tail goes: the same webhook run with every file on tmpfs, where
# fsync costs nothing (the durable queue's append, the alert state file's
# two fsyncs per batch, the outbox's fsync per flush), then also with the
# in-memory queue, then on disk again to bracket the tmpfs runs.
SHM="$(mktemp -d -p /dev/shm ch05-XXXXXX)"
trap 'rm -rf "$WORK" "$SHM"' EXIT
for variant in "tmpfs:$SHM/tmpfs:" "tmpfs, --queue crossbeam:$SHM/crossbeam:--queue crossbeam" "disk again:$WORK/c5-again:"; do
    IFS=: read -r name dir extra <<< "$variant"
    section "craft5 (streaming), generic webhook, data dir on $name"
    $LATENCY --watch webhook --receiver-port "$RECEIVER_PORT" \
        --server "$PLATFORM --port {port} $COMMON --data-dir $dir --alertmanager-config $WORK/am-webhook.yml $extra"
done

section "craft5 (streaming), generic webhook, under background load (loadgen run -c 4 --batch 100)"
PORT="${PORT:-18080}"
"$PLATFORM" --port "$PORT" $COMMON --data-dir "$WORK/c5-load" --alertmanager-config "$WORK/am-webhook.yml" > "$WORK/c5-load.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK" "$SHM"' EXIT
for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:$PORT/health" > /dev/null && break
    sleep 0.1
done
"$LOADGEN" run --url "http://127.0.0.1:$PORT" -c 4 --batch 100 -d 60s --no-health > "$WORK/background.txt" &
BACKGROUND=$!
sleep 2
$LATENCY --watch webhook --receiver-port "$RECEIVER_PORT" --url "http://127.0.0.1:$PORT"
kill "$BACKGROUND" 2>/dev/null || true
wait "$BACKGROUND" 2>/dev/null || true
kill "$SERVER"
wait "$SERVER" 2>/dev/null || true
