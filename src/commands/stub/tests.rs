use http::{Request, Response};
use kube::client::Body;
use serde_json::json;

use super::*;
use crate::mock_api::{ok, status};

fn zones() -> Vec<String> {
    vec!["global".to_string(), "region".to_string()]
}

#[test]
fn kube_dns_stub_domains_name_every_zone() {
    let yaml = kube_dns(&zones(), "10.96.0.53:53".parse().unwrap()).unwrap();
    let map: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(map["metadata"]["name"], "kube-dns");
    assert_eq!(map["metadata"]["namespace"], "kube-system");
    let stub: serde_json::Value =
        serde_json::from_str(map["data"]["stubDomains"].as_str().unwrap()).unwrap();
    assert_eq!(
        stub,
        json!({"global": ["10.96.0.53"], "region": ["10.96.0.53"]})
    );
    let yaml = kube_dns(&zones()[..1], "10.96.0.53:5353".parse().unwrap()).unwrap();
    assert!(
        yaml.contains(r#"{"global": ["10.96.0.53:5353"]}"#),
        "{yaml}"
    );
    let yaml = kube_dns(&zones()[..1], "[fd00::53]:53".parse().unwrap()).unwrap();
    assert!(yaml.contains(r#"{"global": ["fd00::53"]}"#), "{yaml}");
}

/// Issue 25: for an IPv6 address on a port other than 53, stub-config
/// printed `"[fd00:10:96::a]:5353"`, which kube-dns' nanny hands dnsmasq as
/// `[fd00:10:96::a]#5353`; dnsmasq refuses the brackets and kube-dns' DNS
/// would not start. There is no form both take: refused, saying what to
/// do instead. CoreDNS takes the bracketed form.
#[test]
fn kube_dns_cannot_take_ipv6_on_another_port_and_says_so() {
    let server: SocketAddr = "[fd00:10:96::a]:5353".parse().unwrap();
    let err = kube_dns(&zones(), server).unwrap_err();
    assert_eq!(err, WiringError::KubeDnsIpv6Port(server));
    let text = err.to_string();
    assert!(
        text.contains("[fd00:10:96::a]:5353") && text.contains("--for coredns"),
        "{text}"
    );
    assert!(render(Target::Both, &zones(), server, None).is_err());
    let blocks = render(Target::Coredns, &zones(), server, None).unwrap();
    assert!(
        blocks.contains("forward . [fd00:10:96::a]:5353"),
        "{blocks}"
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
    let text = render(Target::Coredns, &zones(), server, None).unwrap();
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
    let yaml = render(Target::KubeDns, &zones(), server, None).unwrap();
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

fn configmap(name: &str, data: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "kube-system"}, "data": data}))
    .unwrap()
}

/// What `kubectl apply -f -` would read: every document parsed back.
fn applied(text: &str) -> Vec<serde_json::Value> {
    serde_saphyr::from_multiple(text).unwrap_or_else(|e| panic!("{e}:\n{text}"))
}

const COREFILE: &str = ".:53 {\n    errors\n    kubernetes cluster.local {\n        pods insecure\n    }\n    forward . /etc/resolv.conf\n}\nglobal:53 {\n    forward . 10.0.0.9\n}\n";

/// Issue 13: applying the kube-dns wiring keeps the cluster's other stub
/// domains and keys; the CoreDNS one keeps its other server blocks.
#[test]
fn the_wiring_is_merged_into_what_the_cluster_has() {
    let server = "10.96.0.53:53".parse().unwrap();
    let existing = Existing {
        kube_dns: Some(configmap(
            "kube-dns",
            json!({"stubDomains": "{\"acme.local\": [\"1.2.3.4\"], \"global\": [\"10.0.0.9\"]}\n",
                   "upstreamNameservers": "[\"8.8.8.8\"]"}),
        )),
        coredns: Some(configmap(
            "coredns",
            json!({"Corefile": COREFILE, "NodeHosts": "192.0.2.1 node-a\n"}),
        )),
    };
    let text = render(Target::Both, &zones(), server, Some(&existing)).unwrap();
    let docs = applied(&text);
    assert_eq!(docs.len(), 2, "{text}");
    assert_eq!(
        docs[0]["metadata"],
        json!({"name": "kube-dns", "namespace": "kube-system"})
    );
    assert_eq!(
        docs[0]["data"],
        json!({"stubDomains": "{\"acme.local\": [\"1.2.3.4\"], \"global\": [\"10.96.0.53\"], \"region\": [\"10.96.0.53\"]}\n",
               "upstreamNameservers": "[\"8.8.8.8\"]"})
    );
    assert_eq!(
        docs[1]["metadata"],
        json!({"name": "coredns", "namespace": "kube-system"})
    );
    assert_eq!(docs[1]["data"]["NodeHosts"], "192.0.2.1 node-a\n");
    let corefile = docs[1]["data"]["Corefile"].as_str().unwrap();
    assert_eq!(
        corefile,
        COREFILE.replace(
            "global:53 {\n    forward . 10.0.0.9\n}\n",
            &coredns(&zones(), server)
        )
    );
    // The Corefile is written as a literal block, readable in a review.
    assert!(text.contains("  Corefile: |\n    .:53 {\n"), "{text}");
}

/// A cluster without one of the ConfigMaps: kube-dns' is created with the
/// zones alone, CoreDNS's blocks are printed to add by hand; each says so.
#[test]
fn a_configmap_the_cluster_lacks_is_said() {
    let server = "10.96.0.53:53".parse().unwrap();
    let none = Existing::default();
    let text = render(Target::KubeDns, &zones(), server, Some(&none)).unwrap();
    assert!(
        text.contains("# kube-system/kube-dns does not exist: this creates it"),
        "{text}"
    );
    assert!(text.ends_with(&kube_dns(&zones(), server).unwrap()));
    let text = render(Target::Coredns, &zones(), server, Some(&none)).unwrap();
    assert!(
        text.contains("# CoreDNS: kube-system/coredns does not exist"),
        "{text}"
    );
    assert!(text.ends_with(&coredns(&zones(), server)));
}

#[test]
fn values_that_a_literal_block_cannot_hold_are_quoted() {
    let server = "10.96.0.53:53".parse().unwrap();
    let data =
        json!({"Corefile": "  indented first\nthen not", "odd key": "x", "trailing": "a\n\n\n"});
    let text = coredns_merged(&configmap("coredns", data), &zones()[..1], server).unwrap();
    let docs = applied(&text);
    assert_eq!(docs[0]["data"]["odd key"], "x");
    assert_eq!(docs[0]["data"]["trailing"], "a\n\n\n");
    assert!(
        docs[0]["data"]["Corefile"]
            .as_str()
            .unwrap()
            .starts_with("  indented first\nthen not\nglobal:53 {"),
        "{text}"
    );
}

#[tokio::test]
async fn the_configmaps_are_read_and_a_missing_one_is_none() {
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let read = tokio::spawn(async move {
        let client = kube::Client::new(mock, "default");
        let found = configmap_of(client.clone(), "kube-dns").await;
        let missing = configmap_of(client, "coredns").await;
        (found, missing)
    });
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(request.method(), "GET");
    assert_eq!(
        request.uri().path(),
        "/api/v1/namespaces/kube-system/configmaps/kube-dns"
    );
    send.send_response(ok(&json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "kube-dns", "namespace": "kube-system"},
        "data": {"stubDomains": "{}"}})));
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(
        request.uri().path(),
        "/api/v1/namespaces/kube-system/configmaps/coredns"
    );
    send.send_response(status(404, "NotFound"));
    let (found, missing) = read.await.unwrap();
    let found = found.unwrap().expect("found");
    assert_eq!(found.data.unwrap()["stubDomains"], "{}");
    assert!(missing.unwrap().is_none());
}

/// Forbidden: the error says whose kubeconfig it takes, and that globaldns'
/// ServiceAccount is not meant to have it.
#[tokio::test]
async fn a_forbidden_read_says_it_needs_an_administrator() {
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let read =
        tokio::spawn(
            async move { configmap_of(kube::Client::new(mock, "default"), "kube-dns").await },
        );
    let (_, send) = handle.next_request().await.unwrap();
    send.send_response(status(403, "Forbidden"));
    let error = read.await.unwrap().unwrap_err().to_string();
    assert!(
        error.contains("kube-system/kube-dns") && error.contains("administrator's kubeconfig"),
        "{error}"
    );
}
