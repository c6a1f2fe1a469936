//! Keeping the cluster's Istio objects (its ServiceEntries, its Gateway,
//! the DestinationRules: everything [`crate::mesh::render`] gives) in step
//! with the rendered ones (design §5): server-side apply with one field
//! manager, deletion of the owned ones no longer wanted, and nothing else
//! touched. The one writer of every kind.
//!
//! One pass: list each kind in the namespace, [`plan`] (pure), then apply
//! and delete. Ownership is the `app.kubernetes.io/managed-by: globaldns`
//! label: an object without it is never applied over, even when it has the
//! name globaldns would use (that is reported as a conflict), and never
//! deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::core::GroupVersionKind;

use super::drift::{Observed, drifted};
use super::{GROUP, IstioApiVersion, Kind, MANAGED_BY, MANAGED_BY_LABEL, Object};

/// The field manager of every apply.
pub const FIELD_MANAGER: &str = "globaldns";

/// An object by kind and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ref {
    pub kind: Kind,
    pub name: String,
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.name(), self.name)
    }
}

/// What one pass will do.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Objects to apply: new, or drifted from what the cluster holds.
    pub apply: Vec<Object>,
    /// Owned objects no longer wanted.
    pub delete: Vec<Ref>,
    /// Deletions held back by the brake.
    pub held_back: Vec<Ref>,
    /// Wanted names taken by objects globaldns does not own.
    pub conflicts: Vec<Ref>,
}

/// An object as listed: its kind and name, whether globaldns owns it (the
/// label), and what drift is judged on.
#[derive(Debug, Clone)]
pub struct Existing {
    pub kind: Kind,
    pub name: String,
    pub owned: bool,
    pub observed: Observed,
}

impl Existing {
    /// From a listed object of `kind`.
    pub fn from_object(kind: Kind, object: &DynamicObject) -> Self {
        Existing {
            kind,
            name: object.metadata.name.clone().unwrap_or_default(),
            owned: owned(object),
            observed: Observed::of(object, FIELD_MANAGER),
        }
    }
}

/// Whether a listed object carries the ownership label
/// (`app.kubernetes.io/managed-by: globaldns`).
pub fn owned(object: &DynamicObject) -> bool {
    object
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .is_some_and(|v| v == MANAGED_BY)
}

/// Decides a pass: an object is applied when it is new or has drifted on
/// the fields globaldns owns ([`drifted`]). `brake` is the largest share
/// of the owned ServiceEntries one pass may delete (0.5 = half); a pass
/// that would delete more deletes nothing, of any kind, and says so: a
/// registry cut short by mistake must not take the mesh's objects with it.
pub fn plan(desired: &[Object], existing: &[Existing], brake: f64) -> Plan {
    let existing: BTreeMap<(Kind, &str), &Existing> = existing
        .iter()
        .map(|e| ((e.kind, e.name.as_str()), e))
        .collect();
    let mut plan = Plan::default();
    let mut wanted = BTreeSet::new();
    for object in desired {
        let key = (object.kind(), object.name());
        wanted.insert(key);
        let value = object.to_value();
        match existing.get(&key) {
            Some(e) if !e.owned => plan.conflicts.push(Ref {
                kind: key.0,
                name: key.1.to_string(),
            }),
            Some(e) if !drifted(&value["spec"], &value["metadata"]["labels"], &e.observed) => {}
            _ => plan.apply.push(object.clone()),
        }
    }
    let owned: Vec<&(Kind, &str)> = existing
        .iter()
        .filter(|(_, e)| e.owned)
        .map(|(key, _)| key)
        .collect();
    let unwanted: Vec<Ref> = owned
        .iter()
        .filter(|key| !wanted.contains(**key))
        .map(|(kind, name)| Ref {
            kind: *kind,
            name: name.to_string(),
        })
        .collect();
    // The brake weighs the ServiceEntries, one per host: what a truncated
    // registry would take away. The Gateway and the zones' rules are one
    // per cluster or zone; counting them would hold back the ordinary end
    // of a small cluster's last export (its ServiceEntry and its Gateway).
    // A service's failover rule goes with its ServiceEntry: held back with
    // it, whatever the kind.
    let entries = |refs: &mut dyn Iterator<Item = Kind>| {
        refs.filter(|kind| *kind == Kind::ServiceEntry).count()
    };
    let owned_entries = entries(&mut owned.iter().map(|(kind, _)| *kind));
    let unwanted_entries = entries(&mut unwanted.iter().map(|r| r.kind));
    if unwanted_entries > 0 && unwanted_entries as f64 > brake * owned_entries as f64 {
        plan.held_back = unwanted;
    } else {
        plan.delete = unwanted;
    }
    plan
}

/// What a pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub applied: usize,
    pub deleted: usize,
    pub held_back: usize,
    pub conflicts: usize,
    /// Writes that failed, each with its reason.
    pub failures: Vec<Failure>,
    /// The pass stopped early: the Lease was lost before a write.
    pub lease_lost: bool,
    /// Writes the API server asked to wait for (429) before they went
    /// through or failed.
    pub throttled: usize,
    /// Writes not made because the object's namespace does not exist in
    /// this cluster: a ServiceImport goes only where its namespace is (the
    /// MCS API's "namespace sameness"); a later pass makes it.
    pub skipped: usize,
}

/// The API resource of `kind` in `networking.istio.io/<version>`.
pub fn resource(kind: Kind, version: IstioApiVersion) -> ApiResource {
    let gvk = GroupVersionKind::gvk(GROUP, version.version(), kind.name());
    ApiResource::from_gvk_with_plural(&gvk, kind.plural())
}

/// Istio's ServiceEntry in `networking.istio.io/<version>`.
pub fn service_entries_resource(version: IstioApiVersion) -> ApiResource {
    resource(Kind::ServiceEntry, version)
}

/// The API of ServiceEntries in `namespace`, in `version`.
pub fn service_entries(
    client: kube::Client,
    namespace: &str,
    version: IstioApiVersion,
) -> Api<DynamicObject> {
    Api::namespaced_with(client, namespace, &service_entries_resource(version))
}

/// One pass against the cluster, in `namespace`, every kind read and
/// written in `version` (the objects of `desired` must say it too). Listing failing fails the
/// pass (nothing is written blind); a failed apply or delete is reported
/// with its reason, and the others go on (the caller logs, counts and
/// retries). Writes go out `limits.concurrency` at a time, at most
/// `limits.qps` a second, and wait as asked on a 429 (see [`write`]).
/// `holds` is asked before every write: once it says no (the Lease is
/// lost), the pass starts no more writes and reports `lease_lost`.
pub async fn sync_once(
    client: &kube::Client,
    namespace: &str,
    version: IstioApiVersion,
    desired: &[Object],
    brake: f64,
    limits: &Limits,
    holds: &(dyn Fn() -> bool + Sync),
) -> Result<Report, kube::Error> {
    let api = |kind: Kind| -> Api<DynamicObject> {
        Api::namespaced_with(client.clone(), namespace, &resource(kind, version))
    };
    let mut existing = Vec::new();
    for kind in Kind::ALL {
        let listed = api(kind).list(&ListParams::default()).await?;
        existing.extend(listed.items.iter().map(|o| Existing::from_object(kind, o)));
    }
    let plan = plan(desired, &existing, brake);
    let mut report = Report {
        held_back: plan.held_back.len(),
        conflicts: plan.conflicts.len(),
        ..Report::default()
    };
    for object in &plan.conflicts {
        tracing::warn!(
            "{object} exists and is not managed by globaldns: left as it is, not applied"
        );
    }
    if !plan.held_back.is_empty() {
        let names: Vec<String> = plan.held_back.iter().map(ToString::to_string).collect();
        tracing::error!(
            held_back = plan.held_back.len(),
            "deletion brake: this pass would delete more than {:.0}% of the owned objects; none deleted ({})",
            brake * 100.0,
            names.join(", ")
        );
    }
    let writer = Writer::new(client, namespace, version, limits);
    writer.apply_all(&plan.apply, holds, &mut report).await;
    if !report.lease_lost {
        writer.delete_all(&plan.delete, holds, &mut report).await;
    }
    Ok(report)
}

mod failure;
mod probing;
mod run;
pub mod write;
pub use failure::{Failure, Reason};
pub use run::{LEASE_DURATION, SyncConfig, run};
pub use write::Limits;
use write::Writer;

#[cfg(test)]
mod tests;
