#!/usr/bin/env bash
# globaldns behind dnsmasq configured the way kube-dns configures it for a
# stubDomains entry: --server=/global/IP#PORT, --no-resolv, a 1000-entry
# cache. A, AAAA (NOERROR, not NXDOMAIN) and an unknown name.
# Usage: tests/smoke/dnsmasq.sh path/to/globaldns
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bin=$1
root=$(cd "$here/../.." && pwd)

start_globaldns "$bin" "$root/examples/registry.yaml"
# A free port for dnsmasq, picked by the kernel.
dm_port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dnsmasq --keep-in-foreground --user=root --port="$dm_port" --listen-address=127.0.0.1 --bind-interfaces \
  --no-resolv --no-hosts --cache-size=1000 --no-negcache --dns-loop-detect --log-facility=- \
  --server="/global/127.0.0.1#$GD_PORT" --pid-file= > "$GD_DIR/dnsmasq.log" 2>&1 &
dm_pid=$!
trap 'kill $GD_PID $dm_pid 2>/dev/null; rm -rf "$GD_DIR"' EXIT
for _ in $(seq 50); do
  dig +tries=1 +time=1 @127.0.0.1 -p "$dm_port" global SOA >/dev/null 2>&1 && break
  sleep 0.1
done
at=(@127.0.0.1 -p "$dm_port")

vip=$(dig +short @127.0.0.1 -p "$GD_PORT" httpbin.bar.global A)
expect "A through dnsmasq"            NOERROR 1 -- "${at[@]}" httpbin.bar.global A
got=$(dig +short "${at[@]}" httpbin.bar.global A)
[ "$got" = "$vip" ] && pass || fail "dnsmasq answered $got, globaldns $vip"
expect "AAAA through dnsmasq: NODATA" NOERROR 0 -- "${at[@]}" httpbin.bar.global AAAA
expect "unknown name through dnsmasq" NXDOMAIN 0 -- "${at[@]}" nothere.bar.global A
expect "SRV through dnsmasq"          NOERROR 1 -- "${at[@]}" _http1._tcp.httpbin.bar.global SRV
expect "cached A through dnsmasq"     NOERROR 1 -- "${at[@]}" HTTPBIN.bar.global A

finish "dnsmasq smoke"
