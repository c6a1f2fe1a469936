use http::{Request, Response};
use kube::client::Body;
use serde_json::json;

use super::*;
use crate::k8s::mock::ok;

fn zones() -> Vec<String> {
    vec!["global".to_string(), "region".to_string()]
}

#[test]
fn kube_dns_stub_domains_name_every_zone() {
    let yaml = kube_dns(&zones(), "10.96.0.53:53".parse().unwrap());
    let map: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(map["metadata"]["name"], "kube-dns");
    assert_eq!(map["metadata"]["namespace"], "kube-system");
    let stub: serde_json::Value =
        serde_json::from_str(map["data"]["stubDomains"].as_str().unwrap()).unwrap();
    assert_eq!(
        stub,
        json!({"global": ["10.96.0.53"], "region": ["10.96.0.53"]})
    );
    let yaml = kube_dns(&zones()[..1], "[fd00::53]:5353".parse().unwrap());
    assert!(
        yaml.contains(r#"{"global": ["[fd00::53]:5353"]}"#),
        "{yaml}"
    );
}

#[test]
fn coredns_blocks_forward_every_zone() {
    let text = coredns(&zones(), "10.96.0.53:53".parse().unwrap());
    assert_eq!(
        text,
        "global:53 {\n    errors\n    cache 30\n    forward . 10.96.0.53\n}\n\
         region:53 {\n    errors\n    cache 30\n    forward . 10.96.0.53\n}\n"
    );
}

#[tokio::test]
async fn the_cluster_ip_is_read_from_the_service() {
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let read = tokio::spawn(async move {
        cluster_ip(kube::Client::new(mock, "default"), "globaldns", "globaldns").await
    });
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(
        request.uri().path(),
        "/api/v1/namespaces/globaldns/services/globaldns"
    );
    let service = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "globaldns", "namespace": "globaldns"},
        "spec": {"clusterIP": "10.96.0.53"}});
    send.send_response(ok(&service));
    assert_eq!(
        read.await.unwrap().unwrap(),
        "10.96.0.53".parse::<IpAddr>().unwrap()
    );

    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let read = tokio::spawn(async move {
        cluster_ip(kube::Client::new(mock, "default"), "globaldns", "headless").await
    });
    let (_, send) = handle.next_request().await.unwrap();
    let service = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "headless", "namespace": "globaldns"},
        "spec": {"clusterIP": "None"}});
    send.send_response(ok(&service));
    let error = read.await.unwrap().unwrap_err().to_string();
    assert_eq!(error, "Service globaldns/headless has no ClusterIP");
}
