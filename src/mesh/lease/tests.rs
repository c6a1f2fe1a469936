use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

use super::*;
use crate::mock_api::{ok, status};

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

fn held(by: &str, renewed: i64, duration: i32) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(by.to_string()),
        renew_time: Some(MicroTime(at(renewed))),
        lease_duration_seconds: Some(duration),
        ..LeaseSpec::default()
    }
}

#[test]
fn the_election_steps() {
    assert_eq!(step(None, "me", at(0)), Step::Create);
    assert_eq!(step(Some(&held("me", 0, 15)), "me", at(100)), Step::Renew);
    assert_eq!(
        step(Some(&held("other", 0, 15)), "me", at(14)),
        Step::Follow
    );
    assert_eq!(
        step(Some(&held("other", 0, 15)), "me", at(16)),
        Step::TakeOver
    );
    assert_eq!(
        step(Some(&held("", 0, 15)), "me", at(1)),
        Step::TakeOver,
        "released"
    );
    assert_eq!(
        step(Some(&LeaseSpec::default()), "me", at(1)),
        Step::TakeOver
    );
}

const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/mesh/leases/globaldns";

fn elector(mock: tower_test::mock::Mock<Request<Body>, Response<Body>>) -> Elector {
    let api = Api::namespaced(kube::Client::new(mock, "default"), "mesh");
    Elector::new(api, "globaldns", "pod-a", Duration::from_secs(15))
}

async fn body(request: Request<Body>) -> Value {
    serde_json::from_slice(&request.into_body().collect_bytes().await.unwrap()).unwrap()
}

/// No lease: it is created, held by us, with the duration; the answer is
/// "leader".
#[tokio::test]
async fn a_missing_lease_is_created_and_held() {
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let lead = tokio::spawn(async move { elector(mock).try_lead().await });
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(
        (request.method().as_str(), request.uri().path()),
        ("GET", LEASE)
    );
    send.send_response(status(404, "NotFound"));
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(request.method(), http::Method::POST);
    assert_eq!(
        request.uri().path(),
        "/apis/coordination.k8s.io/v1/namespaces/mesh/leases"
    );
    let sent = body(request).await;
    assert_eq!(sent["spec"]["holderIdentity"], "pod-a");
    assert_eq!(sent["spec"]["leaseDurationSeconds"], 15);
    send.send_response(ok(&sent));
    assert!(lead.await.unwrap().unwrap());
}

/// Someone else's live lease: no write, follower. Their expired lease: a
/// replace with our identity and the resourceVersion read; losing that
/// race (409) is "follower", not an error.
#[tokio::test]
async fn a_live_lease_is_followed_and_an_expired_one_taken_over() {
    let lease = |renewed: Timestamp| {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "globaldns", "namespace": "mesh", "resourceVersion": "42"},
               "spec": {"holderIdentity": "pod-b", "leaseDurationSeconds": 15,
                        "renewTime": renewed.to_string(), "leaseTransitions": 3}})
    };
    let respond = |value: &Value| {
        Response::builder()
            .body(Body::from(serde_json::to_vec(value).unwrap()))
            .unwrap()
    };

    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let lead = tokio::spawn(async move { elector(mock).try_lead().await });
    let (_, send) = handle.next_request().await.unwrap();
    send.send_response(respond(&lease(Timestamp::now())));
    assert!(!lead.await.unwrap().unwrap(), "pod-b holds it");

    for (answer, leader) in [(None, true), (Some(409), false)] {
        let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let lead = tokio::spawn(async move { elector(mock).try_lead().await });
        let (_, send) = handle.next_request().await.unwrap();
        let stale = Timestamp::now() - SignedDuration::from_secs(60);
        send.send_response(respond(&lease(stale)));
        let (request, send) = handle.next_request().await.unwrap();
        assert_eq!(
            (request.method().as_str(), request.uri().path()),
            ("PUT", LEASE)
        );
        let sent = body(request).await;
        assert_eq!(sent["metadata"]["resourceVersion"], "42", "optimistic lock");
        assert_eq!(sent["spec"]["holderIdentity"], "pod-a");
        assert_eq!(sent["spec"]["leaseTransitions"], 4);
        match answer {
            None => send.send_response(respond(&sent)),
            Some(code) => send.send_response(status(code, "Conflict")),
        }
        assert_eq!(lead.await.unwrap().unwrap(), leader);
    }
}

/// Issue 5: the holder counts itself the holder only until two thirds of
/// the duration after its last successful renewal; a failed renewal does
/// not end the holding early, finding another holder does, and so does
/// giving the lease up.
#[tokio::test(start_paused = true)]
async fn holding_ends_at_the_renew_deadline_or_on_loss() {
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let elector = std::sync::Arc::new(elector(mock));
    assert!(!elector.holds(), "nothing won yet");
    let lead = {
        let elector = elector.clone();
        tokio::spawn(async move { elector.try_lead().await })
    };
    let (_, send) = handle.next_request().await.unwrap();
    send.send_response(status(404, "NotFound"));
    let (request, send) = handle.next_request().await.unwrap();
    let created = body(request).await;
    send.send_response(ok(&created));
    assert!(lead.await.unwrap().unwrap());
    assert!(elector.holds());

    // A renewal failing with 500 keeps the old deadline: still held at 9 s
    // after the win, no longer at 10 s.
    tokio::time::advance(Duration::from_secs(5)).await;
    let lead = {
        let elector = elector.clone();
        tokio::spawn(async move { elector.try_lead().await })
    };
    let (_, send) = handle.next_request().await.unwrap();
    send.send_response(status(500, "InternalError"));
    assert!(lead.await.unwrap().is_err());
    tokio::time::advance(Duration::from_secs(4)).await;
    assert!(elector.holds(), "9 s after the last renewal");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(!elector.holds(), "10 s after the last renewal");

    // Renewed again, then found held by another replica: lost at once.
    let renew =
        |elector: std::sync::Arc<Elector>| tokio::spawn(async move { elector.try_lead().await });
    let lead = renew(elector.clone());
    let (_, send) = handle.next_request().await.unwrap();
    send.send_response(ok(&created));
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(request.method(), http::Method::PUT);
    send.send_response(ok(&body(request).await));
    assert!(lead.await.unwrap().unwrap());
    assert!(elector.holds());
    let lead = renew(elector.clone());
    let (_, send) = handle.next_request().await.unwrap();
    let mut taken = created.clone();
    taken["spec"]["holderIdentity"] = json!("pod-b");
    taken["spec"]["renewTime"] = json!(Timestamp::now().to_string());
    send.send_response(ok(&taken));
    assert!(!lead.await.unwrap().unwrap());
    assert!(!elector.holds(), "pod-b holds it now");
}

/// On shutdown the holder gives the lease up (holder cleared, with the
/// resourceVersion read), so another replica need not wait for it to
/// expire; a lease someone else holds is left alone.
#[tokio::test]
async fn release_clears_the_holder_only_if_it_is_us() {
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let elector = std::sync::Arc::new(elector(mock));
    let lease = |holder: &str| {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "globaldns", "namespace": "mesh", "resourceVersion": "9"},
               "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                        "renewTime": Timestamp::now().to_string()}})
    };
    let release = {
        let elector = elector.clone();
        tokio::spawn(async move { elector.release().await })
    };
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(
        (request.method().as_str(), request.uri().path()),
        ("GET", LEASE)
    );
    send.send_response(ok(&lease("pod-a")));
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(
        (request.method().as_str(), request.uri().path()),
        ("PUT", LEASE)
    );
    let sent = body(request).await;
    assert_eq!(sent["metadata"]["resourceVersion"], "9");
    assert!(
        sent["spec"]
            .get("holderIdentity")
            .is_none_or(Value::is_null)
    );
    assert_eq!(
        step(
            serde_json::from_value::<Lease>(sent.clone())
                .unwrap()
                .spec
                .as_ref(),
            "pod-b",
            Timestamp::now()
        ),
        Step::TakeOver,
        "another replica may take a released lease at once"
    );
    send.send_response(ok(&sent));
    release.await.unwrap().unwrap();
    assert!(!elector.holds());

    let release = {
        let elector = elector.clone();
        tokio::spawn(async move { elector.release().await })
    };
    let (_, send) = handle.next_request().await.unwrap();
    send.send_response(ok(&lease("pod-b")));
    release.await.unwrap().unwrap();
    let more = tokio::time::timeout(Duration::from_millis(200), handle.next_request()).await;
    assert!(more.is_err(), "pod-b's lease is not written");
}
