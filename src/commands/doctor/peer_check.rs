//! The cluster among the others: its Istio network against the registry,
//! its peers, and, when several clusters are given, one root of trust and
//! one VIP per host across them.

use std::collections::BTreeMap;

use kube::api::DynamicObject;

use super::Finding;
use super::observe::Observed;
use crate::mesh::{MANAGED_BY, MANAGED_BY_LABEL};

/// The label Istio reads a cluster's network from, on its namespace.
pub const NETWORK_LABEL: &str = "topology.istio.io/network";

/// `mesh.network`: Istio's namespace carries the network the registry
/// gives the cluster (Istio compares the endpoints' `network` with it to
/// decide what goes through a gateway).
pub fn network(seen: &Observed) -> Vec<Finding> {
    const CHECK: &str = "mesh.network";
    let (Ok(cluster), Ok((registry, _))) = (&seen.cluster, &seen.registry) else {
        return Vec::new();
    };
    let istio = seen
        .options
        .as_ref()
        .map(|o| o.istio_namespace.clone())
        .unwrap_or_default();
    let object = format!("Namespace {istio}");
    let wanted = registry
        .clusters
        .iter()
        .find(|c| &c.name == cluster)
        .and_then(|c| c.network.clone());
    let label = match &seen.istio_namespace {
        Ok(Some(ns)) => ns
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(NETWORK_LABEL).cloned()),
        Ok(None) => {
            return vec![Finding::fail(
                CHECK,
                object,
                "does not exist",
                "install Istio, or give doctor --istio-namespace",
            )];
        }
        Err(e) => {
            return vec![Finding::warn(
                CHECK,
                object,
                format!("cannot be read: {e}"),
                "run doctor with an administrator's kubeconfig",
            )];
        }
    };
    let fix = |n: &str| {
        format!(
            "kubectl label namespace {istio} {NETWORK_LABEL}={n} --overwrite, or correct the registry's `network` for cluster {cluster}"
        )
    };
    vec![match (wanted, label) {
        (None, None) => Finding::pass(
            CHECK,
            object,
            "one network: neither the registry nor Istio names one",
        ),
        (None, Some(label)) => Finding::warn(
            CHECK,
            object,
            format!(
                "Istio's network is {label}; the registry gives cluster {cluster} none, so its gateways' endpoints carry none"
            ),
            fix(&label),
        ),
        (Some(wanted), None) => Finding::fail(
            CHECK,
            object,
            format!(
                "has no {NETWORK_LABEL}; the registry gives cluster {cluster} the network {wanted}"
            ),
            fix(&wanted),
        ),
        (Some(wanted), Some(label)) if wanted == label => Finding::pass(
            CHECK,
            object,
            format!("network {label}, as the registry gives it"),
        ),
        (Some(wanted), Some(label)) => Finding::fail(
            CHECK,
            object,
            format!(
                "network {label}; the registry gives cluster {cluster} the network {wanted}: the other clusters send to the wrong gateway or none"
            ),
            fix(&wanted),
        ),
    }]
}

/// `peers`: each peer Secret gives a peer, its API server answers, and it
/// holds the MeshCluster of its own name (else its exports are not served).
pub fn peers(seen: &Observed) -> Vec<Finding> {
    const CHECK: &str = "peers";
    seen.peers
        .iter()
        .map(|peer| {
            let who = peer.cluster.as_deref().unwrap_or("?");
            match &peer.holds_cluster {
                Ok(true) => Finding::pass(
                    CHECK,
                    peer.secret.clone(),
                    format!("peer {who} answers and holds its MeshCluster"),
                ),
                Ok(false) => Finding::fail(
                    CHECK,
                    peer.secret.clone(),
                    format!("peer {who} answers but holds no MeshCluster named {who}: its exports are not served"),
                    format!("in cluster {who}: apply its MeshCluster (globaldns export-resources), or correct the Secret's globaldns.io/cluster"),
                ),
                Err(e) if peer.cluster.is_none() => Finding::fail(
                    CHECK,
                    peer.secret.clone(),
                    format!("gives no peer: {e}"),
                    "re-create it with `globaldns peer-secret` against that cluster",
                ),
                Err(e) => Finding::fail(
                    CHECK,
                    peer.secret.clone(),
                    format!("peer {who} cannot be read: {e}"),
                    "check the peer's API server is reachable from here and the token still valid; re-issue it with `globaldns peer-secret`",
                ),
            }
        })
        .collect()
}

/// `mesh.root-of-trust`: every cluster's `istio-ca-root-cert` is the same
/// (mTLS across clusters needs one root, or roots that trust each other).
pub fn root_of_trust(seen: &[Observed]) -> Vec<Finding> {
    const CHECK: &str = "mesh.root-of-trust";
    let mut roots: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut missing = Vec::new();
    for cluster in seen {
        let root = cluster
            .root_cert
            .as_ref()
            .ok()
            .and_then(Option::as_ref)
            .and_then(|m| m.data.as_ref())
            .and_then(|d| d.get("root-cert.pem"))
            .map(|r| r.trim().to_string());
        match root {
            Some(root) => roots.entry(root).or_default().push(&cluster.context),
            None => missing.push(cluster.context.as_str()),
        }
    }
    let object = "ConfigMap istio-ca-root-cert";
    if !missing.is_empty() {
        return vec![Finding::warn(
            CHECK,
            object,
            format!(
                "not found in {}: the roots cannot be compared",
                missing.join(", ")
            ),
            "istiod publishes it in every namespace; is Istio running there?",
        )];
    }
    if roots.len() > 1 {
        let groups: Vec<String> = roots
            .values()
            .map(|contexts| format!("[{}]", contexts.join(", ")))
            .collect();
        return vec![Finding::fail(
            CHECK,
            object,
            format!(
                "{} different roots of trust: {}; sidecars reject each other's certificates across them",
                roots.len(),
                groups.join(" / ")
            ),
            "plug in one CA (istio.io: Plug in CA certificates) in every cluster",
        )];
    }
    vec![Finding::pass(
        CHECK,
        object,
        "one root of trust in every cluster",
    )]
}

/// The VIPs of each host in globaldns' own ServiceEntries.
fn vips(entries: &[DynamicObject]) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for entry in entries {
        let ours = entry
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(MANAGED_BY_LABEL))
            .is_some_and(|v| v == MANAGED_BY);
        if !ours {
            continue;
        }
        let spec = &entry.data["spec"];
        let addresses: Vec<String> = spec["addresses"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|a| a.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for host in spec["hosts"].as_array().into_iter().flatten() {
            if let Some(host) = host.as_str() {
                out.insert(host.to_ascii_lowercase(), addresses.clone());
            }
        }
    }
    out
}

/// `mesh.vip-agreement`: a host has the same VIPs in every cluster where
/// globaldns wrote it (design §3: almost always; where not, a client that
/// carries an address from one cluster to another reaches nothing there).
pub fn vip_agreement(seen: &[Observed]) -> Vec<Finding> {
    const CHECK: &str = "mesh.vip-agreement";
    let per_cluster: Vec<(&str, BTreeMap<String, Vec<String>>)> = seen
        .iter()
        .filter_map(|c| Some((c.context.as_str(), vips(c.service_entries.as_ref().ok()?))))
        .collect();
    let mut hosts: BTreeMap<&str, BTreeMap<&Vec<String>, Vec<&str>>> = BTreeMap::new();
    for (context, vips) in &per_cluster {
        for (host, addresses) in vips {
            hosts
                .entry(host.as_str())
                .or_default()
                .entry(addresses)
                .or_default()
                .push(context);
        }
    }
    let differing: Vec<(&str, String)> = hosts
        .iter()
        .filter(|(_, by)| by.len() > 1)
        .map(|(host, by)| {
            let shown: Vec<String> = by
                .iter()
                .map(|(addresses, contexts)| {
                    format!("{} in {}", addresses.join(","), contexts.join(","))
                })
                .collect();
            (*host, shown.join("; "))
        })
        .collect();
    if let Some((host, shown)) = differing.first() {
        return vec![Finding::warn(
            CHECK,
            host.to_string(),
            format!(
                "{} host(s) differ across the clusters; the first: {shown}",
                differing.len()
            ),
            "each cluster's DNS and ServiceEntry agree, so calls work; an address passed between clusters does not. `globaldns explain` shows why; a larger --vip-range makes it rarer",
        )];
    }
    vec![Finding::pass(
        CHECK,
        "ServiceEntries",
        format!("{} host(s), the same VIPs in every cluster", hosts.len()),
    )]
}

#[cfg(test)]
mod tests;
