//! The east-west gateway of an exporting cluster: the Gateway that
//! accepts the served zones in AUTO_PASSTHROUGH, its running pods, and the
//! Service that exposes the port the other clusters send to.

use std::collections::BTreeMap;

use kube::api::DynamicObject;

use super::Finding;
use super::mesh_check::{describe, local, strings};
use super::observe::Observed;

/// Whether a Gateway accepts the served zones' mTLS on `port`: a server on
/// that port in TLS mode `AUTO_PASSTHROUGH` with the host `*.<zone>` (or
/// `*`, or a namespaced `*/…` form) for every zone.
fn accepts(gateway: &DynamicObject, port: u16, zones: &[String]) -> bool {
    let servers = gateway.data["spec"]["servers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    zones.iter().all(|zone| {
        let wanted = format!("*.{zone}");
        servers.iter().any(|s| {
            s["port"]["number"].as_u64() == Some(u64::from(port))
                && s["tls"]["mode"].as_str() == Some("AUTO_PASSTHROUGH")
                && strings(&s["hosts"]).iter().any(|h| {
                    let h = h.rsplit('/').next().unwrap_or(h);
                    h == "*" || h.eq_ignore_ascii_case(&wanted)
                })
        })
    })
}

fn selects(selector: &BTreeMap<String, String>, labels: Option<&BTreeMap<String, String>>) -> bool {
    !selector.is_empty()
        && labels.is_some_and(|l| selector.iter().all(|(k, v)| l.get(k) == Some(v)))
}

fn pod_ready(pod: &k8s_openapi::api::core::v1::Pod) -> bool {
    let status = pod.status.as_ref();
    status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// `istio.gateway`, for a cluster that exports: a Gateway accepts
/// `*.<zone>` in AUTO_PASSTHROUGH on the registry's gateway port, its
/// selector matches running, ready pods, and a Service of theirs exposes
/// that port (what the other clusters' ServiceEntries send to).
pub fn gateway(seen: &Observed) -> Vec<Finding> {
    const CHECK: &str = "istio.gateway";
    let Some((cluster, registry)) = local(seen) else {
        return Vec::new();
    };
    let exports = registry
        .services
        .iter()
        .filter(|s| s.exported_from.iter().any(|c| c == cluster))
        .count();
    if exports == 0 {
        return vec![Finding::pass(
            CHECK,
            format!("cluster {cluster}"),
            "exports nothing: no Gateway needed",
        )];
    }
    let zones = seen
        .options
        .as_ref()
        .map(|o| o.zones.clone())
        .unwrap_or_default();
    let port = registry
        .clusters
        .iter()
        .find(|c| c.name == cluster)
        .and_then(|c| c.gateways.first())
        .map_or(crate::registry::model::DEFAULT_GATEWAY_PORT, |g| g.port);
    let gateways = match &seen.gateways {
        Ok(g) => g,
        Err(e) => {
            return vec![Finding::fail(
                CHECK,
                "Gateways",
                format!("cannot be read: {e}"),
                "run doctor with an administrator's kubeconfig",
            )];
        }
    };
    let hosts: Vec<String> = zones.iter().map(|z| format!("*.{z}")).collect();
    // globaldns' own Gateway first: a leftover one elsewhere that accepts
    // the zones too must not hide it.
    let Some(found) = gateways
        .iter()
        .filter(|g| accepts(g, port, &zones))
        .min_by_key(|g| !super::mesh_check::owned(g))
    else {
        return vec![Finding::fail(
            CHECK,
            format!("Gateway for {}", hosts.join(", ")),
            format!(
                "no Gateway accepts {} on port {port} in AUTO_PASSTHROUGH: the other clusters' calls to the {exports} service(s) {cluster} exports are reset at its east-west gateway",
                hosts.join(", ")
            ),
            "run globaldns with --sync-service-entries (it writes the Gateway), or `globaldns render` and apply it",
        )];
    };
    let object = describe("Gateway", found);
    let selector: BTreeMap<String, String> =
        serde_json::from_value(found.data["spec"]["selector"].clone()).unwrap_or_default();
    let shown = selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let target_selector = seen
        .options
        .as_ref()
        .map(|o| o.target.gateway_selector.clone())
        .unwrap_or_default();
    let pods = match &seen.gateway_pods {
        Ok(pods) if selector == target_selector => pods.clone(),
        Ok(_) => {
            return vec![Finding::warn(
                CHECK,
                object,
                format!("selects {shown}, not the --gateway-selector doctor was given"),
                "give doctor the --gateway-selector globaldns runs with",
            )];
        }
        Err(e) => {
            return vec![Finding::fail(
                CHECK,
                object,
                format!("its pods cannot be read: {e}"),
                "run doctor with an administrator's kubeconfig",
            )];
        }
    };
    let ready: Vec<_> = pods
        .iter()
        .filter(|p| selects(&selector, p.metadata.labels.as_ref()) && pod_ready(p))
        .collect();
    if ready.is_empty() {
        return vec![Finding::fail(
            CHECK,
            object,
            format!(
                "selects {shown}, and no running, ready pod has those labels ({} found)",
                pods.len()
            ),
            "install Istio's east-west gateway (samples/multicluster/gen-eastwest-gateway.sh) or fix --gateway-selector",
        )];
    }
    let services = seen.gateway_services.as_ref().cloned().unwrap_or_default();
    let exposed = services.iter().find(|s| {
        let spec = s.spec.as_ref();
        let selector = spec.and_then(|s| s.selector.clone()).unwrap_or_default();
        let ports = spec.and_then(|s| s.ports.clone()).unwrap_or_default();
        s.metadata.namespace == ready[0].metadata.namespace
            && selects(&selector, ready[0].metadata.labels.as_ref())
            && ports.iter().any(|p| p.port == i32::from(port))
    });
    match exposed {
        Some(service) => vec![Finding::pass(
            CHECK,
            object,
            format!(
                "{} ready pod(s), Service {}/{} exposes {port}",
                ready.len(),
                service.metadata.namespace.as_deref().unwrap_or("-"),
                service.metadata.name.as_deref().unwrap_or("-")
            ),
        )],
        None => vec![Finding::fail(
            CHECK,
            object,
            format!(
                "{} ready pod(s), but no Service of theirs exposes port {port}",
                ready.len()
            ),
            format!(
                "expose {port} (tls) on the east-west gateway's Service: it is the address the other clusters send to"
            ),
        )],
    }
}

#[cfg(test)]
mod tests;
