//! `doctor`'s Multi-Cluster Services checks (issue 29): the local
//! ServiceExports as their conditions say (what globaldns' Lease holder
//! sets: [`crate::mesh::mcs::export_status`]), a ServiceImport for every
//! service of the registry, and across clusters one ClusterSetIP per
//! import.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, ListParams};

use super::finding::Finding;
use super::mesh_check::describe;
pub use super::observe::McsSeen;
use super::observe::{Observed, Read, list_all};
use crate::mesh::mcs::export_status::{Condition, listed};
use crate::mesh::mcs::import_sync;
use crate::mesh::sync::owned;
use crate::registry::kube::cluster_watch::service_exports_resource;

/// Reads the cluster's ServiceExports and ServiceImports in the newest MCS
/// version it serves into `seen.mcs`.
pub async fn read_mcs(client: &kube::Client, seen: &mut Observed) {
    seen.mcs = read(client).await;
}

async fn read(client: &kube::Client) -> Read<Option<McsSeen>> {
    let Some(version) = import_sync::version(client)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let exports = list_all(client, &service_exports_resource(version)).await?;
    let imports = list_all(client, &import_sync::resource(version)).await?;
    let namespaces = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    Ok(Some(McsSeen {
        version: version.to_string(),
        exports,
        imports,
        namespaces,
    }))
}

/// `namespace/name` of an object.
fn key(object: &DynamicObject) -> String {
    describe("", object).trim_start().to_string()
}

/// `mcs.service-exports`: one warning per ServiceExport that is not
/// Ready, with what its conditions say and what to do; one pass for the
/// rest. Nothing when the cluster serves no MCS version.
pub fn service_exports(seen: &Observed) -> Vec<Finding> {
    const CHECK: &str = "mcs.service-exports";
    let mcs = match &seen.mcs {
        Ok(Some(mcs)) => mcs,
        Ok(None) => return Vec::new(),
        Err(e) => {
            return vec![Finding::warn(
                CHECK,
                "ServiceExports",
                format!("not read: {e}"),
                "let the kubeconfig's user list ServiceExports and ServiceImports",
            )];
        }
    };
    let mut out = Vec::new();
    let mut ready = 0;
    for export in &mcs.exports {
        let conditions = listed(
            export
                .data
                .get("status")
                .unwrap_or(&serde_json::Value::Null),
        );
        let find = |kind: &str| conditions.iter().find(|c| c.kind == kind);
        let object = format!("ServiceExport {}", key(export));
        match find("Ready") {
            Some(c) if c.status == "True" => ready += 1,
            Some(c) => {
                let why = find("Conflict")
                    .filter(|c| c.status == "True")
                    .or(find("Valid").filter(|c| c.status == "False"))
                    .unwrap_or(c);
                out.push(Finding::warn(
                    CHECK,
                    object,
                    format!("not exported: {}: {}", why.reason, why.message),
                    fix(why),
                ));
            }
            None => out.push(Finding::warn(
                CHECK,
                object,
                "no Ready condition: globaldns has not judged it",
                "run globaldns with --registry kubernetes, --sync-service-entries and --service-imports (the defaults of manifests/), and check its Lease holder's log",
            )),
        }
    }
    if out.is_empty() {
        out.push(Finding::pass(
            CHECK,
            "ServiceExports",
            format!("{ready} exported ({})", mcs.version),
        ));
    }
    out
}

/// What to do about the condition that keeps an export from being Ready.
fn fix(why: &Condition) -> String {
    match why.reason.as_str() {
        "NoService" => "create the Service of the same name in that namespace, or delete the ServiceExport".to_string(),
        "InvalidServiceType" => "export a Service with a ClusterIP: an ExternalName Service cannot be exported".to_string(),
        "NoExportablePort" => "give the Service a TCP port: UDP and SCTP ports are not exported".to_string(),
        "PortConflict" => "give the Service the same ports in every cluster that exports it (see `globaldns explain` of its host)".to_string(),
        _ => "see `globaldns explain` of its host and globaldns' log".to_string(),
    }
}

/// `mcs.service-imports`: every service of the registry whose namespace
/// this cluster has holds an owned ServiceImport with an address (a
/// namespace the cluster lacks gets none: namespace sameness). Warned,
/// not failed: sidecars reach the service through its ServiceEntry
/// whatever the import says.
pub fn service_imports(seen: &Observed) -> Vec<Finding> {
    const CHECK: &str = "mcs.service-imports";
    let (Ok(Some(mcs)), Ok((registry, _))) = (&seen.mcs, &seen.registry) else {
        return Vec::new();
    };
    let imports: BTreeMap<String, &DynamicObject> = mcs
        .imports
        .iter()
        .filter(|o| owned(o))
        .map(|o| (key(o), o))
        .collect();
    let mut out = Vec::new();
    let mut elsewhere = 0;
    for service in registry.services.iter() {
        if !mcs.namespaces.contains(service.namespace.as_str()) {
            elsewhere += 1;
            continue;
        }
        let at = format!("{}/{}", service.namespace, service.name);
        let ips = imports
            .get(&at)
            .and_then(|o| o.data["spec"]["ips"].as_array())
            .is_some_and(|ips| !ips.is_empty());
        if !ips {
            out.push(Finding::warn(
                CHECK,
                format!("ServiceImport {at}"),
                if imports.contains_key(&at) {
                    "has no ClusterSetIP (the VIP pool has no room for its host?)".to_string()
                } else {
                    "missing".to_string()
                },
                "check that globaldns syncs (`globaldns_sync_failing`, /readyz?verbose) with --service-imports",
            ));
        }
    }
    if out.is_empty() {
        out.push(Finding::pass(
            CHECK,
            "ServiceImports",
            format!(
                "{} imported, each with its ClusterSetIP; {elsewhere} in namespaces this cluster does not have, not imported here",
                imports.len()
            ),
        ));
    }
    out
}

/// `mcs.cluster-set-ip`, across clusters: a ServiceImport that more than
/// one cluster holds has the same `ips` in each (globaldns' promise: one
/// ClusterSetIP everywhere, design §3). A difference fails: clients in one
/// cluster reach the service at an address the others' DNS never gives.
pub fn cluster_set_ip_agreement(seen: &[Observed]) -> Vec<Finding> {
    const CHECK: &str = "mcs.cluster-set-ip";
    let mut by_import: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for one in seen {
        let Ok(Some(mcs)) = &one.mcs else { continue };
        for import in mcs.imports.iter().filter(|o| owned(o)) {
            let ips = import.data["spec"]["ips"].to_string();
            by_import
                .entry(key(import))
                .or_default()
                .push((one.context.clone(), ips));
        }
    }
    let mut out = Vec::new();
    let mut agreed = 0;
    for (at, held) in &by_import {
        if held.len() < 2 {
            continue;
        }
        if held.iter().all(|(_, ips)| *ips == held[0].1) {
            agreed += 1;
            continue;
        }
        let each: Vec<String> = held.iter().map(|(c, ips)| format!("{c}: {ips}")).collect();
        out.push(Finding::fail(
            CHECK,
            format!("ServiceImport {at}"),
            format!("ClusterSetIPs differ: {}", each.join(", ")),
            "the clusters' VIP tables disagree on its host: see `globaldns explain` of it in each (first choice or not) and `globaldns_vip_disagreements`",
        ));
    }
    if out.is_empty() && agreed > 0 {
        out.push(Finding::pass(
            CHECK,
            "ServiceImports",
            format!("{agreed} held in several clusters, each with one ClusterSetIP"),
        ));
    }
    out
}

#[cfg(test)]
mod tests;
