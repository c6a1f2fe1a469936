//! The watch against a mock API server (tower-test) that checks each
//! request: the lists and watches of both kinds in the namespace, a
//! malformed object skipped, and a change seen through the watch.

use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

use super::*;
use crate::mock_api::{hold_open, status};
use crate::registry::kube::resources::MeshCluster;
use kube::api::DynamicObject;

const NS: &str = "mesh";

/// The local cluster only, no peers.
fn config() -> WatchConfig {
    WatchConfig {
        namespace: NS.to_string(),
        zones: vec!["global".to_string()],
        cluster: String::new(),
        peer_files: Vec::new(),
        peer_secrets: false,
        peer_stale_after: Duration::from_secs(600),
        remembered: None,
    }
}

/// The answer of an API server without the MCS API to its discovery.
fn no_mcs(path: &str) -> Option<Response<Body>> {
    (path == "/apis/multicluster.x-k8s.io").then(|| status(404, "NotFound"))
}

fn object(kind: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "globaldns.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": NS, "resourceVersion": "1"},
        "spec": spec,
    })
}

fn list(kind: &str, items: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "globaldns.io/v1alpha1",
        "kind": format!("{kind}List"),
        "metadata": {"resourceVersion": "1"},
        "items": items,
    }))
    .unwrap()
}

fn service(name: &str, from: &str) -> Value {
    object(
        "ExportedService",
        name,
        json!({"name": name, "namespace": "bar", "exportedFrom": [from],
               "ports": [{"name": "http", "number": 80, "protocol": "HTTP"}]}),
    )
}

/// Answers the watcher's requests: asserts each URL, lists the objects,
/// sends one ADDED event on the first ExportedService watch, and holds
/// every other watch open.
async fn api_server(mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>) {
    let mut service_watches = 0;
    loop {
        let Some((request, send)) = handle.next_request().await else {
            return;
        };
        assert_eq!(request.method(), http::Method::GET);
        let path = request.uri().path().to_string();
        if let Some(answer) = no_mcs(&path) {
            send.send_response(answer);
            continue;
        }
        let query = request.uri().query().unwrap_or_default().to_string();
        let kind = match path.as_str() {
            "/apis/globaldns.io/v1alpha1/namespaces/mesh/meshclusters" => "MeshCluster",
            "/apis/globaldns.io/v1alpha1/namespaces/mesh/exportedservices" => "ExportedService",
            other => panic!("unexpected request to {other}?{query}"),
        };
        if !query.contains("watch=true") {
            let body = if kind == "MeshCluster" {
                list(
                    kind,
                    vec![
                        object(
                            "MeshCluster",
                            "west",
                            json!({"gateways": [{"address": "192.0.2.1"}]}),
                        ),
                        // Malformed: gateways must be a list.
                        object("MeshCluster", "broken", json!({"gateways": "192.0.2.9"})),
                    ],
                )
            } else {
                list(
                    kind,
                    vec![service("httpbin", "west"), service("orphan", "mars")],
                )
            };
            send.send_response(Response::builder().body(Body::from(body)).unwrap());
            continue;
        }
        assert!(
            query.contains("resourceVersion=1"),
            "watch from the list's version: {query}"
        );
        if kind == "ExportedService" && service_watches == 0 {
            service_watches += 1;
            let event = json!({"type": "ADDED", "object": service("sleep", "west")});
            let mut body = serde_json::to_vec(&event).unwrap();
            body.push(b'\n');
            send.send_response(Response::builder().body(Body::from(body)).unwrap());
        } else {
            // Hold the watch open: answer only when the test is long over.
            hold_open(send);
        }
    }
}

#[tokio::test]
async fn the_registry_follows_the_resources_and_skips_bad_ones() {
    let (mock, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(mock, "default");
    tokio::spawn(api_server(handle));
    let (tx, mut rx) = mpsc::channel(4);
    let shutdown = CancellationToken::new();
    tokio::spawn(run(
        client,
        config(),
        tx,
        Default::default(),
        shutdown.clone(),
    ));

    let mut hosts = Vec::new();
    // The first registry may come before or after the watch event; wait
    // until the added service shows.
    for _ in 0..3 {
        let registry = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a registry within 10 s")
            .expect("the watch runs")
            .expect("the watch sends registries, not errors");
        assert_eq!(
            registry
                .clusters
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["west"],
            "the malformed cluster is skipped, the good one kept"
        );
        hosts = registry.services.iter().map(|s| s.host("global")).collect();
        if hosts.len() == 2 {
            break;
        }
    }
    assert_eq!(
        hosts,
        ["httpbin.bar.global", "sleep.bar.global"],
        "orphan skipped, sleep added"
    );
    shutdown.cancel();
}

/// List items may come without apiVersion and kind (the API server drops
/// them from items of some lists): decoding must not need them.
#[test]
fn objects_decode_without_type_fields() {
    let object: DynamicObject = serde_json::from_value(json!({
        "metadata": {"name": "west", "namespace": NS},
        "spec": {"gateways": [{"address": "192.0.2.1"}]},
    }))
    .unwrap();
    let cluster: MeshCluster = crate::registry::kube::cluster_watch::decode(&object).unwrap();
    assert_eq!(cluster.spec.gateways[0].port, 15443);
}

/// Issue 5 fault tests on the Kubernetes path: the API server failing at
/// start (500), then a watch ending in 410 Gone (an ERROR event). The watcher backs off
/// and retries, relists after the 410, and the registry arrives; nothing
/// is sent before both lists are in.
#[tokio::test]
async fn api_errors_and_410_gone_are_retried_and_relisted() {
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let (tx, mut rx) = mpsc::channel(4);
    let shutdown = CancellationToken::new();
    tokio::spawn(run(
        Client::new(mock, "default"),
        config(),
        tx,
        Default::default(),
        shutdown.clone(),
    ));
    let counts = std::sync::Arc::new(std::sync::Mutex::new((0usize, 0usize, 0usize)));
    let seen = counts.clone();
    tokio::spawn(async move {
        let mut cluster_lists = 0;
        loop {
            let Some((request, send)) = handle.next_request().await else {
                return;
            };
            let path = request.uri().path().to_string();
            if let Some(answer) = no_mcs(&path) {
                send.send_response(answer);
                continue;
            }
            let query = request.uri().query().unwrap_or_default().to_string();
            let clusters = path.ends_with("/meshclusters");
            if query.contains("watch=true") {
                if clusters && seen.lock().unwrap().2 == 0 {
                    seen.lock().unwrap().2 += 1;
                    // As the API server says it: an ERROR event in the stream.
                    let event = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
                        "status": "Failure", "reason": "Expired", "code": 410,
                        "message": "too old resource version"}});
                    let mut body = serde_json::to_vec(&event).unwrap();
                    body.push(b'\n');
                    send.send_response(Response::builder().body(Body::from(body)).unwrap());
                } else {
                    hold_open(send);
                }
                continue;
            }
            if clusters {
                cluster_lists += 1;
                seen.lock().unwrap().0 = cluster_lists;
                if cluster_lists == 1 {
                    // The API server is down at start.
                    send.send_response(status(500, "InternalError"));
                    continue;
                }
                let item = object(
                    "MeshCluster",
                    "west",
                    json!({"gateways": [{"address": "192.0.2.1"}]}),
                );
                send.send_response(
                    Response::builder()
                        .body(Body::from(list("MeshCluster", vec![item])))
                        .unwrap(),
                );
            } else {
                seen.lock().unwrap().1 += 1;
                let body = list("ExportedService", vec![service("httpbin", "west")]);
                send.send_response(Response::builder().body(Body::from(body)).unwrap());
            }
        }
    });
    let registry = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("a registry despite the errors")
        .unwrap()
        .unwrap();
    assert_eq!(registry.services.len(), 1);
    assert_eq!(registry.clusters.len(), 1);
    // The 410 on the clusters' watch makes the watcher list again.
    let relisted = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if counts.lock().unwrap().0 >= 3 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        relisted.is_ok(),
        "lists of clusters: {:?}",
        counts.lock().unwrap()
    );
    shutdown.cancel();
}

/// Issue 10: after an outage the watch came back only ~80 s after the API
/// server did: kube's default backoff had grown to 30 s while the watch
/// kept failing, and the 410 Gone on the resumed watch cost a second wait.
/// Now retries are at most 5 s apart and a 410 relists at once (measured
/// in paused, virtual time).
#[tokio::test(start_paused = true)]
async fn retries_stay_within_seconds_and_a_410_relists_at_once() {
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let (tx, _rx) = mpsc::channel(4);
    let shutdown = CancellationToken::new();
    tokio::spawn(run(
        Client::new(mock, "default"),
        config(),
        tx,
        Default::default(),
        shutdown.clone(),
    ));
    let mut watch_attempts = Vec::new();
    let mut gone_at = None;
    let mut relisted_after_gone = None;
    while relisted_after_gone.is_none() {
        let (request, send) = crate::mock_api::next(&mut handle).await;
        if let Some(answer) = no_mcs(request.uri().path()) {
            send.send_response(answer);
            continue;
        }
        let clusters = request.uri().path().ends_with("/meshclusters");
        let watching = request
            .uri()
            .query()
            .unwrap_or_default()
            .contains("watch=true");
        let now = tokio::time::Instant::now();
        match (clusters, watching) {
            (false, false) => {
                let body = list("ExportedService", vec![]);
                send.send_response(Response::builder().body(Body::from(body)).unwrap());
            }
            (false, true) => hold_open(send),
            (true, false) => {
                if let Some(at) = gone_at {
                    relisted_after_gone = Some(now - at);
                }
                send.send_response(
                    Response::builder()
                        .body(Body::from(list("MeshCluster", vec![])))
                        .unwrap(),
                );
            }
            (true, true) if watch_attempts.len() < 10 => {
                // The API server is down: ten failed watches in a row.
                watch_attempts.push(now);
                send.send_response(status(503, "ServiceUnavailable"));
            }
            (true, true) => {
                // Back, but the resumed watch is too old: 410 in the stream.
                watch_attempts.push(now);
                gone_at = Some(now);
                let event = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
                    "status": "Failure", "reason": "Expired", "code": 410,
                    "message": "too old resource version"}});
                let mut body = serde_json::to_vec(&event).unwrap();
                body.push(b'\n');
                send.send_response(Response::builder().body(Body::from(body)).unwrap());
            }
        }
    }
    let gaps: Vec<Duration> = watch_attempts.windows(2).map(|w| w[1] - w[0]).collect();
    let longest = gaps.iter().max().copied().unwrap_or_default();
    assert!(longest <= crate::watch::RETRY_MAX, "retries {gaps:?}");
    assert!(
        relisted_after_gone.unwrap() < Duration::from_millis(50),
        "relisted {relisted_after_gone:?} after the 410"
    );
    shutdown.cancel();
}

/// Issue 15: a cluster serving the MCS API exports a Service by a
/// `ServiceExport` next to it. Discovery failing (503) is retried rather
/// than taken for "no MCS"; the first registry already holds the MCS
/// export (its lists are awaited like the registry resources'), and a
/// ServiceExport without its Service is left out.
#[tokio::test]
async fn a_service_export_exports_its_service_with_its_ports() {
    service_export_read_in(&["v1alpha1"], "v1alpha1").await;
}

/// Issue 24: the MCS API's storage version is v1beta1 since mcs-api
/// v0.5.0 (April 2026); a cluster that serves it has its ServiceExports
/// read in it, and one that serves only v1alpha1 (above) in that.
#[tokio::test]
async fn service_exports_are_read_in_the_newest_mcs_version_served() {
    service_export_read_in(&["v1beta1", "v1alpha1"], "v1beta1").await;
    service_export_read_in(&["v1beta1"], "v1beta1").await;
}

/// The MCS export test against an API server whose discovery lists
/// `served` versions of the MCS API; the ServiceExports must be listed in
/// `read_in`.
async fn service_export_read_in(served: &'static [&'static str], read_in: &'static str) {
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let (tx, mut rx) = mpsc::channel(4);
    let shutdown = CancellationToken::new();
    let mut config = config();
    config.cluster = "west".to_string();
    tokio::spawn(run(
        Client::new(mock, "default"),
        config,
        tx,
        Default::default(),
        shutdown.clone(),
    ));
    let discoveries = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = discoveries.clone();
    tokio::spawn(async move {
        loop {
            let Some((request, send)) = handle.next_request().await else {
                return;
            };
            let path = request.uri().path().to_string();
            let query = request.uri().query().unwrap_or_default().to_string();
            if query.contains("watch=true") {
                hold_open(send);
                continue;
            }
            let exports_path = format!("/apis/multicluster.x-k8s.io/{read_in}/serviceexports");
            let body = match path.as_str() {
                "/apis/multicluster.x-k8s.io" => {
                    if counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                        send.send_response(status(503, "ServiceUnavailable"));
                        continue;
                    }
                    let versions: Vec<Value> = served
                        .iter()
                        .map(|v| json!({"groupVersion": format!("multicluster.x-k8s.io/{v}"), "version": v}))
                        .collect();
                    json!({"kind": "APIGroup", "apiVersion": "v1",
                           "name": "multicluster.x-k8s.io", "versions": versions})
                }
                "/apis/globaldns.io/v1alpha1/namespaces/mesh/meshclusters" => json!({
                    "kind": "MeshClusterList", "apiVersion": "globaldns.io/v1alpha1",
                    "metadata": {"resourceVersion": "1"},
                    "items": [object("MeshCluster", "west", json!({"gateways": [{"address": "192.0.2.1"}]}))],
                }),
                "/apis/globaldns.io/v1alpha1/namespaces/mesh/exportedservices" => json!({
                    "kind": "ExportedServiceList", "apiVersion": "globaldns.io/v1alpha1",
                    "metadata": {"resourceVersion": "1"}, "items": [],
                }),
                p if p == exports_path => json!({
                    "kind": "ServiceExportList", "apiVersion": format!("multicluster.x-k8s.io/{read_in}"),
                    "metadata": {"resourceVersion": "1"},
                    "items": [
                        {"metadata": {"name": "reviews", "namespace": "bookinfo", "resourceVersion": "1"}},
                        {"metadata": {"name": "ghost", "namespace": "bookinfo", "resourceVersion": "1"}},
                    ],
                }),
                "/api/v1/services" => json!({
                    "kind": "ServiceList", "apiVersion": "v1",
                    "metadata": {"resourceVersion": "1"},
                    "items": [{
                        "metadata": {"name": "reviews", "namespace": "bookinfo", "resourceVersion": "1"},
                        "spec": {"ports": [{"name": "http", "port": 9080, "protocol": "TCP"}]},
                    }],
                }),
                other => panic!("unexpected request to {other}?{query}"),
            };
            send.send_response(crate::mock_api::ok(&body));
        }
    });
    let registry = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("a registry")
        .unwrap()
        .unwrap();
    type Described = (String, Vec<String>, Vec<(String, u32, String)>);
    let services: Vec<Described> = registry
        .services
        .iter()
        .map(|s| {
            (
                s.host("global").to_string(),
                s.exported_from.iter().map(|c| c.to_string()).collect(),
                s.ports
                    .iter()
                    .map(|p| (p.name().to_string(), p.number, p.protocol().to_string()))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        services,
        [(
            "reviews.bookinfo.global".to_string(),
            vec!["west".to_string()],
            vec![("http".to_string(), 9080, "HTTP".to_string())]
        )]
    );
    assert!(
        discoveries.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "a failed discovery is retried"
    );
    shutdown.cancel();
}

/// Issue 15: a restart while a peer is unreachable keeps what it said:
/// its MeshCluster and its exports, as exported by it alone (what other
/// clusters say of a service is theirs to say).
#[test]
fn a_peer_is_remembered_from_the_last_known_good_registry() {
    let registry = crate::registry::load_str(
        "clusters:\n\
         - {name: east, gateways: [{address: 192.0.2.1}]}\n\
         - {name: west, gateways: [{address: 192.0.2.2}]}\n\
         services:\n\
         - {name: a, namespace: x, exportedFrom: [west], ports: [{name: http, number: 80, protocol: HTTP}]}\n\
         - {name: b, namespace: x, exportedFrom: [east, west], ports: [{name: http, number: 80, protocol: HTTP}]}\n\
         - {name: c, namespace: x, exportedFrom: [east], ports: [{name: http, number: 80, protocol: HTTP}]}\n",
        "test",
        &["global".to_string()],
    )
    .unwrap();
    let view = remembered(&registry, "west");
    assert_eq!(view.cluster, "west");
    assert!(!view.local);
    let clusters: Vec<_> = view.clusters.iter().map(|c| c.name.clone()).collect();
    assert_eq!(clusters, ["west"]);
    let services: Vec<_> = view
        .services
        .iter()
        .map(|s| (s.spec.name.clone(), s.spec.exported_from.clone()))
        .collect();
    assert_eq!(
        services,
        [
            ("a".to_string(), vec!["west".to_string()]),
            ("b".to_string(), vec!["west".to_string()])
        ]
    );
}

/// Issue 15: restarted while a peer is down, the first registry comes as
/// soon as the local lists are in (a peer that fails is not waited for),
/// and the peer's part of the last-known-good registry stands for it.
#[tokio::test]
async fn an_unreachable_peer_is_not_waited_for_and_is_remembered() {
    let (mock, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(api_server(handle));
    // Nothing listens on port 1 of loopback: every request is refused.
    let kubeconfig = "apiVersion: v1\nkind: Config\nclusters:\n- name: west\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: west\n  context:\n    cluster: west\n    namespace: globaldns\ncurrent-context: west\nusers: []\n";
    let mut config = config();
    config.peer_files =
        vec![crate::registry::kube::peers::Peer::new("west", kubeconfig, "test").unwrap()];
    config.remembered = Some(
        crate::registry::load_str(
            "clusters:\n- {name: west, gateways: [{address: 192.0.2.1}]}\n\
             services:\n- {name: remembered, namespace: bar, exportedFrom: [west], ports: [{name: http, number: 80, protocol: HTTP}]}\n",
            "test",
            &["global".to_string()],
        )
        .unwrap(),
    );
    let (tx, mut rx) = mpsc::channel(4);
    let shutdown = CancellationToken::new();
    let started = std::time::Instant::now();
    tokio::spawn(run(
        Client::new(mock, "default"),
        config,
        tx,
        Default::default(),
        shutdown.clone(),
    ));
    let registry = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("a registry")
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() < PEER_START_WAIT,
        "waited {:?} for a peer that refuses",
        started.elapsed()
    );
    let hosts: Vec<String> = registry
        .services
        .iter()
        .map(|s| s.host("global").to_string())
        .collect();
    assert!(
        hosts.contains(&"remembered.bar.global".to_string()),
        "{hosts:?}"
    );
    shutdown.cancel();
}
