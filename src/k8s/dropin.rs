//! Drop-in mode (`serve --serve-service-entries`): the hosts of the
//! ServiceEntries already in the cluster (hand-written, as
//! istio-coredns-plugin served them) are answered too. Every ServiceEntry in
//! every namespace that globaldns does not own is watched; each of its hosts
//! inside a served zone is answered with its `spec.addresses` (IPs; CIDRs
//! and entries without addresses are left out).

use std::net::IpAddr;

use kube::api::{Api, DynamicObject};
use kube::runtime::watcher;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::sync::service_entries_resource;
use super::watching::Settled;
use crate::index::HandWritten;
use crate::mesh::{MANAGED_BY, MANAGED_BY_LABEL};

/// The hand-written hosts of one ServiceEntry object.
pub fn hosts_of(object: &DynamicObject) -> Vec<HandWritten> {
    let source = format!(
        "{}/{}",
        object.metadata.namespace.as_deref().unwrap_or("-"),
        object.metadata.name.as_deref().unwrap_or("-")
    );
    let spec = object.data.get("spec");
    let strings = |field: &str| -> Vec<&str> {
        spec.and_then(|s| s.get(field))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    let addresses: Vec<IpAddr> = strings("addresses")
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect();
    if addresses.is_empty() {
        return Vec::new();
    }
    strings("hosts")
        .iter()
        .map(|host| HandWritten {
            host: host.trim_end_matches('.').to_ascii_lowercase(),
            addresses: addresses.clone(),
            source: source.clone(),
        })
        .collect()
}

/// Watches every ServiceEntry not labelled as ours until `shutdown`,
/// sending the full set of hand-written hosts after each change.
pub async fn run(
    client: kube::Client,
    tx: mpsc::Sender<Vec<HandWritten>>,
    shutdown: CancellationToken,
) {
    let resource = service_entries_resource();
    let api: Api<DynamicObject> = Api::all_with(client, &resource);
    let config = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}!={MANAGED_BY}"));
    let mut settled = Settled::new(api, config, resource, "ServiceEntries".into());
    while let Some(store) = settled.next(&shutdown).await {
        let hosts = store.state().iter().flat_map(|o| hosts_of(o)).collect();
        if tx.send(hosts).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
