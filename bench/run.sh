#!/usr/bin/env bash
# Benchmark: globaldns against Knot DNS serving the same zone, side by side
# in one run, on the issue's query mix. Prints queries/second, latency, CPU
# used per query, and the ratio globaldns/Knot.
#
# Usage: bench/run.sh [SERVICES] [SECONDS] [ROUNDS]   (defaults 10000 10 3)
#
# Each round runs both servers in turn (alternating which goes first), the
# server pinned to CPU 0 and dnsperf to CPU 1. Medians over the rounds are
# reported, since the machine is shared and its speed drifts. CPU time is
# the kernel's accounting of the server process (/proc/PID/stat), so the
# per-query CPU figure holds even when dnsperf is the bottleneck.
set -euo pipefail
cd "$(dirname "$0")/.."
services=${1:-10000}
seconds=${2:-10}
rounds=${3:-3}

need=()
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v knotd >/dev/null || need+=(knot)
command -v taskset >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
cargo build --release --locked --bin globaldns 2>&1 | tail -n1
bin=target/release/globaldns

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

python3 bench/gen.py "$services" "$work/registry.yaml" "$work/queries.txt"
"$bin" zonefile --registry "$work/registry.yaml" > "$work/global.zone"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# globaldns, one worker thread, pinned to CPU 0.
gd_port=$(free_port)
TOKIO_WORKER_THREADS=1 taskset -c 0 "$bin" serve --registry "$work/registry.yaml" \
  --listen "127.0.0.1:$gd_port" --state-dir "$work/state" 2> "$work/globaldns.log" &
gd_pid=$!; pids+=("$gd_pid")

# Knot DNS, one UDP worker, pinned to CPU 0.
kn_port=$(free_port)
mkdir -p "$work/knot"
cat > "$work/knot.conf" <<KNOT
server:
    rundir: "$work/knot"
    listen: 127.0.0.1@$kn_port
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: warning
database:
    storage: "$work/knot"
zone:
  - domain: global
    file: "$work/global.zone"
    journal-content: none
    zonefile-sync: -1
KNOT
taskset -c 0 knotd -c "$work/knot.conf" 2> "$work/knot.log" &
kn_pid=$!; pids+=("$kn_pid")

wait_for() {
  for _ in $(seq 100); do
    dig +tries=1 +time=1 @127.0.0.1 -p "$1" svc-1.team-1.global A +short 2>/dev/null | grep -q . && return 0
    sleep 0.2
  done
  echo "server on port $1 did not answer; logs:" >&2
  cat "$work"/*.log >&2
  exit 1
}
wait_for "$gd_port"
wait_for "$kn_port"

# Both must give the same answers before their speed means anything.
for q in "svc-7.team-7.global A" "svc-7.team-7.global AAAA" "missing.team-7.global A"; do
  a=$(dig +tries=1 @127.0.0.1 -p "$gd_port" $q | grep -E "status:|^svc" | sed 's/id: [0-9]*//')
  b=$(dig +tries=1 @127.0.0.1 -p "$kn_port" $q | grep -E "status:|^svc" | sed 's/id: [0-9]*//')
  [ "$a" = "$b" ] || { echo "answers differ for $q:"; echo "$a"; echo "$b"; exit 1; }
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# run NAME PORT PID: one dnsperf run; appends "qps avg_latency_ms cpu_us_per_query".
run() {
  local name=$1 port=$2 pid=$3
  local before after out
  before=$(cpu_ticks "$pid")
  out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries.txt" -l "$seconds" -c 4 -T 1 -q 500 2>&1)
  after=$(cpu_ticks "$pid")
  local qps completed lat
  qps=$(sed -n 's/.*Queries per second: *\([0-9.]*\).*/\1/p' <<<"$out")
  completed=$(sed -n 's/.*Queries completed: *\([0-9]*\).*/\1/p' <<<"$out")
  lat=$(sed -n 's/.*Average Latency (s): *\([0-9.]*\).*/\1/p' <<<"$out")
  local cpu_s
  cpu_s=$(awk -v t=$((after - before)) -v hz="$hz" 'BEGIN{print t / hz}')
  awk -v q="$qps" -v l="$lat" -v c="$cpu_s" -v n="$completed" 'BEGIN{printf "%.0f %.3f %.2f %.0f\n", q, l * 1000, (n > 0 ? c * 1e6 / n : 0), (c > 0 ? n / c : 0)}' >> "$work/$name.runs"
  printf '  %-9s %s\n' "$name" "$(tail -n1 "$work/$name.runs")"
}

echo "services: $services, $seconds s per run, $rounds rounds; server on CPU 0, dnsperf on CPU 1"
echo "  server    qps  avg-latency-ms  cpu-us/query  queries/cpu-second"
for r in $(seq "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then
    run globaldns "$gd_port" "$gd_pid"; run knot "$kn_port" "$kn_pid"
  else
    run knot "$kn_port" "$kn_pid"; run globaldns "$gd_port" "$gd_pid"
  fi
done

median() { sort -n | awk '{a[NR]=$1} END{print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }
col() { awk -v c="$2" '{print $c}' "$work/$1.runs" | median; }
echo
printf '%-10s %12s %16s %14s %20s\n' server "qps(median)" "latency-ms" "cpu-us/query" "queries/cpu-second"
for s in globaldns knot; do
  printf '%-10s %12s %16s %14s %20s\n' "$s" "$(col $s 1)" "$(col $s 2)" "$(col $s 3)" "$(col $s 4)"
done
awk -v a="$(col globaldns 1)" -v b="$(col knot 1)" -v c="$(col globaldns 4)" -v d="$(col knot 4)" \
  'BEGIN{printf "\nratio globaldns/knot: qps %.2f, queries per CPU-second %.2f\n", a / b, (d > 0 ? c / d : 0)}'
