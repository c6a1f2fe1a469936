use super::*;
use crate::dns::lookup::{Outcome, lookup};
use crate::vip::{DEFAULT_V4_RANGE, Family, VipRange};
use hickory_proto::rr::{LowerName, Name, RecordType};

fn hand(host: &str, addr: &str, source: &str) -> HandWritten {
    HandWritten {
        host: host.to_string(),
        addresses: vec![addr.parse().unwrap()],
        source: source.to_string(),
        beside_ours: None,
    }
}

/// `text` loaded, and its hosts given VIPs from the default range.
fn allocated(text: &str, zone_names: &[String]) -> (Registry, Allocator, Table) {
    let registry = crate::registry::load_str(text, "r.yaml", zone_names).unwrap();
    let allocator = Allocator {
        v4: VipRange::new(DEFAULT_V4_RANGE.parse().unwrap(), Family::V4).unwrap(),
        v6: None,
        quarantine: 600,
    };
    let mut table = Table::default();
    allocator.reconcile(&mut table, &wants(&registry, zone_names, false), 0);
    (registry, allocator, table)
}

/// Issue 10: one host whose names cannot be built (a port name too
/// long for an SRV label, which validation now refuses, built here
/// without it) used to fail the whole snapshot, and every later change
/// with it. It is left out alone and reported.
#[test]
fn a_host_that_cannot_be_built_is_left_out_alone() {
    let zone_names = vec!["global".to_string()];
    let (mut registry, allocator, mut table) =
        allocated(include_str!("../../examples/registry.yaml"), &zone_names);
    let mut bad = (*registry.services[0]).clone();
    bad.name = "toolong".into();
    bad.ports[0] = crate::registry::Port::new(&"p".repeat(63), bad.ports[0].number, "TCP");
    registry.services = registry
        .services
        .iter()
        .cloned()
        .chain([Arc::new(bad)])
        .collect();
    allocator.reconcile(&mut table, &wants(&registry, &zone_names, false), 0);
    let built = zones(
        &registry,
        &zone_names,
        false,
        &allocator,
        &table,
        &[],
        30,
        &[],
    )
    .unwrap();
    assert_eq!(built.left_out.len(), 1, "{:?}", built.left_out);
    assert!(
        built.left_out[0].contains("host toolong.bar.global not served"),
        "{:?}",
        built.left_out
    );
    assert!(answer(&built.zones, "httpbin.bar.global").is_some());
    assert!(answer(&built.zones, "toolong.bar.global").is_none());
    // Nothing of it stays behind: not even the empty non-terminal of
    // its SRV names.
    let srv = LowerName::new(&Name::from_ascii("_tcp.toolong.bar.global").unwrap());
    assert!(matches!(
        lookup(&built.zones, &srv, RecordType::A),
        Outcome::NxDomain { .. }
    ));
}

fn answer(zones: &ZoneSet, name: &str) -> Option<String> {
    let name = LowerName::new(&Name::from_ascii(name).unwrap());
    match lookup(zones, &name, RecordType::A) {
        Outcome::Answer { answers, .. } => Some(answers[0].data.to_string()),
        _ => None,
    }
}

/// design §5 drop-in mode: hand-written hosts are answered with their
/// own addresses; the registry wins a host both claim; two hand-written
/// entries for one host: the first by namespace/name; hosts outside the
/// zones are ignored.
#[test]
fn hand_written_hosts_join_the_zones_and_the_registry_wins() {
    let zone_names = vec!["global".to_string()];
    let (registry, allocator, table) =
        allocated(include_str!("../../examples/registry.yaml"), &zone_names);
    let hand_written = [
        hand("legacy.db.global", "240.1.0.1", "istio-system/legacy"),
        hand("*.ext.global", "240.1.0.2", "istio-system/ext"),
        hand(
            "httpbin.bar.global",
            "240.1.0.3",
            "istio-system/old-httpbin",
        ),
        hand("legacy.db.global", "240.1.0.4", "team/z-copy"),
        hand("outside.example.com", "240.1.0.5", "istio-system/outside"),
    ];
    let Built {
        zones, conflicts, ..
    } = zones(
        &registry,
        &zone_names,
        false,
        &allocator,
        &table,
        &hand_written,
        30,
        &[],
    )
    .unwrap();
    assert_eq!(
        answer(&zones, "legacy.db.global."),
        Some("240.1.0.1".to_string())
    );
    assert_eq!(
        answer(&zones, "a.b.ext.global."),
        Some("240.1.0.2".to_string())
    );
    assert_eq!(
        answer(&zones, "httpbin.bar.global."),
        Some("240.0.195.86".to_string())
    );
    assert_eq!(answer(&zones, "outside.example.com."), None);
    assert_eq!(
        conflicts,
        [
            "httpbin.bar.global of ServiceEntry istio-system/old-httpbin is in the registry too: the registry's answer is served",
            "legacy.db.global of ServiceEntry team/z-copy is also claimed by ServiceEntry istio-system/legacy, whose answer is served",
        ]
    );
}

/// Issue 24: since Istio 1.30 the older of two ServiceEntries for one host
/// is the one sidecars route by, so during a drop-in migration a
/// hand-written entry beats globaldns's until it is deleted. The conflict
/// says which one Istio uses, and the older hand-written ones are counted.
#[test]
fn a_registry_host_says_which_serviceentry_istio_routes_by() {
    let zone_names = vec!["global".to_string()];
    let (registry, allocator, table) =
        allocated(include_str!("../../examples/registry.yaml"), &zone_names);
    let mut older = hand(
        "httpbin.bar.global",
        "240.1.0.3",
        "istio-system/old-httpbin",
    );
    older.beside_ours = Some(IstioPicks::HandWritten);
    let mut newer = hand("sleep.foo.global", "240.1.0.4", "foo/new-sleep");
    newer.beside_ours = Some(IstioPicks::Ours("istio-system/sleep-foo-global".into()));
    let built = zones(
        &registry,
        &zone_names,
        false,
        &allocator,
        &table,
        &[older, newer],
        30,
        &[],
    )
    .unwrap();
    assert_eq!(
        built.conflicts,
        [
            // In the order of the hand-written entries' names.
            "sleep.foo.global of ServiceEntry foo/new-sleep is in the registry too: the registry's \
             answer is served; Istio routes by globaldns's ServiceEntry \
             istio-system/sleep-foo-global (the older)",
            "httpbin.bar.global of ServiceEntry istio-system/old-httpbin is in the registry too: \
             the registry's answer is served; Istio 1.30+ routes by ServiceEntry \
             istio-system/old-httpbin (the older) until it is deleted",
        ]
    );
    assert_eq!(built.istio_prefers_hand_written, 1);
}

/// The name table is sized from [`sizes`] once; a count short by one name
/// would double it while it grows, and room for keys never used stays
/// resident. Two zones, services with one and two ports, a
/// namespace shared: names, key bytes and SRV names are exact.
#[test]
fn the_name_count_and_key_bytes_are_exact() {
    let text = "clusters: [{name: west, gateways: [{address: 192.0.2.1}]}]
services:
  - {name: a, namespace: x, exportedFrom: [west], ports: [{name: tcp, number: 5432, protocol: TCP}]}
  - {name: b, namespace: x, exportedFrom: [west], ports: [{name: http, number: 80, protocol: HTTP}]}
  - {name: c, namespace: y, exportedFrom: [west], ports: [{name: http, number: 80, protocol: HTTP}, {name: grpc, number: 90, protocol: GRPC}]}
";
    let zone_names = vec!["global".to_string(), "mesh".to_string()];
    let (registry, allocator, table) = allocated(text, &zone_names);
    let set = zones(
        &registry,
        &zone_names,
        false,
        &allocator,
        &table,
        &[],
        30,
        &[],
    )
    .unwrap()
    .zones;
    assert_eq!(sizes(&registry, &zone_names, false, &[]), set.stored());
    // Per zone: apex and ns, a and b (3 names each), c (4), namespaces
    // x and y.
    assert_eq!(set.len(), 2 * (2 + 3 + 3 + 4 + 2));

    // With per-cluster names: each service's `west.` name and its SRV
    // names besides (VIPs for them are not needed to count).
    let set = zones(
        &registry,
        &zone_names,
        true,
        &allocator,
        &table,
        &[],
        30,
        &[],
    )
    .unwrap()
    .zones;
    assert_eq!(sizes(&registry, &zone_names, true, &[]), set.stored());
    assert_eq!(set.len(), 2 * (2 + 2 * (3 + 3 + 4) + 2));
}

/// Design §2: the hosts of a service in a zone are its own, pinned in the
/// pin zone, then one per exporter, in `exportedFrom` order, never pinned.
#[test]
fn a_service_has_a_per_cluster_name_per_exporter() {
    let text = "clusters: [{name: west, gateways: [{address: 192.0.2.1}]}, {name: east, gateways: [{address: 192.0.2.2}]}]
services:
  - {name: a, namespace: x, exportedFrom: [west, east], ports: [{name: tcp, number: 5432, protocol: TCP}], addresses: [240.0.0.9]}
";
    let zone_names = vec!["global".to_string(), "mesh".to_string()];
    let registry = crate::registry::load_str(text, "r.yaml", &zone_names).unwrap();
    let got: Vec<(Option<&str>, String, usize)> =
        hosts(&registry.services[0], "global", pin_zone(&zone_names), true)
            .map(|(cluster, want)| (cluster, want.host.to_string(), want.pinned.len()))
            .collect();
    assert_eq!(
        got,
        [
            (None, "a.x.global".to_string(), 1),
            (Some("west"), "west.a.x.global".to_string(), 0),
            (Some("east"), "east.a.x.global".to_string(), 0),
        ]
    );
    let all: Vec<String> = wants(&registry, &zone_names, true)
        .into_iter()
        .map(|w| w.host.to_string())
        .collect();
    assert_eq!(
        all,
        [
            "a.x.global",
            "west.a.x.global",
            "east.a.x.global",
            "a.x.mesh",
            "west.a.x.mesh",
            "east.a.x.mesh"
        ]
    );
    assert_eq!(wants(&registry, &zone_names, false).len(), 2);
}

/// The registry of the MCS tests: two services in two namespaces, and the
/// same with a third in a namespace of its own.
const MCS: &str = "clusters: [{name: west, gateways: [{address: 192.0.2.1}]}, {name: east, gateways: [{address: 192.0.2.2}]}]
services:
  - {name: a, namespace: x, exportedFrom: [west, east], ports: [{name: tcp, number: 5432, protocol: TCP}], addresses: [192.0.2.9]}
  - {name: b, namespace: y, exportedFrom: [west], ports: [{name: http, number: 80, protocol: HTTP}]}
";
const MCS_MORE: &str = "
  - {name: c, namespace: z, exportedFrom: [east], ports: [{name: grpc, number: 90, protocol: GRPC}]}
";

fn mcs_zones() -> Vec<String> {
    vec![
        "zz".to_string(),
        crate::naming::clusterset_suffix("clusterset.local"),
    ]
}

/// MCS DNS spec §2.3.1, §2.3.4: in a clusterset zone's suffix a service
/// has its own host only, never per-cluster names, and it is never the pin
/// zone (here `zz` keeps the pin though `svc.clusterset.local` sorts
/// first); [`clusterset_suffix_in`] names the suffix whose host's VIP is
/// the ClusterSetIP.
#[test]
fn a_clusterset_zone_has_no_per_cluster_names_and_no_pins() {
    let zone_names = mcs_zones();
    let registry = crate::registry::load_str(MCS, "r.yaml", &zone_names).unwrap();
    assert_eq!(pin_zone(&zone_names), Some("zz"));
    let all: Vec<(String, usize)> = wants(&registry, &zone_names, true)
        .into_iter()
        .map(|w| (w.host.to_string(), w.pinned.len()))
        .collect();
    let all: Vec<(&str, usize)> = all.iter().map(|(h, p)| (h.as_str(), *p)).collect();
    assert_eq!(
        all,
        [
            ("a.x.zz", 1),
            ("west.a.x.zz", 0),
            ("east.a.x.zz", 0),
            ("b.y.zz", 0),
            ("west.b.y.zz", 0),
            ("a.x.svc.clusterset.local", 0),
            ("b.y.svc.clusterset.local", 0),
        ]
    );
    let a = &registry.services[0];
    assert_eq!(
        clusterset_suffix_in(&zone_names)
            .map(|z| a.host(z))
            .as_deref(),
        Some("a.x.svc.clusterset.local")
    );
    assert_eq!(clusterset_suffix_in(&zone_names[..1]), None);
}

/// The full build of a clusterset zone: its apex `clusterset.local` with
/// SOA, `svc` and `dns-version` (TXT `1.0.0`, MCS DNS spec §2.2) under it,
/// the hosts with their VIPs, no per-cluster names; counted exactly.
#[test]
fn a_clusterset_zone_is_built_at_its_apex() {
    let zone_names = mcs_zones();
    let (registry, allocator, table) = allocated(MCS, &zone_names);
    let built = zones(
        &registry,
        &zone_names,
        true,
        &allocator,
        &table,
        &[],
        30,
        &[],
    )
    .unwrap();
    let set = built.zones;
    assert_eq!(sizes(&registry, &zone_names, true, &[]), set.stored());
    let apex = LowerName::new(&Name::from_ascii("clusterset.local.").unwrap());
    let zone = set.find(&apex).unwrap();
    assert_eq!(zone.origin, apex);
    let version = LowerName::new(&Name::from_ascii("dns-version.clusterset.local.").unwrap());
    match lookup(&set, &version, RecordType::TXT) {
        Outcome::Answer { answers, .. } => assert_eq!(answers[0].data.to_string(), "1.0.0"),
        other => panic!("{other:?}"),
    }
    let vip = answer(&set, "a.x.svc.clusterset.local.").unwrap();
    assert_ne!(vip, "192.0.2.9", "the pin is zz's");
    assert_eq!(answer(&set, "a.x.zz.").unwrap(), "192.0.2.9");
    for nodata in [
        "svc.clusterset.local.",
        "x.svc.clusterset.local.",
        "clusterset.local.",
    ] {
        let name = LowerName::new(&Name::from_ascii(nodata).unwrap());
        assert!(
            matches!(lookup(&set, &name, RecordType::A), Outcome::NoData { .. }),
            "{nodata}"
        );
    }
    for nx in [
        "west.a.x.svc.clusterset.local.",
        "a.x.clusterset.local.",
        "c.z.svc.clusterset.local.",
    ] {
        let name = LowerName::new(&Name::from_ascii(nx).unwrap());
        assert!(
            matches!(lookup(&set, &name, RecordType::A), Outcome::NxDomain { .. }),
            "{nx}"
        );
    }
}

/// A patch of a set with a clusterset zone is the full build: a service
/// added brings its namespace, removed takes it away, and `svc.<zone>`
/// stays even when no service is left under it. With per-cluster names
/// asked for, as they are never made there (a removed host with
/// per-cluster names below it takes a full build, `SharedName`).
#[test]
fn a_clusterset_zone_is_patched_as_it_is_built() {
    let zone_names = mcs_zones()[1..].to_vec();
    let more = format!("{MCS}{}", MCS_MORE.trim_start_matches('\n'));
    let (after, allocator, table) = allocated(&more, &zone_names);
    let before = crate::registry::load_str(MCS, "r.yaml", &zone_names).unwrap();
    let full = |registry: &Registry| {
        zones(
            registry,
            &zone_names,
            true,
            &allocator,
            &table,
            &[],
            30,
            &[],
        )
        .unwrap()
    };
    let added = vec![after.services[2].clone()];
    let Built {
        zones: set,
        mut parents,
        ..
    } = full(&before);
    let patched = patch(
        &set,
        &mut parents,
        &zone_names,
        true,
        &allocator,
        &table,
        &[],
        &[],
        &added,
    )
    .unwrap();
    assert_eq!(patched.dump(), full(&after).zones.dump());

    let Built {
        zones: set,
        mut parents,
        ..
    } = full(&after);
    let patched = patch(
        &set,
        &mut parents,
        &zone_names,
        true,
        &allocator,
        &table,
        &[],
        &added,
        &[],
    )
    .unwrap();
    assert_eq!(patched.dump(), full(&before).zones.dump());

    // Every service gone: the apex, `svc` and `dns-version` remain.
    let Built {
        zones: set,
        mut parents,
        ..
    } = full(&before);
    let all = before.services.to_vec();
    let empty = patch(
        &set,
        &mut parents,
        &zone_names,
        true,
        &allocator,
        &table,
        &[],
        &all,
        &[],
    )
    .unwrap();
    let svc = LowerName::new(&Name::from_ascii("svc.clusterset.local.").unwrap());
    assert!(matches!(
        lookup(&empty, &svc, RecordType::A),
        Outcome::NoData { .. }
    ));
    let x = LowerName::new(&Name::from_ascii("x.svc.clusterset.local.").unwrap());
    assert!(matches!(
        lookup(&empty, &x, RecordType::A),
        Outcome::NxDomain { .. }
    ));
}
