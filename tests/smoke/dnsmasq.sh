#!/usr/bin/env bash
# globaldns behind dnsmasq configured the way kube-dns configures it for a
# stubDomains entry: --server=/global/IP#PORT (from what `stub-config --for
# kube-dns` prints, rewritten as kube-dns' nanny does), --no-resolv, a
# 1000-entry cache. A, AAAA (NOERROR, not NXDOMAIN) and an unknown name;
# first, every form stub-config prints for kube-dns passes `dnsmasq --test`.
# Usage: tests/smoke/dnsmasq.sh path/to/globaldns
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bin=$1
root=$(cd "$here/../.." && pwd)

# A stubDomains server turned into dnsmasq's --server value the way
# kube-dns' dnsmasq-nanny does it (k8s.io/dns pkg/dnsmasq/nanny.go): the
# last colon becomes '#' when the value has one colon (IPv4:port) or a
# colon after a closing bracket ([IPv6]:port, brackets kept).
kube_dns_munge() {
  local s=$1 colons=${1//[^:]/}
  if [ ${#colons} -eq 1 ] || { [[ $s == *]* ]] && [[ ${s#*]} == *:* ]]; }; then
    s="${s%:*}#${s##*:}"
  fi
  echo "$s"
}
# The global zone's server in what `stub-config --for kube-dns` prints for
# IP and PORT; empty when it refuses (its message goes to $SMOKE_DIR/stub.err).
stub_server() {
  "$bin" stub-config --for kube-dns --no-merge --ip "$1" --port "$2" 2> "$SMOKE_DIR/stub.err" \
    | sed -n 's/.*"global": \["\([^"]*\)"\].*/\1/p'
}

# Issue 25: what stub-config prints must start kube-dns' dnsmasq. Each
# form, through the nanny's rewrite, checked by dnsmasq itself.
for server in 10.96.0.10:53 10.96.0.10:5353 "[fd00:10:96::a]:53"; do
  printed=$(stub_server "$(echo "${server%:*}" | tr -d '[]')" "${server##*:}")
  arg="--server=/global/$(kube_dns_munge "$printed")"
  if [ -n "$printed" ] && dnsmasq --test "$arg" > "$SMOKE_DIR/test.out" 2>&1; then
    pass
  else
    fail "stub-config for $server printed \"$printed\"; dnsmasq --test $arg: $(cat "$SMOKE_DIR/test.out" "$SMOKE_DIR/stub.err")"
  fi
done
# The form printed before (kube-dns' nanny keeps the brackets) is what
# dnsmasq refuses: the check above bites.
if dnsmasq --test "--server=/global/$(kube_dns_munge "[fd00:10:96::a]:5353")" > /dev/null 2>&1; then
  fail "dnsmasq took [fd00:10:96::a]#5353: the IPv6 check proves nothing"
else
  pass
fi
# IPv6 on another port has no form both take: refused, with what to do.
printed=$(stub_server fd00:10:96::a 5353)
if [ -z "$printed" ] && grep -q "kube-dns cannot forward to \[fd00:10:96::a\]:5353" "$SMOKE_DIR/stub.err"; then
  pass
else
  fail "stub-config for [fd00:10:96::a]:5353: printed \"$printed\", said: $(cat "$SMOKE_DIR/stub.err")"
fi

# The running dnsmasq forwards to globaldns as kube-dns would configure it
# from what stub-config prints.
start_globaldns "$bin" "$root/examples/registry.yaml"
server=$(kube_dns_munge "$(stub_server 127.0.0.1 "$GD_PORT")")
[ "$server" = "127.0.0.1#$GD_PORT" ] && pass || fail "kube-dns would give dnsmasq --server=/global/$server"
start_retrying dnsmasq dnsmasq --keep-in-foreground --user=root --port="{PORT}" \
  --listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts --cache-size=1000 \
  --no-negcache --dns-loop-detect --log-facility=- --server="/global/$server" --pid-file=
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
