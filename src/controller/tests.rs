use super::*;
use crate::vip::{Family, VipRange};
use std::path::Path;

fn registry(services: &[(&str, Option<std::net::IpAddr>)]) -> Registry {
    let mut text = String::from(
        "clusters:\n  - name: west\n    gateways: [{address: 192.0.2.20}]\nservices:\n",
    );
    for (name, pinned) in services {
        let pinned = pinned.map_or(String::new(), |a| format!(", addresses: [{a}]"));
        text.push_str(&format!(
            "  - {{name: {name}, namespace: ns, exportedFrom: [west]{pinned}, ports: [{{name: http, number: 80, protocol: HTTP}}]}}\n"
        ));
    }
    crate::registry::load_str(&text, "registry.yaml", &["global".to_string()]).unwrap()
}

/// design §3: where two clusters may disagree is visible. Of two hosts
/// with the same first choice, the one placed second is counted in
/// `globaldns_vip_not_first_choice`; pinning it where it is (every cluster
/// then agrees) takes it off the count.
#[test]
fn hosts_off_their_first_choice_are_counted_unless_pinned() {
    let allocator = Allocator {
        v4: VipRange::new("240.0.0.0/26".parse().unwrap(), Family::V4).unwrap(),
        v6: None,
        quarantine: 600,
    };
    let first = |name: &str| allocator.v4.first_choice(&format!("{name}.ns.global"));
    let names: Vec<String> = (0..200).map(|i| format!("s{i}")).collect();
    let (a, b) = names
        .iter()
        .enumerate()
        .find_map(|(i, a)| {
            let b = names[i + 1..].iter().find(|b| first(b) == first(a))?;
            Some((a.as_str(), b.as_str()))
        })
        .expect("two names with one first choice among 200 in 63 slots");
    let settings = Settings {
        zones: vec!["global".to_string()],
        per_cluster_names: false,
        ttl: 30,
        allocator: allocator.clone(),
        ns_addresses: Vec::new(),
    };
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::default());
    let mut controller = Controller::start(
        settings,
        dir.path(),
        Arc::new(Published::default()),
        metrics.clone(),
        Vec::new(),
    );
    controller.apply(registry(&[(a, None), (b, None)]), SystemTime::now());
    assert_eq!(metrics.vip.not_first_choice.load(Relaxed), 1);
    // Hosts arriving together are placed in name order.
    let second = format!("{}.ns.global", a.max(b));
    let addr = controller.table.lease(&second, Family::V4).unwrap().addr;
    assert_ne!(Some(addr), first(a.max(b)));

    let pinned = |name: &str| (name == a.max(b)).then_some(addr);
    controller.apply(
        registry(&[(a, pinned(a)), (b, pinned(b))]),
        SystemTime::now(),
    );
    assert_eq!(metrics.vip.not_first_choice.load(Relaxed), 0);
}

/// The A answer of the published snapshot for `host`.
fn answer(published: &Published, host: &str) -> Option<std::net::IpAddr> {
    use crate::dns::lookup::{Outcome, lookup};
    use hickory_proto::rr::{LowerName, Name, RData, RecordType};
    let zones = published.load_full()?;
    let name = LowerName::new(&Name::from_ascii(host).unwrap());
    match lookup(&zones, &name, RecordType::A) {
        Outcome::Answer { answers, .. } => match &answers[0].data {
            RData::A(a) => Some(std::net::IpAddr::V4(a.0)),
            _ => None,
        },
        _ => None,
    }
}

/// Issue 10: a replica with its own state directory kept its table's VIP
/// when the owned ServiceEntry (written by the leader) recorded another,
/// so replicas answered different VIPs for one host. The record wins: at
/// start over the state directory, and whenever it changes; the move is
/// counted.
#[test]
fn the_recorded_vips_win_over_the_state_directory() {
    let settings = Settings {
        zones: vec!["global".to_string()],
        per_cluster_names: false,
        ttl: 30,
        ns_addresses: Vec::new(),
        allocator: Allocator {
            v4: VipRange::new("240.0.0.0/12".parse().unwrap(), Family::V4).unwrap(),
            v6: None,
            quarantine: 600,
        },
    };
    let dir = tempfile::tempdir().unwrap();
    let host = "a.ns.global";
    // This replica's history gave the host its own VIP.
    let own = {
        let mut controller = Controller::start(
            settings.clone(),
            dir.path(),
            Arc::new(Published::default()),
            Arc::new(Metrics::default()),
            Vec::new(),
        );
        controller.apply(registry(&[("a", None)]), SystemTime::now());
        controller.table.lease(host, Family::V4).unwrap().addr
    };
    let leader: std::net::IpAddr = if own == "240.0.7.7".parse::<std::net::IpAddr>().unwrap() {
        "240.0.8.8".parse().unwrap()
    } else {
        "240.0.7.7".parse().unwrap()
    };
    // Restarted on the same state directory, with the leader's record.
    let published = Arc::new(Published::default());
    let metrics = Arc::new(Metrics::default());
    let mut controller = Controller::start(
        settings,
        dir.path(),
        published.clone(),
        metrics.clone(),
        vec![(host.to_string(), vec![leader])],
    );
    assert_eq!(
        answer(&published, host),
        Some(leader),
        "warm start follows the record"
    );
    controller.apply(registry(&[("a", None)]), SystemTime::now());
    assert_eq!(answer(&published, host), Some(leader));
    assert_eq!(metrics.vip.followed.load(Relaxed), 1);

    // The record changes (a new leader, another replica's history): the
    // answer follows without any registry change.
    let next: std::net::IpAddr = "240.0.9.9".parse().unwrap();
    let applied = controller.set_record(vec![(host.to_string(), vec![next])], SystemTime::now());
    assert!(applied.published);
    assert_eq!(answer(&published, host), Some(next));
    // The same record again: nothing to do.
    let again = controller.set_record(vec![(host.to_string(), vec![next])], SystemTime::now());
    assert!(!again.published);
}

/// Issue 11: a pin was bound to "the first zone", so reordering `--zone`
/// flags moved it to another host, silently. Pins go to the zone that
/// sorts first: reordering moves nothing; adding a zone that sorts first
/// moves the pin, and that is logged and counted.
#[test]
fn pins_follow_the_zone_that_sorts_first_and_a_move_is_counted() {
    let pin: std::net::IpAddr = "240.0.9.9".parse().unwrap();
    let start = |zones: &[&str], metrics: Arc<Metrics>| {
        let settings = Settings {
            zones: zones.iter().map(|z| z.to_string()).collect(),
            per_cluster_names: false,
            ttl: 30,
            ns_addresses: Vec::new(),
            allocator: Allocator {
                v4: VipRange::new("240.0.0.0/12".parse().unwrap(), Family::V4).unwrap(),
                v6: None,
                quarantine: 600,
            },
        };
        let dir = tempfile::tempdir().unwrap();
        let published = Arc::new(Published::default());
        let controller =
            Controller::start(settings, dir.path(), published.clone(), metrics, Vec::new());
        (controller, published, dir)
    };
    let text = |zones: &[&str]| {
        let text = format!(
            "clusters:\n  - name: west\n    gateways: [{{address: 192.0.2.20}}]\nservices:\n  - {{name: a, namespace: ns, exportedFrom: [west], addresses: [{pin}], ports: [{{name: http, number: 80, protocol: HTTP}}]}}\n"
        );
        let zones: Vec<String> = zones.iter().map(|z| z.to_string()).collect();
        crate::registry::load_str(&text, "r.yaml", &zones).unwrap()
    };
    for order in [["mesh", "global"], ["global", "mesh"]] {
        let (mut controller, published, _dir) = start(&order, Arc::new(Metrics::default()));
        controller.apply(text(&order), SystemTime::now());
        assert_eq!(answer(&published, "a.ns.global"), Some(pin), "{order:?}");
        assert_ne!(answer(&published, "a.ns.mesh"), Some(pin), "{order:?}");
    }
    // A restart on the same state with a zone that sorts first: the pin
    // moves to it, and that is counted (at the warm start already).
    let (mut controller, _, dir) = start(&["global", "mesh"], Arc::new(Metrics::default()));
    controller.apply(text(&["global", "mesh"]), SystemTime::now());
    drop(controller);
    let metrics = Arc::new(Metrics::default());
    let settings = Settings {
        zones: vec!["aaa".to_string(), "global".to_string(), "mesh".to_string()],
        per_cluster_names: false,
        ttl: 30,
        ns_addresses: Vec::new(),
        allocator: Allocator {
            v4: VipRange::new("240.0.0.0/12".parse().unwrap(), Family::V4).unwrap(),
            v6: None,
            quarantine: 600,
        },
    };
    let published = Arc::new(Published::default());
    let mut controller = Controller::start(
        settings,
        dir.path(),
        published.clone(),
        metrics.clone(),
        Vec::new(),
    );
    assert_eq!(
        metrics.vip.pins_moved.load(Relaxed),
        1,
        "seen at the warm start"
    );
    controller.apply(text(&["aaa", "global", "mesh"]), SystemTime::now());
    assert_eq!(answer(&published, "a.ns.aaa"), Some(pin));
    assert_eq!(metrics.vip.pins_moved.load(Relaxed), 1, "counted once");
}

/// A controller in a fresh state directory, serving `global` and `mesh`
/// from a small range (so that hosts collide), IPv4 and IPv6, with
/// per-cluster names or without.
fn small(dir: &Path, per_cluster_names: bool) -> (Controller, Arc<Published>) {
    let settings = Settings {
        zones: vec!["global".to_string(), "mesh".to_string()],
        per_cluster_names,
        ttl: 30,
        ns_addresses: vec!["192.0.2.53".parse().unwrap()],
        allocator: Allocator {
            v4: VipRange::new("240.0.0.0/26".parse().unwrap(), Family::V4).unwrap(),
            v6: Some(VipRange::new("fd00::/120".parse().unwrap(), Family::V6).unwrap()),
            quarantine: 600,
        },
    };
    let published = Arc::new(Published::default());
    let controller = Controller::start(
        settings,
        dir,
        published.clone(),
        Arc::new(Metrics::default()),
        Vec::new(),
    );
    (controller, published)
}

/// A registry of services `s<i>` in namespaces `a` or `ns`, each with its
/// ports and optionally a pin (each pin given once, as validation asks).
fn versioned(services: &std::collections::BTreeMap<u8, (bool, u16, Option<u8>)>) -> Registry {
    let mut text = String::from(
        "clusters:\n  - name: west\n    gateways: [{address: 192.0.2.20}]\nservices:\n",
    );
    let mut pins = std::collections::HashSet::new();
    for (i, (ns, port, pin)) in services {
        let ns = if *ns { "ns" } else { "a" };
        let pin = pin.filter(|p| pins.insert(*p)).map_or(String::new(), |p| {
            format!(", addresses: [240.0.0.{}]", 1 + p)
        });
        text.push_str(&format!(
            "  - {{name: s{i}, namespace: {ns}, exportedFrom: [west]{pin}, ports: [{{name: http, number: {port}, protocol: HTTP}}]}}\n"
        ));
    }
    crate::registry::load_str(&text, "r.yaml", &["global".into(), "mesh".into()]).unwrap()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Issue 14: a change reconciles, journals and patches only what it
    /// touches. Whatever the edits (services added, removed, moved to
    /// another namespace, ports changed, pins added, moved, dropped), the
    /// snapshot served is the one a full build makes of the same registry
    /// and table, the table is the one a full reconcile makes, and the
    /// table a restart reads back (file and journal) is the one in memory.
    /// With per-cluster names on, their hosts are patched with their
    /// service's.
    #[test]
    fn a_change_serves_what_a_full_pass_would(
        versions in proptest::collection::vec(
            proptest::collection::btree_map(0..24u8, (proptest::bool::ANY, 1..4u16, proptest::option::of(0..6u8)), 0..20),
            1..8,
        ),
        per_cluster in proptest::bool::ANY,
    ) {
        let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (mut part, published) = small(one.path(), per_cluster);
        let (mut full, full_published) = small(two.path(), per_cluster);
        for (step, services) in versions.iter().enumerate() {
            let registry = versioned(services);
            let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000 + 100 * step as u64);
            part.apply(registry.clone(), now);
            full.record_changed = true; // every publish a full pass
            full.apply(registry.clone(), now);
            proptest::prop_assert_eq!(&part.table, &full.table);
            let served = published.load_full().unwrap();
            let whole = full_published.load_full().unwrap();
            proptest::prop_assert_eq!(served.dump(), whole.dump());
            proptest::prop_assert_eq!(served.digest(), whole.digest());
            proptest::prop_assert_eq!(served.serial(), whole.serial());
            proptest::prop_assert_eq!(&part.leased, &Leased::of(&part.table));
            proptest::prop_assert_eq!(part.counts, Counts::of(&part.table, &part.settings.allocator));
            let state = StateDir::open(one.path()).unwrap();
            let mut reread = state.load_table().unwrap();
            reread.compact();
            let mut table = part.table.clone();
            table.compact();
            proptest::prop_assert_eq!(reread, table);
        }
    }
}

/// A warm start publishes the last-known-good registry read from disk,
/// and does not write it back (a second core's worth of serializing at
/// 100,000 services); the first version the source confirms is written.
#[test]
fn a_warm_start_does_not_write_back_the_last_known_good_registry() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("last-good.json");
    let inode = || std::fs::metadata(&path).unwrap().ino();
    let one = registry(&[("a", None)]);
    let (mut controller, _) = small(dir.path(), false);
    controller.apply(one.clone(), SystemTime::now());
    controller.flush();
    drop(controller);
    let written = inode();

    let (mut controller, published) = small(dir.path(), false);
    assert!(
        answer(&published, "a.ns.global").is_some(),
        "served from disk"
    );
    controller.flush();
    assert_eq!(inode(), written, "not written back");
    controller.apply(registry(&[("a", None), ("b", None)]), SystemTime::now());
    controller.flush();
    assert_ne!(inode(), written, "the confirmed version is written");
}
