//! The registry objects as the Kubernetes source works on them: converted
//! once, at the edge (where a watched object is decoded), from Kubernetes
//! objects into [`Declared`]: the object's name and namespace, which the
//! merge orders by and every message names it by, and its spec. The merge,
//! the assembly and validation never see a Kubernetes object, and a
//! registry remembered from before is said again as [`Declared`] objects
//! ([`declared`]), never turned back into Kubernetes objects.

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::resources::{ExportedService, ExportedServiceSpec, MeshCluster, MeshClusterSpec};
use crate::registry::failover::{Defaults, OutlierDetection};
use crate::registry::validate::validate;
use crate::registry::{Cluster, Registry, Service};

/// What one registry object declares, and which object it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Declared<S> {
    /// The object's name (`metadata.name`); for a MeshCluster, its
    /// cluster's name. Empty when the object has none.
    pub name: String,
    /// The object's namespace (`metadata.namespace`); empty when not known.
    pub namespace: String,
    pub spec: S,
}

/// A MeshCluster, converted.
pub type DeclaredCluster = Declared<MeshClusterSpec>;
/// An ExportedService, converted.
pub type DeclaredService = Declared<ExportedServiceSpec>;

impl<S> Declared<S> {
    /// `<namespace>/<name>`, each `-` when not known: how messages name the
    /// object (as `kubectl` does).
    pub fn describe(&self) -> String {
        let or_dash = |s: &str| if s.is_empty() { "-" } else { s }.to_string();
        format!("{}/{}", or_dash(&self.namespace), or_dash(&self.name))
    }
}

impl From<MeshCluster> for DeclaredCluster {
    fn from(object: MeshCluster) -> Self {
        Self {
            name: object.metadata.name.unwrap_or_default(),
            namespace: object.metadata.namespace.unwrap_or_default(),
            spec: object.spec,
        }
    }
}

impl From<ExportedService> for DeclaredService {
    fn from(object: ExportedService) -> Self {
        Self {
            name: object.metadata.name.unwrap_or_default(),
            namespace: object.metadata.namespace.unwrap_or_default(),
            spec: object.spec,
        }
    }
}

/// The objects that describe `registry` in `namespace`, clusters first: a
/// MeshCluster per cluster, named after it, and an ExportedService per
/// service, named by [`object_names`]. What `export-resources` prints, and
/// what a peer's remembered part of the last-known-good registry says.
pub fn declared(
    registry: &Registry,
    namespace: &str,
) -> (Vec<DeclaredCluster>, Vec<DeclaredService>) {
    let clusters = registry
        .clusters
        .iter()
        .map(|cluster| Declared {
            name: cluster.name.clone(),
            namespace: namespace.to_string(),
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
        .map(|(service, name)| Declared {
            name,
            namespace: namespace.to_string(),
            spec: spec(service, &registry.defaults),
        })
        .collect();
    (clusters, services)
}

/// The spec of one service, field for field. The resources have no
/// registry-wide defaults, so each field of the failover policy the
/// service leaves out takes the default's, narrowed to the service's
/// exporters (the clusters a policy may name; the others change nothing),
/// so that the resources mean what the file does.
fn spec(service: &Service, defaults: &Defaults) -> ExportedServiceSpec {
    let exports = |c: &str| service.exported_from.iter().any(|e| e == c);
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
        failover: match &service.failover {
            Some(order) => Some(order.iter().map(|c| c.to_string()).collect()),
            None => (!defaults.failover.is_empty()).then(|| {
                defaults
                    .failover
                    .iter()
                    .filter(|c| exports(c))
                    .map(|c| c.to_string())
                    .collect()
            }),
        },
        weights: match &service.weights {
            Some(weights) => weights.iter().map(|(c, w)| (c.to_string(), *w)).collect(),
            // Every exporter's weight, written out (1 for those the
            // defaults leave out): an empty map would mean no weights.
            None if defaults.weights.is_empty() => Default::default(),
            None => service
                .exported_from
                .iter()
                .map(|c| (c.to_string(), defaults.weights.get(c).copied().unwrap_or(1)))
                .collect(),
        },
        // Field by field, as the file's policy merges them.
        outlier_detection: match (
            service.outlier_detection.as_deref(),
            &defaults.outlier_detection,
        ) {
            (Some(own), Some(default)) => Some(OutlierDetection {
                consecutive_5xx_errors: own
                    .consecutive_5xx_errors
                    .or(default.consecutive_5xx_errors),
                interval: own.interval.clone().or_else(|| default.interval.clone()),
                base_ejection_time: own
                    .base_ejection_time
                    .clone()
                    .or_else(|| default.base_ejection_time.clone()),
                max_ejection_percent: own.max_ejection_percent.or(default.max_ejection_percent),
            }),
            (own, default) => own.or(default.as_ref()).cloned(),
        },
    }
}

/// `<name>-<namespace>` for each service (lower case), with `-` and the
/// first 8 hex digits of the SHA-256 of `<name>.<namespace>` appended to
/// every name two services share (`a-b` in `c`, `a` in `b-c`), the rule
/// `render` uses for ServiceEntries, so that no name depends on which
/// service comes first. Cluster names and namespaces are DNS-1123 labels
/// and service names DNS-1035 labels, so every name is a valid object name
/// of at most 127 characters.
pub fn object_names(services: &[Arc<Service>]) -> Vec<String> {
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
    clusters: &[DeclaredCluster],
    services: &[DeclaredService],
    zones: &[String],
) -> FromResources {
    let mut out = FromResources::default();
    let mut clusters: Vec<&DeclaredCluster> = clusters.iter().collect();
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    for object in clusters {
        let cluster = Cluster {
            name: object.name.clone(),
            network: object.spec.network.clone(),
            locality: object.spec.locality.clone(),
            gateways: object.spec.gateways.clone(),
        };
        let alone = Registry {
            clusters: vec![cluster.clone()],
            ..Registry::default()
        };
        match problems_of(&alone, zones) {
            None => out.registry.clusters.push(cluster),
            Some(problems) => {
                out.skipped += 1;
                out.warnings.push(format!(
                    "skipped MeshCluster {}: {problems}",
                    object.describe()
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

    let mut services: Vec<&DeclaredService> = services.iter().collect();
    services.sort_by(|a, b| a.name.cmp(&b.name));
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
                object.describe(),
                missing.join(", "),
                present.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
        let dropped: Vec<&String> = spec
            .failover
            .iter()
            .flatten()
            .chain(spec.weights.keys())
            .filter(|c| !present.contains(c))
            .collect();
        if !dropped.is_empty() && !present.is_empty() {
            let dropped: Vec<&str> = dropped.iter().map(|c| c.as_str()).collect();
            out.warnings.push(format!(
                "ExportedService {}: the failover policy names {}, which it is not served from: left out of the policy",
                object.describe(),
                dropped.join(", ")
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
            // A cluster that is gone from the exporters is gone from the
            // policy too (said below), rather than failing the service.
            failover: spec.failover.as_ref().map(|order| {
                order
                    .iter()
                    .filter(|c| present.contains(c))
                    .map(|c| c.as_str().into())
                    .collect()
            }),
            weights: (!spec.weights.is_empty()).then(|| {
                Box::new(
                    spec.weights
                        .iter()
                        .filter(|(c, _)| present.contains(c))
                        .map(|(c, w)| (c.as_str().into(), *w))
                        .collect(),
                )
            }),
            outlier_detection: spec.outlier_detection.clone().map(Box::new),
        });
        let key = (
            service.name.to_ascii_lowercase(),
            service.namespace.to_ascii_lowercase(),
        );
        if let Some(winner) = taken.get(&key) {
            out.skipped += 1;
            out.warnings.push(format!(
                "skipped ExportedService {}: {}.{} is already exported by ExportedService {winner}",
                object.describe(),
                service.name,
                service.namespace
            ));
            continue;
        }
        let with = Registry {
            clusters: out.registry.clusters.clone(),
            services: [service.clone()].into(),
            ..Registry::default()
        };
        match problems_of(&with, zones) {
            None => {
                taken.insert(key, object.describe());
                accepted.push(service);
            }
            Some(problems) => {
                out.skipped += 1;
                out.warnings.push(format!(
                    "skipped ExportedService {}: {problems}",
                    object.describe()
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

#[cfg(test)]
mod tests;
