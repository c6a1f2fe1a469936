#!/usr/bin/env bash
# The Istio oracle: render every case with the given globaldns binary, then
# let Istio's own code judge the objects (go test in this directory).
#
#   conformance/istio/run.sh BINARY [go test flags...]
#   conformance/istio/run.sh target/debug/globaldns -run 'TestSidecar/bookinfo' -v
#
# Go's caches stay where Go puts them (GOMODCACHE, GOCACHE; by default under
# $HOME), never in the clone. Exits non-zero when a render or a test fails.
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 BINARY [go test flags...]" >&2
  exit 2
fi
bin=$(realpath "$1")
shift
[ -x "$bin" ] || { echo "$bin is not an executable globaldns" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then PATH=$PATH:/usr/local/go/bin; fi
command -v go >/dev/null || { echo "go (1.26 or later) is needed and is not on PATH" >&2; exit 2; }
# The go.mod's own Go version is enough; never fetch another toolchain.
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# render CASE REGISTRY "CLUSTER..." [render flags...]
# Writes CASE/registry.yaml, CASE/flags, CASE/CLUSTER.yaml per cluster, and
# CASE/zone.txt: the zones as DNS serves them (the VIPs the sidecars must match).
render() {
  local name=$1 reg=$2 clusters=$3
  shift 3
  mkdir -p "$out/$name"
  cp "$reg" "$out/$name/registry.yaml"
  printf '%s\n' "$@" > "$out/$name/flags"
  for c in $clusters; do
    "$bin" render --registry "$reg" --cluster "$c" "$@" > "$out/$name/$c.yaml"
  done
  local dnsflags=() args=("$@") i
  for ((i = 0; i < ${#args[@]}; i++)); do
    case ${args[i]} in
      --zone | --clusterset-zone | --vip-range | --vip-range-v6) dnsflags+=("${args[i]}" "${args[i + 1]}") ;;
      --no-per-cluster-names) dnsflags+=("${args[i]}") ;;
    esac
  done
  "$bin" zonefile --registry "$reg" "${dnsflags[@]}" > "$out/$name/zone.txt"
}

ex=$repo/examples
render registry "$ex/registry.yaml" "east west"
render bookinfo "$ex/bookinfo.yaml" "cluster1 cluster2"
render vm "$ex/vm.yaml" "east west"
render two-zones "$ex/bookinfo.yaml" "cluster1 cluster2" --zone global --zone region
render selector "$ex/registry.yaml" "east west" --gateway-selector app=globaldns-ew-gateway,istio=eastwestgateway-2
render destination-rules "$ex/registry.yaml" "east west" --destination-rules
render tcp "$here/testdata/tcp.yaml" "alpha beta"
render ipv6 "$here/testdata/tcp.yaml" "alpha beta" --vip-range-v6 fd00:6c6f:6261:6c00::/64
render api-v1beta1 "$ex/registry.yaml" "east west" --istio-api-version v1beta1
render api-v1alpha3 "$ex/bookinfo.yaml" "cluster1 cluster2" --istio-api-version v1alpha3
render no-per-cluster-names "$ex/bookinfo.yaml" "cluster1 cluster2" --no-per-cluster-names
render failover "$ex/failover.yaml" "east west south north"
render failover-eds "$here/testdata/failover.yaml" "east west south north"
render clusterset "$ex/bookinfo.yaml" "cluster1 cluster2" --clusterset-zone clusterset.local
cases=("$out"/*/)
echo "rendered ${#cases[@]} cases with $bin"

cd "$here"
GLOBALDNS_RENDERED=$out go test -count=1 "$@" .
