#!/usr/bin/env bash
# Chapter 1's scraping benchmark beside the real thing, in one run: one
# fleet of fake exporters (`loadgen exporters`: TARGETS targets × SERIES
# series, values changing every scrape) is scraped every INTERVAL seconds,
# one system after the other, for the same window, by
#   (a) platform (release, default flags, --config.file, data in a temp dir),
#   (b) Debian's Prometheus (/usr/bin/prometheus, TSDB in a temp dir),
#   (c) Debian's vmagent, remote-writing to a victoria-metrics single node
#       (vmagent measured alone; VictoriaMetrics printed on its own line).
# Each system gets the same prometheus.yml (a global block and the fleet's
# `static_configs`). After a warm-up of one interval (every target scraped
# once, caches and series created) the window opens: CPU seconds
# (utime+stime of /proc/<pid>/stat, all threads), the fleet's per-target
# page counts, and the system's own counters are read at both ends.
# Reported per system: CPU s, samples scraped (pages served × SERIES),
# CPU µs per sample, peak RSS (VmHWM), missed scrapes (window/interval
# expected per target vs pages served; "extra": pages beyond that, a
# target scraped early or twice), the system's own count of scraped
# samples (sum_over_time(scrape_samples_scraped) over the window, asked of
# its query API — VictoriaMetrics' for vmagent), and the fleet's own CPU;
# then the ratios platform/Prometheus and platform/vmagent.
#
# Usage: bash docs/scripts/ch01-scrape-vs-peers.sh [targets] [series] [seconds]
#        (defaults 200 1000 60; the window is rounded up to whole intervals)
#        INTERVAL=15 (seconds) and SYSTEMS="platform prometheus vmagent" in
#        the environment change the interval and the systems run;
#        KEEP_WORK=1 keeps the temp dir (every system's log) and names it;
#        PLATFORM_FLAGS="--series-limit 2000000" adds flags to the platform's.
# Needs: prometheus, vmagent and victoria-metrics (apt-get install
# prometheus victoria-metrics), curl, python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
TARGETS="${1:-200}"
SERIES="${2:-1000}"
WANTED_S="${3:-60}"
INTERVAL="${INTERVAL:-15}"
SYSTEMS="${SYSTEMS:-platform prometheus vmagent}"
read -r -a PLATFORM_EXTRA <<< "${PLATFORM_FLAGS:-}"
WINDOW_S=$(( (WANTED_S + INTERVAL - 1) / INTERVAL * INTERVAL ))
SCRAPES_EXPECTED=$(( WINDOW_S / INTERVAL ))
TIMEOUT_S=$(( INTERVAL < 10 ? INTERVAL : 10 ))
for binary in prometheus vmagent victoria-metrics; do
    command -v "$binary" >/dev/null || { echo "missing $binary: apt-get install prometheus victoria-metrics" >&2; exit 1; }
done
# Every target is a listening socket in the fleet and a connection in the
# scraper: a thousand targets need more than the usual 1,024 descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo build --release -q -p platform -p loadgen
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "${KEEP_WORK:-}" ]; then echo "logs and data kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
peak_rss_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
wait_ready() {  # url what
    for _ in $(seq 1 300); do
        curl -sf -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "$2 did not answer $1 within 30 s" >&2
    return 1
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "prometheus: $(dpkg-query -W -f='${Version}' prometheus 2>/dev/null || echo unknown)," \
     "victoria-metrics/vmagent: $(dpkg-query -W -f='${Version}' victoria-metrics 2>/dev/null || echo unknown)"
echo "fleet: $TARGETS targets x $SERIES series every ${INTERVAL}s" \
     "($(( TARGETS * SERIES / INTERVAL )) samples/s), window ${WINDOW_S}s after a ${INTERVAL}s warm-up"

target/release/loadgen exporters --targets "$TARGETS" --series "$SERIES" \
    --static-config "$WORK/fleet.yml" > "$WORK/fleet.log" 2>&1 &
FLEET_PID=$!
PIDS+=("$FLEET_PID")
CONTROL=""
for _ in $(seq 1 300); do
    CONTROL="$(sed -n 's/^control listening on //p' "$WORK/fleet.log")"
    [ -n "$CONTROL" ] && break
    sleep 0.1
done
[ -n "$CONTROL" ] || { cat "$WORK/fleet.log" >&2; exit 1; }
{
    printf 'global:\n  scrape_interval: %ss\n  scrape_timeout: %ss\n' "$INTERVAL" "$TIMEOUT_S"
    cat "$WORK/fleet.yml"
} > "$WORK/prometheus.yml"

# The system's own count of scraped samples over the window, asked of a
# Prometheus-compatible query API at the window's end.
own_count() {  # query_base end_s
    curl -sf --max-time 60 "$1/api/v1/query" \
        --data-urlencode "query=sum(sum_over_time(scrape_samples_scraped{job=\"fleet\"}[${WINDOW_S}s]))" \
        --data-urlencode "time=$2" \
        | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(int(float(r[0]["value"][1])) if r else "none")' \
        || echo "error"
}

# measure NAME PID QUERY_BASE [EXTRA_PID]: warm up, open the window, close
# it, and append one line of figures to $WORK/results.
measure() {
    local name="$1" pid="$2" query="$3" extra="${4:-}"
    sleep "$INTERVAL"
    curl -sf "http://$CONTROL/scrapes" > "$WORK/$name.start.json"
    local cpu0 fleet0 extra0=0 end_s
    cpu0="$(ticks "$pid")"; fleet0="$(ticks "$FLEET_PID")"
    [ -n "$extra" ] && extra0="$(ticks "$extra")"
    sleep "$WINDOW_S"
    local cpu1 fleet1 extra1=0
    cpu1="$(ticks "$pid")"; fleet1="$(ticks "$FLEET_PID")"
    [ -n "$extra" ] && extra1="$(ticks "$extra")"
    curl -sf "http://$CONTROL/scrapes" > "$WORK/$name.end.json"
    end_s="$(date +%s)"
    local rss extra_rss=0
    rss="$(peak_rss_kib "$pid")"
    [ -n "$extra" ] && extra_rss="$(peak_rss_kib "$extra")"
    local own
    own="$(own_count "$query" "$end_s")"
    echo "$name $((cpu1 - cpu0)) $rss $((fleet1 - fleet0)) $own $((extra1 - extra0)) $extra_rss" >> "$WORK/results"
    echo "  $name: done"
}

stop() {  # pid...
    kill "$@" 2>/dev/null || true
    for pid in "$@"; do
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
}

for system in $SYSTEMS; do
    port="$(free_port)"
    case "$system" in
    platform)
        target/release/platform --port "$port" --host 127.0.0.1 --data-dir "$WORK/platform-data" \
            --config.file "$WORK/prometheus.yml" "${PLATFORM_EXTRA[@]}" > "$WORK/platform.log" 2>&1 &
        pid=$!; PIDS+=("$pid")
        wait_ready "http://127.0.0.1:$port/health" platform
        measure platform "$pid" "http://127.0.0.1:$port"
        stop "$pid"
        ;;
    prometheus)
        prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prometheus-data" \
            --web.listen-address="127.0.0.1:$port" > "$WORK/prometheus.log" 2>&1 &
        pid=$!; PIDS+=("$pid")
        wait_ready "http://127.0.0.1:$port/-/ready" prometheus
        measure prometheus "$pid" "http://127.0.0.1:$port"
        stop "$pid"
        ;;
    vmagent)
        vm_port="$(free_port)"
        # latencyOffset 0: the window's last scrapes are counted at once,
        # not 30 s later.
        victoria-metrics -httpListenAddr "127.0.0.1:$vm_port" -storageDataPath "$WORK/vm-data" \
            -search.latencyOffset 0s > "$WORK/vm.log" 2>&1 &
        vm_pid=$!; PIDS+=("$vm_pid")
        wait_ready "http://127.0.0.1:$vm_port/health" victoria-metrics
        vmagent -promscrape.config "$WORK/prometheus.yml" -httpListenAddr "127.0.0.1:$port" \
            -remoteWrite.url "http://127.0.0.1:$vm_port/api/v1/write" \
            -remoteWrite.tmpDataPath "$WORK/vmagent-data" > "$WORK/vmagent.log" 2>&1 &
        pid=$!; PIDS+=("$pid")
        wait_ready "http://127.0.0.1:$port/health" vmagent
        measure vmagent "$pid" "http://127.0.0.1:$vm_port" "$vm_pid"
        stop "$pid" "$vm_pid"
        ;;
    *) echo "unknown system $system (platform, prometheus, vmagent)" >&2; exit 1 ;;
    esac
done

python3 - "$WORK" "$SERIES" "$SCRAPES_EXPECTED" "$WINDOW_S" "$(getconf CLK_TCK)" <<'PY'
import json, sys
work, series, expected, window, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rows = {}
for line in open(f"{work}/results"):
    name, cpu, rss, fleet_cpu, own, extra_cpu, extra_rss = line.split()
    start = json.load(open(f"{work}/{name}.start.json"))["scrapes"]
    end = json.load(open(f"{work}/{name}.end.json"))["scrapes"]
    pages = [b - a for a, b in zip(start, end)]
    samples = sum(pages) * series
    rows[name] = dict(
        cpu=int(cpu) / hz, rss=int(rss) / 1024, fleet=int(fleet_cpu) / hz, own=own,
        pages=sum(pages), samples=samples,
        missed=sum(max(0, expected - p) for p in pages),
        extra=sum(max(0, p - expected) for p in pages),
        us=int(cpu) / hz * 1e6 / samples if samples else float("inf"),
        extra_cpu=int(extra_cpu) / hz, extra_rss=int(extra_rss) / 1024)
print()
print(f"window {window} s, {expected} scrapes expected per target")
print(f"{'system':<11} {'CPU s':>7} {'samples':>11} {'µs/sample':>9} {'peak RSS MiB':>12} "
      f"{'scrapes':>8} {'missed':>7} {'extra':>6} {'own count':>11} {'fleet CPU s':>11}")
for name, r in rows.items():
    print(f"{name:<11} {r['cpu']:>7.2f} {r['samples']:>11} {r['us']:>9.3f} {r['rss']:>12.0f} "
          f"{r['pages']:>8} {r['missed']:>7} {r['extra']:>6} {r['own']:>11} {r['fleet']:>11.2f}")
    if name == "vmagent":
        us = r["extra_cpu"] * 1e6 / r["samples"] if r["samples"] else float("inf")
        print(f"{'  + VM':<11} {r['extra_cpu']:>7.2f} {'':>11} {us:>9.3f} {r['extra_rss']:>12.0f}"
              f"   (victoria-metrics receiving vmagent's remote write)")
if "platform" in rows:
    p = rows["platform"]
    for peer in ("prometheus", "vmagent"):
        if peer in rows:
            q = rows[peer]
            print(f"platform/{peer}: CPU per sample x{p['us'] / q['us']:.2f}, "
                  f"peak RSS x{p['rss'] / q['rss']:.2f}, missed {p['missed']} vs {q['missed']}")
PY
