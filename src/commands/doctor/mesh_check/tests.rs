use super::*;
use crate::commands::doctor::Status;
use serde_json::json;

const REGISTRY: &str = "
clusters:
  - name: east
    network: net-east
    gateways: [{address: 192.0.2.10}]
  - name: west
    gateways: [{address: 198.51.100.20}]
services:
  - name: httpbin
    namespace: bar
    exportedFrom: [west]
    ports: [{name: http, number: 8000, protocol: HTTP}]
  - name: sleep
    namespace: foo
    exportedFrom: [east]
    ports: [{name: http, number: 80, protocol: HTTP}]
";

pub(crate) fn seen() -> Observed {
    let mut seen = Observed::unread("east");
    let mut options = crate::commands::doctor::observe::tests_options();
    options.per_cluster_names = false;
    seen.options = Some(options);
    seen.cluster = Ok("east".into());
    let zones = vec!["global".to_string()];
    let registry = crate::registry::load_str(REGISTRY, "test", &zones).unwrap();
    seen.registry = Ok((registry, "test".into()));
    seen
}

pub(crate) fn object(value: Value) -> DynamicObject {
    serde_json::from_value(value).unwrap()
}

/// The ServiceEntries globaldns would write for `seen`, as the cluster
/// would hold them (owned, in istio-system).
pub(crate) fn written(seen: &Observed) -> Vec<DynamicObject> {
    desired(seen)
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|e| object(serde_json::to_value(&e).unwrap()))
        .collect()
}

#[test]
fn the_written_entries_pass_and_each_defect_is_named() {
    let mut s = seen();
    let entries = written(&s);
    s.service_entries = Ok(entries.clone());
    let found = service_entries(&s);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].status, Status::Pass);
    assert!(found[0].message.contains("2 of 2"), "{found:?}");

    // a port edited by hand
    let mut edited = entries.clone();
    let i = edited
        .iter()
        .position(|e| e.metadata.name.as_deref() == Some("sleep-foo-global"))
        .unwrap();
    edited[i].data["spec"]["ports"][0]["number"] = json!(81);
    s.service_entries = Ok(edited);
    let found = service_entries(&s);
    let bad: Vec<_> = found.iter().filter(|f| f.status == Status::Fail).collect();
    assert_eq!(bad.len(), 1, "{found:?}");
    assert_eq!(bad[0].object, "ServiceEntry istio-system/sleep-foo-global");
    assert!(bad[0].message.contains("81"), "{bad:?}");

    // a remote entry pointing at a gateway the registry does not give
    let mut edited = entries.clone();
    let i = edited
        .iter()
        .position(|e| e.metadata.name.as_deref() == Some("httpbin-bar-global"))
        .unwrap();
    edited[i].data["spec"]["endpoints"][0]["address"] = json!("203.0.113.9");
    s.service_entries = Ok(edited);
    let found = service_entries(&s);
    let bad: Vec<_> = found.iter().filter(|f| f.status == Status::Fail).collect();
    assert!(bad[0].message.contains("203.0.113.9"), "{bad:?}");

    // the destination side without its local Service
    let mut edited = entries.clone();
    let i = edited
        .iter()
        .position(|e| e.metadata.name.as_deref() == Some("sleep-foo-global"))
        .unwrap();
    edited[i].data["spec"]["endpoints"] = json!([]);
    s.service_entries = Ok(edited);
    let found = service_entries(&s);
    assert!(
        found
            .iter()
            .any(|f| f.status == Status::Fail && f.message.contains("sleep.foo.svc.cluster.local")),
        "{found:?}"
    );

    // missing
    s.service_entries = Ok(entries[..1].to_vec());
    let found = service_entries(&s);
    assert!(
        found
            .iter()
            .any(|f| f.status == Status::Fail && f.message.starts_with("missing"))
    );
}

#[test]
fn versions_fail_without_istio() {
    let mut s = seen();
    s.istio_versions = Ok(vec![]);
    assert_eq!(versions(&s).status, Status::Fail);
    s.istio_versions = Ok(vec!["v1".into(), "v1beta1".into()]);
    assert_eq!(versions(&s).status, Status::Pass);
}
