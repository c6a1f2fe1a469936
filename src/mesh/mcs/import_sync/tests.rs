use serde_json::json;

use super::*;
use crate::mesh::Metadata;
use crate::mesh::mcs::service_import::{ClusterStatus, ServiceImportSpec, ServiceImportStatus};

fn import(namespace: &str, name: &str, ip: &str, clusters: &[&str]) -> ServiceImport {
    ServiceImport {
        api_version: "multicluster.x-k8s.io/v1beta1".to_string(),
        kind: KIND.to_string(),
        metadata: Metadata::owned(name.to_string(), namespace),
        spec: ServiceImportSpec {
            kind: "ClusterSetIP".to_string(),
            ips: vec![ip.to_string()],
            ports: vec![crate::mesh::mcs::service_import::ServicePort {
                name: "http".to_string(),
                protocol: "TCP".to_string(),
                app_protocol: Some("http".to_string()),
                port: 80,
            }],
        },
        status: ServiceImportStatus {
            clusters: clusters
                .iter()
                .map(|c| ClusterStatus {
                    cluster: c.to_string(),
                })
                .collect(),
        },
    }
}

/// `import` as the API server lists it after globaldns applied it (both
/// managedFields entries), with `edit` applied to the listed JSON.
fn listed(import: &ServiceImport, owned: bool, edit: impl Fn(&mut Value)) -> Existing {
    let mut value = serde_json::to_value(import).unwrap();
    if !owned {
        value["metadata"]["labels"] = json!({});
    }
    value["metadata"]["managedFields"] = json!([
        {"manager": "globaldns", "operation": "Apply", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:metadata": {"f:labels": {"f:app.kubernetes.io/managed-by": {}}},
                      "f:spec": {"f:type": {}, "f:ips": {}, "f:ports": {}}}},
        {"manager": "globaldns", "operation": "Apply", "subresource": "status",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:clusters": {}}}},
    ]);
    edit(&mut value);
    Existing::from_object(&serde_json::from_value(value).unwrap())
}

fn at(namespace: &str, name: &str) -> ImportRef {
    ImportRef {
        namespace: namespace.to_string(),
        name: name.to_string(),
    }
}

/// A new import gets its spec and its status; one the cluster holds as
/// applied gets nothing, pass after pass (atomic lists compared whole).
#[test]
fn new_imports_are_written_and_settled_ones_left_alone() {
    let a = import("bar", "httpbin", "240.0.0.1", &["west"]);
    let plan = plan(std::slice::from_ref(&a), &[], 0.5);
    assert_eq!(
        plan.write,
        [Write {
            import: a.clone(),
            spec: true,
            status: true
        }]
    );
    let plan = super::plan(std::slice::from_ref(&a), &[listed(&a, true, |_| {})], 0.5);
    assert_eq!(plan, Plan::default());
}

/// A changed address is a spec write; a new exporter a status write only;
/// an address the pool took back (no `ips`) is applied away.
#[test]
fn drift_is_judged_on_spec_and_status_apart() {
    let a = import("bar", "httpbin", "240.0.0.1", &["west"]);
    let moved = import("bar", "httpbin", "240.0.0.2", &["west"]);
    let plan = plan(
        std::slice::from_ref(&moved),
        &[listed(&a, true, |_| {})],
        0.5,
    );
    assert_eq!((plan.write[0].spec, plan.write[0].status), (true, false));
    let more = import("bar", "httpbin", "240.0.0.1", &["east", "west"]);
    let plan = super::plan(
        std::slice::from_ref(&more),
        &[listed(&a, true, |_| {})],
        0.5,
    );
    assert_eq!((plan.write[0].spec, plan.write[0].status), (false, true));
    let mut full = a.clone();
    full.spec.ips.clear();
    let held = listed(&a, true, |_| {});
    let plan = super::plan(std::slice::from_ref(&full), &[held], 0.5);
    assert!(plan.write[0].spec, "the owned `ips` must be applied away");
    // A port edited by hand in the cluster is put back.
    let edited = listed(&a, true, |v| v["spec"]["ports"][0]["port"] = json!(81));
    let plan = super::plan(std::slice::from_ref(&a), &[edited], 0.5);
    assert!(plan.write[0].spec);
}

/// Another implementation's ServiceImport of the same name is a conflict:
/// never written over, never deleted.
#[test]
fn an_unowned_import_is_a_conflict_left_alone() {
    let a = import("bar", "httpbin", "240.0.0.1", &["west"]);
    let theirs = listed(&a, false, |_| {});
    let other = listed(&import("baz", "other", "10.0.0.1", &[]), false, |_| {});
    let plan = plan(std::slice::from_ref(&a), &[theirs, other], 0.5);
    assert!(plan.write.is_empty() && plan.delete.is_empty());
    assert_eq!(plan.conflicts, [at("bar", "httpbin")]);
}

/// Owned imports no longer wanted are deleted within the brake; beyond it
/// none is, and they are named as held back. Namespaces tell imports of
/// the same name apart.
#[test]
fn unwanted_imports_are_deleted_within_the_brake() {
    let keep = import("bar", "httpbin", "240.0.0.1", &["west"]);
    let gone = import("foo", "httpbin", "240.0.0.3", &["west"]);
    let existing = [listed(&keep, true, |_| {}), listed(&gone, true, |_| {})];
    let plan = plan(std::slice::from_ref(&keep), &existing, 0.5);
    assert_eq!(plan.delete, [at("foo", "httpbin")]);
    assert!(plan.held_back.is_empty() && plan.write.is_empty());
    let plan = super::plan(&[], &existing, 0.5);
    assert!(plan.delete.is_empty());
    assert_eq!(plan.held_back, [at("bar", "httpbin"), at("foo", "httpbin")]);
    assert_eq!(
        at("foo", "httpbin").to_string(),
        "ServiceImport foo/httpbin"
    );
}

mod requests {
    //! One pass against a mock API server that asserts each request: what
    //! a real API server cannot stage on demand (a 500 on one write).

    use http::{Request, Response};
    use kube::client::Body;
    use serde_json::{Value, json};

    use super::super::*;
    use super::import;
    use crate::mock_api::{next, ok, status};

    const ALL: &str = "/apis/multicluster.x-k8s.io/v1beta1/serviceimports";

    fn path(namespace: &str, name: &str) -> String {
        format!("/apis/multicluster.x-k8s.io/v1beta1/namespaces/{namespace}/serviceimports/{name}")
    }

    /// The list; then per import the spec's apply and the status's apply
    /// (server-side, field manager globaldns, forced); a namespace the
    /// cluster lacks (404) is skipped, not failed; a 500 on one import is
    /// a failure naming it while the others go on.
    #[tokio::test]
    async fn a_pass_applies_spec_then_status_and_skips_absent_namespaces() {
        let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(mock, "default");
        let desired = vec![
            import("bar", "httpbin", "240.0.0.1", &["west"]),
            import("nowhere", "lonely", "240.0.0.2", &["west"]),
            import("baz", "broken", "240.0.0.3", &["west"]),
        ];
        let limits = Limits {
            concurrency: 1,
            qps: None,
        };
        let want = desired.clone();
        let pass = tokio::spawn(async move {
            sync_once(&client, "v1beta1", &want, 0.5, &limits, &|| true).await
        });

        let (request, send) = next(&mut handle).await;
        assert_eq!(
            (request.method(), request.uri().path()),
            (&http::Method::GET, ALL)
        );
        send.send_response(ok(
            &json!({"apiVersion": "v1", "kind": "List", "items": []}),
        ));

        // httpbin: the spec, then the status subresource.
        let (request, send) = next(&mut handle).await;
        assert_eq!(request.method(), http::Method::PATCH);
        assert_eq!(request.uri().path(), path("bar", "httpbin"));
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
        assert_eq!(sent, desired[0].spec_value());
        send.send_response(Response::builder().body(Body::from(body.to_vec())).unwrap());
        let (request, send) = next(&mut handle).await;
        assert_eq!(
            request.uri().path(),
            format!("{}/status", path("bar", "httpbin"))
        );
        let body = request.into_body().collect_bytes().await.unwrap();
        let sent: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(sent, desired[0].status_value());
        send.send_response(Response::builder().body(Body::from(body.to_vec())).unwrap());

        // lonely: its namespace does not exist here.
        let (request, send) = next(&mut handle).await;
        assert_eq!(request.uri().path(), path("nowhere", "lonely"));
        send.send_response(status(404, "NotFound"));

        // broken: the API server fails it.
        let (request, send) = next(&mut handle).await;
        assert_eq!(request.uri().path(), path("baz", "broken"));
        send.send_response(status(500, "InternalError"));
        // Not retried within the pass: the sync loop retries a failed pass.
        let report = tokio::time::timeout(std::time::Duration::from_secs(5), pass)
            .await
            .expect("the pass ends")
            .unwrap()
            .unwrap();
        assert_eq!((report.applied, report.skipped), (1, 1));
        assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
        assert_eq!(
            report.failures[0].to_string(),
            "apply ServiceImport baz/broken (unavailable): 500 InternalError: InternalError"
        );
    }
}
