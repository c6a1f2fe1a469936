//! Registry plus allocations in, published data out: the hosts the registry
//! asks for ([`wants`]) and the DNS zones that answer for them ([`zones`]).
//! Pure functions; the [`crate::controller`] calls them on every change.

use std::net::IpAddr;

use crate::dns::ZoneSet;
use crate::dns::zone::{HostData, ZoneSetBuilder};
use crate::registry::{Registry, Service};
use crate::vip::{Allocator, Table, Want};

/// The hosts `registry` defines in `zones`, each with its pins. Pins apply
/// to the host in the [`pin_zone`] only: every host needs an address of its
/// own, or two ServiceEntries would claim one VIP.
pub fn wants(registry: &Registry, zones: &[String]) -> Vec<Want> {
    let pins = pin_zone(zones);
    let mut wants = Vec::with_capacity(registry.services.len() * zones.len());
    for zone in zones {
        wants.extend(registry.services.iter().map(|s| want(s, zone, pins)));
    }
    wants
}

/// The zone whose host carries a service's pinned addresses: the served
/// zone that sorts first by name. A rule of the zones themselves, not of
/// the order of `--zone` flags, so reordering them never moves a pin;
/// adding or removing a zone that sorts first does, and the controller
/// logs and counts it (`globaldns_vip_pins_moved_total`).
pub fn pin_zone(zones: &[String]) -> Option<&str> {
    zones.iter().map(String::as_str).min()
}

fn want(service: &Service, zone: &str, pin_zone: Option<&str>) -> Want {
    Want {
        host: service.host(zone),
        pinned: if pin_zone == Some(zone) {
            service.addresses.clone()
        } else {
            Vec::new()
        },
    }
}

/// A host of a ServiceEntry globaldns does not own (drop-in mode,
/// design §5), answered with the entry's own addresses.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HandWritten {
    /// Lower-case; may be a wildcard (`*.suffix`).
    pub host: String,
    pub addresses: Vec<IpAddr>,
    /// `namespace/name` of the ServiceEntry, for reports.
    pub source: String,
}

/// How many names the snapshot of `registry` holds. Per zone: the apex
/// and its name server `ns.<zone>`;
/// each host, its SRV names and the `_tcp.<host>` between them; each
/// namespace (an empty non-terminal). Plus the hand-written hosts (an upper
/// bound: some are refused, or in no zone).
fn name_count(registry: &Registry, zones: usize, hand_written: usize) -> usize {
    let namespaces: std::collections::HashSet<&str> = registry
        .services
        .iter()
        .map(|s| s.namespace.as_str())
        .collect();
    let per_zone: usize = registry
        .services
        .iter()
        .map(|s| 1 + s.ports.len() + usize::from(!s.ports.is_empty()))
        .sum::<usize>()
        + namespaces.len()
        + 2;
    per_zone * zones + hand_written
}

/// The zones that answer for `registry`, with the addresses `table` holds,
/// and the hand-written hosts, its name server answering with
/// `ns_addresses`. Returns the snapshot, a report of each hand-written host
/// left out because the registry has it too, and of each registry host
/// whose names could not be built (left out alone). Fails only when a
/// zone's apex cannot be made.
///
/// The rule when both claim a host: **the registry wins**. It is the
/// shared, reviewed source every cluster agrees on, and its host keeps the
/// VIP the other clusters give it; the hand-written entry is reported. Two
/// hand-written entries for one host: the first by `namespace/name` wins.
pub fn zones(
    registry: &Registry,
    zones: &[String],
    allocator: &Allocator,
    table: &Table,
    hand_written: &[HandWritten],
    ttl: u32,
    ns_addresses: &[IpAddr],
) -> Result<Built, String> {
    let names = name_count(registry, zones.len(), hand_written.len());
    // The serial is the caller's to set (ZoneSet::set_serial), once it
    // knows whether what is served changed.
    let mut set = ZoneSetBuilder::new(0, ttl, names);
    set.name_server_addresses(ns_addresses);
    for zone in zones {
        set.zone(zone)?;
    }
    // Registry hosts, to tell hand-written entries that claim one; only
    // kept when there are such entries.
    let mut taken = std::collections::HashSet::new();
    let mut left_out = Vec::new();
    let pins = pin_zone(zones);
    for zone in zones {
        for service in &registry.services {
            let want = want(service, zone, pins);
            let addresses: Vec<IpAddr> = allocator.addresses(table, &want);
            let ports: Vec<(&str, u16)> = service
                .ports
                .iter()
                .filter_map(|p| Some((p.name.as_str(), u16::try_from(p.number).ok()?)))
                .collect();
            // Validation keeps this from failing; if it does, the one host
            // is left out and reported, never the whole snapshot.
            if let Err(e) = set.add_host(&HostData {
                host: &want.host,
                addresses: &addresses,
                ports: &ports,
            }) {
                left_out.push(format!(
                    "service {}.{}: host {} not served: {e}",
                    service.name, service.namespace, want.host
                ));
                continue;
            }
            if !hand_written.is_empty() {
                taken.insert(want.host);
            }
        }
    }
    let mut conflicts = Vec::new();
    let mut hand_written: Vec<&HandWritten> = hand_written
        .iter()
        .filter(|h| zones.iter().any(|z| in_zone(&h.host, z)))
        .collect();
    hand_written.sort_by(|a, b| a.source.cmp(&b.source));
    let mut by_hand = std::collections::HashMap::new();
    for entry in hand_written {
        if taken.contains(entry.host.as_str()) {
            conflicts.push(format!(
                "{} of ServiceEntry {} is in the registry too: the registry's answer is served",
                entry.host, entry.source
            ));
            continue;
        }
        if let Some(first) = by_hand.get(&entry.host) {
            conflicts.push(format!(
                "{} of ServiceEntry {} is also claimed by ServiceEntry {first}, whose answer is served",
                entry.host, entry.source
            ));
            continue;
        }
        // A host that is not a DNS name (or a wildcard in the middle) is
        // reported, not fatal: the rest of the snapshot still serves.
        match set.add_host(&HostData {
            host: &entry.host,
            addresses: &entry.addresses,
            ports: &[],
        }) {
            Ok(()) => {
                by_hand.insert(entry.host.clone(), entry.source.clone());
            }
            Err(e) => conflicts.push(format!("ServiceEntry {}: {e}", entry.source)),
        }
    }
    Ok(Built {
        zones: set.build(),
        conflicts,
        left_out,
    })
}

/// What [`zones`] built.
pub struct Built {
    pub zones: ZoneSet,
    /// Hand-written hosts left out: the registry or another entry has them,
    /// or they are not DNS names.
    pub conflicts: Vec<String>,
    /// Registry hosts left out because their names could not be built
    /// (validation should make this empty; each is reported as an error).
    pub left_out: Vec<String>,
}

/// True when `host` is `zone` or lies below it.
fn in_zone(host: &str, zone: &str) -> bool {
    let host = host.trim_end_matches('.');
    host == zone || host.ends_with(&format!(".{zone}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::lookup::{Outcome, lookup};
    use crate::vip::{DEFAULT_V4_RANGE, Family, VipRange};
    use hickory_proto::rr::{LowerName, Name, RecordType};

    fn hand(host: &str, addr: &str, source: &str) -> HandWritten {
        HandWritten {
            host: host.to_string(),
            addresses: vec![addr.parse().unwrap()],
            source: source.to_string(),
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
        allocator.reconcile(&mut table, &wants(&registry, zone_names), 0);
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
            allocated(include_str!("../examples/registry.yaml"), &zone_names);
        let mut bad = registry.services[0].clone();
        bad.name = "toolong".into();
        bad.ports[0].name = "p".repeat(63).into();
        registry.services.push(bad);
        allocator.reconcile(&mut table, &wants(&registry, &zone_names), 0);
        let built = zones(&registry, &zone_names, &allocator, &table, &[], 30, &[]).unwrap();
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
            allocated(include_str!("../examples/registry.yaml"), &zone_names);
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

    /// The name table is sized from [`name_count`] once; a count short by
    /// one name would double it while it grows. Two zones, services with
    /// one and two ports, a namespace shared: the count is exact.
    #[test]
    fn the_name_count_is_exact() {
        let text = "clusters: [{name: west, gateways: [{address: 192.0.2.1}]}]
services:
  - {name: a, namespace: x, exportedFrom: [west], ports: [{name: tcp, number: 5432, protocol: TCP}]}
  - {name: b, namespace: x, exportedFrom: [west], ports: [{name: http, number: 80, protocol: HTTP}]}
  - {name: c, namespace: y, exportedFrom: [west], ports: [{name: http, number: 80, protocol: HTTP}, {name: grpc, number: 90, protocol: GRPC}]}
";
        let zone_names = vec!["global".to_string(), "mesh".to_string()];
        let (registry, allocator, table) = allocated(text, &zone_names);
        let set = zones(&registry, &zone_names, &allocator, &table, &[], 30, &[])
            .unwrap()
            .zones;
        assert_eq!(set.len(), name_count(&registry, zone_names.len(), 0));
        // Per zone: apex and ns, a and b (3 names each), c (4), namespaces
        // x and y.
        assert_eq!(set.len(), 2 * (2 + 3 + 3 + 4 + 2));
    }
}
