//! `globaldns stub-config`: the cluster DNS wiring that points the served
//! zones at globaldns' Service (design §6), printed so that nobody pastes a
//! ClusterIP by hand, and merged into the configuration the cluster DNS
//! already has ([`splice`]) so that applying it replaces nothing else.
//!
//! The existing ConfigMaps (`kube-system/kube-dns`, `kube-system/coredns`)
//! are read with the user's kubeconfig, an administrator's at install time:
//! globaldns' own ServiceAccount never reads kube-system and is not granted
//! to.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::Api;

pub mod splice;
pub use splice::MergeError;

/// Why the wiring cannot be printed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WiringError {
    #[error(transparent)]
    Merge(#[from] MergeError),
    /// kube-dns (k8s.io/dns) cannot reach an IPv6 server on a port other
    /// than 53: its ConfigMap validation takes `[addr]:port` only, and its
    /// dnsmasq-nanny (pkg/dnsmasq/nanny.go) turns that into
    /// `--server=/zone/[addr]#port`, brackets kept, which dnsmasq refuses,
    /// so kube-dns' dnsmasq would not start.
    #[error(
        "kube-dns cannot forward to {0}: it passes an IPv6 server with a port to dnsmasq as \
         `[address]#port`, which dnsmasq refuses (and refuses `address#port` in its ConfigMap); \
         reach globaldns on port 53 of an IPv6 address (the manifests' Service maps 53 to the \
         container's 5353), give an IPv4 address, or wire CoreDNS (--for coredns)"
    )]
    KubeDnsIpv6Port(SocketAddr),
}

/// The namespace of the cluster DNS' ConfigMaps.
pub const DNS_NAMESPACE: &str = "kube-system";
/// The kube-dns ConfigMap (its `stubDomains`).
pub const KUBE_DNS: &str = "kube-dns";
/// The CoreDNS ConfigMap (its `Corefile`).
pub const COREDNS: &str = "coredns";

/// The cluster DNS configuration the wiring is merged into: each ConfigMap
/// as found, `None` where the cluster has none (nothing to keep).
#[derive(Clone, Debug, Default)]
pub struct Existing {
    pub kube_dns: Option<ConfigMap>,
    pub coredns: Option<ConfigMap>,
}

/// Which wiring to print (`stub-config --for`).
pub use crate::cli::StubTarget as Target;

/// The kube-dns ConfigMap forwarding every zone to `server` (kube-dns
/// takes `IP` or `IP:port` in stubDomains). Fails for an IPv6 `server` on
/// a port other than 53 ([`WiringError::KubeDnsIpv6Port`]).
pub fn kube_dns(zones: &[String], server: SocketAddr) -> Result<String, WiringError> {
    kube_dns_merged(&ConfigMap::default(), zones, server)
}

/// `existing` (ConfigMap kube-system/kube-dns) with every zone added to its
/// `stubDomains` or replaced there; its other domains and keys kept.
pub fn kube_dns_merged(
    existing: &ConfigMap,
    zones: &[String],
    server: SocketAddr,
) -> Result<String, WiringError> {
    let mut data = existing.data.clone().unwrap_or_default();
    let stub = splice::stub_domains(
        data.get("stubDomains").map(String::as_str),
        zones,
        &kube_dns_server(server)?,
    )?;
    data.insert("stubDomains".to_string(), format!("{stub}\n"));
    Ok(configmap_yaml(KUBE_DNS, &data))
}

/// `existing` (ConfigMap kube-system/coredns) with its Corefile's blocks for
/// the zones replaced by [`coredns`]'s, every other block and key kept.
pub fn coredns_merged(
    existing: &ConfigMap,
    zones: &[String],
    server: SocketAddr,
) -> Result<String, MergeError> {
    let mut data = existing.data.clone().unwrap_or_default();
    let corefile = splice::corefile(
        data.get("Corefile").map_or("", String::as_str),
        zones,
        &coredns(zones, server),
    )?;
    data.insert("Corefile".to_string(), corefile);
    Ok(configmap_yaml(COREDNS, &data))
}

/// A ConfigMap of kube-system as YAML, for `kubectl apply -f -`: text values
/// as literal blocks where that reads back the same, else JSON-quoted.
fn configmap_yaml(name: &str, data: &BTreeMap<String, String>) -> String {
    let mut out = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {DNS_NAMESPACE}\ndata:\n"
    );
    for (key, value) in data {
        out.push_str(&data_entry(key, value));
    }
    out
}

fn data_entry(key: &str, value: &str) -> String {
    let plain = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    let key = if plain { key.to_string() } else { json(key) };
    if value.contains('\n') {
        let chomp = match value.len() - value.trim_end_matches('\n').len() {
            0 => "-",
            1 => "",
            _ => "+",
        };
        // An indentation indicator only where the first line's own
        // indentation would otherwise be taken for the block's.
        let first = value.lines().find(|l| !l.is_empty()).unwrap_or_default();
        let indent = if first.starts_with([' ', '\t']) {
            "2"
        } else {
            ""
        };
        let mut block = format!("  {key}: |{indent}{chomp}\n");
        for line in value.trim_end_matches('\n').split('\n') {
            if !line.is_empty() {
                block.push_str("    ");
            }
            block.push_str(line);
            block.push('\n');
        }
        for _ in 1..value.len() - value.trim_end_matches('\n').len() {
            block.push('\n');
        }
        // Kept only if a YAML reader gets the value back unchanged.
        let back: Result<BTreeMap<String, String>, _> = serde_saphyr::from_str(&block);
        if back.is_ok_and(|map| map.values().next().is_some_and(|v| v == value)) {
            return block;
        }
    }
    format!("  {key}: {}\n", json(value))
}

/// A CoreDNS server block per zone, forwarding it to `server`.
pub fn coredns(zones: &[String], server: SocketAddr) -> String {
    // CoreDNS' forward takes `IP`, `IP:port` and `[IPv6]:port` alike.
    let upstream = if server.port() == 53 {
        server.ip().to_string()
    } else {
        server.to_string()
    };
    let mut out = String::new();
    for zone in zones {
        let _ = write!(
            out,
            "{zone}:53 {{\n    errors\n    cache 30\n    forward . {upstream}\n}}\n"
        );
    }
    out
}

/// The wiring for `target`, after a comment on DNSSEC validation: merged
/// into `existing` when it is given (what the cluster has), else alone.
pub fn render(
    target: Target,
    zones: &[String],
    server: SocketAddr,
    existing: Option<&Existing>,
) -> Result<String, WiringError> {
    let kube_dns_part = || -> Result<String, WiringError> {
        Ok(match existing {
            None => kube_dns(zones, server)?,
            Some(Existing {
                kube_dns: Some(map),
                ..
            }) => kube_dns_merged(map, zones, server)?,
            Some(Existing { kube_dns: None, .. }) => format!(
                "# {DNS_NAMESPACE}/{KUBE_DNS} does not exist: this creates it (only kube-dns reads it)\n{}",
                kube_dns(zones, server)?
            ),
        })
    };
    let coredns_part = || -> Result<Option<String>, MergeError> {
        Ok(match existing {
            Some(Existing {
                coredns: Some(map), ..
            }) => Some(coredns_merged(map, zones, server)?),
            _ => None,
        })
    };
    let blocks = |why: &str| format!("# CoreDNS: {why}\n{}", coredns(zones, server));
    let no_coredns = match existing {
        None => "add to the Corefile in ConfigMap kube-system/coredns",
        Some(_) => "kube-system/coredns does not exist: add to your CoreDNS's Corefile",
    };
    let wiring = match target {
        Target::KubeDns => kube_dns_part()?,
        Target::Coredns => match coredns_part()? {
            Some(map) => map,
            None if existing.is_none() => coredns(zones, server),
            None => blocks(no_coredns),
        },
        Target::Both => {
            let kube_dns = kube_dns_part()?;
            match coredns_part()? {
                Some(map) => format!(
                    "# kube-dns: ConfigMap kube-system/kube-dns\n{kube_dns}---\n# CoreDNS: ConfigMap kube-system/coredns\n{map}"
                ),
                None => format!(
                    "# kube-dns: merge into ConfigMap kube-system/kube-dns\n{kube_dns}\n{}",
                    blocks(no_coredns)
                ),
            }
        }
    };
    Ok(format!("{}{wiring}", dnssec_note(zones)))
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

/// A kube-dns stubDomains server: `IP` for port 53, else `IPv4:port`
/// (which kube-dns' nanny passes to dnsmasq as `IPv4#port`). An IPv6
/// address with another port has no form both kube-dns and its dnsmasq
/// take ([`WiringError::KubeDnsIpv6Port`]).
fn kube_dns_server(server: SocketAddr) -> Result<String, WiringError> {
    match server {
        _ if server.port() == 53 => Ok(server.ip().to_string()),
        SocketAddr::V4(v4) => Ok(v4.to_string()),
        SocketAddr::V6(_) => Err(WiringError::KubeDnsIpv6Port(server)),
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

/// ConfigMap `kube-system/<name>` as the API server has it, `None` if
/// there is none (a cluster runs kube-dns or CoreDNS, rarely both).
/// Reading it needs `get` on ConfigMaps in kube-system: an administrator's
/// kubeconfig, not globaldns' ServiceAccount.
pub async fn configmap_of(client: kube::Client, name: &str) -> anyhow::Result<Option<ConfigMap>> {
    match Api::<ConfigMap>::namespaced(client, DNS_NAMESPACE)
        .get_opt(name)
        .await
    {
        Ok(map) => Ok(map),
        Err(kube::Error::Api(status)) if status.code == 401 || status.code == 403 => {
            Err(anyhow::anyhow!(
                "cannot read ConfigMap {DNS_NAMESPACE}/{name} to merge into ({}): it takes `get` on configmaps in {DNS_NAMESPACE}, \
                 an administrator's kubeconfig (globaldns' ServiceAccount has no such right and needs none)",
                status.message
            ))
        }
        Err(e) => Err(anyhow::anyhow!(
            "cannot read ConfigMap {DNS_NAMESPACE}/{name} to merge into: {e}"
        )),
    }
}

#[cfg(test)]
mod tests;
