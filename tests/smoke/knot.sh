#!/usr/bin/env bash
# The zone `globaldns zonefile` prints, served by a real primary (Knot) and
# transferred by a real secondary (a second Knot), through a change printed
# in the same second as the first version: the secondary must pick the
# change up, which it does only if the printed SOA serial grew (RFC 1982;
# a secondary keeps a zone whose serial did not). Issue 25: the serial used
# to be the current second, so such a change was never transferred.
# Usage: tests/smoke/knot.sh path/to/globaldns
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bin=$1
root=$(cd "$here/../.." && pwd)
command -v knotd >/dev/null || { echo "FAIL: knotd is not on PATH (Debian: knot)" >&2; exit 1; }

zone=$SMOKE_DIR/global.zone
registry=$SMOKE_DIR/registry.yaml
cp "$root/examples/registry.yaml" "$registry"
# print_zone OUT [FLAGS...]: the zone of $registry into OUT.
print_zone() {
  local out=$1; shift
  "$bin" zonefile --registry "$registry" --ns-address 127.0.0.1 "$@" > "$out"
}
serial() { awk '/ IN SOA / { print $7; exit }' "$1"; }

# Two versions printed one right after the other (the same second, as a
# script regenerating the zone on every change does): the example, then
# the example with one more service, printed after the first.
print_zone "$zone" || { echo "FAIL: globaldns zonefile" >&2; exit 1; }
printf '%s\n' "  - name: ratings" "    namespace: bar" "    exportedFrom: [west]" \
  "    ports:" "      - { name: http, number: 9080, protocol: HTTP }" >> "$registry"
print_zone "$SMOKE_DIR/second.zone" --previous "$zone" || fail "globaldns zonefile --previous"
first=$(serial "$zone")
second=$(serial "$SMOKE_DIR/second.zone")
[ "$second" -gt "$first" ] && pass || fail "the serial did not grow: $first, then $second"

# A Knot server from a config template: @PORT@ (the port it is started on)
# and {DIR} (its own directory) are filled in.
knot_config() { # knot_config NAME: writes $SMOKE_DIR/NAME/knot.tmpl from stdin
  mkdir -p "$SMOKE_DIR/$1"
  sed "s|{DIR}|$SMOKE_DIR/$1|g" > "$SMOKE_DIR/$1/knot.tmpl"
}
start_knot() { # start_knot NAME: sets NAME_PORT
  local dir=$SMOKE_DIR/$1
  start_retrying "knot-$1" bash -c \
    'sed "s/@PORT@/$1/" "$2/knot.tmpl" > "$2/knot.conf" && exec knotd -c "$2/knot.conf"' \
    _ "{PORT}" "$dir"
  printf -v "${1}_PORT" %s "$SMOKE_PORT"
}
knotc_in() { knotc -c "$SMOKE_DIR/$1/knot.conf" "${@:2}"; }

knot_config primary <<EOF
server:
    rundir: "{DIR}"
    listen: 127.0.0.1@@PORT@
database:
    storage: "{DIR}"
acl:
  - id: transfer
    address: 127.0.0.0/8
    action: transfer
zone:
  - domain: global
    file: "$zone"
    zonefile-sync: -1
    journal-content: none
    acl: transfer
EOF
start_knot primary
expect "the primary serves the printed zone" NOERROR 1 aa -- @127.0.0.1 -p "$primary_PORT" httpbin.bar.global A

knot_config secondary <<EOF
server:
    rundir: "{DIR}"
    listen: 127.0.0.1@@PORT@
database:
    storage: "{DIR}"
remote:
  - id: primary
    address: 127.0.0.1@$primary_PORT
zone:
  - domain: global
    master: primary
    file: "{DIR}/global.zone"
EOF
start_knot secondary
# transferred NAME: the secondary answers NAME's A record (within 10 s).
transferred() {
  for _ in $(seq 50); do
    [ -n "$(dig +short +tries=1 +time=1 @127.0.0.1 -p "$secondary_PORT" "$1" A)" ] && return 0
    sleep 0.2
  done
  return 1
}
transferred httpbin.bar.global && pass || fail "the secondary did not transfer the first zone"

# The second version replaces the first, as a deploy would; the primary
# reloads it and the secondary asks for the serial.
mv "$SMOKE_DIR/second.zone" "$zone"
knotc_in primary zone-reload global > /dev/null || fail "knotc zone-reload"
knotc_in secondary zone-refresh global > /dev/null || fail "knotc zone-refresh"
transferred ratings.bar.global && pass || fail "the secondary never transferred the change (serial $first, then $second)"
expect "the secondary answers the new service" NOERROR 1 aa -- @127.0.0.1 -p "$secondary_PORT" ratings.bar.global A
vip=$(dig +short @127.0.0.1 -p "$secondary_PORT" ratings.bar.global A)
grep -q "^ratings.bar.global. 30 IN A $vip\$" "$zone" && pass || fail "the secondary answers $vip, the zone file says otherwise"

# Printed again unchanged: the serial stays, so nothing is transferred.
print_zone "$SMOKE_DIR/again.zone" --previous "$zone"
again=$(serial "$SMOKE_DIR/again.zone")
[ "$again" = "$second" ] && pass || fail "an unchanged zone got serial $again after $second"

finish "knot smoke"
