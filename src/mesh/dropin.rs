//! Drop-in mode (`serve --serve-service-entries`): the hosts of the
//! ServiceEntries already in the cluster (hand-written, as
//! istio-coredns-plugin served them) are answered too. Every ServiceEntry in
//! every namespace is watched; each host of one globaldns does not own that
//! lies inside a served zone is answered with its `spec.addresses` (IPs;
//! CIDRs and entries without addresses are left out). globaldns's own
//! entries are read for one thing: whether a hand-written entry for the same
//! host is older, which makes Istio 1.30+ route by it
//! ([`crate::index::IstioPicks`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use kube::api::{Api, DynamicObject};
use kube::runtime::watcher;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::api_version::istio_api_version_until;
use super::sync::{owned, service_entries_resource};
use crate::index::{HandWritten, IstioPicks};
use crate::watch::Settled;

/// Where an object stands in the order Istio picks among ServiceEntries of
/// one host: creation time (whole seconds, so ties are common), then name,
/// then namespace (pilot/pkg/model/push_context.go
/// `SortServicesByCreationTime`).
type IstioOrder = (Option<k8s_openapi::jiff::Timestamp>, String, String);

fn istio_order(object: &DynamicObject) -> IstioOrder {
    (
        object.metadata.creation_timestamp.as_ref().map(|t| t.0),
        object.metadata.name.clone().unwrap_or_default(),
        object.metadata.namespace.clone().unwrap_or_default(),
    )
}

fn source(object: &DynamicObject) -> String {
    format!(
        "{}/{}",
        object.metadata.namespace.as_deref().unwrap_or("-"),
        object.metadata.name.as_deref().unwrap_or("-")
    )
}

/// The strings of `spec.<field>`.
fn strings<'o>(object: &'o DynamicObject, field: &str) -> Vec<&'o str> {
    object
        .data
        .get("spec")
        .and_then(|s| s.get(field))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn host_key(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The hand-written hosts of one ServiceEntry object (none without an IP
/// address), not yet compared with globaldns's own entries.
pub fn hosts_of(object: &DynamicObject) -> Vec<HandWritten> {
    let addresses: Vec<IpAddr> = strings(object, "addresses")
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect();
    if addresses.is_empty() {
        return Vec::new();
    }
    let source = source(object);
    strings(object, "hosts")
        .iter()
        .map(|host| HandWritten {
            host: host_key(host),
            addresses: addresses.clone(),
            source: source.clone(),
            beside_ours: None,
        })
        .collect()
}

/// The hand-written hosts among every ServiceEntry of the cluster, each
/// told whether Istio routes by it or by globaldns's own entry for the
/// same host, when there is one.
pub fn hand_written(objects: &[Arc<DynamicObject>]) -> Vec<HandWritten> {
    let mut ours: HashMap<String, (IstioOrder, String)> = HashMap::new();
    for object in objects.iter().filter(|o| owned(o)) {
        for host in strings(object, "hosts") {
            ours.insert(host_key(host), (istio_order(object), source(object)));
        }
    }
    let mut out = Vec::new();
    for object in objects.iter().filter(|o| !owned(o)) {
        let order = istio_order(object);
        for mut entry in hosts_of(object) {
            entry.beside_ours = ours.get(&entry.host).map(|(theirs, name)| {
                if order < *theirs {
                    IstioPicks::HandWritten
                } else {
                    IstioPicks::Ours(name.clone())
                }
            });
            out.push(entry);
        }
    }
    out
}

/// Watches every ServiceEntry until `shutdown`, sending the full set of
/// hand-written hosts ([`hand_written`]) after each change.
pub async fn run(
    client: kube::Client,
    tx: mpsc::Sender<Vec<HandWritten>>,
    shutdown: CancellationToken,
) {
    let Some(version) =
        istio_api_version_until(&client, &shutdown, "hand-written ServiceEntries").await
    else {
        return;
    };
    let resource = service_entries_resource(version);
    let api: Api<DynamicObject> = Api::all_with(client, &resource);
    let config = watcher::Config::default();
    let mut settled = Settled::new(api, config, resource, "ServiceEntries".into());
    while let Some(store) = settled.next(&shutdown).await {
        let hosts = hand_written(&store.state());
        if tx.send(hosts).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
