use super::*;
use crate::naming::dns1123_subdomain;
use crate::registry::kube::declared::{
    DeclaredCluster, DeclaredService, object_names, registry_from,
};
use crate::registry::load_str;

fn zones() -> Vec<String> {
    vec!["global".to_string()]
}

/// Services and clusters in a canonical order: the watch reads objects
/// sorted by name, a file keeps its own order.
fn sorted(mut registry: Registry) -> Registry {
    registry.clusters.sort_by(|a, b| a.name.cmp(&b.name));
    let mut services = registry.services.to_vec();
    services.sort_by(|a, b| (&a.name, &a.namespace).cmp(&(&b.name, &b.namespace)));
    registry.services = services.into();
    registry
}

/// File → `export-resources` YAML → objects read back from that text →
/// `registry_from`: the same registry, nothing skipped or warned about.
fn round_trip(text: &str) {
    let registry = load_str(text, "r.yaml", &zones()).unwrap();
    let yaml = yaml(&registry, "mesh").unwrap();
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&yaml).unwrap();
    let mut clusters = Vec::new();
    let mut services = Vec::new();
    for document in documents {
        assert_eq!(document["apiVersion"], "globaldns.io/v1alpha1");
        assert_eq!(document["metadata"]["namespace"], "mesh");
        let name = document["metadata"]["name"].as_str().unwrap().to_string();
        dns1123_subdomain(&name).unwrap_or_else(|e| panic!("{name}: {e}"));
        match document["kind"].as_str().unwrap() {
            "MeshCluster" => {
                clusters.push(serde_json::from_value::<MeshCluster>(document).unwrap())
            }
            "ExportedService" => {
                services.push(serde_json::from_value::<ExportedService>(document).unwrap())
            }
            other => panic!("unexpected kind {other}"),
        }
    }
    let clusters: Vec<DeclaredCluster> = clusters.into_iter().map(Into::into).collect();
    let services: Vec<DeclaredService> = services.into_iter().map(Into::into).collect();
    let back = registry_from(&clusters, &services, &zones());
    assert!(back.warnings.is_empty(), "{:?}", back.warnings);
    assert_eq!(sorted(back.registry), sorted(registry));
}

#[test]
fn the_examples_round_trip() {
    for example in ["registry.yaml", "bookinfo.yaml"] {
        let path = format!("{}/examples/{example}", env!("CARGO_MANIFEST_DIR"));
        round_trip(&std::fs::read_to_string(path).unwrap());
    }
}

/// Every optional field, a default gateway port, a gateway by name, pins
/// of both families, several clusters and ports.
#[test]
fn every_field_round_trips() {
    round_trip(
        "clusters:
  - name: west
    network: net-w
    locality: eu/eu-1/a
    gateways: [{address: gw.west.example.com}, {address: 192.0.2.7, port: 15444}]
  - name: east
    gateways: [{address: 2001:db8::7}]
services:
  - name: zeta
    namespace: a
    exportedFrom: [west, east]
    ports: [{name: http, number: 80, protocol: HTTP}, {name: grpc, number: 9000, protocol: grpc}]
    addresses: [192.0.2.99, 2001:db8::99]
  - name: alpha
    namespace: b
    exportedFrom: [east]
    ports: [{name: tcp, number: 5000, protocol: TCP}]
",
    );
}

/// `a-b` in `c` and `a` in `b-c` would both be `a-b-c`: each gets its own
/// hash suffix, whatever the order, and a name no one shares stays plain.
#[test]
fn names_two_services_share_get_a_hash_each() {
    let text = "clusters: [{name: w, gateways: [{address: 192.0.2.1}]}]
services:
  - {name: a-b, namespace: c, exportedFrom: [w], ports: [{name: p, number: 1, protocol: TCP}]}
  - {name: a, namespace: b-c, exportedFrom: [w], ports: [{name: p, number: 1, protocol: TCP}]}
  - {name: solo, namespace: c, exportedFrom: [w], ports: [{name: p, number: 1, protocol: TCP}]}
";
    let mut registry = load_str(text, "r.yaml", &zones()).unwrap();
    let names = object_names(&registry.services);
    assert_eq!(names[2], "solo-c");
    assert_ne!(names[0], names[1]);
    for name in &names[..2] {
        assert!(
            name.starts_with("a-b-c-") && name.len() == "a-b-c-".len() + 8,
            "{name}"
        );
    }
    registry.services = registry.services.iter().rev().cloned().collect();
    let reversed = object_names(&registry.services);
    assert_eq!(
        reversed,
        [names[2].clone(), names[1].clone(), names[0].clone()]
    );
    round_trip(text);
}

/// The resources have no registry-wide `defaults`: each ExportedService
/// carries the policy the defaults gave it, so that the Istio objects a
/// cluster gets from the resources are the file's, object for object.
#[test]
fn the_failover_defaults_are_written_into_each_service() {
    use crate::mesh::{Target, render};
    use crate::vip::{Allocator, DEFAULT_V4_RANGE, Family, Table, VipRange};
    // reviews overrides one threshold: the others still come from the
    // defaults, field by field, in the resources as in the file.
    let text = include_str!("../../../examples/failover.yaml").replace(
        "  - name: reviews\n    namespace: bookinfo\n",
        "  - name: reviews\n    namespace: bookinfo\n    outlierDetection: {baseEjectionTime: 1m}\n",
    );
    assert!(text.contains("baseEjectionTime: 1m"));
    let file = load_str(&text, "failover.yaml", &zones()).unwrap();
    assert!(!file.defaults.is_empty());
    let (clusters, services) = declared(&file, "mesh");
    let resources = registry_from(&clusters, &services, &zones());
    assert!(resources.warnings.is_empty(), "{:?}", resources.warnings);
    let resources = resources.registry;
    assert!(resources.defaults.is_empty());
    let allocator = Allocator {
        v4: VipRange::new(DEFAULT_V4_RANGE.parse().unwrap(), Family::V4).unwrap(),
        v6: None,
        quarantine: 600,
    };
    let mut table = Table::default();
    allocator.reconcile(&mut table, &crate::index::wants(&file, &zones(), true), 0);
    for cluster in ["east", "west", "south", "north"] {
        let target = Target::new(cluster, "istio-system");
        let objects = |registry: &Registry| {
            let mut out: Vec<String> =
                render(registry, &zones(), true, &allocator, &table, &target)
                    .unwrap()
                    .iter()
                    .map(|o| o.to_value().to_string())
                    .collect();
            out.sort();
            out
        };
        let from_file = objects(&file);
        assert!(from_file.iter().any(|o| o.contains("outlierDetection")));
        assert_eq!(objects(&resources), from_file, "{cluster}");
    }
}

/// A MeshCluster that goes away takes its place in a service's failover
/// policy with it: the service keeps serving from the others, and says so.
#[test]
fn a_missing_cluster_leaves_the_policy_not_the_service() {
    let text = include_str!("../../../examples/failover.yaml");
    let file = load_str(text, "failover.yaml", &zones()).unwrap();
    let (clusters, services) = declared(&file, "mesh");
    let clusters: Vec<DeclaredCluster> =
        clusters.into_iter().filter(|c| c.name != "south").collect();
    let back = registry_from(&clusters, &services, &zones());
    let reviews = back
        .registry
        .services
        .iter()
        .find(|s| s.name == "reviews")
        .expect("reviews is still served");
    assert_eq!(reviews.exported_from.as_slice(), ["east", "west"]);
    assert_eq!(reviews.failover.as_deref(), Some(&["west".into()][..]));
    let ratings = back
        .registry
        .services
        .iter()
        .find(|s| s.name == "ratings")
        .unwrap();
    assert_eq!(
        ratings
            .weights
            .as_deref()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["west"]
    );
    assert!(
        back.warnings
            .iter()
            .any(|w| w.contains("the failover policy names south")),
        "{:?}",
        back.warnings
    );
}
