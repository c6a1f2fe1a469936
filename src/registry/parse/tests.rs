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
    // In the order of the file.
    assert!(
        found[0].starts_with("clusters[0].gateway: unknown field `gateway`"),
        "{found:?}"
    );
    assert!(
        found[1].starts_with("services[0].ports[0].targetPort: unknown field `targetPort`"),
        "{found:?}"
    );
    assert!(found[2].starts_with("extra: unknown field `extra`"));
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
    assert_eq!(r.services[0].exported_from.as_slice(), ["n"]);
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

/// Issue 13: one entry with several bad fields reports each of them, with
/// its path and its line, not only the first serde meets; in the order
/// of the file.
#[test]
fn every_bad_field_of_an_entry_is_reported_with_its_line() {
    let text = "\
clusters:
  - name: east
    gateways: [{address: 192.0.2.1}]
services:
  - name: fine
    namespace: n
    exportedFrom: [east]
    ports: [{name: http, number: 80, protocol: HTTP}]
  - name: broken
    namespace: [x]
    exportedFrom: east
    ports:
      - {name: http, number: eighty, protocol: HTTP}
      - {name: [grpc], number: 81}
    colour: red
";
    let err = parse(text, "bad.yaml").unwrap_err();
    let RegistryError::Invalid { problems, .. } = &err else {
        panic!("{err}")
    };
    let found: Vec<(String, u64)> = problems
        .iter()
        .map(|p| (p.path.clone(), p.location.expect("located").line))
        .collect();
    assert_eq!(
        found,
        [
            ("services[1].namespace".to_string(), 10),
            ("services[1].exportedFrom".to_string(), 11),
            ("services[1].ports[0].number".to_string(), 13),
            ("services[1].ports[1]".to_string(), 14),
            ("services[1].ports[1].name".to_string(), 14),
            ("services[1].colour".to_string(), 15),
        ],
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains(
            "bad.yaml:10:5: services[1].namespace: invalid type: sequence, expected a string"
        ),
        "{text}"
    );
    assert!(
        text.contains("services[1].ports[1]: missing field `protocol`"),
        "{text}"
    );
}

/// JSON is located as well: the same parser reads it for the lines.
#[test]
fn json_problems_are_located_too() {
    let text = "{\"services\": [\n  {\"name\": 1, \"namespace\": 2, \"exportedFrom\": [], \"ports\": []}\n]}\n";
    let err = parse(text, "r.json").unwrap_err().to_string();
    assert!(
        err.contains("r.json:2:4: services[0].name: invalid type"),
        "{err}"
    );
    assert!(
        err.contains("r.json:2:15: services[0].namespace: invalid type"),
        "{err}"
    );
}

/// A key given twice is refused, whichever the format and whatever holds
/// it: a struct's field (serde's own check) or a mapping's key (the
/// model's), each named. A JSON object would otherwise keep the last
/// value unseen: `ports: {http: 8080, http: 9090}` served 9090.
#[test]
fn a_repeated_key_is_refused_in_json_and_yaml() {
    let json = |endpoint: &str| {
        format!(
            r#"{{"clusters": [{{"name": "west", "gateways": [{{"address": "192.0.2.1"}}]}}],
"services": [{{"name": "a", "namespace": "x", "exportedFrom": ["west"],
  "ports": [{{"name": "http", "number": 80, "protocol": "HTTP"}}],
  "endpoints": [{endpoint}]}}]}}"#
        )
    };
    for (endpoint, want) in [
        (
            r#"{"address": "10.0.0.1", "ports": {"http": 8080, "http": 9090}}"#,
            "services[0].endpoints[0].ports: duplicate key `http`",
        ),
        (
            r#"{"address": "10.0.0.1", "labels": {"app": "a", "app": "b"}}"#,
            "services[0].endpoints[0].labels: duplicate key `app`",
        ),
        (
            r#"{"address": "10.0.0.1", "address": "10.0.0.2"}"#,
            "duplicate field `address`",
        ),
    ] {
        let found = problems(&json(endpoint));
        assert!(
            found.len() == 1 && found[0].contains(want),
            "{endpoint}: {found:?}"
        );
    }

    // What the direct decode refuses and the tree reads is still read: a
    // null list is an empty one.
    let null = r#"{"clusters": [{"name": "west", "gateways": [{"address": "192.0.2.1"}]}], "services": null}"#;
    assert!(parse(null, "r.json").unwrap().services.is_empty());

    let yaml = |service: &str| {
        format!(
            "clusters: [{{name: west, gateways: [{{address: 192.0.2.1}}]}}]\n\
             services:\n  - {{name: a, namespace: x, ports: [{{name: http, number: 80, protocol: HTTP}}], {service}}}\n"
        )
    };
    for (service, key) in [
        (
            "endpoints: [{address: 10.0.0.1, ports: {http: 1, http: 2}}]",
            "http",
        ),
        (
            "endpoints: [{address: 10.0.0.1, labels: {app: a, app: b}}]",
            "app",
        ),
        ("namespace: y", "namespace"),
    ] {
        match parse(&yaml(service), "r.yaml") {
            Err(RegistryError::Syntax { message, .. }) => {
                assert!(
                    message.contains(&format!("duplicate mapping key `{key}`"))
                        && message.contains("r.yaml:3:"),
                    "{service}: {message}"
                );
                // Words for the user, not the parser's API.
                assert!(!message.contains("Options"), "{message}");
            }
            other => panic!("{service}: expected a syntax error, got {other:?}"),
        }
    }
}

/// YAML merge keys (`<<: *anchor`) are expanded as YAML 1.1 says: text
/// with a `<<` keeps the parser's own key checks, which merging needs.
#[test]
fn yaml_merge_keys_are_expanded() {
    let merged = "\
clusters: [{name: west, gateways: [{address: 192.0.2.1}]}]
services:
  - &web {name: a, namespace: web, exportedFrom: [west], ports: [{name: http, number: 80, protocol: HTTP}]}
  - <<: *web
    name: b
    namespace: other
  - {<<: *web, name: c}
";
    let spelled = "\
clusters: [{name: west, gateways: [{address: 192.0.2.1}]}]
services:
  - {name: a, namespace: web, exportedFrom: [west], ports: [{name: http, number: 80, protocol: HTTP}]}
  - {name: b, namespace: other, exportedFrom: [west], ports: [{name: http, number: 80, protocol: HTTP}]}
  - {name: c, namespace: web, exportedFrom: [west], ports: [{name: http, number: 80, protocol: HTTP}]}
";
    assert_eq!(
        parse(merged, "m.yaml").unwrap(),
        parse(spelled, "s.yaml").unwrap()
    );
}
