//! Leftovers of older installs that break upgrades: `tcp_cluster_rewrite`
//! EnvoyFilters, served zones in the injector's DNS search namespaces,
//! hand-written ServiceEntries Istio prefers to globaldns', and a VIP range
//! over the one istiod allocates from.

use std::collections::BTreeSet;

use ipnet::IpNet;
use kube::api::DynamicObject;
use serde_json::Value;

use super::Finding;
use super::mesh_check::{describe, local, owned, strings};
use super::observe::{Observed, env_of, flag};

/// `leftover.envoy-filter`: an EnvoyFilter with `tcp_cluster_rewrite` (the
/// 1.1–1.9 charts' `istio-multicluster-ingressgateway`). Envoy dropped the
/// filter in Istio 1.20; a proxy that rejects it rejects the 15443
/// listener with it.
pub fn envoy_filters(seen: &Observed) -> Vec<Finding> {
    const CHECK: &str = "leftover.envoy-filter";
    let filters = match &seen.envoy_filters {
        Ok(f) => f,
        Err(e) => {
            return vec![Finding::warn(
                CHECK,
                "EnvoyFilters",
                format!("cannot be read: {e}"),
                "run doctor with an administrator's kubeconfig",
            )];
        }
    };
    let bad: Vec<Finding> = filters
        .iter()
        .filter(|f| f.data["spec"].to_string().contains("tcp_cluster_rewrite"))
        .map(|f| {
            Finding::fail(
                CHECK,
                describe("EnvoyFilter", f),
                "uses tcp_cluster_rewrite, which Envoy no longer has (Istio 1.20+): proxies reject the 15443 listener with it",
                format!(
                    "kubectl -n {} delete envoyfilter {}  (globaldns' ServiceEntries in the exporting cluster replace it)",
                    f.metadata.namespace.as_deref().unwrap_or("-"),
                    f.metadata.name.as_deref().unwrap_or("-")
                ),
            )
        })
        .collect();
    if bad.is_empty() {
        vec![Finding::pass(
            CHECK,
            "EnvoyFilters",
            format!("{} found, none with tcp_cluster_rewrite", filters.len()),
        )]
    } else {
        bad
    }
}

/// The DNS search namespaces a sidecar injector values document gives
/// (`global.podDNSSearchNamespaces`, Istio 1.1–1.7's multicluster values).
fn search_namespaces(values: &str) -> Vec<String> {
    serde_json::from_str::<Value>(values)
        .ok()
        .map(|v| {
            strings(&v["global"]["podDNSSearchNamespaces"])
                .into_iter()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// `leftover.dns-search`: the injector adds a served zone to pods' DNS
/// search list (`global.podDNSSearchNamespaces`, 1.1–1.7): every lookup of
/// an external name then also asks globaldns, and a short name can resolve
/// to a `.global` host.
pub fn dns_search(seen: &Observed) -> Vec<Finding> {
    const CHECK: &str = "leftover.dns-search";
    let zones = seen
        .options
        .as_ref()
        .map(|o| o.zones.clone())
        .unwrap_or_default();
    let maps = match &seen.injector {
        Ok(m) => m,
        Err(e) => {
            return vec![Finding::warn(
                CHECK,
                "sidecar injector",
                format!("its ConfigMaps cannot be read: {e}"),
                "run doctor with an administrator's kubeconfig",
            )];
        }
    };
    let mut out = Vec::new();
    for map in maps {
        let Some(values) = map.data.as_ref().and_then(|d| d.get("values")) else {
            continue;
        };
        let found: Vec<String> = search_namespaces(values)
            .into_iter()
            .filter(|s| {
                let s = s.trim_end_matches('.').to_ascii_lowercase();
                zones
                    .iter()
                    .any(|z| s == *z || s.ends_with(&format!(".{z}")))
            })
            .collect();
        if !found.is_empty() {
            out.push(Finding::warn(
                CHECK,
                format!(
                    "ConfigMap {}/{}",
                    map.metadata.namespace.as_deref().unwrap_or("-"),
                    map.metadata.name.as_deref().unwrap_or("-")
                ),
                format!(
                    "injects the DNS search namespaces {}: pods' lookups of other names go to globaldns first",
                    found.join(", ")
                ),
                "remove global.podDNSSearchNamespaces from the install's values (call `.global` names in full) and re-inject the pods",
            ));
        }
    }
    if out.is_empty() {
        out.push(Finding::pass(
            CHECK,
            "sidecar injector",
            "no served zone in the pods' DNS search list",
        ));
    }
    out
}

/// `leftover.hand-written`: a ServiceEntry globaldns does not own claims a
/// registry host; Istio 1.30+ routes by the older of two entries for one
/// host, so an older hand-written one wins over globaldns'.
pub fn hand_written(seen: &Observed) -> Vec<Finding> {
    const CHECK: &str = "leftover.hand-written";
    let (Some((_, registry)), Ok(entries)) = (local(seen), &seen.service_entries) else {
        return Vec::new();
    };
    let zones = seen
        .options
        .as_ref()
        .map(|o| o.zones.clone())
        .unwrap_or_default();
    let hosts: BTreeSet<String> = registry
        .services
        .iter()
        .flat_map(|s| zones.iter().map(|z| s.host(z).to_string()))
        .collect();
    let shared: Vec<std::sync::Arc<DynamicObject>> =
        entries.iter().cloned().map(std::sync::Arc::new).collect();
    let mut out = Vec::new();
    for entry in crate::mesh::dropin::hand_written(&shared) {
        if !hosts.contains(&entry.host) {
            continue;
        }
        let object = format!("ServiceEntry {}", entry.source);
        let fix = format!(
            "delete it (kubectl -n {} delete serviceentry {}) unless it is meant to replace globaldns' entry",
            entry.source.split('/').next().unwrap_or("-"),
            entry.source.split('/').nth(1).unwrap_or("-")
        );
        match entry.beside_ours {
            Some(crate::index::IstioPicks::Ours(ours)) => out.push(Finding::warn(
                CHECK,
                object,
                format!(
                    "claims {} too; Istio routes by globaldns' {ours} (older)",
                    entry.host
                ),
                fix,
            )),
            Some(crate::index::IstioPicks::HandWritten) => out.push(Finding::fail(
                CHECK,
                object,
                format!(
                    "claims {} and is older than globaldns' entry: Istio 1.30+ routes by it",
                    entry.host
                ),
                fix,
            )),
            None => out.push(Finding::fail(
                CHECK,
                object,
                format!(
                    "claims {}, for which globaldns has no entry yet: Istio routes by this one",
                    entry.host
                ),
                fix,
            )),
        }
    }
    if out.is_empty() {
        out.push(Finding::pass(
            CHECK,
            "ServiceEntries",
            "no hand-written entry claims a registry host",
        ));
    }
    out
}

/// The ranges istiod allocates from, by where they were read: each istiod
/// Deployment's (every revision) `env`, or Istio's default when none sets
/// it.
fn istio_ranges(seen: &Observed, env: &str, default: &str) -> Vec<(String, IpNet)> {
    let mut out: Vec<(String, IpNet)> = seen
        .istiod
        .iter()
        .flatten()
        .filter_map(|d| {
            let value = env_of(d, "discovery", env)?;
            let name = d.metadata.name.as_deref().unwrap_or("istiod");
            Some((format!("{name}'s {env}"), value.parse().ok()?))
        })
        .collect();
    if out.is_empty() {
        out.push((
            format!("Istio's default ({env} unset or istiod not found)"),
            default.parse().expect("a valid default"),
        ));
    }
    out
}

/// `leftover.vip-range`: globaldns' VIP range against the range the mesh's
/// istiod auto-allocates from (`PILOT_IP_AUTOALLOCATE_IPV4_PREFIX` /
/// `_IPV6_PREFIX`, Istio 1.27+, `240.240.0.0/16` and `2001:2::/48` by
/// default). globaldns skips the range it is told; an istiod prefix inside
/// its range that it was not told is a collision waiting to happen. Owned
/// entries with an address in istiod's range are reported too.
pub fn vip_range(seen: &Observed) -> Vec<Finding> {
    const CHECK: &str = "leftover.vip-range";
    let Ok(Some(ours)) = &seen.deployment else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (family, range_flag, default, istio_flag, istio_env, istio_default) in [
        (
            "IPv4",
            ("vip-range", "GLOBALDNS_VIP_RANGE"),
            Some(crate::vip::DEFAULT_V4_RANGE),
            (
                "istio-ip-autoallocate-ipv4-prefix",
                "GLOBALDNS_ISTIO_IP_AUTOALLOCATE_IPV4_PREFIX",
            ),
            "PILOT_IP_AUTOALLOCATE_IPV4_PREFIX",
            "240.240.0.0/16",
        ),
        (
            "IPv6",
            ("vip-range-v6", "GLOBALDNS_VIP_RANGE_V6"),
            None,
            (
                "istio-ip-autoallocate-ipv6-prefix",
                "GLOBALDNS_ISTIO_IP_AUTOALLOCATE_IPV6_PREFIX",
            ),
            "PILOT_IP_AUTOALLOCATE_IPV6_PREFIX",
            "2001:2::/48",
        ),
    ] {
        let Some(range) = flag(ours, range_flag.0, range_flag.1)
            .or(default.map(str::to_string))
            .and_then(|r| r.parse::<IpNet>().ok())
        else {
            continue;
        };
        let told = flag(ours, istio_flag.0, istio_flag.1)
            .unwrap_or_else(|| istio_default.to_string())
            .parse::<IpNet>()
            .ok();
        let ranges = istio_ranges(seen, istio_env, istio_default);
        let clash = ranges.iter().find(|(_, actual)| {
            let overlap = range.contains(&actual.network())
                || actual.contains(&range.network())
                || range.contains(&actual.broadcast());
            overlap && told != Some(*actual)
        });
        if let Some((source, actual)) = clash {
            out.push(Finding::fail(
                CHECK,
                format!("{family} range {range}"),
                format!(
                    "overlaps {actual}, the range Istio auto-allocates from ({source}), which globaldns is not told: both may hand out one address"
                ),
                format!("run globaldns with --{}={actual}, or move --{} out of it", istio_flag.0, range_flag.0),
            ));
            continue;
        }
        let (source, actual) = ranges[0].clone();
        let inside: Vec<String> = seen
            .service_entries
            .as_ref()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| owned(e))
                    .filter(|e| {
                        strings(&e.data["spec"]["addresses"])
                            .iter()
                            .filter_map(|a| a.parse::<std::net::IpAddr>().ok())
                            .any(|a| actual.contains(&a))
                    })
                    .map(|e| describe("ServiceEntry", e))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(first) = inside.first() {
            out.push(Finding::fail(
                CHECK,
                first.clone(),
                format!(
                    "{} owned ServiceEntr(ies) have a VIP inside {actual}, Istio's auto-allocation range ({source})",
                    inside.len()
                ),
                format!("run globaldns with --{}={actual}: it moves them", istio_flag.0),
            ));
            continue;
        }
        out.push(Finding::pass(
            CHECK,
            format!("{family} range {range}"),
            format!("clear of {actual} ({source})"),
        ));
    }
    out
}

#[cfg(test)]
mod tests;
