//! Every object `render` prints (ServiceEntries, the Gateway,
//! DestinationRules) is valid against Istio's own CRD of its kind
//! (in the version the object says, v1, v1beta1 or v1alpha3, from the file of Istio's CRDs that `GLOBALDNS_ISTIO_CRDS`
//! names: upstream's `manifests/charts/base/files/crd-all.gen.yaml`): the
//! structural OpenAPI schema (types, required fields, enums, lengths and
//! counts, no unknown fields) and its CEL rules (`x-kubernetes-validations`,
//! evaluated with the `cel` crate), as an API server would check them.
//!
//! The validator covers the schema keywords this CRD uses and fails on any
//! other, so a newer CRD cannot pass by being half-read.
//!
//! `cargo test` leaves this suite out (it needs Istio's CRDs, which are not
//! in the repository); `.ci/run` runs it:
//! `GLOBALDNS_ISTIO_CRDS=crd-all.gen.yaml cargo test --test istio_schema`.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;

use globaldns::mesh::service_entry::{Resolution, ServiceEntry};
use globaldns::mesh::{Target, render};
use globaldns::registry::load_str;
use globaldns::vip::{Allocator, DEFAULT_V4_RANGE, Family, Table, VipRange};
use serde_json::Value;

/// The CRD `name` from the file `GLOBALDNS_ISTIO_CRDS` names (read once).
fn istio_crd(name: &str) -> Value {
    static DOCS: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    DOCS.get_or_init(read_istio_crds)
        .iter()
        .find(|d| d["metadata"]["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("GLOBALDNS_ISTIO_CRDS has no CRD {name}"))
}

fn read_istio_crds() -> Vec<Value> {
    let path = std::env::var("GLOBALDNS_ISTIO_CRDS").expect(
        "GLOBALDNS_ISTIO_CRDS must name a file of Istio's CRDs (crd-all.gen.yaml; \
         .ci/run uses ../shared/testdata/istio-crds.yaml)",
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `spec` schema of version `v1` of `kind`'s CRD, and the API group.
fn v1_spec_schema(kind: &str) -> (Value, String) {
    spec_schema(kind, "v1").expect("the CRD serves v1")
}

/// The `spec` schema of `version` of `kind`'s CRD, and the API group;
/// `None` when the CRD does not serve that version.
fn spec_schema(kind: &str, version: &str) -> Option<(Value, String)> {
    let plural = match kind {
        "ServiceEntry" => "serviceentries",
        "Gateway" => "gateways",
        "DestinationRule" => "destinationrules",
        other => panic!("globaldns writes no {other}"),
    };
    let crd = istio_crd(&format!("{plural}.networking.istio.io"));
    let group = crd["spec"]["group"].as_str().unwrap().to_string();
    let version = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == version && v["served"] == true)?
        .clone();
    let spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"].clone();
    assert!(spec.is_object());
    Some((spec, group))
}

/// Checks `value` against `schema`; returns every violation with its path.
fn validate(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    const KNOWN: [&str; 21] = [
        "oneOf",
        "allOf",
        "nullable",
        "minimum",
        "maximum",
        "type",
        "description",
        "properties",
        "required",
        "items",
        "enum",
        "maxItems",
        "minItems",
        "maxLength",
        "minLength",
        "maxProperties",
        "additionalProperties",
        "x-kubernetes-validations",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "format",
    ];
    let schema = schema.as_object().unwrap();
    for key in schema.keys() {
        assert!(
            KNOWN.contains(&key.as_str()) || path_allows_any(schema),
            "schema keyword `{key}` at {path} is not understood by this validator"
        );
    }
    if let Some(choices) = schema.get("oneOf").and_then(Value::as_array) {
        let holding = choices.iter().filter(|c| holds(c, value, path)).count();
        if holding != 1 {
            errors.push(format!(
                "{path}: {holding} of the `oneOf` choices hold, not exactly one"
            ));
        }
    }
    for choice in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if !holds(choice, value, path) {
            errors.push(format!(
                "{path}: an `allOf` condition does not hold: {choice}"
            ));
        }
    }
    if value.is_null() && schema.get("nullable") == Some(&Value::Bool(true)) {
        return;
    }
    let ty = schema.get("type").and_then(Value::as_str);
    let type_ok = match ty {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("boolean") => value.is_boolean(),
        Some(other) => panic!("type `{other}` at {path}"),
        None => true,
    };
    if !type_ok {
        errors.push(format!("{path}: expected {ty:?}, found {value}"));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        errors.push(format!("{path}: {value} is not one of {allowed:?}"));
    }
    let count = |key: &str| schema.get(key).and_then(Value::as_u64);
    if let Some(s) = value.as_str() {
        let len = s.chars().count() as u64;
        if count("maxLength").is_some_and(|max| len > max) {
            errors.push(format!("{path}: longer than {:?}", count("maxLength")));
        }
        if count("minLength").is_some_and(|min| len < min) {
            errors.push(format!("{path}: shorter than {:?}", count("minLength")));
        }
    }
    if let Some(n) = value.as_i64() {
        let bound = |key: &str| schema.get(key).and_then(Value::as_i64);
        if bound("maximum").is_some_and(|max| n > max)
            || bound("minimum").is_some_and(|min| n < min)
        {
            errors.push(format!("{path}: {n} out of bounds"));
        }
    }
    if let Some(items) = value.as_array() {
        let len = items.len() as u64;
        if count("maxItems").is_some_and(|max| len > max)
            || count("minItems").is_some_and(|min| len < min)
        {
            errors.push(format!("{path}: {len} items out of bounds"));
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                validate(item_schema, item, &format!("{path}[{i}]"), errors);
            }
        }
    }
    if let Some(object) = value.as_object() {
        if count("maxProperties").is_some_and(|max| object.len() as u64 > max) {
            errors.push(format!("{path}: too many properties"));
        }
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !object.contains_key(required.as_str().unwrap()) {
                errors.push(format!("{path}: `{required}` is required"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (key, field) in object {
            let field_path = format!("{path}.{key}");
            match (
                properties.and_then(|p| p.get(key)),
                schema.get("additionalProperties"),
            ) {
                (Some(field_schema), _) => validate(field_schema, field, &field_path, errors),
                (None, Some(values)) => validate(values, field, &field_path, errors),
                // The API server would prune it; a field we meant to set
                // and that Istio does not know is a bug.
                (None, None) => errors.push(format!("{field_path}: unknown field")),
            }
        }
    }
    for rule in schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let source = rule["rule"].as_str().unwrap();
        match cel_holds(source, value) {
            Ok(true) => {}
            Ok(false) => errors.push(format!("{path}: {} ({source})", rule["message"])),
            Err(e) => errors.push(format!("{path}: rule `{source}` did not evaluate: {e}")),
        }
    }
}

/// Whether `value` meets `schema`, one of the combinators Istio's CRDs
/// write their `oneOf` and `allOf` fields with: `required`, `not`,
/// `anyOf`, `allOf`, `oneOf`.
/// Any other keyword there is one this validator does not know.
fn holds(schema: &Value, value: &Value, path: &str) -> bool {
    let schema = schema.as_object().unwrap();
    schema.iter().all(|(key, rule)| match key.as_str() {
        "required" => rule
            .as_array()
            .unwrap()
            .iter()
            .all(|k| value.get(k.as_str().unwrap()).is_some()),
        "not" => !holds(rule, value, path),
        "anyOf" => rule
            .as_array()
            .unwrap()
            .iter()
            .any(|c| holds(c, value, path)),
        "allOf" => rule
            .as_array()
            .unwrap()
            .iter()
            .all(|c| holds(c, value, path)),
        "oneOf" => {
            rule.as_array()
                .unwrap()
                .iter()
                .filter(|c| holds(c, value, path))
                .count()
                == 1
        }
        other => panic!("schema keyword `{other}` inside `oneOf` at {path} is not understood"),
    })
}

fn path_allows_any(schema: &serde_json::Map<String, Value>) -> bool {
    schema.contains_key("x-kubernetes-preserve-unknown-fields") || schema.contains_key("anyOf")
}

fn cel_holds(source: &str, value: &Value) -> Result<bool, String> {
    let mut env = cel::Env::stdlib();
    env.add_extension(cel::extensions::strings)
        .map_err(|e| format!("{e:?}"))?;
    let env = Arc::new(env);
    let program = env.compile(source).map_err(|e| format!("{e:?}"))?;
    let mut context = cel::Context::with_env(env);
    // Kubernetes' CEL library has `duration(string)` (Istio's CRDs check
    // durations with it); here it gives nanoseconds, which compare alike.
    context
        .add_function("duration", |text: Arc<String>| go_duration_nanos(&text))
        .map_err(|e| format!("{e:?}"))?;
    context
        .add_variable("self", cel::to_value(value).map_err(|e| e.to_string())?)
        .map_err(|e| format!("{e:?}"))?;
    match program.execute(&context) {
        Ok(cel::Value::Bool(b)) => Ok(b),
        other => Err(format!("{other:?}")),
    }
}

/// A Go duration (`1.5s`, `250ms`, `1h30m`) in nanoseconds; -1, which
/// no rule accepts as a duration of at least 1 ms, when it is not one.
fn go_duration_nanos(text: &str) -> i64 {
    const UNITS: [(&str, f64); 6] = [
        ("ns", 1.0),
        ("us", 1e3),
        ("ms", 1e6),
        ("s", 1e9),
        ("m", 60e9),
        ("h", 3600e9),
    ];
    let mut rest = text;
    let mut total = 0.0;
    if rest.is_empty() {
        return -1;
    }
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let Ok(number) = rest[..split].parse::<f64>() else {
            return -1;
        };
        rest = &rest[split..];
        // The longest unit that matches: `ms` before `m`.
        let Some((unit, scale)) = UNITS
            .iter()
            .filter(|(u, _)| rest.starts_with(u))
            .max_by_key(|(u, _)| u.len())
        else {
            return -1;
        };
        total += number * scale;
        rest = &rest[unit.len()..];
    }
    total as i64
}

/// Every violation of `object` against the CRD of its kind, empty when it
/// is valid.
fn violations(object: &Value) -> Vec<String> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let version = api_version
        .strip_prefix("networking.istio.io/")
        .unwrap_or_default();
    let Some((schema, _)) = spec_schema(kind, version) else {
        return vec![format!("{api_version} {kind}: not served by Istio's CRD")];
    };
    let mut errors = Vec::new();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    if name.len() > 253
        || !name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
    {
        errors.push(format!(
            "metadata.name `{name}` is not a DNS-1123 subdomain"
        ));
    }
    validate(&schema, &object["spec"], "spec", &mut errors);
    errors
}

fn entry_violations(entry: &ServiceEntry) -> Vec<String> {
    violations(&serde_json::to_value(entry).unwrap())
}

fn render_cli(example: &str, cluster: &str) -> Vec<Value> {
    render_cli_in(example, cluster, "v1")
}

/// `render` of `example` for `cluster`, in `networking.istio.io/<version>`.
fn render_cli_in(example: &str, cluster: &str, version: &str) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_globaldns"))
        .args([
            "render",
            "--istio-api-version",
            version,
            "--destination-rules",
            "--registry",
            &format!("{}/examples/{example}", env!("CARGO_MANIFEST_DIR")),
            "--cluster",
            cluster,
            "--zone",
            "global",
            "--zone",
            "region",
            "--vip-range-v6",
            "fd00:6c6f:6261:6c00::/64",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

#[test]
/// Every example, every cluster, in each version `render
/// --istio-api-version` writes (issue 24: v1 is served only from Istio
/// 1.22; v1beta1 from 1.5, v1alpha3 from 1.1): each object says the
/// version asked for and validates against that version's schema.
fn rendered_objects_validate_against_istios_crds() {
    for version in ["v1", "v1beta1", "v1alpha3"] {
        let mut checked = std::collections::BTreeMap::new();
        for (example, clusters) in [
            ("registry.yaml", &["east", "west"][..]),
            ("bookinfo.yaml", &["cluster1", "cluster2"]),
            ("vm.yaml", &["east", "west"]),
            ("failover.yaml", &["east", "west", "south", "north"]),
        ] {
            for &cluster in clusters {
                for object in render_cli_in(example, cluster, version) {
                    assert_eq!(
                        object["apiVersion"],
                        format!("networking.istio.io/{version}").as_str()
                    );
                    assert_eq!(violations(&object), Vec::<String>::new(), "{object:#}");
                    *checked
                        .entry(object["kind"].as_str().unwrap().to_string())
                        .or_insert(0) += 1;
                }
            }
        }
        assert!(checked["ServiceEntry"] >= 8, "{version}: {checked:?}");
        assert!(checked["Gateway"] >= 3, "{version}: {checked:?}");
        assert!(checked["DestinationRule"] >= 8, "{version}: {checked:?}");
    }
}

#[test]
fn hostname_gateways_and_clashing_names_validate_too() {
    let text = "\
clusters:
  - name: east
    network: net-east
    gateways: [{address: 192.0.2.1}, {address: 192.0.2.2, port: 443}]
  - name: west
    locality: eu-west1/eu-west1-b/rack-7
    gateways: [{address: gw.west.example.com}]
services:
  - {name: a-b, namespace: c, exportedFrom: [east, west], ports: [{name: http, number: 80, protocol: HTTP}, {name: grpc-api, number: 9090, protocol: GRPC}]}
  - {name: a, namespace: b-c, exportedFrom: [west], ports: [{name: tcp, number: 5432, protocol: TCP}], addresses: ['2001:db8::7']}
";
    let zones = vec!["global".to_string()];
    let registry = load_str(text, "test.yaml", &zones).unwrap();
    let allocator = Allocator {
        v4: VipRange::new(DEFAULT_V4_RANGE.parse().unwrap(), Family::V4).unwrap(),
        v6: Some(VipRange::new("fd00::/64".parse().unwrap(), Family::V6).unwrap()),
        quarantine: 600,
    };
    let mut table = Table::default();
    allocator.reconcile(
        &mut table,
        &globaldns::index::wants(&registry, &zones, false),
        0,
    );
    for cluster in ["east", "west"] {
        let mut target = Target::new(cluster, "istio-system");
        target.destination_rules = true;
        target.cluster_domain = "corp.example".to_string();
        for object in render(&registry, &zones, false, &allocator, &table, &target).unwrap() {
            let value = serde_json::to_value(&object).unwrap();
            assert_eq!(violations(&value), Vec::<String>::new(), "{value:#}");
        }
    }
}

/// The validator itself must bite: entries broken the ways Istio's CRD
/// forbids are refused, each with the rule that caught it.
#[test]
fn the_validator_refuses_what_istio_refuses() {
    let good: ServiceEntry =
        serde_json::from_value(render_cli("registry.yaml", "east").remove(0)).unwrap();
    assert!(entry_violations(&good).is_empty());
    let mut cases: Vec<(&str, ServiceEntry)> = Vec::new();
    let mut e = good.clone();
    e.spec.ports.push(e.spec.ports[0].clone());
    cases.push(("port number cannot be duplicated", e));
    let mut e = good.clone();
    e.spec.ports[0].number = 70000;
    cases.push(("port must be between 1-65535", e));
    let mut e = good.clone();
    e.spec.hosts = vec!["*".to_string()];
    cases.push(("hostname cannot be wildcard", e));
    let mut e = good.clone();
    e.spec.endpoints[0].ports = BTreeMap::from([("bad_name".to_string(), 15443)]);
    cases.push(("port name must be valid", e));
    let mut e = good.clone();
    e.spec.hosts.clear();
    cases.push(("items out of bounds", e));
    let mut e = good.clone();
    e.spec.addresses = vec!["240.0.0.0/12".to_string()];
    e.spec.resolution = Resolution::Dns;
    cases.push((
        "CIDR addresses are allowed only for NONE/STATIC resolution",
        e,
    ));
    for (expected, entry) in cases {
        let errors = entry_violations(&entry);
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "`{expected}` not reported: {errors:?}"
        );
    }
    // The failover policy's rules: a duration under 1 ms, and two load
    // balancers at once, are refused as Istio's CRD refuses them.
    let rule = render_cli("failover.yaml", "north")
        .into_iter()
        .find(|o| o["kind"] == "DestinationRule")
        .expect("the failover example renders a DestinationRule for north");
    assert!(violations(&rule).is_empty(), "{rule:#}");
    let mut short = rule.clone();
    short["spec"]["trafficPolicy"]["outlierDetection"]["interval"] = serde_json::json!("0s");
    let mut both = rule.clone();
    both["spec"]["trafficPolicy"]["loadBalancer"]["simple"] = serde_json::json!("RANDOM");
    both["spec"]["trafficPolicy"]["loadBalancer"]["consistentHash"] =
        serde_json::json!({"useSourceIp": true});
    for (expected, object) in [
        ("duration(self) >= duration('1ms')", short),
        ("oneOf", both),
    ] {
        let errors = violations(&object);
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "`{expected}` not reported: {errors:?}"
        );
    }
    let mut unknown = serde_json::to_value(&good.spec).unwrap();
    unknown["exportTo"] = serde_json::json!(["."]);
    unknown["bogus"] = serde_json::json!(1);
    let (schema, _) = v1_spec_schema("ServiceEntry");
    let mut errors = Vec::new();
    validate(&schema, &unknown, "spec", &mut errors);
    assert_eq!(errors, ["spec.bogus: unknown field"]);
}
