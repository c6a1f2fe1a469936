//! Per-cluster names in `explain` (design §2): which cluster's copy a
//! name reaches, a service's names, and why one is NXDOMAIN.

use std::fmt::Write;

use super::zone_suffix;
use crate::controller::Allocated;
use crate::registry::Service;
use crate::vip::Family;

/// `Some((service, cluster))` when `host` is the per-cluster name of
/// `service` for `cluster`, one of its exporters (design §2).
pub(super) fn of<'s>(host: &str, service: &'s Service) -> Option<(&'s Service, &'s str)> {
    let (cluster, rest) = host.split_once('.')?;
    let zone = zone_suffix(rest, &service.name, &service.namespace)?;
    if crate::naming::clusterset_zone(zone).is_some() {
        return None; // MCS DNS spec §2.3.4: none in a clusterset zone
    }
    service
        .exported_from
        .iter()
        .find(|c| c.eq_ignore_ascii_case(cluster))
        .map(|c| (service, c.as_str()))
}

/// The per-cluster names of `service` in the zone of `host`, those served.
pub(super) fn lines(out: &mut String, host: &str, service: &Service, allocated: &Allocated) {
    let Some(zone) = zone_suffix(host, &service.name, &service.namespace) else {
        return;
    };
    let served: Vec<String> = service
        .exported_from
        .iter()
        .map(|c| service.cluster_host(c, zone).to_string())
        .filter(|h| {
            [Family::V4, Family::V6]
                .iter()
                .any(|f| allocated.table.lease(h, *f).is_some())
        })
        .collect();
    if !served.is_empty() {
        let _ = writeln!(
            out,
            "per-cluster names (each reaches its cluster's copy only): {}",
            served.join(", ")
        );
    }
}

/// Why `host` is NXDOMAIN when it has the form of a per-cluster name
/// `<cluster>.<name>.<namespace>.<zone>` of a service that `cluster` does
/// not export, or of any service in a Multi-Cluster Services zone, which
/// has none (MCS DNS spec §2.3.4); `None` when it has not.
pub(super) fn not_exported(host: &str, allocated: &Allocated) -> Option<String> {
    let (cluster, rest) = host.split_once('.')?;
    let (service, zone) = allocated
        .registry
        .services
        .iter()
        .find_map(|s| Some((s, zone_suffix(rest, &s.name, &s.namespace)?)))?;
    if crate::naming::clusterset_zone(zone).is_some() {
        return Some(format!(
            "{zone} is a Multi-Cluster Services zone: a ClusterSetIP service has no per-cluster names there (MCS DNS spec §2.3.4); ask {rest}"
        ));
    }
    let from = if service.exported_from.is_empty() {
        "no cluster".to_string()
    } else {
        service.exported_from.join(", ")
    };
    Some(format!(
        "cluster `{cluster}` does not export {}.{} (exported from {from}), so it has no per-cluster name",
        service.name, service.namespace
    ))
}
