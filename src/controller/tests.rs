use super::*;
use crate::vip::VipRange;

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

/// DESIGN §3: where two clusters may disagree is visible. Of two hosts
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
        &[],
    );
    controller.apply(registry(&[(a, None), (b, None)]), SystemTime::now());
    assert_eq!(metrics.vips_probed.load(Relaxed), 1);
    // Hosts arriving together are placed in name order.
    let second = format!("{}.ns.global", a.max(b));
    let addr = controller.table.lease(&second, Family::V4).unwrap().addr;
    assert_ne!(Some(addr), first(a.max(b)));

    let pinned = |name: &str| (name == a.max(b)).then_some(addr);
    controller.apply(
        registry(&[(a, pinned(a)), (b, pinned(b))]),
        SystemTime::now(),
    );
    assert_eq!(metrics.vips_probed.load(Relaxed), 0);
}
