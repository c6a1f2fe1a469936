#!/usr/bin/env bash
# The PrometheusRule CustomResourceDefinition, generated from the Go types
# of a prometheus-operator release (pinned in go.mod) by controller-gen, the
# way prometheus-operator generates its own. The end-to-end suite installs
# it to show that manifests/monitoring/prometheusrule.yaml is accepted by a
# real API server (GLOBALDNS_PROMETHEUS_CRDS).
#
#   conformance/monitoring/crd.sh OUT_FILE
#
# controller-gen is built once per machine into Go's cache directory (its
# build cache keeps the compiled packages, outside the clone).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUT_FILE" >&2; exit 2; }
out=$1
here=$(cd "$(dirname "$0")" && pwd)
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
cd "$here"
gen=$(go env GOCACHE)/globaldns-controller-gen-$(sha256sum go.sum | cut -c1-12)
if [ ! -x "$gen" ]; then
  started=$(date +%s)
  go build -buildvcs=false -o "$gen" sigs.k8s.io/controller-tools/cmd/controller-gen
  echo "== controller-gen built in $(( $(date +%s) - started )) s" >&2
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# maxDescLen=0: the descriptions are most of the text and none of the schema.
"$gen" crd:maxDescLen=0 \
  paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1 \
  output:crd:dir="$dir"
cp "$dir/monitoring.coreos.com_prometheusrules.yaml" "$out"
