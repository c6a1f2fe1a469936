use serde_json::json;

use super::*;
use crate::registry::load_str;

/// West's word wins (its own export, and it sorts before `zeta`), with
/// http/8000; `zeta` is left out of the exporters.
const MERGED: &str = "\
clusters:
  - name: west
    gateways: [{address: 192.0.2.2}]
  - name: zeta
    gateways: [{address: 192.0.2.3}]
services:
  - name: httpbin
    namespace: bar
    exportedFrom: [west]
    ports: [{name: http, number: 8000, protocol: HTTP}]
";

fn registry() -> Registry {
    load_str(MERGED, "test.yaml", &["global".to_string()]).unwrap()
}

fn service(kind: Option<&str>, ports: Value) -> KubeService {
    serde_json::from_value(json!({
        "metadata": {"name": "httpbin", "namespace": "bar"},
        "spec": {"type": kind, "ports": ports},
    }))
    .unwrap()
}

fn said(conditions: &[Condition; 3]) -> Vec<(&str, &str, &str)> {
    conditions
        .iter()
        .map(|c| (c.kind.as_str(), c.status.as_str(), c.reason.as_str()))
        .collect()
}

/// Issue 29 (2): an export the merge took is Valid, Ready (Exported),
/// without conflict.
#[test]
fn an_exported_service_is_valid_ready_and_without_conflict() {
    let http = service(None, json!([{"name": "http", "port": 8000}]));
    let got = conditions("west", "bar", "httpbin", Some(&http), &registry());
    assert_eq!(
        said(&got),
        [
            ("Valid", "True", "Valid"),
            ("Ready", "True", "Exported"),
            ("Conflict", "False", "NoConflicts")
        ]
    );
}

/// The spec's `False` reasons: no Service, an ExternalName Service, and
/// (our own reason) a Service with no TCP port; each not Ready (Failed),
/// saying why.
#[test]
fn an_invalid_export_says_why_and_is_not_ready() {
    let r = registry();
    let none = conditions("west", "bar", "httpbin", None, &r);
    assert_eq!(
        said(&none)[..2],
        [
            ("Valid", "False", "NoService"),
            ("Ready", "False", "Failed")
        ]
    );
    assert!(
        none[1].message.contains("no Service bar/httpbin"),
        "{}",
        none[1].message
    );
    let external = service(Some("ExternalName"), json!([{"name": "http", "port": 80}]));
    let got = conditions("west", "bar", "httpbin", Some(&external), &r);
    assert_eq!(said(&got)[0], ("Valid", "False", "InvalidServiceType"));
    let udp = service(
        None,
        json!([{"name": "dns", "port": 53, "protocol": "UDP"}]),
    );
    let got = conditions("west", "bar", "httpbin", Some(&udp), &r);
    assert_eq!(said(&got)[0], ("Valid", "False", "NoExportablePort"));
    assert_eq!(said(&got)[2], ("Conflict", "False", "NoConflicts"));
}

/// A cluster the merge left out (its ports differ from the winner's) has
/// a PortConflict naming the winning definition, and is not Ready.
#[test]
fn a_cluster_left_out_by_the_merge_has_a_port_conflict() {
    let other = service(None, json!([{"name": "http", "port": 9999}]));
    let got = conditions("zeta", "bar", "httpbin", Some(&other), &registry());
    assert_eq!(
        said(&got)[1..],
        [
            ("Ready", "False", "Failed"),
            ("Conflict", "True", "PortConflict")
        ]
    );
    assert!(
        got[2].message.contains("http/8000, exported by west"),
        "{}",
        got[2].message
    );
}

/// Not in the published registry at all: Pending, not Failed.
#[test]
fn an_export_not_yet_published_is_pending() {
    let http = service(None, json!([{"name": "http", "port": 8000}]));
    let got = conditions("west", "other", "httpbin", Some(&http), &registry());
    assert_eq!(said(&got)[1], ("Ready", "False", "Pending"));
}

/// A condition whose status stays keeps its time; a changed one takes the
/// new time; nothing changed is no write.
#[test]
fn settling_keeps_the_times_of_conditions_that_did_not_move() {
    let http = service(None, json!([{"name": "http", "port": 8000}]));
    let wanted = conditions("west", "bar", "httpbin", Some(&http), &registry());
    let first = settle(wanted.clone(), &[], 1, "2026-12-07T10:00:00Z").expect("a first write");
    assert!(
        first
            .iter()
            .all(|c| c.last_transition_time == "2026-12-07T10:00:00Z")
    );
    assert!(first.iter().all(|c| c.observed_generation == 1));
    assert_eq!(
        settle(wanted.clone(), &first, 1, "2026-12-07T11:00:00Z"),
        None
    );
    // The Service goes away: Valid and Ready move, Conflict stays.
    let gone = conditions("west", "bar", "httpbin", None, &registry());
    let second = settle(gone, &first, 1, "2026-12-07T12:00:00Z").expect("a change");
    let times: Vec<&str> = second
        .iter()
        .map(|c| c.last_transition_time.as_str())
        .collect();
    assert_eq!(
        times,
        [
            "2026-12-07T12:00:00Z",
            "2026-12-07T12:00:00Z",
            "2026-12-07T10:00:00Z"
        ]
    );
    // A new generation of the export is a write, times kept.
    let third = settle(wanted, &first, 2, "2026-12-07T13:00:00Z").expect("a new generation");
    assert!(
        third
            .iter()
            .all(|c| c.last_transition_time == "2026-12-07T10:00:00Z")
    );
    assert_eq!(listed(&json!({"conditions": third})), third);
}

/// One pass against a mock API server that asserts each request: the
/// lists, then one status apply for the export whose conditions changed
/// (server-side, field manager globaldns, the status subresource), none
/// for the one that already says it all.
#[tokio::test]
async fn a_pass_applies_only_the_statuses_that_changed() {
    use http::{Request, Response};
    use kube::client::Body;

    use crate::mock_api::{next, ok};

    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(mock, "default");
    let registry = registry();
    let http = service(None, json!([{"name": "http", "port": 8000}]));
    let settled = settle(
        conditions("west", "bar", "httpbin", Some(&http), &registry),
        &[],
        1,
        "2026-12-07T10:00:00Z",
    )
    .unwrap();
    let pass =
        tokio::spawn(
            async move { sync_once(&client, "v1beta1", "west", &registry, &|| true).await },
        );
    let export = |name: &str, status: Value| {
        json!({"apiVersion": "multicluster.x-k8s.io/v1beta1", "kind": "ServiceExport",
               "metadata": {"name": name, "namespace": "bar", "generation": 1},
               "status": status})
    };
    let (request, send) = next(&mut handle).await;
    assert_eq!(
        request.uri().path(),
        "/apis/multicluster.x-k8s.io/v1beta1/serviceexports"
    );
    send.send_response(ok(&json!({"apiVersion": "v1", "kind": "List", "items": [
        export("httpbin", json!({"conditions": settled})),
        export("orphan", json!({})),
    ]})));
    let (request, send) = next(&mut handle).await;
    assert_eq!(request.uri().path(), "/api/v1/services");
    let mut kube_service = serde_json::to_value(&http).unwrap();
    kube_service["metadata"] = json!({"name": "httpbin", "namespace": "bar"});
    send.send_response(ok(
        &json!({"apiVersion": "v1", "kind": "List", "items": [kube_service]}),
    ));

    // Only the orphan's status is written.
    let (request, send) = next(&mut handle).await;
    assert_eq!(request.method(), http::Method::PATCH);
    assert_eq!(
        request.uri().path(),
        "/apis/multicluster.x-k8s.io/v1beta1/namespaces/bar/serviceexports/orphan/status"
    );
    let query = request.uri().query().unwrap().to_string();
    assert!(
        query.contains("fieldManager=globaldns") && query.contains("force=true"),
        "{query}"
    );
    assert_eq!(
        request.headers()["content-type"],
        "application/apply-patch+yaml"
    );
    let body = request.into_body().collect_bytes().await.unwrap();
    let sent: Value = serde_json::from_slice(&body).unwrap();
    let written = listed(&sent["status"]);
    assert_eq!(
        written
            .iter()
            .map(|c| (c.kind.as_str(), c.reason.as_str()))
            .collect::<Vec<_>>(),
        [
            ("Valid", "NoService"),
            ("Ready", "Failed"),
            ("Conflict", "NoConflicts")
        ]
    );
    assert!(
        written
            .iter()
            .all(|c| c.observed_generation == 1 && !c.last_transition_time.is_empty())
    );
    send.send_response(Response::builder().body(Body::from(body.to_vec())).unwrap());

    let report = tokio::time::timeout(std::time::Duration::from_secs(5), pass)
        .await
        .expect("the pass ends")
        .unwrap();
    assert_eq!(
        (report.applied, report.failures.len()),
        (1, 0),
        "{report:?}"
    );
}
