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
start_retrying dnsmasq dnsmasq --keep-in-foreground --user=root --port="{PORT}" \
  --listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts --cache-size=1000 \
  --no-negcache --dns-loop-detect --log-facility=- --server="/global/127.0.0.1#$GD_PORT" --pid-file=
dm_port=$SMOKE_PORT
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
