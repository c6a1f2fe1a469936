//! A registry as registry resources (`globaldns export-resources`): one
//! MeshCluster per cluster and one ExportedService per service, ready for
//! `kubectl apply -f -`, which [`crate::registry::kube::resources::registry_from`] reads back
//! into the same registry.
//!
//! Object names: a MeshCluster is named after its cluster (the watch takes
//! the cluster's name from it); an ExportedService `<name>-<namespace>`, as
//! the end-to-end tests name theirs. Both are valid object names for any
//! valid registry: cluster names and namespaces are DNS-1123 labels, service
//! names DNS-1035 labels, so `<name>-<namespace>` is a DNS-1123 label or
//! subdomain of at most 127 characters. Two services can still meet on one
//! name (`a-b` in `c`, `a` in `b-c`): then each of them gets `-` and the
//! first 8 hex digits of the SHA-256 of its `<name>.<namespace>` appended,
//! the rule `render` uses for ServiceEntries, so that neither name depends
//! on which service comes first.

use std::collections::HashMap;

use kube::api::ObjectMeta;
use sha2::{Digest, Sha256};

use crate::registry::kube::resources::{
    ExportedService, ExportedServiceSpec, MeshCluster, MeshClusterSpec,
};
use crate::registry::{Registry, Service};

/// The objects that describe `registry` in `namespace`, clusters first.
pub fn resources(registry: &Registry, namespace: &str) -> (Vec<MeshCluster>, Vec<ExportedService>) {
    let meta = |name: String| ObjectMeta {
        name: Some(name),
        namespace: Some(namespace.to_string()),
        ..ObjectMeta::default()
    };
    let clusters = registry
        .clusters
        .iter()
        .map(|cluster| MeshCluster {
            metadata: meta(cluster.name.clone()),
            spec: MeshClusterSpec {
                network: cluster.network.clone(),
                locality: cluster.locality.clone(),
                gateways: cluster.gateways.clone(),
            },
        })
        .collect();
    let names = object_names(&registry.services);
    let services = registry
        .services
        .iter()
        .zip(names)
        .map(|(service, name)| ExportedService {
            metadata: meta(name),
            spec: spec(service),
        })
        .collect();
    (clusters, services)
}

/// The spec of one service, field for field.
fn spec(service: &Service) -> ExportedServiceSpec {
    ExportedServiceSpec {
        name: service.name.to_string(),
        namespace: service.namespace.to_string(),
        exported_from: service
            .exported_from
            .iter()
            .map(|c| c.to_string())
            .collect(),
        ports: service.ports.to_vec(),
        addresses: service.addresses.to_vec(),
        endpoints: service.endpoints.to_vec(),
    }
}

/// `<name>-<namespace>` for each service (lower case), with the hash suffix
/// on every name two services share.
pub fn object_names(services: &[std::sync::Arc<Service>]) -> Vec<String> {
    let plain: Vec<String> = services
        .iter()
        .map(|s| format!("{}-{}", s.name, s.namespace).to_ascii_lowercase())
        .collect();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for name in &plain {
        *count.entry(name).or_default() += 1;
    }
    plain
        .iter()
        .zip(services)
        .map(|(name, service)| {
            if count[name.as_str()] < 2 {
                return name.clone();
            }
            let key = format!("{}.{}", service.name, service.namespace).to_ascii_lowercase();
            let digest = Sha256::digest(key.as_bytes());
            let suffix: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
            format!("{name}-{suffix}")
        })
        .collect()
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
