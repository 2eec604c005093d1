#!/usr/bin/env bash
# Runs the benchmark scenarios and prints one table (also written to docs/performance.md with
# --write). otlpd is pinned to core 0; the load generator and sink share core 1.
#
#   bench/run.sh [--build DIR] [--seconds N] [--write] [scenario ...]   (default: a b c d e f)
#
# Per scenario: the highest sustained spans/s (load as fast as possible, counted as acknowledged
# by otlpd and received by the sink), otlpd CPU per 10,000 spans/s, p50/p99 request latency at half
# that rate, otlpd peak and idle RSS. 100 spans per request, ~10 attributes per span.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
seconds=10
write=0
scenarios=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --write) write=1; shift ;;
    *) scenarios+=("$1"); shift ;;
  esac
done
[ ${#scenarios[@]} -gt 0 ] || scenarios=(a b c d e f)
otlpd=$build/otlpd
loadgen=$build/otlpd-loadgen
work=$(mktemp -d /tmp/otlpd-bench-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json_field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])$2)" "$1"; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_kib() { awk -v k="$2" '$1==k":" {print $2}' "/proc/$1/status"; }

describe() {
  case $1 in
    a) echo "OTLP/gRPC -> batch -> otlp" ;;
    b) echo "OTLP/HTTP-protobuf -> batch -> otlp" ;;
    c) echo "OTLP/HTTP-JSON -> batch -> otlp" ;;
    d) echo "OTLP/gRPC -> batch -> file (proto)" ;;
    e) echo "OTLP/gRPC -> batch -> 3 x otlp" ;;
    f) echo "(a) with gzip both sides" ;;
  esac
}

run_scenario() {
  local s=$1 protocol=grpc gzip="" exporters="[otlp]" compression=none
  case $s in
    b) protocol=http-proto ;;
    c) protocol=http-json ;;
    d) exporters="[file]" ;;
    e) exporters="[otlp, otlp/2, otlp/3]" ;;
    f) gzip=--gzip; compression=gzip ;;
  esac
  # The sink.
  taskset -c 1 "$loadgen" sink --grpc 127.0.0.1:0 --http none --report-interval 0 --ports-file "$work/sink.ports" \
    > "$work/sink.out" 2>&1 &
  local sink=$!; pids+=("$sink")
  for _ in $(seq 100); do [ -s "$work/sink.ports" ] && break; sleep 0.05; done
  local sink_port; sink_port=$(sed -n 's/.*grpc=\([0-9]*\).*/\1/p' "$work/sink.ports")
  local gport hport; gport=$(free_port); hport=$(free_port)
  local exporter_block=""
  for e in otlp otlp/2 otlp/3; do
    exporter_block+="  $e: {endpoint: 127.0.0.1:$sink_port, tls: {insecure: true}, compression: $compression}"$'\n'
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
  telemetry: {logs: {level: warn}}
  runtime: {worker_threads: 1}
  pipelines:
    traces: {receivers: [otlp], processors: [batch], exporters: $exporters}
YAML
  taskset -c 0 "$otlpd" --config "$work/otlpd.yaml" > /dev/null 2> "$work/otlpd.err" &
  local daemon=$!; pids+=("$daemon")
  sleep 1
  local idle_rss; idle_rss=$(rss_kib "$daemon" VmRSS)
  local endpoint="127.0.0.1:$gport"; [ "$protocol" = grpc ] || endpoint="127.0.0.1:$hport"
  local t0; t0=$(cpu_ticks "$daemon")
  local result; result=$(taskset -c 1 "$loadgen" send --signal traces --protocol "$protocol" --endpoint "$endpoint" \
    --duration "${seconds}s" --connections 2 --concurrency 8 --items-per-request 100 $gzip | sed -n 's/^RESULT //p')
  local t1; t1=$(cpu_ticks "$daemon")
  local acked; acked=$(json_field "$result" "['items_acknowledged']")
  local rate; rate=$(json_field "$result" "['items_per_s']")
  local cpu_share; cpu_share=$(python3 -c "print(($t1-$t0)/$(getconf CLK_TCK)/$seconds)")
  # Latency at half the rate.
  local half; half=$(python3 -c "print(int($rate/2))")
  local lat; lat=$(taskset -c 1 "$loadgen" send --signal traces --protocol "$protocol" --endpoint "$endpoint" \
    --duration 5s --rate "$half" --connections 2 --concurrency 8 --items-per-request 100 $gzip | sed -n 's/^RESULT //p')
  local p50 p99; p50=$(json_field "$lat" "['latency_us']['p50']"); p99=$(json_field "$lat" "['latency_us']['p99']")
  local peak_rss; peak_rss=$(rss_kib "$daemon" VmHWM)
  kill -TERM "$daemon"; wait "$daemon" 2>/dev/null || true
  kill -TERM "$sink"; wait "$sink" 2>/dev/null || true
  local per_core; per_core=$(python3 -c "print(int($acked/$seconds/max($cpu_share,0.01)))")
  local cpu_per_10k; cpu_per_10k=$(python3 -c "r=$acked/$seconds; print('%.2f%%' % (100*$cpu_share*10000/r) if r else 'n/a')")
  printf '| %s | %s | %d | %d | %s | %s | %s | %.1f | %.1f |\n' "$s" "$(describe "$s")" "$(python3 -c "print(int($rate))")" \
    "$per_core" "$cpu_per_10k" "$p50" "$p99" "$(python3 -c "print($peak_rss/1024)")" "$(python3 -c "print($idle_rss/1024)")"
  rm -f "$work/sink.ports" "$work/out.bin"
}

table="| scenario | path | spans/s acknowledged | spans/s per otlpd core | otlpd CPU per 10k spans/s | p50 µs (half rate) | p99 µs (half rate) | peak RSS MiB | idle RSS MiB |
|---|---|---|---|---|---|---|---|---|"
echo "$table"
for s in "${scenarios[@]}"; do
  row=$(run_scenario "$s")
  echo "$row"
  table+=$'\n'"$row"
done

if [ "$write" = 1 ]; then
  {
    echo "# otlpd performance"
    echo
    echo "Command: \`bench/run.sh --seconds $seconds --write ${scenarios[*]}\` · commit $(git rev-parse --short HEAD) ·"
    echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') · $(date -u +%Y-%m-%d)"
    echo
    echo "$table"
  } > docs/performance.md
fi
