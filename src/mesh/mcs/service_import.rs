//! The MCS `ServiceImport` (KEP-1645; `sigs.k8s.io/mcs-api` v0.5,
//! `multicluster.x-k8s.io` `v1beta1` and `v1alpha1`, which carry these
//! fields alike): the type, by hand, with only the fields globaldns sets,
//! and what a cluster's ServiceImports are.
//!
//! One per service exported anywhere in the federation (the registry's
//! services: a registry file, ExportedServices or ServiceExports), in every
//! cluster, named as the service in its namespace ("namespace sameness"):
//!
//! - `spec.type`: `ClusterSetIP`; `spec.ips`: the service's VIPs, one IPv4
//!   and one IPv6 at most (the CRD's `maxItems: 2`), of its host in the
//!   clusterset zone when one is served ([`index::clusterset_suffix_in`]), else
//!   in the zone that carries its pins ([`index::pin_zone`]). Every cluster computes the same
//!   first-choice address from the same host, so the ClusterSetIP is the
//!   same everywhere without a central allocator; where two clusters'
//!   tables differ, `globaldns_vip_disagreements` says so (design §3).
//! - `spec.ports`: the service's ports: `protocol` is the Kubernetes one,
//!   `TCP` (every protocol the registry takes runs over TCP), and
//!   `appProtocol` carries Istio's protocol, lower-cased (`http`, `grpc`),
//!   as Istio reads a Service port's `appProtocol` (Istio's "protocol
//!   selection" doc); none for plain `TCP`.
//! - `status.clusters`: the exporting clusters, sorted.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::index;
use crate::mesh::Metadata;
use crate::registry::{Registry, Service};
use crate::vip::{Allocator, Table};

pub const KIND: &str = "ServiceImport";

/// `spec.type` of an import with a cluster-wide address.
pub const CLUSTER_SET_IP: &str = "ClusterSetIP";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceImport {
    /// `multicluster.x-k8s.io/<version>`.
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: ServiceImportSpec,
    pub status: ServiceImportStatus,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceImportSpec {
    /// Always [`CLUSTER_SET_IP`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The ClusterSetIPs: the VIPs, IPv4 first; empty while the pool has
    /// no room for the host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
    pub ports: Vec<ServicePort>,
}

/// A port as the MCS API (and Kubernetes' `ServicePort`) names its fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    pub name: String,
    /// `TCP`.
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    pub port: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceImportStatus {
    /// The exporting clusters, sorted by name.
    pub clusters: Vec<ClusterStatus>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub cluster: String,
}

impl ServiceImport {
    /// `namespace/name`, as a log names it.
    pub fn key(&self) -> String {
        format!("{}/{}", self.metadata.namespace, self.metadata.name)
    }

    /// The object as applied to the resource: everything but `status`.
    pub fn spec_value(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).expect("a ServiceImport serialises");
        value.as_object_mut().expect("an object").remove("status");
        value
    }

    /// The object as applied to its `status` subresource: identity and
    /// `status` only.
    pub fn status_value(&self) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": {"name": self.metadata.name, "namespace": self.metadata.namespace},
            "status": self.status,
        })
    }
}

/// The ServiceImports every cluster holds for `registry`, in registry
/// order, written in `multicluster.x-k8s.io/<version>`. `zones` are the
/// host suffixes served: when one is the MCS zone's
/// (`--clusterset-zone`, `svc.clusterset.local`), its hosts carry the
/// ClusterSetIP, the address `<name>.<namespace>.svc.clusterset.local`
/// answers; without one, the pin zone's do.
pub fn service_imports(
    registry: &Registry,
    zones: &[String],
    allocator: &Allocator,
    table: &Table,
    version: &str,
) -> Vec<ServiceImport> {
    let pins = index::pin_zone(zones);
    let Some(zone) = index::clusterset_suffix_in(zones).or(pins) else {
        return Vec::new(); // no zone: no host, no address
    };
    registry
        .services
        .iter()
        .map(|service| import(service, zone, pins, allocator, table, version))
        .collect()
}

fn import(
    service: &Service,
    zone: &str,
    pins: Option<&str>,
    allocator: &Allocator,
    table: &Table,
    version: &str,
) -> ServiceImport {
    let (_, want) = index::hosts(service, zone, pins, false)
        .next()
        .expect("a service has its own host");
    let addresses = allocator.addresses(table, &want);
    let v4 = addresses.iter().find(|a| a.is_ipv4());
    let v6 = addresses.iter().find(|a| a.is_ipv6());
    let mut clusters: Vec<String> = service
        .exported_from
        .iter()
        .map(|c| c.to_string())
        .collect();
    clusters.sort();
    clusters.dedup();
    ServiceImport {
        api_version: format!("{}/{version}", super::GROUP),
        kind: KIND.to_string(),
        metadata: Metadata::owned(service.name.to_string(), &service.namespace),
        spec: ServiceImportSpec {
            kind: CLUSTER_SET_IP.to_string(),
            ips: v4.into_iter().chain(v6).map(IpAddr::to_string).collect(),
            ports: service
                .ports
                .iter()
                .map(|p| port(p.name(), p.number, p.protocol()))
                .collect(),
        },
        status: ServiceImportStatus {
            clusters: clusters
                .into_iter()
                .map(|cluster| ClusterStatus { cluster })
                .collect(),
        },
    }
}

/// An Istio port as the MCS API writes it (see the module's text).
fn port(name: &str, number: u32, istio_protocol: &str) -> ServicePort {
    ServicePort {
        name: name.to_string(),
        protocol: "TCP".to_string(),
        app_protocol: (!istio_protocol.eq_ignore_ascii_case("TCP"))
            .then(|| istio_protocol.to_ascii_lowercase()),
        port: number,
    }
}

#[cfg(test)]
mod tests;
