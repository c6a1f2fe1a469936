//! The conditions of the local cluster's MCS `ServiceExport`s (KEP-1645;
//! `sigs.k8s.io/mcs-api` v0.5 `ServiceExportStatus.conditions`), so that
//! `kubectl get serviceexport -o yaml` tells a user why an export does or
//! does not work. Decided from what globaldns already decides:
//!
//! | condition | `True` | `False` |
//! |---|---|---|
//! | `Valid` | `Valid`: the Service exists and has a TCP port | `NoService`; `InvalidServiceType` (ExternalName); `NoExportablePort` (only UDP/SCTP ports) |
//! | `Ready` | `Exported`: the merged registry lists this cluster among the service's exporters | `Failed`: not valid, or left out by the merge (a conflict); `Pending`: not in the published registry yet (the shrink brake holds it, or a peer's registry is invalid) |
//! | `Conflict` | `PortConflict`: another cluster's definition won (merge rule 3: its own export, the cluster name that sorts first) and this cluster's ports differ, so it is left out of the exporters | `NoConflicts` |
//!
//! Written by the Lease holder with a server-side apply of the `status`
//! subresource (field manager `globaldns`), only when a condition's
//! status, reason, message or observed generation changed; a condition
//! whose status stays keeps its `lastTransitionTime` (Kubernetes API
//! conventions, "Typical status properties").

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service as KubeService;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::mesh::sync::{FIELD_MANAGER, Failure, Report};
use crate::registry::Registry;
use crate::registry::kube::cluster_watch::{ports_of, service_exports_resource};

/// One condition, as `metav1.Condition` spells it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    /// `True` or `False`.
    pub status: String,
    pub reason: String,
    pub message: String,
    /// RFC 3339, whole seconds.
    pub last_transition_time: String,
    #[serde(default)]
    pub observed_generation: i64,
}

impl Condition {
    fn new(kind: &str, ok: bool, reason: &str, message: String) -> Self {
        Self {
            kind: kind.to_string(),
            status: if ok { "True" } else { "False" }.to_string(),
            reason: reason.to_string(),
            message,
            last_transition_time: String::new(),
            observed_generation: 0,
        }
    }

    /// Whether `self` says what `other` says (its time aside).
    fn same(&self, other: &Condition) -> bool {
        (
            &self.kind,
            &self.status,
            &self.reason,
            &self.message,
            self.observed_generation,
        ) == (
            &other.kind,
            &other.status,
            &other.reason,
            &other.message,
            other.observed_generation,
        )
    }
}

/// The three conditions of the ServiceExport `namespace/name` of cluster
/// `local`, whose Service is `service` (`None`: there is none), against
/// the published `registry` (pure; times left empty, see [`settle`]).
pub fn conditions(
    local: &str,
    namespace: &str,
    name: &str,
    service: Option<&KubeService>,
    registry: &Registry,
) -> [Condition; 3] {
    let invalid = match service {
        None => Some((
            "NoService",
            format!("no Service {namespace}/{name} to export"),
        )),
        Some(s) if s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("ExternalName") => {
            Some((
                "InvalidServiceType",
                format!(
                    "Service {namespace}/{name} is of type ExternalName, which cannot be exported"
                ),
            ))
        }
        Some(s) => ports_of(s).err().map(|e| {
            (
                "NoExportablePort",
                format!("Service {namespace}/{name}: {e}"),
            )
        }),
    };
    let valid = match &invalid {
        Some((reason, message)) => Condition::new("Valid", false, reason, message.clone()),
        None => Condition::new(
            "Valid",
            true,
            "Valid",
            format!("exports Service {namespace}/{name}"),
        ),
    };
    let merged = registry
        .services
        .iter()
        .find(|s| s.name == name && s.namespace == namespace);
    let exported = merged.is_some_and(|s| s.exported_from.iter().any(|c| c == local));
    let (ready, conflict) = match (&invalid, merged) {
        (Some((_, message)), _) => (
            Condition::new("Ready", false, "Failed", format!("not exported: {message}")),
            no_conflicts(),
        ),
        (None, Some(service)) if !exported => {
            let winner: Vec<String> = service
                .ports
                .iter()
                .map(|p| format!("{}/{}", p.name(), p.number))
                .collect();
            let exporters: Vec<&str> = service.exported_from.iter().map(|c| c.as_str()).collect();
            let message = format!(
                "this cluster's ports differ from the clusterset's definition ({}, exported by {}); it is left out of the exporters",
                winner.join(", "),
                exporters.join(", ")
            );
            (
                Condition::new("Ready", false, "Failed", message.clone()),
                Condition::new("Conflict", true, "PortConflict", message),
            )
        }
        (None, Some(_)) => (
            Condition::new(
                "Ready",
                true,
                "Exported",
                "exported to the clusterset: every cluster's globaldns answers it and imports it".to_string(),
            ),
            no_conflicts(),
        ),
        (None, None) => (
            Condition::new(
                "Ready",
                false,
                "Pending",
                "not in the published registry yet (held back by the shrink brake, or the registry is invalid: see /readyz?verbose)".to_string(),
            ),
            no_conflicts(),
        ),
    };
    [valid, ready, conflict]
}

fn no_conflicts() -> Condition {
    Condition::new(
        "Conflict",
        false,
        "NoConflicts",
        "no other cluster's definition conflicts".to_string(),
    )
}

/// Gives `wanted` its generation and times against the `existing`
/// conditions: a condition whose status stays keeps its time, a changed
/// one takes `now`. `None` when `existing` already says all of it (no
/// write needed).
pub fn settle(
    mut wanted: [Condition; 3],
    existing: &[Condition],
    generation: i64,
    now: &str,
) -> Option<[Condition; 3]> {
    let mut changed = false;
    for condition in &mut wanted {
        condition.observed_generation = generation;
        let was = existing.iter().find(|e| e.kind == condition.kind);
        condition.last_transition_time = match was {
            Some(was) if was.status == condition.status => was.last_transition_time.clone(),
            _ => now.to_string(),
        };
        changed |= was.is_none_or(|was| !was.same(condition));
    }
    changed.then_some(wanted)
}

/// One pass over the local cluster's ServiceExports in MCS `version`: list
/// them and the Services, and apply the status of each whose conditions
/// changed. Listing failing fails the pass (an error in the report); a
/// failed write is reported and the others go on.
pub async fn sync_once(
    client: &kube::Client,
    version: &str,
    local: &str,
    registry: &Registry,
    holds: &(dyn Fn() -> bool + Sync),
) -> Report {
    let mut report = Report::default();
    let resource = service_exports_resource(version);
    let exports: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let services: Api<KubeService> = Api::all(client.clone());
    let lp = ListParams::default();
    let (exports, services) = match (exports.list(&lp).await, services.list(&lp).await) {
        (Ok(exports), Ok(services)) => (exports, services),
        (Err(e), _) => {
            report
                .failures
                .push(Failure::new("list", &"ServiceExports", &e));
            return report;
        }
        (_, Err(e)) => {
            report.failures.push(Failure::new("list", &"Services", &e));
            return report;
        }
    };
    let services: BTreeMap<(String, String), &KubeService> = services
        .items
        .iter()
        .map(|s| {
            let meta = &s.metadata;
            let key = (
                meta.namespace.clone().unwrap_or_default(),
                meta.name.clone().unwrap_or_default(),
            );
            (key, s)
        })
        .collect();
    let now = rfc3339_seconds(k8s_openapi::jiff::Timestamp::now());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for export in &exports.items {
        let namespace = export.metadata.namespace.clone().unwrap_or_default();
        let name = export.metadata.name.clone().unwrap_or_default();
        let service = services.get(&(namespace.clone(), name.clone())).copied();
        let wanted = conditions(local, &namespace, &name, service, registry);
        let existing = listed(export.data.get("status").unwrap_or(&Value::Null));
        let generation = export.metadata.generation.unwrap_or(0);
        let Some(settled) = settle(wanted, &existing, generation, &now) else {
            continue;
        };
        if !holds() {
            report.lease_lost = true;
            return report;
        }
        let body = serde_json::json!({
            "apiVersion": resource.api_version,
            "kind": "ServiceExport",
            "metadata": {"name": name, "namespace": namespace},
            "status": {"conditions": settled},
        });
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &resource);
        match api.patch_status(&name, &params, &Patch::Apply(body)).await {
            Ok(_) => report.applied += 1,
            Err(e) => report.failures.push(Failure::new(
                "apply",
                &format!("ServiceExport {namespace}/{name} status"),
                &e,
            )),
        }
    }
    report
}

/// `at` as `metav1.Time` writes it: RFC 3339, whole seconds, UTC.
fn rfc3339_seconds(at: k8s_openapi::jiff::Timestamp) -> String {
    k8s_openapi::jiff::Timestamp::from_second(at.as_second())
        .expect("a whole second of a timestamp is one")
        .to_string()
}

/// The conditions of a listed ServiceExport's `status` (none when it has
/// none or they do not decode), as the sync and `doctor` read them.
pub fn listed(status: &Value) -> Vec<Condition> {
    status
        .get("conditions")
        .cloned()
        .and_then(|c| serde_json::from_value(c).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
