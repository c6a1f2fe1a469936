//! `globaldns stub-config`: the cluster DNS wiring that points the served
//! zones at globaldns' Service (DESIGN §6), printed so that nobody pastes a
//! ClusterIP by hand.

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::core::v1::Service;
use kube::Api;

/// Which wiring to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// The kube-dns ConfigMap with `stubDomains` (YAML, for kubectl apply).
    KubeDns,
    /// The CoreDNS server blocks to add to the Corefile.
    Coredns,
    /// Both, each under a comment saying where it goes.
    Both,
}

/// The kube-dns ConfigMap forwarding every zone to `server` (RFC: kube-dns
/// takes `IP` or `IP:port` in stubDomains).
pub fn kube_dns(zones: &[String], server: SocketAddr) -> String {
    let upstream = upstream(server);
    let domains: Vec<String> = zones
        .iter()
        .map(|z| format!("{}: [{}]", json(z), json(&upstream)))
        .collect();
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kube-dns\n  namespace: kube-system\ndata:\n  stubDomains: |\n    {{{}}}\n",
        domains.join(", ")
    )
}

/// A CoreDNS server block per zone, forwarding it to `server`.
pub fn coredns(zones: &[String], server: SocketAddr) -> String {
    let upstream = upstream(server);
    let mut out = String::new();
    for zone in zones {
        let _ = write!(
            out,
            "{zone}:53 {{\n    errors\n    cache 30\n    forward . {upstream}\n}}\n"
        );
    }
    out
}

/// The wiring for `target`, after a comment on DNSSEC validation.
pub fn render(target: Target, zones: &[String], server: SocketAddr) -> String {
    let wiring = match target {
        Target::KubeDns => kube_dns(zones, server),
        Target::Coredns => coredns(zones, server),
        Target::Both => format!(
            "# kube-dns: merge into ConfigMap kube-system/kube-dns\n{}\n# CoreDNS: add to the Corefile in ConfigMap kube-system/coredns\n{}",
            kube_dns(zones, server),
            coredns(zones, server)
        ),
    };
    format!("{}{wiring}", dnssec_note(zones))
}

/// Real top-level domains that are signed (DNSSEC) and that mesh zones are
/// known to be named after: `global` is one since 2014.
const SIGNED_TLDS: &[&str] = &["global"];

/// A comment for the zones under a real, signed TLD: globaldns' answers
/// are unsigned, so a validating resolver on the way (not kube-dns or
/// CoreDNS, which do not validate) must be told the zone is insecure, or
/// it rejects them as bogus. Empty when no zone is under such a TLD.
pub fn dnssec_note(zones: &[String]) -> String {
    let signed: Vec<&str> = zones
        .iter()
        .map(String::as_str)
        .filter(|z| {
            let tld = z.trim_end_matches('.').rsplit('.').next().unwrap_or(z);
            SIGNED_TLDS.iter().any(|t| t.eq_ignore_ascii_case(tld))
        })
        .collect();
    if signed.is_empty() {
        return String::new();
    }
    let quoted: Vec<String> = signed.iter().map(|z| format!("\"{z}\"")).collect();
    format!(
        "# DNSSEC: {} lie(s) under a real, signed TLD and globaldns' answers are unsigned.\n\
         # kube-dns and CoreDNS, wired as below, do not validate: nothing more is needed.\n\
         # A validating resolver on the way (unbound, BIND, systemd-resolved, dnsmasq --dnssec)\n\
         # rejects the answers unless told the zone is insecure, e.g. unbound\n\
         # `domain-insecure: {}`, BIND `validate-except {{ {}; }};`.\n",
        signed.join(", "),
        quoted.join(" / domain-insecure: "),
        quoted.join("; ")
    )
}

/// `IP` for port 53, else `IP:port` (`[IPv6]:port`).
fn upstream(server: SocketAddr) -> String {
    if server.port() == 53 {
        server.ip().to_string()
    } else {
        server.to_string()
    }
}

fn json(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The ClusterIP of Service `namespace/name`: an error names the Service
/// when it is missing or headless.
pub async fn cluster_ip(
    client: kube::Client,
    namespace: &str,
    name: &str,
) -> anyhow::Result<IpAddr> {
    let service = Api::<Service>::namespaced(client, namespace)
        .get(name)
        .await
        .map_err(|e| anyhow::anyhow!("Service {namespace}/{name}: {e}"))?;
    let ip = service
        .spec
        .and_then(|s| s.cluster_ip)
        .filter(|ip| ip != "None" && !ip.is_empty())
        .ok_or_else(|| anyhow::anyhow!("Service {namespace}/{name} has no ClusterIP"))?;
    ip.parse()
        .map_err(|e| anyhow::anyhow!("Service {namespace}/{name}: ClusterIP `{ip}`: {e}"))
}

#[cfg(test)]
mod tests;
