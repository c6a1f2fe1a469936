use super::*;
use crate::commands::doctor::Status;
use crate::commands::doctor::mesh_check::tests::{object, seen};
use serde_json::json;

fn gateway_object(mode: &str) -> DynamicObject {
    object(json!({
        "apiVersion": "networking.istio.io/v1", "kind": "Gateway",
        "metadata": {"name": "globaldns-global", "namespace": "istio-system"},
        "spec": {"selector": {"istio": "eastwestgateway"}, "servers": [{
            "port": {"number": 15443, "name": "tls", "protocol": "TLS"},
            "tls": {"mode": mode}, "hosts": ["*.global"]
        }]}
    }))
}

#[test]
fn the_gateway_needs_ready_pods_and_a_service_with_the_port() {
    let mut s = seen();
    s.gateways = Ok(vec![gateway_object("ISTIO_MUTUAL")]);
    s.gateway_pods = Ok(vec![]);
    s.gateway_services = Ok(vec![]);
    let found = gateway(&s);
    assert_eq!(found[0].status, Status::Fail);
    assert!(found[0].message.contains("AUTO_PASSTHROUGH"), "{found:?}");

    s.gateways = Ok(vec![gateway_object("AUTO_PASSTHROUGH")]);
    let found = gateway(&s);
    assert_eq!(found[0].status, Status::Fail);
    assert!(
        found[0].message.contains("no running, ready pod"),
        "{found:?}"
    );

    let labels = json!({"istio": "eastwestgateway"});
    s.gateway_pods = Ok(vec![
        serde_json::from_value(json!({
            "metadata": {"name": "gw", "namespace": "istio-system", "labels": labels},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap(),
    ]);
    let found = gateway(&s);
    assert!(found[0].message.contains("no Service"), "{found:?}");

    s.gateway_services = Ok(vec![
        serde_json::from_value(json!({
            "metadata": {"name": "istio-eastwestgateway", "namespace": "istio-system"},
            "spec": {"selector": labels, "ports": [{"name": "tls", "port": 15443}]}
        }))
        .unwrap(),
    ]);
    let found = gateway(&s);
    assert_eq!(found[0].status, Status::Pass, "{found:?}");
}
