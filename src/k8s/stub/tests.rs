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

/// `global` is a real, signed TLD: the output says what a validating
/// resolver needs (RFC 4035 §4.3: unsigned answers under a signed parent
/// are bogus); a zone under no signed TLD gets no such comment.
#[test]
fn zones_under_a_signed_tld_get_a_dnssec_note() {
    let server = "10.96.0.53:53".parse().unwrap();
    let text = render(Target::Coredns, &zones(), server);
    assert!(
        text.starts_with("# DNSSEC: global lie(s) under a real, signed TLD"),
        "{text}"
    );
    assert!(text.contains("`domain-insecure: \"global\"`"), "{text}");
    assert!(
        text.contains("BIND `validate-except { \"global\"; };`"),
        "{text}"
    );
    assert!(!text.contains("region\""), "{text}");
    assert!(text.ends_with(&coredns(&zones(), server)));
    let yaml = render(Target::KubeDns, &zones(), server);
    let map: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(map["kind"], "ConfigMap", "still applies with kubectl");
    assert_eq!(dnssec_note(&["mesh.global".to_string()]).lines().count(), 5);
    assert_eq!(dnssec_note(&["region".to_string()]), "");
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
