//! Keeping the cluster's ServiceImports in step with [`super::service_imports`]:
//! the same rules as the Istio objects' sync ([`crate::mesh::sync`]), over
//! every namespace.
//!
//! - Ownership is the `app.kubernetes.io/managed-by: globaldns` label. A
//!   ServiceImport without it (another MCS implementation's) is never
//!   written over or deleted; its name is reported as a conflict.
//! - The spec is server-side applied to the object, the status
//!   (`clusters`) to its `status` subresource, each only when it drifted
//!   on the fields globaldns owns ([`crate::mesh::drift`]).
//! - Owned ServiceImports no longer wanted are deleted, unless that would
//!   take more than the brake's share of the owned ones in one pass: then
//!   none is, and the pass says so.
//! - A namespace that does not exist in this cluster gets no ServiceImport
//!   (a 404 on the apply): counted as skipped, made by a later pass once
//!   the namespace is there.
//!
//! Which version: the newest of [`super::MCS_VERSIONS`] the API server
//! serves ([`version`]); none served (no MCS CRDs) means no pass.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use futures::StreamExt;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde_json::Value;

use super::ServiceImport;
use super::service_import::KIND;
use crate::mesh::drift::{Observed, differs, managed_in};
use crate::mesh::sync::write::{Outcome, Pacer, patiently, tally};
use crate::mesh::sync::{FIELD_MANAGER, Failure, Limits, Report, owned};

/// A ServiceImport by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ImportRef {
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for ImportRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{KIND} {}/{}", self.namespace, self.name)
    }
}

/// A ServiceImport as listed: whose it is, and what drift is judged on.
#[derive(Clone, Debug)]
pub struct Existing {
    pub at: ImportRef,
    pub owned: bool,
    /// The spec and labels, with globaldns's entry for the object.
    pub observed: Observed,
    /// The status, with globaldns's entry for `/status`.
    pub status: Value,
    pub status_managed: Option<Value>,
}

impl Existing {
    /// From a listed object.
    pub fn from_object(object: &DynamicObject) -> Self {
        let metadata = serde_json::to_value(&object.metadata).unwrap_or(Value::Null);
        Existing {
            at: ImportRef {
                namespace: object.metadata.namespace.clone().unwrap_or_default(),
                name: object.metadata.name.clone().unwrap_or_default(),
            },
            owned: owned(object),
            observed: Observed::of(object, FIELD_MANAGER),
            status: object.data.get("status").cloned().unwrap_or(Value::Null),
            status_managed: managed_in(&metadata, FIELD_MANAGER, Some("status")),
        }
    }
}

/// One ServiceImport's writes: its spec, its status, or both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    pub import: ServiceImport,
    pub spec: bool,
    pub status: bool,
}

/// What one pass will do.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub write: Vec<Write>,
    pub delete: Vec<ImportRef>,
    pub held_back: Vec<ImportRef>,
    pub conflicts: Vec<ImportRef>,
}

/// Decides a pass (pure): see the module's text. `brake` is the largest
/// share of the owned ServiceImports one pass may delete (0.5 = half).
pub fn plan(desired: &[ServiceImport], existing: &[Existing], brake: f64) -> Plan {
    let by_ref: BTreeMap<&ImportRef, &Existing> = existing.iter().map(|e| (&e.at, e)).collect();
    let mut plan = Plan::default();
    let mut wanted = BTreeSet::new();
    for import in desired {
        let at = ImportRef {
            namespace: import.metadata.namespace.clone(),
            name: import.metadata.name.clone(),
        };
        let (spec, status) = match by_ref.get(&at) {
            Some(e) if !e.owned => {
                plan.conflicts.push(at.clone());
                wanted.insert(at);
                continue;
            }
            Some(e) => {
                let value = import.spec_value();
                let status = serde_json::to_value(&import.status).expect("a status serialises");
                (
                    spec_drifted(&value, &e.observed),
                    differs(&status, &e.status) || e.status_managed.is_none(),
                )
            }
            None => (true, true),
        };
        if spec || status {
            plan.write.push(Write {
                import: import.clone(),
                spec,
                status,
            });
        }
        wanted.insert(at);
    }
    let owned = existing.iter().filter(|e| e.owned).count();
    let unwanted: Vec<ImportRef> = existing
        .iter()
        .filter(|e| e.owned && !wanted.contains(&e.at))
        .map(|e| e.at.clone())
        .collect();
    if !unwanted.is_empty() && unwanted.len() as f64 > brake * owned as f64 {
        plan.held_back = unwanted;
    } else {
        plan.delete = unwanted;
    }
    plan
}

/// Whether the spec or labels of `value` (an import as applied) differ from
/// `observed` on what globaldns sets. Unlike the Istio kinds' ports, a
/// ServiceImport's `ports` and `ips` are atomic lists (the CRD's
/// `x-kubernetes-list-type: atomic`): each field is compared whole, and
/// the set of fields globaldns owns must be the set it sets now (`ips`
/// dropped while the pool is full is applied away).
fn spec_drifted(value: &Value, observed: &Observed) -> bool {
    let (spec, labels) = (&value["spec"], &value["metadata"]["labels"]);
    let Some(managed) = &observed.managed else {
        return true;
    };
    let want = spec.as_object().into_iter().flatten();
    if want
        .clone()
        .any(|(key, v)| observed.spec.get(key) != Some(v))
        || differs(labels, &observed.labels)
    {
        return true;
    }
    let owned: BTreeSet<&str> = managed
        .get("f:spec")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(key, _)| key.strip_prefix("f:"))
        .collect();
    owned != want.map(|(key, _)| key.as_str()).collect()
}

/// The newest version of the MCS API the API server serves, of those
/// globaldns writes ([`super::MCS_VERSIONS`]); `None` when it serves none
/// (the MCS CRDs are not installed). Fails when discovery does.
pub async fn version(client: &kube::Client) -> Result<Option<&'static str>, kube::Error> {
    let served = crate::discovery::served_versions(client, super::GROUP).await?;
    Ok(crate::discovery::newest(
        &super::MCS_VERSIONS,
        &served,
        |v| v,
    ))
}

/// The API resource of ServiceImports in `multicluster.x-k8s.io/<version>`.
pub fn resource(version: &str) -> ApiResource {
    let gvk = GroupVersionKind::gvk(super::GROUP, version, KIND);
    ApiResource::from_gvk_with_plural(&gvk, "serviceimports")
}

/// One pass against the cluster in `version` (the imports of `desired`
/// must say it too): list every ServiceImport, [`plan`], then write and
/// delete, `limits.concurrency` at a time, paced, 429s waited out.
/// Listing failing fails the pass; a failed write is reported and the
/// others go on. `holds` is asked before every write (the Lease).
pub async fn sync_once(
    client: &kube::Client,
    version: &str,
    desired: &[ServiceImport],
    brake: f64,
    limits: &Limits,
    holds: &(dyn Fn() -> bool + Sync),
) -> Result<Report, kube::Error> {
    let resource = resource(version);
    let all: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let listed = all.list(&ListParams::default()).await?;
    let existing: Vec<Existing> = listed.items.iter().map(Existing::from_object).collect();
    let plan = plan(desired, &existing, brake);
    let mut report = Report {
        held_back: plan.held_back.len(),
        conflicts: plan.conflicts.len(),
        ..Report::default()
    };
    for at in &plan.conflicts {
        tracing::warn!("{at} exists and is not managed by globaldns: left as it is, not applied");
    }
    if !plan.held_back.is_empty() {
        let names: Vec<String> = plan.held_back.iter().map(ToString::to_string).collect();
        tracing::error!(
            held_back = plan.held_back.len(),
            "deletion brake: this pass would delete more than {:.0}% of the owned ServiceImports; none deleted ({})",
            brake * 100.0,
            names.join(", ")
        );
    }
    let pacer = Pacer::new(limits.qps);
    let skipped = AtomicUsize::new(0);
    let concurrency = limits.concurrency.max(1);
    let api = |namespace: &str| -> Api<DynamicObject> {
        Api::namespaced_with(client.clone(), namespace, &resource)
    };
    let writes: Vec<_> = plan
        .write
        .iter()
        .map(|write| {
            write_one(
                api(&write.import.metadata.namespace),
                write,
                &pacer,
                &skipped,
                holds,
            )
        })
        .collect();
    let outcomes: Vec<Outcome> = futures::stream::iter(writes)
        .buffered(concurrency)
        .collect()
        .await;
    tally(outcomes, &mut report, |r| &mut r.applied);
    report.skipped = skipped.into_inner();
    report.applied -= report.skipped;
    if report.lease_lost {
        return Ok(report);
    }
    let deletes: Vec<_> = plan
        .delete
        .iter()
        .map(|at| delete_one(api(&at.namespace), at, &pacer, holds))
        .collect();
    let outcomes: Vec<Outcome> = futures::stream::iter(deletes)
        .buffered(concurrency)
        .collect()
        .await;
    tally(outcomes, &mut report, |r| &mut r.deleted);
    Ok(report)
}

/// One import's writes, in its turn; a 404 (no such namespace here) is
/// counted in `skipped` and is not a failure.
async fn write_one(
    api: Api<DynamicObject>,
    write: &Write,
    pacer: &Pacer,
    skipped: &AtomicUsize,
    holds: &(dyn Fn() -> bool + Sync),
) -> Outcome {
    pacer.wait().await;
    if !holds() {
        return Outcome::NotStarted;
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let (api, params) = (&api, &params);
    patiently(
        "apply",
        &format!("{KIND} {}", write.import.key()),
        || async move {
            match apply(api, params, write).await {
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    tracing::debug!(
                        "{KIND} {} not written: {}",
                        write.import.key(),
                        status.message
                    );
                    skipped.fetch_add(1, Relaxed);
                    Ok(())
                }
                other => other,
            }
        },
    )
    .await
}

/// One owned import deleted, in its turn; one already gone counts as
/// deleted.
async fn delete_one(
    api: Api<DynamicObject>,
    at: &ImportRef,
    pacer: &Pacer,
    holds: &(dyn Fn() -> bool + Sync),
) -> Outcome {
    pacer.wait().await;
    if !holds() {
        return Outcome::NotStarted;
    }
    let api = &api;
    patiently("delete", at, || async move {
        match api.delete(&at.name, &DeleteParams::default()).await {
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            other => other.map(|_| ()),
        }
    })
    .await
}

/// One import's applies: the spec to the object, then the status to its
/// subresource, each if the plan says so.
async fn apply(
    api: &Api<DynamicObject>,
    params: &PatchParams,
    write: &Write,
) -> Result<(), kube::Error> {
    let name = &write.import.metadata.name;
    if write.spec {
        api.patch(name, params, &Patch::Apply(write.import.spec_value()))
            .await?;
    }
    if write.status {
        let status = Patch::Apply(write.import.status_value());
        api.patch_status(name, params, &status).await?;
    }
    Ok(())
}

/// A pass that could not start: which version of the MCS API to write was
/// not found out.
pub fn discovery_failure(error: &kube::Error) -> Failure {
    Failure::new("discover", &super::GROUP, error)
}

#[cfg(test)]
mod tests;
