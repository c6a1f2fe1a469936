#!/usr/bin/env bash
# Every benchmark of the scale issue in one run, printed as one report:
#
#   1. DNS beside Knot DNS and a do-nothing echo (bench/run.sh): UDP per
#      core, UDP workers, TCP, and p50/p99/p99.9 at a fixed 20,000 q/s,
#      with the ratios;
#   2. scale (bench/scale.py): cold start, warm start, RSS and
#      change-to-answer from 1,000 to 1,000,000 services; and in
#      Kubernetes mode (bench/k8s_change.rs), a change of one
#      ExportedService built by what changed beside a whole build;
#   3. Kubernetes mode end to end (bench/k8s_answer.py): change-to-answer
#      of a new ExportedService with 100 and 10,000 objects in the cluster
#      KUBECONFIG names (envtest's kube-up.sh will do); without KUBECONFIG
#      the report says it was not run;
#   4. sync at scale against a real API server (bench/sync_scale.rs):
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
  --quick) run_args=(10000 2 1); scale_args=(1000:json 10000:json 10000:yaml); k8s_args=(1000 10000); k8s_answer_args=(--changes 3 100 1000); sync_args=(1000 8 32) ;;
  "") run_args=(10000 5 3); scale_args=(); k8s_args=(1000 10000 100000); k8s_answer_args=(100 10000); sync_args=(10000 8 32) ;;
  *) echo "usage: bench/all.sh [--quick]" >&2; exit 2 ;;
esac

echo "# globaldns benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo
echo "## 1. DNS beside Knot DNS (bench/run.sh ${run_args[*]})"
echo
# run.sh builds the release binary; its per-run lines are left out here.
# Its tables are plain text: fenced, to read as they print.
echo '```'
bash bench/run.sh "${run_args[@]}" | sed -n '/^services:/p; /^== /,$p'
echo '```'
echo
echo "## 2. Scale (bench/scale.py ${scale_args[*]:-default sizes})"
echo
python3 bench/scale.py target/release/globaldns "${scale_args[@]}"
echo
cargo build --release --locked --example k8s-change 2>&1 | tail -n1
target/release/examples/k8s-change "${k8s_args[@]}"
echo
echo "## 3. Kubernetes mode, end to end (bench/k8s_answer.py ${k8s_answer_args[*]})"
echo
if [ -n "${KUBECONFIG:-}" ]; then
  python3 bench/k8s_answer.py target/release/globaldns "${k8s_answer_args[@]}"
else
  echo "not run: set KUBECONFIG to a cluster it may create namespaces and CRDs in"
  echo "(../shared/envtest/kube-up.sh starts one)."
fi
echo
echo "## 4. Sync at scale (sync-scale ${sync_args[*]})"
echo
if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -n "${GLOBALDNS_ISTIO_CRDS:-}" ]; then
  cargo build --release --locked --example sync-scale 2>&1 | tail -n1
  target/release/examples/sync-scale "${sync_args[@]}"
else
  echo "not run: set KUBEBUILDER_ASSETS (a directory with kube-apiserver and etcd)"
  echo "and GLOBALDNS_ISTIO_CRDS (Istio's CRDs), as .ci/run does."
fi
