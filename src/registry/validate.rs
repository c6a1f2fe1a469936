//! Semantic validation of a decoded registry (design §2): names, references,
//! duplicates, ports and pinned addresses. Returns every problem found, each
//! with the path of its field; an empty list means the registry may serve.

use std::collections::{HashMap, HashSet};
use std::fmt;

use rustc_hash::FxBuildHasher;
use std::net::IpAddr;

use super::error::Problem;
use super::model::{Registry, Service};
use crate::naming::{self, MAX_NAME_LEN};

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
    let clusters = clusters::validate_clusters(&registry.clusters, &mut problems);
    failover_policy::validate_defaults(&registry.defaults, &clusters, &mut problems);
    validate_services(registry, &clusters, zones, &mut problems);
    problems
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
    clusters: &ClusterNames<'_>,
    zones: &[String],
    problems: &mut Vec<Problem>,
) {
    let mut seen: HashMap<(&str, &str), usize, FxBuildHasher> = HashMap::default();
    let mut pinned: HashMap<IpAddr, usize, FxBuildHasher> = HashMap::default();
    for (i, service) in registry.services.iter().enumerate() {
        validate_service(
            service,
            i,
            clusters,
            zones,
            &mut seen,
            &mut pinned,
            problems,
        );
    }
}

/// The problems of `service` that do not depend on the other services:
/// every check [`validate`] makes of one service, but for a duplicate and
/// an address another service pins, which are the caller's to count.
/// `clusters` are the registry's cluster names.
pub fn service_problems(
    service: &Service,
    clusters: &ClusterNames<'_>,
    zones: &[String],
) -> Vec<Problem> {
    let mut problems = Vec::new();
    validate_service(
        service,
        0,
        clusters,
        zones,
        &mut HashMap::default(),
        &mut HashMap::default(),
        &mut problems,
    );
    problems
}

/// The checks of the service at `i`; `seen` and `pinned` carry what the
/// services before it hold, for duplicates and shared pins.
#[allow(clippy::too_many_arguments)]
fn validate_service<'r>(
    service: &'r Service,
    i: usize,
    clusters: &ClusterNames<'_>,
    zones: &[String],
    seen: &mut HashMap<(&'r str, &'r str), usize, FxBuildHasher>,
    pinned: &mut HashMap<IpAddr, usize, FxBuildHasher>,
    problems: &mut Vec<Problem>,
) {
    let at = &Item {
        within: None,
        field: "services",
        index: i,
    };
    if let Err(e) = naming::dns1035_label(&service.name) {
        problems.push(Problem::new(
            format!("{at}.name"),
            format!("`{}` is not a valid service name: {e}", service.name),
        ));
    }
    if let Err(e) = naming::dns1123_label(&service.namespace) {
        problems.push(Problem::new(
            format!("{at}.namespace"),
            format!("`{}` is not a valid namespace: {e}", service.namespace),
        ));
    }
    if let Some(first) = seen.insert((&service.name, &service.namespace), i) {
        problems.push(Problem::new(
            at.to_string(),
            format!(
                "duplicate service `{}.{}` (first at services[{first}])",
                service.name, service.namespace
            ),
        ));
    }
    validate_derived_names(service, zones, at, problems);
    validate_exports(service, clusters, at, problems);
    validate_ports(service, at, problems);
    validate_endpoints(service, at, problems);
    validate_pins(service, i, pinned, at, problems);
    failover_policy::validate_policy(service, at, problems);
}

/// Every name derived from a service must fit its own limit, checked here
/// so that a registry that validates always builds a snapshot and renders
/// objects the API server accepts:
/// - the host `<name>.<namespace>.<zone>`, and each per-cluster name
///   `<cluster>.<name>.<namespace>.<zone>` of an exporting cluster: a DNS
///   name, at most 253 characters (RFC 1035 §2.3.4);
/// - each SRV owner `_<port>._tcp.<host>` of either: at most 253
///   characters (its labels are checked with the port names);
/// - the ServiceEntry name of either (the host with dots as dashes, plus a
///   9-character suffix when two hosts would share a name, see
///   [`crate::mesh::service_entry`]): a DNS-1123 subdomain of at most 253
///   characters (Kubernetes object names).
///
/// Per-cluster names are checked whether or not they are served
/// (`--no-per-cluster-names`), so that turning them on never makes a
/// registry invalid.
fn validate_derived_names(
    service: &Service,
    zones: &[String],
    at: &dyn fmt::Display,
    problems: &mut Vec<Problem>,
) {
    let longest_cluster = service
        .exported_from
        .iter()
        .map(|c| c.len() + 1)
        .max()
        .unwrap_or(0);
    let longest_port = service.ports.iter().map(|p| p.name().len()).max();
    for zone in zones {
        // The longest name's length, written out only for a problem.
        let len =
            longest_cluster + service.name.len() + 1 + service.namespace.len() + 1 + zone.len();
        let longest_owner = longest_port.unwrap_or(0) + 1 + "._tcp.".len() + len;
        if len + SERVICE_ENTRY_SUFFIX_LEN <= MAX_NAME_LEN && longest_owner <= MAX_NAME_LEN {
            continue;
        }
        // A per-cluster name is longer than its host: a host that does
        // not fit is said once, not again for each of its clusters.
        if !validate_host(service, &service.host(zone), "host", at, problems) {
            continue;
        }
        // An MCS zone has no per-cluster names (MCS DNS spec §2.3.4).
        let clusters = match crate::naming::clusterset_zone(zone) {
            Some(_) => &[][..],
            None => &service.exported_from[..],
        };
        for cluster in clusters {
            let host = service.cluster_host(cluster, zone);
            validate_host(service, &host, "per-cluster name", at, problems);
        }
    }
}

/// The limits of [`validate_derived_names`] for one of a service's hosts,
/// `what` saying which (`host`, `per-cluster name`). True when it fits
/// them all.
fn validate_host(
    service: &Service,
    host: &str,
    what: &str,
    at: &dyn fmt::Display,
    problems: &mut Vec<Problem>,
) -> bool {
    let before = problems.len();
    if host.len() > MAX_NAME_LEN {
        problems.push(Problem::new(
            at.to_string(),
            format!("{what} `{host}` is longer than {MAX_NAME_LEN} characters"),
        ));
        return false;
    }
    if host.len() + SERVICE_ENTRY_SUFFIX_LEN > MAX_NAME_LEN {
        problems.push(Problem::new(
            at.to_string(),
            format!(
                "the ServiceEntry name of {what} `{host}` ({} characters, with room for a \
                 {SERVICE_ENTRY_SUFFIX_LEN}-character suffix) is longer than {MAX_NAME_LEN}",
                host.len() + SERVICE_ENTRY_SUFFIX_LEN
            ),
        ));
    }
    for (j, port) in service.ports.iter().enumerate() {
        let owner = 1 + port.name().len() + "._tcp.".len() + host.len();
        if owner > MAX_NAME_LEN {
            problems.push(Problem::new(
                format!("{at}.ports[{j}].name"),
                format!(
                    "the SRV name `_{}._tcp.{host}` is {owner} characters, longer than {MAX_NAME_LEN}",
                    port.name()
                ),
            ));
        }
    }
    problems.len() == before
}

fn validate_exports(
    service: &Service,
    clusters: &ClusterNames<'_>,
    at: &dyn fmt::Display,
    problems: &mut Vec<Problem>,
) {
    if service.exported_from.is_empty() && service.endpoints.is_empty() {
        problems.push(Problem::new(
            format!("{at}.exportedFrom"),
            "a service must be exported from at least one cluster, or list endpoints",
        ));
    }
    for (j, cluster) in service.exported_from.iter().enumerate() {
        if !clusters.contains(cluster.as_str()) {
            problems.push(Problem::new(
                format!("{at}.exportedFrom[{j}]"),
                format!("unknown cluster `{cluster}`"),
            ));
        }
        if service.exported_from[..j].contains(cluster) {
            problems.push(Problem::new(
                format!("{at}.exportedFrom[{j}]"),
                format!("cluster `{cluster}` is listed twice"),
            ));
        }
    }
}

fn validate_ports(service: &Service, at: &dyn fmt::Display, problems: &mut Vec<Problem>) {
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
    // A service has few ports (at most MAX_PORTS): repeats are found by
    // looking back, without a set per service.
    let before = |j: usize| &service.ports[..j];
    for (j, port) in service.ports.iter().enumerate() {
        let at = Item {
            within: Some(at),
            field: "ports",
            index: j,
        };
        // Port names become SRV owner labels (`_<name>`, at most 63 bytes)
        // and the keys of ServiceEntry endpoint ports (Istio's CRD: fewer
        // than 63 characters): DNS labels of at most 62 characters.
        if let Err(e) = naming::dns1123_label(port.name()) {
            problems.push(Problem::new(
                format!("{at}.name"),
                format!("`{}` is not a valid port name: {e}", port.name()),
            ));
        } else if port.name().len() > MAX_PORT_NAME_LEN {
            problems.push(Problem::new(
                format!("{at}.name"),
                format!(
                    "`{}` is {} characters; a port name may have at most {MAX_PORT_NAME_LEN} \
                     (its SRV label `_{}` must fit 63, and Istio refuses endpoint port keys of 63)",
                    port.name(),
                    port.name().len(),
                    port.name()
                ),
            ));
        }
        if before(j).iter().any(|p| p.name() == port.name()) {
            problems.push(Problem::new(
                format!("{at}.name"),
                format!("port name `{}` is used twice", port.name()),
            ));
        }
        if !(1..=65535).contains(&port.number) {
            problems.push(Problem::new(
                format!("{at}.number"),
                format!("{} is not a port number (1-65535)", port.number),
            ));
        } else if before(j).iter().any(|p| p.number == port.number) {
            problems.push(Problem::new(
                format!("{at}.number"),
                format!("port {} is used twice", port.number),
            ));
        }
        if !PROTOCOLS
            .iter()
            .any(|p| p.eq_ignore_ascii_case(port.protocol()))
        {
            problems.push(Problem::new(
                format!("{at}.protocol"),
                format!(
                    "unknown protocol `{}`, expected one of {}",
                    port.protocol(),
                    PROTOCOLS.join(", ")
                ),
            ));
        }
    }
}

fn validate_pins(
    service: &Service,
    index: usize,
    pinned: &mut HashMap<IpAddr, usize, FxBuildHasher>,
    at: &dyn fmt::Display,
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

/// The names of the registry's clusters.
pub type ClusterNames<'r> = HashSet<&'r str, FxBuildHasher>;

/// Where an item of a list is (`<within>.<field>[<index>]`, or
/// `<field>[<index>]` at the top): written out only when a problem is
/// reported, not for every service checked.
struct Item<'a> {
    within: Option<&'a dyn fmt::Display>,
    field: &'static str,
    index: usize,
}

impl fmt::Display for Item<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(within) = self.within {
            write!(f, "{within}.")?;
        }
        write!(f, "{}[{}]", self.field, self.index)
    }
}

mod clusters;
mod endpoints;
mod failover_policy;

pub use endpoints::MAX_ENDPOINTS;
use endpoints::validate_endpoints;

#[cfg(test)]
mod tests;
