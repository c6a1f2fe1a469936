#!/usr/bin/env bash
# globaldns behind a real CoreDNS (conformance/coredns: an upstream release
# pinned in its go.mod, cut down to the plugins the wiring uses, built here
# with `go build`). One CoreDNS on loopback runs two server blocks:
#   sidecar: the Corefile manifests/sidecar/corefile.yaml ships, whose
#            `grpc global 127.0.0.1:8053` reaches `globaldns serve --grpc`;
#   forward: the block `globaldns stub-config --for coredns` prints, whose
#            `forward` reaches globaldns' plain DNS port.
# Only their ports change (health's moves to loopback too) and `bind
# 127.0.0.1` is added. Through each, over UDP and TCP: A, AAAA (NODATA), SRV,
# an unknown name (NXDOMAIN) and a mixed-case name, compared with what
# globaldns answers directly.
# Usage: tests/smoke/coredns.sh path/to/globaldns
# Needs go and dig. Go's module and build caches are its own ($GOMODCACHE,
# $GOCACHE, or their defaults under $HOME), never in the clone. Loopback only.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bin=$1
root=$(cd "$here/../.." && pwd)
harness=$root/conformance/coredns

# Each check prints ok or FAIL (lib.sh's fail prints the FAIL).
ok() { echo "ok: $1"; pass; }
# checked WHAT ...: lib.sh's expect, printing ok when it passed.
checked() {
  local before=$failures
  expect "$@"
  [ "$failures" -eq "$before" ] && echo "ok: $1"
}

command -v go >/dev/null || {
  echo "FAIL: go is not on PATH ($harness needs Go $(sed -n 's/^go //p' "$harness/go.mod"))" >&2
  exit 1
}

# --- CoreDNS -----------------------------------------------------------------
coredns=$SMOKE_DIR/coredns
echo "== go build $harness ($(sed -n 's|^require github.com/coredns/coredns ||p' "$harness/go.mod"), $(go version | cut -d' ' -f3))"
started=$(date +%s)
if ! (cd "$harness" && go build -buildvcs=false -o "$coredns" .) > "$SMOKE_DIR/go-build.log" 2>&1; then
  echo "FAIL: go build of $harness:" >&2
  cat "$SMOKE_DIR/go-build.log" >&2
  exit 1
fi
echo "== built in $(( $(date +%s) - started )) s: $("$coredns" -version | head -n1)"

# --- globaldns: DNS, gRPC and admin endpoints, each on a port it picks -------
start_globaldns "$bin" "$root/examples/registry.yaml" --grpc 127.0.0.1:0 --admin 127.0.0.1:0
# The gRPC and admin ports, each from the line that names it.
logged_port() {
  grep -F "\"message\":\"$1" "$GD_DIR/log" | sed -n 's/.*"addr":"127\.0\.0\.1:\([0-9]*\)".*/\1/p' | head -n1
}
for _ in $(seq 100); do
  dns_port=$GD_PORT
  grpc_port=$(logged_port "answering the CoreDNS gRPC protocol")
  admin_port=$(logged_port "admin endpoint")
  [ -n "$dns_port" ] && [ -n "$grpc_port" ] && [ -n "$admin_port" ] && break
  kill -0 "$GD_PID" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$dns_port" ] || [ -z "$grpc_port" ] || [ -z "$admin_port" ]; then
  echo "FAIL: globaldns did not log its DNS, gRPC and admin ports within 10 s (its log is below)" >&2
  exit 1
fi
GD_PORT=$dns_port
direct=(@127.0.0.1 -p "$dns_port")
echo "== globaldns: DNS 127.0.0.1:$dns_port, gRPC 127.0.0.1:$grpc_port, admin 127.0.0.1:$admin_port"

# --- the Corefile --------------------------------------------------------------
# The sidecar's Corefile: the ConfigMap's `Corefile: |` value.
shipped=$(awk '/^  Corefile: \|/ { on = 1; next }
  on && /^    / { print substr($0, 5); next }
  on && /^ *$/ { print ""; next }
  on { exit }' "$root/manifests/sidecar/corefile.yaml")
# The forward block, as printed for a globaldns at 127.0.0.1:$dns_port.
printed=$("$bin" stub-config --no-merge --for coredns --ip 127.0.0.1 --port "$dns_port") || {
  echo "FAIL: globaldns stub-config failed" >&2
  exit 1
}

# corefile SIDECAR_PORT FORWARD_PORT HEALTH_PORT: both blocks, on those ports.
corefile() {
  local sidecar=$1 forward=$2 health=$3
  # Server blocks listen on :53 in the cluster: here on the picked port, on
  # loopback only. The grpc plugin's upstream (8053 in the pod) is globaldns'
  # gRPC port; health (:8080, every interface, by default) moves to loopback.
  sed -e "s/^\([^ #][^ ]*\):53 {\$/\1:$sidecar {\n    bind 127.0.0.1/" \
      -e "s/^\( *grpc [^ ]*\) 127\.0\.0\.1:[0-9]*\$/\1 127.0.0.1:$grpc_port/" \
      -e "s/^\( *\)health\( [^ {]*\)\?\$/\1health 127.0.0.1:$health/" <<<"$shipped"
  sed -e "s/^\([^ #][^ ]*\):53 {\$/\1:$forward {\n    bind 127.0.0.1/" <<<"$printed"
}

# Fails when a manifest or stub-config's output changed shape in a way that
# the rewriting above no longer follows.
check_corefile() {
  local file=$1 sidecar=$2 forward=$3 health=$4 problems=()
  grep -q "^\.:$sidecar {\$" "$file" || problems+=("no '.:$sidecar {' block")
  grep -q "^ *grpc global 127\.0\.0\.1:$grpc_port\$" "$file" || problems+=("no 'grpc global 127.0.0.1:$grpc_port'")
  grep -q "^global:$forward {\$" "$file" || problems+=("no 'global:$forward {' block")
  grep -q "^ *forward \. 127\.0\.0\.1:$dns_port\$" "$file" || problems+=("no 'forward . 127.0.0.1:$dns_port'")
  [ "$(grep -c '^ *bind 127\.0\.0\.1$' "$file")" = 2 ] || problems+=("not two 'bind 127.0.0.1' lines")
  if grep -q '^ *health' "$file"; then
    grep -q "^ *health 127\.0\.0\.1:$health\$" "$file" || problems+=("health not moved to 127.0.0.1:$health")
  fi
  grep -v '^ *#' "$file" | grep -qE ':(53|8053)( |$)' && problems+=("a port of the cluster is left")
  [ ${#problems[@]} -eq 0 ] && return 0
  echo "FAIL: the Corefile made from manifests/sidecar/corefile.yaml and stub-config is not as" \
    "expected (${problems[*]}); update tests/smoke/coredns.sh:" >&2
  cat "$file" >&2
  exit 1
}

# --- CoreDNS on three free loopback ports --------------------------------------
# Tried again on other ports (5 tries) only when a port was taken between
# free_port and CoreDNS's bind. Each try has its own log; the last one is
# printed on the way out when anything failed.
conf=$SMOKE_DIR/Corefile
started=
for try in 1 2 3 4 5; do
  sidecar_port=$(free_port); forward_port=$(free_port); health_port=$(free_port)
  [ "$(printf '%s\n' "$sidecar_port" "$forward_port" "$health_port" | sort -u | wc -l)" = 3 ] || continue
  corefile "$sidecar_port" "$forward_port" "$health_port" > "$conf"
  check_corefile "$conf" "$sidecar_port" "$forward_port" "$health_port"
  cd_log=$SMOKE_DIR/coredns-$try.log
  SMOKE_LOGS+=("coredns (try $try)=$cd_log")
  { echo "== $coredns -conf $conf"; cat "$conf"; echo "=="; } > "$cd_log"
  "$coredns" -conf "$conf" >> "$cd_log" 2>&1 &
  cd_pid=$!
  if wait_for_dns "$sidecar_port" "$cd_pid" && wait_for_dns "$forward_port" "$cd_pid"; then
    SMOKE_PIDS+=("$cd_pid")
    started=1
    break
  fi
  if kill -0 "$cd_pid" 2>/dev/null; then
    echo "FAIL: CoreDNS did not answer DNS on 127.0.0.1:$sidecar_port and :$forward_port within 10 s" >&2
    kill "$cd_pid" 2>/dev/null
    wait "$cd_pid" 2>/dev/null
    exit 1
  fi
  wait "$cd_pid" 2>/dev/null
  grep -q 'address already in use' "$cd_log" || {
    echo "FAIL: CoreDNS exited at start (its log is below)" >&2
    exit 1
  }
done
if [ -z "$started" ]; then
  echo "FAIL: CoreDNS found a port taken in 5 tries (the last log is below)" >&2
  exit 1
fi
echo "== CoreDNS: sidecar block 127.0.0.1:$sidecar_port, forward block 127.0.0.1:$forward_port, health 127.0.0.1:$health_port"
sed 's/^/   | /' "$conf"

# --- helpers -------------------------------------------------------------------
# http_get PORT PATH: the body of an HTTP/1.0 GET on 127.0.0.1:PORT.
http_get() {
  timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" "$2" >&3
    cat <&3' _ "$1" "$2" | tr -d '\r' | sed '1,/^$/d'
}

# queries LABELS: globaldns_dns_queries_total{LABELS} (0 when absent).
queries() {
  http_get "$admin_port" /metrics |
    awk -v k="globaldns_dns_queries_total{$1}" '$1 == k { n = $2 } END { print n + 0 }'
}

# records DIG-ARGS...: the answer, authority and additional records, owner
# names lowercased and TTLs dropped (CoreDNS's cache counts them down).
records() {
  dig +tries=1 +time=2 +noall +answer +authority +additional "$@" 2>&1 |
    awk '{ $1 = tolower($1); $2 = ""; print }'
}

# same WHAT PORT TRANSPORT NAME TYPE: CoreDNS on PORT gives the records
# globaldns gives directly, over the same transport.
same() {
  local what=$1 port=$2 t=$3 name=$4 type=$5 want got
  want=$(records "${direct[@]}" "$t" "$name" "$type")
  got=$(records @127.0.0.1 -p "$port" "$t" "$name" "$type")
  if [ -n "$want" ] && [ "$got" = "$want" ]; then
    ok "$what"
  else
    fail "$what: records differ"$'\n'"-- globaldns:"$'\n'"$want"$'\n'"-- CoreDNS:"$'\n'"$got"
  fi
}

# owner_case WHAT PORT TRANSPORT NAME: the answer's owner name is NAME as asked.
owner_case() {
  local what=$1 port=$2 t=$3 name=$4 got
  got=$(dig +tries=1 +time=2 +noall +answer @127.0.0.1 -p "$port" "$t" "$name" A 2>&1)
  if [ "$(awk '{ print $1 }' <<<"$got")" = "$name." ]; then
    ok "$what"
  else
    fail "$what: want the owner $name., got:"$'\n'"$got"
  fi
}

# --- checks --------------------------------------------------------------------
vip=$(dig +short "${direct[@]}" httpbin.bar.global A)
case $vip in
  *.*.*.*) ok "globaldns answers httpbin.bar.global A directly: $vip" ;;
  *) fail "globaldns gave no VIP for httpbin.bar.global: '$vip'" ;;
esac

got=$(http_get "$health_port" /health)
[ "$got" = OK ] && ok "health plugin of the sidecar Corefile answers OK" \
  || fail "health plugin on 127.0.0.1:$health_port answered '$got'"

# The mixed-case name comes first in each block, so that the first one is
# relayed from globaldns rather than answered from CoreDNS's cache (the cache
# keys names in lower case and answers with the owner names it stored).
for block in sidecar forward; do
  if [ "$block" = sidecar ]; then port=$sidecar_port; else port=$forward_port; fi
  at=(@127.0.0.1 -p "$port")
  for t in +notcp +tcp; do
    if [ "$t" = +tcp ]; then tr=TCP; else tr=UDP; fi
    w="$block, $tr"
    owner_case "$w: mixed case echoed"        "$port" $t HttpBin.BAR.Global
    checked "$w: mixed case"                  NOERROR 1 -- "${at[@]}" $t HttpBin.BAR.Global A
    same "$w: mixed case as globaldns"        "$port" $t HttpBin.BAR.Global A
    checked "$w: A"                           NOERROR 1 -- "${at[@]}" $t httpbin.bar.global A
    got=$(dig +short "${at[@]}" $t httpbin.bar.global A)
    [ "$got" = "$vip" ] && ok "$w: A is the VIP $vip" || fail "$w: A is '$got', globaldns gave $vip"
    same "$w: A as globaldns"                 "$port" $t httpbin.bar.global A
    checked "$w: AAAA: NODATA"                NOERROR 0 -- "${at[@]}" $t httpbin.bar.global AAAA
    got=$(dig +noall +authority "${at[@]}" $t httpbin.bar.global AAAA | awk '{ print $1, $4 }')
    [ "$got" = "global. SOA" ] && ok "$w: AAAA: SOA in authority" || fail "$w: AAAA authority: '$got'"
    same "$w: AAAA as globaldns"              "$port" $t httpbin.bar.global AAAA
    checked "$w: SRV"                         NOERROR 1 -- "${at[@]}" $t _http1._tcp.httpbin.bar.global SRV
    same "$w: SRV as globaldns"               "$port" $t _http1._tcp.httpbin.bar.global SRV
    checked "$w: unknown name: NXDOMAIN"      NXDOMAIN 0 -- "${at[@]}" $t nothere.bar.global A
    same "$w: NXDOMAIN as globaldns"          "$port" $t nothere.bar.global A
  done
done

# Above, the TCP questions were answered from the cache that both blocks
# have. A name asked first over TCP goes through to globaldns: over gRPC from
# the sidecar block, over TCP from the forward one (forward keeps the
# client's transport). globaldns' counters tell which way each one came.
for block in sidecar forward; do
  if [ "$block" = sidecar ]; then port=$sidecar_port; via=grpc; else port=$forward_port; via=tcp; fi
  labels="qtype=\"A\",rcode=\"NOERROR\",transport=\"$via\""
  before=$(queries "$labels")
  checked "$block, TCP, not cached: A" NOERROR 1 -- @127.0.0.1 -p "$port" +tcp sleep.foo.global A
  after=$(queries "$labels")
  [ "$((after - before))" = 1 ] && ok "$block, TCP, not cached: globaldns answered it over $via" \
    || fail "$block: globaldns counted $((after - before)) A queries over $via, want 1"
  same "$block, TCP, not cached: A as globaldns" "$port" +tcp sleep.foo.global A
done

n=$(queries 'qtype="A",rcode="NOERROR",transport="grpc"')
[ "$n" -ge 2 ] && ok "globaldns answered $n A queries over gRPC" || fail "globaldns counted $n A queries over gRPC"

finish "coredns smoke"
