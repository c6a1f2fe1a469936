use super::*;
use serde_json::json;

fn deployment(args: &[&str], mount: serde_json::Value, volume: serde_json::Value) -> Deployment {
    serde_json::from_value(json!({
        "spec": {"selector": {}, "template": {"spec": {
            "containers": [
                {"name": "sidecar"},
                {"name": "globaldns", "args": args, "volumeMounts": [mount]}
            ],
            "volumes": [volume]
        }}}
    }))
    .unwrap()
}

#[test]
fn the_registry_is_read_where_the_deployment_reads_it() {
    let mount = json!({"name": "registry", "mountPath": "/etc/globaldns"});
    let volume = json!({"name": "registry", "configMap": {"name": "globaldns-registry"}});
    let file = deployment(
        &["serve", "--registry=/etc/globaldns/registry.yaml"],
        mount.clone(),
        volume.clone(),
    );
    assert_eq!(
        registry_of(&file),
        Some(Ok((
            "globaldns-registry".to_string(),
            "registry.yaml".to_string()
        )))
    );
    let kubernetes = deployment(
        &["serve", "--registry", "kubernetes"],
        mount.clone(),
        volume,
    );
    assert_eq!(registry_of(&kubernetes), None);
    let mapped = deployment(
        &["serve", "--registry=/etc/globaldns/mesh.yaml"],
        mount.clone(),
        json!({"name": "registry", "configMap": {"name": "reg", "items": [{"key": "r", "path": "mesh.yaml"}]}}),
    );
    assert_eq!(
        registry_of(&mapped),
        Some(Ok(("reg".to_string(), "r".to_string())))
    );
    let secret = deployment(
        &["serve", "--registry=/etc/globaldns/registry.yaml"],
        mount,
        json!({"name": "registry", "secret": {"secretName": "s"}}),
    );
    assert!(matches!(registry_of(&secret), Some(Err(e)) if e.contains("not a ConfigMap")));
}
