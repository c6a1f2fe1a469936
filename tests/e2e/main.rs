//! End-to-end: globaldns against a real Kubernetes API server, as the
//! `globaldns` ServiceAccount with the RBAC and the kustomized manifests
//! exactly as shipped.
//!
//! ```sh
//! # a control plane started for the run (envtest binaries, v1.28+):
//! KUBEBUILDER_ASSETS=/path/to/envtest GLOBALDNS_ISTIO_CRDS=crd-all.gen.yaml \
//!   GLOBALDNS_PROMETHEUS_CRDS=prometheusrules.yaml cargo test --test e2e
//! # or any scratch cluster (the suite installs globaldns' manifests into it):
//! KUBECONFIG=~/.kube/config GLOBALDNS_ISTIO_CRDS=crd-all.gen.yaml \
//!   GLOBALDNS_PROMETHEUS_CRDS=prometheusrules.yaml cargo test --test e2e
//! # (the PrometheusRule CRD: conformance/monitoring/crd.sh prometheusrules.yaml)
//! # the Helm chart's tests (chart::*, chart_install::*) too, ignored without it:
//! GLOBALDNS_HELM=$(conformance/helm/build.sh) ...
//! ```
//!
//! Its own runner (libtest-mimic), because the suite has a setup and a
//! teardown: start the control plane (with `KUBEBUILDER_ASSETS`), install
//! Istio's CRDs if missing and the manifests (`kubectl kustomize
//! manifests/`, applied with `force` as an admin), run the tests one at a
//! time, then delete everything the suite created. `GLOBALDNS_E2E_ROUNDS=2`
//! runs it all twice on the same cluster, which is how .ci/run shows that
//! the cleanup leaves nothing in the way. DNS queries go to the globaldns
//! processes on 127.0.0.1 only.

mod chart;
mod chart_install;
mod cluster;
mod doctor;
mod envtest;
mod federation;
mod manifests;
mod mcs;
mod mesh;
mod modes;
mod monitoring;
mod process;
mod rbac;
mod suite;
mod sync;
mod watch;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use libtest_mimic::{Arguments, Trial};

use crate::cluster::Env;
use crate::suite::Suite;

/// Every test: its name and its body.
type Test = fn(&Suite) -> futures::future::BoxFuture<'_, ()>;

fn tests() -> Vec<(&'static str, Test)> {
    let mut all: Vec<(&'static str, Test)> = Vec::new();
    all.extend(manifests::TESTS);
    all.extend(chart::TESTS);
    all.extend(chart_install::TESTS);
    all.extend(sync::TESTS);
    all.extend(mesh::TESTS);
    all.extend(watch::TESTS);
    all.extend(modes::TESTS);
    all.extend(federation::TESTS);
    all.extend(mcs::TESTS);
    all.extend(doctor::TESTS);
    all.extend(monitoring::TESTS);
    // Last: it reads what every test before it did.
    all.extend(rbac::TESTS);
    all
}

/// Tests that need an API server the suite started (they stop it, or read
/// its audit log): ignored, and said so, against a cluster from KUBECONFIG.
const ENVTEST_ONLY: [&str; 8] = [
    "doctor::across_two_clusters_one_root_of_trust_and_one_vip_per_host",
    "doctor::a_healthy_install_passes_and_each_staged_failure_is_named",
    "mesh::an_istio_serving_only_v1beta1_gets_its_objects_in_v1beta1",
    "watch::the_watch_resumes_within_seconds_after_an_api_server_outage",
    "federation::each_cluster_s_exports_are_answered_in_every_cluster",
    "federation::a_quiet_peer_keeps_its_exports_then_is_dropped_through_the_brake",
    "federation::a_deleted_peer_secret_removes_its_exports_through_the_brake",
    "rbac::the_shipped_rbac_is_exactly_the_verbs_the_audit_log_shows",
];

/// Tests that run `helm` (`GLOBALDNS_HELM`): ignored, and said so, without
/// it.
fn needs_helm(name: &str) -> bool {
    name.starts_with("chart::") || name.starts_with("chart_install::")
}

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    // One cluster, one install, one `globaldns` namespace: one at a time.
    args.test_threads = Some(1);
    if args.list {
        let trials = tests()
            .into_iter()
            .map(|(name, _)| Trial::test(name, || Ok(())))
            .collect();
        return libtest_mimic::run(&args, trials).exit_code();
    }
    let env = match Env::from_environment() {
        Ok(env) => Arc::new(env),
        Err(e) => {
            eprintln!("e2e: {e}");
            return ExitCode::from(2);
        }
    };
    if env.helm.is_none() {
        eprintln!(
            "e2e: no GLOBALDNS_HELM; ignored, since they render the chart with helm \
             (conformance/helm/build.sh builds it): chart::*, chart_install::*"
        );
    }
    if env.envtest.is_none() {
        eprintln!(
            "e2e: against KUBECONFIG's cluster; ignored, since they need an API server of the \
             suite's own (KUBEBUILDER_ASSETS): {}",
            ENVTEST_ONLY.join(", ")
        );
    }
    let rounds: u32 = std::env::var("GLOBALDNS_E2E_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    let mut failed = false;
    for round in 1..=rounds {
        let started = Instant::now();
        eprintln!("e2e: round {round} of {rounds}");
        let suite = match Suite::set_up(&env) {
            Ok(suite) => Arc::new(suite),
            Err(e) => {
                eprintln!("e2e: set-up failed: {e}");
                if let Some(envtest) = &env.envtest {
                    eprintln!("{}", envtest.lock().unwrap().logs());
                }
                return ExitCode::FAILURE;
            }
        };
        let trials = tests()
            .into_iter()
            .map(|(name, test)| {
                let suite = suite.clone();
                let own_server = suite.env.envtest.is_some();
                let helm = suite.env.helm.is_some();
                Trial::test(name, move || {
                    suite.run(test);
                    Ok(())
                })
                .with_ignored_flag(
                    (!own_server && ENVTEST_ONLY.contains(&name)) || (!helm && needs_helm(name)),
                )
            })
            .collect();
        let conclusion = libtest_mimic::run(&args, trials);
        failed |= conclusion.has_failed();
        if let Err(e) = suite.tear_down() {
            eprintln!("e2e: clean-up failed: {e}");
            failed = true;
        }
        eprintln!(
            "e2e: round {round} took {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
