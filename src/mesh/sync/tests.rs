use std::collections::BTreeMap;
use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

use super::*;
use crate::controller::{Allocated, Settings};
use crate::mesh::service_entry::{
    Location, Resolution, ServiceEntry, ServiceEntrySpec, ServicePort, WorkloadEntry,
};
use crate::mesh::{IstioApiVersion, Metadata, Target};
use crate::metrics::Metrics;
use crate::mock_api::{echo, next, ok, status};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

fn entry(name: &str, vip: &str) -> ServiceEntry {
    ServiceEntry {
        api_version: "networking.istio.io/v1".to_string(),
        kind: "ServiceEntry".to_string(),
        metadata: Metadata {
            name: name.to_string(),
            namespace: "istio-system".to_string(),
            labels: BTreeMap::from([(MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string())]),
        },
        spec: ServiceEntrySpec {
            hosts: vec![name.replace('-', ".")],
            location: Location::MeshInternal,
            resolution: Resolution::Static,
            addresses: vec![vip.to_string()],
            ports: vec![ServicePort {
                name: "http".to_string(),
                number: 80,
                protocol: "HTTP".to_string(),
            }],
            endpoints: vec![WorkloadEntry {
                address: "192.0.2.1".to_string(),
                ports: BTreeMap::from([("http".to_string(), 15443)]),
                ..WorkloadEntry::default()
            }],
            export_to: vec!["*".to_string()],
        },
    }
}

/// One write at a time, unpaced: the order of requests is the plan's.
const SEQUENTIAL: Limits = Limits {
    concurrency: 1,
    qps: None,
};

/// ServiceEntries as the objects a pass is given.
fn objects(entries: &[ServiceEntry]) -> Vec<Object> {
    entries.iter().cloned().map(Object::ServiceEntry).collect()
}

/// The plan for ServiceEntries only.
fn plan_entries(desired: &[ServiceEntry], existing: &[Existing], brake: f64) -> Plan {
    plan(&objects(desired), existing, brake)
}

fn names(refs: &[Ref]) -> Vec<&str> {
    refs.iter().map(|r| r.name.as_str()).collect()
}

/// The API server's discovery of `networking.istio.io`, serving `versions`.
fn istio_group(versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("networking.istio.io/{v}"), "version": v}))
        .collect();
    json!({"kind": "APIGroup", "apiVersion": "v1", "name": "networking.istio.io",
           "versions": versions, "preferredVersion": versions[0]})
}

/// Answers a pass's discovery of `networking.istio.io` with `versions`.
async fn discovery(handle: &mut crate::mock_api::ApiHandle, versions: &[&str]) {
    let (request, send) = next(handle).await;
    assert_eq!(
        (request.method().as_str(), request.uri().path()),
        ("GET", "/apis/networking.istio.io"),
        "a pass starts by asking which versions are served"
    );
    send.send_response(ok(&istio_group(versions)));
}

/// Answers the lists of the kinds after ServiceEntries (Gateways, then
/// DestinationRules) with `items` for Gateways and none for rules.
async fn other_lists(handle: &mut crate::mock_api::ApiHandle, gateways: Vec<Value>) {
    let (request, send) = next(handle).await;
    assert_eq!(
        request.uri().path(),
        "/apis/networking.istio.io/v1/namespaces/istio-system/gateways"
    );
    send.send_response(ok(
        &json!({"apiVersion": "networking.istio.io/v1", "kind": "GatewayList",
        "metadata": {"resourceVersion": "7"}, "items": gateways}),
    ));
    let (request, send) = next(handle).await;
    assert_eq!(
        request.uri().path(),
        "/apis/networking.istio.io/v1/namespaces/istio-system/destinationrules"
    );
    send.send_response(ok(
        &json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRuleList",
        "metadata": {"resourceVersion": "7"}, "items": []}),
    ));
}

/// The `fieldsV1` the API server records for an apply of `value`: `f:`
/// for each field of an object, `k:{"name":..}` for each element of a list
/// keyed by name, atomic otherwise.
fn fields_v1(value: &Value) -> Value {
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (format!("f:{k}"), fields_v1(v)))
            .collect::<serde_json::Map<String, Value>>()
            .into(),
        Value::Array(list) if list.iter().all(|e| e["name"].is_string()) && !list.is_empty() => {
            list.iter()
                .map(|e| {
                    let mut sub = fields_v1(e);
                    sub["."] = json!({});
                    (format!("k:{{\"name\":{}}}", e["name"]), sub)
                })
                .collect::<serde_json::Map<String, Value>>()
                .into()
        }
        _ => json!({}),
    }
}

/// `entry` as the cluster lists it after globaldns applied it: labels,
/// and globaldns' entry in managedFields.
fn as_listed(name: &str, owned: bool, entry: &ServiceEntry) -> Value {
    let mut object = serde_json::to_value(entry).unwrap();
    object["metadata"]["name"] = json!(name);
    if !owned {
        object["metadata"]["labels"] = json!({});
    }
    let fields = json!({
        "f:metadata": {"f:labels": fields_v1(&object["metadata"]["labels"])},
        "f:spec": fields_v1(&object["spec"]),
    });
    object["metadata"]["managedFields"] =
        json!([{"manager": FIELD_MANAGER, "operation": "Apply", "fieldsV1": fields}]);
    object
}

fn existing(name: &str, owned: bool, spec: &ServiceEntry) -> Existing {
    Existing::from_object(
        Kind::ServiceEntry,
        &serde_json::from_value(as_listed(name, owned, spec)).unwrap(),
    )
}

#[test]
fn the_plan_applies_changes_prunes_owned_and_leaves_the_rest() {
    let a = entry("a-global", "240.0.0.1");
    let b = entry("b-global", "240.0.0.2");
    let c = entry("c-global", "240.0.0.3");
    let n = entry("n-global", "240.0.0.4");
    let cluster = [
        existing("a-global", true, &a), // same: nothing to do
        existing("b-global", true, &entry("b-global", "240.0.0.9")), // changed: apply
        existing("c-global", false, &c), // hand-written: conflict
        existing("gone-global", true, &a), // owned, unwanted: delete
        existing("mine-global", false, &a), // not ours: untouched
        existing("x-global", true, &entry("x-global", "240.0.0.7")),
        existing("y-global", true, &entry("y-global", "240.0.0.8")),
    ];
    let desired = [
        a,
        b.clone(),
        c,
        n.clone(),
        entry("x-global", "240.0.0.7"),
        entry("y-global", "240.0.0.8"),
    ];
    let plan = plan_entries(&desired, &cluster, 0.5);
    assert_eq!(plan.apply, objects(&[b, n]), "changed and new only");
    assert_eq!(names(&plan.conflicts), ["c-global"]);
    assert_eq!(names(&plan.delete), ["gone-global"]);
    assert!(plan.held_back.is_empty());
}

/// design §5: a pass that would delete more than the set share of the
/// owned objects deletes none of them.
#[test]
fn the_brake_holds_back_mass_deletion() {
    let a = entry("a-global", "240.0.0.1");
    let cluster = [
        existing("a-global", true, &a),
        existing("b-global", true, &a),
        existing("c-global", true, &a),
    ];
    // Two of three owned would go: more than half.
    let plan = plan_entries(std::slice::from_ref(&a), &cluster, 0.5);
    assert!(plan.delete.is_empty());
    assert_eq!(names(&plan.held_back), ["b-global", "c-global"]);
    // One of three: within the brake.
    let plan = plan_entries(&[a.clone(), entry("b-global", "240.0.0.1")], &cluster, 0.5);
    assert_eq!(names(&plan.delete), ["c-global"]);
    // An empty registry with a brake of 1.0 may delete everything.
    let plan = plan_entries(&[], &cluster, 1.0);
    assert_eq!(plan.delete.len(), 3);
}

const BASE: &str = "/apis/networking.istio.io/v1/namespaces/istio-system/serviceentries";

fn listed(items: Vec<Value>) -> Response<Body> {
    let body = json!({"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntryList",
                      "metadata": {"resourceVersion": "7"}, "items": items});
    ok(&body)
}

fn object(name: &str, owned: bool) -> Value {
    let labels = if owned {
        json!({MANAGED_BY_LABEL: MANAGED_BY})
    } else {
        json!({})
    };
    json!({"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
           "metadata": {"name": name, "namespace": "istio-system", "labels": labels},
           "spec": {"hosts": [name]}})
}

/// Each request of a pass, asserted: the list, the server-side apply (URL
/// with fieldManager and force, content type, body), and the delete.
#[tokio::test]
async fn a_pass_lists_applies_with_one_field_manager_and_prunes() {
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(mock, "default");
    let desired = vec![entry("new-global", "240.0.0.5")];
    let pass = tokio::spawn(async move {
        sync_once(
            &client,
            "istio-system",
            IstioApiVersion::V1,
            &objects(&desired),
            0.5,
            &SEQUENTIAL,
            &|| true,
        )
        .await
    });

    let (request, send) = next(&mut handle).await;
    assert_eq!(request.method(), http::Method::GET);
    assert_eq!(request.uri().path(), BASE);
    send.send_response(listed(vec![
        object("old-global", true),
        object("other-global", true),
        object("hand-written", false),
    ]));
    other_lists(&mut handle, vec![]).await;

    let (request, send) = next(&mut handle).await;
    assert_eq!(request.method(), http::Method::PATCH);
    assert_eq!(request.uri().path(), format!("{BASE}/new-global"));
    let query = request.uri().query().unwrap();
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
    assert_eq!(
        sent,
        serde_json::to_value(entry("new-global", "240.0.0.5")).unwrap()
    );
    send.send_response(Response::builder().body(Body::from(body.to_vec())).unwrap());

    // Two owned, both unwanted: more than half, so the brake holds them.
    let report = finished(pass).await;
    assert_eq!(
        report,
        Report {
            applied: 1,
            held_back: 2,
            ..Report::default()
        }
    );

    // Within the brake (here three quarters), the unwanted owned objects
    // are deleted; one already gone (404) counts as deleted.
    let client = kube::Client::new(
        {
            let (mock, h) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
            handle = h;
            mock
        },
        "default",
    );
    let desired = vec![entry("keep-global", "240.0.0.6")];
    let pass = tokio::spawn(async move {
        sync_once(
            &client,
            "istio-system",
            IstioApiVersion::V1,
            &objects(&desired),
            0.75,
            &SEQUENTIAL,
            &|| true,
        )
        .await
    });
    let (_, send) = next(&mut handle).await;
    let keep = as_listed("keep-global", true, &entry("keep-global", "240.0.0.6"));
    send.send_response(listed(vec![
        keep,
        object("gone-global", true),
        object("x", true),
        object("y", false),
    ]));
    other_lists(&mut handle, vec![]).await;
    let (request, send) = next(&mut handle).await;
    assert_eq!(request.method(), http::Method::DELETE);
    assert_eq!(request.uri().path(), format!("{BASE}/gone-global"));
    let deleted = serde_json::to_vec(&object("gone-global", true)).unwrap();
    send.send_response(Response::builder().body(Body::from(deleted)).unwrap());
    let (request, send) = next(&mut handle).await;
    assert_eq!(request.uri().path(), format!("{BASE}/x"));
    send.send_response(status(404, "NotFound"));
    let report = finished(pass).await;
    assert_eq!(
        report,
        Report {
            deleted: 2,
            ..Report::default()
        },
        "no apply: keep is unchanged"
    );
}

fn allocated() -> (Settings, Arc<Allocated>) {
    use crate::vip::{Allocator, DEFAULT_V4_RANGE, Family, Table, VipRange};
    let zones = vec!["global".to_string()];
    let text = include_str!("../../../examples/registry.yaml");
    let registry = crate::registry::load_str(text, "registry.yaml", &zones).unwrap();
    let allocator = Allocator {
        v4: VipRange::new(DEFAULT_V4_RANGE.parse().unwrap(), Family::V4).unwrap(),
        v6: None,
        quarantine: 600,
    };
    let mut table = Table::default();
    allocator.reconcile(
        &mut table,
        &crate::index::wants(&registry, &zones, false),
        0,
    );
    let settings = Settings {
        zones,
        per_cluster_names: false,
        ttl: 30,
        allocator,
        ns_addresses: Vec::new(),
    };
    (
        settings,
        Arc::new(Allocated {
            registry,
            table,
            hand_written: Vec::new(),
            conflicts: Vec::new(),
        }),
    )
}

fn config() -> SyncConfig {
    SyncConfig {
        target: Target::new("east", "istio-system"),
        brake: 0.5,
        lease_name: "globaldns".to_string(),
        identity: "pod-a".to_string(),
        resync: Duration::from_secs(300),
        limits: SEQUENTIAL,
        // The example's gateways are documentation addresses: tests send
        // nothing beyond loopback (the probes have their own tests).
        probes: None,
        service_imports: false,
        export_status: false,
    }
}

/// The sync loop of pod-a against a mock API server, on the example
/// registry: the mock's handle, the loop's task, its metrics, and the token
/// that stops it.
struct Looping {
    handle: crate::mock_api::ApiHandle,
    task: tokio::task::JoinHandle<()>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    /// Kept: the loop ends when the registry's sender goes.
    _registry: watch::Sender<Option<Arc<Allocated>>>,
}

fn start_loop() -> Looping {
    let (mock, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let (settings, current) = allocated();
    let (registry, rx) = watch::channel(Some(current));
    let metrics: Arc<Metrics> = Default::default();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run(
        kube::Client::new(mock, "default"),
        "mesh".to_string(),
        config(),
        settings,
        rx,
        metrics.clone(),
        shutdown.clone(),
    ));
    Looping {
        handle,
        task,
        metrics,
        shutdown,
        _registry: registry,
    }
}

/// The loop end to end against the mock: it takes the (missing) Lease,
/// then lists and applies one ServiceEntry per host of the registry.
#[tokio::test]
async fn the_lease_holder_applies_the_rendered_entries() {
    let Looping {
        mut handle,
        task: looping,
        shutdown,
        _registry,
        ..
    } = start_loop();

    let (request, send) = next(&mut handle).await;
    assert_eq!(
        request.uri().path(),
        "/apis/coordination.k8s.io/v1/namespaces/mesh/leases/globaldns"
    );
    send.send_response(status(404, "NotFound"));
    let (request, send) = next(&mut handle).await;
    assert_eq!(request.method(), http::Method::POST, "the lease is created");
    send.send_response(echo(request).await);
    discovery(&mut handle, &["v1", "v1beta1", "v1alpha3"]).await;
    let (request, send) = next(&mut handle).await;
    assert_eq!(
        (request.method(), request.uri().path()),
        (&http::Method::GET, BASE)
    );
    send.send_response(listed(vec![]));
    other_lists(&mut handle, vec![]).await;
    let mut applied = Vec::new();
    for _ in 0..3 {
        let (request, send) = next(&mut handle).await;
        assert_eq!(request.method(), http::Method::PATCH);
        let path = request.uri().path().to_string();
        applied.push(path.rsplitn(3, '/').take(2).collect::<Vec<_>>().join("/"));
        send.send_response(echo(request).await);
    }
    // East exports sleep: its Gateway too.
    assert_eq!(
        applied,
        [
            "httpbin-bar-global/serviceentries",
            "sleep-foo-global/serviceentries",
            "globaldns-cross-network/gateways"
        ]
    );

    // On shutdown the holder gives the Lease up, and the loop ends.
    shutdown.cancel();
    let (request, send) = next(&mut handle).await;
    assert_eq!(request.method(), http::Method::GET);
    assert!(request.uri().path().ends_with("/leases/globaldns"));
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "globaldns", "namespace": "mesh", "resourceVersion": "3"},
        "spec": {"holderIdentity": "pod-a", "leaseDurationSeconds": 15,
                 "renewTime": k8s_openapi::jiff::Timestamp::now().to_string()}});
    send.send_response(ok(&lease));
    let (request, send) = next(&mut handle).await;
    assert_eq!(request.method(), http::Method::PUT);
    let body: Value =
        serde_json::from_slice(&request.into_body().collect_bytes().await.unwrap()).unwrap();
    assert!(
        body["spec"]
            .get("holderIdentity")
            .is_none_or(Value::is_null)
    );
    send.send_response(ok(&body));
    tokio::time::timeout(Duration::from_secs(5), looping)
        .await
        .expect("the loop ends after the release")
        .unwrap();
}

/// A replica that does not hold the Lease writes nothing.
#[tokio::test]
async fn a_follower_writes_nothing() {
    let Looping {
        mut handle,
        shutdown,
        _registry,
        ..
    } = start_loop();
    let (request, send) = next(&mut handle).await;
    assert_eq!(request.method(), http::Method::GET);
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "globaldns", "namespace": "mesh", "resourceVersion": "5"},
        "spec": {"holderIdentity": "pod-b", "leaseDurationSeconds": 15,
                 "renewTime": k8s_openapi::jiff::Timestamp::now().to_string()}});
    send.send_response(ok(&lease));
    let more = tokio::time::timeout(Duration::from_millis(500), handle.next_request()).await;
    assert!(
        more.is_err(),
        "no request after finding the lease held by another replica"
    );
    shutdown.cancel();
}

/// Issue 3: the VIP record in Kubernetes is the owned ServiceEntries'
/// `spec.addresses`, read with the managed-by label selector.
#[tokio::test]
async fn owned_addresses_are_read_by_label() {
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let api = service_entries(
        kube::Client::new(mock, "default"),
        "istio-system",
        IstioApiVersion::V1,
    );
    let read = tokio::spawn(async move { crate::mesh::record::owned_addresses(&api).await });
    let (request, send) = next(&mut handle).await;
    assert_eq!(request.uri().path(), BASE);
    let query = request.uri().query().unwrap_or_default().to_string();
    assert!(
        query.contains("labelSelector=app.kubernetes.io%2Fmanaged-by%3Dglobaldns"),
        "{query}"
    );
    let mut one = object("httpbin-bar-global", true);
    one["spec"] =
        json!({"hosts": ["HTTPBIN.bar.global"], "addresses": ["240.0.195.86", "fd00::1", "junk"]});
    let no_addresses = object("other-global", true);
    send.send_response(listed(vec![one, no_addresses]));
    let found = read.await.unwrap().unwrap();
    assert_eq!(
        found,
        vec![(
            "httpbin.bar.global".to_string(),
            vec!["240.0.195.86".parse().unwrap(), "fd00::1".parse().unwrap()]
        )]
    );
}

/// The report of a pass run in a task, within 5 s.
async fn finished(pass: tokio::task::JoinHandle<Result<Report, kube::Error>>) -> Report {
    tokio::time::timeout(Duration::from_secs(5), pass)
        .await
        .expect("the pass ends within 5 s")
        .expect("the pass task")
        .expect("the pass")
}

/// Issue 5: a conflict on one apply (409) is counted as a failure and the
/// other entries are still applied.
#[tokio::test]
async fn a_conflict_on_one_apply_does_not_stop_the_others() {
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(mock, "default");
    let desired = vec![
        entry("a-global", "240.0.0.1"),
        entry("b-global", "240.0.0.2"),
    ];
    let pass = tokio::spawn(async move {
        sync_once(
            &client,
            "istio-system",
            IstioApiVersion::V1,
            &objects(&desired),
            0.5,
            &SEQUENTIAL,
            &|| true,
        )
        .await
    });
    let (_, send) = next(&mut handle).await;
    send.send_response(listed(vec![]));
    other_lists(&mut handle, vec![]).await;
    let (request, send) = next(&mut handle).await;
    assert_eq!(request.uri().path(), format!("{BASE}/a-global"));
    send.send_response(status(409, "Conflict"));
    let (request, send) = next(&mut handle).await;
    assert_eq!(request.uri().path(), format!("{BASE}/b-global"));
    send.send_response(echo(request).await);
    let report = finished(pass).await;
    assert_eq!(
        report,
        Report {
            applied: 1,
            failures: vec![Failure {
                write: "apply",
                name: "ServiceEntry a-global".to_string(),
                reason: Reason::Conflict,
                message: "409 Conflict: Conflict".to_string(),
            }],
            ..Report::default()
        }
    );
}

/// Issue 5: the pass asks before every write whether the Lease is still
/// held; once it is not, nothing more is written and the report says so.
#[tokio::test]
async fn a_pass_stops_writing_when_the_lease_is_lost() {
    use std::sync::atomic::AtomicBool;
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(mock, "default");
    let desired = vec![
        entry("a-global", "240.0.0.1"),
        entry("b-global", "240.0.0.2"),
    ];
    let held = Arc::new(AtomicBool::new(true));
    let pass = {
        let held = held.clone();
        tokio::spawn(async move {
            sync_once(
                &client,
                "istio-system",
                IstioApiVersion::V1,
                &objects(&desired),
                1.0,
                &SEQUENTIAL,
                &|| held.load(Relaxed),
            )
            .await
        })
    };
    let (_, send) = next(&mut handle).await;
    send.send_response(listed(vec![object("gone-global", true)]));
    other_lists(&mut handle, vec![]).await;
    let (request, send) = next(&mut handle).await;
    assert_eq!(request.uri().path(), format!("{BASE}/a-global"));
    held.store(false, Relaxed); // lost while the first apply is on the wire
    send.send_response(echo(request).await);
    let report = finished(pass).await;
    assert_eq!(
        report,
        Report {
            applied: 1,
            lease_lost: true,
            ..Report::default()
        }
    );
    let more = tokio::time::timeout(Duration::from_millis(200), handle.next_request()).await;
    assert!(
        !matches!(more, Ok(Some(_))),
        "neither b-global applied nor gone-global deleted"
    );
}

/// Answers the Lease requests of the sync loop for a minute of virtual
/// time, as a server where `holder` holds and keeps renewing it (our
/// renewals succeed while `holder` is us). Returns the first request that
/// is not about the Lease, if one comes within that minute.
async fn answer_lease_until_other(
    handle: &mut crate::mock_api::ApiHandle,
    holder: &str,
) -> Option<(
    Request<Body>,
    tower_test::mock::SendResponse<Response<Body>>,
)> {
    let until = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let next = tokio::time::timeout_at(until, handle.next_request()).await;
        let (request, send) = next.ok()??;
        if !request.uri().path().contains("/leases") {
            return Some((request, send));
        }
        match *request.method() {
            http::Method::GET => {
                let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": "globaldns", "namespace": "mesh", "resourceVersion": "5"},
                    "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                             "renewTime": k8s_openapi::jiff::Timestamp::now().to_string()}});
                send.send_response(ok(&lease))
            }
            _ => send.send_response(echo(request).await),
        }
    }
}

/// Issue 5, end to end through the loop: the Lease is renewed beside a
/// pass. Here the API server stops taking the renewals (500) while an apply
/// hangs; once the renew deadline (10 s) has passed, the pass writes nothing
/// more, and the replica, finding another holder, follows: over the next
/// minute it writes nothing at all.
#[tokio::test(start_paused = true)]
async fn losing_the_lease_mid_pass_stops_the_writes() {
    let Looping {
        mut handle,
        metrics,
        shutdown,
        _registry,
        ..
    } = start_loop();
    let (request, send) = answer_lease_until_other(&mut handle, "pod-a")
        .await
        .expect("the pass starts");
    let won = tokio::time::Instant::now();
    assert_eq!(metrics.sync.leader.load(Relaxed), 1, "the holder says so");
    assert_eq!(request.uri().path(), "/apis/networking.istio.io");
    send.send_response(ok(&istio_group(&["v1"])));
    let (request, send) = next(&mut handle).await;
    assert_eq!(request.method(), http::Method::GET);
    assert_eq!(request.uri().path(), BASE);
    send.send_response(listed(vec![]));
    other_lists(&mut handle, vec![]).await;
    let (request, held_apply) = next(&mut handle).await;
    assert_eq!(request.method(), http::Method::PATCH, "first apply");
    // The apply hangs; the renewals beside the pass (every 5 s of virtual
    // time) fail until the deadline has passed.
    while won.elapsed() < Duration::from_secs(10) {
        let (renewal, send) = tokio::time::timeout(Duration::from_secs(60), handle.next_request())
            .await
            .expect("a renewal while the apply hangs")
            .expect("the client is alive");
        assert_eq!(renewal.method(), http::Method::GET);
        assert!(renewal.uri().path().ends_with("/leases/globaldns"));
        send.send_response(status(500, "InternalError"));
    }
    held_apply.send_response(echo(request).await);
    let other = answer_lease_until_other(&mut handle, "pod-b").await;
    assert!(
        other.is_none(),
        "nothing but Lease reads after the loss: {:?}",
        other.map(|(r, _)| (r.method().clone(), r.uri().clone()))
    );
    assert_eq!(metrics.sync.lease_lost.load(Relaxed), 1);
    assert_eq!(metrics.sync.applied.load(Relaxed), 1);
    assert_eq!(metrics.sync.leader.load(Relaxed), 0, "no longer the holder");
    shutdown.cancel();
}

/// Issue 10: another field manager added a field to an owned ServiceEntry
/// (then `exportTo`, which globaldns now sets itself; here
/// `subjectAltNames`), and the drift check (the whole spec) re-applied it
/// on every pass, forever. Only the fields globaldns owns count.
#[test]
fn fields_another_manager_added_do_not_make_a_pass_apply() {
    let a = entry("a-global", "240.0.0.1");
    let mut listed = as_listed("a-global", true, &a);
    listed["spec"]["subjectAltNames"] = json!(["spiffe://example.com/ns/a/sa/a"]);
    listed["metadata"]["managedFields"]
        .as_array_mut()
        .unwrap()
        .push(json!({"manager": "kubectl-edit", "operation": "Update",
                     "fieldsV1": {"f:spec": {"f:subjectAltNames": {}}}}));
    let cluster = [Existing::from_object(
        Kind::ServiceEntry,
        &serde_json::from_value(listed).unwrap(),
    )];
    let plan = plan_entries(std::slice::from_ref(&a), &cluster, 0.5);
    assert!(plan.apply.is_empty(), "{:?}", plan.apply);
    // A value of ours changed by hand is still repaired.
    let mut edited = as_listed("a-global", true, &a);
    edited["spec"]["addresses"] = json!(["240.0.0.99"]);
    let cluster = [Existing::from_object(
        Kind::ServiceEntry,
        &serde_json::from_value(edited).unwrap(),
    )];
    assert_eq!(plan_of(&a, &cluster), 1);
}

fn plan_of(a: &ServiceEntry, cluster: &[Existing]) -> usize {
    plan_entries(std::slice::from_ref(a), cluster, 0.5)
        .apply
        .len()
}

/// Issue 10: a refused apply (the shipped RBAC lacked `create`) waited for
/// the 5-minute resync, with no metric a human would look at, while the
/// pass logged "synced". Now it is counted by reason, shown as the health
/// detail, and retried after a second.
#[tokio::test(start_paused = true)]
async fn a_refused_apply_is_counted_shown_and_retried_within_seconds() {
    let Looping {
        mut handle,
        metrics,
        shutdown,
        _registry,
        ..
    } = start_loop();
    let lease = |rv: &str| {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "globaldns", "namespace": "mesh", "resourceVersion": rv},
            "spec": {"holderIdentity": "pod-a", "leaseDurationSeconds": 15,
                     "renewTime": k8s_openapi::jiff::Timestamp::now().to_string()}})
    };
    let mut lists = Vec::new();
    let mut patches = 0;
    while lists.len() < 2 {
        let (request, send) = next(&mut handle).await;
        let path = request.uri().path().to_string();
        match request.method().as_str() {
            "GET" if path.ends_with("/leases/globaldns") => send.send_response(ok(&lease("1"))),
            "PUT" | "POST" => send.send_response(echo(request).await),
            "GET" if path == "/apis/networking.istio.io" => {
                send.send_response(ok(&istio_group(&["v1"])))
            }
            "GET" if path == BASE => {
                lists.push(tokio::time::Instant::now());
                send.send_response(listed(vec![]));
            }
            // The other kinds' lists: none of them yet.
            "GET" => send.send_response(ok(&json!({"items": [], "metadata": {}}))),
            "PATCH" => {
                patches += 1;
                if patches == 1 {
                    assert!(path.ends_with("/httpbin-bar-global"), "{path}");
                    send.send_response(status(403, "Forbidden"));
                } else {
                    send.send_response(echo(request).await);
                }
                // Two ServiceEntries and east's Gateway.
                if patches == 3 {
                    // The first pass is over: its failure is visible.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    assert_eq!(metrics.sync.failing.load(Relaxed), 1);
                    let detail = metrics.sync.detail.lock().unwrap().clone();
                    assert!(
                        detail.contains(
                            "apply ServiceEntry httpbin-bar-global (forbidden): 403 Forbidden"
                        ),
                        "{detail}"
                    );
                    assert_eq!(
                        metrics.sync.failures[Reason::Forbidden.index()].load(Relaxed),
                        1
                    );
                }
            }
            other => panic!("unexpected {other} {path}"),
        }
    }
    let gap = lists[1] - lists[0];
    assert!(
        gap <= Duration::from_secs(2),
        "retried after {gap:?}, not at once"
    );
    // The retry went through: nothing is failing any more.
    for _ in 0..2 {
        let (request, send) = next(&mut handle).await;
        assert_eq!(
            request.method(),
            http::Method::GET,
            "the other kinds' lists"
        );
        send.send_response(ok(&json!({"items": [], "metadata": {}})));
    }
    for _ in 0..3 {
        let (request, send) = next(&mut handle).await;
        assert_eq!(request.method(), http::Method::PATCH);
        send.send_response(echo(request).await);
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(metrics.sync.failing.load(Relaxed), 0);
    assert_eq!(metrics.sync.detail.lock().unwrap().as_str(), "");
    assert!(
        metrics
            .render()
            .contains("globaldns_sync_failures_total{reason=\"forbidden\"} 1")
    );
    shutdown.cancel();
}

/// Issue 11: the plan covers every kind the sync owns, each by its own
/// name; the brake weighs the ServiceEntries, so the one Gateway of a
/// cluster that stops exporting is pruned, not held, and a held pass holds
/// every kind.
#[test]
fn the_plan_covers_every_kind_and_brakes_on_the_service_entries() {
    let a = entry("a-global", "240.0.0.1");
    let b = entry("b-global", "240.0.0.2");
    let gateway = crate::mesh::Gateway {
        api_version: "networking.istio.io/v1".to_string(),
        kind: "Gateway".to_string(),
        metadata: Metadata::owned("a-global".to_string(), "istio-system"),
        spec: crate::mesh::gateway::GatewaySpec {
            selector: BTreeMap::new(),
            servers: Vec::new(),
        },
    };
    let listed_gateway = {
        let mut o = serde_json::to_value(&gateway).unwrap();
        o["metadata"]["managedFields"] = json!([]);
        Existing::from_object(Kind::Gateway, &serde_json::from_value(o).unwrap())
    };
    let cluster = [
        existing("a-global", true, &a),
        existing("b-global", true, &b),
        listed_gateway,
    ];
    // Same name, other kind: no clash; the Gateway is no longer wanted.
    let only_entries = plan_entries(&[a.clone(), b.clone()], &cluster, 0.5);
    assert!(only_entries.apply.is_empty());
    assert_eq!(
        only_entries.delete,
        [Ref {
            kind: Kind::Gateway,
            name: "a-global".to_string()
        }]
    );
    // A hand-written Gateway with the name globaldns wants is a conflict.
    let mut theirs = cluster.clone();
    theirs[2].owned = false;
    let with_gateway = plan(
        &[Object::ServiceEntry(a), Object::Gateway(gateway)],
        &theirs,
        0.5,
    );
    assert_eq!(names(&with_gateway.conflicts), ["a-global"]);
    assert_eq!(with_gateway.conflicts[0].kind, Kind::Gateway);
    // One of two ServiceEntries and the Gateway go: half the entries, not
    // more, so they go; all entries and the Gateway: held, every kind.
    let last_export = plan_entries(std::slice::from_ref(&b), &cluster, 0.5);
    assert_eq!(last_export.delete.len(), 2, "{last_export:?}");
    let truncated = plan_entries(&[], &cluster, 0.5);
    assert!(truncated.delete.is_empty());
    assert_eq!(truncated.held_back.len(), 3);
}

/// Issue 14: writes go out `concurrency` at a time: with 4, four applies
/// are on the wire before the first is answered.
#[tokio::test]
async fn writes_go_out_concurrently_up_to_the_limit() {
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(mock, "default");
    let desired: Vec<ServiceEntry> = (0..6)
        .map(|i| entry(&format!("s{i}-global"), &format!("240.0.0.{}", i + 1)))
        .collect();
    let limits = Limits {
        concurrency: 4,
        qps: None,
    };
    let pass = tokio::spawn(async move {
        sync_once(
            &client,
            "istio-system",
            IstioApiVersion::V1,
            &objects(&desired),
            0.5,
            &limits,
            &|| true,
        )
        .await
    });
    let (_, send) = next(&mut handle).await;
    send.send_response(listed(vec![]));
    other_lists(&mut handle, vec![]).await;
    let mut waiting = Vec::new();
    for _ in 0..4 {
        let (request, send) = next(&mut handle).await;
        assert_eq!(request.method(), http::Method::PATCH);
        waiting.push((request, send));
    }
    let fifth = tokio::time::timeout(Duration::from_millis(200), handle.next_request()).await;
    assert!(
        fifth.is_err(),
        "a fifth write before any of four was answered"
    );
    for (request, send) in waiting {
        send.send_response(echo(request).await);
    }
    for _ in 0..2 {
        let (request, send) = next(&mut handle).await;
        send.send_response(echo(request).await);
    }
    assert_eq!(finished(pass).await.applied, 6);
}

/// Issue 14: a 429 (API Priority and Fairness) is waited out for the
/// `retryAfterSeconds` it gives, and the write then goes through; it is
/// counted as throttled, not failed.
#[tokio::test(start_paused = true)]
async fn a_429_is_waited_out_as_the_api_server_asks() {
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(mock, "default");
    let desired = vec![entry("a-global", "240.0.0.1")];
    let pass = tokio::spawn(async move {
        sync_once(
            &client,
            "istio-system",
            IstioApiVersion::V1,
            &objects(&desired),
            0.5,
            &SEQUENTIAL,
            &|| true,
        )
        .await
    });
    let (_, send) = next(&mut handle).await;
    send.send_response(listed(vec![]));
    other_lists(&mut handle, vec![]).await;
    let (request, send) = next(&mut handle).await;
    assert_eq!(request.method(), http::Method::PATCH);
    let throttled = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
        "reason": "TooManyRequests", "code": 429, "message": "too many requests",
        "details": {"retryAfterSeconds": 3}});
    let first = tokio::time::Instant::now();
    send.send_response(
        Response::builder()
            .status(429)
            .body(Body::from(serde_json::to_vec(&throttled).unwrap()))
            .unwrap(),
    );
    let (request, send) = next(&mut handle).await;
    assert_eq!(request.method(), http::Method::PATCH, "tried again");
    let waited = first.elapsed();
    assert!(
        (Duration::from_secs(3)..Duration::from_secs(4)).contains(&waited),
        "{waited:?}"
    );
    send.send_response(echo(request).await);
    let report = finished(pass).await;
    assert_eq!(report.applied, 1);
    assert_eq!(report.throttled, 1);
    assert!(report.failures.is_empty());
}

/// Takes the Lease for the loop (a 404, then the create).
async fn take_lease(handle: &mut crate::mock_api::ApiHandle) {
    let (request, send) = next(handle).await;
    assert!(request.uri().path().ends_with("/leases/globaldns"));
    send.send_response(status(404, "NotFound"));
    let (request, send) = next(handle).await;
    assert_eq!(request.method(), http::Method::POST, "the lease is created");
    send.send_response(echo(request).await);
}

/// Issue 24: Istio 1.5–1.21 serve `networking.istio.io` in v1beta1 and
/// v1alpha3, not v1. The pass asks discovery, then lists, applies (URL and
/// body) and would prune in the newest version served.
#[tokio::test]
async fn a_pass_writes_the_newest_version_the_api_server_serves() {
    let Looping {
        mut handle,
        shutdown,
        _registry,
        ..
    } = start_loop();
    take_lease(&mut handle).await;
    discovery(&mut handle, &["v1alpha3", "v1beta1"]).await;
    for kind in ["serviceentries", "gateways", "destinationrules"] {
        let (request, send) = next(&mut handle).await;
        assert_eq!(
            request.uri().path(),
            format!("/apis/networking.istio.io/v1beta1/namespaces/istio-system/{kind}")
        );
        send.send_response(ok(&json!({"items": [], "metadata": {}})));
    }
    for _ in 0..3 {
        let (request, send) = next(&mut handle).await;
        assert_eq!(request.method(), http::Method::PATCH);
        assert!(
            request
                .uri()
                .path()
                .starts_with("/apis/networking.istio.io/v1beta1/"),
            "{}",
            request.uri()
        );
        let body: Value =
            serde_json::from_slice(&request.into_body().collect_bytes().await.unwrap()).unwrap();
        assert_eq!(body["apiVersion"], "networking.istio.io/v1beta1");
        send.send_response(ok(&body));
    }
    shutdown.cancel();
}

/// Issue 24: a cluster without Istio's CRDs: the pass writes nothing, says
/// why (counted, in /readyz's detail), and asks again on the retry
/// schedule, so installing Istio afterwards needs no restart.
#[tokio::test(start_paused = true)]
async fn a_cluster_without_istio_fails_the_pass_with_the_reason_and_retries() {
    let Looping {
        mut handle,
        metrics,
        shutdown,
        _registry,
        ..
    } = start_loop();
    take_lease(&mut handle).await;
    let (request, send) = next(&mut handle).await;
    assert_eq!(request.uri().path(), "/apis/networking.istio.io");
    send.send_response(status(404, "NotFound"));
    let asked = tokio::time::Instant::now();
    // Lease renewals may come first; the next pass asks again.
    let (request, send) = answer_lease_until_other(&mut handle, "pod-a")
        .await
        .expect("another pass");
    assert_eq!(
        request.uri().path(),
        "/apis/networking.istio.io",
        "nothing listed or written"
    );
    assert!(asked.elapsed() <= Duration::from_secs(2), "retried at once");
    let detail = metrics.sync.detail.lock().unwrap().clone();
    assert!(
        detail.contains("discover networking.istio.io")
            && detail.contains("install Istio (its CRDs)"),
        "{detail}"
    );
    assert_eq!(metrics.sync.failing.load(Relaxed), 1);
    send.send_response(status(404, "NotFound"));
    shutdown.cancel();
}
