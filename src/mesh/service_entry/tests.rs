use super::*;
use crate::mesh::Target;
use crate::registry::load_str;
use crate::vip::{DEFAULT_V4_RANGE, Family, VipRange};

const EXAMPLE: &str = include_str!("../../../examples/registry.yaml");

fn allocator() -> Allocator {
    Allocator {
        v4: VipRange::new(DEFAULT_V4_RANGE.parse().unwrap(), Family::V4).unwrap(),
        v6: None,
        quarantine: 600,
    }
}

fn rendered(text: &str, zones: &[&str], cluster: &str) -> Result<Vec<ServiceEntry>, RenderError> {
    let zones: Vec<String> = zones.iter().map(|z| z.to_string()).collect();
    let registry = load_str(text, "test.yaml", &zones).unwrap();
    let allocator = allocator();
    let mut table = Table::default();
    allocator.reconcile(&mut table, &index::wants(&registry, &zones, false), 0);
    service_entries(
        &registry,
        &zones,
        false,
        &allocator,
        &table,
        &Target::new(cluster, "istio-system"),
    )
}

/// design §5: the template, field for field, for a service another cluster
/// exports through an IP gateway.
#[test]
fn a_remote_service_gets_the_design_template() {
    let entries = rendered(EXAMPLE, &["global"], "east").unwrap();
    let httpbin = &entries[0];
    let expected = ServiceEntry {
        api_version: "networking.istio.io/v1".to_string(),
        kind: "ServiceEntry".to_string(),
        metadata: Metadata {
            name: "httpbin-bar-global".to_string(),
            namespace: "istio-system".to_string(),
            labels: BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                "globaldns".to_string(),
            )]),
        },
        spec: ServiceEntrySpec {
            hosts: vec!["httpbin.bar.global".to_string()],
            location: Location::MeshInternal,
            resolution: Resolution::Static,
            // The documented hash's first choice for this host.
            addresses: vec!["240.0.195.86".to_string()],
            ports: vec![ServicePort {
                name: "http1".to_string(),
                number: 8000,
                protocol: "HTTP".to_string(),
            }],
            endpoints: vec![WorkloadEntry {
                address: "198.51.100.20".to_string(),
                network: Some("network-west".to_string()),
                locality: Some("us-west1/us-west1-a".to_string()),
                ports: BTreeMap::from([("http1".to_string(), 15443)]),
                // Istio sends mTLS only to endpoints labelled so.
                labels: BTreeMap::from([(
                    "security.istio.io/tlsMode".to_string(),
                    "istio".to_string(),
                )]),
                ..WorkloadEntry::default()
            }],
            // Seen by every namespace, whatever the mesh's
            // `defaultServiceExportTo`.
            export_to: vec!["*".to_string()],
        },
    };
    assert_eq!(httpbin, &expected);
}

/// design §5: a service the local cluster exports too gets the local
/// endpoint, and a host-name endpoint makes the resolution DNS.
#[test]
fn a_locally_exported_service_gets_the_local_endpoint() {
    let entries = rendered(EXAMPLE, &["global"], "east").unwrap();
    let sleep = &entries[1];
    assert_eq!(sleep.metadata.name, "sleep-foo-global");
    assert_eq!(sleep.spec.resolution, Resolution::Dns);
    assert_eq!(sleep.spec.endpoints.len(), 1);
    let local = &sleep.spec.endpoints[0];
    assert_eq!(local.address, "sleep.foo.svc.cluster.local.", "absolute");
    assert_eq!(local.labels[TLS_MODE_LABEL], TLS_MODE_ISTIO);
    // No network on the local endpoint, so the east-west gateway's network
    // view can never hide it (pilot/pkg/model/proxy_view.go), whatever
    // name the registry gives east's network.
    assert_eq!(local.network, None);
    assert_eq!(local.locality.as_deref(), Some("us-east1/us-east1-b"));
    assert!(local.ports.is_empty(), "the service's own ports");

    // Seen from west, the roles swap.
    let from_west = rendered(EXAMPLE, &["global"], "west").unwrap();
    assert_eq!(from_west[1].spec.endpoints[0].address, "192.0.2.10");
    assert_eq!(from_west[1].spec.resolution, Resolution::Static);
    assert_eq!(
        from_west[0].spec.endpoints[0].address,
        "httpbin.bar.svc.cluster.local."
    );
}

#[test]
fn a_gateway_given_by_name_makes_the_resolution_dns() {
    let text = "\
clusters:
  - name: east
    gateways: [{address: 192.0.2.1}]
  - name: west
    gateways: [{address: gw.west.example.com, port: 15444}]
services:
  - {name: a, namespace: n, exportedFrom: [west], ports: [{name: grpc, number: 9090, protocol: GRPC}]}
";
    let entries = rendered(text, &["global"], "east").unwrap();
    let spec = &entries[0].spec;
    assert_eq!(spec.resolution, Resolution::Dns);
    assert_eq!(
        spec.endpoints[0].address, "gw.west.example.com.",
        "absolute"
    );
    assert_eq!(spec.endpoints[0].ports["grpc"], 15444);
    assert_eq!(spec.endpoints[0].network, None);
}

#[test]
fn every_zone_gets_its_own_entry_and_vip() {
    let entries = rendered(EXAMPLE, &["global", "region"], "east").unwrap();
    let names: Vec<&str> = entries.iter().map(|e| e.metadata.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "httpbin-bar-global",
            "sleep-foo-global",
            "httpbin-bar-region",
            "sleep-foo-region"
        ]
    );
    assert_ne!(entries[0].spec.addresses, entries[2].spec.addresses);
}

#[test]
fn names_two_hosts_share_are_told_apart() {
    let text = "\
clusters:
  - name: east
    gateways: [{address: 192.0.2.1}]
services:
  - {name: a-b, namespace: c, exportedFrom: [east], ports: [{name: http, number: 80, protocol: HTTP}]}
  - {name: a, namespace: b-c, exportedFrom: [east], ports: [{name: http, number: 80, protocol: HTTP}]}
  - {name: d, namespace: e, exportedFrom: [east], ports: [{name: http, number: 80, protocol: HTTP}]}
";
    let entries = rendered(text, &["global"], "west-less")
        .unwrap_err()
        .to_string();
    assert!(entries.contains("`west-less` is not in the registry (clusters: east)"));
    let entries = rendered(text, &["global"], "east").unwrap();
    let names: Vec<&str> = entries.iter().map(|e| e.metadata.name.as_str()).collect();
    assert_eq!(names[2], "d-e-global", "no clash, no suffix");
    assert_ne!(names[0], names[1]);
    for name in &names[..2] {
        assert!(name.starts_with("a-b-c-global-") && name.len() == "a-b-c-global-".len() + 8);
    }
}

/// Issue 11: the cluster domain is a setting, not `cluster.local`.
#[test]
fn the_local_endpoint_uses_the_cluster_domain() {
    let zones = vec!["global".to_string()];
    let registry = load_str(EXAMPLE, "test.yaml", &zones).unwrap();
    let allocator = allocator();
    let mut table = Table::default();
    allocator.reconcile(&mut table, &index::wants(&registry, &zones, false), 0);
    let mut target = Target::new("east", "istio-system");
    target.cluster_domain = "corp.example".to_string();
    let entries = service_entries(&registry, &zones, false, &allocator, &table, &target).unwrap();
    assert_eq!(
        entries[1].spec.endpoints[0].address,
        "sleep.foo.svc.corp.example."
    );
}

/// Issue 11 / design §2: a service on VMs: its endpoints appear in every
/// cluster's ServiceEntry, on their own ports; one with a sidecar (a
/// service account) is sent mTLS; the host still gets its VIP.
#[test]
fn workloads_outside_kubernetes_are_endpoints_everywhere() {
    let text = "\
clusters:
  - name: east
    gateways: [{address: 192.0.2.1}]
  - name: west
    gateways: [{address: 192.0.2.2}]
services:
  - name: catalog
    namespace: shop
    ports: [{name: http, number: 8080, protocol: HTTP}]
    endpoints:
      - {address: 192.0.2.50, ports: {http: 9080}, network: vm-net, labels: {app: catalog}, serviceAccount: catalog}
      - {address: vm2.example.com, weight: 3}
";
    for cluster in ["east", "west"] {
        let entries = rendered(text, &["global"], cluster).unwrap();
        let spec = &entries[0].spec;
        assert_eq!(spec.addresses.len(), 1, "a VIP");
        assert_eq!(spec.resolution, Resolution::Dns, "vm2 is a name");
        let with_sidecar = &spec.endpoints[0];
        assert_eq!(with_sidecar.address, "192.0.2.50");
        assert_eq!(with_sidecar.ports["http"], 9080);
        assert_eq!(with_sidecar.network.as_deref(), Some("vm-net"));
        assert_eq!(with_sidecar.labels[TLS_MODE_LABEL], TLS_MODE_ISTIO);
        assert_eq!(with_sidecar.labels["app"], "catalog");
        assert_eq!(with_sidecar.service_account.as_deref(), Some("catalog"));
        let plain = &spec.endpoints[1];
        assert_eq!(plain.address, "vm2.example.com.");
        assert!(plain.labels.is_empty(), "no sidecar: plaintext");
        assert!(plain.ports.is_empty(), "the service's own port");
        assert_eq!(plain.weight, Some(3));
        assert_eq!(spec.endpoints.len(), 2, "no cluster exports it");
    }
}

const TWO_CLUSTERS: &str = "
clusters:
  - name: east
    gateways: [{address: 192.0.2.10}]
  - name: west
    network: network-west
    gateways: [{address: 198.51.100.20}, {address: gw.west.example.com}]
services:
  - name: reviews
    namespace: default
    exportedFrom: [east, west]
    ports: [{name: http, number: 9080, protocol: HTTP}]
  - name: ratings
    namespace: default
    exportedFrom: [west]
    ports: [{name: http, number: 9080, protocol: HTTP}]
";

/// Design §5, gateway health: a withdrawn gateway leaves every
/// ServiceEntry that pointed at it, the service's and its cluster's
/// per-cluster name's, but a ServiceEntry never loses its last endpoint:
/// with every gateway it has withdrawn, all stay. The VIPs do not move.
#[test]
fn withdrawn_gateways_leave_the_endpoints_but_never_the_last_one() {
    let zones = vec!["global".to_string()];
    let registry = load_str(TWO_CLUSTERS, "test.yaml", &zones).unwrap();
    let allocator = allocator();
    let mut table = Table::default();
    allocator.reconcile(&mut table, &index::wants(&registry, &zones, true), 0);
    let mut target = Target::new("east", "istio-system");
    let render = |target: &Target| {
        service_entries(&registry, &zones, true, &allocator, &table, target).unwrap()
    };
    let endpoints = |entries: &[ServiceEntry], host: &str| -> Vec<String> {
        let entry = entries.iter().find(|e| e.spec.hosts[0] == host).unwrap();
        entry
            .spec
            .endpoints
            .iter()
            .map(|e| e.address.clone())
            .collect()
    };
    let before = render(&target);
    let gw = |address: &str| crate::mesh::GatewayKey::new("west", address, 15443);

    target.withdrawn = [gw("198.51.100.20")].into();
    let one_down = render(&target);
    for host in ["ratings.default.global", "west.reviews.default.global"] {
        assert_eq!(
            endpoints(&one_down, host),
            ["gw.west.example.com."],
            "{host}"
        );
    }
    assert_eq!(
        endpoints(&one_down, "reviews.default.global"),
        ["gw.west.example.com.", "reviews.default.svc.cluster.local."]
    );

    target.withdrawn = [gw("198.51.100.20"), gw("gw.west.example.com")].into();
    let all_down = render(&target);
    // Nothing else to send to: every gateway stays.
    for host in ["ratings.default.global", "west.reviews.default.global"] {
        assert_eq!(
            endpoints(&all_down, host),
            ["198.51.100.20", "gw.west.example.com."],
            "{host}"
        );
    }
    // The local copy remains: the gateways go.
    assert_eq!(
        endpoints(&all_down, "reviews.default.global"),
        ["reviews.default.svc.cluster.local."]
    );
    let vips = |entries: &[ServiceEntry]| -> Vec<Vec<String>> {
        entries.iter().map(|e| e.spec.addresses.clone()).collect()
    };
    assert_eq!(vips(&all_down), vips(&before));
    // Another cluster's gateway of the same address is not this one.
    target.withdrawn = [crate::mesh::GatewayKey::new("east", "198.51.100.20", 15443)].into();
    assert_eq!(render(&target), before);
}

/// Design §2, §5: with per-cluster names, each exporter's name gets a
/// ServiceEntry of its own, after the service's, whose only endpoints are
/// that cluster's: its gateways from elsewhere, the local Service in the
/// cluster itself (so its east-west gateway has the SNI chain for the
/// name), and its own VIP.
#[test]
fn a_per_cluster_name_reaches_its_cluster_only() {
    const TWO: &str = "
clusters:
  - name: east
    gateways: [{address: 192.0.2.10}]
  - name: west
    network: network-west
    gateways: [{address: 198.51.100.20}, {address: gw.west.example.com}]
services:
  - name: reviews
    namespace: default
    exportedFrom: [east, west]
    ports: [{name: http, number: 9080, protocol: HTTP}]
";
    let zones = vec!["global".to_string()];
    let registry = load_str(TWO, "test.yaml", &zones).unwrap();
    let allocator = allocator();
    let mut table = Table::default();
    allocator.reconcile(&mut table, &index::wants(&registry, &zones, true), 0);
    let target = Target::new("east", "istio-system");
    let entries = service_entries(&registry, &zones, true, &allocator, &table, &target).unwrap();
    let hosts: Vec<&str> = entries.iter().map(|e| e.spec.hosts[0].as_str()).collect();
    assert_eq!(
        hosts,
        [
            "reviews.default.global",
            "east.reviews.default.global",
            "west.reviews.default.global"
        ]
    );
    let names: Vec<&str> = entries.iter().map(|e| e.metadata.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "reviews-default-global",
            "east-reviews-default-global",
            "west-reviews-default-global"
        ]
    );
    let addresses = |i: usize| -> Vec<&str> {
        entries[i]
            .spec
            .endpoints
            .iter()
            .map(|e| e.address.as_str())
            .collect()
    };
    assert_eq!(
        addresses(0),
        [
            "198.51.100.20",
            "gw.west.example.com.",
            "reviews.default.svc.cluster.local."
        ]
    );
    assert_eq!(addresses(1), ["reviews.default.svc.cluster.local."]);
    assert_eq!(entries[1].spec.endpoints[0].network, None);
    assert_eq!(addresses(2), ["198.51.100.20", "gw.west.example.com."]);
    assert_eq!(entries[2].spec.resolution, Resolution::Dns);
    assert_eq!(
        entries[2].spec.endpoints[0].network.as_deref(),
        Some("network-west")
    );
    assert_eq!(
        entries[2].spec.endpoints[0].ports,
        BTreeMap::from([("http".to_string(), 15443)])
    );
    let vips: std::collections::BTreeSet<&String> =
        entries.iter().map(|e| &e.spec.addresses[0]).collect();
    assert_eq!(vips.len(), 3, "a VIP each: {vips:?}");

    // In west, east's name goes through east's gateway.
    let west = Target::new("west", "istio-system");
    let entries = service_entries(&registry, &zones, true, &allocator, &table, &west).unwrap();
    assert_eq!(entries[1].spec.endpoints.len(), 1);
    assert_eq!(entries[1].spec.endpoints[0].address, "192.0.2.10");
    assert_eq!(
        entries[2].spec.endpoints[0].address,
        "reviews.default.svc.cluster.local."
    );
    // Off: the service's entry alone, as before.
    let off = service_entries(&registry, &zones, false, &allocator, &table, &west).unwrap();
    assert_eq!(off.len(), 1);
}
