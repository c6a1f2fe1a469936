//! A registry as registry resources (`globaldns export-resources`): one
//! MeshCluster per cluster and one ExportedService per service, ready for
//! `kubectl apply -f -`, which [`crate::registry::kube::declared::registry_from`] reads back
//! into the same registry.
//!
//! Object names: a MeshCluster is named after its cluster (the watch takes
//! the cluster's name from it); an ExportedService `<name>-<namespace>`, as
//! the end-to-end tests name theirs, made unique by
//! [`crate::registry::kube::declared::object_names`].

use kube::api::ObjectMeta;

use crate::registry::Registry;
use crate::registry::kube::declared::{Declared, declared};
use crate::registry::kube::resources::{ExportedService, MeshCluster};

/// The objects that describe `registry` in `namespace`, clusters first
/// (as [`declared`] names them), as Kubernetes objects.
pub fn resources(registry: &Registry, namespace: &str) -> (Vec<MeshCluster>, Vec<ExportedService>) {
    fn meta<S>(object: &Declared<S>) -> ObjectMeta {
        ObjectMeta {
            name: Some(object.name.clone()),
            namespace: Some(object.namespace.clone()),
            ..ObjectMeta::default()
        }
    }
    let (clusters, services) = declared(registry, namespace);
    let clusters = clusters
        .into_iter()
        .map(|cluster| MeshCluster {
            metadata: meta(&cluster),
            spec: cluster.spec,
        })
        .collect();
    let services = services
        .into_iter()
        .map(|service| ExportedService {
            metadata: meta(&service),
            spec: service.spec,
        })
        .collect();
    (clusters, services)
}

/// The objects as YAML documents, after a comment saying what they are.
pub fn yaml(registry: &Registry, namespace: &str) -> Result<String, serde_saphyr::ser::Error> {
    let (clusters, services) = resources(registry, namespace);
    let mut out = String::from(
        "# Registry resources (globaldns.io/v1alpha1), printed by `globaldns export-resources`:\n\
         # apply with `kubectl apply -f -`; the CRDs (manifests/crds.yaml) must be installed.\n",
    );
    if !clusters.is_empty() {
        out.push_str(&serde_saphyr::to_string_multiple(&clusters)?);
    }
    if !services.is_empty() {
        if !clusters.is_empty() {
            out.push_str("---\n");
        }
        out.push_str(&serde_saphyr::to_string_multiple(&services)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
