//! The one Istio type globaldns writes: `networking.istio.io/v1`
//! ServiceEntry, by hand, with only the fields DESIGN §5 uses. Field names
//! and enum spellings are Istio's API (the CRD in
//! `../shared/testdata/istio-serviceentry-crd.yaml`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const API_VERSION: &str = "networking.istio.io/v1";
pub const KIND: &str = "ServiceEntry";
/// The label that marks the ServiceEntries globaldns owns: only these are
/// ever updated or deleted by it.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "globaldns";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEntry {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: ServiceEntrySpec,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
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

/// An endpoint of a ServiceEntry (Istio's `WorkloadEntry` message).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadEntry {
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    /// Service port name to endpoint port; empty means the service's own
    /// port numbers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ports: BTreeMap<String, u32>,
}
