use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use serde_json::json;

use super::*;
use crate::k8s::mock::{hold_open, ok};

fn entry(namespace: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
           "metadata": {"name": name, "namespace": namespace, "resourceVersion": "3"},
           "spec": spec})
}

#[test]
fn hosts_with_addresses_are_taken_the_rest_left_out() {
    let object: DynamicObject = serde_json::from_value(entry(
        "istio-system",
        "legacy",
        json!({"hosts": ["Legacy.DB.global.", "*.ext.global"], "addresses": ["240.1.0.1", "240.2.0.0/16"]}),
    ))
    .unwrap();
    let hosts = hosts_of(&object);
    assert_eq!(hosts.len(), 2);
    assert_eq!(hosts[0].host, "legacy.db.global");
    assert_eq!(hosts[1].host, "*.ext.global");
    assert_eq!(
        hosts[0].addresses,
        ["240.1.0.1".parse::<IpAddr>().unwrap()],
        "CIDRs left out"
    );
    assert_eq!(hosts[0].source, "istio-system/legacy");
    let no_addresses: DynamicObject =
        serde_json::from_value(entry("a", "b", json!({"hosts": ["x.global"]}))).unwrap();
    assert!(hosts_of(&no_addresses).is_empty());
}

/// The watch lists ServiceEntries of all namespaces, excluding ours by
/// label selector, and sends their hosts.
#[tokio::test]
async fn the_watch_sends_hand_written_hosts() {
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let (tx, mut rx) = mpsc::channel(2);
    let shutdown = CancellationToken::new();
    tokio::spawn(run(
        kube::Client::new(mock, "default"),
        tx,
        shutdown.clone(),
    ));
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(
        request.uri().path(),
        "/apis/networking.istio.io/v1/serviceentries"
    );
    let query = request.uri().query().unwrap_or_default().to_string();
    assert!(
        query.contains("labelSelector=app.kubernetes.io%2Fmanaged-by%21%3Dglobaldns"),
        "{query}"
    );
    let list = json!({"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntryList",
        "metadata": {"resourceVersion": "3"},
        "items": [entry("istio-system", "legacy", json!({"hosts": ["legacy.db.global"], "addresses": ["240.1.0.1"]}))]});
    send.send_response(ok(&list));
    // Hold the watch open.
    tokio::spawn(async move {
        if let Some((_, send)) = handle.next_request().await {
            hold_open(send);
        }
    });
    let hosts = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].host, "legacy.db.global");
    shutdown.cancel();
}
