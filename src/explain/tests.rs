use super::*;
use crate::index::{self, HandWritten};
use crate::vip::{Allocator, DEFAULT_V4_RANGE, Table, VipRange};

fn setup() -> (ZoneSet, Allocated, Allocator) {
    setup_with(false)
}

/// The example registry served, with per-cluster names or without.
fn setup_with(per_cluster: bool) -> (ZoneSet, Allocated, Allocator) {
    let zones = vec!["global".to_string()];
    let text = include_str!("../../examples/registry.yaml");
    let registry = crate::registry::load_str(text, "r.yaml", &zones).unwrap();
    let allocator = Allocator {
        v4: VipRange::new(DEFAULT_V4_RANGE.parse().unwrap(), Family::V4).unwrap(),
        v6: None,
        quarantine: 600,
    };
    let mut table = Table::default();
    allocator.reconcile(
        &mut table,
        &index::wants(&registry, &zones, per_cluster),
        1_795_392_000,
    );
    let hand_written = vec![
        HandWritten {
            host: "*.ext.global".to_string(),
            addresses: vec!["240.1.0.2".parse().unwrap()],
            source: "istio-system/ext".to_string(),
            beside_ours: None,
        },
        HandWritten {
            host: "httpbin.bar.global".to_string(),
            addresses: vec!["240.1.0.3".parse().unwrap()],
            source: "istio-system/old-httpbin".to_string(),
            beside_ours: Some(index::IstioPicks::HandWritten),
        },
    ];
    let built = index::zones(
        &registry,
        &zones,
        per_cluster,
        &allocator,
        &table,
        &hand_written,
        30,
        &[],
    )
    .unwrap();
    let (set, conflicts) = (built.zones, built.conflicts);
    let allocated = Allocated {
        registry,
        table,
        hand_written,
        conflicts,
    };
    (set, allocated, allocator)
}

#[test]
fn a_served_host_is_explained_end_to_end() {
    let (zones, allocated, allocator) = setup();
    let text = explain(
        "HttpBin.bar.global.",
        Some(&zones),
        Some(&allocated),
        &allocator,
        None,
    );
    for expected in [
        "name: httpbin.bar.global",
        "A: NOERROR 240.0.195.86",
        "AAAA: NOERROR, no AAAA data (NODATA; zone global.)",
        "registry: service httpbin in namespace bar, exported from west",
        "  west: gateway 198.51.100.20:15443, network network-west, locality us-west1/us-west1-a",
        "VIP IPv4: 240.0.195.86 since 2026-11-23T00:00:00Z (its first choice: every cluster on this registry computes the same)",
        "ServiceEntry: httpbin-bar-global",
        // Issue 24: which of two entries for the host Istio 1.30+ uses.
        "conflict: httpbin.bar.global of ServiceEntry istio-system/old-httpbin is in the \
         registry too: the registry's answer is served; Istio 1.30+ routes by ServiceEntry \
         istio-system/old-httpbin (the older) until it is deleted",
    ] {
        assert!(
            text.contains(expected),
            "`{expected}` missing from:\n{text}"
        );
    }
}

#[test]
fn missing_outside_and_hand_written_names_say_why() {
    let (zones, allocated, allocator) = setup();
    let text = explain(
        "nope.bar.global",
        Some(&zones),
        Some(&allocated),
        &allocator,
        None,
    );
    assert!(text.contains("A: NXDOMAIN (zone global.)"), "{text}");
    assert!(
        text.contains("why NXDOMAIN: no service `nope` in namespace `bar` (it exports: httpbin)"),
        "{text}"
    );
    let text = explain(
        "x.nowhere.global",
        Some(&zones),
        Some(&allocated),
        &allocator,
        None,
    );
    assert!(
        text.contains("why NXDOMAIN: no service is exported from namespace `nowhere`"),
        "{text}"
    );
    let text = explain(
        "example.com",
        Some(&zones),
        Some(&allocated),
        &allocator,
        None,
    );
    assert!(
        text.contains("not served: outside every zone (global.), so REFUSED"),
        "{text}"
    );
    let text = explain(
        "a.b.ext.global",
        Some(&zones),
        Some(&allocated),
        &allocator,
        None,
    );
    assert!(text.contains("A: NOERROR 240.1.0.2"), "{text}");
    assert!(
        text.contains(
            "hand-written: ServiceEntry istio-system/ext claims *.ext.global with 240.1.0.2"
        ),
        "{text}"
    );
    let text = explain("httpbin.bar.global", None, None, &allocator, None);
    assert!(text.contains("no registry loaded yet"), "{text}");
}

/// design §3: a VIP that is not the host's first choice is flagged, since
/// another cluster may have given the host a different one.
#[test]
fn a_vip_off_its_first_choice_is_flagged() {
    let (zones, mut allocated, allocator) = setup();
    let leases = allocated.table.hosts.get_mut("httpbin.bar.global").unwrap();
    let mut lease = leases.get(Family::V4).unwrap();
    lease.addr = "240.0.195.87".parse().unwrap();
    leases.insert(Family::V4, lease);
    let text = explain(
        "httpbin.bar.global",
        Some(&zones),
        Some(&allocated),
        &allocator,
        None,
    );
    assert!(
        text.contains(
            "VIP IPv4: 240.0.195.87 since 2026-11-23T00:00:00Z (not its first choice 240.0.195.86, \
             which was taken when it arrived: another cluster may have given it a different VIP)"
        ),
        "{text}"
    );
}

/// design §2: a registry version held back by the shrink brake is shown,
/// with what it would remove and when it would be published.
#[test]
fn a_held_back_reload_is_shown() {
    use crate::registry::brake::{BrakeConfig, HeldBack};
    let (zones, allocated, allocator) = setup();
    let held = HeldBack {
        removed: 7,
        of: 10,
        since: std::time::Instant::now(),
        config: BrakeConfig {
            share: 0.5,
            hold: std::time::Duration::from_secs(30),
        },
    };
    let text = explain(
        "httpbin.bar.global",
        Some(&zones),
        Some(&allocated),
        &allocator,
        Some(&held),
    );
    assert!(text.contains("registry reload held back (seen "), "{text}");
    assert!(
        text.contains("it would remove 7 of the 10 services served (more than --shrink-brake 0.5)"),
        "{text}"
    );
}

/// Issue 11: `explain` shows the workloads outside Kubernetes of a service.
/// `text`, a registry, served in `global` without per-cluster names and
/// without hand-written entries.
fn served(text: &str) -> (ZoneSet, Allocated, Allocator) {
    let zones = vec!["global".to_string()];
    let registry = crate::registry::load_str(text, "r.yaml", &zones).unwrap();
    let allocator = Allocator {
        v4: VipRange::new(DEFAULT_V4_RANGE.parse().unwrap(), Family::V4).unwrap(),
        v6: None,
        quarantine: 600,
    };
    let mut table = Table::default();
    allocator.reconcile(&mut table, &index::wants(&registry, &zones, false), 0);
    let set = index::zones(&registry, &zones, false, &allocator, &table, &[], 30, &[])
        .unwrap()
        .zones;
    let allocated = Allocated {
        registry,
        table,
        hand_written: Vec::new(),
        conflicts: Vec::new(),
    };
    (set, allocated, allocator)
}

#[test]
fn workloads_outside_kubernetes_are_explained() {
    let (set, allocated, allocator) = served(include_str!("../../examples/vm.yaml"));
    let text = explain(
        "catalog.shop.global",
        Some(&set),
        Some(&allocated),
        &allocator,
        None,
    );
    assert!(text.contains("exported from no cluster"), "{text}");
    assert!(
        text.contains(
            "outside Kubernetes: 192.0.2.50 (network network-east, service account catalog, sidecar: mTLS)"
        ),
        "{text}"
    );
    assert!(
        text.contains("outside Kubernetes: catalog-vm-2.example.com (ports http:18080)"),
        "{text}"
    );
}

/// Issue 15: explain shows the peer clusters (staleness included) and the
/// merge's conflicts about the name's service.
#[test]
fn peers_and_conflicts_are_explained() {
    use crate::metrics::PeerStatus;
    let state = Federation {
        peers: [
            (
                "north".to_string(),
                PeerStatus {
                    namespace: "globaldns".to_string(),
                    listed: true,
                    mesh_cluster: true,
                    unreachable_for: Some(std::time::Duration::from_secs(90)),
                    ..PeerStatus::default()
                },
            ),
            (
                "west".to_string(),
                PeerStatus {
                    namespace: "globaldns".to_string(),
                    listed: true,
                    mesh_cluster: true,
                    ..PeerStatus::default()
                },
            ),
        ]
        .into(),
        conflicts: vec![
            "service reviews.bar: west defines other ports than east: east's definition is served and west is not routed to".to_string(),
            "service other.bar: x".to_string(),
        ],
        warnings: vec![
            "ServiceExport bar/reviews: no Service bar/reviews to export".to_string(),
            "ServiceExport bar/other: no Service bar/other to export".to_string(),
        ],
    };
    let text = federation("reviews.bar.global.", &state);
    assert!(
        text.contains("peer north: unreachable for 90s: its last exports keep serving"),
        "{text}"
    );
    assert!(text.contains("peer west: answers"), "{text}");
    assert!(
        text.contains("conflict between clusters: service reviews.bar: west defines"),
        "{text}"
    );
    assert!(!text.contains("other.bar"), "{text}");
    // Issue 29 (2): what the ServiceExport's Valid condition says.
    assert!(
        text.contains("export left out: ServiceExport bar/reviews: no Service bar/reviews"),
        "{text}"
    );
    assert!(!text.contains("bar/other"), "{text}");
}

/// Issue 24: a peer read in a namespace that holds no MeshCluster of its
/// name, one that refuses the list, and one no client could be made for
/// are each said in explain, never a silent empty registry.
#[test]
fn peers_that_give_nothing_say_why() {
    use crate::metrics::PeerStatus;
    let state = Federation {
        peers: [
            (
                "west".to_string(),
                PeerStatus {
                    namespace: "default".to_string(),
                    listed: true,
                    mesh_cluster: false,
                    ..PeerStatus::default()
                },
            ),
            (
                "south".to_string(),
                PeerStatus {
                    namespace: "globaldns".to_string(),
                    error: Some("watching MeshClusters: 403 Forbidden".to_string()),
                    unreachable_for: Some(std::time::Duration::from_secs(4)),
                    ..PeerStatus::default()
                },
            ),
            (
                "north".to_string(),
                PeerStatus {
                    error: Some(
                        "Secret globaldns/north: the kubeconfig does not parse".to_string(),
                    ),
                    ..PeerStatus::default()
                },
            ),
        ]
        .into(),
        conflicts: Vec::new(),
        warnings: Vec::new(),
    };
    let text = federation("httpbin.bar.global", &state);
    for expected in [
        "peer west: answers, but holds no MeshCluster `west` in namespace default: its own exports are not served",
        "peer south: unreachable for 4s: its last exports keep serving; last error: watching MeshClusters: 403 Forbidden",
        "peer north: not read: Secret globaldns/north: the kubeconfig does not parse",
    ] {
        assert!(
            text.contains(expected),
            "`{expected}` missing from:\n{text}"
        );
    }
}

/// Design §2: a per-cluster name is explained as such (which cluster's
/// copy it reaches, through which gateway, its own VIP), the service's
/// host lists its per-cluster names, and a per-cluster name that is not
/// served says why.
#[test]
fn per_cluster_names_are_explained() {
    let (zones, allocated, allocator) = setup_with(true);
    let text = explain(
        "west.httpbin.bar.global",
        Some(&zones),
        Some(&allocated),
        &allocator,
        None,
    );
    assert!(text.contains("A: NOERROR 240."), "{text}");
    assert!(
        text.contains(
            "registry: the per-cluster name of service httpbin in namespace bar for cluster west: it reaches west's copy only"
        ),
        "{text}"
    );
    assert!(
        text.contains("  west: gateway 198.51.100.20:15443"),
        "{text}"
    );
    assert!(text.contains("VIP IPv4: 240."), "{text}");
    assert!(
        text.contains("ServiceEntry: west-httpbin-bar-global"),
        "{text}"
    );
    assert!(
        !text.contains("240.0.195.86"),
        "not the service's VIP: {text}"
    );

    let text = explain(
        "httpbin.bar.global",
        Some(&zones),
        Some(&allocated),
        &allocator,
        None,
    );
    assert!(
        text.contains(
            "per-cluster names (each reaches its cluster's copy only): west.httpbin.bar.global"
        ),
        "{text}"
    );
    // east does not export httpbin: no such name.
    let text = explain(
        "east.httpbin.bar.global",
        Some(&zones),
        Some(&allocated),
        &allocator,
        None,
    );
    assert!(text.contains("A: NXDOMAIN"), "{text}");
    assert!(
        text.contains("registry: no service has this host"),
        "{text}"
    );

    let (zones, allocated, allocator) = setup_with(false);
    let text = explain(
        "west.httpbin.bar.global",
        Some(&zones),
        Some(&allocated),
        &allocator,
        None,
    );
    assert!(
        text.contains("why NXDOMAIN: per-cluster names are not served (--no-per-cluster-names)"),
        "{text}"
    );
    let text = explain(
        "httpbin.bar.global",
        Some(&zones),
        Some(&allocated),
        &allocator,
        None,
    );
    assert!(!text.contains("per-cluster names"), "{text}");
}

/// Design §5, gateway health: explain names the withdrawn gateways of the
/// name's exporters, since when and why, and says when all of them are
/// down (then they all stay).
#[test]
fn withdrawn_gateways_are_explained() {
    use crate::mesh::GatewayKey;
    use crate::mesh::gateway_health::GatewayStatus;
    let (_, allocated, _) = setup();
    let down = GatewayStatus {
        up: false,
        consecutive_failures: 3,
        consecutive_successes: 0,
        last_error: Some("connect to 198.51.100.20:15443: connection refused".to_string()),
        since: std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_392_000),
    };
    let key = GatewayKey::new("west", "198.51.100.20", 15443);
    let status = std::collections::BTreeMap::from([(key.clone(), down.clone())]);
    let text = gateways("httpbin.bar.global", Some(&allocated), &status);
    assert_eq!(
        text,
        "gateway 198.51.100.20:15443 of west: withdrawn since 2026-11-23T00:00:00Z \
         (3 failed probes in a row: connect to 198.51.100.20:15443: connection refused)\n\
         every probed gateway is down: all stay in the ServiceEntries (one never loses its last endpoint)\n"
    );
    // The per-cluster name too; another service's name says nothing.
    assert!(gateways("west.httpbin.bar.global", Some(&allocated), &status).contains("withdrawn"));
    assert_eq!(gateways("sleep.foo.global", Some(&allocated), &status), "");
    // Up again: nothing to say.
    let up = GatewayStatus { up: true, ..down };
    let status = std::collections::BTreeMap::from([(key, up)]);
    assert_eq!(
        gateways("httpbin.bar.global", Some(&allocated), &status),
        ""
    );
}

/// Issue 27 item 2: a service with a failover policy says, for a client in
/// each exporting cluster and elsewhere, the order and shares of its
/// copies, the thresholds, and where each comes from; a single-exporter
/// service says nothing of failover.
#[test]
fn the_failover_order_is_explained_per_client_cluster() {
    let (set, allocated, allocator) = served(include_str!("../../examples/failover.yaml"));
    let ask = |name: &str| explain(name, Some(&set), Some(&allocated), &allocator, None);
    let reviews = ask("reviews.bookinfo.global");
    for line in [
        "failover (the registry's defaults order, none given weights, the registry's defaults thresholds):",
        "  from east: east, then west, then south",
        "  from south: south, then west, then east",
        "  from other clusters: west, then south, then east",
        "  a copy is ejected after 3 errors in a row (checked every 5s, out for 30s at first, at most 100% at once)",
    ] {
        assert!(reviews.contains(line), "{line}\n{reviews}");
    }
    let ratings = ask("ratings.bookinfo.global");
    assert!(
        ratings.contains("  from other clusters: west (weight 80) and south (weight 20)"),
        "{ratings}"
    );
    assert!(
        ratings.contains("  from west: west (weight 80), then south (weight 20)"),
        "{ratings}"
    );
    assert!(!ask("details.bookinfo.global").contains("failover"));
}
