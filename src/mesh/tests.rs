use super::*;
use crate::registry::load_str;
use crate::vip::{DEFAULT_V4_RANGE, Family, VipRange};

const EXAMPLE: &str = include_str!("../../examples/registry.yaml");

fn objects(text: &str, zones: &[&str], target: &Target) -> Vec<Object> {
    let zones: Vec<String> = zones.iter().map(|z| z.to_string()).collect();
    let registry = load_str(text, "test.yaml", &zones).unwrap();
    let allocator = Allocator {
        v4: VipRange::new(DEFAULT_V4_RANGE.parse().unwrap(), Family::V4).unwrap(),
        v6: None,
        quarantine: 600,
    };
    let mut table = Table::default();
    allocator.reconcile(
        &mut table,
        &crate::index::wants(&registry, &zones, false),
        0,
    );
    render(&registry, &zones, false, &allocator, &table, target).unwrap()
}

/// Issue 11 / design §5: a cluster that exports services gets a Gateway on
/// its east-west gateway, TLS AUTO_PASSTHROUGH on 15443, for `*.<zone>` of
/// every served zone; the ServiceEntries come first.
#[test]
fn an_exporting_cluster_gets_its_gateway() {
    let all = objects(
        EXAMPLE,
        &["global", "region"],
        &Target::new("east", "istio-system"),
    );
    let kinds: Vec<Kind> = all.iter().map(Object::kind).collect();
    assert_eq!(
        kinds,
        [
            Kind::ServiceEntry,
            Kind::ServiceEntry,
            Kind::ServiceEntry,
            Kind::ServiceEntry,
            Kind::Gateway
        ]
    );
    let Object::Gateway(gateway) = &all[4] else {
        panic!("a Gateway")
    };
    let expected: serde_json::Value = serde_json::from_str(
        r#"{
          "apiVersion": "networking.istio.io/v1", "kind": "Gateway",
          "metadata": {"name": "globaldns-cross-network", "namespace": "istio-system",
                       "labels": {"app.kubernetes.io/managed-by": "globaldns"}},
          "spec": {
            "selector": {"istio": "eastwestgateway"},
            "servers": [{
              "port": {"number": 15443, "name": "tls-globaldns-15443", "protocol": "TLS"},
              "tls": {"mode": "AUTO_PASSTHROUGH"},
              "hosts": ["*.global", "*.region"]
            }]
          }
        }"#,
    )
    .unwrap();
    assert_eq!(serde_json::to_value(gateway).unwrap(), expected);
}

#[test]
fn a_cluster_that_exports_nothing_gets_no_gateway() {
    let text = "\
clusters:
  - name: east
    gateways: [{address: 192.0.2.1}]
  - name: west
    gateways: [{address: 192.0.2.2, port: 15444}, {address: 192.0.2.3}]
services:
  - {name: a, namespace: n, exportedFrom: [west], ports: [{name: http, number: 80, protocol: HTTP}]}
";
    let east = objects(text, &["global"], &Target::new("east", "istio-system"));
    assert!(east.iter().all(|o| o.kind() == Kind::ServiceEntry));
    // West exports, behind two gateway ports: one server for each.
    let mut target = Target::new("west", "istio-system");
    target.gateway_selector = BTreeMap::from([("app".to_string(), "mesh-gw".to_string())]);
    let west = objects(text, &["global"], &target);
    let Some(Object::Gateway(gateway)) = west.last() else {
        panic!("west exports: a Gateway")
    };
    assert_eq!(gateway.spec.selector["app"], "mesh-gw");
    let ports: Vec<u32> = gateway.spec.servers.iter().map(|s| s.port.number).collect();
    assert_eq!(ports, [15443, 15444]);
}

/// Issue 11: installs without auto mTLS get `*.<zone>` ISTIO_MUTUAL rules,
/// only when asked for.
#[test]
fn destination_rules_only_when_asked_for() {
    let mut target = Target::new("west", "istio-system");
    let without = objects(EXAMPLE, &["global"], &target);
    assert!(!without.iter().any(|o| o.kind() == Kind::DestinationRule));
    target.destination_rules = true;
    let with = objects(EXAMPLE, &["global", "mesh.example"], &target);
    let rules: Vec<serde_json::Value> = with
        .iter()
        .filter(|o| o.kind() == Kind::DestinationRule)
        .map(Object::to_value)
        .collect();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[1]["metadata"]["name"], "globaldns-mesh-example");
    assert_eq!(rules[1]["spec"]["host"], "*.mesh.example");
    assert_eq!(
        rules[1]["spec"]["trafficPolicy"]["tls"]["mode"],
        "ISTIO_MUTUAL"
    );
}

/// Issue 24 / design §5: every ServiceEntry and DestinationRule says
/// `exportTo: ["*"]`, so a mesh whose `defaultServiceExportTo` is `["."]`
/// still shows them to the application sidecars of every namespace.
#[test]
fn every_service_entry_and_destination_rule_is_exported_to_all_namespaces() {
    let mut target = Target::new("east", "istio-system");
    target.destination_rules = true;
    let all = objects(EXAMPLE, &["global"], &target);
    let mut checked = 0;
    for object in &all {
        let value = object.to_value();
        match object.kind() {
            Kind::ServiceEntry | Kind::DestinationRule => {
                assert_eq!(
                    value["spec"]["exportTo"],
                    serde_json::json!(["*"]),
                    "{value}"
                );
                checked += 1;
            }
            // Istio's Gateway has no `exportTo`.
            Kind::Gateway => assert!(value["spec"].get("exportTo").is_none()),
        }
    }
    assert_eq!(checked, 3, "two ServiceEntries and one DestinationRule");
}

#[test]
fn names_given_to_a_resolver_are_absolute() {
    assert_eq!(meta::absolute("gw.example.com"), "gw.example.com.");
    assert_eq!(meta::absolute("gw.example.com."), "gw.example.com.");
    assert_eq!(meta::absolute("192.0.2.1"), "192.0.2.1");
    assert_eq!(meta::absolute("2001:db8::1"), "2001:db8::1");
}

const FAILOVER: &str = include_str!("../../examples/failover.yaml");

/// An endpoint as the failover tests see it: address, priority labels,
/// weight.
type Seen = (String, Vec<String>, Option<u32>);

/// The endpoints of `host`'s ServiceEntry, and its DestinationRule's spec
/// if it has one.
fn failover_view(objects: &[Object], host: &str) -> (Vec<Seen>, Option<serde_json::Value>) {
    let mut endpoints = Vec::new();
    let mut rule = None;
    for object in objects {
        match object {
            Object::ServiceEntry(e) if e.spec.hosts[0] == host => {
                for w in &e.spec.endpoints {
                    let labels = w
                        .labels
                        .keys()
                        .filter(|k| k.starts_with(failover_rule::PRIORITY_LABEL_PREFIX))
                        .cloned()
                        .collect();
                    endpoints.push((w.address.clone(), labels, w.weight));
                }
            }
            Object::DestinationRule(r) if r.spec.host == host => {
                rule = Some(serde_json::to_value(&r.spec).unwrap());
            }
            _ => {}
        }
    }
    (endpoints, rule)
}

/// Issue 27 item 2: from north (no copy, so the entry is STATIC), reviews
/// is west, then south, then east (the defaults' order): west's gateway
/// carries both priority labels, south's the first, east's none, and the
/// rule lists them with their value, beside the defaults' thresholds over
/// Istio's.
#[test]
fn the_failover_order_becomes_priority_labels_and_a_rule() {
    let all = objects(FAILOVER, &["global"], &Target::new("north", "istio-system"));
    let (endpoints, rule) = failover_view(&all, "reviews.bookinfo.global");
    let one = "globaldns.io/failover-1".to_string();
    let two = "globaldns.io/failover-2".to_string();
    assert_eq!(
        endpoints,
        [
            ("192.0.2.10".to_string(), vec![], None),
            ("198.51.100.20".to_string(), vec![one.clone(), two], None),
            ("203.0.113.30".to_string(), vec![one.clone()], None),
            ("203.0.113.31".to_string(), vec![one], None),
        ]
    );
    assert_eq!(
        rule.unwrap(),
        serde_json::json!({
            "host": "reviews.bookinfo.global",
            "trafficPolicy": {
                "loadBalancer": {"localityLbSetting": {"enabled": true, "failoverPriority": [
                    "globaldns.io/failover-1=true", "globaldns.io/failover-2=true"]}},
                "outlierDetection": {"consecutive5xxErrors": 3, "interval": "5s",
                                     "baseEjectionTime": "30s", "maxEjectionPercent": 100}
            },
            "exportTo": ["*"]
        })
    );
}

/// A host the local cluster exports has the local Service's name among its
/// endpoints, so Envoy resolves it (STRICT_DNS), where Istio does not
/// apply failoverPriority safely (istio/istio#61857): the order goes by
/// regions instead, the local one first, then the next cluster's, and no
/// endpoint carries a priority label.
#[test]
fn a_dns_entry_fails_over_by_region() {
    for (cluster, from, to) in [
        ("east", "us-east1", "us-west1"),
        ("south", "southamerica-east1", "us-west1"),
        ("west", "us-west1", "southamerica-east1"),
    ] {
        let all = objects(FAILOVER, &["global"], &Target::new(cluster, "istio-system"));
        let (endpoints, rule) = failover_view(&all, "reviews.bookinfo.global");
        assert!(
            endpoints.iter().all(|(_, labels, _)| labels.is_empty()),
            "{cluster}"
        );
        assert_eq!(
            rule.unwrap()["trafficPolicy"]["loadBalancer"],
            serde_json::json!({"localityLbSetting": {"enabled": true,
                "failover": [{"from": from, "to": to}]}}),
            "{cluster}"
        );
    }
}

/// Weights are shares of a cluster, not of each gateway: south's two
/// gateways split its 20 against west's 80. With one tier (`failover:
/// []`, no local copy) the rule turns Istio's locality preference off;
/// one exporter gets no rule at all.
#[test]
fn weights_are_cluster_shares_and_one_tier_turns_locality_off() {
    let all = objects(FAILOVER, &["global"], &Target::new("east", "istio-system"));
    let (endpoints, rule) = failover_view(&all, "ratings.bookinfo.global");
    let weights: Vec<Option<u32>> = endpoints.iter().map(|(_, _, w)| *w).collect();
    assert_eq!(weights, [Some(160), Some(20), Some(20)]);
    assert!(endpoints.iter().all(|(_, labels, _)| labels.is_empty()));
    assert_eq!(
        rule.unwrap()["trafficPolicy"]["loadBalancer"],
        serde_json::json!({"localityLbSetting": {"enabled": false}})
    );
    assert_eq!(failover_view(&all, "details.bookinfo.global").1, None);
    let rules = all
        .iter()
        .filter(|o| matches!(o, Object::DestinationRule(_)))
        .count();
    assert_eq!(rules, 2, "reviews and ratings only");
}

/// `v1beta1` and `v1alpha3` have no `failoverPriority` to take the labels:
/// their rules carry the outlier detection alone (in 1.1–1.4's field name
/// for `v1alpha3`), and `--destination-rules` adds the mTLS a host's own
/// rule would otherwise take away from the zone's.
#[test]
fn older_api_versions_and_destination_rules_shape_the_rule() {
    for (version, field) in [
        (IstioApiVersion::V1beta1, "consecutive5xxErrors"),
        (IstioApiVersion::V1alpha3, "consecutiveErrors"),
    ] {
        let mut target = Target::new("east", "istio-system");
        target.api_version = version;
        let all = objects(FAILOVER, &["global"], &target);
        let (endpoints, rule) = failover_view(&all, "reviews.bookinfo.global");
        assert!(endpoints.iter().all(|(_, labels, _)| labels.is_empty()));
        let policy = &rule.unwrap()["trafficPolicy"];
        assert_eq!(policy.get("loadBalancer"), None, "{version}");
        assert_eq!(policy["outlierDetection"][field], 3, "{version}");
    }
    let mut target = Target::new("east", "istio-system");
    target.destination_rules = true;
    let all = objects(FAILOVER, &["global"], &target);
    let (_, rule) = failover_view(&all, "reviews.bookinfo.global");
    assert_eq!(
        rule.unwrap()["trafficPolicy"]["tls"],
        serde_json::json!({"mode": "ISTIO_MUTUAL"})
    );
}

/// Without the local cluster's region a DNS entry's copies are equal
/// (`enabled: false`), not ranked by the pods' real region; and whether a
/// rule exists follows the registry, not the gateways withdrawn now.
#[test]
fn no_local_region_means_equal_and_withdrawals_keep_the_rule() {
    let text = FAILOVER.replace("    locality: us-east1/us-east1-b\n", "");
    assert!(!text.contains("us-east1/"));
    let all = objects(&text, &["global"], &Target::new("east", "istio-system"));
    let (_, rule) = failover_view(&all, "reviews.bookinfo.global");
    assert_eq!(
        rule.unwrap()["trafficPolicy"]["loadBalancer"],
        serde_json::json!({"localityLbSetting": {"enabled": false}})
    );
    // ratings from east: west's gateway and both of south's withdrawn
    // but one: still two sources in the registry, still a rule.
    let mut target = Target::new("east", "istio-system");
    target.withdrawn = [
        GatewayKey::new("west", "198.51.100.20", 15443),
        GatewayKey::new("south", "203.0.113.30", 15443),
    ]
    .into();
    let all = objects(FAILOVER, &["global"], &target);
    let (endpoints, rule) = failover_view(&all, "ratings.bookinfo.global");
    assert_eq!(endpoints.len(), 1, "{endpoints:?}");
    assert!(rule.is_some(), "the rule stays through the outage");
}
