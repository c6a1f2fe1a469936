//! Two sets of Kubernetes objects compared object for object and field for
//! field, with a failure that names each object and path that differs.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// An object's identity: apiVersion, kind, namespace (empty when
/// cluster-scoped), name.
type Key = (String, String, String, String);

fn key(doc: &Value) -> Key {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (
        text(&doc["apiVersion"]),
        text(&doc["kind"]),
        text(&doc["metadata"]["namespace"]),
        text(&doc["metadata"]["name"]),
    )
}

fn show(key: &Key) -> String {
    let (api, kind, ns, name) = key;
    if ns.is_empty() {
        format!("{kind} {name} ({api})")
    } else {
        format!("{kind} {ns}/{name} ({api})")
    }
}

/// The objects by identity; one object twice is a failure.
fn by_key(docs: Vec<Value>, what: &str) -> BTreeMap<Key, Value> {
    let mut objects = BTreeMap::new();
    for doc in docs {
        let k = key(&doc);
        assert!(
            objects.insert(k.clone(), doc).is_none(),
            "{what}: {} twice",
            show(&k)
        );
    }
    objects
}

/// Where `a` and `b` differ, one line per path.
fn differences(path: &str, a: &Value, b: &Value, found: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let at = format!("{path}.{k}");
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => differences(&at, u, v, found),
                    (Some(u), None) => found.push(format!("{at}: kustomize {u}, chart has none")),
                    (None, Some(v)) => found.push(format!("{at}: chart {v}, kustomize has none")),
                    (None, None) => unreachable!(),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                differences(&format!("{path}[{i}]"), u, v, found);
            }
        }
        // One number in JSON and to the API server: kustomize rewrites
        // the CRDs' `maximum: 65535.0` as `65535`, Helm keeps the text.
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => {}
        _ if a == b => {}
        _ => found.push(format!("{path}: kustomize {a}, chart {b}")),
    }
}

/// The chart's objects are the kustomize ones, object for object and field
/// for field; the failure names each object and path that differs.
pub fn assert_same_objects(variant: &str, kustomized: Vec<Value>, charted: Vec<Value>) {
    let expected = by_key(kustomized, "kustomize");
    let actual = by_key(charted, "chart");
    let mut problems = Vec::new();
    for (k, want) in &expected {
        match actual.get(k) {
            None => problems.push(format!("{}: only in kustomize", show(k))),
            Some(got) => {
                let mut found = Vec::new();
                differences("", want, got, &mut found);
                for line in found {
                    problems.push(format!("{}: {line}", show(k)));
                }
            }
        }
    }
    for k in actual.keys().filter(|k| !expected.contains_key(*k)) {
        problems.push(format!("{}: only in the chart", show(k)));
    }
    assert!(
        problems.is_empty(),
        "{variant}: the chart and the kustomization differ:\n  {}",
        problems.join("\n  ")
    );
}
