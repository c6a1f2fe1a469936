//! One registry from what several clusters' API servers say (design §2,
//! federated registry): the local cluster and its peers each give a
//! [`View`], and [`merge`] makes of them one set of MeshCluster and
//! ExportedService objects (as [`Declared`]), which [`crate::registry::kube::declared::registry_from`] then
//! validates like any other.
//!
//! The rule, the same in every cluster, so that every globaldns arrives at
//! the same registry without talking to the others:
//!
//! 1. **A cluster speaks for itself.** The MeshCluster named after the
//!    cluster a view is (its `--cluster`, or the peer Secret's cluster)
//!    describes that cluster, and wins over any other description of it.
//!    The local view may also describe other clusters (a registry applied
//!    to one cluster, as before federation): such a description is used
//!    only for a cluster no view speaks for. A peer that describes another
//!    cluster is ignored (a peer speaks only for itself).
//! 2. **An export comes from the cluster it lives in.** An ExportedService
//!    without `exportedFrom` is exported by the cluster of its view (unless
//!    it lists `endpoints` and no cluster: a service outside Kubernetes); a
//!    peer's ExportedService naming another cluster is ignored. An MCS
//!    `ServiceExport` of a Service is an export of that Service, with its
//!    ports, from its cluster. The local view's `exportedFrom` lists are
//!    taken as they are.
//! 3. **One definition per service.** The definitions of one service (its
//!    ports, pinned addresses, endpoints) from the clusters exporting it are
//!    compared; the definition a cluster gives of its own export wins over
//!    what another view says of it, and among those, the cluster whose name
//!    sorts first wins. A cluster whose ports differ from the winner's is
//!    left out of the exporters (it would be sent traffic for ports it does
//!    not have) and the conflict is reported; differing pins or endpoints
//!    are reported and the winner's are served.
//! 4. Within one view, two objects for one service: the one whose object
//!    name sorts first wins (as without federation).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::declared::{Declared, DeclaredCluster, DeclaredService};
use super::resources::ExportedServiceSpec;
use crate::registry::Port;

/// What one cluster's API server says.
#[derive(Clone, Debug, Default)]
pub struct View {
    /// The cluster this view is. Empty when the local cluster has no name
    /// (`--cluster` not given): nothing is then exported by default.
    pub cluster: String,
    /// The local cluster's view (which may describe other clusters).
    pub local: bool,
    pub clusters: Vec<DeclaredCluster>,
    /// Shared with whoever decoded them (the watch's memo of decoded
    /// objects), so that making a view copies no object.
    pub services: Vec<Arc<DeclaredService>>,
    /// MCS exports: Services exported with a `ServiceExport`.
    pub exports: Vec<McsExport>,
}

/// A Service exported with an MCS `ServiceExport`, and its ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McsExport {
    pub name: String,
    pub namespace: String,
    pub ports: Vec<Port>,
}

/// The merged objects, and what the merge had to decide.
#[derive(Debug, Default)]
pub struct Merged {
    pub clusters: Vec<DeclaredCluster>,
    pub services: Vec<DeclaredService>,
    /// Two views disagreeing, each with the winner named.
    pub conflicts: Vec<String>,
    /// Objects left out (a peer speaking for another cluster, a duplicate).
    pub ignored: Vec<String>,
}

/// One view's word on one service from one cluster: the object as the
/// view holds it (copied only if it wins), or made from an MCS export.
#[derive(Debug)]
struct Claim<'a> {
    cluster: String,
    /// The cluster said it of itself.
    own: bool,
    /// The object's name and namespace (for the messages of validation).
    name: &'a str,
    namespace: &'a str,
    spec: Cow<'a, ExportedServiceSpec>,
}

/// Merges `views` by the rule of the module documentation.
pub fn merge(views: &[View]) -> Merged {
    let mut out = Merged::default();
    let mut views: Vec<&View> = views.iter().collect();
    views.sort_by(|a, b| (!a.local, &a.cluster).cmp(&(!b.local, &b.cluster)));
    out.clusters = merge_clusters(&views, &mut out.conflicts, &mut out.ignored);
    let mut claims: BTreeMap<(String, String), Vec<Claim>> = BTreeMap::new();
    for view in &views {
        for (key, claim) in claims_of(view, &mut out.ignored) {
            claims.entry(key).or_default().push(claim);
        }
    }
    for ((namespace, name), claims) in claims {
        if let Some(object) = settle(&namespace, &name, claims, &mut out.conflicts) {
            out.services.push(object);
        }
    }
    out
}

fn merge_clusters(
    views: &[&View],
    conflicts: &mut Vec<String>,
    ignored: &mut Vec<String>,
) -> Vec<DeclaredCluster> {
    // name → (description, who said it, whether it said it of itself)
    let mut chosen: BTreeMap<String, (DeclaredCluster, String, bool)> = BTreeMap::new();
    for view in views {
        let mut objects: Vec<&DeclaredCluster> = view.clusters.iter().collect();
        objects.sort_by(|a, b| a.name.cmp(&b.name));
        for object in objects {
            let name = object.name.clone();
            let own = !view.cluster.is_empty() && name == view.cluster;
            if !own && !view.local {
                ignored.push(format!(
                    "MeshCluster {name} in peer {}: a peer describes only itself",
                    view.cluster
                ));
                continue;
            }
            match chosen.get(&name) {
                None => {
                    chosen.insert(name, (object.clone(), view.cluster.clone(), own));
                }
                Some((_, by, true)) if own => conflicts.push(format!(
                    "cluster {name} is described by itself in {by} and in {}: {by}'s description is served",
                    view.cluster
                )),
                Some((theirs, by, false)) if own => {
                    if theirs.spec != object.spec {
                        conflicts.push(format!(
                            "cluster {name} is described differently in {by}: its own description is served"
                        ));
                    }
                    chosen.insert(name, (object.clone(), view.cluster.clone(), true));
                }
                Some(_) => {}
            }
        }
    }
    chosen.into_values().map(|(object, _, _)| object).collect()
}

/// Each (namespace, name) a view exports, with the view's definition.
fn claims_of<'a>(view: &'a View, ignored: &mut Vec<String>) -> Vec<((String, String), Claim<'a>)> {
    let mut out = Vec::new();
    let mut seen: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut objects: Vec<&DeclaredService> = view.services.iter().map(|s| &**s).collect();
    objects.sort_by(|a, b| a.name.cmp(&b.name));
    for object in objects {
        let spec = &object.spec;
        let key = (
            spec.namespace.to_ascii_lowercase(),
            spec.name.to_ascii_lowercase(),
        );
        let object_name = object.name.clone();
        if let Some(first) = seen.get(&key) {
            ignored.push(format!(
                "ExportedService {object_name} in {}: {}.{} is already exported by {first}",
                describe(view),
                spec.name,
                spec.namespace
            ));
            continue;
        }
        seen.insert(key.clone(), object_name.clone());
        let exporters: Vec<String> = if spec.exported_from.is_empty()
            && !view.cluster.is_empty()
            && spec.endpoints.is_empty()
        {
            vec![view.cluster.clone()]
        } else {
            spec.exported_from.clone()
        };
        if !view.local && exporters.iter().any(|c| *c != view.cluster) {
            ignored.push(format!(
                "ExportedService {object_name} in peer {}: it names other clusters in exportedFrom; a peer exports only its own services",
                view.cluster
            ));
            continue;
        }
        if exporters.is_empty() {
            // A service outside Kubernetes only (or invalid: validation
            // says which).
            out.push((
                key,
                Claim {
                    cluster: String::new(),
                    own: view.local,
                    name: &object.name,
                    namespace: &object.namespace,
                    spec: Cow::Borrowed(spec),
                },
            ));
            continue;
        }
        for cluster in exporters {
            out.push((
                key.clone(),
                Claim {
                    own: cluster == view.cluster,
                    cluster,
                    name: &object.name,
                    namespace: &object.namespace,
                    spec: Cow::Borrowed(spec),
                },
            ));
        }
    }
    for export in &view.exports {
        let key = (
            export.namespace.to_ascii_lowercase(),
            export.name.to_ascii_lowercase(),
        );
        if seen.contains_key(&key) {
            // An ExportedService says more (pins, endpoints): it wins.
            continue;
        }
        out.push((
            key,
            Claim {
                cluster: view.cluster.clone(),
                own: true,
                // Named as the ServiceExport is.
                name: &export.name,
                namespace: &export.namespace,
                spec: Cow::Owned(ExportedServiceSpec {
                    name: export.name.clone(),
                    namespace: export.namespace.clone(),
                    exported_from: vec![view.cluster.clone()],
                    ports: export.ports.clone(),
                    ..ExportedServiceSpec::default()
                }),
            },
        ));
    }
    out
}

/// One service's definition and exporters from its claims.
fn settle(
    namespace: &str,
    name: &str,
    mut claims: Vec<Claim>,
    conflicts: &mut Vec<String>,
) -> Option<DeclaredService> {
    // A cluster's word on its own export first, then by cluster name.
    claims.sort_by(|a, b| (!a.own, &a.cluster).cmp(&(!b.own, &b.cluster)));
    let winner = claims.first()?;
    let mut exporters = BTreeSet::new();
    let mut said: BTreeSet<String> = BTreeSet::new();
    for claim in &claims {
        if claim.cluster.is_empty() || !said.insert(claim.cluster.clone()) {
            continue; // a cluster's own word came first; hearsay after it adds nothing
        }
        if claim.spec.ports != winner.spec.ports {
            conflicts.push(format!(
                "service {name}.{namespace}: {} defines other ports than {}: {}'s definition is served and {} is not routed to",
                claim.cluster, winner.cluster, winner.cluster, claim.cluster
            ));
            continue;
        }
        if claim.spec.addresses != winner.spec.addresses
            || claim.spec.endpoints != winner.spec.endpoints
        {
            conflicts.push(format!(
                "service {name}.{namespace}: {} pins other addresses or endpoints than {}: {}'s are served",
                claim.cluster, winner.cluster, winner.cluster
            ));
        }
        exporters.insert(claim.cluster.clone());
    }
    let winner = claims.swap_remove(0);
    let mut spec = winner.spec.into_owned();
    spec.exported_from = exporters.into_iter().collect();
    Some(Declared {
        name: winner.name.to_string(),
        namespace: winner.namespace.to_string(),
        spec,
    })
}

fn describe(view: &View) -> String {
    if view.local {
        "the local cluster".to_string()
    } else {
        format!("peer {}", view.cluster)
    }
}

#[cfg(test)]
pub(crate) mod tests;
