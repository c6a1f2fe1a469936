#!/usr/bin/env bash
# Every benchmark of the scale issue in one run, printed as one report:
#
#   1. DNS beside Knot DNS and a do-nothing echo (bench/run.sh): UDP per
#      core, UDP workers, TCP, and p50/p99/p99.9 at a fixed 20,000 q/s,
#      with the ratios;
#   2. scale (bench/scale.py): cold start, warm start, RSS and
#      change-to-answer from 1,000 to 1,000,000 services;
#   3. sync at scale against a real API server (bench/sync_scale.rs):
#      10,000 new ServiceEntries from cold at concurrency 8 and 32, and a
#      steady-state pass, with the requests each made (audit log). Needs
#      KUBEBUILDER_ASSETS (kube-apiserver, etcd) and GLOBALDNS_ISTIO_CRDS;
#      without them the report says it was not run.
#
# Usage: bench/all.sh [--quick]
#   --quick: a smoke run of the same code paths in a few minutes (1 round of
#   2 s, scale up to 10,000 services, sync of 1,000); its figures are not
#   the ones to quote.
#
# Everything listens on 127.0.0.1 only. The machine is shared: quote the
# medians and ratios, and run it twice before trusting a digit.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  --quick) run_args=(10000 2 1); scale_args=(1000:json 10000:json 10000:yaml); sync_args=(1000 8 32) ;;
  "") run_args=(10000 5 3); scale_args=(); sync_args=(10000 8 32) ;;
  *) echo "usage: bench/all.sh [--quick]" >&2; exit 2 ;;
esac

echo "# globaldns benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo
echo "## 1. DNS beside Knot DNS (bench/run.sh ${run_args[*]})"
echo
# run.sh builds the release binary; its per-run lines are left out here.
bash bench/run.sh "${run_args[@]}" | sed -n '/^services:/p; /^== /,$p'
echo
echo "## 2. Scale (bench/scale.py ${scale_args[*]:-default sizes})"
echo
python3 bench/scale.py target/release/globaldns "${scale_args[@]}"
echo
echo "## 3. Sync at scale (sync-scale ${sync_args[*]})"
echo
if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -n "${GLOBALDNS_ISTIO_CRDS:-}" ]; then
  cargo build --release --locked --example sync-scale 2>&1 | tail -n1
  target/release/examples/sync-scale "${sync_args[@]}"
else
  echo "not run: set KUBEBUILDER_ASSETS (a directory with kube-apiserver and etcd)"
  echo "and GLOBALDNS_ISTIO_CRDS (Istio's CRDs), as .ci/run does."
fi
