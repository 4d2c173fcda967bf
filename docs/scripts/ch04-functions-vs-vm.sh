#!/usr/bin/env bash
# Chapter 4's function benchmark beside VictoriaMetrics, in one run: the
# same classic histogram — SERIES series × 10 `le` buckets, 24 h at 60 s
# (default 1,000 × 10 = 10,000 bucket series, 14.4 M samples) — is written
# as line protocol into `platform` (default flags) and into Debian's
# `victoria-metrics` (result caches off on both: each run computes), and
# the same queries are timed
# on both over HTTP:
#   (h) histogram_quantile(0.99, sum by (le) (rate(lat_bucket[5m])))
#       range query over the 24 h at step 60 s;
#   (r) sort_desc(label_replace(lat_bucket, "id", "$1", "host", "h-(.*)"))
#       instant, over all 10,000 series;
#   (c) count_values("v", round(lat_bucket / 1000)) instant, 10,000 series.
# Each query runs RUNS times after one warm-up; the script prints every
# latency, the medians, and the ratio platform / VictoriaMetrics.
#
# Usage: bash docs/scripts/ch04-functions-vs-vm.sh [series] [runs]   (defaults 1000 7)
# Needs: victoria-metrics (apt-get install victoria-metrics), curl, python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
SERIES="${1:-1000}"
RUNS="${2:-7}"
command -v victoria-metrics >/dev/null || { echo "apt-get install victoria-metrics" >&2; exit 1; }
cargo build --release -q -p platform
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "victoria-metrics: $(dpkg-query -W -f="\${Version}" victoria-metrics 2>/dev/null || echo unknown)"
echo "data: $SERIES series x 10 buckets, 24 h at 60 s"

PLATFORM_PORT="$(free_port)"
VM_PORT="$(free_port)"
target/release/platform --port "$PLATFORM_PORT" --host 127.0.0.1 --data-dir "$WORK/platform" \
    --query-cache off > "$WORK/platform.log" 2>&1 &
PIDS+=("$!")
victoria-metrics -httpListenAddr "127.0.0.1:$VM_PORT" -storageDataPath "$WORK/vm" \
    -search.disableCache -retentionPeriod 100y -search.maxUniqueTimeseries 1000000 \
    > "$WORK/vm.log" 2>&1 &
PIDS+=("$!")
for port in "$PLATFORM_PORT" "$VM_PORT"; do
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
        sleep 0.1
    done
done

# The data: cumulative bucket counters, one line per bucket and minute.
START_S=1700000000
python3 - "$SERIES" "$START_S" "$WORK/data" <<'PY'
import os, random, sys
series, start, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
os.makedirs(out, exist_ok=True)
bounds = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"]
shares = [0.05, 0.12, 0.3, 0.5, 0.7, 0.85, 0.93, 0.97, 0.99, 1.0]
rng = random.Random(7)
totals = [0.0] * series
chunk, lines, n = 0, [], 0
for minute in range(24 * 60):
    t = (start + minute * 60) * 1000
    for s in range(series):
        totals[s] += rng.randint(50, 150)
        host = f"h-{s:04d}"
        for le, share in zip(bounds, shares):
            lines.append(f"lat,host={host},le={le} bucket={int(totals[s] * share)} {t}")
    if len(lines) >= 100_000:
        open(f"{out}/{chunk:05d}.lp", "w").write("\n".join(lines) + "\n")
        chunk, lines = chunk + 1, []
if lines:
    open(f"{out}/{chunk:05d}.lp", "w").write("\n".join(lines) + "\n")
PY
# Bodies of 100,000 lines (~5 MB, under the platform's 8 MiB limit); a
# 503 (queue full) is retried, anything else but 2xx stops the run.
load() {
    local url="$1"
    local began=$SECONDS code
    for file in "$WORK"/data/*.lp; do
        while true; do
            code="$(curl -s -o "$WORK/reply" -w '%{http_code}' --data-binary "@$file" "$url")"
            case "$code" in
                2*) break ;;
                503) sleep 0.2 ;;
                *) echo "$url refused $file: $code $(head -c 300 "$WORK/reply")" >&2; exit 1 ;;
            esac
        done
    done
    echo "$((SECONDS - began))"
}
echo "loaded platform in $(load "http://127.0.0.1:$PLATFORM_PORT/write?precision=ms") s"
echo "loaded VictoriaMetrics in $(load "http://127.0.0.1:$VM_PORT/write?precision=ms") s"
curl -sf "http://127.0.0.1:$VM_PORT/internal/force_flush" >/dev/null || true
# Until both answer the last minute for every series.
END_S=$((START_S + 24 * 3600 - 60))
for port in "$PLATFORM_PORT" "$VM_PORT"; do
    for _ in $(seq 1 600); do
        n="$(curl -sf "http://127.0.0.1:$port/api/v1/query" --data-urlencode "query=count(lat_bucket)" \
            --data-urlencode "time=$END_S" | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)')"
        [ "$n" = "$((SERIES * 10))" ] && break
        sleep 0.5
    done
    echo "port $port: $n bucket series at the last minute"
done

time_query() {
    local port="$1" kind="$2" query="$3"
    local args=(--data-urlencode "query=$query")
    if [ "$kind" = range ]; then
        args+=(--data-urlencode "start=$START_S" --data-urlencode "end=$END_S" --data-urlencode "step=60")
        path=query_range
    else
        args+=(--data-urlencode "time=$END_S")
        path=query
    fi
    local out
    out="$(curl -s -o "$WORK/answer.json" -w '%{http_code} %{time_total}' "http://127.0.0.1:$port/api/v1/$path" "${args[@]}")"
    if [ "${out%% *}" != 200 ]; then
        echo "port $port refused $query: $out $(head -c 300 "$WORK/answer.json")" >&2
        exit 1
    fi
    echo "${out#* }"
}
# How many series an answer holds, to see both computed the same thing.
series_in() { python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["data"]["result"]))' "$WORK/answer.json"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
bench() {
    local name="$1" kind="$2" query="$3"
    local p v
    time_query "$PLATFORM_PORT" "$kind" "$query" >/dev/null
    local ps vs
    ps="$(series_in)"
    time_query "$VM_PORT" "$kind" "$query" >/dev/null
    vs="$(series_in)"
    p="$(for _ in $(seq 1 "$RUNS"); do time_query "$PLATFORM_PORT" "$kind" "$query"; done | tee "$WORK/p.txt" | median)"
    v="$(for _ in $(seq 1 "$RUNS"); do time_query "$VM_PORT" "$kind" "$query"; done | tee "$WORK/v.txt" | median)"
    echo "($name) $query   [series answered: platform $ps, VictoriaMetrics $vs]"
    echo "    platform s: $(tr '\n' ' ' < "$WORK/p.txt")  median $p"
    echo "    victoria s: $(tr '\n' ' ' < "$WORK/v.txt")  median $v"
    awk -v p="$p" -v v="$v" 'BEGIN { printf "    ratio platform / VictoriaMetrics: %.2f\n", p / v }'
}
bench h range 'histogram_quantile(0.99, sum by (le) (rate(lat_bucket[5m])))'
bench r instant 'sort_desc(label_replace(lat_bucket, "id", "$1", "host", "h-(.*)"))'
bench c instant 'count_values("v", round(lat_bucket / 1000))'
