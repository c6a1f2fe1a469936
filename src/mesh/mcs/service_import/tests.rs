use super::*;
use crate::registry::load_str;
use crate::vip::{DEFAULT_V4_RANGE, Family, VipRange};

const TEXT: &str = "\
clusters:
  - name: west
    gateways: [{address: 192.0.2.2}]
  - name: east
    gateways: [{address: 192.0.2.1}]
services:
  - name: httpbin
    namespace: bar
    exportedFrom: [west, east]
    ports:
      - {name: http1, number: 8000, protocol: HTTP}
      - {name: tcp, number: 9000, protocol: TCP}
      - {name: mongo, number: 27017, protocol: MONGO}
      - {name: api, number: 9090, protocol: GRPC}
  - name: pinned
    namespace: foo
    exportedFrom: [west]
    addresses: [240.0.0.9, 2001:db8::9]
    ports: [{name: http, number: 80, protocol: HTTP}]
";

fn render(zones: &[&str]) -> (Vec<ServiceImport>, Allocator, Table) {
    let zones: Vec<String> = zones.iter().map(|z| z.to_string()).collect();
    let registry = load_str(TEXT, "test.yaml", &zones).unwrap();
    let allocator = Allocator {
        v4: VipRange::new(DEFAULT_V4_RANGE.parse().unwrap(), Family::V4).unwrap(),
        v6: None,
        quarantine: 600,
    };
    let mut table = Table::default();
    allocator.reconcile(&mut table, &index::wants(&registry, &zones, true), 0);
    let out = service_imports(&registry, &zones, &allocator, &table, "v1beta1");
    (out, allocator, table)
}

fn vip(table: &Table, host: &str) -> String {
    table.lease(host, Family::V4).unwrap().addr.to_string()
}

/// Issue 29 (1) / design §5: one ServiceImport per exported service, named
/// as the service in its namespace, type ClusterSetIP, whose address is the
/// VIP of the service's own host, ports in the MCS API's spelling, and the
/// exporting clusters sorted in the status.
#[test]
fn a_service_becomes_a_cluster_set_ip_import_with_its_vip() {
    let (imports, _, table) = render(&["global"]);
    assert_eq!(imports.len(), 2);
    let expected = serde_json::json!({
        "apiVersion": "multicluster.x-k8s.io/v1beta1",
        "kind": "ServiceImport",
        "metadata": {"name": "httpbin", "namespace": "bar",
                     "labels": {"app.kubernetes.io/managed-by": "globaldns"}},
        "spec": {
            "type": "ClusterSetIP",
            "ips": [vip(&table, "httpbin.bar.global")],
            "ports": [
                {"name": "http1", "protocol": "TCP", "appProtocol": "http", "port": 8000},
                {"name": "tcp", "protocol": "TCP", "port": 9000},
                {"name": "mongo", "protocol": "TCP", "appProtocol": "mongo", "port": 27017},
                {"name": "api", "protocol": "TCP", "appProtocol": "grpc", "port": 9090},
            ],
        },
        "status": {"clusters": [{"cluster": "east"}, {"cluster": "west"}]},
    });
    assert_eq!(serde_json::to_value(&imports[0]).unwrap(), expected);
    // The spec is applied without the status, the status alone to its
    // subresource.
    assert!(imports[0].spec_value().get("status").is_none());
    let status = imports[0].status_value();
    assert_eq!(status["status"], expected["status"]);
    assert!(status.get("spec").is_none());
    assert_eq!(status["metadata"]["namespace"], "bar");
}

/// The clusterset zone's host carries the ClusterSetIP when one is served;
/// without one, the zone that carries the pins (first by name) does.
#[test]
fn the_address_is_the_clusterset_hosts_else_the_pin_zones() {
    let (imports, _, table) = render(&["region", "global"]);
    assert_eq!(imports[0].spec.ips, [vip(&table, "httpbin.bar.global")]);
    let (imports, _, table) = render(&["global", "svc.clusterset.local"]);
    let clusterset = vip(&table, "httpbin.bar.svc.clusterset.local");
    assert_ne!(clusterset, vip(&table, "httpbin.bar.global"));
    assert_eq!(imports[0].spec.ips, [clusterset]);
}

/// Pinned addresses are the ClusterSetIPs, one per family (the CRD allows
/// two at most).
#[test]
fn pins_are_the_addresses_one_per_family() {
    let (imports, _, _) = render(&["global"]);
    assert_eq!(imports[1].spec.ips, ["240.0.0.9", "2001:db8::9"]);
    assert_eq!(imports[1].key(), "foo/pinned");
}
