#!/usr/bin/env bash
# Runs the benchmark scenarios and prints one table (also written to docs/performance.md with
# --write). otlpd is pinned to core 0; the load generator and sink share core 1.
#
#   bench/run.sh [--build DIR] [--seconds N] [--no-valgrind] [--allocator jemalloc|mimalloc] [--write]
#                [scenario ...]   (default: a b c d e f; g on request)
#
#   bench/run.sh [--build DIR] --soak SECONDS [--rate SPANS_PER_S] [--write] [scenario]   (default: a)
#
# --soak runs one scenario at a steady rate (default 200,000 spans/s) for SECONDS and samples
# otlpd's RSS every 10 s, to show whether memory stays flat under load.
#
# --allocator runs otlpd with that allocator preloaded (Debian packages libjemalloc2 and
# libmimalloc2.0) instead of glibc's, to compare them.
#
# Per scenario: the highest sustained spans/s (load as fast as possible, counted as acknowledged
# by otlpd), otlpd CPU per 10,000 spans/s, p50/p99 request latency at half that rate, otlpd peak
# and idle RSS, and, under valgrind, instructions and heap allocations per span. 100 spans per
# request, ~10 attributes per span.
#
# Per-span counts under valgrind are differences between two runs that send a small and a large
# number of requests, so start-up and shutdown cancel out: (total(large) - total(small)) / spans.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
seconds=10
write=0
valgrind_counts=1
allocator=""
preload=""
soak=0
soak_rate=200000
scenarios=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --write) write=1; shift ;;
    --no-valgrind) valgrind_counts=0; shift ;;
    --soak) soak=$2; shift 2 ;;
    --rate) soak_rate=$2; shift 2 ;;
    --allocator)
      allocator=$2; shift 2
      case $allocator in
        jemalloc) preload=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 ;;
        mimalloc) preload=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2 ;;
        *) echo "unknown allocator $allocator" >&2; exit 2 ;;
      esac
      [ -e "$preload" ] || { echo "$preload is missing (apt-get install libjemalloc2 libmimalloc2.0)" >&2; exit 2; }
      ;;
    *) scenarios+=("$1"); shift ;;
  esac
done
if [ ${#scenarios[@]} -eq 0 ]; then
  if [ "$soak" -gt 0 ]; then scenarios=(a); else scenarios=(a b c d e f); fi
fi
otlpd=$(realpath "$build/otlpd")
loadgen=$(realpath "$build/otlpd-loadgen")
work=$(mktemp -d /tmp/otlpd-bench-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json_field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])$2)" "$1"; }
calc() { python3 -c "print($1)"; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_kib() { awk -v k="$2" '$1==k":" {print $2}' "/proc/$1/status"; }
# Waits (up to 60 s, valgrind starts slowly) until something accepts connections on the port.
wait_port() {
  for _ in $(seq 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  return 1
}

describe() {
  case $1 in
    a) echo "OTLP/gRPC -> batch -> otlp" ;;
    b) echo "OTLP/HTTP-protobuf -> batch -> otlp" ;;
    c) echo "OTLP/HTTP-JSON -> batch -> otlp" ;;
    d) echo "OTLP/gRPC -> batch -> file (proto)" ;;
    e) echo "OTLP/gRPC -> batch -> 3 x otlp" ;;
    f) echo "(a) with gzip both sides" ;;
    g) echo "(a) through a persistent queue (sending_queue.storage)" ;;
  esac
}

# Sets the scenario's globals: protocol, gzip flag, exporters list, exporter compression.
scenario_settings() {
  protocol=grpc gzip="" exporters="[otlp]" compression=none storage=""
  case $1 in
    b) protocol=http-proto ;;
    c) protocol=http-json ;;
    d) exporters="[file]" ;;
    e) exporters="[otlp, otlp/2, otlp/3]" ;;
    f) gzip=--gzip; compression=gzip ;;
    g) storage="$work/queue" ;;
  esac
}

# Starts the counting sink (on core 1); sets sink and sink_port.
start_sink() {
  rm -f "$work/sink.ports"
  taskset -c 1 "$loadgen" sink --grpc 127.0.0.1:0 --http none --report-interval 0 --ports-file "$work/sink.ports" \
    > "$work/sink.out" 2>&1 &
  sink=$!; pids+=("$sink")
  for _ in $(seq 100); do [ -s "$work/sink.ports" ] && break; sleep 0.05; done
  sink_port=$(sed -n 's/.*grpc=\([0-9]*\).*/\1/p' "$work/sink.ports")
}

# Writes $work/otlpd.yaml for the current scenario; sets gport, hport and endpoint.
write_config() {
  gport=$(free_port); hport=$(free_port)
  local exporter_block="" queue=""
  if [ -n "$storage" ]; then
    rm -rf "$storage"  # every run starts with an empty queue
    queue=", sending_queue: {storage: $storage}"
  fi
  for e in otlp otlp/2 otlp/3; do
    exporter_block+="  $e: {endpoint: 127.0.0.1:$sink_port, tls: {insecure: true}, compression: $compression$queue}"$'\n'
  done
  cat > "$work/otlpd.yaml" <<YAML
receivers:
  otlp:
    protocols:
      grpc: {endpoint: 127.0.0.1:$gport}
      http: {endpoint: 127.0.0.1:$hport}
processors:
  batch: {schedule_delay: 200ms, max_export_batch_size: 512}
exporters:
$exporter_block  file: {path: $work/out.bin, format: proto}
service:
  telemetry: {logs: {level: info}, metrics: {address: 127.0.0.1:0}}
  runtime: {worker_threads: 1}
  pipelines:
    traces: {receivers: [otlp], processors: [batch], exporters: $exporters}
YAML
  endpoint="127.0.0.1:$gport"; [ "$protocol" = grpc ] || endpoint="127.0.0.1:$hport"
}

stop() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

send() {  # extra loadgen arguments
  taskset -c 1 "$loadgen" send --signal traces --protocol "$protocol" --endpoint "$endpoint" \
    --items-per-request 100 $gzip "$@" | sed -n 's/^RESULT //p'
}

# Runs otlpd under a valgrind tool while the loadgen sends $1 requests; prints the tool's total
# (callgrind: instructions; dhat: heap blocks allocated).
valgrind_total() {
  local tool=$1 requests=$2
  start_sink
  write_config
  local out="$work/$tool.out"
  rm -f "$out"
  case $tool in
    callgrind) valgrind --tool=callgrind --callgrind-out-file="$out" "$otlpd" --config "$work/otlpd.yaml" \
                 > /dev/null 2> "$work/valgrind.err" & ;;
    dhat) valgrind --tool=dhat --dhat-out-file=/dev/null "$otlpd" --config "$work/otlpd.yaml" \
            > /dev/null 2> "$out" & ;;
  esac
  local daemon=$!; pids+=("$daemon")
  wait_port "${endpoint##*:}"
  local result; result=$(send --requests "$requests" --connections 1 --concurrency 4 --timeout 60s)
  local acked; acked=$(json_field "$result" "['items_acknowledged']")
  [ "$acked" = $((requests * 100)) ] || { echo "under $tool only $acked of $((requests * 100)) spans were acknowledged" >&2; }
  stop "$daemon"
  stop "$sink"
  case $tool in
    callgrind) sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$out" ;;
    dhat) sed -n 's/.*Total: *[0-9,]* bytes in \([0-9,]*\) blocks.*/\1/p' "$out" | tr -d , ;;
  esac
  rm -f "$work/out.bin"
}

# The pools' hit rate over the run, from the totals otlpd logs when it stops.
pool_hit_rate() {
  python3 - "$1" <<'PY'
import re, sys
hits = misses = 0
for line in open(sys.argv[1]):
    m = re.search(r"total otlpd_pool_(hits|misses)\{pool=\w+\} = (\d+)", line)
    if m:
        if m.group(1) == "hits": hits += int(m.group(2))
        else: misses += int(m.group(2))
print("%.2f%%" % (100.0 * hits / (hits + misses)) if hits + misses else "n/a")
PY
}

# Prints "instructions/span allocations/span" for the current scenario.
per_span_counts() {
  local small=50 large=450 spans=$(((450 - 50) * 100))
  local i0 i1 a0 a1
  i0=$(valgrind_total callgrind $small); i1=$(valgrind_total callgrind $large)
  a0=$(valgrind_total dhat $small); a1=$(valgrind_total dhat $large)
  echo "$(calc "int(($i1 - $i0) / $spans)") $(calc "'%.2f' % (($a1 - $a0) / $spans)")"
}

# Starts the sink and otlpd pinned to core 0 (with the chosen allocator and OTLPD_ENV, e.g.
# OTLPD_ENV=GRPC_POLL_STRATEGY=poll) for scenario $1, and waits until it listens; sets started.
start_pinned() {
  scenario_settings "$1"
  start_sink
  write_config
  env ${preload:+LD_PRELOAD=$preload} ${OTLPD_ENV:-} taskset -c 0 "$otlpd" --config "$work/otlpd.yaml" \
    > /dev/null 2> "$work/otlpd.err" &
  started=$!; pids+=("$started")
  wait_port "${endpoint##*:}"
}

run_scenario() {
  local s=$1
  start_pinned "$s"
  local daemon=$started
  sleep 1  # let start-up allocations settle before reading idle RSS
  local idle_rss; idle_rss=$(rss_kib "$daemon" VmRSS)
  local idle_anon; idle_anon=$(rss_kib "$daemon" RssAnon)
  local t0; t0=$(cpu_ticks "$daemon")
  local result; result=$(send --duration "${seconds}s" --connections 2 --concurrency 8)
  local t1; t1=$(cpu_ticks "$daemon")
  local acked; acked=$(json_field "$result" "['items_acknowledged']")
  local rate; rate=$(json_field "$result" "['items_per_s']")
  local cpu_share; cpu_share=$(calc "($t1-$t0)/$(getconf CLK_TCK)/$seconds")
  # Latency at half the rate.
  local half; half=$(calc "int($rate/2)")
  local lat; lat=$(send --duration 5s --rate "$half" --connections 2 --concurrency 8)
  local p50 p99; p50=$(json_field "$lat" "['latency_us']['p50']"); p99=$(json_field "$lat" "['latency_us']['p99']")
  local peak_rss; peak_rss=$(rss_kib "$daemon" VmHWM)
  stop "$daemon"
  stop "$sink"
  rm -f "$work/out.bin"
  local hit_rate; hit_rate=$(pool_hit_rate "$work/otlpd.err")
  local counts="n/a n/a"
  # valgrind replaces the allocator itself, so a preloaded one would not be what it counts.
  if [ "$valgrind_counts" = 1 ] && [ -z "$preload" ]; then counts=$(per_span_counts); fi
  local per_core; per_core=$(calc "int($acked/$seconds/max($cpu_share,0.01))")
  local cpu_per_10k; cpu_per_10k=$(calc "'%.2f%%' % (100*$cpu_share*10000/($acked/$seconds)) if $acked else 'n/a'")
  printf '| %s | %s | %d | %d | %s | %s | %s | %.1f | %.1f (%s anon) | %s | %s | %s |\n' "$s" "$(describe "$s")${allocator:+ [$allocator]}" \
    "$(calc "int($rate)")" "$per_core" "$cpu_per_10k" "$p50" "$p99" "$(calc "$peak_rss/1024")" \
    "$(calc "$idle_rss/1024")" "$(calc "'%.1f' % ($idle_anon/1024)")" $counts "$hit_rate"
}

# Steady load for $soak seconds; prints one row per 10 s sample of otlpd's RSS.
run_soak() {
  local s=$1
  start_pinned "$s"
  local daemon=$started
  send --duration "${soak}s" --rate "$soak_rate" --connections 2 --concurrency 8 > "$work/soak.result" &
  local load=$!
  echo "| elapsed s | otlpd RSS MiB | anonymous MiB | CPU share |"
  echo "|---|---|---|---|"
  local t_prev; t_prev=$(cpu_ticks "$daemon")
  local start; start=$(date +%s)
  for ((t = 10; t <= soak; t += 10)); do
    # Sample on the wall clock's 10 s marks, whatever the sampling itself costs.
    sleep "$(calc "max(0, $start + $t - $(date +%s.%N))")"
    local t_now; t_now=$(cpu_ticks "$daemon")
    printf '| %d | %.1f | %.1f | %.0f%% |\n' "$t" "$(calc "$(rss_kib "$daemon" VmRSS)/1024")" \
      "$(calc "$(rss_kib "$daemon" RssAnon)/1024")" "$(calc "100*($t_now-$t_prev)/$(getconf CLK_TCK)/10")"
    t_prev=$t_now
  done
  wait "$load"
  local result; result=$(sed -n 's/^RESULT //p' "$work/soak.result")
  [ -n "$result" ] || result=$(cat "$work/soak.result")
  echo
  echo "sent $(json_field "$result" "['items_sent']"), acknowledged $(json_field "$result" "['items_acknowledged']"), refused $(json_field "$result" "['items_refused_total']") spans at $soak_rate spans/s; peak RSS $(calc "'%.1f' % ($(rss_kib "$daemon" VmHWM)/1024)") MiB"
  stop "$daemon"
  stop "$sink"
}

if [ "$soak" -gt 0 ]; then
  [ ${#scenarios[@]} -le 1 ] || { echo "--soak runs one scenario" >&2; exit 2; }
  table=$(run_soak "${scenarios[0]}")
  echo "$table"
  if [ "$write" = 1 ]; then
    scenarios=("--soak $soak --rate $soak_rate ${scenarios[0]}")
  fi
else
table="| scenario | path | spans/s acknowledged | spans/s per otlpd core | otlpd CPU per 10k spans/s | p50 µs (half rate) | p99 µs (half rate) | peak RSS MiB | idle RSS MiB | instructions/span | heap allocations/span | pool hit rate |
|---|---|---|---|---|---|---|---|---|---|---|---|"
echo "$table"
for s in "${scenarios[@]}"; do
  row=$(run_scenario "$s")
  echo "$row"
  table+=$'\n'"$row"
done
fi

# --write: the table goes into docs/performance.md between markers naming this run's options,
# replacing the previous result of the same run and leaving the rest of the page alone.
if [ "$write" = 1 ]; then
  key="${allocator:-glibc} ${scenarios[*]}"
  block="<!-- bench: $key -->
Command: \`bench/run.sh --seconds $seconds${allocator:+ --allocator $allocator} --write ${scenarios[*]}\` · commit $(git rev-parse --short HEAD) ·
$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') · $(date -u +%Y-%m-%d)

$table
<!-- /bench -->"
  python3 - docs/performance.md "$key" "$block" <<'PY'
import os, re, sys
path, key, block = sys.argv[1:4]
text = open(path).read() if os.path.exists(path) else "# otlpd performance\n"
pattern = re.compile(r"<!-- bench: " + re.escape(key) + r" -->.*?<!-- /bench -->", re.S)
if pattern.search(text):
    text = pattern.sub(lambda _: block, text)
else:
    text = text.rstrip("\n") + "\n\n" + block + "\n"
open(path, "w").write(text)
PY
fi
