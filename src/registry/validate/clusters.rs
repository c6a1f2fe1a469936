//! Validation of the registry's clusters: names, localities, gateways.

use std::collections::HashMap;
use std::net::IpAddr;

use super::{ClusterNames, check_locality};
use crate::naming;
use crate::registry::error::Problem;
use crate::registry::model::{Cluster, Gateway};

pub(super) fn validate_clusters<'r>(
    clusters: &'r [Cluster],
    problems: &mut Vec<Problem>,
) -> ClusterNames<'r> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, cluster) in clusters.iter().enumerate() {
        let at = format!("clusters[{i}]");
        if let Err(e) = naming::dns1123_label(&cluster.name) {
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
            // The same gateway twice would be two identical ServiceEntry
            // endpoints: a double share of the traffic for the cluster.
            if let Some(first) = cluster.gateways[..j]
                .iter()
                .position(|g| same_gateway(g, gateway))
            {
                problems.push(Problem::new(
                    at.clone(),
                    format!(
                        "gateway {address}:{} is listed twice (first at gateways[{first}])",
                        gateway.port
                    ),
                ));
            }
            if address.parse::<IpAddr>().is_err()
                && naming::dns1123_subdomain(&address.to_ascii_lowercase()).is_err()
            {
                problems.push(Problem::new(
                    format!("{at}.address"),
                    format!("`{address}` is neither an IP address nor a DNS name"),
                ));
            }
            if gateway.port == 0 {
                problems.push(Problem::new(format!("{at}.port"), "port 0 is not a port"));
            }
            if let Some(url) = &gateway.readiness_url
                && let Err(why) = check_readiness_url(url)
            {
                problems.push(Problem::new(
                    format!("{at}.readinessUrl"),
                    format!("`{url}` {why}"),
                ));
            }
        }
    }
    seen.into_keys().collect()
}

/// Whether two gateways are one: the same port, and the same address (an
/// IP however written, a name in any case).
fn same_gateway(a: &Gateway, b: &Gateway) -> bool {
    let key = |address: &str| match address.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => address.to_ascii_lowercase(),
    };
    a.port == b.port && key(&a.address) == key(&b.address)
}

/// A readiness URL the probes can GET: `http://`, a host (an IP address,
/// IPv6 in brackets, or a DNS name), an optional port, an optional path.
/// HTTPS is not probed: a gateway's readiness port is plain HTTP.
fn check_readiness_url(url: &str) -> Result<(), &'static str> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("is not an http:// URL (the probes speak plain HTTP)")?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or("has an unclosed `[`")?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let host_ok = host.parse::<IpAddr>().is_ok()
        || naming::dns1123_subdomain(&host.to_ascii_lowercase()).is_ok();
    if !host_ok {
        return Err("has no valid host");
    }
    if let Some(port) = port
        && !port.parse::<u16>().is_ok_and(|p| p != 0)
    {
        return Err("has a port that is not 1-65535");
    }
    Ok(())
}
