use super::*;
use crate::vip::VipRange;
use proptest::prelude::*;
use std::collections::BTreeMap;

/// A small range (13 usable IPv4 addresses, 15 IPv6) so that hosts
/// collide, run out and wait in quarantine.
fn alloc() -> Allocator {
    Allocator {
        v4: VipRange::new("192.0.2.0/28".parse().unwrap(), Family::V4).unwrap(),
        v6: Some(VipRange::new("fd00::/124".parse().unwrap(), Family::V6).unwrap()),
        quarantine: 300,
    }
}

/// One version of the wanted hosts: host index to its pins, each pin
/// given to the first host that asks for it (validation refuses a pin
/// shared by two services).
fn version() -> impl Strategy<Value = Vec<Want>> {
    let pin = prop::sample::select(vec!["192.0.2.3", "192.0.2.4", "192.0.2.9", "fd00::3"]);
    prop::collection::btree_map(0..16u8, prop::collection::vec(pin, 0..2), 0..15).prop_map(
        |hosts| {
            let mut seen = HashSet::new();
            hosts
                .into_iter()
                .map(|(i, pins)| Want {
                    host: format!("h{i}.x.global").into(),
                    pinned: pins
                        .iter()
                        .map(|p| p.parse::<IpAddr>().unwrap())
                        .filter(|a| seen.insert(*a))
                        .collect(),
                })
                .collect()
        },
    )
}

fn record() -> impl Strategy<Value = Vec<(String, Vec<IpAddr>)>> {
    let addr = prop::sample::select(vec!["192.0.2.5", "192.0.2.6", "192.0.2.3", "fd00::5"]);
    prop::collection::vec((0..16u8, addr), 0..4).prop_map(|entries| {
        let mut record: Vec<(String, Vec<IpAddr>)> = entries
            .into_iter()
            .map(|(i, a)| (format!("h{i}.x.global"), vec![a.parse().unwrap()]))
            .collect();
        record.sort();
        record
    })
}

fn pins(wants: &[Want]) -> HashMap<IpAddr, CompactString> {
    wants
        .iter()
        .flat_map(|w| w.pinned.iter().map(|a| (*a, w.host.clone())))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    /// Every change gives the table, and the events, that a full follow
    /// and reconcile of every host gives; or says it cannot, untouched.
    /// (The record is the same throughout: when it changes, the caller
    /// follows it for every host.)
    #[test]
    fn a_change_is_reconciled_as_the_full_reconcile_would(
        record in record(),
        steps in prop::collection::vec((version(), 0..400u64), 1..12),
    ) {
        let a = alloc();
        let (mut full, mut part) = (Table::default(), Table::default());
        let mut leased = Leased::default();
        let mut before: Vec<Want> = Vec::new();
        let mut lacking: BTreeMap<CompactString, ()> = BTreeMap::new();
        let mut now = 1000;
        let mut unsure = 0;
        for (wants, elapsed) in steps {
            now += elapsed;
            let mut full_events = Vec::new();
            a.follow(&mut full, &record, &wants, now, &mut |e| full_events.push(e));
            a.reconcile_with(&mut full, &wants, now, &mut |e| full_events.push(e));

            let old: HashMap<&str, &Want> = before.iter().map(|w| (w.host.as_str(), w)).collect();
            let new: HashSet<&str> = wants.iter().map(|w| w.host.as_str()).collect();
            let removed: Vec<Want> =
                before.iter().filter(|w| !new.contains(w.host.as_str())).cloned().collect();
            let upserted: Vec<Want> = wants
                .iter()
                .filter(|w| old.get(w.host.as_str()) != Some(w))
                .cloned()
                .collect();
            let lacking_wants: Vec<Want> =
                wants.iter().filter(|w| lacking.contains_key(&w.host)).cloned().collect();
            let pins = pins(&wants);
            let unpinned: Vec<IpAddr> = before
                .iter()
                .flat_map(|w| w.pinned.iter().copied())
                .filter(|a| !pins.contains_key(a))
                .collect();
            let change = Change {
                removed: &removed,
                upserted: &upserted,
                lacking: &lacking_wants,
                pins: &pins,
                unpinned: &unpinned,
                record: &record,
            };
            let snapshot = part.clone();
            let mut events = Vec::new();
            match a.reconcile_change(&mut part, &mut leased, &change, now, &mut |e| events.push(e)) {
                Ok(()) => prop_assert_eq!(&events, &full_events),
                Err(_) => {
                    prop_assert_eq!(&part, &snapshot, "untouched when unsure");
                    unsure += 1;
                    // A change the record decides: the recorded
                    // address may stay with another host, so follow
                    // every host as the caller does.
                    events.clear();
                    a.follow(&mut part, &record, &wants, now, &mut |e| events.push(e));
                    a.reconcile_with(&mut part, &wants, now, &mut |e| events.push(e));
                    leased = Leased::of(&part);
                }
            }
            prop_assert_eq!(&part, &full);
            prop_assert_eq!(&leased, &Leased::of(&part));
            lacking = events
                .iter()
                .filter_map(|e| match e {
                    Event::Exhausted { host, .. } => Some((host.as_str().into(), ())),
                    _ => None,
                })
                .collect();
            before = wants;
        }
        let _ = unsure;
    }
}

/// Far more hosts than addresses: the change retries the hosts that were
/// left without one once an address frees up, as a full reconcile does.
#[test]
fn hosts_left_without_a_vip_get_one_when_one_frees_up() {
    let a = Allocator {
        v6: None,
        quarantine: 0,
        ..alloc()
    };
    let wants: Vec<Want> = (0..16)
        .map(|i| Want {
            host: format!("h{i}.x.global").into(),
            pinned: Vec::new(),
        })
        .collect();
    let mut table = Table::default();
    let events = a.reconcile(&mut table, &wants, 0);
    let lacking: Vec<Want> = events
        .iter()
        .filter_map(|e| match e {
            Event::Exhausted { host, .. } => wants.iter().find(|w| w.host == host.as_str()),
            _ => None,
        })
        .cloned()
        .collect();
    assert_eq!(lacking.len(), 1, "{events:?}");
    let mut leased = Leased::of(&table);
    let pins = HashMap::new();
    let change = Change {
        removed: &wants[..1],
        upserted: &[],
        lacking: &lacking,
        pins: &pins,
        unpinned: &[],
        record: &[],
    };
    a.reconcile_change(&mut table, &mut leased, &change, 10, &mut |_| {})
        .unwrap();
    // The released address waits out its quarantine (none here) first.
    assert!(table.lease(&lacking[0].host, Family::V4).is_none());
    let later = Change {
        removed: &[],
        ..change
    };
    a.reconcile_change(&mut table, &mut leased, &later, 20, &mut |_| {})
        .unwrap();
    assert!(table.lease(&lacking[0].host, Family::V4).is_some());
    assert_eq!(leased, Leased::of(&table));
}

/// IPv6 addresses held by their lower half (those sharing the first one's
/// upper half) and whole (the rest) are told apart exactly: one of each
/// with the same lower half, either removed, leaves the other held.
#[test]
fn leased_ipv6_addresses_are_exact_across_upper_halves() {
    let a: IpAddr = "fd00:6c6f:6261:6c00::5".parse().unwrap();
    let b: IpAddr = "fd00:aaaa::5".parse().unwrap();
    let c: IpAddr = "fd00:6c6f:6261:6c00::6".parse().unwrap();
    for (first, second) in [(a, b), (b, a)] {
        let mut leased = Leased::default();
        leased.insert(first);
        leased.insert(second);
        assert!(leased.contains(&a) && leased.contains(&b) && !leased.contains(&c));
        leased.remove(first);
        assert!(!leased.contains(&first) && leased.contains(&second));
        leased.remove(second);
        assert_eq!(leased, Leased::default());
    }
    let mut one = Leased::default();
    one.insert(a);
    one.insert(b);
    let mut other = Leased::default();
    other.insert(b);
    other.insert(a);
    assert_eq!(one, other, "the same addresses, held the other way round");
    other.insert(c);
    assert_ne!(one, other);
}
