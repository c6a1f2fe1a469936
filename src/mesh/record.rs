//! The VIP record in Kubernetes (design §3): the hosts and `spec.addresses`
//! of the ServiceEntries globaldns owns. The Lease holder writes them; every
//! replica reads them at start ([`owned_addresses`]) and then watches them
//! ([`run`]), and its controller follows them
//! ([`crate::vip::Allocator::follow`]), so that all replicas answer one VIP
//! per host and a new leader writes back what the last one wrote.

use std::net::IpAddr;

use kube::api::{Api, DynamicObject, ListParams};
use kube::runtime::watcher;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::api_version::istio_api_version_until;
use super::drift::managed_by;
use super::sync::{FIELD_MANAGER, service_entries_resource};
use super::{MANAGED_BY, MANAGED_BY_LABEL};
use crate::watch::Settled;

/// A host (lower-case) and the addresses its ServiceEntry records.
pub type Recorded = (String, Vec<IpAddr>);

/// The label selector of the owned ServiceEntries.
fn owned() -> String {
    format!("{MANAGED_BY_LABEL}={MANAGED_BY}")
}

/// What one owned ServiceEntry records: its first host and its addresses
/// that are IPs (a CIDR or garbage is no VIP). `None` without a host or
/// without an address: it records nothing.
///
/// Only addresses globaldns wrote are a record: when its `managedFields`
/// say another field manager owns `spec.addresses` (someone edited them by
/// hand), the object records nothing, and the sync applies the VIP back
/// instead of every replica following the edit. (An object listed without
/// any `managedFields` is taken as it is.)
pub fn recorded(object: &DynamicObject) -> Option<Recorded> {
    if !object
        .metadata
        .managed_fields
        .as_ref()
        .is_none_or(Vec::is_empty)
    {
        let metadata = serde_json::to_value(&object.metadata).ok()?;
        let ours = managed_by(&metadata, FIELD_MANAGER)?;
        ours.get("f:spec")?.get("f:addresses")?;
    }
    let spec = object.data.get("spec")?;
    let host = spec.get("hosts")?.get(0)?.as_str()?;
    let addresses: Vec<IpAddr> = spec
        .get("addresses")?
        .as_array()?
        .iter()
        .filter_map(|a| a.as_str()?.parse().ok())
        .collect();
    if addresses.is_empty() {
        return None;
    }
    Some((host.trim_end_matches('.').to_ascii_lowercase(), addresses))
}

/// The record now, read once (at start, before anything is allocated).
pub async fn owned_addresses(api: &Api<DynamicObject>) -> Result<Vec<Recorded>, kube::Error> {
    let listed = api.list(&ListParams::default().labels(&owned())).await?;
    Ok(listed.items.iter().filter_map(recorded).collect())
}

/// Watches the owned ServiceEntries of `namespace` until `shutdown`, sending
/// the whole record after the initial list and after changes (debounced as
/// every watch is, see [`crate::watch`]).
pub async fn run(
    client: kube::Client,
    namespace: String,
    tx: mpsc::Sender<Vec<Recorded>>,
    shutdown: CancellationToken,
) {
    let what = format!("the owned ServiceEntries in {namespace}");
    let Some(version) = istio_api_version_until(&client, &shutdown, &what).await else {
        return;
    };
    let resource = service_entries_resource(version);
    let api: Api<DynamicObject> = Api::namespaced_with(client, &namespace, &resource);
    let config = watcher::Config::default().labels(&owned());
    let mut settled = Settled::new(api, config, resource, what);
    while let Some(store) = settled.next(&shutdown).await {
        let record = store.state().iter().filter_map(|o| recorded(o)).collect();
        if tx.send(record).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_record_is_the_first_host_and_the_ip_addresses() {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
            "metadata": {"name": "httpbin-bar-global", "namespace": "istio-system"},
            "spec": {"hosts": ["HTTPBIN.bar.global."], "addresses": ["240.0.0.9", "10.0.0.0/8", "2001:db8::9"]},
        }))
        .unwrap();
        assert_eq!(
            recorded(&object),
            Some((
                "httpbin.bar.global".to_string(),
                vec!["240.0.0.9".parse().unwrap(), "2001:db8::9".parse().unwrap()]
            ))
        );
        let no_hosts: DynamicObject = serde_json::from_value(json!({
            "metadata": {"name": "x"}, "spec": {"addresses": ["240.0.0.9"]},
        }))
        .unwrap();
        assert_eq!(recorded(&no_hosts), None);
    }

    /// An owned ServiceEntry whose addresses someone edited by hand (their
    /// field manager is no longer globaldns) records nothing: the sync puts
    /// the VIP back rather than every replica following the edit.
    #[test]
    fn addresses_edited_by_another_manager_are_no_record() {
        let object = |addresses_owner: &str| -> DynamicObject {
            serde_json::from_value(json!({
                "metadata": {"name": "httpbin-bar-global", "managedFields": [
                    {"manager": "globaldns", "operation": "Apply",
                     "fieldsV1": {"f:spec": {"f:hosts": {}, "f:addresses": {}}}},
                    {"manager": addresses_owner, "operation": "Update",
                     "fieldsV1": {"f:spec": {"f:exportTo": {}}}},
                ]},
                "spec": {"hosts": ["httpbin.bar.global"], "addresses": ["240.0.0.9"]},
            }))
            .unwrap()
        };
        assert!(recorded(&object("kubectl")).is_some());
        let edited: DynamicObject = serde_json::from_value(json!({
            "metadata": {"name": "httpbin-bar-global", "managedFields": [
                {"manager": "globaldns", "operation": "Apply",
                 "fieldsV1": {"f:spec": {"f:hosts": {}}}},
                {"manager": "kubectl-edit", "operation": "Update",
                 "fieldsV1": {"f:spec": {"f:addresses": {}}}},
            ]},
            "spec": {"hosts": ["httpbin.bar.global"], "addresses": ["240.0.0.99"]},
        }))
        .unwrap();
        assert_eq!(recorded(&edited), None);
    }
}
