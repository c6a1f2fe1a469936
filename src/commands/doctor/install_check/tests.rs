use super::*;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use serde_json::json;

fn seen() -> Observed {
    let mut seen = Observed::unread("east");
    seen.options = Some(crate::commands::doctor::observe::tests_options());
    seen.service = Ok(Some(
        serde_json::from_value::<Service>(json!({
            "metadata": {"name": "globaldns", "namespace": "globaldns"},
            "spec": {"clusterIP": "10.96.0.53", "ports": [
                {"name": "dns-udp", "port": 53, "protocol": "UDP"},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP"}
            ]}
        }))
        .unwrap(),
    ));
    seen.kube_dns = Ok(None);
    seen.coredns = Ok(None);
    seen
}

fn coredns(corefile: &str) -> Read<Option<ConfigMap>> {
    Ok(Some(
        serde_json::from_value(json!({"data": {"Corefile": corefile}})).unwrap(),
    ))
}

#[test]
fn a_zone_forwarded_to_the_cluster_ip_passes_and_elsewhere_fails() {
    let mut s = seen();
    s.coredns = coredns(
        ".:53 {\n    forward . /etc/resolv.conf\n}\nglobal:53 {\n    forward . 10.96.0.53\n}\n",
    );
    let found = wiring(&s);
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].status,
        crate::commands::doctor::Status::Pass,
        "{found:?}"
    );

    s.coredns = coredns("global:53 {\n    forward . 10.96.0.99:53\n}\n");
    let found = wiring(&s);
    assert_eq!(found[0].status, crate::commands::doctor::Status::Fail);
    assert_eq!(found[0].object, "ConfigMap kube-system/coredns");
    assert!(found[0].message.contains("10.96.0.99:53"), "{found:?}");

    s.coredns = coredns(".:53 {\n    forward . /etc/resolv.conf\n}\n");
    let found = wiring(&s);
    assert_eq!(found[0].status, crate::commands::doctor::Status::Fail);
    assert!(found[0].message.contains("not forwarded"), "{found:?}");
}

#[test]
fn a_kube_dns_stub_domain_counts_as_wiring() {
    let mut s = seen();
    s.kube_dns = Ok(Some(
        serde_json::from_value(json!({"data": {"stubDomains": "{\"global\": [\"10.96.0.53\"]}"}}))
            .unwrap(),
    ));
    assert_eq!(wiring(&s)[0].status, crate::commands::doctor::Status::Pass);
}

#[test]
fn a_service_without_udp_53_fails() {
    let mut s = seen();
    s.service = Ok(Some(
        serde_json::from_value::<Service>(json!({
            "spec": {"clusterIP": "10.96.0.53", "ports": [{"port": 53, "protocol": "TCP"}]}
        }))
        .unwrap(),
    ));
    let found = service(&s);
    assert_eq!(found.status, crate::commands::doctor::Status::Fail);
    assert!(found.message.contains("53/UDP"), "{found:?}");
}

#[test]
fn a_lease_not_renewed_within_its_duration_fails() {
    let mut s = seen();
    let now: Timestamp = "2026-12-07T12:00:00Z".parse().unwrap();
    s.lease = Ok(Some(
        serde_json::from_value(json!({"spec": {
            "holderIdentity": "globaldns-0", "leaseDurationSeconds": 15,
            "renewTime": "2026-12-07T11:59:50.000000Z"
        }}))
        .unwrap(),
    ));
    assert_eq!(
        lease_at(&s, now).status,
        crate::commands::doctor::Status::Pass
    );
    let later: Timestamp = "2026-12-07T12:01:00Z".parse().unwrap();
    let found = lease_at(&s, later);
    assert_eq!(found.status, crate::commands::doctor::Status::Fail);
    assert!(found.message.contains("70s ago"), "{found:?}");
    s.lease = Ok(None);
    assert_eq!(
        lease_at(&s, now).status,
        crate::commands::doctor::Status::Fail
    );
}

#[test]
fn a_deployment_without_ready_replicas_fails() {
    let mut s = seen();
    s.deployment = Ok(Some(
        serde_json::from_value(
            json!({"spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"readyReplicas": 1}}),
        )
        .unwrap(),
    ));
    assert_eq!(deployment(&s).status, crate::commands::doctor::Status::Warn);
    s.deployment = Ok(Some(
        serde_json::from_value(
            json!({"spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {}}),
        )
        .unwrap(),
    ));
    let found = deployment(&s);
    assert_eq!(found.status, crate::commands::doctor::Status::Fail);
    assert_eq!(found.object, "Deployment globaldns/globaldns");
}

#[test]
fn an_unreachable_api_server_is_the_only_finding() {
    let mut s = seen();
    s.api_server = Err("connection refused".into());
    let found = crate::commands::doctor::check_cluster(&s);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].check, "cluster.api-server");
    assert_eq!(found[0].status, crate::commands::doctor::Status::Fail);
    assert_eq!(found[0].context, "east");
}

#[test]
fn an_unknown_cluster_name_is_a_failure_not_silence() {
    let mut s = seen();
    s.api_server = Ok("v1.28.0".into());
    s.cluster = Err("ConfigMap globaldns/globaldns-config does not exist".into());
    let found = crate::commands::doctor::check_cluster(&s);
    let cluster = found
        .iter()
        .find(|f| f.check == "globaldns.cluster")
        .unwrap();
    assert_eq!(cluster.status, crate::commands::doctor::Status::Fail);
    s.cluster = Ok("north".into());
    s.registry = Ok((
        crate::registry::load_str(
            "clusters:\n  - name: east\n    gateways: [{address: 192.0.2.10}]\nservices: []\n",
            "test",
            &["global".to_string()],
        )
        .unwrap(),
        "test".into(),
    ));
    let found = crate::commands::doctor::check_cluster(&s);
    let cluster = found
        .iter()
        .find(|f| f.check == "globaldns.cluster")
        .unwrap();
    assert_eq!(cluster.status, crate::commands::doctor::Status::Fail);
    assert!(
        cluster.message.contains("not in the registry"),
        "{cluster:?}"
    );
}

#[test]
fn an_unreadable_config_map_is_said_and_imports_only_warn() {
    let mut s = seen();
    s.coredns = Err("configmaps \"coredns\" is forbidden".into());
    let found = wiring(&s);
    assert!(
        found.iter().any(|f| f.message.contains("cannot be read")),
        "{found:?}"
    );
    s.coredns = coredns(".:53 {\n    import custom/*.server\n    forward . /etc/resolv.conf\n}\n");
    let found = wiring(&s);
    assert_eq!(
        found[0].status,
        crate::commands::doctor::Status::Warn,
        "{found:?}"
    );
}
