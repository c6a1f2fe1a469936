#!/usr/bin/env bash
# Every row of the design §4 table, asked by dig over UDP and TCP.
# Usage: tests/smoke/dig.sh path/to/globaldns
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bin=$1

registry=$SMOKE_DIR/registry.yaml
cat > "$registry" <<'YAML'
clusters:
  - name: west
    gateways: [{address: 192.0.2.20}]
services:
  - name: httpbin
    namespace: bar
    exportedFrom: [west]
    ports: [{name: http1, number: 8000, protocol: HTTP}]
  - name: dual
    namespace: bar
    exportedFrom: [west]
    ports: [{name: tcp, number: 5000, protocol: TCP}]
    addresses: ['2001:db8::53']
  - name: big
    namespace: bar
    exportedFrom: [west]
    ports: [{name: tcp, number: 5001, protocol: TCP}]
    addresses: [198.51.100.1, 198.51.100.2, 198.51.100.3, 198.51.100.4, 198.51.100.5, 198.51.100.6, 198.51.100.7, 198.51.100.8, 198.51.100.9, 198.51.100.10, 198.51.100.11, 198.51.100.12, 198.51.100.13, 198.51.100.14, 198.51.100.15, 198.51.100.16, 198.51.100.17, 198.51.100.18, 198.51.100.19, 198.51.100.20, 198.51.100.21, 198.51.100.22, 198.51.100.23, 198.51.100.24, 198.51.100.25, 198.51.100.26, 198.51.100.27, 198.51.100.28, 198.51.100.29, 198.51.100.30, 198.51.100.31, 198.51.100.32, 198.51.100.33, 198.51.100.34, 198.51.100.35, 198.51.100.36, 198.51.100.37, 198.51.100.38, 198.51.100.39, 198.51.100.40]
YAML
start_globaldns "$bin" "$registry"
at=(@127.0.0.1 -p "$GD_PORT")

for t in +notcp +tcp; do
  expect "A known host ($t)"              NOERROR 1 aa '!ra' -- "${at[@]}" $t httpbin.bar.global A
  expect "AAAA with IPv6 ($t)"            NOERROR 1 aa -- "${at[@]}" $t dual.bar.global AAAA
  expect "AAAA without IPv6: NODATA ($t)" NOERROR 0 aa -- "${at[@]}" $t httpbin.bar.global AAAA
  expect "TXT: NODATA ($t)"               NOERROR 0 aa -- "${at[@]}" $t httpbin.bar.global TXT
  expect "SRV ($t)"                       NOERROR 1 aa -- "${at[@]}" $t _http1._tcp.httpbin.bar.global SRV
  expect "SOA at apex ($t)"               NOERROR 1 aa -- "${at[@]}" $t global SOA
  expect "NS at apex ($t)"                NOERROR 1 aa -- "${at[@]}" $t global NS
  expect "empty non-terminal ($t)"        NOERROR 0 aa -- "${at[@]}" $t bar.global A
  expect "unknown name ($t)"              NXDOMAIN 0 aa -- "${at[@]}" $t nothere.bar.global A
  expect "outside the zone ($t)"          REFUSED 0 '!aa' '!ra' -- "${at[@]}" $t example.com A
  expect "ANY: one RRset ($t)"            NOERROR 1 aa -- "${at[@]}" $t dual.bar.global ANY
  expect "TYPE666: NODATA ($t)"           NOERROR 0 aa -- "${at[@]}" $t httpbin.bar.global TYPE666
  expect "mixed case ($t)"                NOERROR 1 aa -- "${at[@]}" $t HttpBin.BAR.Global A
  expect "unknown opcode: NOTIMP ($t)"    NOTIMP 0 -- "${at[@]}" $t +opcode=15 +noquestion httpbin.bar.global A
  # RFC 1035 §4.1.1, RFC 4035 §3.2.2: RD and CD are for QUERY only.
  expect "unknown opcode: no RD, CD ($t)" NOTIMP 0 '!rd' '!cd' '!aa' -- "${at[@]}" $t +opcode=15 +cd +rec httpbin.bar.global A
  expect "QUERY: RD and CD echoed ($t)"   NOERROR 1 rd cd aa -- "${at[@]}" $t +cd +rec httpbin.bar.global A
  expect "NS target resolves ($t)"        NOERROR 1 aa -- "${at[@]}" $t ns.global A
  expect "EDNS version 1: BADVERS ($t)"   BADVERS 0 -- "${at[@]}" $t +edns=1 +noednsneg httpbin.bar.global A
  expect "header Z bit ($t)"              NOERROR 1 aa -- "${at[@]}" $t +zflag httpbin.bar.global A
  expect "unknown EDNS option ($t)"       NOERROR 1 aa -- "${at[@]}" $t +ednsopt=65001:abcd httpbin.bar.global A
done

# Negative answers carry the SOA, whose minimum is the negative TTL.
out=$(dig +tries=1 "${at[@]}" nothere.bar.global A)
grep -q $'^global\.\t*[0-9]*\tIN\tSOA\tns\.global\. hostmaster\.global\. [0-9]* 3600 600 86400 30$' <<<"$out" \
  && pass || fail "NXDOMAIN without the SOA: $out"

# The case of the question is echoed in the answer.
out=$(dig +tries=1 +noall +answer "${at[@]}" HttpBin.BAR.Global A)
grep -q '^HttpBin\.BAR\.Global\.' <<<"$out" && pass || fail "case not echoed: $out"

# RFC 2181 §9: an SRV whose additional addresses do not fit 512 bytes keeps
# its answer, drops the additional data, and is not truncated.
expect "SRV, additional dropped, no TC" NOERROR 1 aa '!tc' -- "${at[@]}" +noedns _tcp._tcp.big.bar.global SRV

# Too large for 512 bytes without EDNS: TC over UDP, complete over TCP.
expect "truncated over UDP" NOERROR 0 tc aa -- "${at[@]}" +ignore +noedns big.bar.global A
expect "complete over TCP"  NOERROR 40 aa '!tc' -- "${at[@]}" +tcp big.bar.global A
out=$(dig +tries=1 "${at[@]}" +ignore +noedns big.bar.global A 2>&1)
grep -q "extra bytes" <<<"$out" && fail "truncated reply has trailing bytes: $out" || pass
# With EDNS the OPT stays in the truncated reply (RFC 6891 §7).
out=$(dig +tries=1 "${at[@]}" +ignore +bufsize=512 big.bar.global A 2>&1)
grep -q "; EDNS: version: 0" <<<"$out" && pass || fail "OPT missing from the truncated reply: $out"
# dig retries over TCP by itself and gets everything.
expect "dig falls back to TCP" NOERROR 40 aa -- "${at[@]}" +noedns big.bar.global A

# EDNS: our payload size is advertised and the DO bit echoed.
out=$(dig +tries=1 "${at[@]}" +dnssec +bufsize=4096 httpbin.bar.global A)
grep -q "; EDNS: version: 0, flags: do; udp: 1232" <<<"$out" && pass || fail "EDNS not echoed right: $out"

# The VM example (examples/vm.yaml): a service no cluster exports, on VMs,
# still answers with its VIP, and its SRV names its port.
root=$(cd "$here/../.." && pwd)
vm_port_of_main=$GD_PORT
start_globaldns "$bin" "$root/examples/vm.yaml"
vm=(@127.0.0.1 -p "$GD_PORT")
expect "VM-hosted service: A"   NOERROR 1 aa -- "${vm[@]}" catalog.shop.global A
expect "VM-hosted service: SRV" NOERROR 1 aa -- "${vm[@]}" _http._tcp.catalog.shop.global SRV
GD_PORT=$vm_port_of_main

finish "dig smoke"
