use super::*;
use proptest::prelude::*;

/// A service of the test registries: name, namespace, cluster, port, pin.
type Svc = (u8, bool, &'static str, u32, Option<u8>);

fn zones() -> Vec<String> {
    vec!["global".to_string()]
}

/// The registry text of `services`, one way of writing it of several
/// (`style`): JSON on one line or pretty, YAML in flow or block entries.
fn text(services: &[Svc], style: u8) -> String {
    let pin = |p: &Option<u8>| p.map(|p| format!("192.0.2.{}", 100 + p));
    match style % 4 {
        0 | 1 => {
            let entries: Vec<String> = services
                .iter()
                .map(|(name, ns, cluster, port, p)| {
                    let pin = pin(p).map_or(String::new(), |a| format!(r#", "addresses": ["{a}"]"#));
                    format!(
                        r#"{{"name": "s{name}", "namespace": "{}", "exportedFrom": ["{cluster}"], "ports": [{{"name": "http", "number": {port}, "protocol": "HTTP"}}]{pin}}}"#,
                        if *ns { "a" } else { "b" }
                    )
                })
                .collect();
            let sep = if style.is_multiple_of(4) {
                ", "
            } else {
                ",\n    "
            };
            format!(
                "{{\"clusters\": [{{\"name\": \"west\", \"gateways\": [{{\"address\": \"192.0.2.1\"}}]}}],\n  \"services\": [\n    {}\n  ]\n}}\n",
                entries.join(sep)
            )
        }
        2 => {
            let mut out = String::from(
                "clusters:\n  - name: west\n    gateways: [{address: 192.0.2.1}]\nservices:\n",
            );
            for (name, ns, cluster, port, p) in services {
                let pin = pin(p).map_or(String::new(), |a| format!(", addresses: [{a}]"));
                out.push_str(&format!(
                    "  - {{name: s{name}, namespace: {}, exportedFrom: [{cluster}], ports: [{{name: http, number: {port}, protocol: HTTP}}]{pin}}}\n",
                    if *ns { "a" } else { "b" }
                ));
            }
            out
        }
        _ => {
            let mut out = String::from(
                "# the mesh\nclusters:\n  - name: west\n    gateways: [{address: 192.0.2.1}]\nservices:\n",
            );
            for (name, ns, cluster, port, p) in services {
                out.push_str(&format!(
                    "  - name: s{name}\n    namespace: {}\n    exportedFrom:\n      - {cluster}\n    ports:\n      - name: http\n        number: {port}\n        protocol: HTTP\n",
                    if *ns { "a" } else { "b" }
                ));
                if let Some(a) = pin(p) {
                    out.push_str(&format!("    addresses: [{a}]\n\n"));
                }
            }
            out.push_str("# end\n");
            out
        }
    }
}

fn service() -> impl Strategy<Value = Svc> {
    (
        0..30u8,
        any::<bool>(),
        // An unknown cluster now and then.
        prop::sample::select(vec!["west", "west", "west", "east"]),
        // A bad port now and then.
        prop::sample::select(vec![80, 8080, 9090, 70000]),
        prop::option::of(0..4u8),
    )
}

/// An edit: put a service at an index (replacing one there, or inserted
/// before it), or remove the one at an index.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, Svc),
    Replace(usize, Svc),
    Remove(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0..64usize, service()).prop_map(|(i, s)| Edit::Insert(i, s)),
        (0..64usize, service()).prop_map(|(i, s)| Edit::Replace(i, s)),
        (0..64usize).prop_map(Edit::Remove),
    ]
}

fn same(a: &Result<Registry, RegistryError>, b: &Result<Registry, RegistryError>) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => a == b,
        (Err(a), Err(b)) => a.to_string() == b.to_string(),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Issue 14: a version loaded by what changed is the version loaded
    /// whole: the same registry, or the same problems (duplicates, shared
    /// pins, unknown clusters, bad ports), in JSON and YAML.
    #[test]
    fn a_reload_by_what_changed_is_a_full_load(
        style in 0..4u8,
        start in prop::collection::vec(service(), 1..12),
        edits in prop::collection::vec(edit(), 1..16),
    ) {
        let mut services = start;
        let mut loaded = None;
        let first = text(&services, style);
        let full = load_str(&first, "r", &zones());
        let got = reload(&mut loaded, &first, "r", &zones());
        prop_assert!(same(&got, &full), "{got:?}\n{full:?}");
        for edit in edits {
            match edit {
                Edit::Insert(i, s) => services.insert(i % (services.len() + 1), s),
                Edit::Replace(i, s) if !services.is_empty() => {
                    let at = i % services.len();
                    services[at] = s;
                }
                Edit::Remove(i) if !services.is_empty() => {
                    services.remove(i % services.len());
                }
                _ => {}
            }
            let next = text(&services, style);
            let full = load_str(&next, "r", &zones());
            let got = reload(&mut loaded, &next, "r", &zones());
            prop_assert!(same(&got, &full), "{next}\n{got:?}\n{full:?}");
        }
    }
}

/// A one-service edit of a large registry decodes a few entries, and the
/// services it leaves alone are the very ones of the version before.
#[test]
fn unchanged_services_are_shared() {
    let services: Vec<Svc> = (0..30u8)
        .map(|i| (i, i % 2 == 0, "west", 80, None))
        .collect();
    for style in 0..4 {
        let mut loaded = None;
        let before = reload(&mut loaded, &text(&services, style), "r", &zones()).unwrap();
        assert!(loaded.is_some(), "style {style}: followed");
        let mut edited = services.clone();
        edited[10].3 = 8080;
        let after = reload(&mut loaded, &text(&edited, style), "r", &zones()).unwrap();
        let shared = before
            .services
            .iter()
            .zip(after.services.iter())
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        assert!(shared >= 27, "style {style}: {shared} shared");
        assert_eq!(after.services[10].ports[0].number, 8080);
    }
}

/// Merge keys (`<<: *anchor`) are expanded by a reload too, first and
/// after an edit (a text with anchors is read whole, not by entries).
#[test]
fn merge_keys_are_expanded_by_a_reload() {
    let with = |extra: &str| {
        format!(
            "clusters: [{{name: west, gateways: [{{address: 192.0.2.1}}]}}]\n\
             services:\n  \
             - &web {{name: a, namespace: web, exportedFrom: [west], ports: [{{name: http, number: 80, protocol: HTTP}}]}}\n  \
             - {{<<: *web, name: b}}\n{extra}"
        )
    };
    let mut loaded = None;
    for text in [with(""), with("  - {<<: *web, name: c}\n")] {
        let got = reload(&mut loaded, &text, "r", &zones()).unwrap();
        let names: Vec<_> = got.services.iter().map(|s| s.host("global")).collect();
        let expected = &["a.web.global", "b.web.global", "c.web.global"][..got.services.len()];
        assert_eq!(names, expected);
        assert!(got.services.iter().all(|s| s.ports.len() == 1));
    }
}
