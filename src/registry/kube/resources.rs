//! The registry as custom resources of globaldns' own API group
//! (`globaldns.io/v1alpha1`): one `MeshCluster` per cluster and one
//! `ExportedService` per exported service, in the namespace globaldns runs
//! in. Their specs carry the fields of the file format (design §2), so a
//! registry moves between the two forms field for field.
//!
//! Why one object per cluster and per service, not one object holding the
//! registry: each cluster's owners can apply their own exports without
//! touching anyone else's, RBAC can be granted per object kind, and one bad
//! object is skipped alone instead of failing the whole registry.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::registry::failover::OutlierDetection;
use crate::registry::{Endpoint, Gateway, Port};

/// A cluster of the mesh; its name is the object's name.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "globaldns.io",
    version = "v1alpha1",
    kind = "MeshCluster",
    namespaced,
    shortname = "mcl",
    printcolumn = r#"{"name":"Network","type":"string","jsonPath":".spec.network"}"#,
    printcolumn = r#"{"name":"Locality","type":"string","jsonPath":".spec.locality"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MeshClusterSpec {
    /// Istio network name, copied into ServiceEntry endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// `region/zone[/subzone]`, copied into ServiceEntry endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    /// The cluster's east-west gateways.
    pub gateways: Vec<Gateway>,
}

/// A service exported to the mesh by one or more clusters.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "globaldns.io",
    version = "v1alpha1",
    kind = "ExportedService",
    namespaced,
    shortname = "xsvc",
    printcolumn = r#"{"name":"Service","type":"string","jsonPath":".spec.name"}"#,
    printcolumn = r#"{"name":"Namespace","type":"string","jsonPath":".spec.namespace"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ExportedServiceSpec {
    /// The service's name in the clusters that export it.
    pub name: String,
    /// The service's namespace in the clusters that export it.
    pub namespace: String,
    /// Names of the MeshClusters that export it. Left out, the service is
    /// exported from the cluster this object lives in (its globaldns'
    /// `--cluster`); in a peer cluster it may name only that cluster. May
    /// be empty when it lists endpoints.
    #[serde(default)]
    pub exported_from: Vec<String>,
    pub ports: Vec<Port>,
    /// Addresses pinned for the service's host in the pin zone (the served
    /// zone that sorts first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<std::net::IpAddr>,
    /// Workloads outside Kubernetes serving it, reached directly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<Endpoint>,
    /// MeshClusters in the order a client prefers them after its own
    /// cluster (the failover policy); `[]`: every other exporter equally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<Vec<String>>,
    /// MeshCluster name to its relative share of the calls within its
    /// failover tier (1 for a cluster left out).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub weights: BTreeMap<String, u32>,
    /// What makes a copy unhealthy; unset fields take Istio's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
}

/// The CustomResourceDefinitions, as YAML documents (`globaldns crds`, and
/// `manifests/crds.yaml`).
pub fn crds_yaml() -> Result<String, serde_saphyr::ser::Error> {
    use kube::CustomResourceExt;
    serde_saphyr::to_string_multiple(&[MeshCluster::crd(), ExportedService::crd()])
}

#[cfg(test)]
mod tests;
