//! Gateway health in `explain` (design §5): which of a name's remote
//! gateways the Lease holder's probes have withdrawn from its
//! ServiceEntry, since when and why.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::controller::Allocated;
use crate::mesh::GatewayKey;
use crate::mesh::gateway_health::GatewayStatus;

/// Lines on the probed gateways of the clusters that export the service
/// `name` is a host (or a per-cluster name) of, from `status` (the
/// prober's, empty on a replica that does not hold the Lease): each one
/// withdrawn, and whether all of them are (then none is left out: a
/// ServiceEntry never loses its last endpoint). Nothing when every
/// gateway passes, or nothing is known.
pub fn gateways(
    name: &str,
    allocated: Option<&Allocated>,
    status: &BTreeMap<GatewayKey, GatewayStatus>,
) -> String {
    let mut out = String::new();
    let Some(allocated) = allocated else {
        return out;
    };
    let host = name.trim_end_matches('.').to_ascii_lowercase();
    let Some(service) = allocated.registry.services.iter().find(|s| {
        let own = format!("{}.{}.", s.name, s.namespace).to_ascii_lowercase();
        host.starts_with(&own)
            || host
                .split_once('.')
                .is_some_and(|(_, rest)| rest.starts_with(&own))
    }) else {
        return out;
    };
    let probed: Vec<(&GatewayKey, &GatewayStatus)> = status
        .iter()
        .filter(|(key, _)| service.exported_from.iter().any(|c| *c == key.cluster))
        .collect();
    let down: Vec<&(&GatewayKey, &GatewayStatus)> = probed.iter().filter(|(_, s)| !s.up).collect();
    for (key, gateway) in &down {
        let since = k8s_openapi::jiff::Timestamp::try_from(gateway.since)
            .map(|t| t.to_string())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "gateway {} of {}: withdrawn since {since} ({} failed probes in a row: {})",
            key.endpoint(),
            key.cluster,
            gateway.consecutive_failures,
            gateway.last_error.as_deref().unwrap_or("no answer"),
        );
    }
    // The local cluster's gateways are not probed: an exporter without a
    // probed gateway is the local copy, which stays.
    let all_remote = service
        .exported_from
        .iter()
        .all(|c| probed.iter().any(|(key, _)| key.cluster == *c));
    let nothing_else = all_remote && service.endpoints.is_empty();
    if !down.is_empty() && down.len() == probed.len() && nothing_else {
        let _ = writeln!(
            out,
            "every probed gateway is down: all stay in the ServiceEntries (one never loses its last endpoint)"
        );
    }
    out
}
