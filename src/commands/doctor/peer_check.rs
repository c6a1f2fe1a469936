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
                // The Secret names the server as globaldns reaches it from
                // inside the cluster (often a private endpoint): not
                // reaching it from here is not proof globaldns cannot.
                Err(e) => Finding::warn(
                    CHECK,
                    peer.secret.clone(),
                    format!("peer {who} cannot be read from here: {e}"),
                    "if globaldns cannot reach it either (globaldns_peer_up 0, `peer` lines in explain), check the address and re-issue the token with `globaldns peer-secret`",
                ),
            }
        })
        .collect()
}

/// The certificates of a PEM bundle, each normalised (whitespace
/// dropped), so that two bundles compare as sets.
fn certificates(bundle: &str) -> std::collections::BTreeSet<String> {
    bundle
        .split("-----END CERTIFICATE-----")
        .filter_map(|part| {
            let body = part.split("-----BEGIN CERTIFICATE-----").nth(1)?;
            Some(body.split_whitespace().collect::<String>())
        })
        .collect()
}

/// `mesh.root-of-trust`: the clusters' `istio-ca-root-cert` bundles share a
/// root (mTLS across clusters needs one root, or roots that trust each
/// other): the same bundle passes; bundles that overlap (a root being
/// rotated, a cross-signed root) warn; bundles with nothing in common fail.
pub fn root_of_trust(seen: &[Observed]) -> Vec<Finding> {
    const CHECK: &str = "mesh.root-of-trust";
    let object = "ConfigMap istio-ca-root-cert";
    let mut bundles = Vec::new();
    let mut missing = Vec::new();
    for cluster in seen {
        match &cluster.root_cert {
            Ok(Some(map)) => match map.data.as_ref().and_then(|d| d.get("root-cert.pem")) {
                Some(pem) => {
                    bundles.push((cluster.context.as_str(), certificates(pem), pem.trim()))
                }
                None => missing.push(format!("{} (no root-cert.pem)", cluster.context)),
            },
            Ok(None) => missing.push(format!("{} (not found)", cluster.context)),
            Err(e) => missing.push(format!("{} ({e})", cluster.context)),
        }
    }
    if !missing.is_empty() {
        return vec![Finding::warn(
            CHECK,
            object,
            format!("cannot be compared: {}", missing.join(", ")),
            "istiod publishes it in every namespace; is Istio running there, and may doctor read it?",
        )];
    }
    let same = bundles
        .windows(2)
        .all(|w| w[0].2 == w[1].2 || (!w[0].1.is_empty() && w[0].1 == w[1].1));
    if same {
        return vec![Finding::pass(
            CHECK,
            object,
            "one root of trust in every cluster",
        )];
    }
    let disjoint: Vec<String> = bundles
        .iter()
        .enumerate()
        .flat_map(|(i, a)| bundles[i + 1..].iter().map(move |b| (a, b)))
        .filter(|(a, b)| a.1.is_disjoint(&b.1))
        .map(|(a, b)| format!("{} / {}", a.0, b.0))
        .collect();
    if disjoint.is_empty() {
        return vec![Finding::warn(
            CHECK,
            object,
            "the bundles differ but share a root (a rotation or a cross-signed root?)",
            "finish the rotation in every cluster so that all trust the same roots",
        )];
    }
    vec![Finding::fail(
        CHECK,
        object,
        format!(
            "no root in common between {}: sidecars reject each other's certificates across them",
            disjoint.join(", ")
        ),
        "plug in one CA (istio.io: Plug in CA certificates) in every cluster",
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
