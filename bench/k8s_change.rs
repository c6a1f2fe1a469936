//! Kubernetes mode: what a change of one ExportedService costs, beside a
//! whole build of the same objects, at each size:
//!
//!     cargo run --release --example k8s-change -- [SERVICES...]
//!
//! (default 1000 10000 100000). For each size, the objects are made as the
//! watch's store holds them (untyped `DynamicObject`s in `Arc`s; three
//! MeshClusters), built once whole, and then one object at a time gets a
//! new port number, CHANGES times. Each change is built twice, side by
//! side: the way the Kubernetes source builds it (`registry::kube::assemble`: decode
//! what changed, merge and validate that service), and whole (every object
//! decoded, merged and validated, as before the assembler), each applied
//! to a controller of its own (reconcile, journal, snapshot). After each,
//! a new MCS export (a ServiceExport of a Service with one port) is built
//! the assembler's way too. Prints, as medians, the three and the ratio of
//! the first two. In process, no API server: what the API server and the
//! watch add is in the end-to-end suite, not here.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use globaldns::commands::export;
use globaldns::controller::{Controller, Settings};
use globaldns::metrics::Metrics;
use globaldns::registry::kube::assemble::{Assembler, ViewInput};
use globaldns::registry::kube::declared::DeclaredCluster;
use globaldns::registry::kube::merge::McsExport;
use globaldns::registry::{Port, load_str};
use globaldns::vip::{Allocator, DEFAULT_V4_RANGE, Family, VipRange};
use kube::api::DynamicObject;

const CHANGES: usize = 9;
const CLUSTERS: [&str; 3] = ["east", "west", "north"];

fn registry_text(n: usize) -> String {
    let clusters: Vec<String> = CLUSTERS
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                r#"{{"name":"{c}","gateways":[{{"address":"192.0.2.{}"}}]}}"#,
                10 + i
            )
        })
        .collect();
    let services: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"name":"svc-{i}","namespace":"team-{}","exportedFrom":["{}"],"ports":[{{"name":"http","number":8080,"protocol":"HTTP"}}]}}"#,
                i % 100,
                CLUSTERS[i % 3]
            )
        })
        .collect();
    format!(
        r#"{{"clusters":[{}],"services":[{}]}}"#,
        clusters.join(","),
        services.join(",")
    )
}

fn untyped<T: serde::Serialize>(object: &T) -> DynamicObject {
    serde_json::from_value(serde_json::to_value(object).expect("serializes")).expect("an object")
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// ms to build `input` by what changed since the assembler's last build
/// and apply it to `controller`.
fn by_keys(
    assembler: &mut Assembler,
    controller: &mut Controller,
    input: ViewInput,
    zones: &[String],
) -> f64 {
    let started = Instant::now();
    let built = assembler.build(vec![input], Vec::new(), zones);
    assert!(built.incremental, "one service changed: built by keys");
    controller.apply(built.registry, SystemTime::now());
    let time = ms(started);
    // The last-known-good registry is written by a thread of its own after
    // each publish: not inside the other's time.
    controller.flush();
    time
}

fn measure(n: usize) -> (f64, f64, f64, f64) {
    let zones = vec!["global".to_string()];
    let registry = load_str(&registry_text(n), "generated", &zones).expect("a valid registry");
    let (clusters, services) = export::resources(&registry, "globaldns");
    drop(registry);
    let clusters: Vec<DeclaredCluster> = clusters.into_iter().map(Into::into).collect();
    let mut objects: Vec<Arc<DynamicObject>> =
        services.iter().map(|s| Arc::new(untyped(s))).collect();
    drop(services);
    let mut exports: Vec<McsExport> = Vec::new();
    let input = |objects: &[Arc<DynamicObject>], exports: &[McsExport]| ViewInput {
        cluster: "east".into(),
        local: true,
        clusters: clusters.clone(),
        exports: exports.to_vec(),
        services: objects.to_vec(),
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let settings = Settings {
        zones: zones.clone(),
        per_cluster_names: false,
        ttl: 30,
        allocator: Allocator {
            v4: VipRange::new(DEFAULT_V4_RANGE.parse().unwrap(), Family::V4).unwrap(),
            v6: None,
            quarantine: 600,
        },
        ns_addresses: Vec::new(),
    };
    let reference_dir = tempfile::tempdir().expect("a temporary directory");
    let start = |dir: &std::path::Path| {
        Controller::start(
            settings.clone(),
            dir,
            Arc::new(Default::default()),
            Arc::new(Metrics::default()),
            Vec::new(),
        )
    };
    let mut controller = start(dir.path());
    let mut reference = start(reference_dir.path());
    let mut assembler = Assembler::default();
    let started = Instant::now();
    let built = assembler.build(vec![input(&objects, &exports)], Vec::new(), &zones);
    assert!(!built.incremental);
    reference.apply(built.registry.clone(), SystemTime::now());
    controller.apply(built.registry, SystemTime::now());
    let first = ms(started);
    controller.flush();
    reference.flush();

    let (mut changes, mut wholes, mut mcs) = (Vec::new(), Vec::new(), Vec::new());
    for k in 1..=CHANGES {
        let at = k * n / (CHANGES + 1);
        let mut value = serde_json::to_value(&*objects[at]).expect("serializes");
        value["spec"]["ports"][0]["number"] = serde_json::json!(9000 + k);
        objects[at] = Arc::new(serde_json::from_value(value).expect("an object"));
        let change = input(&objects, &exports);
        changes.push(by_keys(&mut assembler, &mut controller, change, &zones));

        let started = Instant::now();
        let built = Assembler::default().build(vec![input(&objects, &exports)], Vec::new(), &zones);
        reference.apply(built.registry, SystemTime::now());
        wholes.push(ms(started));
        reference.flush();

        exports.push(McsExport {
            name: format!("mcs-{k}"),
            namespace: "team-0".into(),
            ports: vec![Port::new("http", 8080, "HTTP")],
        });
        let change = input(&objects, &exports);
        mcs.push(by_keys(&mut assembler, &mut controller, change, &zones));
    }
    (first, median(wholes), median(changes), median(mcs))
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse()
                .unwrap_or_else(|_| panic!("not a number of services: {a}"))
        })
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000, 10_000, 100_000]
    } else {
        sizes
    };
    println!("`cargo run --release --example k8s-change` ({CHANGES} changes, median)\n");
    println!(
        "| ExportedServices | first build | a change, built whole | a change, by keys | ratio | a new MCS export, by keys |"
    );
    println!("|---|---|---|---|---|---|");
    for n in sizes {
        let (first, whole, change, mcs) = measure(n);
        println!(
            "| {n} | {first:.0} ms | {whole:.1} ms | {change:.1} ms | {:.0}× | {mcs:.1} ms |",
            whole / change
        );
    }
}
