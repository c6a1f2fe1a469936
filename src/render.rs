//! Registry + allocations + the local cluster → the ServiceEntries that
//! cluster needs (DESIGN §5). Pure: `globaldns render` prints the result,
//! and the Kubernetes sync will apply it.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use sha2::{Digest, Sha256};

use crate::index;
use crate::istio::{
    API_VERSION, KIND, Location, MANAGED_BY, MANAGED_BY_LABEL, Metadata, Resolution, ServiceEntry,
    ServiceEntrySpec, ServicePort, WorkloadEntry,
};
use crate::registry::{Cluster, Registry, Service};
use crate::vip::{Allocator, Table};

/// Where the ServiceEntries go and whose view they are.
#[derive(Clone, Debug)]
pub struct Target<'a> {
    /// The cluster they are for (`--cluster`).
    pub cluster: &'a str,
    /// Their namespace (`--namespace`, default `istio-system`).
    pub namespace: &'a str,
}

/// One ServiceEntry per host (service × zone), in registry order.
///
/// - Endpoints: every gateway of every exporting cluster other than the
///   local one, each port mapped to the gateway port; and when the local
///   cluster exports the service too, the local service
///   `<name>.<namespace>.svc.cluster.local` on its own ports.
/// - `resolution` is DNS when any endpoint address is a host name (a
///   gateway given by name, or the local service), STATIC otherwise.
/// - `addresses` are the host's VIPs (pins included); none if the pool had
///   no room for it.
/// - The name is the host with dots as dashes (`httpbin-bar-global`). Two
///   hosts can give the same name (`a-b.c` and `a.b-c`); those get the first
///   8 hex digits of the SHA-256 of their host appended, so that each keeps
///   a name of its own whatever else the registry holds.
pub fn render(
    registry: &Registry,
    zones: &[String],
    allocator: &Allocator,
    table: &Table,
    target: &Target<'_>,
) -> Result<Vec<ServiceEntry>, String> {
    let clusters: HashMap<&str, &Cluster> = registry
        .clusters
        .iter()
        .map(|c| (c.name.as_str(), c))
        .collect();
    let Some(local) = clusters.get(target.cluster) else {
        let known: Vec<&str> = registry.clusters.iter().map(|c| c.name.as_str()).collect();
        return Err(format!(
            "cluster `{}` is not in the registry (clusters: {})",
            target.cluster,
            known.join(", ")
        ));
    };
    let wants = index::wants(registry, zones);
    let mut entries = Vec::with_capacity(wants.len());
    let per_zone = registry.services.len();
    for (i, want) in wants.iter().enumerate() {
        let service = &registry.services[i % per_zone.max(1)];
        let endpoints = endpoints(service, &clusters, local);
        let resolution = if endpoints
            .iter()
            .all(|e| e.address.parse::<IpAddr>().is_ok())
        {
            Resolution::Static
        } else {
            Resolution::Dns
        };
        entries.push(ServiceEntry {
            api_version: API_VERSION.to_string(),
            kind: KIND.to_string(),
            metadata: Metadata {
                name: want.host.replace('.', "-"),
                namespace: target.namespace.to_string(),
                labels: BTreeMap::from([(MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string())]),
            },
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
                        name: p.name.to_string(),
                        number: p.number,
                        protocol: p.protocol.to_string(),
                    })
                    .collect(),
                endpoints,
            },
        });
    }
    disambiguate(&mut entries);
    Ok(entries)
}

fn endpoints(
    service: &Service,
    clusters: &HashMap<&str, &Cluster>,
    local: &Cluster,
) -> Vec<WorkloadEntry> {
    let mut out = Vec::new();
    for name in &service.exported_from {
        let Some(cluster) = clusters.get(name.as_str()) else {
            continue; // validation refuses this; nothing to point at
        };
        if cluster.name == local.name {
            continue;
        }
        for gateway in &cluster.gateways {
            out.push(WorkloadEntry {
                address: gateway.address.clone(),
                network: cluster.network.clone(),
                locality: cluster.locality.clone(),
                ports: service
                    .ports
                    .iter()
                    .map(|p| (p.name.to_string(), u32::from(gateway.port)))
                    .collect(),
            });
        }
    }
    if service.exported_from.iter().any(|c| *c == local.name) {
        out.push(WorkloadEntry {
            address: format!("{}.{}.svc.cluster.local", service.name, service.namespace),
            network: local.network.clone(),
            locality: local.locality.clone(),
            ports: BTreeMap::new(),
        });
    }
    out
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
