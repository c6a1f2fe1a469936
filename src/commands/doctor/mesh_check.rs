//! Istio's side of the path: the API versions served, the east-west
//! Gateway and its pods, the ServiceEntries the registry asks for, and the
//! leftovers of older installs that break upgrades.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use kube::api::DynamicObject;
use serde_json::Value;

use super::Finding;
use super::observe::Observed;
use crate::mesh::{GROUP, Object};
use crate::registry::Registry;
use crate::vip::{Allocator, Family, Table, VipRange};

pub(super) fn describe(kind: &str, object: &DynamicObject) -> String {
    format!(
        "{kind} {}/{}",
        object.metadata.namespace.as_deref().unwrap_or("-"),
        object.metadata.name.as_deref().unwrap_or("-")
    )
}

pub(super) use crate::mesh::sync::owned;

/// `istio.versions`: which `networking.istio.io` versions the API server
/// serves (v1 from Istio 1.22, v1beta1 from 1.5, v1alpha3 from 1.1).
pub fn versions(seen: &Observed) -> Finding {
    const CHECK: &str = "istio.versions";
    match &seen.istio_versions {
        Err(e) => Finding::fail(
            CHECK,
            GROUP,
            format!("cannot be discovered: {e}"),
            "check the kubeconfig and the API server",
        ),
        Ok(served) if served.is_empty() => Finding::fail(
            CHECK,
            GROUP,
            "not served: Istio's CRDs are not installed",
            "install Istio (or its CRDs) in this cluster",
        ),
        Ok(served) => Finding::pass(
            CHECK,
            GROUP,
            format!("served: {} (globaldns writes the first)", served.join(", ")),
        ),
    }
}

/// The local cluster and the registry, when both are known.
pub(super) fn local(seen: &Observed) -> Option<(&str, &Registry)> {
    let cluster = seen.cluster.as_ref().ok()?;
    let (registry, _) = seen.registry.as_ref().ok()?;
    Some((cluster.as_str(), registry))
}

pub(super) fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn host_key(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The ServiceEntries the registry asks of the local cluster (VIPs left
/// aside: only hosts, ports and endpoints are compared).
pub(super) fn desired(seen: &Observed) -> Option<Result<Vec<crate::mesh::ServiceEntry>, String>> {
    let (_, registry) = local(seen)?;
    let options = seen.options.as_ref()?;
    let allocator = Allocator {
        v4: VipRange::beside_istio(
            crate::vip::DEFAULT_V4_RANGE.parse().ok()?,
            Family::V4,
            "240.240.0.0/16".parse().ok()?,
        )
        .ok()?,
        v6: None,
        quarantine: 0,
    };
    let mut table = Table::default();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let wants = crate::index::wants(registry, &options.zones, options.per_cluster_names);
    allocator.reconcile(&mut table, &wants, now);
    let rendered = crate::mesh::render(
        registry,
        &options.zones,
        options.per_cluster_names,
        &allocator,
        &table,
        &options.target,
    );
    Some(rendered.map_err(|e| e.to_string()).map(|objects| {
        objects
            .into_iter()
            .filter_map(|o| match o {
                Object::ServiceEntry(entry) => Some(entry),
                _ => None,
            })
            .collect()
    }))
}

/// `(number, protocol, name)` of each port of a spec, sorted.
fn ports(spec: &Value) -> BTreeSet<(u64, String, String)> {
    spec["ports"]
        .as_array()
        .map(|ports| {
            ports
                .iter()
                .map(|p| {
                    (
                        p["number"].as_u64().unwrap_or(0),
                        p["protocol"].as_str().unwrap_or("").to_ascii_uppercase(),
                        p["name"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn endpoint_addresses(spec: &Value) -> BTreeSet<String> {
    spec["endpoints"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|e| e["address"].as_str())
                .map(host_key)
                .collect()
        })
        .unwrap_or_default()
}

fn show_ports(ports: &BTreeSet<(u64, String, String)>) -> String {
    ports
        .iter()
        .map(|(n, p, name)| format!("{name} {n}/{p}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `istio.service-entries`: for every host the registry gives the local
/// cluster, globaldns' ServiceEntry exists with the registry's ports; an
/// exported host's entry carries the local Service (the destination side,
/// what the east-west gateway routes to); no endpoint points at an address
/// the registry does not give (a gateway it no longer knows). Owned entries
/// the registry does not ask for are reported too.
pub fn service_entries(seen: &Observed) -> Vec<Finding> {
    const CHECK: &str = "istio.service-entries";
    let Some(desired) = desired(seen) else {
        return Vec::new();
    };
    let desired = match desired {
        Ok(d) => d,
        Err(e) => {
            return vec![Finding::fail(
                CHECK,
                "registry",
                format!("the ServiceEntries cannot be computed: {e}"),
                "give doctor the cluster's name as the registry has it (--cluster)",
            )];
        }
    };
    let actual = match &seen.service_entries {
        Ok(a) => a,
        Err(e) => {
            return vec![Finding::fail(
                CHECK,
                "ServiceEntries",
                format!("cannot be read: {e}"),
                "run doctor with an administrator's kubeconfig",
            )];
        }
    };
    let namespace = seen
        .options
        .as_ref()
        .map(|o| o.target.namespace.clone())
        .unwrap_or_default();
    let ours: BTreeMap<&str, &DynamicObject> = actual
        .iter()
        .filter(|o| owned(o) && o.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .filter_map(|o| Some((o.metadata.name.as_deref()?, o)))
        .collect();
    let local_suffix = format!(
        ".svc.{}",
        seen.options
            .as_ref()
            .map(|o| o.target.cluster_domain.as_str())
            .unwrap_or("cluster.local")
    );
    let mut out = Vec::new();
    let mut good = 0;
    for want in &desired {
        let name = want.metadata.name.as_str();
        let object = format!("ServiceEntry {namespace}/{name}");
        let host = want.spec.hosts.first().cloned().unwrap_or_default();
        let Some(found) = ours.get(name) else {
            out.push(Finding::fail(
                CHECK,
                object,
                format!("missing: sidecars have no route for {host}"),
                "the sync has not written it: see globaldns.lease, and the leader's log and globaldns_sync_failing",
            ));
            continue;
        };
        let want_spec = serde_json::to_value(&want.spec).unwrap_or_default();
        let spec = &found.data["spec"];
        let (want_ports, ports) = (ports(&want_spec), ports(spec));
        if want_ports != ports {
            out.push(Finding::fail(
                CHECK,
                object,
                format!(
                    "ports {} where the registry gives {}",
                    show_ports(&ports),
                    show_ports(&want_ports)
                ),
                "edited by hand or by another tool: globaldns' next sync pass puts it back (is it running?)",
            ));
            continue;
        }
        let (want_addresses, addresses) =
            (endpoint_addresses(&want_spec), endpoint_addresses(spec));
        if let Some(local) = want_addresses.iter().find(|a| a.ends_with(&local_suffix))
            && !addresses.contains(local)
        {
            out.push(Finding::fail(
                CHECK,
                object,
                format!("lacks the local Service {local}: the east-west gateway has nowhere to send {host}"),
                "globaldns' next sync pass puts it back (is it running?)",
            ));
            continue;
        }
        let unknown: Vec<&String> = addresses.difference(&want_addresses).collect();
        if !unknown.is_empty() {
            out.push(Finding::fail(
                CHECK,
                object,
                format!(
                    "points at {}, which the registry does not give for {host}",
                    unknown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ),
                "a gateway the registry no longer knows: check the registry's gateways, and that the sync runs",
            ));
            continue;
        }
        good += 1;
    }
    let wanted: BTreeSet<&str> = desired.iter().map(|d| d.metadata.name.as_str()).collect();
    // A peer doctor could not read may export them: globaldns keeps its
    // last exports (until --peer-stale-after), so they are not orphans.
    let peers_unread = seen.peers.iter().any(|p| p.holds_cluster.is_err());
    for (name, _) in ours
        .iter()
        .filter(|(n, _)| !wanted.contains(*n) && !peers_unread)
    {
        out.push(Finding::warn(
            CHECK,
            format!("ServiceEntry {namespace}/{name}"),
            "owned by globaldns but not in the registry",
            "the sync prunes it; if it stays, the delete brake holds it (globaldns_sync_held_back_deletions)",
        ));
    }
    if good > 0 {
        out.insert(
            0,
            Finding::pass(
                CHECK,
                format!("ServiceEntries in {namespace}"),
                format!("{good} of {} as the registry gives them", desired.len()),
            ),
        );
    }
    out
}

#[cfg(test)]
pub(super) mod tests;
