//! Text to [`Registry`]: YAML or JSON, strict. Each cluster and service is
//! decoded on its own so that one bad entry does not hide the next: `check`
//! lists every problem, not only the first.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{Problem, RegistryError};
use super::model::Registry;

/// Nodes (maps, lists, scalars) a YAML registry may hold: about 15 per
/// service, so room for well over a million services.
const MAX_YAML_NODES: usize = 32 << 20;

/// The top-level keys a registry may have.
const TOP_LEVEL_KEYS: [&str; 2] = ["clusters", "services"];

/// Parses registry text. `origin` names the source in errors (a file path).
///
/// JSON is recognised by its leading `{`; everything else is read as YAML.
/// An empty document is an error, not an empty registry: an empty file is
/// far more often a write caught half-way than a wish to serve nothing.
pub fn parse(text: &str, origin: &str) -> Result<Registry, RegistryError> {
    let json = text.trim_start().starts_with('{');
    // A well-formed registry decodes straight into the model, which at
    // 100,000 services is several times faster and smaller than going
    // through a document tree. Anything that fails (or is empty) takes the
    // slow path below, which explains every problem with its path.
    let direct = if json {
        serde_json::from_str::<Registry>(text).ok()
    } else {
        serde_saphyr::from_str_with_options::<Registry>(text, yaml_options()).ok()
    };
    if let Some(registry) = direct.filter(|r| !r.clusters.is_empty() || !r.services.is_empty()) {
        return Ok(registry);
    }
    let (format, value) =
        if json {
            let value = serde_json::from_str::<Value>(text).map_err(|e| RegistryError::Syntax {
                origin: origin.to_string(),
                format: "JSON",
                message: e.to_string(),
            })?;
            ("JSON", value)
        } else {
            let value = serde_saphyr::from_str_with_options::<Value>(text, yaml_options())
                .map_err(|e| RegistryError::Syntax {
                    origin: origin.to_string(),
                    format: "YAML",
                    // The parser calls its input `<input>`; say which file.
                    message: e.to_string().replace("<input>", origin),
                })?;
            ("YAML", value)
        };
    let object = match value {
        Value::Object(object) => object,
        Value::Null => {
            return Err(RegistryError::Syntax {
                origin: origin.to_string(),
                format,
                message: "the document is empty".to_string(),
            });
        }
        other => {
            return Err(RegistryError::Syntax {
                origin: origin.to_string(),
                format,
                message: format!(
                    "expected a mapping with `clusters` and `services`, found {}",
                    kind(&other)
                ),
            });
        }
    };

    let mut problems = Vec::new();
    for key in object.keys() {
        if !TOP_LEVEL_KEYS.contains(&key.as_str()) {
            problems.push(Problem::new(
                key.clone(),
                format!("unknown field `{key}`, expected one of `clusters`, `services`"),
            ));
        }
    }
    let registry = Registry {
        clusters: list(&object, "clusters", &mut problems),
        services: list(&object, "services", &mut problems),
    };
    RegistryError::unless_problems(origin, problems, registry)
}

fn yaml_options() -> serde_saphyr::Options {
    // YAML 1.2 booleans only: under YAML 1.1 rules a namespace called `no`
    // or `n` would silently become `false`.
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    // The parser's default budget stops at 250,000 nodes, about 17,000
    // services. Every node costs at least a byte of input, which the budget
    // already caps (256 MiB), and aliases, the one way to make many nodes
    // from few bytes, keep their default caps.
    let mut budget = serde_saphyr::budget::Budget::default();
    budget.max_nodes = MAX_YAML_NODES;
    budget.max_events = 2 * MAX_YAML_NODES;
    options.budget = Some(budget);
    options
}

/// Decodes `object[key]` as a list, element by element, recording a problem
/// (with its path) for each element that does not decode.
fn list<T: DeserializeOwned>(
    object: &serde_json::Map<String, Value>,
    key: &str,
    problems: &mut Vec<Problem>,
) -> Vec<T> {
    let items = match object.get(key) {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(other) => {
            problems.push(Problem::new(
                key,
                format!("expected a list, found {}", kind(other)),
            ));
            return Vec::new();
        }
    };
    let mut decoded = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match serde_path_to_error::deserialize::<_, T>(item) {
            Ok(value) => decoded.push(value),
            Err(e) => {
                let inner = e.path().to_string();
                let path = if inner == "." {
                    format!("{key}[{i}]")
                } else {
                    format!("{key}[{i}].{inner}")
                };
                problems.push(Problem::new(path, e.into_inner().to_string()));
            }
        }
    }
    decoded
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        match parse(text, "test.yaml") {
            Err(RegistryError::Invalid { problems, .. }) => {
                problems.iter().map(ToString::to_string).collect()
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    /// The YAML parser's own default budget (250,000 nodes) would refuse a
    /// registry of 20,000 services; ours must take 100,000 and more.
    #[test]
    fn large_registries_are_within_the_yaml_budget() {
        let mut text = String::from(
            "clusters:\n  - name: east\n    gateways: [{address: 192.0.2.1}]\nservices:\n",
        );
        for i in 0..20_000 {
            text.push_str(&format!(
                "  - {{name: s{i}, namespace: n, exportedFrom: [east], ports: [{{name: http, number: 80, protocol: HTTP}}]}}\n"
            ));
        }
        let registry = parse(&text, "big.yaml").expect("parses");
        assert_eq!(registry.services.len(), 20_000);
    }

    #[test]
    fn yaml_and_json_give_the_same_registry() {
        let yaml =
            "clusters:\n  - name: west\n    gateways:\n      - address: 192.0.2.1\nservices: []\n";
        let json =
            r#"{"clusters":[{"name":"west","gateways":[{"address":"192.0.2.1"}]}],"services":[]}"#;
        let a = parse(yaml, "a").unwrap();
        let b = parse(json, "b").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.clusters[0].gateways[0].port, 15443,
            "default gateway port"
        );
    }

    #[test]
    fn empty_document_is_an_error_not_an_empty_registry() {
        for text in ["", "   \n", "# only a comment\n"] {
            let err = parse(text, "r.yaml").unwrap_err();
            assert!(err.to_string().contains("empty"), "{text:?}: {err}");
        }
    }

    #[test]
    fn unknown_fields_are_reported_with_their_path() {
        let found = problems(
            "clusters:\n  - name: a\n    gateway: []\nservices:\n  - name: s\n    namespace: n\n    exportedFrom: [a]\n    ports:\n      - {name: http, number: 80, protocol: HTTP, targetPort: 8080}\nextra: 1\n",
        );
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].starts_with("extra: unknown field `extra`"));
        assert!(
            found[1].starts_with("clusters[0].gateway: unknown field `gateway`"),
            "{found:?}"
        );
        assert!(
            found[2].starts_with("services[0].ports[0].targetPort: unknown field `targetPort`"),
            "{found:?}"
        );
    }

    #[test]
    fn wrong_types_are_reported_with_their_path() {
        let found = problems(
            "services:\n  - name: s\n    namespace: n\n    exportedFrom: west\n    ports: []\n",
        );
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("services[0].exportedFrom: invalid type"),
            "{found:?}"
        );
    }

    #[test]
    fn yaml_1_1_booleans_stay_strings() {
        let r = parse(
            "services:\n  - {name: s, namespace: no, exportedFrom: [n], ports: []}\n",
            "t",
        )
        .unwrap();
        assert_eq!(r.services[0].namespace, "no");
        assert_eq!(r.services[0].exported_from, ["n"]);
    }

    #[test]
    fn syntax_errors_name_the_origin() {
        let err = parse("clusters: [\n", "/etc/globaldns/registry.yaml").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("/etc/globaldns/registry.yaml") && text.contains("YAML"),
            "{text}"
        );
        let err = parse("{\"clusters\": [", "r.json").unwrap_err();
        assert!(err.to_string().contains("JSON"), "{err}");
    }

    #[test]
    fn a_scalar_document_is_rejected() {
        let err = parse("just text", "r.yaml").unwrap_err();
        assert!(err.to_string().contains("expected a mapping"), "{err}");
    }
}
