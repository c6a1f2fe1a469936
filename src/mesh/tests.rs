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
