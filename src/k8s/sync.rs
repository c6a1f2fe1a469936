//! Keeping the cluster's ServiceEntries in step with the rendered ones
//! (DESIGN §5): server-side apply with one field manager, deletion of the
//! owned ones no longer wanted, and nothing else touched.
//!
//! One pass: list the ServiceEntries of the namespace, [`plan`] (pure),
//! then apply and delete. Ownership is the `app.kubernetes.io/managed-by:
//! globaldns` label: an object without it is never applied over, even when
//! it has the name globaldns would use (that is reported as a conflict),
//! and never deleted.

use std::collections::BTreeMap;

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde_json::Value;

use super::drift::{Observed, drifted, managed_by};
use crate::istio::{MANAGED_BY, MANAGED_BY_LABEL, ServiceEntry};

/// The field manager of every apply.
pub const FIELD_MANAGER: &str = "globaldns";

/// What one pass will do.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Objects to apply: new, or different from what the cluster holds.
    pub apply: Vec<ServiceEntry>,
    /// Owned objects no longer wanted.
    pub delete: Vec<String>,
    /// Deletions held back by the brake.
    pub held_back: Vec<String>,
    /// Wanted names taken by objects globaldns does not own.
    pub conflicts: Vec<String>,
}

/// An object as listed: its name, whether globaldns owns it (the label),
/// and what drift is judged on.
#[derive(Debug, Clone)]
pub struct Existing {
    pub name: String,
    pub owned: bool,
    pub observed: Observed,
}

impl Existing {
    /// From a listed object.
    pub fn from_object(object: &DynamicObject) -> Self {
        let metadata = serde_json::to_value(&object.metadata).unwrap_or(Value::Null);
        Existing {
            name: object.metadata.name.clone().unwrap_or_default(),
            owned: object
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(MANAGED_BY_LABEL))
                .is_some_and(|v| v == MANAGED_BY),
            observed: Observed {
                spec: object.data.get("spec").cloned().unwrap_or(Value::Null),
                labels: metadata.get("labels").cloned().unwrap_or(Value::Null),
                managed: managed_by(&metadata, FIELD_MANAGER),
            },
        }
    }
}

fn spec_of(entry: &ServiceEntry) -> Value {
    serde_json::to_value(&entry.spec).expect("a ServiceEntry spec serialises")
}

fn labels_of(entry: &ServiceEntry) -> Value {
    serde_json::to_value(&entry.metadata.labels).expect("labels serialise")
}

/// Decides a pass: an object is applied when it is new or has drifted on
/// the fields globaldns owns ([`drifted`]). `brake` is the largest share of the owned objects one
/// pass may delete (0.5 = half); a pass that would delete more deletes
/// nothing and says so: a registry cut short by mistake must not take the
/// mesh's ServiceEntries with it.
pub fn plan(desired: &[ServiceEntry], existing: &[Existing], brake: f64) -> Plan {
    let existing: BTreeMap<&str, &Existing> =
        existing.iter().map(|e| (e.name.as_str(), e)).collect();
    let mut plan = Plan::default();
    let mut wanted = std::collections::BTreeSet::new();
    for entry in desired {
        let name = entry.metadata.name.as_str();
        wanted.insert(name);
        match existing.get(name) {
            Some(e) if !e.owned => plan.conflicts.push(name.to_string()),
            Some(e) if !drifted(&spec_of(entry), &labels_of(entry), &e.observed) => {}
            _ => plan.apply.push(entry.clone()),
        }
    }
    let owned: Vec<&str> = existing
        .values()
        .filter(|e| e.owned)
        .map(|e| e.name.as_str())
        .collect();
    let unwanted: Vec<String> = owned
        .iter()
        .filter(|name| !wanted.contains(*name))
        .map(|name| name.to_string())
        .collect();
    if !unwanted.is_empty() && unwanted.len() as f64 > brake * owned.len() as f64 {
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
}

/// Istio's ServiceEntry, `networking.istio.io/v1`.
pub fn service_entries_resource() -> ApiResource {
    let gvk = GroupVersionKind::gvk("networking.istio.io", "v1", "ServiceEntry");
    ApiResource::from_gvk_with_plural(&gvk, "serviceentries")
}

/// The API of ServiceEntries in `namespace`.
pub fn service_entries(client: kube::Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client, namespace, &service_entries_resource())
}

/// One pass against the cluster. Listing failing fails the pass (nothing is
/// written blind); a failed apply or delete is reported with its reason,
/// and the others go on (the caller logs, counts and retries). `holds` is asked before every write: once it says no (the
/// Lease is lost), the pass writes nothing more and reports `lease_lost`.
pub async fn sync_once(
    api: &Api<DynamicObject>,
    desired: &[ServiceEntry],
    brake: f64,
    holds: &(dyn Fn() -> bool + Sync),
) -> Result<Report, kube::Error> {
    let listed = api.list(&ListParams::default()).await?;
    let existing: Vec<Existing> = listed.items.iter().map(Existing::from_object).collect();
    let plan = plan(desired, &existing, brake);
    let mut report = Report {
        held_back: plan.held_back.len(),
        conflicts: plan.conflicts.len(),
        ..Report::default()
    };
    for name in &plan.conflicts {
        tracing::warn!(
            "ServiceEntry {name} exists and is not managed by globaldns: left as it is, not applied"
        );
    }
    if !plan.held_back.is_empty() {
        tracing::error!(
            held_back = plan.held_back.len(),
            "deletion brake: this pass would delete more than {:.0}% of the owned ServiceEntries; none deleted ({})",
            brake * 100.0,
            plan.held_back.join(", ")
        );
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for entry in &plan.apply {
        if !holds() {
            report.lease_lost = true;
            return Ok(report);
        }
        let name = &entry.metadata.name;
        let body = serde_json::to_value(entry).expect("a ServiceEntry serialises");
        match api.patch(name, &params, &Patch::Apply(&body)).await {
            Ok(_) => report.applied += 1,
            Err(e) => report.failures.push(Failure::new("apply", name, &e)),
        }
    }
    for name in &plan.delete {
        if !holds() {
            report.lease_lost = true;
            return Ok(report);
        }
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => report.deleted += 1,
            Err(kube::Error::Api(status)) if status.code == 404 => report.deleted += 1,
            Err(e) => report.failures.push(Failure::new("delete", name, &e)),
        }
    }
    Ok(report)
}

mod failure;
mod run;
pub use failure::{Failure, Reason};
pub use run::{LEASE_DURATION, SyncConfig, run};

#[cfg(test)]
mod tests;
