//! The alerting rules (`monitoring/`) and their PrometheusRule
//! (`manifests/monitoring/`): the PrometheusRule carries exactly the rules
//! file's groups, and every series an alert reads is one globaldns
//! exports. (`promtool check rules` and `promtool test rules` run in
//! `.ci/run`, where Debian's prometheus is installed.)

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

fn read(path: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The metric families of the exposition (its `# TYPE` lines), from the
/// recorded exposition the metrics test holds every family to.
fn exported() -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/metrics/exposition.txt");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect()
}

/// The `globaldns_…` names in `expr`, histogram suffixes taken off.
fn series(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("globaldns_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name)
            .to_string();
        out.push(family);
    }
    out
}

/// The series `expr` (of alert or panel `what`) reads, each one globaldns
/// exports, and at least one.
fn read_exported(expr: &str, exported: &BTreeSet<String>, what: &Value) -> Vec<String> {
    let names = series(expr);
    assert!(!names.is_empty(), "{what}: {expr}");
    for name in &names {
        assert!(
            exported.contains(name),
            "{what} reads {name}, which globaldns does not export"
        );
    }
    names
}

#[test]
fn the_prometheus_rule_is_the_rules_file() {
    let rules = read("monitoring/globaldns.rules.yaml");
    let object = read("manifests/monitoring/prometheusrule.yaml");
    assert_eq!(object["kind"], "PrometheusRule");
    assert_eq!(object["spec"]["groups"], rules["groups"]);
}

#[test]
fn every_alert_reads_series_globaldns_exports() {
    let rules = read("monitoring/globaldns.rules.yaml");
    let exported = exported();
    assert!(exported.contains("globaldns_sync_leader"), "{exported:?}");
    let mut alerts = 0;
    for rule in rules["groups"][0]["rules"].as_array().unwrap() {
        read_exported(rule["expr"].as_str().unwrap(), &exported, &rule["alert"]);
        assert!(
            rule["annotations"]["runbook"]
                .as_str()
                .is_some_and(|r| !r.is_empty()),
            "alert {} has a runbook line",
            rule["alert"]
        );
        alerts += 1;
    }
    assert_eq!(alerts, 10);
}

/// The Grafana dashboard (`monitoring/dashboard.json`): every panel's
/// every query reads series globaldns exports, and every exported family
/// but the ones kept for alerts or debugging is on some panel.
#[test]
fn every_dashboard_query_reads_series_globaldns_exports() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("monitoring/dashboard.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let exported = exported();
    let mut shown = BTreeSet::new();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 8, "{} panels", panels.len());
    for panel in panels {
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {} has a query", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            shown.extend(read_exported(expr, &exported, &panel["title"]));
        }
    }
    // Counters of rare events, seen in the logs and alerts rather than on
    // a graph; every other family is on the dashboard.
    let off_the_dashboard = [
        "globaldns_dns_connections_refused_total",
        "globaldns_registry_objects_skipped",
        "globaldns_registry_dangling_exports",
        "globaldns_registry_conflicts",
        "globaldns_registry_last_success_timestamp_seconds",
        "globaldns_vip_followed_total",
        "globaldns_vip_pins_moved_total",
        "globaldns_sync_passes_total",
        "globaldns_sync_throttled_total",
        "globaldns_sync_lease_lost_total",
        "globaldns_dropin_conflicts",
        "globaldns_dropin_istio_prefers_hand_written",
        "globaldns_peer_mesh_cluster",
    ];
    let missing: Vec<&String> = exported
        .iter()
        .filter(|n| !shown.contains(*n) && !off_the_dashboard.contains(&n.as_str()))
        .collect();
    assert!(missing.is_empty(), "not on the dashboard: {missing:?}");
}
