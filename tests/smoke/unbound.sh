#!/usr/bin/env bash
# globaldns behind unbound priming a stub zone (`stub-prime: yes`), with
# DNSSEC validation configured and `global` declared insecure, as the
# README's DNS wiring section says a validating resolver needs.
#
# Priming asks the zone for its NS set and from then on queries the NS
# targets' addresses on port 53 (the stub-addr port is used for priming
# only): `ns.global` must resolve (design §4), and globaldns must answer
# on port 53 there. So globaldns listens on a loopback address of its own
# on port 53 (root is needed, as in CI) with --ns-address set to it.
# Without the NS target's addresses every name in the zone is SERVFAIL.
# Usage: tests/smoke/unbound.sh path/to/globaldns
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bin=$1
root=$(cd "$here/../.." && pwd)

# A loopback address with port 53 free for UDP and TCP.
ns_ip=
for ip in 127.0.53.1 127.0.53.2 127.0.53.3 127.0.53.4; do
  if python3 - "$ip" 2>/dev/null <<'PY'
import socket, sys
for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], 53))
    s.close()
PY
  then ns_ip=$ip; break; fi
done
[ -n "$ns_ip" ] || { echo "no loopback address with port 53 free (root needed)" >&2; exit 1; }

GD_LISTEN=$ns_ip:53 start_globaldns "$bin" "$root/examples/registry.yaml" --ns-address "$ns_ip"

# The root's KSK-2017 as trust anchor: validation is on, so only
# `domain-insecure` lets the unsigned answers through.
template=$SMOKE_DIR/unbound.conf.in
cat > "$template" <<EOF
server:
  interface: 127.0.0.1
  port: @PORT@
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$SMOKE_DIR"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 2
  do-ip6: no
  do-not-query-localhost: no
  trust-anchor: ". DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"
  domain-insecure: "global"
stub-zone:
  name: "global"
  stub-addr: $ns_ip@53
  stub-prime: yes
EOF
start_retrying unbound bash -c \
  "sed 's/@PORT@/{PORT}/' '$template' > '$SMOKE_DIR/unbound-{PORT}.conf' && exec unbound -d -p -c '$SMOKE_DIR/unbound-{PORT}.conf'"
ub_log=$SMOKE_DIR/unbound.log
at=(@127.0.0.1 -p "$SMOKE_PORT")

vip=$(dig +short @"$ns_ip" -p 53 httpbin.bar.global A)
expect "A through unbound"            NOERROR 1 -- "${at[@]}" httpbin.bar.global A
got=$(dig +short "${at[@]}" httpbin.bar.global A)
[ "$got" = "$vip" ] && pass || fail "unbound answered $got, globaldns $vip"
grep -q "priming successful for global. NS IN" "$ub_log" && pass || fail "unbound did not prime the stub zone"
expect "AAAA through unbound: NODATA" NOERROR 0 -- "${at[@]}" httpbin.bar.global AAAA
expect "unknown name through unbound" NXDOMAIN 0 -- "${at[@]}" nothere.bar.global A
expect "SRV through unbound"          NOERROR 1 -- "${at[@]}" _http1._tcp.httpbin.bar.global SRV
got=$(dig +short "${at[@]}" ns.global A)
[ "$got" = "$ns_ip" ] && pass || fail "ns.global through unbound: $got, want $ns_ip"
# unbound does not pass the AD bit for an insecure zone.
expect "no AD for the insecure zone"  NOERROR 1 '!ad' -- "${at[@]}" +dnssec sleep.foo.global A

finish "unbound smoke"
