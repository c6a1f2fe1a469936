use super::*;
use crate::registry::kube::resources::{
    ExportedService, ExportedServiceSpec, MeshCluster, MeshClusterSpec,
};
use crate::registry::{Gateway, Port};

fn cluster(name: &str, gateways: &[&str]) -> DeclaredCluster {
    MeshCluster::new(
        name,
        MeshClusterSpec {
            network: None,
            locality: None,
            gateways: gateways
                .iter()
                .map(|a| Gateway {
                    address: a.to_string(),
                    port: 15443,
                    readiness_url: None,
                })
                .collect(),
        },
    )
    .into()
}

fn service(object: &str, name: &str, from: &[&str]) -> DeclaredService {
    ExportedService::new(
        object,
        ExportedServiceSpec {
            name: name.to_string(),
            namespace: "bar".to_string(),
            exported_from: from.iter().map(|c| c.to_string()).collect(),
            ports: vec![Port::new("http", 80, "HTTP")],
            addresses: Vec::new(),
            endpoints: Vec::new(),
            ..ExportedServiceSpec::default()
        },
    )
    .into()
}

fn zones() -> Vec<String> {
    vec!["global".to_string()]
}

#[test]
fn valid_objects_make_the_registry() {
    let FromResources {
        registry, warnings, ..
    } = registry_from(
        &[
            cluster("west", &["192.0.2.1"]),
            cluster("east", &["192.0.2.2"]),
        ],
        &[service("httpbin-bar", "httpbin", &["west"])],
        &zones(),
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    let names: Vec<&str> = registry.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["east", "west"],
        "in name order, whatever the list order"
    );
    assert_eq!(registry.services[0].host("global"), "httpbin.bar.global");
}

/// Issue 3: a malformed object is skipped with a warning naming it; the
/// others are served.
#[test]
fn a_bad_object_is_skipped_alone_and_named() {
    let from = registry_from(
        &[cluster("west", &["192.0.2.1"]), cluster("nogw", &[])],
        &[
            service("a", "a", &["west"]),
            service("b", "b", &["nogw"]),
            service("c", "c", &["mars"]),
            service("d", "Not_A_Name", &["west"]),
        ],
        &zones(),
    );
    let (registry, warnings) = (&from.registry, &from.warnings);
    let names: Vec<&str> = registry.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a"]);
    assert_eq!(registry.clusters.len(), 1);
    assert_eq!(warnings.len(), 4, "{warnings:#?}");
    assert_eq!(from.skipped, 4);
    assert!(
        warnings[0].starts_with("skipped MeshCluster -/nogw: spec.gateways: "),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[1].starts_with("skipped ExportedService -/b: "),
        "{}",
        warnings[1]
    );
    assert!(warnings[2].contains("mars"), "{}", warnings[2]);
    assert!(
        warnings[3].starts_with("skipped ExportedService -/d: spec.name"),
        "{}",
        warnings[3]
    );
}

/// Issue 10: deleting one MeshCluster removed DNS for every service that
/// named it, including services also exported by healthy clusters (they
/// failed validation as "unknown cluster" and were skipped whole). They
/// keep serving from the clusters that remain; the missing one is warned
/// about and counted.
#[test]
fn a_service_keeps_serving_from_the_clusters_that_remain() {
    let from = registry_from(
        &[cluster("west", &["192.0.2.1"]), cluster("broken", &[])],
        &[
            service("both", "reviews", &["east", "west"]),
            service("invalid-one", "ratings", &["broken", "west"]),
            service("only-gone", "details", &["east"]),
        ],
        &zones(),
    );
    let served: Vec<(&str, Vec<&str>)> = from
        .registry
        .services
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.exported_from.iter().map(|c| c.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        served,
        [("reviews", vec!["west"]), ("ratings", vec!["west"])]
    );
    assert_eq!(from.dangling_exports, 3, "east twice, broken once");
    assert_eq!(
        from.skipped, 2,
        "the broken cluster and the service with no cluster left"
    );
    assert!(
        from.warnings.iter().any(|w| w.starts_with(
            "ExportedService -/both: spec.exportedFrom names MeshCluster(s) east that do not exist or were skipped: served from west"
        )),
        "{:#?}",
        from.warnings
    );
    assert!(
        from.warnings
            .iter()
            .any(|w| w.starts_with("skipped ExportedService -/only-gone: ") && w.contains("east")),
        "{:#?}",
        from.warnings
    );
}

#[test]
fn the_same_service_twice_keeps_the_first_object_by_name() {
    let FromResources {
        registry, warnings, ..
    } = registry_from(
        &[
            cluster("west", &["192.0.2.1"]),
            cluster("east", &["192.0.2.2"]),
        ],
        &[
            service("z-copy", "httpbin", &["east"]),
            service("a-original", "httpbin", &["west"]),
        ],
        &zones(),
    );
    assert_eq!(registry.services.len(), 1);
    assert_eq!(registry.services[0].exported_from.as_slice(), ["west"]);
    assert_eq!(
        warnings,
        [
            "skipped ExportedService -/z-copy: httpbin.bar is already exported by ExportedService -/a-original"
        ]
    );
}

/// Issue 25: a MeshCluster that lists one gateway twice is skipped with
/// the path of the repeat, like a bad registry file is refused.
#[test]
fn a_mesh_cluster_with_a_repeated_gateway_is_skipped_and_named() {
    let from = registry_from(
        &[
            cluster("west", &["192.0.2.1", "192.0.2.1"]),
            cluster("east", &["192.0.2.2"]),
        ],
        &[service("a", "a", &["east"])],
        &zones(),
    );
    let names: Vec<&str> = from
        .registry
        .clusters
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["east"]);
    assert_eq!(
        from.warnings,
        [
            "skipped MeshCluster -/west: spec.gateways[1]: gateway 192.0.2.1:15443 is listed twice (first at gateways[0])"
        ]
    );
}
