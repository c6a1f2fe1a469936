use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Deserialize;
use serde_json::json;

use super::*;
use crate::registry::parse::path::render;

/// A shape with what the registry's model has and may grow: nested
/// structs in lists, a map, an option, defaults, addresses.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Entry {
    name: String,
    #[serde(default)]
    port: u16,
    network: Option<String>,
    items: Vec<Item>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    addresses: Vec<IpAddr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Item {
    name: String,
    number: u32,
}

fn found(entry: serde_json::Value) -> Vec<String> {
    problems::<Entry>(&entry)
        .iter()
        .map(|f| format!("{}: {}", render(&f.path), f.message))
        .collect()
}

#[test]
fn a_valid_entry_has_no_problems() {
    assert!(found(json!({"name": "a", "items": []})).is_empty());
}

#[test]
fn every_bad_field_is_found_not_only_the_first() {
    let got = found(json!({
        "name": ["a"],
        "port": "x",
        "network": 7,
        "items": [
            {"name": "ok", "number": 1},
            {"name": 2, "number": "three"},
            {"name": "no number"},
        ],
        "labels": {"a": "fine", "b": []},
        "addresses": ["192.0.2.1", "not an address", "2001:db8::1", 4],
        "colour": "red",
    }));
    let expected = [
        "addresses[1]: invalid IP address syntax",
        "addresses[3]: invalid type: integer `4`, expected IP address",
        "colour: unknown field `colour`",
        "items[1].name: invalid type: integer `2`, expected a string",
        "items[1].number: invalid type: string \"three\", expected u32",
        "items[2]: missing field `number`",
        "labels.b: invalid type: sequence, expected a string",
        "name: invalid type: sequence, expected a string",
        "network: invalid type: integer `7`, expected a string",
        "port: invalid type: string \"x\", expected u16",
    ];
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for (got, expected) in got.iter().zip(expected) {
        assert!(got.starts_with(expected), "{got} / {expected}");
    }
}

#[test]
fn every_missing_field_is_found() {
    assert_eq!(
        found(json!({"port": 1, "colour": 1})),
        [
            "colour: unknown field `colour`, expected one of `name`, `port`, `network`, `items`, `labels`, `addresses`",
            ": missing field `name`",
            ": missing field `items`",
        ]
    );
}

#[test]
fn a_node_of_the_wrong_kind_is_reported_once_where_it_is() {
    assert_eq!(
        found(json!({"name": "a", "items": {"name": "x", "number": 1}})),
        ["items: invalid type: map, expected a sequence"]
    );
    assert_eq!(
        found(json!("a")),
        [": invalid type: string \"a\", expected struct Entry"]
    );
}
