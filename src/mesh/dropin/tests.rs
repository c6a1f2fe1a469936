use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use serde_json::json;

use super::*;
use crate::index::IstioPicks;
use crate::mock_api::{hold_open, ok};

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

/// The watch lists ServiceEntries of all namespaces, in the version the
/// API server serves, and sends the hand-written hosts.
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
    // Asked which version to read in first: only v1beta1 here.
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(request.uri().path(), "/apis/networking.istio.io");
    send.send_response(ok(&json!({"kind": "APIGroup", "apiVersion": "v1",
        "name": "networking.istio.io",
        "versions": [{"groupVersion": "networking.istio.io/v1beta1", "version": "v1beta1"}]})));
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(
        request.uri().path(),
        "/apis/networking.istio.io/v1beta1/serviceentries"
    );
    let query = request.uri().query().unwrap_or_default().to_string();
    assert!(
        !query.contains("labelSelector"),
        "every entry, globaldns's own too: {query}"
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

fn at(
    namespace: &str,
    name: &str,
    created: &str,
    owned: bool,
    hosts: &[&str],
) -> Arc<DynamicObject> {
    let mut value = entry(
        namespace,
        name,
        json!({"hosts": hosts, "addresses": ["240.1.0.9"]}),
    );
    value["metadata"]["creationTimestamp"] = json!(created);
    if owned {
        value["metadata"]["labels"] = json!({"app.kubernetes.io/managed-by": "globaldns"});
    }
    Arc::new(serde_json::from_value(value).unwrap())
}

/// Issue 24: Istio 1.30+ routes a host two ServiceEntries claim by the
/// older one (creation time, then name, then namespace). globaldns's own
/// entries are not answered as hand-written; a hand-written one beside
/// them says which of the two Istio uses.
#[test]
fn each_hand_written_host_says_whether_istio_prefers_it_to_ours() {
    let objects = [
        at(
            "istio-system",
            "httpbin-bar-global",
            "2026-12-01T10:00:00Z",
            true,
            &["httpbin.bar.global"],
        ),
        at(
            "istio-system",
            "sleep-foo-global",
            "2026-12-01T10:00:00Z",
            true,
            &["sleep.foo.global"],
        ),
        at(
            "istio-system",
            "tie-global",
            "2026-12-01T10:00:00Z",
            true,
            &["tie.global"],
        ),
        // Made before globaldns's: Istio routes by it.
        at(
            "bar",
            "legacy-httpbin",
            "2026-11-01T00:00:00Z",
            false,
            &["HTTPBIN.bar.global."],
        ),
        // Made after: Istio routes by globaldns's.
        at(
            "foo",
            "late-sleep",
            "2026-12-02T00:00:00Z",
            false,
            &["sleep.foo.global"],
        ),
        // The same second: the name decides (`a-tie` < `tie-global`).
        at(
            "team",
            "a-tie",
            "2026-12-01T10:00:00Z",
            false,
            &["tie.global"],
        ),
        at(
            "team",
            "alone",
            "2026-12-02T00:00:00Z",
            false,
            &["alone.global"],
        ),
    ];
    let hosts = hand_written(&objects);
    let picks: Vec<(&str, Option<IstioPicks>)> = hosts
        .iter()
        .map(|h| (h.host.as_str(), h.beside_ours.clone()))
        .collect();
    assert_eq!(
        picks,
        [
            ("httpbin.bar.global", Some(IstioPicks::HandWritten)),
            (
                "sleep.foo.global",
                Some(IstioPicks::Ours("istio-system/sleep-foo-global".into()))
            ),
            ("tie.global", Some(IstioPicks::HandWritten)),
            ("alone.global", None),
        ]
    );
}
