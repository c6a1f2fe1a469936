use serde_json::json;

use super::*;
use crate::commands::doctor::Status;

fn object(
    kind: &str,
    namespace: &str,
    name: &str,
    owned: bool,
    rest: serde_json::Value,
) -> DynamicObject {
    let labels = if owned {
        json!({"app.kubernetes.io/managed-by": "globaldns"})
    } else {
        json!({})
    };
    let mut value = json!({"apiVersion": "multicluster.x-k8s.io/v1beta1", "kind": kind,
                           "metadata": {"name": name, "namespace": namespace, "labels": labels}});
    for (k, v) in rest.as_object().unwrap() {
        value[k] = v.clone();
    }
    serde_json::from_value(value).unwrap()
}

fn condition(kind: &str, status: &str, reason: &str, message: &str) -> serde_json::Value {
    json!({"type": kind, "status": status, "reason": reason, "message": message,
           "lastTransitionTime": "2026-12-07T10:00:00Z", "observedGeneration": 1})
}

fn seen(context: &str, exports: Vec<DynamicObject>, imports: Vec<DynamicObject>) -> Observed {
    let mut seen = Observed::unread(context);
    let registry = crate::registry::load_str(
        "clusters:\n  - name: east\n    gateways: [{address: 192.0.2.10}]\nservices:\n  - {name: httpbin, namespace: bar, exportedFrom: [east], ports: [{name: http, number: 80, protocol: HTTP}]}\n  - {name: gone, namespace: baz, exportedFrom: [east], ports: [{name: http, number: 80, protocol: HTTP}]}\n",
        "test",
        &["global".to_string()],
    )
    .unwrap();
    seen.registry = Ok((registry, "test".into()));
    seen.mcs = Ok(Some(McsSeen {
        version: "v1beta1".into(),
        exports,
        imports,
        namespaces: ["bar", "baz"].map(String::from).into(),
    }));
    seen
}

/// Issue 29: an export that is not Ready is named with the condition that
/// keeps it (the conflict first) and its fix; one without conditions says
/// globaldns has not judged it; Ready ones pass together.
#[test]
fn exports_not_ready_are_named_with_why_and_the_fix() {
    let ready = object(
        "ServiceExport",
        "bar",
        "httpbin",
        false,
        json!({"status": {"conditions": [
        condition("Valid", "True", "Valid", "ok"), condition("Ready", "True", "Exported", "ok")]}}),
    );
    let conflict = object(
        "ServiceExport",
        "bar",
        "reviews",
        false,
        json!({"status": {"conditions": [
        condition("Valid", "True", "Valid", "ok"),
        condition("Ready", "False", "Failed", "left out"),
        condition("Conflict", "True", "PortConflict", "ports differ (http/8000, exported by west)")]}}),
    );
    let orphan = object(
        "ServiceExport",
        "bar",
        "orphan",
        false,
        json!({"status": {"conditions": [
        condition("Valid", "False", "NoService", "no Service bar/orphan to export"),
        condition("Ready", "False", "Failed", "not exported")]}}),
    );
    let unjudged = object("ServiceExport", "bar", "new", false, json!({}));
    let found = service_exports(&seen("east", vec![ready.clone()], vec![]));
    assert_eq!(
        (found.len(), found[0].status),
        (1, Status::Pass),
        "{found:?}"
    );
    assert!(found[0].message.starts_with("1 exported"), "{found:?}");
    let found = service_exports(&seen(
        "east",
        vec![ready, conflict, orphan, unjudged],
        vec![],
    ));
    let said: Vec<(&str, &str)> = found
        .iter()
        .map(|f| (f.object.as_str(), f.message.as_str()))
        .collect();
    assert_eq!(found.len(), 3, "{said:?}");
    assert!(found.iter().all(|f| f.status == Status::Warn));
    assert_eq!(said[0].0, "ServiceExport bar/reviews");
    assert!(said[0].1.contains("PortConflict: ports differ"), "{said:?}");
    assert!(found[0].fix.as_deref().unwrap().contains("same ports"));
    assert!(
        said[1].1.contains("NoService: no Service bar/orphan"),
        "{said:?}"
    );
    assert!(said[2].1.contains("not judged"), "{said:?}");
    // No MCS API: no finding at all.
    let mut none = seen("east", vec![], vec![]);
    none.mcs = Ok(None);
    assert!(service_exports(&none).is_empty());
}

/// Every registry service needs an owned ServiceImport with an address;
/// another implementation's of the same name does not count.
#[test]
fn a_service_without_its_import_is_warned() {
    let ok = object(
        "ServiceImport",
        "bar",
        "httpbin",
        true,
        json!({"spec": {"type": "ClusterSetIP", "ips": ["240.0.0.1"]}}),
    );
    let theirs = object(
        "ServiceImport",
        "baz",
        "gone",
        false,
        json!({"spec": {"type": "ClusterSetIP", "ips": ["10.0.0.1"]}}),
    );
    let found = service_imports(&seen("east", vec![], vec![ok.clone(), theirs]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].status, found[0].object.as_str()),
        (Status::Warn, "ServiceImport baz/gone")
    );
    assert_eq!(found[0].message, "missing");
    let both = object(
        "ServiceImport",
        "baz",
        "gone",
        true,
        json!({"spec": {"type": "ClusterSetIP", "ips": ["240.0.0.2"]}}),
    );
    let found = service_imports(&seen("east", vec![], vec![ok.clone(), both]));
    assert_eq!(found[0].status, Status::Pass, "{found:?}");
    // A namespace this cluster lacks: no import expected there.
    let mut no_baz = seen("east", vec![], vec![ok]);
    if let Ok(Some(mcs)) = &mut no_baz.mcs {
        mcs.namespaces.remove("baz");
    }
    let found = service_imports(&no_baz);
    assert_eq!(found[0].status, Status::Pass, "{found:?}");
    assert!(
        found[0]
            .message
            .contains("1 in namespaces this cluster does not have"),
        "{found:?}"
    );
}

/// Across clusters, one ClusterSetIP per import; a difference fails and
/// names each cluster's.
#[test]
fn cluster_set_ips_must_agree_across_clusters() {
    let import = |ip: &str| {
        object(
            "ServiceImport",
            "bar",
            "httpbin",
            true,
            json!({"spec": {"ips": [ip]}}),
        )
    };
    let same = [
        seen("east", vec![], vec![import("240.0.0.1")]),
        seen("west", vec![], vec![import("240.0.0.1")]),
    ];
    let found = cluster_set_ip_agreement(&same);
    assert_eq!(
        (found.len(), found[0].status),
        (1, Status::Pass),
        "{found:?}"
    );
    let apart = [
        seen("east", vec![], vec![import("240.0.0.1")]),
        seen("west", vec![], vec![import("240.0.0.7")]),
    ];
    let found = cluster_set_ip_agreement(&apart);
    assert_eq!(found[0].status, Status::Fail, "{found:?}");
    assert!(
        found[0]
            .message
            .contains("east: [\"240.0.0.1\"], west: [\"240.0.0.7\"]"),
        "{found:?}"
    );
}
