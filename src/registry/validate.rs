//! Semantic validation of a decoded registry (design §2): names, references,
//! duplicates, ports and pinned addresses. Returns every problem found, each
//! with the path of its field; an empty list means the registry may serve.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use super::error::Problem;
use super::model::{Cluster, Registry, Service};
use crate::names::{self, MAX_NAME_LEN};

/// Port protocols Istio accepts on a ServiceEntry port, upper-case.
pub const PROTOCOLS: [&str; 10] = [
    "HTTP", "HTTPS", "HTTP2", "GRPC", "GRPC-WEB", "TCP", "TLS", "MONGO", "MYSQL", "REDIS",
];

/// Longest port name: `_<name>` is an SRV owner label (63 bytes at most,
/// RFC 1035 §2.3.4), and Istio's ServiceEntry CRD wants endpoint port keys
/// shorter than 63 characters.
pub const MAX_PORT_NAME_LEN: usize = 62;

/// Most ports a service may have: every port is a key of each endpoint's
/// `ports` map, of which Istio's ServiceEntry CRD allows 128.
pub const MAX_PORTS: usize = 128;

/// What [`crate::render`] may append to a ServiceEntry name that two hosts
/// share: `-` and 8 hex digits.
pub const SERVICE_ENTRY_SUFFIX_LEN: usize = 9;

/// Most pinned addresses a service may carry. Far above any real need, and
/// small enough that every answer still fits a TCP message.
pub const MAX_PINNED: usize = 1000;

/// Validates `registry` for serving in `zones`.
pub fn validate(registry: &Registry, zones: &[String]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let clusters = validate_clusters(&registry.clusters, &mut problems);
    validate_services(registry, &clusters, zones, &mut problems);
    problems
}

fn validate_clusters<'r>(clusters: &'r [Cluster], problems: &mut Vec<Problem>) -> HashSet<&'r str> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, cluster) in clusters.iter().enumerate() {
        let at = format!("clusters[{i}]");
        if let Err(e) = names::dns1123_label(&cluster.name) {
            problems.push(Problem::new(
                format!("{at}.name"),
                format!("`{}` is not a valid cluster name: {e}", cluster.name),
            ));
        }
        if let Some(first) = seen.insert(&cluster.name, i) {
            problems.push(Problem::new(
                format!("{at}.name"),
                format!(
                    "duplicate cluster `{}` (first at clusters[{first}])",
                    cluster.name
                ),
            ));
        }
        if cluster.network.as_deref() == Some("") {
            problems.push(Problem::new(format!("{at}.network"), "must not be empty"));
        }
        if let Some(locality) = &cluster.locality {
            check_locality(locality, &format!("{at}.locality"), problems);
        }
        if cluster.gateways.is_empty() {
            problems.push(Problem::new(
                format!("{at}.gateways"),
                "a cluster needs at least one gateway to be reached through",
            ));
        }
        for (j, gateway) in cluster.gateways.iter().enumerate() {
            let at = format!("{at}.gateways[{j}]");
            let address = gateway.address.as_str();
            if address.parse::<IpAddr>().is_err()
                && names::dns1123_subdomain(&address.to_ascii_lowercase()).is_err()
            {
                problems.push(Problem::new(
                    format!("{at}.address"),
                    format!("`{address}` is neither an IP address nor a DNS name"),
                ));
            }
            if gateway.port == 0 {
                problems.push(Problem::new(format!("{at}.port"), "port 0 is not a port"));
            }
        }
    }
    seen.into_keys().collect()
}

/// `region/zone[/subzone]`, no empty part.
fn check_locality(locality: &str, at: &str, problems: &mut Vec<Problem>) {
    let parts: Vec<&str> = locality.split('/').collect();
    if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        problems.push(Problem::new(
            at,
            format!("`{locality}` is not of the form region/zone[/subzone]"),
        ));
    }
}

fn validate_services(
    registry: &Registry,
    clusters: &HashSet<&str>,
    zones: &[String],
    problems: &mut Vec<Problem>,
) {
    let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
    let mut pinned: HashMap<IpAddr, usize> = HashMap::new();
    for (i, service) in registry.services.iter().enumerate() {
        let at = format!("services[{i}]");
        if let Err(e) = names::dns1035_label(&service.name) {
            problems.push(Problem::new(
                format!("{at}.name"),
                format!("`{}` is not a valid service name: {e}", service.name),
            ));
        }
        if let Err(e) = names::dns1123_label(&service.namespace) {
            problems.push(Problem::new(
                format!("{at}.namespace"),
                format!("`{}` is not a valid namespace: {e}", service.namespace),
            ));
        }
        if let Some(first) = seen.insert((&service.name, &service.namespace), i) {
            problems.push(Problem::new(
                at.clone(),
                format!(
                    "duplicate service `{}.{}` (first at services[{first}])",
                    service.name, service.namespace
                ),
            ));
        }
        validate_derived_names(service, zones, &at, problems);
        validate_exports(service, clusters, &at, problems);
        validate_ports(service, &at, problems);
        validate_endpoints(service, &at, problems);
        validate_pins(service, i, &mut pinned, &at, problems);
    }
}

/// Every name derived from a service must fit its own limit, checked here
/// so that a registry that validates always builds a snapshot and renders
/// objects the API server accepts:
/// - the host `<name>.<namespace>.<zone>`: a DNS name, at most 253
///   characters (RFC 1035 §2.3.4);
/// - each SRV owner `_<port>._tcp.<host>`: at most 253 characters (its
///   labels are checked with the port names);
/// - the ServiceEntry name (the host with dots as dashes, plus a 9-character
///   suffix when two hosts would share a name, see [`crate::render`]): a
///   DNS-1123 subdomain of at most 253 characters (Kubernetes object names).
fn validate_derived_names(
    service: &Service,
    zones: &[String],
    at: &str,
    problems: &mut Vec<Problem>,
) {
    for zone in zones {
        let host = service.host(zone);
        if host.len() > MAX_NAME_LEN {
            problems.push(Problem::new(
                at,
                format!("host `{host}` is longer than {MAX_NAME_LEN} characters"),
            ));
            continue;
        }
        if host.len() + SERVICE_ENTRY_SUFFIX_LEN > MAX_NAME_LEN {
            problems.push(Problem::new(
                at,
                format!(
                    "the ServiceEntry name of host `{host}` ({} characters, with room for a \
                     {SERVICE_ENTRY_SUFFIX_LEN}-character suffix) is longer than {MAX_NAME_LEN}",
                    host.len() + SERVICE_ENTRY_SUFFIX_LEN
                ),
            ));
        }
        for (j, port) in service.ports.iter().enumerate() {
            let owner = 1 + port.name.len() + "._tcp.".len() + host.len();
            if owner > MAX_NAME_LEN {
                problems.push(Problem::new(
                    format!("{at}.ports[{j}].name"),
                    format!(
                        "the SRV name `_{}._tcp.{host}` is {owner} characters, longer than {MAX_NAME_LEN}",
                        port.name
                    ),
                ));
            }
        }
    }
}

fn validate_exports(
    service: &Service,
    clusters: &HashSet<&str>,
    at: &str,
    problems: &mut Vec<Problem>,
) {
    if service.exported_from.is_empty() && service.endpoints.is_empty() {
        problems.push(Problem::new(
            format!("{at}.exportedFrom"),
            "a service must be exported from at least one cluster, or list endpoints",
        ));
    }
    let mut seen = HashSet::new();
    for (j, cluster) in service.exported_from.iter().enumerate() {
        if !clusters.contains(cluster.as_str()) {
            problems.push(Problem::new(
                format!("{at}.exportedFrom[{j}]"),
                format!("unknown cluster `{cluster}`"),
            ));
        }
        if !seen.insert(cluster) {
            problems.push(Problem::new(
                format!("{at}.exportedFrom[{j}]"),
                format!("cluster `{cluster}` is listed twice"),
            ));
        }
    }
}

fn validate_ports(service: &Service, at: &str, problems: &mut Vec<Problem>) {
    if service.ports.is_empty() {
        problems.push(Problem::new(
            format!("{at}.ports"),
            "a service needs at least one port",
        ));
    }
    if service.ports.len() > MAX_PORTS {
        problems.push(Problem::new(
            format!("{at}.ports"),
            format!(
                "{} ports, more than the {MAX_PORTS} an Istio endpoint may map",
                service.ports.len()
            ),
        ));
    }
    let mut names = HashSet::new();
    let mut numbers = HashSet::new();
    for (j, port) in service.ports.iter().enumerate() {
        let at = format!("{at}.ports[{j}]");
        // Port names become SRV owner labels (`_<name>`, at most 63 bytes)
        // and the keys of ServiceEntry endpoint ports (Istio's CRD: fewer
        // than 63 characters): DNS labels of at most 62 characters.
        if let Err(e) = names::dns1123_label(&port.name) {
            problems.push(Problem::new(
                format!("{at}.name"),
                format!("`{}` is not a valid port name: {e}", port.name),
            ));
        } else if port.name.len() > MAX_PORT_NAME_LEN {
            problems.push(Problem::new(
                format!("{at}.name"),
                format!(
                    "`{}` is {} characters; a port name may have at most {MAX_PORT_NAME_LEN} \
                     (its SRV label `_{}` must fit 63, and Istio refuses endpoint port keys of 63)",
                    port.name,
                    port.name.len(),
                    port.name
                ),
            ));
        }
        if !names.insert(port.name.as_str()) {
            problems.push(Problem::new(
                format!("{at}.name"),
                format!("port name `{}` is used twice", port.name),
            ));
        }
        if !(1..=65535).contains(&port.number) {
            problems.push(Problem::new(
                format!("{at}.number"),
                format!("{} is not a port number (1-65535)", port.number),
            ));
        } else if !numbers.insert(port.number) {
            problems.push(Problem::new(
                format!("{at}.number"),
                format!("port {} is used twice", port.number),
            ));
        }
        if !PROTOCOLS.contains(&port.protocol.to_ascii_uppercase().as_str()) {
            problems.push(Problem::new(
                format!("{at}.protocol"),
                format!(
                    "unknown protocol `{}`, expected one of {}",
                    port.protocol,
                    PROTOCOLS.join(", ")
                ),
            ));
        }
    }
}

/// Most endpoints a service may list: far above any real fleet of VMs
/// behind one name, and every answer still fits a TCP message.
pub const MAX_ENDPOINTS: usize = 1000;

/// Endpoints outside Kubernetes: what Istio's ServiceEntry CRD would refuse,
/// refused here with the path of the field.
fn validate_endpoints(service: &Service, at: &str, problems: &mut Vec<Problem>) {
    if service.endpoints.len() > MAX_ENDPOINTS {
        problems.push(Problem::new(
            format!("{at}.endpoints"),
            format!("at most {MAX_ENDPOINTS} endpoints may be listed"),
        ));
    }
    let port_names: HashSet<&str> = service.ports.iter().map(|p| p.name.as_str()).collect();
    for (j, endpoint) in service.endpoints.iter().enumerate() {
        let at = format!("{at}.endpoints[{j}]");
        let address = endpoint.address.trim_end_matches('.');
        if address.parse::<IpAddr>().is_err()
            && names::dns1123_subdomain(&address.to_ascii_lowercase()).is_err()
        {
            problems.push(Problem::new(
                format!("{at}.address"),
                format!(
                    "`{}` is neither an IP address nor a DNS name",
                    endpoint.address
                ),
            ));
        }
        for (name, number) in &endpoint.ports {
            if !port_names.contains(name.as_str()) {
                problems.push(Problem::new(
                    format!("{at}.ports.{name}"),
                    format!("the service has no port named `{name}`"),
                ));
            }
            if !(1..=65535).contains(number) {
                problems.push(Problem::new(
                    format!("{at}.ports.{name}"),
                    format!("{number} is not a port number (1-65535)"),
                ));
            }
        }
        if endpoint.network.as_deref() == Some("") {
            problems.push(Problem::new(format!("{at}.network"), "must not be empty"));
        }
        if let Some(locality) = &endpoint.locality {
            check_locality(locality, &format!("{at}.locality"), problems);
        }
        if endpoint.labels.len() > 256 {
            problems.push(Problem::new(
                format!("{at}.labels"),
                "at most 256 labels (Istio's limit)",
            ));
        }
        for (key, value) in &endpoint.labels {
            if let Err(e) = names::label_key(key) {
                problems.push(Problem::new(
                    format!("{at}.labels"),
                    format!("`{key}` is not a label key: {e}"),
                ));
            }
            if let Err(e) = names::label_value(value) {
                problems.push(Problem::new(
                    format!("{at}.labels.{key}"),
                    format!("`{value}` is not a label value: {e}"),
                ));
            }
        }
        if endpoint.weight == Some(0) {
            problems.push(Problem::new(
                format!("{at}.weight"),
                "a weight of 0 would send it nothing; leave it out for the default",
            ));
        }
        if let Some(account) = &endpoint.service_account
            && let Err(e) = names::dns1123_subdomain(account)
        {
            problems.push(Problem::new(
                format!("{at}.serviceAccount"),
                format!("`{account}` is not a service account name: {e}"),
            ));
        }
    }
}

fn validate_pins(
    service: &Service,
    index: usize,
    pinned: &mut HashMap<IpAddr, usize>,
    at: &str,
    problems: &mut Vec<Problem>,
) {
    if service.addresses.len() > MAX_PINNED {
        problems.push(Problem::new(
            format!("{at}.addresses"),
            format!("at most {MAX_PINNED} addresses may be pinned"),
        ));
    }
    for (j, address) in service.addresses.iter().enumerate() {
        let at = format!("{at}.addresses[{j}]");
        if address.is_unspecified() || address.is_loopback() || address.is_multicast() {
            problems.push(Problem::new(
                at.clone(),
                format!("{address} cannot be a service address"),
            ));
        }
        // Two services pinning one address would send one service's traffic
        // to the other: the whole registry is refused instead of picking one.
        match pinned.insert(*address, index) {
            Some(first) if first == index => {
                problems.push(Problem::new(at, format!("{address} is listed twice")))
            }
            Some(first) => problems.push(Problem::new(
                at,
                format!("{address} is already pinned by services[{first}]"),
            )),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
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
            found[1].starts_with(
                "services[1].addresses[1]: 192.0.2.50 is already pinned by services[0]"
            )
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
            found[0].starts_with("services[0].ports[0].name: `ppp")
                && found[0].contains("at most 62"),
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
}
