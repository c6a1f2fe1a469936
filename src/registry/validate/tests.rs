use super::*;
use crate::registry::parse::parse;

fn problems(yaml: &str) -> Vec<String> {
    let registry = parse(yaml, "t").expect("decodes");
    validate(&registry, &["global".to_string()])
        .iter()
        .map(ToString::to_string)
        .collect()
}

const CLUSTERS: &str = "clusters:\n  - name: east\n    gateways: [{address: 192.0.2.10}]\n  - name: west\n    locality: us-west1/us-west1-a\n    gateways: [{address: gw.west.example.com, port: 443}]\n";

#[test]
fn the_design_example_is_valid() {
    let yaml = format!(
        "{CLUSTERS}services:\n  - name: httpbin\n    namespace: bar\n    exportedFrom: [west]\n    ports: [{{name: http1, number: 8000, protocol: HTTP}}]\n"
    );
    assert_eq!(problems(&yaml), Vec::<String>::new());
}

#[test]
fn every_problem_is_listed_with_its_path() {
    let yaml = format!(
        "{CLUSTERS}services:\n  - name: Httpbin\n    namespace: bar\n    exportedFrom: [south, west, west]\n    ports:\n      - {{name: http1, number: 70000, protocol: HTTP}}\n      - {{name: http1, number: 80, protocol: SCTP}}\n  - name: reviews\n    namespace: default\n    exportedFrom: [east]\n    ports: [{{name: http, number: 9080, protocol: http}}]\n  - name: reviews\n    namespace: default\n    exportedFrom: []\n    ports: []\n"
    );
    let found = problems(&yaml);
    let expect = [
        "services[0].name: `Httpbin` is not a valid service name",
        "services[0].exportedFrom[0]: unknown cluster `south`",
        "services[0].exportedFrom[2]: cluster `west` is listed twice",
        "services[0].ports[0].number: 70000 is not a port number",
        "services[0].ports[1].name: port name `http1` is used twice",
        "services[0].ports[1].protocol: unknown protocol `SCTP`",
        "services[2]: duplicate service `reviews.default` (first at services[1])",
        "services[2].exportedFrom: a service must be exported from at least one cluster",
        "services[2].ports: a service needs at least one port",
    ];
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    for (got, want) in found.iter().zip(expect) {
        assert!(got.starts_with(want), "got {got:?}, want {want:?}");
    }
}

#[test]
fn cluster_problems() {
    let yaml = "clusters:\n  - name: east\n    gateways: []\n  - name: east\n    locality: a//b\n    gateways: [{address: 'not an address', port: 0}]\n";
    let found = problems(yaml);
    let expect = [
        "clusters[0].gateways: a cluster needs at least one gateway",
        "clusters[1].name: duplicate cluster `east`",
        "clusters[1].locality: `a//b` is not of the form",
        "clusters[1].gateways[0].address: `not an address` is neither",
        "clusters[1].gateways[0].port: port 0 is not a port",
    ];
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    for (got, want) in found.iter().zip(expect) {
        assert!(got.starts_with(want), "got {got:?}, want {want:?}");
    }
}

#[test]
fn pinned_addresses_must_be_unique_and_usable() {
    let yaml = format!(
        "{CLUSTERS}services:\n  - {{name: a, namespace: n, exportedFrom: [east], ports: [{{name: p, number: 1, protocol: TCP}}], addresses: [192.0.2.50, 127.0.0.1]}}\n  - {{name: b, namespace: n, exportedFrom: [east], ports: [{{name: p, number: 1, protocol: TCP}}], addresses: ['2001:db8::1', 192.0.2.50]}}\n"
    );
    let found = problems(&yaml);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].starts_with("services[0].addresses[1]: 127.0.0.1 cannot be"));
    assert!(
        found[1]
            .starts_with("services[1].addresses[1]: 192.0.2.50 is already pinned by services[0]")
    );
}

/// Issue 10: a port name of 63 characters was accepted, and its SRV
/// owner `_<63>` (a 64-byte label) then failed the snapshot build.
/// RFC 1035 §2.3.4: labels of at most 63 bytes.
#[test]
fn names_derived_from_the_registry_fit_their_limits() {
    let port = |name: &str| {
        format!(
            "{CLUSTERS}services:\n  - {{name: s, namespace: n, exportedFrom: [east], ports: [{{name: {name}, number: 1, protocol: TCP}}]}}\n"
        )
    };
    assert_eq!(problems(&port(&"p".repeat(62))), Vec::<String>::new());
    let found = problems(&port(&"p".repeat(63)));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("services[0].ports[0].name: `ppp") && found[0].contains("at most 62"),
        "{found:?}"
    );

    // An SRV owner longer than a DNS name, though the host fits.
    let ns = "n".repeat(63);
    let zone = format!("{}.{}.{}", "z".repeat(63), "y".repeat(63), "x".repeat(40));
    let yaml = format!(
        "{CLUSTERS}services:\n  - {{name: s, namespace: {ns}, exportedFrom: [east], ports: [{{name: {}, number: 1, protocol: TCP}}]}}\n",
        "p".repeat(20)
    );
    let registry = parse(&yaml, "t").unwrap();
    let found: Vec<String> = validate(&registry, std::slice::from_ref(&zone))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("services[0].ports[0].name: the SRV name"),
        "{found:?}"
    );

    // A host that fits, with no room left for the ServiceEntry name's
    // suffix.
    let zone = format!("{}.{}", "z".repeat(63), "y".repeat(120));
    let yaml = format!(
        "{CLUSTERS}services:\n  - {{name: s, namespace: {}, exportedFrom: [east], ports: [{{name: p, number: 1, protocol: TCP}}]}}\n",
        "n".repeat(60)
    );
    let registry = parse(&yaml, "t").unwrap();
    let found: Vec<String> = validate(&registry, std::slice::from_ref(&zone))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        found
            .iter()
            .any(|f| f.contains("the ServiceEntry name of host")),
        "{found:#?}"
    );
}

/// Issue 11 / design §2: workloads outside Kubernetes, validated as
/// strictly as the rest, each problem with its path.
#[test]
fn endpoints_outside_kubernetes() {
    let good = format!(
        "{CLUSTERS}services:\n  - name: catalog\n    namespace: shop\n    ports: [{{name: http, number: 8080, protocol: HTTP}}]\n    endpoints:\n      - {{address: 192.0.2.50, ports: {{http: 9080}}, network: vm-net, locality: us-east1/b, labels: {{app: catalog, version: v1}}, weight: 2, serviceAccount: catalog}}\n      - {{address: vm1.example.com}}\n"
    );
    assert_eq!(problems(&good), Vec::<String>::new(), "no cluster needed");
    let bad = format!(
        "{CLUSTERS}services:\n  - name: catalog\n    namespace: shop\n    ports: [{{name: http, number: 8080, protocol: HTTP}}]\n    endpoints:\n      - {{address: 'not an address', ports: {{grpc: 9090, http: 0}}, locality: a//b, labels: {{'bad key!': x}}, weight: 0, serviceAccount: Bad_SA}}\n"
    );
    let found = problems(&bad);
    let expect = [
        "services[0].endpoints[0].address: `not an address` is neither",
        "services[0].endpoints[0].ports.grpc: the service has no port named `grpc`",
        "services[0].endpoints[0].ports.http: 0 is not a port number",
        "services[0].endpoints[0].locality: `a//b` is not of the form",
        "services[0].endpoints[0].labels: `bad key!` is not a label key",
        "services[0].endpoints[0].weight: a weight of 0",
        "services[0].endpoints[0].serviceAccount: `Bad_SA` is not a service account name",
    ];
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    for (got, want) in found.iter().zip(expect) {
        assert!(got.starts_with(want), "got {got:?}, want {want:?}");
    }
    let neither = format!(
        "{CLUSTERS}services:\n  - {{name: lonely, namespace: n, ports: [{{name: p, number: 1, protocol: TCP}}]}}\n"
    );
    assert!(problems(&neither)[0].contains("or list endpoints"));
}

#[test]
fn more_ports_than_an_endpoint_may_map_are_refused() {
    let ports: Vec<String> = (1..=129)
        .map(|n| format!("{{name: p{n}, number: {n}, protocol: TCP}}"))
        .collect();
    let yaml = format!(
        "{CLUSTERS}services:\n  - {{name: s, namespace: n, exportedFrom: [east], ports: [{}]}}\n",
        ports.join(", ")
    );
    let found = problems(&yaml);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("services[0].ports: 129 ports"),
        "{found:?}"
    );
}

#[test]
fn hosts_longer_than_a_dns_name_are_refused() {
    let ns = "n".repeat(63);
    let yaml = format!(
        "{CLUSTERS}services:\n  - {{name: {}, namespace: {ns}, exportedFrom: [east], ports: [{{name: p, number: 1, protocol: TCP}}]}}\n",
        "s".repeat(63)
    );
    let registry = parse(&yaml, "t").unwrap();
    let long_zone = format!("{}.{}", "z".repeat(63), "y".repeat(63));
    let found = validate(&registry, &[long_zone]);
    assert_eq!(found.len(), 1);
    assert!(found[0].message.contains("longer than 253"));
}

/// Issue 25: a gateway listed twice in one cluster passed and became two
/// identical ServiceEntry endpoints, a double share of the traffic. Every
/// other repeat was refused with its path; so is this one, however the
/// address is written. The same address on another port is another
/// gateway.
#[test]
fn a_gateway_listed_twice_is_refused() {
    let yaml = "clusters:
  - name: east
    gateways:
      - {address: 192.0.2.10}
      - {address: 192.0.2.10, port: 15443}
      - {address: 192.0.2.10, port: 15444}
  - name: west
    gateways: [{address: gw.west.example.com}, {address: GW.West.Example.com}, {address: '2001:db8::1'}, {address: '2001:DB8:0::1'}]
services:
  - {name: a, namespace: n, exportedFrom: [east, west], ports: [{name: http, number: 80, protocol: HTTP}]}
";
    assert_eq!(
        problems(yaml),
        [
            "clusters[0].gateways[1]: gateway 192.0.2.10:15443 is listed twice (first at gateways[0])",
            "clusters[1].gateways[1]: gateway GW.West.Example.com:15443 is listed twice (first at gateways[0])",
            "clusters[1].gateways[3]: gateway 2001:DB8:0::1:15443 is listed twice (first at gateways[2])",
        ]
    );
}

/// Design §2: per-cluster names are derived names too. A host that fits
/// whose per-cluster name for a long cluster name does not is refused,
/// naming that name, whether or not per-cluster names are served (turning
/// them on never invalidates a registry).
#[test]
fn per_cluster_names_fit_their_limits_too() {
    let cluster = "c".repeat(60);
    let yaml = format!(
        "clusters:\n  - name: {cluster}\n    gateways: [{{address: 192.0.2.10}}]\nservices:\n  - {{name: s, namespace: {}, exportedFrom: [{cluster}], ports: [{{name: p, number: 1, protocol: TCP}}]}}\n",
        "n".repeat(63)
    );
    let registry = parse(&yaml, "t").unwrap();
    // The host: 1 + 1 + 63 + 1 + 130 = 196 characters, with room for its
    // SRV names and its ServiceEntry name's suffix.
    let zone = format!("{}.{}", "z".repeat(63), "y".repeat(66));
    let found: Vec<String> = validate(&registry, std::slice::from_ref(&zone))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with(&format!("services[0]: per-cluster name `{cluster}.s.nnn"))
            && found[0].ends_with("is longer than 253 characters"),
        "{found:?}"
    );
    // A shorter cluster name fits.
    let short = yaml.replace(&cluster, "east");
    let registry = parse(&short, "t").unwrap();
    assert_eq!(validate(&registry, &[zone]), Vec::new());
}

/// A failover policy names clusters that exist (the defaults) or export
/// the service (its own), once each, with weights and thresholds Istio
/// takes; every problem with its path.
#[test]
fn failover_policy_problems() {
    let yaml = format!(
        "{CLUSTERS}defaults:\n  failover: [west, south]\n  weights: {{east: 0}}\n  outlierDetection: {{interval: 0ms, maxEjectionPercent: 101}}\nservices:\n  - name: httpbin\n    namespace: bar\n    exportedFrom: [west]\n    ports: [{{name: http1, number: 8000, protocol: HTTP}}]\n    failover: [west, east, west]\n    weights: {{east: 5}}\n    outlierDetection: {{baseEjectionTime: 1d}}\n"
    );
    let found = problems(&yaml);
    let expect = [
        "defaults.failover[1]: unknown cluster `south`",
        "defaults.weights.east: weight 0 is outside 1 to 10000",
        "defaults.outlierDetection.interval: `0ms` is shorter than 1ms",
        "defaults.outlierDetection.maxEjectionPercent: 101 is not a percentage",
        "services[0].failover[1]: the service is not exported from cluster `east`",
        "services[0].failover[2]: cluster `west` is listed twice",
        "services[0].weights.east: the service is not exported from cluster `east`",
        "services[0].outlierDetection.baseEjectionTime: `1d` has unknown unit `d`",
    ];
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    for (got, want) in found.iter().zip(expect) {
        assert!(got.starts_with(want), "got {got:?}, want {want:?}");
    }
    let good = format!(
        "{CLUSTERS}defaults:\n  failover: [west]\n  outlierDetection: {{consecutive5xxErrors: 3, interval: 5s}}\nservices:\n  - name: httpbin\n    namespace: bar\n    exportedFrom: [east, west]\n    ports: [{{name: http1, number: 8000, protocol: HTTP}}]\n    weights: {{east: 80, west: 20}}\n"
    );
    assert_eq!(problems(&good), Vec::<String>::new());
}

/// A gateway's readiness URL is one the probes can GET: plain HTTP, a
/// host, a port 1–65535.
#[test]
fn readiness_urls_are_checked() {
    let yaml = "clusters:\n  - name: east\n    gateways:\n      - {address: 192.0.2.1, readinessUrl: 'https://192.0.2.1:15021/healthz/ready'}\n      - {address: 192.0.2.2, readinessUrl: 'http://:15021/'}\n      - {address: 192.0.2.3, readinessUrl: 'http://gw.example.com:0/'}\n      - {address: 192.0.2.4, readinessUrl: 'http://[2001:db8::1]:15021/healthz/ready'}\n      - {address: 192.0.2.5, readinessUrl: 'http://192.0.2.5:15021/healthz/ready'}\n";
    let found = problems(yaml);
    let expect = [
        "clusters[0].gateways[0].readinessUrl: `https://192.0.2.1:15021/healthz/ready` is not an http:// URL",
        "clusters[0].gateways[1].readinessUrl: `http://:15021/` has no valid host",
        "clusters[0].gateways[2].readinessUrl: `http://gw.example.com:0/` has a port that is not 1-65535",
    ];
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    for (got, want) in found.iter().zip(expect) {
        assert!(got.starts_with(want), "got {got:?}, want {want:?}");
    }
}

/// `weights: {}` would mean "weights, none given": refused, so that the
/// file and the resources (where an empty map is no weights) agree.
#[test]
fn empty_weights_are_refused() {
    let yaml = format!(
        "{CLUSTERS}services:\n  - name: httpbin\n    namespace: bar\n    exportedFrom: [east, west]\n    ports: [{{name: http1, number: 8000, protocol: HTTP}}]\n    weights: {{}}\n"
    );
    let found = problems(&yaml);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("services[0].weights: no weights given"),
        "{found:?}"
    );
}
