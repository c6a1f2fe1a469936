//! Sync at scale against a real API server (issue 14): how long a leader
//! facing N new ServiceEntries takes to apply them from cold, at several
//! concurrencies, how many requests each pass makes (from the API server's
//! audit log), and what a steady-state pass costs (it should write nothing
//! and read no object one by one).
//!
//! ```sh
//! KUBEBUILDER_ASSETS=/path/to/envtest GLOBALDNS_ISTIO_CRDS=crd-all.gen.yaml \
//!   cargo run --release --example sync-scale -- [SERVICES] [CONCURRENCY...]
//! ```
//!
//! Defaults: 10,000 services, concurrencies 8 and 32. The API server, etcd
//! and this program share the machine: the figures are wall time on it,
//! and the API server's CPU is usually the limit. Everything is on
//! 127.0.0.1.

// The end-to-end suite's harness; the benchmark uses part of it.
#[path = "../tests/e2e/envtest.rs"]
#[allow(dead_code)]
mod envtest;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use globaldns::mesh::sync::{Limits, sync_once};
use globaldns::mesh::{Target, render};
use globaldns::registry::{Cluster, Gateway, Port, Registry, Service};
use globaldns::vip::{Allocator, DEFAULT_V4_RANGE, Family, Table, VipRange};

fn registry(services: usize) -> Registry {
    let cluster = |name: &str, address: &str| Cluster {
        name: name.to_string(),
        network: Some(format!("network-{name}")),
        locality: None,
        gateways: vec![Gateway {
            address: address.to_string(),
            port: 15443,
            readiness_url: None,
        }],
    };
    Registry {
        clusters: vec![
            cluster("east", "192.0.2.10"),
            cluster("west", "198.51.100.20"),
        ],
        services: (0..services)
            .map(|i| {
                std::sync::Arc::new(Service {
                    name: format!("svc-{i}").into(),
                    namespace: format!("team-{}", i % 100).into(),
                    exported_from: ["west".into()].into(),
                    ports: [Port::new("http", 8080, "HTTP")].into(),
                    addresses: Default::default(),
                    endpoints: Default::default(),
                    failover: None,
                    weights: None,
                    outlier_detection: None,
                })
            })
            .collect(),
        ..Registry::default()
    }
}

/// Audit log lines of user `admin` so far (one per request that reached
/// the response stage).
fn requests(log: &std::path::Path) -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if event["user"]["username"] != "admin" || event["stage"] != "ResponseComplete" {
            continue;
        }
        let key = format!(
            "{} {}",
            event["verb"].as_str().unwrap_or("?"),
            event["objectRef"]["resource"].as_str().unwrap_or("-")
        );
        *counts.entry(key).or_default() += 1;
    }
    counts
}

fn delta(after: &BTreeMap<String, usize>, before: &BTreeMap<String, usize>) -> String {
    after
        .iter()
        .filter_map(|(k, n)| {
            let d = n - before.get(k).copied().unwrap_or(0);
            (d > 0).then(|| format!("{d} {k}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) {
    let status = Command::new("kubectl")
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("kubectl");
    assert!(status.success(), "kubectl {args:?}");
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let services: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let concurrencies: Vec<usize> = if args.len() > 1 {
        args[1..]
            .iter()
            .map(|a| a.parse().expect("a concurrency"))
            .collect()
    } else {
        vec![8, 32]
    };
    let assets = PathBuf::from(std::env::var("KUBEBUILDER_ASSETS").expect("KUBEBUILDER_ASSETS"));
    let crds = std::env::var("GLOBALDNS_ISTIO_CRDS").expect("GLOBALDNS_ISTIO_CRDS");
    let envtest = tokio::task::block_in_place(|| envtest::Envtest::start(&assets))
        .expect("the API server starts");
    let kubeconfig = envtest.kubeconfig();
    kubectl(&kubeconfig, &["apply", "--server-side", "-f", &crds]);
    kubectl(
        &kubeconfig,
        &[
            "wait",
            "--for=condition=Established",
            "crd/serviceentries.networking.istio.io",
        ],
    );
    let config = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();

    let zones = vec!["global".to_string()];
    let registry = registry(services);
    let allocator = Allocator {
        v4: VipRange::new(DEFAULT_V4_RANGE.parse().unwrap(), Family::V4).unwrap(),
        v6: None,
        quarantine: 600,
    };
    let mut table = Table::default();
    allocator.reconcile(
        &mut table,
        &globaldns::index::wants(&registry, &zones, false),
        0,
    );

    println!("sync of {services} new ServiceEntries from cold, then a steady-state pass");
    println!(
        "| concurrency | cold pass (s) | applies/s | requests of the cold pass | steady pass (s) | requests of the steady pass |"
    );
    println!("|---|---|---|---|---|---|");
    for concurrency in concurrencies {
        let namespace = format!("bench-c{concurrency}");
        kubectl(&kubeconfig, &["create", "namespace", &namespace]);
        let target = Target::new("east", &namespace);
        let desired = render(&registry, &zones, false, &allocator, &table, &target).unwrap();
        let limits = Limits {
            concurrency,
            qps: None,
        };
        let audit = envtest.audit_log();
        let before = requests(&audit);
        let started = Instant::now();
        let cold = sync_once(
            &client,
            &namespace,
            target.api_version,
            &desired,
            0.5,
            &limits,
            &|| true,
        )
        .await
        .expect("the cold pass");
        let cold_time = started.elapsed().as_secs_f64();
        assert!(
            cold.failures.is_empty(),
            "{:?}",
            &cold.failures[..3.min(cold.failures.len())]
        );
        // The audit log is written asynchronously: give it a moment.
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let after_cold = requests(&audit);
        let started = Instant::now();
        let steady = sync_once(
            &client,
            &namespace,
            target.api_version,
            &desired,
            0.5,
            &limits,
            &|| true,
        )
        .await
        .expect("the steady pass");
        let steady_time = started.elapsed().as_secs_f64();
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let after_steady = requests(&audit);
        println!(
            "| {concurrency} | {cold_time:.1} | {:.0} | {} | {steady_time:.2} | {} (applied {}) |",
            cold.applied as f64 / cold_time,
            delta(&after_cold, &before),
            delta(&after_steady, &after_cold),
            steady.applied,
        );
    }
    drop(envtest);
}
