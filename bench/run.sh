#!/usr/bin/env bash
# Benchmark: globaldns against Knot DNS serving the same zone, and against a
# do-nothing recvmmsg/sendmmsg echo (the machine's ceiling), side by side in
# one run, on the issue's query mix (80% A hits, 10% AAAA for known names,
# 10% unknown names). Prints the ratios the performance issue asks for.
#
# Usage: bench/run.sh [SERVICES] [SECONDS] [ROUNDS]   (defaults 10000 5 3)
#
# Phases, each with every server in turn (the order rotates per round):
#   udp      one core each: the server pinned to CPU 0 with one UDP worker,
#            dnsperf pinned to CPU 1. The headline: queries answered per
#            CPU-second of the server process, from the kernel's accounting
#            (/proc/PID/stat utime+stime), so it holds even when dnsperf is
#            the bottleneck.
#   latency  a fixed 20,000 queries/second, every query's latency logged by
#            dnsperf -v: percentiles p50/p99/p99.9 per round (server on CPU 0,
#            dnsperf and everything reading its output on CPU 1).
#   workers  1 and 2 UDP workers, nothing pinned (the load generator shares
#            the two cores).
#   tcp      dnsperf -m tcp: 4 connections, up to 500 queries in flight
#            (pipelined), server on CPU 0.
# Medians over the rounds are reported: the machine is shared and its speed
# drifts by tens of percent from minute to minute, so only ratios measured
# in the same run mean anything.
set -euo pipefail
cd "$(dirname "$0")/.."
services=${1:-10000}
seconds=${2:-5}
rounds=${3:-3}

need=()
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v knotd >/dev/null || need+=(knot)
command -v taskset >/dev/null || need+=(util-linux)
command -v dig >/dev/null || need+=(bind9-dnsutils)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
cargo build --release --locked --bin globaldns --example udp-echo 2>&1 | tail -n1
bin=target/release/globaldns
echo_bin=target/release/examples/udp-echo

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

python3 bench/gen.py "$services" "$work/registry.yaml" "$work/queries.txt"
"$bin" zonefile --registry "$work/registry.yaml" > "$work/global.zone"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
declare -A port pid

# start NAME CPUS COMMAND...: runs a server on the given CPUs ("" for any).
start() {
  local name=$1 cpus=$2; shift 2
  if [ -n "$cpus" ]; then
    taskset -c "$cpus" "$@" 2> "$work/$name.log" &
  else
    "$@" 2> "$work/$name.log" &
  fi
  pid[$name]=$!; pids+=("$!")
}

globaldns() { # NAME CPUS WORKERS
  port[$1]=$(free_port)
  start "$1" "$2" "$bin" serve --registry "$work/registry.yaml" --listen "127.0.0.1:${port[$1]}" \
    --state-dir "$work/state-$1" --udp-workers "$3" --admin off
}

knot() { # NAME CPUS WORKERS
  port[$1]=$(free_port)
  mkdir -p "$work/$1"
  cat > "$work/$1.conf" <<KNOT
server:
    rundir: "$work/$1"
    listen: 127.0.0.1@${port[$1]}
    udp-workers: $3
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: warning
database:
    storage: "$work/$1"
zone:
  - domain: global
    file: "$work/global.zone"
    journal-content: none
    zonefile-sync: -1
KNOT
  start "$1" "$2" knotd -c "$work/$1.conf"
}

globaldns globaldns 0 1
knot knot 0 1
port[echo]=$(free_port)
start echo 0 "$echo_bin" "127.0.0.1:${port[echo]}"
globaldns globaldns-1w "" 1
globaldns globaldns-2w "" 2
knot knot-2w "" 2

wait_for() {
  for _ in $(seq 100); do
    dig +tries=1 +time=1 @127.0.0.1 -p "${port[$1]}" svc-1.team-1.global A +short 2>/dev/null | grep -q . && return 0
    sleep 0.2
  done
  echo "$1 on port ${port[$1]} did not answer; logs:" >&2
  cat "$work"/*.log >&2
  exit 1
}
for s in globaldns knot globaldns-1w globaldns-2w knot-2w; do wait_for "$s"; done

# Both must give the same answers before their speed means anything.
for q in "svc-7.team-7.global A" "svc-7.team-7.global AAAA" "missing.team-7.global A"; do
  a=$(dig +tries=1 @127.0.0.1 -p "${port[globaldns]}" $q | grep -E "status:|^svc" | sed 's/id: [0-9]*//')
  b=$(dig +tries=1 @127.0.0.1 -p "${port[knot]}" $q | grep -E "status:|^svc" | sed 's/id: [0-9]*//')
  [ "$a" = "$b" ] || { echo "answers differ for $q:"; echo "$a"; echo "$b"; exit 1; }
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# measure PHASE NAME DNSPERF-CPUS DNSPERF-ARGS...: one dnsperf run against
# NAME; appends "qps avg-latency-ms cpu-us/query queries/cpu-second" to
# $work/PHASE.NAME.
measure() {
  local phase=$1 name=$2 cpus=$3; shift 3
  local before after out
  local -a pin=()
  [ -n "$cpus" ] && pin=(taskset -c "$cpus")
  before=$(cpu_ticks "${pid[$name]}")
  out=$("${pin[@]}" dnsperf -s 127.0.0.1 -p "${port[$name]}" -d "$work/queries.txt" -l "$seconds" "$@" 2>&1)
  after=$(cpu_ticks "${pid[$name]}")
  local qps completed lat cpu_s
  qps=$(sed -n 's/.*Queries per second: *\([0-9.]*\).*/\1/p' <<<"$out")
  completed=$(sed -n 's/.*Queries completed: *\([0-9]*\).*/\1/p' <<<"$out")
  lat=$(sed -n 's/.*Average Latency (s): *\([0-9.]*\).*/\1/p' <<<"$out")
  cpu_s=$(awk -v t=$((after - before)) -v hz="$hz" 'BEGIN{print t / hz}')
  awk -v q="$qps" -v l="$lat" -v c="$cpu_s" -v n="$completed" \
    'BEGIN{printf "%.0f %.3f %.2f %.0f\n", q, l * 1000, (n > 0 ? c * 1e6 / n : 0), (c > 0 ? n / c : 0)}' \
    >> "$work/$phase.$name"
  printf '  %-8s %-13s %s\n' "$phase" "$name" "$(tail -n1 "$work/$phase.$name")"
}

# rotate PHASE DNSPERF-CPUS "SERVERS" DNSPERF-ARGS...: every round runs each
# server once, starting one further along the list each time.
rotate() {
  local phase=$1 cpus=$2; shift 2
  local -a servers
  read -r -a servers <<<"$1"; shift
  local n=${#servers[@]}
  for r in $(seq 0 $((rounds - 1))); do
    for i in $(seq 0 $((n - 1))); do
      measure "$phase" "${servers[$(((r + i) % n))]}" "$cpus" "$@"
    done
  done
}

median() { sort -n | awk '{a[NR]=$1} END{print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }
col() { awk -v c="$3" '{print $c}' "$work/$1.$2" | median; }
# rr PHASE A B COL: the median over rounds of A/B, each round's pair
# measured minutes apart at most, so drift between rounds cancels out.
rr() {
  paste -d' ' <(awk -v c="$4" '{print $c}' "$work/$1.$2") <(awk -v c="$4" '{print $c}' "$work/$1.$3") \
    | awk '{print ($2 > 0 ? $1 / $2 : 0)}' | median | awk '{printf "%.2f", $1}'
}
table() { # PHASE SERVERS...
  local phase=$1; shift
  printf '  %-13s %10s %11s %13s %19s\n' server qps latency-ms cpu-us/query queries/cpu-second
  for s in "$@"; do
    printf '  %-13s %10s %11s %13s %19s\n' "$s" "$(col "$phase" "$s" 1)" "$(col "$phase" "$s" 2)" \
      "$(col "$phase" "$s" 3)" "$(col "$phase" "$s" 4)"
  done
}

echo "services: $services; $seconds s per run, $rounds rounds; $(nproc) CPUs: $(sed -n 's/^model name\t: //p' /proc/cpuinfo | head -n1)"
echo "each line: qps avg-latency-ms cpu-us/query queries/cpu-second"
rotate udp 1 "globaldns knot echo" -c 4 -T 1 -q 500
# latency: every round, each server in turn (the order rotates) at a fixed
# 20,000 queries/second. The whole pipeline stays on CPU 1: an unpinned awk
# reading dnsperf's per-query lines ran on CPU 0 beside the server (perf
# sched showed it there for 300 ms of a 5 s run) and added to the tail it
# was measuring.
pct() { awk -v p="$2" '{a[NR]=$1} END{i=int(NR*p/100); if (i < 1) i = 1; printf "%.0f", a[i]}' "$1"; }
for r in $(seq 0 $((rounds - 1))); do
  for i in 0 1; do
    s=$([ $(((r + i) % 2)) = 0 ] && echo globaldns || echo knot)
    taskset -c 1 dnsperf -s 127.0.0.1 -p "${port[$s]}" -d "$work/queries.txt" -l "$seconds" \
      -Q 20000 -c 4 -v > "$work/raw" 2>/dev/null
    taskset -c 1 awk '/^> /{print $NF * 1e6}' "$work/raw" | taskset -c 1 sort -n > "$work/lat"
    echo "$(pct "$work/lat" 50) $(pct "$work/lat" 99) $(pct "$work/lat" 99.9) $(wc -l < "$work/lat")" \
      >> "$work/latency.$s"
    printf '  %-8s %-13s %s\n' latency "$s" "$(tail -n1 "$work/latency.$s")"
  done
done
rotate workers "" "globaldns-1w globaldns-2w knot-2w" -c 4 -T 2 -q 500
rotate tcp 1 "globaldns knot" -m tcp -c 4 -T 1 -q 500


echo
echo "== UDP, one core (server on CPU 0, dnsperf on CPU 1), medians"
table udp globaldns knot echo
echo
echo "== latency at 20,000 queries/second (microseconds), medians over rounds"
printf '  %-13s %8s %8s %8s %8s\n' server p50 p99 p99.9 queries
for s in globaldns knot; do
  printf '  %-13s %8s %8s %8s %8s\n' "$s" "$(col latency "$s" 1)" "$(col latency "$s" 2)" \
    "$(col latency "$s" 3)" "$(col latency "$s" 4)"
done
echo
echo "== UDP workers (nothing pinned; dnsperf shares the cores), medians"
table workers globaldns-1w globaldns-2w knot-2w
echo
echo "== TCP, 4 pipelined connections (server on CPU 0), medians"
table tcp globaldns knot
echo
echo "== ratios (median over rounds of the ratio within each round)"
echo "  UDP queries per CPU-second:  globaldns/knot $(rr udp globaldns knot 4)   globaldns/echo $(rr udp globaldns echo 4)   knot/echo $(rr udp knot echo 4)"
echo "  UDP queries per second:      globaldns/knot $(rr udp globaldns knot 1)   globaldns/echo $(rr udp globaldns echo 1)"
echo "  UDP 2 workers / 1 worker:    globaldns qps $(rr workers globaldns-2w globaldns-1w 1)"
echo "  latency at 20,000 q/s:       globaldns/knot p50 $(rr latency globaldns knot 1)   p99 $(rr latency globaldns knot 2)   p99.9 $(rr latency globaldns knot 3)"
echo "  TCP queries per CPU-second:  globaldns/knot $(rr tcp globaldns knot 4)   queries per second: $(rr tcp globaldns knot 1)"
