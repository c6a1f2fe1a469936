//! Whether an object in the cluster has drifted from what globaldns would
//! apply, judged on the fields globaldns owns only.
//!
//! Comparing the whole spec never settled when another field manager added
//! a field (`subjectAltNames` set by hand or by a policy engine): the object
//! always differed, and every pass applied it again. Server-side apply
//! (Kubernetes "Server-Side Apply", field management) merges what each
//! manager sets; globaldns must re-apply only when
//!
//! 1. a value it sets differs in the cluster (someone changed it, or the
//!    registry did), or
//! 2. the set of fields it owns differs from the set it would set now (a
//!    field it no longer sets must be applied away), read from the
//!    object's `managedFields` entry of its field manager.
//!
//! Maps are compared key by key (keys of other managers are not ours).
//! Lists whose elements are objects with a `name` (Istio's `ports`, a
//! `listType: map` keyed by name) are compared element by element by name;
//! other lists are atomic and compared whole, as the API server merges them.

use serde_json::{Map, Value};

/// What one object of the cluster holds, as far as drift goes.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub spec: Value,
    pub labels: Value,
    /// The `fieldsV1` of globaldns' own `Apply` entry in `managedFields`,
    /// if it has one.
    pub managed: Option<Value>,
}

impl Observed {
    /// What drift is judged on in a listed object: its spec, its labels,
    /// and field manager `manager`'s entry for the object itself.
    pub fn of(object: &kube::api::DynamicObject, manager: &str) -> Self {
        let metadata = serde_json::to_value(&object.metadata).unwrap_or(Value::Null);
        Observed {
            spec: object.data.get("spec").cloned().unwrap_or(Value::Null),
            labels: metadata.get("labels").cloned().unwrap_or(Value::Null),
            managed: managed_by(&metadata, manager),
        }
    }
}

/// The `fieldsV1` that field manager `manager` owns through `Apply` of the
/// object itself in `metadata.managedFields` (as the API server lists it),
/// if any.
pub fn managed_by(metadata: &Value, manager: &str) -> Option<Value> {
    managed_in(metadata, manager, None)
}

/// [`managed_by`] for the entry of `subresource` (`Some("status")`: the
/// applies to `/status`; `None`: those to the object itself). The API
/// server keeps one entry per manager, operation and subresource
/// (Kubernetes "Server-Side Apply", field management).
pub fn managed_in(metadata: &Value, manager: &str, subresource: Option<&str>) -> Option<Value> {
    metadata
        .get("managedFields")?
        .as_array()?
        .iter()
        .find(|entry| {
            entry["manager"] == manager
                && entry["operation"] == "Apply"
                && entry.get("subresource").and_then(Value::as_str) == subresource
        })
        .and_then(|entry| entry.get("fieldsV1").cloned())
}

/// Whether applying `spec` and `labels` would change anything globaldns
/// owns in `observed`.
pub fn drifted(spec: &Value, labels: &Value, observed: &Observed) -> bool {
    if differs(spec, &observed.spec) || differs(labels, &observed.labels) {
        return true;
    }
    let Some(managed) = &observed.managed else {
        // Not applied by globaldns yet (created by hand with the label, or
        // by an older field manager): one apply takes its fields over.
        return true;
    };
    let owned_spec = managed.get("f:spec").unwrap_or(&Value::Null);
    let owned_labels = managed
        .get("f:metadata")
        .and_then(|m| m.get("f:labels"))
        .unwrap_or(&Value::Null);
    !same_fields(spec, owned_spec) || !same_fields(labels, owned_labels)
}

/// Whether a value globaldns sets (`want`) differs from the cluster's:
/// maps key by key, lists of named objects by name, other values whole.
pub fn differs(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(want), Value::Object(have)) => want
            .iter()
            .any(|(key, value)| differs(value, have.get(key).unwrap_or(&Value::Null))),
        (Value::Array(want), Value::Array(have)) if keyed_by_name(want) => {
            want.iter().any(|element| {
                let name = &element["name"];
                let theirs = have.iter().find(|h| h["name"] == *name);
                theirs.is_none_or(|theirs| differs(element, theirs))
            })
        }
        _ => want != have,
    }
}

/// A list of objects that all have a `name`: merged by name.
fn keyed_by_name(list: &[Value]) -> bool {
    !list.is_empty()
        && list
            .iter()
            .all(|e| e.get("name").is_some_and(Value::is_string))
}

/// Whether the fields `want` sets are exactly those `owned` (a `fieldsV1`
/// map: `f:<field>` entries, `k:{...}` entries for elements of keyed lists,
/// `.` for the value itself) says globaldns owns.
fn same_fields(want: &Value, owned: &Value) -> bool {
    let owned = match owned {
        Value::Object(owned) => owned,
        // Owns nothing here: right only if it sets nothing here.
        _ => return is_empty(want),
    };
    match want {
        Value::Object(want) => {
            let mine = fields(owned, "f:");
            if mine.len() != want.len() {
                return false;
            }
            want.iter().all(|(key, value)| {
                owned
                    .get(&format!("f:{key}"))
                    .is_some_and(|sub| same_fields(value, sub))
            })
        }
        Value::Array(list) if keyed_by_name(list) => {
            let mine = fields(owned, "k:");
            mine.len() == list.len()
                && list.iter().all(|element| {
                    mine.iter().any(|(key, sub)| {
                        serde_json::from_str::<Value>(&key["k:".len()..])
                            .is_ok_and(|k| k.get("name") == element.get("name"))
                            && same_fields(element, sub)
                    })
                })
        }
        // A scalar or an atomic list: owned as a whole.
        _ => true,
    }
}

/// The entries of a `fieldsV1` map whose keys start with `prefix`.
fn fields<'a>(owned: &'a Map<String, Value>, prefix: &str) -> Vec<(&'a String, &'a Value)> {
    owned
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .collect()
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> Value {
        json!({
            "hosts": ["httpbin.bar.global"],
            "location": "MESH_INTERNAL",
            "resolution": "STATIC",
            "addresses": ["240.0.0.1"],
            "ports": [{"name": "http", "number": 8000, "protocol": "HTTP"}],
            "endpoints": [{"address": "192.0.2.1", "ports": {"http": 15443}}],
        })
    }

    fn labels() -> Value {
        json!({"app.kubernetes.io/managed-by": "globaldns"})
    }

    /// What the API server records for globaldns' apply of `spec()`.
    fn managed() -> Value {
        json!({
            "f:metadata": {"f:labels": {"f:app.kubernetes.io/managed-by": {}}},
            "f:spec": {
                "f:hosts": {}, "f:location": {}, "f:resolution": {}, "f:addresses": {},
                "f:endpoints": {},
                "f:ports": {"k:{\"name\":\"http\"}": {".": {}, "f:name": {}, "f:number": {}, "f:protocol": {}}},
            },
        })
    }

    fn observed(spec: Value, labels: Value) -> Observed {
        Observed {
            spec,
            labels,
            managed: Some(managed()),
        }
    }

    #[test]
    fn the_same_object_has_not_drifted() {
        assert!(!drifted(&spec(), &labels(), &observed(spec(), labels())));
    }

    /// Issue 10: another field manager added a field (then `exportTo`,
    /// which globaldns now sets itself; here `subjectAltNames`), a label, and
    /// a port of its own; every pass re-applied, forever. Fields of other
    /// managers are not drift.
    #[test]
    fn fields_of_other_managers_are_not_drift() {
        let mut theirs = spec();
        theirs["subjectAltNames"] = json!(["spiffe://example.com/ns/bar/sa/httpbin"]);
        theirs["ports"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "metrics", "number": 9090, "protocol": "HTTP"}));
        let mut their_labels = labels();
        their_labels["team"] = json!("payments");
        assert!(!drifted(
            &spec(),
            &labels(),
            &observed(theirs, their_labels)
        ));
    }

    #[test]
    fn a_changed_value_of_ours_is_drift() {
        let mut changed = spec();
        changed["addresses"] = json!(["240.0.0.9"]);
        assert!(drifted(&spec(), &labels(), &observed(changed, labels())));
        let mut port = spec();
        port["ports"][0]["number"] = json!(8080);
        assert!(drifted(&spec(), &labels(), &observed(port, labels())));
        // An atomic list is compared whole: an extra endpoint is drift.
        let mut endpoints = spec();
        endpoints["endpoints"]
            .as_array_mut()
            .unwrap()
            .push(json!({"address": "192.0.2.2"}));
        assert!(drifted(&spec(), &labels(), &observed(endpoints, labels())));
        assert!(drifted(&spec(), &labels(), &observed(spec(), json!({}))));
    }

    /// A field globaldns set before and sets no longer is still owned by
    /// it: one apply removes it.
    #[test]
    fn a_field_we_stopped_setting_is_drift() {
        let mut now = spec();
        now.as_object_mut().unwrap().remove("resolution");
        assert!(drifted(&now, &labels(), &observed(spec(), labels())));
        let mut fewer = spec();
        fewer["ports"] = json!([{"name": "http", "number": 8000, "protocol": "HTTP"}]);
        let mut managed_two = managed();
        managed_two["f:spec"]["f:ports"]["k:{\"name\":\"grpc\"}"] = json!({".": {}});
        let was_two = Observed {
            spec: spec(),
            labels: labels(),
            managed: Some(managed_two),
        };
        assert!(drifted(&fewer, &labels(), &was_two));
    }

    #[test]
    fn an_object_globaldns_never_applied_is_drift() {
        let never = Observed {
            spec: spec(),
            labels: labels(),
            managed: None,
        };
        assert!(drifted(&spec(), &labels(), &never));
    }

    #[test]
    fn managed_fields_are_read_for_our_manager_and_apply_only() {
        let metadata = json!({"managedFields": [
            {"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {"f:exportTo": {}}}},
            {"manager": "globaldns", "operation": "Update", "fieldsV1": {"f:x": {}}},
            {"manager": "globaldns", "operation": "Apply", "fieldsV1": managed()},
        ]});
        assert_eq!(managed_by(&metadata, "globaldns"), Some(managed()));
        assert_eq!(managed_by(&json!({}), "globaldns"), None);
    }
}
