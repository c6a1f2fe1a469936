//! `globaldns explain NAME`: for any name, whether it is served and why,
//! its VIPs and since when, which clusters export it and through which
//! gateways, the order a client in each cluster prefers them in (the
//! failover policy), which ServiceEntry carries it, and any conflict
//! (design §6).
//! Pure: the admin endpoint calls it with the published snapshot.

use std::fmt::Write;

use hickory_proto::rr::{LowerName, Name, RecordType};

use crate::controller::Allocated;
use crate::dns::ZoneSet;
use crate::dns::lookup::{Outcome, lookup};
use crate::registry::brake::HeldBack;
use crate::registry::{Cluster, Service};
use crate::vip::{Allocator, Family, Placement};

/// The peers' state, the merge's conflicts and the source's warnings, for
/// [`federation`].
#[derive(Clone, Debug, Default)]
pub struct Federation {
    pub peers: std::collections::BTreeMap<String, crate::metrics::PeerStatus>,
    pub conflicts: Vec<String>,
    /// Objects the source left out, one line each (`ServiceExport ns/name:
    /// why`).
    pub warnings: Vec<String>,
}

/// Lines on the federated registry for `name`: each peer cluster and
/// whether its exports are current, the conflicts about the service `name`
/// is a host of, and why a ServiceExport of it is left out (what its
/// `Valid` condition says). Nothing without peers, conflicts or warnings.
pub fn federation(name: &str, federation: &Federation) -> String {
    let mut out = String::new();
    for (peer, status) in &federation.peers {
        let mut state = if status.namespace.is_empty() {
            format!(
                "not read: {}",
                status.error.as_deref().unwrap_or("no client for it")
            )
        } else if status.dropped {
            "unreachable too long: its exports are dropped".to_string()
        } else if let Some(for_) = status.unreachable_for {
            format!(
                "unreachable for {}s: its last exports keep serving",
                for_.as_secs()
            )
        } else if !status.listed {
            "not listed yet: its exports are not known yet".to_string()
        } else if !status.mesh_cluster {
            format!(
                "answers, but holds no MeshCluster `{peer}` in namespace {}: its own exports are \
                 not served (does its kubeconfig's context name the namespace its globaldns \
                 objects are in?)",
                status.namespace
            )
        } else {
            format!(
                "answers (namespace {}): its exports are current",
                status.namespace
            )
        };
        if let Some(error) = status
            .error
            .as_ref()
            .filter(|_| !status.namespace.is_empty())
        {
            state.push_str(&format!("; last error: {error}"));
        }
        let _ = writeln!(out, "peer {peer}: {state}");
    }
    let host = name.trim_end_matches('.').to_ascii_lowercase();
    let mut labels = host.split('.');
    let (service, export) = match (labels.next(), labels.next()) {
        (Some(name), Some(namespace)) => (
            format!("service {name}.{namespace}:"),
            format!("ServiceExport {namespace}/{name}:"),
        ),
        _ => return out,
    };
    for conflict in &federation.conflicts {
        if conflict.starts_with(&service) {
            let _ = writeln!(out, "conflict between clusters: {conflict}");
        }
    }
    for warning in &federation.warnings {
        if warning.starts_with(&export) {
            let _ = writeln!(out, "export left out: {warning}");
        }
    }
    out
}

/// The explanation of `name`, as lines of text. `allocator` tells how each
/// VIP was placed (design §3: where clusters may disagree is visible);
/// `held` is a registry version the shrink brake holds back, if any.
pub fn explain(
    name: &str,
    zones: Option<&ZoneSet>,
    allocated: Option<&Allocated>,
    allocator: &Allocator,
    held: Option<&HeldBack>,
) -> String {
    let mut out = String::new();
    let host = name.trim_end_matches('.').to_ascii_lowercase();
    let _ = writeln!(out, "name: {host}");
    if let Some(held) = held {
        let _ = writeln!(
            out,
            "registry reload held back (seen {:?} ago): {held}",
            held.since.elapsed()
        );
    }
    let Ok(parsed) = Name::from_ascii(&host) else {
        let _ = writeln!(out, "not a DNS name");
        return out;
    };
    let Some(zones) = zones else {
        let _ = writeln!(out, "no registry loaded yet: every query gets SERVFAIL");
        return out;
    };
    let lower = LowerName::new(&parsed);
    let Some(nxdomain) = answers(&mut out, zones, &lower) else {
        return out; // outside every zone: said, and nothing more to say
    };
    let Some(allocated) = allocated else {
        return out;
    };
    let services = &allocated.registry.services;
    let service = services
        .iter()
        .find(|s| zone_suffix(&host, &s.name, &s.namespace).is_some());
    let per_cluster = services.iter().find_map(|s| per_cluster::of(&host, s));
    match (service, per_cluster) {
        (Some(service), _) => {
            registry_lines(&mut out, service, &allocated.registry.clusters);
            per_cluster::lines(&mut out, &host, service, allocated);
            failover_order::lines(&mut out, service, &allocated.registry.defaults);
            vip_lines(&mut out, &host, service, allocated, allocator);
            service_entry_line(&mut out, &host);
        }
        (None, Some((service, cluster))) => {
            let _ = writeln!(
                out,
                "registry: the per-cluster name of service {} in namespace {} for cluster {cluster}: it reaches {cluster}'s copy only",
                service.name, service.namespace
            );
            let clusters: Vec<Cluster> = allocated
                .registry
                .clusters
                .iter()
                .filter(|c| c.name == cluster)
                .cloned()
                .collect();
            gateway_lines(&mut out, service, &clusters);
            if !nxdomain {
                vip_lines(&mut out, &host, service, allocated, allocator);
                service_entry_line(&mut out, &host);
            }
        }
        (None, None) => {
            let _ = writeln!(out, "registry: no service has this host");
        }
    }
    hand_written_lines(&mut out, &host, allocated);
    if nxdomain && service.is_none() {
        let why = match per_cluster {
            Some(_) => "per-cluster names are not served (--no-per-cluster-names)".to_string(),
            None => why_missing(&host, allocated),
        };
        let _ = writeln!(out, "why NXDOMAIN: {why}");
    }
    out
}

/// The name of the ServiceEntry of `host`.
fn service_entry_line(out: &mut String, host: &str) {
    let _ = writeln!(
        out,
        "ServiceEntry: {} (as `globaldns render` names it; applied with --sync-service-entries)",
        host.replace('.', "-")
    );
}

/// The A and AAAA answers for `name`, a line each; whether either was
/// NXDOMAIN, or `None` when the name is outside every zone (said as such).
fn answers(out: &mut String, zones: &ZoneSet, name: &LowerName) -> Option<bool> {
    let mut nxdomain = false;
    for qtype in [RecordType::A, RecordType::AAAA] {
        let answer = match lookup(zones, name, qtype) {
            Outcome::Refused => {
                let served: Vec<String> =
                    zones.zones().iter().map(|z| z.origin.to_string()).collect();
                let _ = writeln!(
                    out,
                    "not served: outside every zone ({}), so REFUSED",
                    served.join(", ")
                );
                return None;
            }
            Outcome::Answer { answers, .. } => {
                let data: Vec<String> = answers.iter().map(|r| r.data.to_string()).collect();
                format!("NOERROR {}", data.join(" "))
            }
            Outcome::NoData { zone } => {
                format!("NOERROR, no {qtype} data (NODATA; zone {})", zone.origin)
            }
            Outcome::NxDomain { zone } => {
                nxdomain = true;
                format!("NXDOMAIN (zone {})", zone.origin)
            }
        };
        let _ = writeln!(out, "{qtype}: {answer}");
    }
    Some(nxdomain)
}

/// What the registry says of `service`: who exports it, through which
/// gateways, its workloads outside Kubernetes and its pinned addresses.
fn registry_lines(out: &mut String, service: &Service, clusters: &[Cluster]) {
    let from = if service.exported_from.is_empty() {
        "no cluster".to_string()
    } else {
        service.exported_from.join(", ")
    };
    let _ = writeln!(
        out,
        "registry: service {} in namespace {}, exported from {from}",
        service.name, service.namespace,
    );
    gateway_lines(out, service, clusters);
    outside_lines(out, service);
}

/// A line per gateway of each of `clusters` that exports `service`.
fn gateway_lines(out: &mut String, service: &Service, clusters: &[Cluster]) {
    for cluster in clusters {
        if !service.exported_from.iter().any(|c| *c == cluster.name) {
            continue;
        }
        for gateway in &cluster.gateways {
            let _ = writeln!(
                out,
                "  {}: gateway {}:{}{}{}",
                cluster.name,
                gateway.address,
                gateway.port,
                cluster
                    .network
                    .as_deref()
                    .map(|n| format!(", network {n}"))
                    .unwrap_or_default(),
                cluster
                    .locality
                    .as_deref()
                    .map(|l| format!(", locality {l}"))
                    .unwrap_or_default(),
            );
        }
    }
}

/// A line per workload outside Kubernetes, and per pinned address.
fn outside_lines(out: &mut String, service: &Service) {
    for workload in &service.endpoints {
        let ports: Vec<String> = workload
            .ports
            .iter()
            .map(|(name, number)| format!("{name}:{number}"))
            .collect();
        let mut facts = Vec::new();
        if !ports.is_empty() {
            facts.push(format!("ports {}", ports.join(" ")));
        }
        if let Some(network) = &workload.network {
            facts.push(format!("network {network}"));
        }
        if let Some(account) = &workload.service_account {
            facts.push(format!("service account {account}, sidecar: mTLS"));
        }
        let _ = writeln!(
            out,
            "  outside Kubernetes: {}{}",
            workload.address,
            if facts.is_empty() {
                String::new()
            } else {
                format!(" ({})", facts.join(", "))
            }
        );
    }
    for pinned in &service.addresses {
        let _ = writeln!(out, "pinned in the registry: {pinned}");
    }
}

/// The VIP `host` holds of each family, since when, and how it was placed
/// (design §3: where clusters may disagree is visible).
fn vip_lines(
    out: &mut String,
    host: &str,
    service: &Service,
    allocated: &Allocated,
    allocator: &Allocator,
) {
    for family in [Family::V4, Family::V6] {
        let Some(lease) = allocated.table.lease(host, family) else {
            continue;
        };
        let since = k8s_openapi::jiff::Timestamp::from_second(lease.since as i64)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| lease.since.to_string());
        let pinned = service.addresses.contains(&lease.addr);
        let placement = match allocator.placement(host, lease.addr, pinned) {
            Placement::Pinned => "pinned".to_string(),
            Placement::FirstChoice => {
                "its first choice: every cluster on this registry computes the same".to_string()
            }
            Placement::Probed { first } => format!(
                "not its first choice {first}, which was taken when it arrived: \
                 another cluster may have given it a different VIP"
            ),
            Placement::OutOfRange => "outside the configured range, kept from before".to_string(),
        };
        let _ = writeln!(
            out,
            "VIP {family}: {} since {since} ({placement})",
            lease.addr
        );
    }
}

/// The hand-written ServiceEntries that claim `host` (drop-in mode), and
/// the conflicts about it.
fn hand_written_lines(out: &mut String, host: &str, allocated: &Allocated) {
    for entry in &allocated.hand_written {
        if entry.host == host || covers(&entry.host, host) {
            let _ = writeln!(
                out,
                "hand-written: ServiceEntry {} claims {} with {}",
                entry.source,
                entry.host,
                entry
                    .addresses
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    for conflict in &allocated.conflicts {
        if conflict.starts_with(&format!("{host} ")) {
            let _ = writeln!(out, "conflict: {conflict}");
        }
    }
}

/// `Some(zone)` when `host` is `<name>.<namespace>.<zone>`.
fn zone_suffix<'h>(host: &'h str, name: &str, namespace: &str) -> Option<&'h str> {
    let prefix = format!(
        "{}.{}.",
        name.to_ascii_lowercase(),
        namespace.to_ascii_lowercase()
    );
    host.strip_prefix(&prefix)
}

/// True when wildcard `pattern` (`*.suffix`) covers `host`.
fn covers(pattern: &str, host: &str) -> bool {
    pattern
        .strip_prefix("*.")
        .is_some_and(|suffix| host.ends_with(&format!(".{suffix}")))
}

/// The likeliest reason a name inside a zone does not exist.
fn why_missing(host: &str, allocated: &Allocated) -> String {
    if let Some(why) = per_cluster::not_exported(host, allocated) {
        return why;
    }
    let mut labels = host.split('.');
    let (Some(name), Some(namespace)) = (labels.next(), labels.next()) else {
        return "no such host".to_string();
    };
    let in_namespace: Vec<&str> = allocated
        .registry
        .services
        .iter()
        .filter(|s| s.namespace.eq_ignore_ascii_case(namespace))
        .map(|s| s.name.as_str())
        .collect();
    if in_namespace.is_empty() {
        format!("no service is exported from namespace `{namespace}`")
    } else {
        let shown: Vec<&str> = in_namespace.iter().take(5).copied().collect();
        format!(
            "no service `{name}` in namespace `{namespace}` (it exports: {}{})",
            shown.join(", "),
            if in_namespace.len() > 5 { ", ..." } else { "" }
        )
    }
}

mod failover_order;
mod health;
mod per_cluster;
pub mod txt_line;

pub use health::gateways;

#[cfg(test)]
mod tests;
