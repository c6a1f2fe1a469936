//! Istio's ServiceEntry: the type, by hand, with only the
//! fields globaldns sets (field names and enum spellings are Istio's API),
//! and what a cluster's ServiceEntries are (design §5).
//!
//! One ServiceEntry per host (service × zone):
//!
//! - endpoints: every gateway of every exporting cluster other than the
//!   local one, each service port mapped to the gateway port; the local
//!   service `<name>.<namespace>.svc.<cluster domain>` when the local
//!   cluster exports it too, without a `network`. All of them labelled
//!   `security.istio.io/tlsMode: istio`: Istio sends mTLS to an endpoint
//!   only when it says so (or names a service account), and the east-west
//!   gateway's port 15443 routes on the TLS SNI, so plaintext is reset.
//!   Workloads outside Kubernetes the service lists (`endpoints`) are
//!   endpoints in every cluster, on their own addresses and ports; one
//!   with a service account runs a sidecar and gets the label too. Host
//!   names are written absolute ([`super::meta::absolute`]).
//! - The local endpoint carries no `network`, gateway and VM endpoints
//!   carry theirs. The exporting cluster's east-west gateway builds the
//!   sni-dnat cluster for a host from this entry, and keeps only endpoints
//!   in its network view (`ISTIO_META_REQUESTED_NETWORK_VIEW`, Istio's
//!   pilot/pkg/model/proxy_view.go): an endpoint of a network it does not
//!   view is dropped, one without a network is always kept. The registry's
//!   network name for the local cluster need not equal the cluster's
//!   `topology.istio.io/network`; were it written here, a mismatch would
//!   empty the cluster and reset every cross-cluster call.
//! - `resolution` is DNS when any endpoint address is a host name, STATIC
//!   otherwise; `addresses` are the host's VIPs (none if the pool had no
//!   room for it).
//! - The name is the host with dots as dashes (`httpbin-bar-global`). Two
//!   hosts can give the same name (`a-b.c` and `a.b-c`); those get the
//!   first 8 hex digits of the SHA-256 of their host appended, so that each
//!   keeps a name of its own whatever else the registry holds.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::destination_rule::DestinationRule;
use super::failover_rule::{Plan, Source, sources};
use super::meta::{Metadata, absolute, export_to_all};
pub use super::workload_entry::WorkloadEntry;
use super::{GatewayKey, RenderError, Target};
use crate::index;
use crate::registry::{Cluster, Endpoint, Registry, Service};
use crate::vip::{Allocator, Table, Want};

pub const KIND: &str = "ServiceEntry";

/// The label Istio reads to send mTLS to an endpoint
/// (`security.istio.io/tlsMode`), and its value for a sidecar or gateway.
pub const TLS_MODE_LABEL: &str = "security.istio.io/tlsMode";
pub const TLS_MODE_ISTIO: &str = "istio";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEntry {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: ServiceEntrySpec,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEntrySpec {
    pub hosts: Vec<String>,
    pub location: Location,
    pub resolution: Resolution,
    /// The host's VIPs; absent when the pool had no room for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    pub ports: Vec<ServicePort>,
    pub endpoints: Vec<WorkloadEntry>,
    /// Which namespaces see the entry: always [`EXPORT_TO_ALL`]
    /// (see [`super::meta::export_to_all`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub export_to: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Location {
    MeshInternal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Resolution {
    /// Endpoint addresses are IPs.
    Static,
    /// Some endpoint address is a host name, which the proxy resolves.
    Dns,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePort {
    pub name: String,
    pub number: u32,
    pub protocol: String,
}

/// The labels of an endpoint Istio should send mTLS to.
fn mutual_tls() -> BTreeMap<String, String> {
    BTreeMap::from([(TLS_MODE_LABEL.to_string(), TLS_MODE_ISTIO.to_string())])
}

/// The ServiceEntries `target.cluster` needs, zone by zone, in registry
/// order: each service's, then (with `per_cluster`) one per exporting
/// cluster for its per-cluster name, whose only endpoints are that
/// cluster's ([`index::hosts`]). Fails when the cluster is not in the
/// registry ([`RenderError::UnknownCluster`]).
pub fn service_entries(
    registry: &Registry,
    zones: &[String],
    per_cluster: bool,
    allocator: &Allocator,
    table: &Table,
    target: &Target,
) -> Result<Vec<ServiceEntry>, RenderError> {
    rendered(registry, zones, per_cluster, allocator, table, target).map(|(entries, _)| entries)
}

/// [`service_entries`], and the DestinationRules of the failover policy
/// ([`super::failover`]): one per service host whose endpoints come from
/// two sources or more, named as its ServiceEntry.
pub fn rendered(
    registry: &Registry,
    zones: &[String],
    per_cluster: bool,
    allocator: &Allocator,
    table: &Table,
    target: &Target,
) -> Result<(Vec<ServiceEntry>, Vec<DestinationRule>), RenderError> {
    let clusters: HashMap<&str, &Cluster> = registry
        .clusters
        .iter()
        .map(|c| (c.name.as_str(), c))
        .collect();
    let local = target.local(registry)?;
    let pins = index::pin_zone(zones);
    let mut entries = Vec::with_capacity(registry.services.len() * zones.len());
    // The entry each rule goes with, by index: named once entries are.
    let mut ruled = Vec::new();
    for zone in zones {
        for service in registry.services.iter() {
            // Most services have one source, and no policy to plan.
            let plan = (sources(service) >= 2).then(|| Plan::new(service, local, registry));
            for (cluster, want) in index::hosts(service, zone, pins, per_cluster) {
                let endpoints = match cluster {
                    None => {
                        let mut endpoints = endpoints(service, &clusters, local, target);
                        if let Some(plan) = &plan
                            && let Some(ordering) =
                                plan.annotate(&mut endpoints, target.api_version)
                        {
                            let rule = plan.rule("", &want.host, ordering, target);
                            ruled.push((entries.len(), rule));
                        }
                        endpoints.into_iter().map(|(entry, _)| entry).collect()
                    }
                    Some(cluster) => cluster_endpoints(service, cluster, &clusters, local, target),
                };
                entries.push(entry(service, &want, endpoints, allocator, table, target));
            }
        }
    }
    disambiguate(&mut entries);
    let rules = ruled
        .into_iter()
        .map(|(i, mut rule)| {
            rule.metadata.name.clone_from(&entries[i].metadata.name);
            rule
        })
        .collect();
    Ok((entries, rules))
}

/// The ServiceEntry of `want`, a host of `service`, with `endpoints`.
fn entry(
    service: &Service,
    want: &Want,
    endpoints: Vec<WorkloadEntry>,
    allocator: &Allocator,
    table: &Table,
    target: &Target,
) -> ServiceEntry {
    let resolution = if endpoints.iter().all(|e| !e.by_name()) {
        Resolution::Static
    } else {
        Resolution::Dns
    };
    ServiceEntry {
        api_version: target.api_version.api_version().to_string(),
        kind: KIND.to_string(),
        metadata: Metadata::owned(want.host.replace('.', "-"), &target.namespace),
        spec: ServiceEntrySpec {
            hosts: vec![want.host.to_string()],
            location: Location::MeshInternal,
            resolution,
            addresses: allocator
                .addresses(table, want)
                .iter()
                .map(ToString::to_string)
                .collect(),
            ports: service
                .ports
                .iter()
                .map(|p| ServicePort {
                    name: p.name().to_string(),
                    number: p.number,
                    protocol: p.protocol().to_string(),
                })
                .collect(),
            endpoints,
            export_to: export_to_all(),
        },
    }
}

/// The endpoints of a service's own host: every other exporting
/// cluster's gateways but the withdrawn ones, the workloads outside
/// Kubernetes, and the local Service when the local cluster exports it too
/// ([`keep_last`] says when withdrawn gateways stay).
fn endpoints<'s>(
    service: &'s Service,
    clusters: &HashMap<&str, &Cluster>,
    local: &Cluster,
    target: &Target,
) -> Vec<(WorkloadEntry, Source<'s>)> {
    let mut out = Vec::new();
    for name in &service.exported_from {
        let Some(cluster) = clusters.get(name.as_str()) else {
            continue; // validation refuses this; nothing to point at
        };
        if cluster.name == local.name {
            continue;
        }
        let source = Source::Cluster(name);
        out.extend(
            gateways(service, cluster, &target.withdrawn)
                .into_iter()
                .map(|(entry, withdrawn)| (entry, withdrawn, source)),
        );
    }
    for workload in &service.endpoints {
        out.push((outside_kubernetes(workload), false, Source::Outside));
    }
    if let Some(own) = service.exported_from.iter().find(|c| **c == local.name) {
        out.push((
            local_endpoint(service, local, &target.cluster_domain),
            false,
            Source::Cluster(own),
        ));
    }
    keep_last(out)
}

/// The endpoints to write of `candidates` (each with whether it is a
/// withdrawn gateway, and a tag of the caller's): all but the withdrawn,
/// unless that leaves none. Then all stay: with every exporter down, an
/// empty ServiceEntry would only turn connection failures into resets,
/// and the gateway that comes back first is reached at once (design §5).
fn keep_last<T>(candidates: Vec<(WorkloadEntry, bool, T)>) -> Vec<(WorkloadEntry, T)> {
    let all_withdrawn = candidates.iter().all(|(_, withdrawn, _)| *withdrawn);
    candidates
        .into_iter()
        .filter(|(_, withdrawn, _)| all_withdrawn || !withdrawn)
        .map(|(entry, _, tag)| (entry, tag))
        .collect()
}

/// The endpoints of the per-cluster name of `service` for `cluster`: that
/// cluster's copy only. In that cluster itself, the local Service (so its
/// east-west gateway has the SNI chain for the name); elsewhere, its
/// gateways but the withdrawn ones, unless all are ([`keep_last`]).
fn cluster_endpoints(
    service: &Service,
    cluster: &str,
    clusters: &HashMap<&str, &Cluster>,
    local: &Cluster,
    target: &Target,
) -> Vec<WorkloadEntry> {
    if cluster == local.name {
        return vec![local_endpoint(service, local, &target.cluster_domain)];
    }
    clusters
        .get(cluster)
        .map(|c| {
            let candidates = gateways(service, c, &target.withdrawn);
            keep_last(candidates.into_iter().map(|(e, w)| (e, w, ())).collect())
                .into_iter()
                .map(|(entry, ())| entry)
                .collect()
        })
        .unwrap_or_default()
}

/// `cluster`'s gateways as endpoints of `service`, each with whether it is
/// withdrawn: every service port mapped to the gateway port, mTLS.
fn gateways(
    service: &Service,
    cluster: &Cluster,
    withdrawn: &BTreeSet<GatewayKey>,
) -> Vec<(WorkloadEntry, bool)> {
    cluster
        .gateways
        .iter()
        .map(|gateway| {
            let id = GatewayKey::new(&cluster.name, &gateway.address, gateway.port);
            let entry = WorkloadEntry {
                address: absolute(&gateway.address),
                network: cluster.network.clone(),
                locality: cluster.locality.clone(),
                ports: service
                    .ports
                    .iter()
                    .map(|p| (p.name().to_string(), u32::from(gateway.port)))
                    .collect(),
                labels: mutual_tls(),
                ..WorkloadEntry::default()
            };
            (entry, withdrawn.contains(&id))
        })
        .collect()
}

/// The local Service, `<name>.<namespace>.svc.<cluster domain>`.
fn local_endpoint(service: &Service, local: &Cluster, cluster_domain: &str) -> WorkloadEntry {
    WorkloadEntry {
        address: absolute(&format!(
            "{}.{}.svc.{cluster_domain}",
            service.name, service.namespace
        )),
        // No `network`: see the module's header.
        locality: local.locality.clone(),
        labels: mutual_tls(),
        ..WorkloadEntry::default()
    }
}

/// A workload outside Kubernetes, as an endpoint in every cluster: reached
/// directly, on its own ports. With a service account it runs a sidecar
/// and is sent mTLS (the tlsMode label, unless its labels say otherwise).
fn outside_kubernetes(workload: &Endpoint) -> WorkloadEntry {
    let mut labels = workload.labels.clone();
    if workload.service_account.is_some() {
        labels
            .entry(TLS_MODE_LABEL.to_string())
            .or_insert_with(|| TLS_MODE_ISTIO.to_string());
    }
    WorkloadEntry {
        address: absolute(&workload.address),
        network: workload.network.clone(),
        locality: workload.locality.clone(),
        ports: workload.ports.clone(),
        labels,
        weight: workload.weight,
        service_account: workload.service_account.clone(),
    }
}

/// Appends a hash of the host to every name that two hosts share.
fn disambiguate(entries: &mut [ServiceEntry]) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for entry in entries.iter() {
        *seen.entry(entry.metadata.name.clone()).or_default() += 1;
    }
    for entry in entries.iter_mut() {
        if seen[&entry.metadata.name] > 1 {
            let digest = Sha256::digest(entry.spec.hosts[0].as_bytes());
            let suffix: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
            entry.metadata.name = format!("{}-{suffix}", entry.metadata.name);
        }
    }
}

#[cfg(test)]
mod tests;
