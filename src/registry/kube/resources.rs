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

use crate::registry::validate::validate;
use crate::registry::{Cluster, Endpoint, Gateway, Port, Registry, Service};

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
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
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
}

/// The registry some registry objects describe, and what was left out.
#[derive(Debug, Default)]
pub struct FromResources {
    pub registry: Registry,
    /// One line per object left out (naming the object and the problem)
    /// and per export from a cluster that is not there.
    pub warnings: Vec<String>,
    /// Objects left out because they are invalid.
    pub skipped: usize,
    /// `exportedFrom` entries naming a MeshCluster that does not exist (or
    /// was left out): the service is served from its other clusters.
    pub dangling_exports: usize,
}

/// The registry the objects describe. A bad object never keeps the good
/// ones from being served:
///
/// - an invalid object is left out alone, with a warning naming it and the
///   field;
/// - a service exported from several clusters keeps serving from the ones
///   that exist when one of them is deleted or invalid (a warning per
///   missing cluster); only when none is left is it left out. (In a file,
///   where the registry is one document, an unknown cluster refuses the
///   whole version instead.)
/// - two ExportedServices for the same service: the one whose object name
///   sorts first wins, and the other is reported.
pub fn registry_from(
    clusters: &[MeshCluster],
    services: &[ExportedService],
    zones: &[String],
) -> FromResources {
    let mut out = FromResources::default();
    let mut clusters: Vec<&MeshCluster> = clusters.iter().collect();
    clusters.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for object in clusters {
        let cluster = Cluster {
            name: object.metadata.name.clone().unwrap_or_default(),
            network: object.spec.network.clone(),
            locality: object.spec.locality.clone(),
            gateways: object.spec.gateways.clone(),
        };
        let alone = Registry {
            clusters: vec![cluster.clone()],
            services: Default::default(),
        };
        match problems_of(&alone, zones) {
            None => out.registry.clusters.push(cluster),
            Some(problems) => {
                out.skipped += 1;
                out.warnings.push(format!(
                    "skipped MeshCluster {}: {problems}",
                    describe(object)
                ))
            }
        }
    }
    let known: std::collections::HashSet<String> = out
        .registry
        .clusters
        .iter()
        .map(|c| c.name.clone())
        .collect();

    let mut services: Vec<&ExportedService> = services.iter().collect();
    services.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut taken = std::collections::HashMap::new();
    let mut accepted = Vec::with_capacity(services.len());
    for object in services {
        let spec = &object.spec;
        let (present, missing): (Vec<&String>, Vec<&String>) = spec
            .exported_from
            .iter()
            .partition(|c| known.contains(c.as_str()));
        out.dangling_exports += missing.len();
        if !missing.is_empty() && !present.is_empty() {
            let missing: Vec<&str> = missing.iter().map(|c| c.as_str()).collect();
            out.warnings.push(format!(
                "ExportedService {}: spec.exportedFrom names MeshCluster(s) {} that do not exist or were skipped: served from {}",
                describe(object),
                missing.join(", "),
                present.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
        let service = std::sync::Arc::new(Service {
            name: spec.name.as_str().into(),
            namespace: spec.namespace.as_str().into(),
            // An empty list after the filter is left for validation to
            // report (no cluster of it exists).
            exported_from: if present.is_empty() {
                spec.exported_from
                    .iter()
                    .map(|c| c.as_str().into())
                    .collect()
            } else {
                present.iter().map(|c| c.as_str().into()).collect()
            },
            ports: spec.ports.iter().cloned().collect(),
            addresses: spec.addresses.iter().copied().collect(),
            endpoints: spec.endpoints.iter().cloned().collect(),
        });
        let key = (
            service.name.to_ascii_lowercase(),
            service.namespace.to_ascii_lowercase(),
        );
        if let Some(winner) = taken.get(&key) {
            out.skipped += 1;
            out.warnings.push(format!(
                "skipped ExportedService {}: {}.{} is already exported by ExportedService {winner}",
                describe(object),
                service.name,
                service.namespace
            ));
            continue;
        }
        let with = Registry {
            clusters: out.registry.clusters.clone(),
            services: [service.clone()].into(),
        };
        match problems_of(&with, zones) {
            None => {
                taken.insert(key, describe(object));
                accepted.push(service);
            }
            Some(problems) => {
                out.skipped += 1;
                out.warnings.push(format!(
                    "skipped ExportedService {}: {problems}",
                    describe(object)
                ))
            }
        }
    }
    out.registry.services = accepted.into();
    out.registry.shrink_to_fit();
    out
}

fn problems_of(registry: &Registry, zones: &[String]) -> Option<String> {
    let problems = validate(registry, zones);
    if problems.is_empty() {
        return None;
    }
    let text: Vec<String> = problems
        .iter()
        .map(|p| {
            // Paths inside a one-object registry: drop the list index.
            let path = p
                .path
                .split_once('.')
                .map_or(String::new(), |(_, rest)| format!("spec.{rest}: "));
            format!("{path}{}", p.message)
        })
        .collect();
    Some(text.join("; "))
}

fn describe<K: kube::Resource>(object: &K) -> String {
    let meta = object.meta();
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or("-"),
        meta.name.as_deref().unwrap_or("-")
    )
}

/// The CustomResourceDefinitions, as YAML documents (`globaldns crds`, and
/// `manifests/crds.yaml`).
pub fn crds_yaml() -> Result<String, serde_saphyr::ser::Error> {
    use kube::CustomResourceExt;
    serde_saphyr::to_string_multiple(&[MeshCluster::crd(), ExportedService::crd()])
}

#[cfg(test)]
mod tests;
