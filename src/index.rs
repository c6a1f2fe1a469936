//! Registry plus allocations in, published data out: the hosts the registry
//! asks for ([`wants`]) and the DNS zones that answer for them, built whole
//! ([`zones`]) or patched for a change of a few services ([`patch`]).
//! Pure functions; the [`crate::controller`] calls them on every change.

use std::net::IpAddr;
use std::sync::Arc;

use compact_str::CompactString;

use crate::dns::ZoneSet;
use crate::dns::zone::{HostData, Parents, ZoneError, ZoneSetBuilder};
use crate::naming;
use crate::registry::{Registry, Service};
use crate::vip::{Allocator, Table, Want};

/// The hosts `registry` defines in `zones`, each with its pins: every
/// service's host, and with `per_cluster` each exporting cluster's
/// per-cluster name after it ([`hosts`]). Pins apply to the service's host
/// in the [`pin_zone`] only: every host needs an address of its own, or
/// two ServiceEntries would claim one VIP.
pub fn wants(registry: &Registry, zones: &[String], per_cluster: bool) -> Vec<Want> {
    wants_of(&registry.services, zones, per_cluster)
}

/// The hosts of `services` in `zones`, with their pins (see [`wants`]).
pub fn wants_of(services: &[Arc<Service>], zones: &[String], per_cluster: bool) -> Vec<Want> {
    let pins = pin_zone(zones);
    let mut wants = Vec::with_capacity(services.len() * zones.len());
    for zone in zones {
        for service in services {
            wants.extend(hosts(service, zone, pins, per_cluster).map(|(_, want)| want));
        }
    }
    wants
}

/// The hosts of one service in one zone, in order: its own host
/// `<name>.<namespace>.<zone>` (`None`), then, with `per_cluster`, the
/// per-cluster name `<cluster>.<name>.<namespace>.<zone>` of each cluster
/// that exports it, in `exportedFrom` order (`Some(cluster)`; design §2).
/// A per-cluster name is never pinned: the registry's pins are the
/// service's. A Multi-Cluster Services zone's suffix (`svc.<zone>`,
/// [`naming::clusterset_zone`]) has no per-cluster names whatever
/// `per_cluster` says: a ClusterSetIP service must not have them (MCS DNS
/// spec §2.3.4).
pub fn hosts<'s>(
    service: &'s Service,
    zone: &'s str,
    pin_zone: Option<&str>,
    per_cluster: bool,
) -> impl Iterator<Item = (Option<&'s str>, Want)> + 's {
    let per_cluster = per_cluster && naming::clusterset_zone(zone).is_none();
    let own = (None, want(service, zone, pin_zone));
    let clusters = service
        .exported_from
        .iter()
        .filter(move |_| per_cluster)
        .map(move |cluster| {
            let want = Want {
                host: service.cluster_host(cluster, zone),
                pinned: Vec::new(),
            };
            (Some(cluster.as_str()), want)
        });
    std::iter::once(own).chain(clusters)
}

/// The zone whose host carries a service's pinned addresses: the served
/// zone that sorts first by name. A rule of the zones themselves, not of
/// the order of `--zone` flags, so reordering them never moves a pin;
/// adding or removing a zone that sorts first does, and the controller
/// logs and counts it (`globaldns_vip_pins_moved_total`). A Multi-Cluster
/// Services zone's suffix is never the pin zone, so turning
/// `--clusterset-zone` on or off moves no pin: its hosts get VIPs of their
/// own, by the same hash as every other host.
pub fn pin_zone(zones: &[String]) -> Option<&str> {
    zones
        .iter()
        .map(String::as_str)
        .filter(|z| naming::clusterset_zone(z).is_none())
        .min()
}

/// The one of `zones` (the served host suffixes) in the Multi-Cluster
/// Services form (`svc.clusterset.local`), if any. A service's host there,
/// `<name>.<namespace>.svc.<zone>` (MCS DNS spec §2.3.1), carries its
/// ClusterSetIP: the address its A/AAAA records answer with, and what a
/// ServiceImport's `ips` carry.
pub fn clusterset_suffix_in(zones: &[String]) -> Option<&str> {
    zones
        .iter()
        .map(String::as_str)
        .find(|z| naming::clusterset_zone(z).is_some())
}

fn want(service: &Service, zone: &str, pin_zone: Option<&str>) -> Want {
    Want {
        host: service.host(zone),
        pinned: if pin_zone == Some(zone) {
            service.addresses.to_vec()
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
    /// When globaldns's own ServiceEntry claims the host too: which of the
    /// two Istio routes by. `None` when globaldns has none for it.
    pub beside_ours: Option<IstioPicks>,
}

/// Which of two ServiceEntries for one host Istio's sidecars route by:
/// since Istio 1.30 the older (by `creationTimestamp`, then name, then
/// namespace: pilot/pkg/model/sidecar.go `appendSidecarServices` over
/// services sorted by `SortServicesByCreationTime`), so a hand-written entry
/// made before globaldns's wins until it is deleted.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum IstioPicks {
    /// The hand-written entry, the older one.
    HandWritten,
    /// globaldns's own entry, `namespace/name`, the older one.
    Ours(String),
}

/// How many names the snapshot of `registry` stores, how many bytes their
/// keys and SRV labels take, and how many SRV names its hosts hold (which
/// are not stored names, `dns/zone/names.rs`). Per zone: the apex and its
/// name server `ns.<zone>`; each host, with the first label `_<port>` of
/// each SRV name; each namespace (an empty non-terminal); with
/// `per_cluster`, each exporter's per-cluster name and its SRV names. Plus
/// the hand-written hosts (an upper bound: some are refused, or in no
/// zone). A wire name takes two bytes more than its text without the
/// final dot.
fn sizes(
    registry: &Registry,
    zones: &[String],
    per_cluster: bool,
    hand_written: &[HandWritten],
) -> (usize, usize, usize) {
    let namespaces: rustc_hash::FxHashSet<&str> = registry
        .services
        .iter()
        .map(|s| s.namespace.as_str())
        .collect();
    let mut names = 0;
    let mut key_bytes = 0;
    let mut ports = 0;
    for zone in zones {
        // An MCS zone's apex holds `svc` and `dns-version` besides, and
        // its hosts no per-cluster names (see [`hosts`]).
        let mcs = naming::clusterset_zone(zone).is_some();
        let per_cluster = per_cluster && !mcs;
        if mcs {
            // `svc.<apex>` (the suffix itself) and `dns-version.<apex>`;
            // the apex and `ns.<apex>` are 4 bytes shorter than the count
            // below makes them, which takes the suffix for the apex.
            names += 2;
            key_bytes += (zone.len() + 2) + (zone.len() + 8 + 2) - 2 * 4;
        }
        let zone = zone.len();
        names += 2 + namespaces.len();
        key_bytes += (zone + 2) + (3 + zone + 2);
        key_bytes += namespaces
            .iter()
            .map(|ns| ns.len() + 1 + zone + 2)
            .sum::<usize>();
        for service in registry.services.iter() {
            let host = service.name.len() + 1 + service.namespace.len() + 1 + zone + 2;
            // Each SRV name's first label, `_<port>`.
            let srv_labels = service
                .ports
                .iter()
                .map(|p| 2 + p.name().len())
                .sum::<usize>();
            names += 1;
            key_bytes += host + srv_labels;
            ports += service.ports.len();
            if per_cluster {
                for cluster in &service.exported_from {
                    names += 1;
                    key_bytes += cluster.len() + 1 + host + srv_labels;
                    ports += service.ports.len();
                }
            }
        }
    }
    names += hand_written.len();
    key_bytes += hand_written.iter().map(|h| h.host.len() + 2).sum::<usize>();
    (names, key_bytes, ports)
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
#[allow(clippy::too_many_arguments)]
pub fn zones(
    registry: &Registry,
    zones: &[String],
    per_cluster: bool,
    allocator: &Allocator,
    table: &Table,
    hand_written: &[HandWritten],
    ttl: u32,
    ns_addresses: &[IpAddr],
) -> Result<Built, ZoneError> {
    let (names, key_bytes, srv_names) = sizes(registry, zones, per_cluster, hand_written);
    // The serial is the caller's to set (ZoneSet::set_serial), once it
    // knows whether what is served changed.
    let mut set = ZoneSetBuilder::with_sizes(0, ttl, names, key_bytes, srv_names);
    set.name_server_addresses(ns_addresses);
    for zone in zones {
        match naming::clusterset_zone(zone) {
            Some(apex) => set.clusterset_zone(apex)?,
            None => set.zone(zone)?,
        };
    }
    // Registry hosts, to tell hand-written entries that claim one; only
    // kept when there are such entries.
    let mut taken = std::collections::HashSet::new();
    let mut left_out = Vec::new();
    let pins = pin_zone(zones);
    for zone in zones {
        for service in registry.services.iter() {
            let ports = ports(service);
            for (_, want) in hosts(service, zone, pins, per_cluster) {
                let addresses: Vec<IpAddr> = allocator.addresses(table, &want);
                // Validation keeps this from failing; if it does, the one
                // host is left out and reported, never the whole snapshot.
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
    }
    let mut conflicts = Vec::new();
    let mut istio_prefers_hand_written = 0;
    let mut hand_written: Vec<&HandWritten> = hand_written
        .iter()
        .filter(|h| zones.iter().any(|z| in_zone(&h.host, z)))
        .collect();
    hand_written.sort_by(|a, b| a.source.cmp(&b.source));
    let mut by_hand = std::collections::HashMap::new();
    for entry in hand_written {
        if taken.contains(entry.host.as_str()) {
            let istio = match &entry.beside_ours {
                Some(IstioPicks::HandWritten) => {
                    istio_prefers_hand_written += 1;
                    format!(
                        "; Istio 1.30+ routes by ServiceEntry {} (the older) until it is deleted",
                        entry.source
                    )
                }
                Some(IstioPicks::Ours(ours)) => {
                    format!("; Istio routes by globaldns's ServiceEntry {ours} (the older)")
                }
                None => String::new(),
            };
            conflicts.push(format!(
                "{} of ServiceEntry {} is in the registry too: the registry's answer is served{istio}",
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
        match set.add_shared_host(&HostData {
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
    let (zones, parents) = set.build_with_parents();
    Ok(Built {
        zones,
        parents,
        conflicts,
        istio_prefers_hand_written,
        left_out,
    })
}

/// Why a change cannot be patched into the published zones: a full build
/// ([`zones`]) must decide.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// `host`, a host of the change, is a hand-written entry's too: only a
    /// full build decides which answer is served.
    #[error("{host} is claimed by a hand-written entry too")]
    HandWritten { host: String },
    /// The set cannot be patched (see [`ZoneSet::patched`]).
    #[error(transparent)]
    Zone(#[from] ZoneError),
}

/// The zones of `set`, built by [`zones`] with `parents`, patched for a
/// change of services: `removed` as they were, `added` as they are (a
/// changed service is in both), with the addresses `table` holds now.
/// Fails when a full build must decide: a hand-written host shares a name
/// with a host of the change ([`PatchError::HandWritten`]; see [`zones`]
/// for who wins), or the set cannot be patched ([`PatchError::Zone`], see
/// [`ZoneSet::patched`]); `parents` is then spent.
#[allow(clippy::too_many_arguments)]
pub fn patch(
    set: &ZoneSet,
    parents: &mut Parents,
    zones: &[String],
    per_cluster: bool,
    allocator: &Allocator,
    table: &Table,
    hand_written: &[HandWritten],
    removed: &[Arc<Service>],
    added: &[Arc<Service>],
) -> Result<ZoneSet, PatchError> {
    let removed = placed(removed, zones, per_cluster, None);
    let added = placed(added, zones, per_cluster, Some((allocator, table)));
    if !hand_written.is_empty() {
        let claimed: std::collections::HashSet<&str> =
            hand_written.iter().map(|h| h.host.as_str()).collect();
        if let Some(host) = removed
            .iter()
            .chain(&added)
            .find(|p| claimed.contains(p.host.as_str()))
        {
            return Err(PatchError::HandWritten {
                host: host.host.to_string(),
            });
        }
    }
    Ok(set.patched(parents, &host_data(&removed), &host_data(&added))?)
}

/// The hosts of `services` in `zones`, with their addresses in `table`
/// when given.
fn placed<'s>(
    services: &'s [Arc<Service>],
    zones: &[String],
    per_cluster: bool,
    addresses: Option<(&Allocator, &Table)>,
) -> Vec<Placed<'s>> {
    let pins = pin_zone(zones);
    let mut out = Vec::with_capacity(services.len() * zones.len());
    for zone in zones {
        for service in services {
            for (_, want) in hosts(service, zone, pins, per_cluster) {
                out.push(Placed {
                    addresses: addresses
                        .map(|(allocator, table)| allocator.addresses(table, &want))
                        .unwrap_or_default(),
                    host: want.host,
                    ports: ports(service),
                });
            }
        }
    }
    out
}

fn host_data<'p>(placed: &'p [Placed<'_>]) -> Vec<HostData<'p>> {
    placed
        .iter()
        .map(|p| HostData {
            host: &p.host,
            addresses: &p.addresses,
            ports: &p.ports,
        })
        .collect()
}

/// A host as a patch places it.
struct Placed<'s> {
    host: CompactString,
    addresses: Vec<IpAddr>,
    ports: Vec<(&'s str, u16)>,
}

/// A service's ports as its SRV names carry them.
fn ports(service: &Service) -> Vec<(&str, u16)> {
    service
        .ports
        .iter()
        .filter_map(|p| Some((p.name(), u16::try_from(p.number).ok()?)))
        .collect()
}

/// What [`zones`] built.
pub struct Built {
    pub zones: ZoneSet,
    /// What a later [`patch`] of `zones` needs.
    pub parents: Parents,
    /// Hand-written hosts left out: the registry or another entry has them,
    /// or they are not DNS names.
    pub conflicts: Vec<String>,
    /// Registry hosts that Istio 1.30+ routes by a hand-written
    /// ServiceEntry, older than globaldns's own ([`IstioPicks`]).
    pub istio_prefers_hand_written: usize,
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
mod tests;
