#!/usr/bin/env bash
# Builds the pinned Helm (go.mod: helm.sh/helm/v4, as a `tool`) once per
# machine and prints the binary's path. The binary lives outside the clone,
# in $XDG_CACHE_HOME/globaldns (default ~/.cache/globaldns), under a key of
# go.mod, go.sum, this script and the Go version: it is rebuilt only when
# one of them changes. Go's own caches stay where Go puts them
# (GOMODCACHE, GOCACHE).
#
#   helm=$(conformance/helm/build.sh)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then PATH=$PATH:/usr/local/go/bin; fi
command -v go >/dev/null || { echo "go (1.26 or later) is needed and is not on PATH" >&2; exit 2; }
# The go.mod's own Go version is enough; never fetch another toolchain.
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

version=$(sed -n 's|^\thelm.sh/helm/v4 \(v[^ ]*\).*|\1|p' "$here/go.mod")
[ -n "$version" ] || { echo "$here/go.mod requires no helm.sh/helm/v4" >&2; exit 2; }
key=$(cat "$here/go.mod" "$here/go.sum" "$0" <(go version) | sha256sum | cut -c1-16)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/globaldns/helm-$version-$key
helm=$cache/helm
if [ ! -x "$helm" ]; then
  mkdir -p "$cache"
  started=$(date +%s)
  echo "== go build helm.sh/helm/v4/cmd/helm $version ($(go version | cut -d' ' -f3)) into $cache" >&2
  # Built to a temporary name and renamed: an interrupted build leaves no
  # binary that a later run would take for a finished one.
  # The version Helm's own release build stamps in (`helm version`).
  (cd "$here" && go build -buildvcs=false -trimpath \
    -ldflags "-X helm.sh/helm/v4/internal/version.version=$version" \
    -o "$helm.tmp" helm.sh/helm/v4/cmd/helm) >&2
  mv "$helm.tmp" "$helm"
  echo "== built in $(( $(date +%s) - started )) s" >&2
fi
echo "$helm"
