//! End-to-end: globaldns against a real Kubernetes API server, as the
//! `globaldns` ServiceAccount with the RBAC and the kustomized manifests
//! exactly as shipped.
//!
//! ```sh
//! # a control plane started for the run (envtest binaries, v1.28+):
//! KUBEBUILDER_ASSETS=/path/to/envtest GLOBALDNS_ISTIO_CRDS=crd-all.gen.yaml cargo test --test e2e
//! # or any scratch cluster (the suite installs globaldns' manifests into it):
//! KUBECONFIG=~/.kube/config GLOBALDNS_ISTIO_CRDS=crd-all.gen.yaml cargo test --test e2e
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

mod cluster;
mod envtest;
mod manifests;
mod process;
mod suite;
mod sync;

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
    all.extend(sync::TESTS);
    all
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
                Trial::test(name, move || {
                    suite.run(test);
                    Ok(())
                })
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
