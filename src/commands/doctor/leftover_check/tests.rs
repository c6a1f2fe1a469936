use super::*;
use crate::commands::doctor::Status;
use crate::commands::doctor::mesh_check::tests::{object, seen, written};
use k8s_openapi::api::apps::v1::Deployment;
use serde_json::json;

#[test]
fn leftovers_are_named() {
    let mut s = seen();
    s.envoy_filters = Ok(vec![object(json!({
        "apiVersion": "networking.istio.io/v1alpha3", "kind": "EnvoyFilter",
        "metadata": {"name": "istio-multicluster-ingressgateway", "namespace": "istio-system"},
        "spec": {"configPatches": [{"patch": {"value": {"name": "envoy.filters.network.tcp_cluster_rewrite"}}}]}
    }))]);
    let found = envoy_filters(&s);
    assert_eq!(found[0].status, Status::Fail);
    assert_eq!(
        found[0].object,
        "EnvoyFilter istio-system/istio-multicluster-ingressgateway"
    );

    s.injector = Ok(vec![
        serde_json::from_value(json!({
            "metadata": {"name": "istio-sidecar-injector", "namespace": "istio-system"},
            "data": {"values": "{\"global\": {\"podDNSSearchNamespaces\": [\"global\", \"{{ valueOrDefault .DeploymentMeta.Namespace \\\"default\\\" }}.global\"]}}"}
        }))
        .unwrap(),
    ]);
    let found = dns_search(&s);
    assert_eq!(found[0].status, Status::Warn, "{found:?}");
    assert!(found[0].message.contains("global"), "{found:?}");

    let mut entries = written(&s);
    let mut theirs = object(json!({
        "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
        "metadata": {"name": "httpbin", "namespace": "bar", "creationTimestamp": "2020-01-01T00:00:00Z"},
        "spec": {"hosts": ["httpbin.bar.global"], "addresses": ["240.0.0.9"]}
    }));
    for e in &mut entries {
        e.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2026-01-01T00:00:00Z".parse().unwrap(),
        ));
    }
    entries.push(theirs.clone());
    s.service_entries = Ok(entries.clone());
    let found = hand_written(&s);
    assert_eq!(found[0].status, Status::Fail, "{found:?}");
    assert_eq!(found[0].object, "ServiceEntry bar/httpbin");

    theirs.metadata.creation_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2026-06-01T00:00:00Z".parse().unwrap(),
        ));
    entries.pop();
    entries.push(theirs);
    s.service_entries = Ok(entries);
    assert_eq!(hand_written(&s)[0].status, Status::Warn);
}

#[test]
fn a_vip_range_over_istiod_s_that_globaldns_is_not_told_fails() {
    let mut s = seen();
    let deployment = |args: Value, env: Value| -> Option<Deployment> {
        Some(
            serde_json::from_value(
                json!({"spec": {"selector": {}, "template": {"spec": {"containers": [
                    {"name": "c", "args": args, "env": env}
                ]}}}}),
            )
            .unwrap(),
        )
    };
    s.deployment = Ok(deployment(json!(["serve"]), json!([])));
    s.istiod = Ok(vec![]);
    s.service_entries = Ok(vec![]);
    let found = vip_range(&s);
    assert_eq!(found[0].status, Status::Pass, "{found:?}");

    s.istiod = Ok(Vec::from_iter(deployment(
        json!([]),
        json!([{"name": "PILOT_IP_AUTOALLOCATE_IPV4_PREFIX", "value": "240.1.0.0/16"}]),
    )));
    let found = vip_range(&s);
    assert_eq!(found[0].status, Status::Fail, "{found:?}");
    assert!(
        found[0]
            .fix
            .as_deref()
            .unwrap()
            .contains("--istio-ip-autoallocate-ipv4-prefix=240.1.0.0/16")
    );

    s.deployment = Ok(deployment(
        json!([
            "serve",
            "--istio-ip-autoallocate-ipv4-prefix",
            "240.1.0.0/16"
        ]),
        json!([]),
    ));
    assert_eq!(vip_range(&s)[0].status, Status::Pass);
    s.deployment = Ok(deployment(
        json!(["serve", "--vip-range=10.128.0.0/12"]),
        json!([]),
    ));
    assert_eq!(vip_range(&s)[0].status, Status::Pass);
}
