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
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::lease::Elector;
use crate::controller::{Allocated, Settings};
use crate::istio::{MANAGED_BY, MANAGED_BY_LABEL, ServiceEntry};
use crate::metrics::Metrics;
use crate::render::{Target, render};
use std::sync::atomic::Ordering::Relaxed;

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

/// An object as listed: its name, whether globaldns owns it, its spec.
#[derive(Debug, Clone)]
pub struct Existing {
    pub name: String,
    pub owned: bool,
    pub spec: Value,
}

/// Decides a pass. `brake` is the largest share of the owned objects one
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
            Some(e) if serde_json::to_value(&entry.spec).ok().as_ref() == Some(&e.spec) => {}
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
    pub failed: usize,
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
/// written blind); a failed apply or delete is logged and counted, and the
/// others go on. `holds` is asked before every write: once it says no (the
/// Lease is lost), the pass writes nothing more and reports `lease_lost`.
pub async fn sync_once(
    api: &Api<DynamicObject>,
    desired: &[ServiceEntry],
    brake: f64,
    holds: &(dyn Fn() -> bool + Sync),
) -> Result<Report, kube::Error> {
    let listed = api.list(&ListParams::default()).await?;
    let existing: Vec<Existing> = listed
        .items
        .iter()
        .map(|object| Existing {
            name: object.metadata.name.clone().unwrap_or_default(),
            owned: object
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(MANAGED_BY_LABEL))
                .is_some_and(|v| v == MANAGED_BY),
            spec: object.data.get("spec").cloned().unwrap_or(Value::Null),
        })
        .collect();
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
            Err(e) => {
                tracing::warn!("ServiceEntry {name} not applied: {e}");
                report.failed += 1;
            }
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
            Err(e) => {
                tracing::warn!("ServiceEntry {name} not deleted: {e}");
                report.failed += 1;
            }
        }
    }
    Ok(report)
}

/// How the sync runs (`serve --sync-service-entries`).
#[derive(Clone, Debug, PartialEq)]
pub struct SyncConfig {
    /// The local cluster, whose view is rendered.
    pub cluster: String,
    /// Namespace of the ServiceEntries.
    pub namespace: String,
    /// Largest share of owned objects one pass may delete.
    pub brake: f64,
    /// The Lease, in the namespace globaldns runs in.
    pub lease_name: String,
    /// This replica's name in the Lease (the pod name).
    pub identity: String,
    /// A full pass at least this often, to repair hand edits and drift.
    pub resync: Duration,
}

/// How long shutdown waits to give the Lease up.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(2);

/// Lease duration: a new leader takes over at most this long after the
/// old one stopped renewing.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);

/// Keeps the ServiceEntries in step until `shutdown`: renews or seeks the
/// lease every third of its duration, and while holding it runs a pass on
/// every published registry and at least every `resync`. A replica that is
/// not (or no longer) the holder writes nothing.
pub async fn run(
    client: kube::Client,
    lease_namespace: String,
    config: SyncConfig,
    settings: Settings,
    mut changes: watch::Receiver<Option<Arc<Allocated>>>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let elector = Elector::new(
        Api::namespaced(client.clone(), &lease_namespace),
        &config.lease_name,
        &config.identity,
        LEASE_DURATION,
    );
    let api = service_entries(client, &config.namespace);
    let mut tick = tokio::time::interval(elector.renew_every());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut leader = false;
    let mut pending = true;
    let mut last_pass: Option<Instant> = None;
    let lease = format!("{lease_namespace}/{}", config.lease_name);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = changes.changed() => {
                if changed.is_err() {
                    break;
                }
                pending = true;
            }
            _ = tick.tick() => {}
        }
        let now_leader = match elector.try_lead().await {
            Ok(held) => held,
            Err(e) => {
                // Unsure whether the renewal landed: go on while the last
                // one's deadline lasts.
                tracing::warn!("lease {lease}: {e}");
                elector.holds()
            }
        };
        if now_leader != leader {
            tracing::info!(leader = now_leader, identity = %config.identity, "ServiceEntry sync leadership changed");
            leader = now_leader;
            pending |= leader;
        }
        let due = last_pass.is_none_or(|t| t.elapsed() >= config.resync);
        if !leader || !(pending || due) {
            continue;
        }
        let Some(current) = changes.borrow_and_update().clone() else {
            continue; // nothing published yet
        };
        let target = Target {
            cluster: &config.cluster,
            namespace: &config.namespace,
        };
        let desired = match render(
            &current.registry,
            &settings.zones,
            &settings.allocator,
            &current.table,
            &target,
        ) {
            Ok(desired) => desired,
            Err(e) => {
                tracing::error!("ServiceEntries not rendered: {e}");
                pending = false;
                continue;
            }
        };
        // A pass may outlast a renewal period: the lease is renewed beside
        // it, and the pass asks before every write whether it still holds.
        let holds = || elector.holds();
        let pass = sync_once(&api, &desired, config.brake, &holds);
        let outcome = tokio::select! {
            outcome = pass => outcome,
            never = renew_beside(&elector, &lease) => match never {},
            _ = shutdown.cancelled() => break,
        };
        match outcome {
            Ok(report) => {
                metrics.sync_passes.fetch_add(1, Relaxed);
                metrics
                    .sync_applied
                    .fetch_add(report.applied as u64, Relaxed);
                metrics
                    .sync_deleted
                    .fetch_add(report.deleted as u64, Relaxed);
                metrics.sync_failed.fetch_add(report.failed as u64, Relaxed);
                metrics
                    .sync_held_back
                    .store(report.held_back as u64, Relaxed);
                if report.lease_lost {
                    metrics.sync_lease_lost.fetch_add(1, Relaxed);
                    tracing::warn!(
                        applied = report.applied,
                        deleted = report.deleted,
                        "lease {lease} lost during a ServiceEntry sync pass: stopped writing"
                    );
                    // The next round finds out who holds it now.
                    continue;
                }
                tracing::info!(
                    applied = report.applied,
                    deleted = report.deleted,
                    held_back = report.held_back,
                    conflicts = report.conflicts,
                    failed = report.failed,
                    "ServiceEntries synced"
                )
            }
            Err(e) => tracing::warn!("ServiceEntry sync pass failed, retrying: {e}"),
        }
        pending = false;
        last_pass = Some(Instant::now());
    }
    if elector.holds() {
        // Bounded: an unreachable API server must not hold up shutdown.
        match tokio::time::timeout(RELEASE_TIMEOUT, elector.release()).await {
            Ok(Ok(())) => tracing::info!("lease {lease} released"),
            Ok(Err(e)) => tracing::warn!("lease {lease} not released, it will expire: {e}"),
            Err(_) => tracing::warn!("lease {lease} not released in time, it will expire"),
        }
    }
}

/// Renews the lease every renewal period while a pass runs. Never ends;
/// the pass reads the outcome through [`Elector::holds`].
async fn renew_beside(elector: &Elector, lease: &str) -> std::convert::Infallible {
    loop {
        tokio::time::sleep(elector.renew_every()).await;
        if let Err(e) = elector.try_lead().await {
            tracing::warn!("lease {lease}: {e}");
        }
    }
}

#[cfg(test)]
mod tests;
