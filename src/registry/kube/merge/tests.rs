use super::*;
use crate::registry::Gateway;
use crate::registry::kube::resources::{ExportedService, MeshCluster, MeshClusterSpec};

/// A MeshCluster with one gateway (also for `registry::kube::assemble`'s tests).
pub(crate) fn cluster(name: &str, gateway: &str) -> DeclaredCluster {
    MeshCluster::new(
        name,
        MeshClusterSpec {
            network: None,
            locality: None,
            gateways: vec![Gateway {
                address: gateway.to_string(),
                port: 15443,
                readiness_url: None,
            }],
        },
    )
    .into()
}

fn port(name: &str, number: u32) -> Port {
    Port::new(name, number, "HTTP")
}

fn service(name: &str, from: &[&str], ports: Vec<Port>) -> DeclaredService {
    ExportedService::new(
        &format!("{name}-bar"),
        ExportedServiceSpec {
            name: name.to_string(),
            namespace: "bar".to_string(),
            exported_from: from.iter().map(|c| c.to_string()).collect(),
            ports,
            addresses: Vec::new(),
            endpoints: Vec::new(),
            ..ExportedServiceSpec::default()
        },
    )
    .into()
}

fn view(
    name: &str,
    local: bool,
    clusters: Vec<DeclaredCluster>,
    services: Vec<DeclaredService>,
) -> View {
    View {
        cluster: name.to_string(),
        local,
        clusters,
        services: services.into_iter().map(Arc::new).collect(),
        exports: Vec::new(),
    }
}

/// (service, its exporters) of a merge.
fn exports(merged: &Merged) -> Vec<(String, Vec<String>)> {
    merged
        .services
        .iter()
        .map(|s| (s.spec.name.clone(), s.spec.exported_from.clone()))
        .collect()
}

fn cluster_names(merged: &Merged) -> Vec<String> {
    merged.clusters.iter().map(|c| c.name.clone()).collect()
}

/// Without peers, a registry applied to one cluster is served as before:
/// every cluster it describes, every export list as written.
#[test]
fn one_local_view_is_the_registry_as_written() {
    let local = view(
        "",
        true,
        vec![cluster("east", "192.0.2.1"), cluster("west", "192.0.2.2")],
        vec![
            service("httpbin", &["west"], vec![port("http", 80)]),
            service("reviews", &["east", "west"], vec![port("http", 9080)]),
        ],
    );
    let merged = merge(&[local]);
    assert_eq!(cluster_names(&merged), ["east", "west"]);
    assert_eq!(
        exports(&merged),
        [
            ("httpbin".to_string(), vec!["west".to_string()]),
            (
                "reviews".to_string(),
                vec!["east".to_string(), "west".to_string()]
            )
        ]
    );
    assert!(merged.conflicts.is_empty() && merged.ignored.is_empty());
}

/// Issue 15: each cluster speaks for itself: its MeshCluster describes it,
/// its ExportedServices without exportedFrom are its own exports, and what
/// a peer says of another cluster is ignored.
#[test]
fn each_cluster_speaks_for_itself() {
    let east = view(
        "east",
        true,
        vec![cluster("east", "192.0.2.1")],
        vec![service("sleep", &[], vec![port("http", 80)])],
    );
    let west = view(
        "west",
        false,
        vec![
            cluster("west", "192.0.2.2"),
            cluster("east", "203.0.113.66"),
        ],
        vec![
            service("httpbin", &[], vec![port("http", 8000)]),
            service("spoof", &["east"], vec![port("http", 1)]),
        ],
    );
    let merged = merge(&[west, east]);
    assert_eq!(cluster_names(&merged), ["east", "west"]);
    assert_eq!(
        merged.clusters[0].spec.gateways[0].address, "192.0.2.1",
        "east as east says, not as west says"
    );
    assert_eq!(
        exports(&merged),
        [
            ("httpbin".to_string(), vec!["west".to_string()]),
            ("sleep".to_string(), vec!["east".to_string()])
        ]
    );
    assert_eq!(merged.ignored.len(), 2, "{:?}", merged.ignored);
    assert!(merged.ignored[0].contains("a peer describes only itself"));
    assert!(merged.ignored[1].contains("a peer exports only its own services"));
}

#[test]
fn a_service_exported_by_two_clusters_is_exported_by_both() {
    let east = view(
        "east",
        true,
        vec![cluster("east", "192.0.2.1")],
        vec![service("reviews", &[], vec![port("http", 9080)])],
    );
    let west = view(
        "west",
        false,
        vec![cluster("west", "192.0.2.2")],
        vec![service("reviews", &[], vec![port("http", 9080)])],
    );
    let merged = merge(&[east, west]);
    assert_eq!(
        exports(&merged),
        [(
            "reviews".to_string(),
            vec!["east".to_string(), "west".to_string()]
        )]
    );
    assert!(merged.conflicts.is_empty());
}

/// Issue 15: two definitions of one service with different ports: one
/// winner (the cluster that sorts first), the other left out and reported;
/// whichever cluster merges, the result is the same.
#[test]
fn different_ports_have_one_winner_everywhere() {
    let views = |local: &str| {
        [("east", 9080), ("west", 9090)]
            .into_iter()
            .map(|(name, number)| {
                view(
                    name,
                    name == local,
                    vec![cluster(name, "192.0.2.1")],
                    vec![service("reviews", &[], vec![port("http", number)])],
                )
            })
            .collect::<Vec<_>>()
    };
    let from_east = merge(&views("east"));
    let from_west = merge(&views("west"));
    for merged in [&from_east, &from_west] {
        assert_eq!(
            exports(merged),
            [("reviews".to_string(), vec!["east".to_string()])]
        );
        assert_eq!(merged.services[0].spec.ports[0].number, 9080);
        assert_eq!(merged.conflicts.len(), 1, "{:?}", merged.conflicts);
        assert!(merged.conflicts[0].contains("west defines other ports than east"));
    }
}

/// A cluster's own description wins over what the local registry says of
/// it; two views claiming to be one cluster: the local one wins.
#[test]
fn a_cluster_s_own_description_wins_and_a_double_is_reported() {
    let east = view(
        "east",
        true,
        vec![
            cluster("east", "192.0.2.1"),
            cluster("west", "198.51.100.1"),
        ],
        vec![],
    );
    let west = view("west", false, vec![cluster("west", "192.0.2.2")], vec![]);
    let impostor = view("east", false, vec![cluster("east", "203.0.113.9")], vec![]);
    let merged = merge(&[impostor, west, east]);
    assert_eq!(merged.clusters[0].spec.gateways[0].address, "192.0.2.1");
    assert_eq!(merged.clusters[1].spec.gateways[0].address, "192.0.2.2");
    assert_eq!(merged.conflicts.len(), 2, "{:?}", merged.conflicts);
}

/// Issue 15: an MCS ServiceExport is an export of the Service, with its
/// ports; an ExportedService for the same service says more and wins.
#[test]
fn mcs_exports_are_exports() {
    let mut west = view("west", false, vec![cluster("west", "192.0.2.2")], vec![]);
    west.exports = vec![McsExport {
        name: "ratings".to_string(),
        namespace: "bar".to_string(),
        ports: vec![port("http", 9080)],
    }];
    let east = view("east", true, vec![cluster("east", "192.0.2.1")], vec![]);
    let merged = merge(&[east, west]);
    assert_eq!(
        exports(&merged),
        [("ratings".to_string(), vec!["west".to_string()])]
    );
    // Messages about it name the ServiceExport's name and namespace.
    let service = &merged.services[0];
    assert_eq!(
        (service.namespace.as_str(), service.name.as_str()),
        ("bar", "ratings")
    );
}

/// A service outside Kubernetes (endpoints, no cluster) stays so: it is not
/// made an export of the cluster it is written in.
#[test]
fn a_service_outside_kubernetes_is_no_cluster_s_export() {
    let mut vm = service("catalog", &[], vec![port("http", 8080)]);
    vm.spec.endpoints = vec![crate::registry::Endpoint {
        address: "192.0.2.50".to_string(),
        ports: Default::default(),
        network: None,
        locality: None,
        labels: Default::default(),
        weight: None,
        service_account: None,
    }];
    let east = view("east", true, vec![cluster("east", "192.0.2.1")], vec![vm]);
    let merged = merge(&[east]);
    assert_eq!(
        exports(&merged),
        [("catalog".to_string(), Vec::<String>::new())]
    );
    assert_eq!(merged.services[0].spec.endpoints.len(), 1);
}
