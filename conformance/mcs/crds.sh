#!/usr/bin/env bash
# The MCS API's CustomResourceDefinitions (ServiceExport, ServiceImport) as
# the release pinned in go.mod publishes them (its config/crd/), for the
# end-to-end suite (GLOBALDNS_MCS_CRDS): the real schemas, both versions
# served (v1alpha1, v1beta1), instead of the suite's own minimal one.
#
#   conformance/mcs/crds.sh OUT_FILE
#
# The module comes from the Go module proxy into Go's module cache.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUT_FILE" >&2; exit 2; }
out=$1
here=$(cd "$(dirname "$0")" && pwd)
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
cd "$here"
version=$(sed -n 's|^require sigs.k8s.io/mcs-api ||p' go.mod)
go mod download sigs.k8s.io/mcs-api
dir=$(go list -m -f '{{.Dir}}' sigs.k8s.io/mcs-api)
{
  cat "$dir/config/crd/multicluster.x-k8s.io_serviceexports.yaml"
  echo "---"
  cat "$dir/config/crd/multicluster.x-k8s.io_serviceimports.yaml"
} > "$out"
echo "== MCS CRDs of sigs.k8s.io/mcs-api $version" >&2
