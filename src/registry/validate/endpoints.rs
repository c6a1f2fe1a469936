//! Endpoints outside Kubernetes (design §2): what Istio's ServiceEntry CRD
//! would refuse of a workload entry, refused with the path of the field.

use std::collections::HashSet;
use std::net::IpAddr;

use super::check_locality;
use crate::naming;
use crate::registry::error::Problem;
use crate::registry::model::Service;

/// Most endpoints a service may list: far above any real fleet of VMs
/// behind one name, and every answer still fits a TCP message.
pub const MAX_ENDPOINTS: usize = 1000;

/// Endpoints outside Kubernetes: what Istio's ServiceEntry CRD would refuse,
/// refused here with the path of the field.
pub(super) fn validate_endpoints(
    service: &Service,
    at: &dyn std::fmt::Display,
    problems: &mut Vec<Problem>,
) {
    if service.endpoints.len() > MAX_ENDPOINTS {
        problems.push(Problem::new(
            format!("{at}.endpoints"),
            format!("at most {MAX_ENDPOINTS} endpoints may be listed"),
        ));
    }
    let port_names: HashSet<&str> = service.ports.iter().map(|p| p.name()).collect();
    for (j, endpoint) in service.endpoints.iter().enumerate() {
        let at = format!("{at}.endpoints[{j}]");
        let address = endpoint.address.trim_end_matches('.');
        if address.parse::<IpAddr>().is_err()
            && naming::dns1123_subdomain(&address.to_ascii_lowercase()).is_err()
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
            if let Err(e) = naming::label_key(key) {
                problems.push(Problem::new(
                    format!("{at}.labels"),
                    format!("`{key}` is not a label key: {e}"),
                ));
            }
            if let Err(e) = naming::label_value(value) {
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
            && let Err(e) = naming::dns1123_subdomain(account)
        {
            problems.push(Problem::new(
                format!("{at}.serviceAccount"),
                format!("`{account}` is not a service account name: {e}"),
            ));
        }
    }
}
